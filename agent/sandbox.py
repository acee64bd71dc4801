"""Run one untrusted command under the job's limits, and make sure nothing of it survives.

:func:`run_sandboxed` starts the command

* in a new session, hence a new process group, so the whole tree can be signalled at once;
* with an environment built from scratch by :func:`minimal_environment`: ``PATH``, ``HOME``, ``TMPDIR``,
  ``LANG`` and whatever the executor passes explicitly; nothing is inherited from the agent, so the
  agent's credentials never reach a workflow;
* under ``RLIMIT_CPU``, ``RLIMIT_AS``, ``RLIMIT_FSIZE``, ``RLIMIT_NOFILE`` and ``RLIMIT_CORE=0``
  (set by the ``_rlimit_exec.py`` trampoline after ``exec``);
* without network and in a PID namespace of its own (``unshare --net --pid --fork --kill-child``), when
  the kernel allows it. Whether it does is probed once per process (:func:`probe_network_isolation`)
  and every result records what applied. The PID namespace makes clean-up exact: when its first
  process dies the kernel kills every process in it, including any that started a new session.

It then waits, enforcing a wall-clock timeout and honouring a cancellation event. Timeout and
cancellation both stop the run the same way: SIGTERM to the process group (and to any descendant that
left it), then SIGKILL after a grace period. When the command ends by itself, any process it left behind
is killed too: **no process started for a job outlives** :func:`run_sandboxed`.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

__all__ = [
    "NetworkIsolation",
    "Outcome",
    "ResourceLimits",
    "SandboxError",
    "SandboxResult",
    "minimal_environment",
    "probe_container_host_isolation",
    "probe_network_isolation",
    "run_sandboxed",
]

_TRAMPOLINE = Path(__file__).with_name("_rlimit_exec.py")
# Commands that start a process in new network and PID namespaces (no network but a down loopback
# device), tried in order. Mapping the current user (rather than root, as -r does) keeps the command's
# uid unchanged; --kill-child makes the namespace die with unshare itself.
_ISOLATION_CANDIDATES: tuple[tuple[str, ...], ...] = (
    ("unshare", "--map-current-user", "--net", "--pid", "--fork", "--kill-child"),
    ("unshare", "--map-root-user", "--net", "--pid", "--fork", "--kill-child"),
)
# For cwltool driving podman: a network namespace only. A user namespace keeps podman from its image
# store and a PID namespace without its own /proc breaks runc, so this needs the agent to run as root;
# the containers get their own namespaces from podman.
_CONTAINER_HOST_CANDIDATE: tuple[str, ...] = ("unshare", "--net", "--fork", "--kill-child")
# How often the wait loop re-lists descendants; they are the processes killed at the end.
_DESCENDANT_SCAN_SECONDS = 0.5


class SandboxError(RuntimeError):
    """The command could not be started as required (e.g. network isolation demanded but unavailable)."""


class Outcome(enum.StrEnum):
    """How a sandboxed run ended."""

    EXITED = "exited"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class ResourceLimits:
    """Limits for one sandboxed command; all positive."""

    timeout_seconds: float
    cpu_seconds: int
    memory_bytes: int
    max_file_bytes: int
    max_open_files: int = 1024

    def __post_init__(self) -> None:
        for name in ("timeout_seconds", "cpu_seconds", "memory_bytes", "max_file_bytes", "max_open_files"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


@dataclass(frozen=True)
class NetworkIsolation:
    """Whether processes can be started without network, and how (or why not)."""

    available: bool
    prefix: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class SandboxResult:
    """What happened to one sandboxed command.

    ``returncode`` is the command's exit status, negative for a signal (as in :mod:`subprocess`).
    ``network`` says what network the command had: the isolation used, ``"allowed"``, or the reason no
    isolation was possible.
    """

    outcome: Outcome
    returncode: int
    started_at: datetime
    ended_at: datetime
    network_isolated: bool
    network: str

    @property
    def succeeded(self) -> bool:
        """True when the command exited by itself with status 0."""
        return self.outcome is Outcome.EXITED and self.returncode == 0

    def describe(self, timeout_seconds: float | None = None) -> str:
        """A one-line account of the ending, for logs and failure reasons (never command output)."""
        if self.outcome is Outcome.TIMED_OUT:
            limit = f" of {timeout_seconds:g} s" if timeout_seconds is not None else ""
            return f"timeout: wall-clock limit{limit} reached"
        if self.outcome is Outcome.CANCELLED:
            return "cancelled"
        if self.returncode >= 0:
            return f"exit status {self.returncode}"
        number = -self.returncode
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
        explanation = {
            "SIGXCPU": " (CPU time limit)",
            "SIGXFSZ": " (file size limit)",
            "SIGKILL": " (possibly the CPU time limit or the memory limit)",
        }.get(name, "")
        return f"killed by {name}{explanation}"


@functools.cache
def probe_network_isolation() -> NetworkIsolation:
    """Find out, once per process, whether commands can be started in a network namespace of their own.

    The probe runs the candidate command for real (``unshare ... true``): user namespaces may be
    compiled in but disabled by sysctl or by a container runtime's seccomp policy, which only trying
    reveals.
    """
    if shutil.which("unshare") is None:
        return NetworkIsolation(False, (), "unavailable: no unshare command on PATH")
    reasons = []
    for candidate in _ISOLATION_CANDIDATES:
        try:
            completed = subprocess.run(
                [*candidate, "true"], capture_output=True, text=True, timeout=10, check=False, env={}
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            reasons.append(f"{' '.join(candidate)}: {exc}")
            continue
        if completed.returncode == 0:
            return NetworkIsolation(True, candidate, " ".join(candidate))
        reasons.append(f"{' '.join(candidate)}: {completed.stderr.strip() or completed.returncode}")
    return NetworkIsolation(False, (), "unavailable: " + "; ".join(reasons))


@functools.cache
def probe_container_host_isolation() -> NetworkIsolation:
    """Whether cwltool (which starts podman) can run without network: a network namespace only."""
    if shutil.which("unshare") is None:
        return NetworkIsolation(False, (), "unavailable: no unshare command on PATH")
    try:
        completed = subprocess.run(
            [*_CONTAINER_HOST_CANDIDATE, "true"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            env={},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return NetworkIsolation(False, (), f"unavailable: {exc}")
    if completed.returncode != 0:
        return NetworkIsolation(False, (), f"unavailable: {completed.stderr.strip() or completed.returncode}")
    return NetworkIsolation(True, _CONTAINER_HOST_CANDIDATE, " ".join(_CONTAINER_HOST_CANDIDATE))


def minimal_environment(
    *, path: str, home: Path, tmpdir: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The complete environment of a sandboxed command: nothing is inherited from the agent."""
    env = {"PATH": path, "HOME": str(home), "TMPDIR": str(tmpdir), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    env.update(extra or {})
    return env


def run_sandboxed(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    limits: ResourceLimits,
    stdout: Path,
    stderr: Path,
    allow_network: bool = False,
    require_network_isolation: bool = False,
    cancel: threading.Event | None = None,
    grace_seconds: float = 15.0,
    poll_seconds: float = 0.05,
    isolation: NetworkIsolation | None = None,
) -> SandboxResult:
    """Run ``argv`` to completion, timeout or cancellation, as described in the module docstring.

    ``env`` is the command's whole environment (build it with :func:`minimal_environment`). Output goes
    to the ``stdout`` and ``stderr`` files. Raises :class:`SandboxError` if ``require_network_isolation``
    is set and the kernel does not allow it; the command is then not started. ``isolation`` replaces the
    probed default (see :func:`probe_container_host_isolation`).
    """
    if allow_network:
        prefix: tuple[str, ...] = ()
        isolated, network = False, "allowed"
    else:
        isolation = isolation or probe_network_isolation()
        if not isolation.available and require_network_isolation:
            raise SandboxError(f"network isolation is required but {isolation.description}")
        prefix, isolated, network = isolation.prefix, isolation.available, isolation.description
    # In a PID namespace the trampoline stays as its init and reports the command's wait status here.
    status_read, status_write = os.pipe()
    command = [
        *prefix,
        sys.executable,
        "-I",
        "-S",
        str(_TRAMPOLINE),
        str(status_write),
        str(limits.cpu_seconds),
        str(limits.memory_bytes),
        str(limits.max_file_bytes),
        str(limits.max_open_files),
        "--",
        *argv,
    ]
    started_at = datetime.now(UTC)
    try:
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(
                command,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                close_fds=True,
                pass_fds=(status_write,),
            )
    except BaseException:
        os.close(status_read)
        raise
    finally:
        os.close(status_write)
    watcher = _ProcessTree(process.pid)
    outcome = Outcome.EXITED
    deadline = time.monotonic() + limits.timeout_seconds
    try:
        while not watcher.leader_exited():
            if cancel is not None and cancel.is_set():
                outcome = Outcome.CANCELLED
                break
            if time.monotonic() >= deadline:
                outcome = Outcome.TIMED_OUT
                break
            watcher.scan()
            if cancel is not None:
                cancel.wait(poll_seconds)
            else:
                time.sleep(poll_seconds)
        if outcome is not Outcome.EXITED:
            watcher.terminate(grace_seconds)
    finally:
        # Also on KeyboardInterrupt or an agent bug: the job's processes never outlive this call.
        watcher.kill_all()
        returncode = process.wait()
        with os.fdopen(status_read, "rb") as status_pipe:
            reported = status_pipe.read()
    if reported:
        returncode = os.waitstatus_to_exitcode(int(reported))
    return SandboxResult(
        outcome=outcome,
        returncode=returncode,
        started_at=started_at,
        ended_at=datetime.now(UTC),
        network_isolated=isolated,
        network=network,
    )


class _ProcessTree:
    """The sandboxed command's process group plus every descendant seen, including those that left it.

    Without a PID namespace this is best effort: a process that leaves the group and is orphaned between
    two scans is not seen.

    The leader is not reaped until :meth:`kill_all` has run: while it is a zombie its pid, which is also
    the process-group id, cannot be reused, so signalling the group can never hit an unrelated process.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.descendants: dict[int, psutil.Process] = {}
        self._last_scan = 0.0
        self.scan(force=True)

    def leader_exited(self) -> bool:
        info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        return info is not None

    def scan(self, *, force: bool = False) -> None:
        """Remember the current descendants (at most every ``_DESCENDANT_SCAN_SECONDS``)."""
        now = time.monotonic()
        if not force and now - self._last_scan < _DESCENDANT_SCAN_SECONDS:
            return
        self._last_scan = now
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.pid).children(recursive=True):
                self.descendants.setdefault(child.pid, child)

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)
        for child in self.descendants.values():
            # psutil checks the creation time, so a recycled pid is never signalled.
            with contextlib.suppress(psutil.Error):
                child.send_signal(signum)

    def terminate(self, grace_seconds: float) -> None:
        """SIGTERM everything, then wait up to ``grace_seconds`` for the leader to exit."""
        self.scan(force=True)
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline and not self.leader_exited():
            time.sleep(0.05)

    def kill_all(self) -> None:
        """SIGKILL whatever is left of the group and of the descendants seen; wait (briefly) for them."""
        self.scan(force=True)
        self._signal(signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_is_alive(child) for child in self.descendants.values()):
            time.sleep(0.01)


def _is_alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False

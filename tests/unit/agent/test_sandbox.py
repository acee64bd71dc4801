"""The sandbox, for real: environment, limits, timeouts, cancellation, process clean-up, network."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path

import psutil
import pytest

from agent import sandbox
from agent.sandbox import (
    NetworkIsolation,
    Outcome,
    ResourceLimits,
    SandboxError,
    minimal_environment,
    probe_network_isolation,
    run_sandboxed,
)

LIMITS = ResourceLimits(timeout_seconds=20, cpu_seconds=20, memory_bytes=1 << 30, max_file_bytes=10 << 20)


def run(tmp_path: Path, argv: list[str], limits: ResourceLimits = LIMITS, **kwargs) -> sandbox.SandboxResult:
    env = minimal_environment(path="/usr/local/bin:/usr/bin:/bin", home=tmp_path, tmpdir=tmp_path)
    kwargs.setdefault("grace_seconds", 1)
    return run_sandboxed(
        argv, cwd=tmp_path, env=env, limits=limits, stdout=tmp_path / "out", stderr=tmp_path / "err", **kwargs
    )


def running_sleeps(seconds: str) -> list[psutil.Process]:
    """Live ``sleep <seconds>`` processes; each test sleeps for its own odd duration to be recognisable.

    Processes are found by command line because pids seen inside a PID namespace are not host pids.
    """
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if process.info["cmdline"] == ["sleep", seconds] and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


def wait_until(predicate, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_the_command_sees_only_the_minimal_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_TOKEN", "agent-secret-token")
    monkeypatch.setenv("PGPASSWORD", "database-secret")

    result = run(tmp_path, ["env"])

    assert result.succeeded
    variables = dict(line.split("=", 1) for line in (tmp_path / "out").read_text().splitlines())
    assert set(variables) == {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL"}
    assert variables["HOME"] == str(tmp_path)
    assert "secret" not in (tmp_path / "out").read_text()


def test_extra_variables_are_passed_only_when_given():
    env = minimal_environment(path="/bin", home=Path("/h"), tmpdir=Path("/t"), extra={"MODE": "fast"})
    assert env == {
        "PATH": "/bin",
        "HOME": "/h",
        "TMPDIR": "/t",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "MODE": "fast",
    }


def test_exit_status_and_times_are_reported(tmp_path):
    result = run(tmp_path, ["sh", "-c", "echo done; exit 3"])

    assert result.outcome is Outcome.EXITED
    assert result.returncode == 3
    assert not result.succeeded
    assert result.describe() == "exit status 3"
    assert result.started_at <= result.ended_at
    assert (tmp_path / "out").read_text() == "done\n"


def test_a_missing_program_is_reported_not_raised(tmp_path):
    result = run(tmp_path, ["no-such-program-anywhere"])

    assert result.returncode == 127
    assert "cannot execute 'no-such-program-anywhere'" in (tmp_path / "err").read_text()


def test_wall_clock_timeout_kills_the_whole_process_group(tmp_path):
    limits = ResourceLimits(timeout_seconds=0.5, cpu_seconds=20, memory_bytes=1 << 30, max_file_bytes=1 << 20)
    started = time.monotonic()

    result = run(tmp_path, ["sh", "-c", "sleep 3001 & wait"], limits)

    assert result.outcome is Outcome.TIMED_OUT
    assert result.describe(0.5) == "timeout: wall-clock limit of 0.5 s reached"
    assert time.monotonic() - started < 5
    assert running_sleeps("3001") == []


def test_processes_left_behind_or_escaped_to_a_new_session_are_killed(tmp_path):
    # The command exits at once, leaving one child in its group and one that called setsid().
    result = run(tmp_path, ["sh", "-c", "sleep 3002 & setsid sleep 3003 & sleep 0.3"])

    assert result.succeeded
    assert running_sleeps("3002") == []
    assert running_sleeps("3003") == []


def test_cancellation_sends_sigterm_then_sigkill_after_the_grace_period(tmp_path):
    cancel = threading.Event()
    script = "trap '' TERM; sleep 3004 & while true; do sleep 0.1; done"
    started = time.monotonic()
    threading.Thread(target=lambda: wait_until(lambda: running_sleeps("3004")) and cancel.set()).start()

    # The shell ignores SIGTERM, so only SIGKILL after the 1 s grace period stops it.
    result = run(tmp_path, ["sh", "-c", script], cancel=cancel)

    elapsed = time.monotonic() - started
    assert result.outcome is Outcome.CANCELLED
    assert result.describe() == "cancelled"
    assert 1 <= elapsed < 8
    assert running_sleeps("3004") == []


def test_a_command_that_stops_on_sigterm_is_not_killed(tmp_path):
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()

    result = run(tmp_path, ["sleep", "3005"], cancel=cancel, grace_seconds=10)

    assert result.outcome is Outcome.CANCELLED
    assert result.returncode == -signal.SIGTERM
    assert (result.ended_at - result.started_at).total_seconds() < 5


def test_memory_limit_applies(tmp_path):
    limits = ResourceLimits(
        timeout_seconds=20, cpu_seconds=20, memory_bytes=256 << 20, max_file_bytes=1 << 20
    )

    result = run(tmp_path, ["python3", "-c", "bytearray(512 * 1024 * 1024)"], limits)

    assert result.returncode == 1
    assert "MemoryError" in (tmp_path / "err").read_text()


def test_cpu_time_limit_applies(tmp_path):
    limits = ResourceLimits(timeout_seconds=30, cpu_seconds=1, memory_bytes=1 << 30, max_file_bytes=1 << 20)

    result = run(tmp_path, ["python3", "-c", "while True: pass"], limits)

    assert result.outcome is Outcome.EXITED
    assert result.returncode == -signal.SIGXCPU
    assert result.describe() == "killed by SIGXCPU (CPU time limit)"


def test_file_size_limit_applies(tmp_path):
    limits = ResourceLimits(timeout_seconds=20, cpu_seconds=20, memory_bytes=1 << 30, max_file_bytes=100_000)

    result = run(tmp_path, ["sh", "-c", "head -c 1000000 /dev/zero > big"], limits)

    assert result.returncode == 128 + signal.SIGXFSZ  # the shell reports head's death by SIGXFSZ
    assert (tmp_path / "big").stat().st_size <= 100_000


def test_network_is_isolated_when_the_kernel_allows_it(tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        probe = [
            "python3",
            "-c",
            f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5)",
        ]

        (tmp_path / "isolated").mkdir()
        (tmp_path / "allowed").mkdir()
        isolated = run(tmp_path / "isolated", probe)
        allowed = run(tmp_path / "allowed", probe, allow_network=True)

    isolation = probe_network_isolation()
    assert allowed.succeeded
    assert allowed.network == "allowed"
    assert isolated.network == isolation.description
    if isolation.available:
        assert isolated.network_isolated
        assert isolated.returncode == 1
        assert "unreachable" in (tmp_path / "isolated" / "err").read_text().lower()
    else:
        assert not isolated.network_isolated
        assert isolation.description.startswith("unavailable")


def test_required_isolation_refuses_to_start_without_it(tmp_path, monkeypatch):
    unavailable = NetworkIsolation(False, (), "unavailable: user namespaces are disabled")
    monkeypatch.setattr(sandbox, "probe_network_isolation", lambda: unavailable)

    with pytest.raises(SandboxError, match="network isolation is required but unavailable"):
        run(tmp_path, ["sh", "-c", "touch started"], require_network_isolation=True)
    assert not (tmp_path / "started").exists()

    result = run(tmp_path, ["true"])
    assert result.succeeded
    assert not result.network_isolated
    assert result.network == "unavailable: user namespaces are disabled"


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="cpu_seconds must be positive"):
        ResourceLimits(timeout_seconds=1, cpu_seconds=0, memory_bytes=1, max_file_bytes=1)


def test_without_namespaces_the_process_group_is_still_cleaned_up(tmp_path, monkeypatch):
    unavailable = NetworkIsolation(False, (), "unavailable: user namespaces are disabled")
    monkeypatch.setattr(sandbox, "probe_network_isolation", lambda: unavailable)

    result = run(tmp_path, ["sh", "-c", "sleep 3006 & sleep 0.6"])

    assert result.succeeded
    assert running_sleeps("3006") == []

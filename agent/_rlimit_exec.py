"""Set resource limits on this process, then replace it with the command that follows ``--``.

Usage (by :mod:`agent.sandbox` only):
``python -I -S _rlimit_exec.py STATUS_FD CPU AS FSIZE NOFILE -- COMMAND...`` with CPU in seconds and
the others in bytes or a count. Started as PID 1 of a new PID namespace, it stays as the namespace's
init and reports the command's wait status on STATUS_FD; otherwise it closes STATUS_FD and execs.

Limits are set here, after the sandbox's ``exec``, rather than in a ``preexec_fn``: running Python code
between ``fork`` and ``exec`` can deadlock in a multi-threaded parent, and the agent has threads. The
file runs under ``-I -S`` and imports only the standard library, so it does not depend on the agent's
import path or environment.
"""

import os
import resource
import signal
import sys

# Seconds between the SIGXCPU warning (soft limit) and SIGKILL (hard limit), so a process may clean up.
CPU_GRACE_SECONDS = 5


def _cap(limit: int, requested: int) -> tuple[int, int]:
    """(soft, hard) for ``requested``, never above the inherited hard limit (raising it would fail)."""
    _, hard = resource.getrlimit(limit)
    value = requested if hard == resource.RLIM_INFINITY else min(requested, hard)
    return value, value


def _limit_and_exec(limits: list[str], command: list[str]) -> None:
    cpu_seconds, address_space, file_size, open_files = (int(value) for value in limits)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    cpu_soft, cpu_hard = _cap(resource.RLIMIT_CPU, cpu_seconds + CPU_GRACE_SECONDS)
    resource.setrlimit(resource.RLIMIT_CPU, (min(cpu_seconds, cpu_soft), cpu_hard))
    resource.setrlimit(resource.RLIMIT_AS, _cap(resource.RLIMIT_AS, address_space))
    resource.setrlimit(resource.RLIMIT_FSIZE, _cap(resource.RLIMIT_FSIZE, file_size))
    resource.setrlimit(resource.RLIMIT_NOFILE, _cap(resource.RLIMIT_NOFILE, open_files))
    # Python ignores SIGPIPE and SIGXFSZ at start-up and ignored signals survive exec: restore the
    # defaults so that exceeding RLIMIT_FSIZE terminates the command, as it would anywhere else.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    try:
        os.execvp(command[0], command)  # noqa: S606 - the sandboxed argv, deliberately without a shell
    except OSError as exc:
        print(f"sandbox: cannot execute {command[0]!r}: {exc.strerror}", file=sys.stderr)
        os._exit(127)


def _namespace_init(status_fd: int, limits: list[str], command: list[str]) -> None:
    """Be PID 1 of the new PID namespace: run the command as a child, reap orphans, report its status.

    The command must not be PID 1 itself: the kernel shields a namespace's init from signals it has no
    handler for, so SIGTERM, SIGXCPU or SIGXFSZ would not stop it. The command's raw wait status is
    written to ``status_fd`` because this process, being init, cannot die of the same signal.
    """
    child = os.fork()
    if child == 0:
        os.close(status_fd)
        _limit_and_exec(limits, command)
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == child:
            break
    os.write(status_fd, str(status).encode())
    code = os.waitstatus_to_exitcode(status)
    # Leaving kills whatever is left in the namespace.
    os._exit(code if code >= 0 else 128 - code)


def main(args: list[str]) -> None:
    separator = args.index("--")
    status_fd, limits, command = int(args[0]), args[1:separator], args[separator + 1 :]
    if os.getpid() == 1:
        _namespace_init(status_fd, limits, command)
    os.close(status_fd)
    _limit_and_exec(limits, command)


if __name__ == "__main__":
    main(sys.argv[1:])

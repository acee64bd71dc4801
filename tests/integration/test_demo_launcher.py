"""`scripts/demo` stops cleanly: Ctrl-C ends every process its launcher started, quietly, within 10 s.

The launcher (`scripts/demo-run`, what `scripts/demo` runs once the database is seeded) is started
for real on a seeded SQLite demo in a temporary folder; the test then sends SIGINT to its process group,
as a terminal's Ctrl-C does, and watches every process it had started.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from tests.integration.crates.test_dispatch_live import REPO


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _demo_env(tmp_path, port):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "PORTAL_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DJANGO_DEBUG="1",
        DJANGO_SECRET_KEY="demo-launcher-test-" + "x" * 40,
        PORTAL_DATA_DIR=str(tmp_path),
        PORT=str(port),
        PORTAL_BASE_URL=f"http://127.0.0.1:{port}",
        AGENT_GRACE="3",
        STOP_GRACE="3",
    )
    return env


def _wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _answers(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (a local test server)
            return response.status < 500
    except OSError:
        return False


@pytest.fixture
def seeded_demo(tmp_path):
    port = _free_port()
    env = _demo_env(tmp_path, port)
    python = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv").exists() else sys.executable
    for command in (["migrate", "--no-input", "-v", "0"], ["seed_demo"]):
        seeded = subprocess.run(  # noqa: S603 (our own manage.py)
            [python, "manage.py", *command], cwd=REPO, env=env, check=True, capture_output=True, timeout=300
        )
    return env, port, seeded.stdout.decode()


def test_the_totp_hint_works_as_printed(seeded_demo):
    env, _, printed = seeded_demo
    hint = re.search(r"print the current code with: (.+)$", printed, re.MULTILINE)
    assert hint, printed
    command = hint.group(1).split()
    assert command[0] == ".venv/bin/python"  # not whichever python is on the PATH
    if not (REPO / ".venv").exists():
        command[0] = sys.executable
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, timeout=60)  # noqa: S603
    assert result.returncode == 0, result.stderr.decode()
    assert re.fullmatch(r"\d{6}\s*", result.stdout.decode()), result.stdout


def test_ctrl_c_stops_every_process_the_demo_started_within_ten_seconds_without_tracebacks(
    seeded_demo, tmp_path
):
    env, port, _ = seeded_demo
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        launcher = subprocess.Popen(  # noqa: S603
            [str(REPO / "scripts" / "demo-run")],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Its own session and process group, like a terminal's foreground job.
            start_new_session=True,
        )
    try:
        parent = psutil.Process(launcher.pid)
        children = []
        assert _wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), 90), log.read_text()

        # The worker, its processes, the portal, the agents' launcher and one agent per demo TRE.
        def started():
            return [p for p in parent.children(recursive=True) if "python" in " ".join(p.cmdline())]

        assert _wait_for(
            lambda: sum(" -m agent " in f" {' '.join(p.cmdline())} " for p in started()) >= 3, 60
        )
        children = parent.children(recursive=True)
        commands = [" ".join(p.cmdline()) for p in children]
        assert any("qcluster" in c for c in commands) and any("runserver" in c for c in commands)

        sent = time.monotonic()
        os.killpg(launcher.pid, signal.SIGINT)
        launcher.wait(timeout=10)
        gone, alive = psutil.wait_procs(children, timeout=max(0.1, 10 - (time.monotonic() - sent)))
        assert not alive, ([" ".join(p.cmdline()) for p in alive], log.read_text()[-4000:])
        assert time.monotonic() - sent < 10
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
        for process in children:
            if process.is_running():
                process.kill()
    output = log.read_text()
    assert "Traceback" not in output, output
    assert "Stopped" in output

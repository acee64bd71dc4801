"""``python -m agent.demo --portal URL [--dir DIR]``: run one agent per demo TRE.

``manage.py seed_demo`` writes each demo TRE's agent configuration, token and synthetic dataset into
the demo directory (``$PORTAL_DATA_DIR/demo-agents``, by default ``var/demo-agents``). This starts
``python -m agent`` for every ``<slug>.toml`` there that has a ``<slug>.token``, passes SIGTERM and
SIGINT on to them, and returns when they have all stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.runner import configure_logging

log = logging.getLogger("agent.demo")

REPO = Path(__file__).resolve().parent.parent
KILL_AFTER = 1.5  # seconds after a second signal before agents still running are killed


def default_directory() -> Path:
    return Path(os.environ.get("PORTAL_DATA_DIR") or REPO / "var") / "demo-agents"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--portal", required=True, help="the portal's address, e.g. http://127.0.0.1:8000")
    parser.add_argument(
        "--dir", type=Path, default=default_directory(), help="where seed_demo wrote the agents"
    )
    parser.add_argument("--claim-wait", type=float, default=20.0, help="seconds each claim waits for a job")
    args = parser.parse_args(argv)
    configure_logging()
    configs = [path for path in sorted(args.dir.glob("*.toml")) if path.with_suffix(".token").is_file()]
    if not configs:
        log.error(
            "no demo agents configured; run `manage.py seed_demo` first",
            extra={"event": "demo.no_agents", "dir": str(args.dir)},
        )
        return 2
    children: list[subprocess.Popen] = []
    received: list[tuple[int, float]] = []  # each signal passed on, and when

    def forward(signum: int, frame: Any) -> None:
        received.append((signum, time.monotonic()))
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    # Before any agent starts: a signal that arrives while they start is passed on to each of them too.
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for config in configs:
        if received:
            break
        children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "agent",
                    "--portal",
                    args.portal,
                    "--token-file",
                    str(config.with_suffix(".token")),
                    "--config",
                    str(config),
                    "--claim-wait",
                    str(args.claim_wait),
                ],
                cwd=REPO,
                # Their own session: a terminal's Ctrl-C reaches only this process, which passes it on once.
                start_new_session=True,
            )
        )
        if received:
            children[-1].send_signal(received[-1][0])
    log.info(
        "demo agents started",
        extra={"event": "demo.started", "tres": [c.stem for c in configs], "pids": [c.pid for c in children]},
    )
    # A second signal is passed on as well (an agent then stops at once); agents still running
    # KILL_AFTER seconds later are killed with their process groups, so none outlives this launcher.
    while any(child.poll() is None for child in children):
        if len(received) >= 2 and time.monotonic() - received[1][1] > KILL_AFTER:
            for child in children:
                if child.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child.pid, signal.SIGKILL)
        time.sleep(0.1)
    codes = [child.wait() for child in children]
    log.info("demo agents stopped", extra={"event": "demo.stopped", "exit_codes": codes})
    return max(codes, default=0)


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m agent --portal URL --token-file F --config agent.toml``: run the TRE agent.

The agent claims approved jobs of its TRE from the portal, runs them inside the TRE and returns the
results crates, until SIGTERM or SIGINT. It logs one JSON object per line on standard error.
"""

from __future__ import annotations

import argparse
import logging
import signal
from collections.abc import Sequence
from pathlib import Path

from agent.client import PortalClient
from agent.config import ConfigError, load_config
from agent.runner import Runner, configure_logging

log = logging.getLogger("agent")


def read_token(path: Path) -> str:
    """The agent's token: the first line of the file, which must be readable by this agent only."""
    try:
        token = path.read_text(encoding="utf-8").strip().splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the token file ({exc.strerror})") from None
    if not token or not token[0].strip():
        raise ConfigError(f"{path}: the token file is empty")
    return token[0].strip()


def main(argv: Sequence[str] | None = None) -> int:
    # Until the runner takes over, Ctrl-C just ends the process (no KeyboardInterrupt traceback).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    parser = argparse.ArgumentParser(prog="python -m agent", description=__doc__.splitlines()[2])
    parser.add_argument(
        "--portal", required=True, help="the portal's address, e.g. https://portal.example.org"
    )
    parser.add_argument(
        "--token-file", type=Path, required=True, help="file holding the agent's token (fsa_...)"
    )
    parser.add_argument("--config", type=Path, required=True, help="the TRE's agent.toml")
    parser.add_argument(
        "--claim-wait", type=float, default=20.0, help="seconds each claim waits for a job (default 20)"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        config = load_config(args.config)
        token = read_token(args.token_file)
    except ConfigError as exc:
        log.error("cannot start", extra={"event": "agent.misconfigured", "detail": str(exc)})
        return 2
    runner = Runner(config, PortalClient(args.portal, token), claim_wait=args.claim_wait)
    runner.install_signal_handlers()
    return runner.run()


if __name__ == "__main__":
    raise SystemExit(main())

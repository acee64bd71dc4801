"""``python -m agent.demo_workflows pack [--workflow DIR] --out ZIP``: pack a demo Workflow RO-Crate."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from agent.demo_workflows import AGE_SEX_TABLE, pack_workflow_crate


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.demo_workflows", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    pack = commands.add_parser("pack", help="zip a Workflow RO-Crate and print its sha256")
    pack.add_argument(
        "--workflow", type=Path, default=AGE_SEX_TABLE, help="crate folder (default: age_sex_table)"
    )
    pack.add_argument("--out", type=Path, required=True, help="zip file to write")
    args = parser.parse_args(argv)
    try:
        packed = pack_workflow_crate(args.workflow, args.out)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"{packed.sha256}  {packed.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

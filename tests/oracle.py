"""Run the community Five Safes profile (tests/oracle_runner.py) over crates, for integration tests."""

import json
import subprocess

from tests.reference_data import oracle_command


def judge(paths, severity="required"):
    """{path: [issues]} as the oracle sees them at `severity`; raises if the oracle itself fails."""
    result = subprocess.run(
        oracle_command("--json", "--severity", severity, *paths),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode not in (0, 1):
        raise RuntimeError(f"5s-oracle failed ({result.returncode}): {result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    return {crate["path"]: crate["issues"] for crate in report["crates"]}

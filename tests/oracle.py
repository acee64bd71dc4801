"""Run the community Five Safes profile (../shared/bin/5s-oracle) over crates, for integration tests."""

import json
import subprocess
import sys

from tests.cratekit import SHARED


def judge(paths, severity="required"):
    """{path: [issues]} as the oracle sees them at `severity`; raises if the oracle itself fails."""
    result = subprocess.run(
        [
            sys.executable,
            str(SHARED / "bin" / "5s-oracle"),
            "--json",
            "--severity",
            severity,
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode not in (0, 1):
        raise RuntimeError(f"5s-oracle failed ({result.returncode}): {result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    return {crate["path"]: crate["issues"] for crate in report["crates"]}

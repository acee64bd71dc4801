"""Where the reference data the tests and benchmarks use lives: `tests/data/` in this repository.

The example crates, the ACRO test vectors, the community Five Safes SHACL profile, the RO-Crate
contexts and the community validator's check list; where each came from and its licence are in
`tests/data/NOTICE`. `tests/oracle_runner.py` runs the community validator over them.
"""

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
CRATE_FIXTURES = DATA / "fixtures" / "5s-crate"
SDC_FIXTURES = DATA / "fixtures" / "sdc"
ORACLES = DATA / "oracles"
CHECKS_TSV = DATA / "reference" / "5s-validator-checks.tsv"
ORACLE_RUNNER = TESTS / "oracle_runner.py"


def oracle_command(*arguments):
    """The command line that runs the community validator (tests/oracle_runner.py) in this Python."""
    return [sys.executable, str(ORACLE_RUNNER), *map(str, arguments)]

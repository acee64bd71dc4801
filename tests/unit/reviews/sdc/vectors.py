"""The ACRO test vectors in tests/data/fixtures/sdc/ (see its README.md), and helpers
that turn ACRO's own outputs into expectations in the portal's vocabulary."""

import csv
import json
from functools import cache
from pathlib import Path

from reviews.sdc.acro import ACRO_CHECK_RULES
from reviews.sdc.policy import DisclosurePolicy
from reviews.sdc.verdicts import FileResult, Rule
from tests.reference_data import SDC_FIXTURES as FIXTURES

REPO_ROOT = Path(__file__).resolve().parents[4]

INPUTS = FIXTURES / "inputs"
ACRO_TEST_DATA = FIXTURES / "acro-test-data"
VERSIONS = ("1.0.2", "0.4.12")


def finalise_folder(version: str) -> Path:
    return FIXTURES / f"acro-{version}" / "finalise_output"


@cache
def expected(version: str) -> dict:
    """ACRO's recorded verdicts for every vector of one version, by vector name."""
    document = json.loads((FIXTURES / f"acro-{version}" / "expected_verdicts.json").read_text())
    assert document["acro_version"] == version
    return document["vectors"]


@cache
def acro_config(version: str) -> dict:
    """The risk appetite ACRO ran with (its config.json)."""
    return json.loads((finalise_folder(version) / "config.json").read_text())


def acro_policy(version: str, **overrides) -> DisclosurePolicy:
    """The portal policy equal to ACRO's risk appetite for that run, with the given fields changed."""
    return DisclosurePolicy.from_acro_config(acro_config(version)).with_overrides(overrides)


def check_names(text: str) -> list[str]:
    """The check names in one ACRO outcome string ("ok", "" and "A; B; " forms)."""
    return [name.strip() for name in text.split(";") if name.strip() and name.strip() != "ok"]


def expected_rules(text: str) -> frozenset[Rule]:
    return frozenset(ACRO_CHECK_RULES[name] for name in check_names(text))


def outcome_cells(outcome: dict) -> dict[tuple[str, str], str]:
    """ACRO's column-major outcome as {(row, column): text}."""
    return {(row, column): text for column, rows in outcome.items() for row, text in rows.items()}


def read_outcome_csv(path: Path) -> dict[tuple[str, str], str]:
    """An ACRO outcome table saved as CSV (row labels first) as {(row, column): text}."""
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    return {(row[0], header[index]): row[index] for row in rows[1:] for index in range(1, len(header))}


def flagged_positions(result: FileResult, rule: Rule) -> set[tuple[int, int]]:
    return {cell.position for cell in result.cells if rule in cell.rules}

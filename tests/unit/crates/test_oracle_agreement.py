"""Our validator and the community SHACL profile (run by ``5s-oracle``) agree, crate by crate.

"Agree" means: the same verdict at REQUIRED, and the same failed checks on the same entities. Two
translations make the oracle's findings comparable with ours, and the first test proves both on the
oracle's own output:

* The oracle numbers checks by position and lacks the profile's one Python check, so its ids from
  requirement 11 on are one lower than the check list's; its own context check is the list's 11.1.
* roc-validator treats two checks as equal when their requirement and name coincide
  (``RequirementCheck.__eq__``); when both fail it reports one of them, picked by set order. Such
  pairs are compared as one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from crates.fivesafes import Severity, validate_path
from tests.reference_data import DATA
from tests.unit.crates import cases
from tests.unit.crates.conftest import (
    FIXTURE_SET,
    RESULT_FIXTURE,
    Corpus,
    Judged,
    P,
    metadata_path,
)

pytestmark = pytest.mark.oracle

FIXTURES = sorted(path.name for path in (DATA / FIXTURE_SET).iterdir() if path.is_dir())
SAME_NAMED = [
    ("6.1", "6.2"),
    ("9.0", "10.0"),
    ("17.1", "17.2"),
    ("22.1", "22.2"),
    ("23.1", "23.2"),
    ("45.0", "46.0"),
]
_CANONICAL = {P + second: P + first for first, second in SAME_NAMED}
_BLANK_NODE_NAME = re.compile(r"^n[0-9a-f]{32,34}\b")
_ANY_BASE = "file:///crate/"


def oracle_check_id(issue: dict[str, Any]) -> str:
    """The check list's id for an issue the oracle reported."""
    if issue["check"] == "5s-oracle:context-version":
        return P + "11.1"
    requirement, check = issue["check"].removeprefix(P).split(".")
    number = int(requirement)
    return f"{P}{number + 1 if number >= 11 else number}.{check}"


def _entity(text: str | None) -> str:
    if not text:
        return ""
    if text.startswith("_:"):
        return text[2:]
    return text if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", text) else urljoin(_ANY_BASE, text)


def oracle_faults(judged: Judged, severities: set[str]) -> set[tuple[str, str]]:
    return {
        (_CANONICAL.get(check, check), _entity(issue.get("entity")))
        for issue in judged.issues
        if issue["severity"] in severities
        for check in [oracle_check_id(issue)]
    }


def our_faults(path: Path, severities: set[str]) -> set[tuple[str, str]]:
    return {
        (_CANONICAL.get(issue.check, issue.check), _entity(issue.entity))
        for issue in validate_path(path).issues
        if issue.check.startswith(P) and str(issue.severity) in severities
    }


REQUIRED = {"REQUIRED"}
RECOMMENDED_UP = {"REQUIRED", "RECOMMENDED"}


def assert_agree(corpus: Corpus, name: str, severities: set[str] = REQUIRED) -> None:
    judged = (corpus.recommended if severities != REQUIRED else corpus.required)[name]
    assert judged.verdict != "ERROR", f"the oracle could not judge {name}: {judged.error}"
    ours, theirs = our_faults(corpus.paths[name], severities), oracle_faults(judged, severities)
    assert ours == theirs, (
        f"{name}: only ours {sorted(ours - theirs)}; only the oracle's {sorted(theirs - ours)}"
    )


def test_the_oracle_ids_translate_to_the_check_list(corpus: Corpus, tsv: dict[str, dict[str, str]]) -> None:
    reported = [
        issue
        for judged in [*corpus.required.values(), *corpus.recommended.values()]
        for issue in judged.issues
    ]
    assert len({issue["check"] for issue in reported}) > 30
    for issue in reported:
        row = tsv[oracle_check_id(issue)]
        assert row["severity"] == issue["severity"], issue
        if issue["check"] == "5s-oracle:context-version":
            assert row["check_name"] == issue["name"]
            continue
        assert row["requirement_name"] == issue["requirement"], issue
        if not (_BLANK_NODE_NAME.match(row["check_name"]) and _BLANK_NODE_NAME.match(issue["name"])):
            assert row["check_name"] == issue["name"], issue


def test_same_named_checks_share_requirement_and_name(tsv: dict[str, dict[str, str]]) -> None:
    for first, second in SAME_NAMED:
        one, other = tsv[P + first], tsv[P + second]
        assert (one["requirement_name"], one["check_name"]) == (
            other["requirement_name"],
            other["check_name"],
        )


def test_no_crate_relies_on_a_context_it_does_not_name(corpus: Corpus) -> None:
    for name, judged in corpus.required.items():
        if judged.unresolved_urls:
            text = metadata_path(corpus.paths[name]).read_text(encoding="utf-8")
            assert all(url.rstrip("/") in text for url in judged.unresolved_urls), name


@pytest.mark.parametrize("fixture", FIXTURES)
def test_example_crates(corpus: Corpus, fixture: str) -> None:
    assert_agree(corpus, "fixture:" + fixture)


@pytest.mark.parametrize("case", cases.REQUIRED_BREAKS, ids=lambda case: case.name)
def test_crates_breaking_one_rule(corpus: Corpus, case: cases.Case) -> None:
    name = "case:" + case.name
    assert corpus.required[name].verdict == "FAIL"
    assert case.breaks in validate_path(corpus.paths[name]).failed_checks(Severity.REQUIRED)
    assert_agree(corpus, name)


@pytest.mark.parametrize("case", cases.BENIGN, ids=lambda case: case.name)
def test_crates_changed_only_in_form(corpus: Corpus, case: cases.Case) -> None:
    name = "case:" + case.name
    assert corpus.required[name].verdict == "PASS"
    assert validate_path(corpus.paths[name]).valid
    assert_agree(corpus, name)


@pytest.mark.parametrize("case", cases.BASE_BREAKS, ids=lambda case: case.name)
def test_crates_breaking_ro_crate_essentials(corpus: Corpus, case: cases.Case) -> None:
    name = "case:" + case.name
    report = validate_path(corpus.paths[name])
    assert case.breaks in report.failed_checks(Severity.REQUIRED)
    base = {issue["name"] for issue in corpus.required[name].base_issues if issue["severity"] == "REQUIRED"}
    assert case.oracle_base in base
    assert_agree(corpus, name)


@pytest.mark.parametrize(
    "name",
    ["built:request", "writeback:reviewed-request", "writeback:released-result", "writeback:withheld-result"],
)
def test_crates_we_write_pass_the_oracle(corpus: Corpus, name: str) -> None:
    assert corpus.required[name].verdict == "PASS"
    assert validate_path(corpus.paths[name]).valid
    assert_agree(corpus, name)


@pytest.mark.parametrize(
    "name",
    ["fixture:" + RESULT_FIXTURE, "built:request", "writeback:reviewed-request", "writeback:released-result"],
)
def test_recommendations_agree(corpus: Corpus, name: str) -> None:
    assert_agree(corpus, name, RECOMMENDED_UP)


@pytest.mark.parametrize("name", ["fixture:" + RESULT_FIXTURE, "writeback:released-result"])
def test_finished_crates_pass_at_recommended(corpus: Corpus, name: str) -> None:
    assert corpus.recommended[name].verdict == "PASS"
    assert not validate_path(corpus.paths[name]).warnings

"""The validator on its own: the example crates, one-rule breaks, our extra rules, hostile input."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from crates.fivesafes import CHECKS, Severity, validate_metadata
from crates.fivesafes.validator import Report
from tests.unit.crates import cases
from tests.unit.crates.conftest import P, metadata_path

# REQUIRED failures the example crates' README records for each crate (check-list ids).
DOCUMENTED = {
    "validator-valid-five-safes-crate-request": set(),
    "validator-valid-five-safes-crate-result": set(),
    "validator-valid-five-safes-crate-multiple-context": set(),
    "validator-valid-five-safes-profile-crate": {"11.1", "12.1", "17.1", "22.1", "25.1"},
    "validator-invalid-context_single_wrong_version": {"11.1"},
    "validator-invalid-context_multiple_wrong_version": {"11.1"},
    "spec-0.4-request": {"16.2"},
    "spec-0.5-DRAFT-request": {"16.2"},
    "spec-0.4-result": {"3.1", "5.1", "20.2", "26.1", "16.2"},
    "spec-0.5-DRAFT-result": {"3.1", "5.1", "20.2", "26.1", "16.2"},
    "spec-0.4-hutch": {"1.1", "2.1", "18.1", "24.1", "3.1", "5.1", "20.2", "26.1", "19.1"},
}


def load(fixture_crates: dict[str, Path], name: str) -> dict[str, Any]:
    return json.loads(metadata_path(fixture_crates[name]).read_text(encoding="utf-8"))


def profile_failures(report: Report) -> set[str]:
    return {check.removeprefix(P) for check in report.failed_checks(Severity.REQUIRED) if check.startswith(P)}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_example_crates_fail_as_documented(fixture_crates: dict[str, Path], name: str) -> None:
    report = validate_metadata(load(fixture_crates, name))
    assert profile_failures(report) == DOCUMENTED[name]


@pytest.mark.parametrize("name", ["spec-0.4-profile-crate", "spec-0.5-DRAFT-profile-crate"])
def test_profile_crates_are_not_five_safes_crates(fixture_crates: dict[str, Path], name: str) -> None:
    report = validate_metadata(load(fixture_crates, name))
    assert {"17.1", "22.1", "25.1"} <= profile_failures(report)
    assert "5s-crate.root_id" in report.failed_checks()


def test_the_reference_result_crate_has_no_findings(result_doc: dict[str, Any]) -> None:
    report = validate_metadata(result_doc)
    assert (report.valid, report.issues, report.profile) == (True, [], "https://w3id.org/5s-crate/0.4")


def test_a_submitted_request_only_lacks_the_review_steps(fixture_crates: dict[str, Path]) -> None:
    report = validate_metadata(load(fixture_crates, "validator-valid-five-safes-crate-request"))
    assert report.valid
    assert {issue.check.removeprefix(P) for issue in report.warnings} == {
        "37.0",
        "38.0",
        "45.0",
        "50.0",
        "60.0",
    }


@pytest.mark.parametrize("case", cases.REQUIRED_BREAKS, ids=lambda case: case.name)
def test_each_one_rule_break_is_caught(result_doc: dict[str, Any], case: cases.Case) -> None:
    report = validate_metadata(case.apply(result_doc))
    assert not report.valid
    assert case.breaks in report.failed_checks()


@pytest.mark.parametrize("case", cases.BENIGN, ids=lambda case: case.name)
def test_changes_of_form_keep_a_crate_valid(result_doc: dict[str, Any], case: cases.Case) -> None:
    report = validate_metadata(case.apply(result_doc))
    assert report.valid, report.errors


@pytest.mark.parametrize("case", cases.BASE_BREAKS, ids=lambda case: case.name)
def test_ro_crate_essentials_are_checked(result_doc: dict[str, Any], case: cases.Case) -> None:
    assert case.breaks in validate_metadata(case.apply(result_doc)).failed_checks()


def _reportable(tsv: dict[str, dict[str, str]]) -> set[str]:
    """Check-list ids that can appear in a report: property checks, and node-level (SPARQL) checks."""
    with_parts = {check.rsplit(".", 1)[0] for check in tsv if not check.endswith(".0")}
    node_level = {check for check in tsv if check.endswith(".0") and check[:-2] not in with_parts}
    # These requirements have SPARQL constraints beside their property checks.
    return {c for c in tsv if not c.endswith(".0")} | node_level | {P + "24.0", P + "52.0"}


def test_the_catalogue_is_the_community_check_list(tsv: dict[str, dict[str, str]]) -> None:
    ours = {check for check in CHECKS if check.startswith(P)}
    # 6.1 and 6.2 are two shapes the community profile declares under one name for the same rule.
    assert ours == _reportable(tsv) - {P + "6.1"}
    for check in ours:
        assert str(CHECKS[check].severity) == tsv[check]["severity"], check


def test_every_required_rule_has_a_crate_that_breaks_it(tsv: dict[str, dict[str, str]]) -> None:
    required = {c for c in _reportable(tsv) if tsv[c]["severity"] == "REQUIRED"} - {P + "6.1"}
    assert required == {case.breaks for case in cases.REQUIRED_BREAKS}


# -- rules of the 5s-crate specification beyond the community profile --------------------------------------
def _edited(doc: dict[str, Any], identifier: str, **changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    cases.entity(doc, identifier).update(changes)
    return doc


def test_the_root_must_be_dot_slash(result_doc: dict[str, Any]) -> None:
    doc = json.loads(json.dumps(result_doc).replace('"./"', '"https://example.org/crates/12389/"'))
    report = validate_metadata(doc)
    assert report.failed_checks() == {"5s-crate.root_id"}
    assert report.errors[0].entity == "https://example.org/crates/12389/"


@pytest.mark.parametrize("reference", ["../fetch.txt", "../../etc/passwd", "file:///etc/passwd"])
def test_nothing_may_point_outside_the_crate(result_doc: dict[str, Any], reference: str) -> None:
    doc = _edited(result_doc, cases.RUN, object=[{"@id": "input1.txt"}, {"@id": reference}])
    doc["@graph"].append({"@id": reference, "@type": "File", "name": "outside"})
    report = validate_metadata(doc)
    assert report.failed_checks() == {"5s-crate.outside_reference"}
    assert report.errors[0].entity == reference


def test_an_entity_listed_twice_is_refused_but_read(result_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(result_doc)
    run = cases.entity(doc, cases.RUN)
    doc["@graph"].append({"@id": cases.RUN, "@type": "CreateAction", "name": run.pop("name")})
    report = validate_metadata(doc)
    assert report.failed_checks() == {"ro-crate.duplicate_id"}


def test_an_unknown_profile_version_is_reported(result_doc: dict[str, Any]) -> None:
    doc = _edited(
        result_doc,
        "./",
        conformsTo=[{"@id": "https://w3id.org/5s-crate/0.4"}, {"@id": "https://w3id.org/5s-crate/1.0"}],
    )
    report = validate_metadata(doc)
    assert report.valid
    assert [issue.check for issue in report.warnings] == ["5s-crate.profile"]


def test_an_unknown_remote_context_is_reported(result_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(result_doc)
    doc["@context"] = ["https://w3id.org/ro/crate/1.2/context", "https://example.org/my-terms.jsonld"]
    report = validate_metadata(doc)
    assert report.valid
    assert [issue.check for issue in report.warnings] == ["ro-crate.context_unknown"]


def test_profile_0_5_draft_is_accepted(fixture_crates: dict[str, Path]) -> None:
    doc = load(fixture_crates, "spec-0.5-DRAFT-request")
    doc["@graph"].append(
        {"@id": "https://ror.org/01ee9ar58", "@type": "Organization", "name": "University of Nottingham"}
    )
    report = validate_metadata(doc)
    assert report.valid
    assert report.profile == "https://w3id.org/5s-crate/0.5-DRAFT"
    assert "five-safes-crate-0.4_54.1" not in report.failed_checks(Severity.RECOMMENDED)


def test_a_0_5_draft_validation_step_may_name_its_profile(fixture_crates: dict[str, Path]) -> None:
    report = validate_metadata(load(fixture_crates, "spec-0.5-DRAFT-result"))
    assert "five-safes-crate-0.4_40.1" not in report.failed_checks(Severity.RECOMMENDED)


def test_findings_of_review_steps_without_type(fixture_crates: dict[str, Path]) -> None:
    report = validate_metadata(load(fixture_crates, "spec-0.4-result"))
    messages = [issue.message for issue in report.errors if issue.check == P + "3.1"]
    assert messages == [
        'The checksum step \'#check-f33fe90c-0c22-4c72-b299-de509028410e\' must have "@type": "AssessAction".'
    ]


# -- the report ------------------------------------------------------------------------------------------
def test_reports_are_ordered_and_json_ready(fixture_crates: dict[str, Path]) -> None:
    report = validate_metadata(load(fixture_crates, "spec-0.4-hutch"))
    severities = [issue.severity for issue in report.issues]
    assert severities == sorted(
        severities, key=[Severity.REQUIRED, Severity.RECOMMENDED, Severity.OPTIONAL].index
    )
    data = json.loads(json.dumps(report.to_dict()))
    assert data["valid"] is False
    assert len(data["errors"]) == len(report.errors) and len(data["warnings"]) == len(report.warnings)
    assert data["infos"] and data["errors"][0].keys() == {
        "check",
        "severity",
        "message",
        "entity",
        "property",
        "value",
    }


def test_every_issue_is_catalogued_and_plainly_worded(result_doc: dict[str, Any]) -> None:
    for case in cases.ALL_CASES:
        for issue in validate_metadata(case.apply(result_doc)).issues:
            assert CHECKS[issue.check].severity is issue.severity
            assert (
                issue.message.endswith(".") and "sh:" not in issue.message and "SPARQL" not in issue.message
            )


# -- hostile and malformed input -----------------------------------------------------------------------------
def _cyclic() -> dict[str, Any]:
    loop: dict[str, Any] = {"@id": "#loop", "@type": "Thing"}
    loop["about"] = loop
    return loop


MALFORMED = [
    None,
    [],
    "ro-crate",
    42,
    {},
    {"@graph": None},
    {"@graph": {"@id": "./"}},
    {"@graph": [1, "two", None, [], {"@id": 3}, {"@type": 4}]},
    {"@context": 7, "@graph": []},
    {"@context": [None, {"x": 5}, {"@vocab": 1}, {"a": {"@reverse": "b"}}], "@graph": []},
    {"@context": {"a": "b:c", "b": "a:d"}, "@graph": [{"@id": "x", "a": 1}]},
    {
        "@context": "https://w3id.org/ro/crate/1.2/context",
        "@graph": [{"@id": "./", "name": {"@value": {"x": 1}}}],
    },
    {
        "@context": "https://w3id.org/ro/crate/1.2/context",
        "@graph": [{"@id": "./", "name": {"@list": [{"@set": 1}]}}],
    },
    {"@context": "https://w3id.org/ro/crate/1.2/context", "@graph": [{"@id": "./", "about": _cyclic()}]},
    {"@context": "https://w3id.org/ro/crate/1.2/context", "@graph": [{"@id": "//[bad", "@type": "Dataset"}]},
    {
        "@context": "https://w3id.org/ro/crate/1.2/context",
        "@graph": [{"@id": "./", "@reverse": {"about": "x"}}],
    },
]


@pytest.mark.parametrize("doc", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_documents_give_issues_not_exceptions(doc: Any) -> None:
    report = validate_metadata(doc)
    assert not report.valid
    json.dumps(report.to_dict())


def test_deep_nesting_is_bounded() -> None:
    deep: dict[str, Any] = {"@id": "#0"}
    node = deep
    for level in range(1, 5000):
        node["about"] = node = {"@id": f"#{level}"}
    nested_lists: list[Any] = []
    inner = nested_lists
    for _ in range(5000):
        inner.append(inner := [])
    doc = {
        "@context": "https://w3id.org/ro/crate/1.2/context",
        "@graph": [deep, {"@id": "#l", "name": nested_lists}],
    }
    assert "ro-crate.nesting" in validate_metadata(doc).failed_checks()


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    choices = [
        lambda: None,
        lambda: rng.randint(-5, 5),
        lambda: rng.random(),
        lambda: rng.choice([True, False]),
        lambda: rng.choice(
            ["", "x", "./", "#run", "../up", "http://schema.org/CompletedActionStatus", "_:b"]
        ),
        lambda: {"@id": rng.choice(["./", "#x", "_:b", "", "https://ror.org/027m9bs27", cases.RUN])},
        lambda: {"@value": rng.choice(["v", 1, None, [], {}]), rng.choice(["@type", "@language", "x"]): "en"},
        lambda: {"@list": [_random_value(rng, depth + 1)]},
        lambda: {"@set": [_random_value(rng, depth + 1)]},
    ]
    if depth < 3:
        choices.append(lambda: [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))])
        choices.append(
            lambda: {rng.choice(["@id", "@type", "name", "about", "x"]): _random_value(rng, depth + 1)}
        )
    return rng.choice(choices)()


def test_random_corruption_never_raises(result_doc: dict[str, Any]) -> None:
    rng = random.Random(20250501)
    keys = [
        "@id",
        "@type",
        "@context",
        "name",
        "actionStatus",
        "agent",
        "mentions",
        "about",
        "object",
        "result",
    ]
    for _ in range(400):
        doc = copy.deepcopy(result_doc)
        for _ in range(rng.randint(1, 4)):
            target = rng.choice([doc, *doc["@graph"]]) if isinstance(doc.get("@graph"), list) else doc
            target[rng.choice(keys + list(target))] = _random_value(rng)
        json.dumps(validate_metadata(doc).to_dict())

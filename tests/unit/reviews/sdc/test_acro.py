"""Reading results.json defensively: unknown versions, missing fields and tampering become reviews."""

import shutil

import pytest

from reviews.sdc.acro import cells_from_outcome, is_supported_version, parse_results, read_results
from reviews.sdc.policy import ACRO_POLICY, DisclosurePolicy
from reviews.sdc.verdicts import Rule, Verdict

from .vectors import acro_config, finalise_folder


def table_record(**changes):
    record = {
        "uid": "output_0",
        "status": "fail",
        "type": "table",
        "properties": {"method": "crosstab", "mitigation": "none"},
        "files": [{"name": "t.csv", "sdc": {}}],
        "outcome": {"C1": {"R1": "ok", "R2": "MinimumThresholdCheck; "}},
        "summary": "FrequencyTable : MinimumThresholdCheck: fail - 1 cells may need suppressing.",
        "comments": [],
        "exception": "",
    }
    return {**record, **changes}


def parse(document, policy=ACRO_POLICY, config=None, **kwargs):
    return parse_results(document, policy, acro_config=config or acro_config("1.0.2"), **kwargs)


@pytest.mark.parametrize(
    ("version", "supported"),
    [
        ("1.0.2", True),
        ("1.3", True),
        ("0.4.12", True),
        ("0.4.0", True),
        ("0.3.9", False),
        ("2.0.0", False),
        ("v1", False),
        (None, False),
        (1.0, False),
    ],
)
def test_supported_versions(version, supported):
    assert is_supported_version(version) is supported


def test_unsupported_version_reviews_every_listed_file_without_using_acros_verdicts():
    acro = parse({"version": "2.0.0", "results": {"output_0": table_record(status="pass")}})
    result = acro.files["t.csv"]
    assert result.verdict is Verdict.REVIEW
    assert result.cells == ()
    assert "ACRO version '2.0.0' is not supported (0.4.x and 1.x are)" in result.flags[0].message


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "results.json is not a JSON object."),
        ({"version": "1.0.2"}, "results.json has no 'results' listing outputs."),
        ({"version": "1.0.2", "results": {}}, "results.json has no 'results' listing outputs."),
        ({"results": {"o": table_record()}}, "results.json does not say which ACRO version wrote it."),
        ({"version": "1.0.2", "results": {"o": "fail"}}, "Output 'o' is not a JSON object."),
        ({"version": "1.0.2", "results": {"o": table_record(files=[])}}, "Output 'o' lists no files"),
        (
            {"version": "1.0.2", "results": {"o": table_record(files=[{"sdc": {}}])}},
            "Output 'o' lists no files",
        ),
    ],
)
def test_problems_with_results_json_itself_are_reported(document, message):
    acro = parse(document)
    assert any(flag.message.startswith(message) for flag in acro.problems)
    problems = acro.problems_result()
    assert problems is not None and problems.verdict is Verdict.REVIEW


@pytest.mark.parametrize(
    ("status", "message"), [(None, "ACRO recorded no status"), ("approved", "ACRO status 'approved'")]
)
def test_missing_or_unknown_status_needs_review(status, message):
    record = table_record(outcome={}, **({"status": status} if status else {}))
    if status is None:
        del record["status"]
    result = parse({"version": "1.0.2", "results": {"o": record}}).files["t.csv"]
    assert result.verdict is Verdict.REVIEW
    assert any(flag.message.startswith(message) for flag in result.flags)


def test_status_is_read_case_insensitively():
    # 1.x writes "Review" for analyses its ontology does not know.
    record = table_record(status="Review", outcome={}, summary="Name of analysis not recognised in ontology")
    result = parse({"version": "1.0.2", "results": {"o": record}}).files["t.csv"]
    assert result.verdict is Verdict.REVIEW
    assert [flag.rule for flag in result.flags] == [Rule.ACRO]
    assert "Name of analysis not recognised in ontology" in result.flags[0].message


def test_flagged_cells_under_a_pass_status_need_review():
    result = parse({"version": "1.0.2", "results": {"o": table_record(status="pass")}}).files["t.csv"]
    assert result.verdict is Verdict.REVIEW
    assert result.cell("R2", "C1").verdict is Verdict.REVIEW


def test_cell_verdicts_never_exceed_acros_status():
    # ACRO lowers the status to review when it suppressed the failing cells.
    record = table_record(status="review", properties={"method": "crosstab", "mitigation": "suppress"})
    result = parse({"version": "1.0.2", "results": {"o": record}}).files["t.csv"]
    assert result.cell("R2", "C1").verdict is Verdict.REVIEW
    assert "ACRO suppressed the disclosive cells." in result.notes


def test_check_status_decides_the_cell_verdict():
    record = table_record(
        outcome={"value": {"A": "NKCheck; ", "B": "MissingCheck; "}},
        fair={"check_status": {"NKCheck": "review"}},
    )
    result = parse({"version": "1.0.2", "results": {"o": record}}).files["t.csv"]
    assert result.cell("A", "value").verdict is Verdict.REVIEW
    assert result.cell("B", "value").verdict is Verdict.REVIEW


def test_unknown_checks_in_an_outcome_need_review():
    cells, problems = cells_from_outcome({"C1": {"R1": "FancyCheck; "}})
    assert problems == ()
    (flag,) = cells[0].flags
    assert (flag.rule, flag.verdict) == (Rule.ACRO, Verdict.REVIEW)
    assert "'FancyCheck'" in flag.message


@pytest.mark.parametrize("outcome", [["ok"], {"C1": ["ok"]}, {"C1": {"R1": 3}}])
def test_malformed_outcomes_need_review(outcome):
    record = table_record(outcome=outcome)
    result = parse({"version": "1.0.2", "results": {"o": record}}).files["t.csv"]
    assert Rule.FORMAT in {flag.rule for flag in result.all_flags}
    assert result.verdict is not Verdict.PASS


def test_custom_outputs_need_a_person():
    record = table_record(
        status="review", type="custom", outcome={}, files=[{"name": "notes.pdf", "sdc": {}}]
    )
    result = parse({"version": "1.0.2", "results": {"o": record}}).files["notes.pdf"]
    assert (result.kind, result.verdict) == ("report", Verdict.REVIEW)
    assert [flag.rule for flag in result.flags] == [Rule.MANUAL]


def test_non_text_exception_and_comments_are_ignored():
    record = table_record(exception=["not", "text"], comments=["kept", 7])
    result = parse({"version": "1.0.2", "results": {"o": record}}).files["t.csv"]
    assert (result.justification, result.comments) == ("", ("kept",))


def test_a_file_listed_twice_keeps_both_verdicts():
    document = {
        "version": "1.0.2",
        "results": {"a": table_record(), "b": table_record(status="review", outcome={})},
    }
    acro = parse(document)
    assert "t.csv is listed by more than one output" in acro.problems[0].message
    assert acro.files["t.csv"].verdict is Verdict.FAIL


# ---------------------------------------------------------------------------------------------------
# Risk appetite, rounding and kinds


def test_unknown_risk_appetite_needs_review():
    acro = parse_results(
        {"version": "1.0.2", "results": {"o": table_record(status="pass", outcome={})}}, ACRO_POLICY
    )
    (flag,) = acro.files["t.csv"].flags
    assert (flag.rule, flag.verdict) == (Rule.APPETITE, Verdict.REVIEW)


def test_a_laxer_risk_appetite_than_the_policy_needs_review():
    config = {**acro_config("1.0.2"), "safe_threshold": 5, "safe_nk_k": 0.95}
    acro = parse(
        {"version": "1.0.2", "results": {"o": table_record(status="pass", outcome={})}}, config=config
    )
    (flag,) = acro.files["t.csv"].flags
    assert flag.rule is Rule.APPETITE
    assert "safe_threshold 5 (policy 10)" in flag.message
    assert "safe_nk_k 0.95 (policy 0.9)" in flag.message


def test_a_stricter_risk_appetite_than_the_policy_is_fine():
    config = {**acro_config("1.0.2"), "safe_threshold": 20}
    acro = parse(
        {"version": "1.0.2", "results": {"o": table_record(status="pass", outcome={})}}, config=config
    )
    assert acro.files["t.csv"].verdict is Verdict.PASS


def test_an_invalid_risk_appetite_needs_review():
    acro = parse(
        {"version": "1.0.2", "results": {"o": table_record(status="pass", outcome={})}},
        config={"safe_threshold": -1},
    )
    assert "config.json is not a valid ACRO risk appetite" in acro.files["t.csv"].flags[0].message


def test_a_rounding_policy_needs_acros_rounding():
    policy = ACRO_POLICY.with_overrides({"rounding_base": 5})
    unrounded = parse({"version": "1.0.2", "results": {"o": table_record(status="pass", outcome={})}}, policy)
    assert [flag.rule for flag in unrounded.files["t.csv"].flags] == [Rule.ROUNDING]
    rounded = table_record(status="review", outcome={}, properties={"mitigation": "round", "round_base": 10})
    result = parse({"version": "1.0.2", "results": {"o": rounded}}, policy).files["t.csv"]
    assert Rule.ROUNDING not in {flag.rule for flag in result.flags}


def test_kinds_the_policy_does_not_permit_fail():
    policy = ACRO_POLICY.with_overrides({"permitted_output_kinds": ["table"]})
    acro = read_results(finalise_folder("1.0.2") / "results.json", policy)
    assert acro.files["output_5_0.csv"].verdict is Verdict.FAIL
    assert Rule.KIND in {flag.rule for flag in acro.files["output_5_0.csv"].flags}
    assert acro.files["output_0_0.csv"].verdict is Verdict.FAIL  # by ACRO, not by kind
    assert Rule.KIND not in {flag.rule for flag in acro.files["output_0_0.csv"].flags}


# ---------------------------------------------------------------------------------------------------
# The folder: values, presence and checksums


def test_cell_values_come_from_the_published_file():
    acro = read_results(finalise_folder("1.0.2") / "results.json", ACRO_POLICY)
    assert acro.files["output_0_0.csv"].cell("R1", "C3").value == "9"


def test_files_changed_since_acro_checked_them_need_review(tmp_path):
    folder = shutil.copytree(finalise_folder("1.0.2"), tmp_path / "out")
    (folder / "output_5_0.csv").write_text("edited\n")
    acro = read_results(folder / "results.json", ACRO_POLICY)
    result = acro.files["output_5_0.csv"]
    assert result.verdict is Verdict.REVIEW
    assert [flag.rule for flag in result.flags] == [Rule.INTEGRITY]
    assert "has changed since ACRO checked it" in result.flags[0].message
    assert acro.files["output_5_1.csv"].verdict is Verdict.PASS


def test_listed_files_missing_from_the_folder_need_review(tmp_path):
    folder = shutil.copytree(finalise_folder("1.0.2"), tmp_path / "out")
    (folder / "output_5_1.csv").unlink()
    (folder / "checksums" / "output_5_2.csv.txt").unlink()
    acro = read_results(folder / "results.json", ACRO_POLICY)
    assert (
        "results.json lists output_5_1.csv but it is not in the folder"
        in acro.files["output_5_1.csv"].flags[0].message
    )
    assert acro.files["output_5_2.csv"].verdict is Verdict.PASS
    assert "No checksum recorded by ACRO for output_5_2.csv." in acro.files["output_5_2.csv"].notes


def test_names_leaving_the_folder_need_review(tmp_path):
    document = {
        "version": "1.0.2",
        "results": {"o": table_record(status="pass", outcome={}, files=[{"name": "../x.csv"}])},
    }
    acro = parse(document, folder=tmp_path)
    assert "points outside the ACRO folder" in acro.files["../x.csv"].flags[0].message


def test_missing_config_json_needs_review(tmp_path):
    folder = shutil.copytree(finalise_folder("0.4.12"), tmp_path / "out")
    (folder / "config.json").unlink()
    acro = read_results(folder / "results.json", ACRO_POLICY)
    assert acro.files["output_5_0.csv"].verdict is Verdict.REVIEW
    assert acro.files["output_5_0.csv"].flags[0].rule is Rule.APPETITE


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "results.json is not valid JSON: Expecting property name"),
        (b"\xff\xfe", "results.json is not UTF-8"),
    ],
)
def test_unreadable_results_json_needs_review(tmp_path, content, message):
    path = tmp_path / "results.json"
    path.write_bytes(content)
    acro = read_results(path, ACRO_POLICY)
    assert acro.files == {}
    assert acro.problems[0].message.startswith(message)


def test_the_portal_default_policy_accepts_acros_default_appetite():
    # ACRO's defaults are at least as strict as the portal's, so no appetite flag is raised.
    acro = read_results(finalise_folder("1.0.2") / "results.json", DisclosurePolicy())
    assert all(Rule.APPETITE not in {flag.rule for flag in result.flags} for result in acro.files.values())

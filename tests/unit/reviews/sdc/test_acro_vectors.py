"""ACRO's own verdicts on the shared test vectors, reproduced cell by cell.

Two routes for every vector: running the portal's checks on the raw inputs with ACRO's risk appetite,
and reading the results.json ACRO wrote (1.0.2 and 0.4.12). The expectations come from ACRO's outputs
(expected_verdicts.json, results.json, outcome CSVs), translated only through the check-name mapping.
"""

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest

from reviews.sdc.acro import ACRO_CHECK_RULES, parse_results, read_results
from reviews.sdc.checks import check_degrees_of_freedom, check_file, residual_degrees_of_freedom
from reviews.sdc.policy import DisclosurePolicy
from reviews.sdc.verdicts import Rule, Verdict, worst

from .vectors import (
    ACRO_TEST_DATA,
    INPUTS,
    VERSIONS,
    acro_config,
    acro_policy,
    check_names,
    expected,
    expected_rules,
    finalise_folder,
    flagged_positions,
    outcome_cells,
    read_outcome_csv,
)

# Which raw input each tabular vector was computed from, how ACRO aggregated it, and the risk-appetite
# changes the fixture README records for that run.
RAW_TABLE_VECTORS = {
    "v1_crosstab_count": ("v1_frequency_microdata.csv", "count", {}),
    "v1_crosstab_count_zeros_not_disclosive": (
        "v1_frequency_microdata.csv",
        "count",
        {"zeros_disclosive": False},
    ),
    "v2_pivot_sum": ("v2_magnitude_contributions.csv", "sum", {}),
    "v2_pivot_mean": ("v2_magnitude_contributions.csv", "mean", {}),
    "v3_pivot_sum_negative": ("v3_magnitude_with_negative.csv", "sum", {}),
    "v5_pivot_sum_negative_only": ("v5_magnitude_negative_only.csv", "sum", {}),
    "v6_pivot_mean_missing_checkon": (
        "v6_magnitude_with_missing.csv",
        "mean",
        {"check_missing_values": True},
    ),
}
# Where the portal departs from ACRO on purpose (docs/sdc.md, "Where the portal differs from ACRO"):
# when zeros are not disclosive a zero count is no one and passes, where ACRO 1.0.2 still fails it on
# the threshold (its own histograms already leave empty bins out of the threshold check).
ZEROS_PASS = {"v1_crosstab_count_zeros_not_disclosive"}


def portal_rules(name, cell, text):
    rules = expected_rules(text)
    if name in ZEROS_PASS and cell.value == "0":
        rules = rules - {Rule.THRESHOLD}
    return rules


RAW_MODEL_VECTORS = {"v4_ols_n13": "v4_regression_n13.csv", "v4_ols_n14": "v4_regression_n14.csv"}
SUPPRESSED_VECTORS = ("v1_crosstab_count_suppressed", "v2_pivot_sum_suppressed")
# The outputs of the finalise() runs, in the order the README lists the calls.
FINALISED = {
    "output_0": "v1_crosstab_count",
    "output_1": "v2_pivot_sum",
    "output_2": "v2_pivot_mean",
    "output_3": "v3_pivot_sum_negative",
    "output_4": "v4_ols_n13",
    "output_5": "v4_ols_n14",
}
# Vectors ACRO produced outside finalise(), so absent from results.json; their config changes in ACRO's terms.
UNFINALISED = {
    "v5_pivot_sum_negative_only": {},
    "v6_pivot_mean_missing_checkon": {"check_missing_values": True},
    "v1_crosstab_count_zeros_not_disclosive": {"zeros_are_disclosive": False},
    "v1_crosstab_count_suppressed": {},
    "v2_pivot_sum_suppressed": {},
}


def test_every_vector_is_covered():
    covered = set(RAW_TABLE_VECTORS) | set(RAW_MODEL_VECTORS) | set(SUPPRESSED_VECTORS)
    for version in VERSIONS:
        assert set(expected(version)) == covered
        assert set(FINALISED.values()) | set(UNFINALISED) == covered


def test_check_names_map_to_the_rules_they_implement():
    assert ACRO_CHECK_RULES["MinimumThresholdCheck"] is ACRO_CHECK_RULES["threshold"] is Rule.THRESHOLD
    assert ACRO_CHECK_RULES["NKCheck"] is ACRO_CHECK_RULES["nk-rule"] is Rule.DOMINANCE
    assert ACRO_CHECK_RULES["PPercentCheck"] is ACRO_CHECK_RULES["p-ratio"] is Rule.P_RATIO
    assert ACRO_CHECK_RULES["PresenceOfZeroCheck"] is Rule.ZEROS
    assert ACRO_CHECK_RULES["MissingCheck"] is ACRO_CHECK_RULES["missing"] is Rule.MISSING
    assert ACRO_CHECK_RULES["negative"] is Rule.NEGATIVE
    assert ACRO_CHECK_RULES["MinimumDoFCheck"] is Rule.DOF


# ---------------------------------------------------------------------------------------------------
# From the raw inputs, with ACRO 1.0.2's risk appetite


@pytest.mark.parametrize("name", sorted(RAW_TABLE_VECTORS))
def test_raw_input_reproduces_acro_1_cell_by_cell(name):
    filename, _, overrides = RAW_TABLE_VECTORS[name]
    vector = expected("1.0.2")[name]
    result = check_file(INPUTS / filename, acro_policy("1.0.2", **overrides))

    wanted = outcome_cells(vector["outcome"])
    assert {(cell.row[0], cell.column) for cell in result.cells} == set(wanted)
    for (row, column), text in wanted.items():
        cell = result.cell(row, column)
        assert cell.rules == portal_rules(name, cell, text), (row, column, text)
    assert worst(cell.verdict for cell in result.cells) == Verdict(vector["status"])


@pytest.mark.parametrize(
    "name", sorted(name for name in RAW_TABLE_VECTORS if "sdc" in expected("1.0.2")[name])
)
def test_raw_input_flags_the_positions_acro_lists(name):
    filename, _, overrides = RAW_TABLE_VECTORS[name]
    result = check_file(INPUTS / filename, acro_policy("1.0.2", **overrides))
    for check, positions in expected("1.0.2")[name]["sdc"]["cells"].items():
        if check in ACRO_CHECK_RULES:
            rule = ACRO_CHECK_RULES[check]
            wanted = {
                tuple(p)
                for p in positions
                if not (
                    name in ZEROS_PASS
                    and rule is Rule.THRESHOLD
                    and any(c.position == tuple(p) and c.value == "0" for c in result.cells)
                )
            }
            assert flagged_positions(result, rule) == wanted, check


@pytest.mark.parametrize(
    "name",
    sorted(
        name
        for name, (_, how, _) in RAW_TABLE_VECTORS.items()
        if how in ("count", "sum") and "table" in expected("1.0.2")[name]
    ),
)
def test_raw_input_tabulates_the_values_acro_published(name):
    filename, _, overrides = RAW_TABLE_VECTORS[name]
    result = check_file(INPUTS / filename, acro_policy("1.0.2", **overrides))
    for (row, column), value in outcome_cells(expected("1.0.2")[name]["table"]).items():
        assert Decimal(result.cell(row, column).value) == Decimal(str(value)), (row, column)


@pytest.mark.parametrize(
    "name", ["v1_crosstab_count", "v2_pivot_sum", "v3_pivot_sum_negative", "v6_pivot_mean_missing_checkon"]
)
def test_row_level_inputs_are_never_passed_as_they_are(name):
    filename, _, overrides = RAW_TABLE_VECTORS[name]
    result = check_file(INPUTS / filename, acro_policy("1.0.2", **overrides))
    assert Rule.MANUAL in {flag.rule for flag in result.flags}
    assert result.verdict == worst([Verdict.REVIEW, *(cell.verdict for cell in result.cells)])


@pytest.mark.parametrize("name", sorted(RAW_MODEL_VECTORS))
def test_raw_regression_data_reproduces_acro_dof_verdict(name):
    with (INPUTS / RAW_MODEL_VECTORS[name]).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    dof = residual_degrees_of_freedom([[row["x1"], row["x2"], row["x3"]] for row in rows])
    for version in VERSIONS:
        vector = expected(version)[name]
        assert dof == vector["properties"]["dof"]
        flag = check_degrees_of_freedom(dof, acro_policy(version))
        assert (flag.verdict if flag else Verdict.PASS) == Verdict(vector["status"])


# ---------------------------------------------------------------------------------------------------
# From the raw inputs, against ACRO 0.4.12


def _cell_verdict_04(text: str, rules=None) -> Verdict:
    rules = expected_rules(text) if rules is None else rules
    if not rules:
        return Verdict.PASS
    return Verdict.REVIEW if rules <= {Rule.NEGATIVE, Rule.MISSING} else Verdict.FAIL


@pytest.mark.parametrize(
    "name", sorted(name for name in RAW_TABLE_VECTORS if name != "v3_pivot_sum_negative")
)
def test_raw_input_agrees_with_acro_0_4_cell_verdicts(name):
    filename, _, overrides = RAW_TABLE_VECTORS[name]
    vector = expected("0.4.12")[name]
    result = check_file(INPUTS / filename, acro_policy("1.0.2", **overrides))
    for (row, column), text in outcome_cells(vector["outcome"]).items():
        cell = result.cell(row, column)
        assert cell.verdict == _cell_verdict_04(text, portal_rules(name, cell, text)), (row, column, text)
    assert worst(cell.verdict for cell in result.cells) == Verdict(vector["status"])


def test_negative_contributions_follow_acro_1_not_0_4():
    # 0.4.x made a table with any negative value "review" and reported nothing else; 1.x, which the
    # portal follows, still applies the threshold to every cell.
    old = outcome_cells(expected("0.4.12")["v3_pivot_sum_negative"]["outcome"])
    new = outcome_cells(expected("1.0.2")["v3_pivot_sum_negative"]["outcome"])
    result = check_file(INPUTS / "v3_magnitude_with_negative.csv", acro_policy("1.0.2"))
    threshold_cells = {key for key, text in new.items() if Rule.THRESHOLD in expected_rules(text)}
    assert threshold_cells and all(old[key] == "" for key in threshold_cells)
    assert all(result.cell(*key).verdict is Verdict.FAIL for key in threshold_cells)
    negative = {key for key, text in old.items() if text == "negative"}
    assert all(result.cell(*key).verdict is Verdict.REVIEW for key in negative)


# ---------------------------------------------------------------------------------------------------
# ACRO's cross-check on its own test data


def test_count_table_reproduces_acro_threshold_cells_in_both_versions():
    result = check_file(
        ACRO_TEST_DATA / "acro-1.0.2_acro_testdata_year_by_granttype_counts.csv", acro_policy("1.0.2")
    )
    ours = {(cell.row[0], cell.column): cell.rules for cell in result.cells}
    for version in VERSIONS:
        outcome = read_outcome_csv(
            ACRO_TEST_DATA / f"acro-{version}_acro_testdata_year_by_granttype_counts_outcome.csv"
        )
        assert set(outcome) == set(ours)
        assert {key: expected_rules(text) for key, text in outcome.items()} == ours


def test_mean_table_threshold_is_the_count_tables_in_acro_1():
    # 1.x counts records per cell for a mean table's threshold, which is exactly the count table's
    # threshold; 0.4.x counted non-missing values, so it can only flag more cells.
    counts = check_file(
        ACRO_TEST_DATA / "acro-1.0.2_acro_testdata_year_by_granttype_counts.csv", acro_policy("1.0.2")
    )
    ours = {(cell.row[0], cell.column) for cell in counts.cells if Rule.THRESHOLD in cell.rules}

    def threshold_cells(version):
        path = ACRO_TEST_DATA / f"acro-{version}_acro_testdata_year_by_granttype_mean_incgrants_outcome.csv"
        return {key for key, text in read_outcome_csv(path).items() if Rule.THRESHOLD in expected_rules(text)}

    assert threshold_cells("1.0.2") == ours
    assert threshold_cells("0.4.12") > ours


def test_mean_table_without_contributions_is_left_to_a_person():
    result = check_file(
        ACRO_TEST_DATA / "acro-1.0.2_acro_testdata_year_by_granttype_mean_incgrants.csv", acro_policy("1.0.2")
    )
    assert result.verdict is Verdict.REVIEW
    assert result.cells == ()
    assert [flag.rule for flag in result.flags] == [Rule.MANUAL]


# ---------------------------------------------------------------------------------------------------
# From the results.json ACRO wrote


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("uid", sorted(FINALISED))
def test_results_json_reproduces_acro_verdicts(version, uid):
    record = json.loads((finalise_folder(version) / "results.json").read_text())["results"][uid]
    vector = expected(version)[FINALISED[uid]]
    acro = read_results(finalise_folder(version) / "results.json", acro_policy(version))
    assert acro.problems == ()

    names = [entry["name"] for entry in record["files"]]
    for name in names:
        result = acro.files[name]
        assert result.verdict == Verdict(vector["status"]), name
        assert result.source == f"ACRO {version}"

    table = acro.files[names[0]]
    wanted = outcome_cells(vector["outcome"] or {})
    assert {(cell.row[0], cell.column) for cell in table.cells} == set(wanted)
    for (row, column), text in wanted.items():
        assert table.cell(row, column).rules == expected_rules(text), (row, column, text)
    reported = {name for text in wanted.values() for name in check_names(text)}
    for check, positions in (vector["sdc"].get("cells") or {}).items():
        if check in reported:
            assert flagged_positions(table, ACRO_CHECK_RULES[check]) == {tuple(p) for p in positions}, check


@pytest.mark.parametrize("version", VERSIONS)
def test_results_json_keeps_researcher_justification_and_comments(version):
    document = json.loads((finalise_folder(version) / "results.json").read_text())
    acro = read_results(finalise_folder(version) / "results.json", acro_policy(version))
    for record in document["results"].values():
        for entry in record["files"]:
            result = acro.files[entry["name"]]
            assert result.justification == record["exception"]
            assert result.comments == tuple(record["comments"])
    assert acro.files["output_0_0.csv"].justification.startswith(
        "Cells R1/C3 (9) and R2/C1 (1) are structural"
    )


def test_results_json_marks_acro_session_summaries_for_review():
    acro = read_results(finalise_folder("1.0.2") / "results.json", acro_policy("1.0.2"))
    for name in ("session_summary.json", "session_summary.csv"):
        result = acro.files[name]
        assert result.verdict is Verdict.REVIEW
        assert any("DO NOT RELEASE" in comment for comment in result.comments)


def test_results_json_reports_dominance_with_negatives_as_review():
    acro = read_results(finalise_folder("1.0.2") / "results.json", acro_policy("1.0.2"))
    cell = acro.files["output_3_0.csv"].cell("A_ok", "value")
    assert cell.rules == {Rule.DOMINANCE, Rule.P_RATIO}
    assert cell.verdict is Verdict.REVIEW


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(UNFINALISED))
def test_acro_records_of_every_other_vector_map_to_its_verdict(version, name):
    vector = expected(version)[name]
    config = {**acro_config(version), **UNFINALISED[name]}
    record = {
        "uid": name,
        "status": vector["status"],
        "type": "table",
        "files": [{"name": f"{name}.csv", "sdc": vector.get("sdc", {})}],
        "outcome": vector.get("outcome", {}),
        "summary": vector.get("summary", ""),
        "exception": vector.get("exception", ""),
        "comments": [],
    }
    acro = parse_results(
        {"version": version, "results": {name: record}},
        DisclosurePolicy.from_acro_config(config),
        acro_config=config,
    )
    result = acro.files[f"{name}.csv"]
    assert result.verdict == Verdict(vector["status"])
    assert result.justification == vector.get("exception", "")
    for (row, column), text in outcome_cells(vector.get("outcome", {})).items():
        assert result.cell(row, column).rules == expected_rules(text)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", SUPPRESSED_VECTORS)
def test_suppressed_tables_acro_released_need_review(version, name, tmp_path: Path):
    vector = expected(version)[name]
    columns = list(vector["table"])
    rows = list(vector["table"][columns[0]])
    path = tmp_path / f"{name}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["", *columns])
        for row in rows:
            writer.writerow(
                [row, *("" if vector["table"][c][row] is None else vector["table"][c][row] for c in columns)]
            )
    result = check_file(path, acro_policy(version))
    assert result.verdict == Verdict(vector["status"])
    suppressed = {
        (row, column) for (row, column), value in outcome_cells(vector["table"]).items() if value is None
    }
    checked = {(cell.row[0], cell.column) for cell in result.cells if Rule.SUPPRESSED in cell.rules}
    # Count tables flag each suppressed cell; a magnitude table is left to a person as a whole.
    assert checked == (suppressed if result.cells else set())

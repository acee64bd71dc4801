from decimal import Decimal
from fractions import Fraction

import pytest

from reviews.sdc.checks import (
    Contributions,
    check_contributions,
    check_counts,
    check_degrees_of_freedom,
    check_file,
    check_table_bytes,
    kind_for,
    residual_degrees_of_freedom,
)
from reviews.sdc.policy import ACRO_POLICY, DEFAULT_POLICY, DisclosurePolicy
from reviews.sdc.verdicts import Rule, Verdict

from .vectors import finalise_folder


def one_count(count, policy=DEFAULT_POLICY):
    (cell,) = check_counts([(("R1",), "C1", count)], policy)
    return cell


def one_cell(values, policy=DEFAULT_POLICY):
    group = Contributions(
        ("A",), "value", tuple(None if v is None else Fraction(str(v)) for v in values), (0, 0)
    )
    (cells, notes) = check_contributions([group], policy)
    return cells[0], notes


# ---------------------------------------------------------------------------------------------------
# Threshold, zeros, rounding


@pytest.mark.parametrize(("count", "verdict"), [(9, Verdict.FAIL), (10, Verdict.PASS), (11, Verdict.PASS)])
def test_threshold_boundary(count, verdict):
    cell = one_count(count)
    assert cell.verdict is verdict
    assert cell.rules == ({Rule.THRESHOLD} if verdict is Verdict.FAIL else set())


def test_threshold_follows_the_policy():
    assert one_count(15, DisclosurePolicy(min_cell_count=20)).rules == {Rule.THRESHOLD}
    assert one_count(20, DisclosurePolicy(min_cell_count=20)).verdict is Verdict.PASS


def test_zero_fails_the_zeros_rule_only_when_zeros_are_disclosive():
    assert one_count(0, DisclosurePolicy(zeros_disclosive=True)).rules == {Rule.ZEROS, Rule.THRESHOLD}
    # Zeros as the policy says: when they are not disclosive a zero is no one, and passes.
    assert one_count(0, DisclosurePolicy(zeros_disclosive=False)).verdict is Verdict.PASS
    assert one_count(0, DisclosurePolicy(zeros_disclosive=False, min_cell_count=1)).verdict is Verdict.PASS
    assert one_count(0, DisclosurePolicy(zeros_disclosive=True, min_cell_count=1)).rules == {
        Rule.ZEROS,
        Rule.THRESHOLD,
    }


def test_zeros_rule_ignores_non_zero_counts():
    assert one_count(12, DisclosurePolicy(zeros_disclosive=True)).verdict is Verdict.PASS


@pytest.mark.parametrize(("count", "rules"), [(10, set()), (12, {Rule.ROUNDING}), (15, set()), (0, set())])
def test_rounding_requires_multiples_of_the_base(count, rules):
    assert one_count(count, DisclosurePolicy(rounding_base=5)).rules == rules


def test_no_rounding_base_means_no_rounding_rule():
    assert one_count(13).verdict is Verdict.PASS


def test_negative_and_absent_counts_need_review():
    assert one_count(-3).rules == {Rule.NEGATIVE}
    assert one_count(-3).verdict is Verdict.REVIEW
    assert one_count(None).rules == {Rule.SUPPRESSED}
    assert one_count(None).verdict is Verdict.REVIEW


def test_count_flags_name_the_cell_and_value():
    cell = one_count(Decimal("9"))
    (flag,) = cell.flags
    assert (flag.row, flag.column, flag.value, flag.position) == (("R1",), "C1", "9", (0, 0))
    assert flag.message == "9 is below the minimum cell count of 10."


def test_positions_follow_first_appearance_of_labels():
    cells = check_counts(
        [(("a",), "x", 10), (("a",), "y", 10), (("b",), "x", 10), (("b",), "y", 10)], DEFAULT_POLICY
    )
    assert [cell.position for cell in cells] == [(0, 0), (0, 1), (1, 0), (1, 1)]


# ---------------------------------------------------------------------------------------------------
# Dominance (n, k) and p-ratio


def test_dominance_at_exactly_k_fails():
    # 450 + 450 = 900 of 1000: exactly 0.9 of the total, and ACRO fails a share >= k.
    cell, _ = one_cell([450, 450] + [12.5] * 8)
    assert Rule.DOMINANCE in cell.rules


def test_dominance_just_below_k_passes():
    cell, _ = one_cell([450, 449] + [12.625] * 8)
    assert cell.rules == set()


def test_dominance_at_exactly_k_is_judged_exactly_where_floats_fall_short():
    values = ["14.94", "14.94", "0.09", "0.03", "0.84", "0.43", "0.76", "0.0", "0.45", "0.72"]
    floats = sorted((float(v) for v in values), reverse=True)
    assert sum(floats[:2]) / sum(floats) < 0.9  # binary floating point misses the boundary
    cell, _ = one_cell(values)
    assert Rule.DOMINANCE in cell.rules


def test_dominance_n_sums_that_many_contributions():
    values = [400, 300, 250] + [5] * 10
    assert one_cell(values)[0].rules == set()
    assert one_cell(values, DisclosurePolicy(dominance_n=3))[0].rules == {Rule.DOMINANCE}


def test_dominance_k_follows_the_policy():
    values = [450, 400] + [15] * 10
    assert one_cell(values)[0].rules == set()
    assert Rule.DOMINANCE in one_cell(values, DisclosurePolicy(dominance_k=Decimal("0.8")))[0].rules


@pytest.mark.parametrize(("rest", "fails"), [(100, False), (99, True)])
def test_p_ratio_boundary(rest, fails):
    # (total - x1 - x2) / x1 = rest / 1000; 0.1 passes (not < 0.1) while 0.099 fails.
    cell, _ = one_cell([1000, 1000] + [Fraction(rest, 10)] * 10)
    assert (Rule.P_RATIO in cell.rules) is fails


def test_p_ratio_fails_a_single_contributor():
    cell, _ = one_cell([5000])
    assert cell.rules == {Rule.THRESHOLD, Rule.DOMINANCE, Rule.P_RATIO}


def test_all_zero_contributions_fail_p_ratio_as_acro_computes_it():
    # ACRO keeps total - x1 - x2 (= 0) when x1 is 0, so p = 0 fails; the share 0/0 fails nothing.
    cell, _ = one_cell([0] * 10)
    assert cell.rules == {Rule.P_RATIO}


def test_a_p_ratio_of_zero_fails_nothing():
    cell, _ = one_cell([0] * 10, DisclosurePolicy(p_ratio=0))
    assert cell.rules == set()


def test_value_is_the_cells_total():
    cell, _ = one_cell([100] * 12)
    assert cell.value == "1200"


# ---------------------------------------------------------------------------------------------------
# Negative and missing contributions


def test_negatives_make_dominance_undefined_for_the_whole_table():
    groups = [
        Contributions(("A",), "value", tuple(Fraction(v) for v in [-50] + [100] * 11), (0, 0)),
        Contributions(("B",), "value", tuple(Fraction(v) for v in [1000, 1000] + [10] * 10), (1, 0)),
        Contributions(("D",), "value", tuple(Fraction(100) for _ in range(9)), (2, 0)),
    ]
    (a, b, d), notes = check_contributions(groups, DEFAULT_POLICY)
    assert a.rules == {Rule.DOMINANCE, Rule.P_RATIO}
    assert a.verdict is Verdict.REVIEW
    assert b.rules == set()  # dominated, but not assessed once any value is negative (as ACRO 1.x)
    assert d.rules == {Rule.THRESHOLD}
    assert any("negative" in note for note in notes)


def test_missing_values_are_reviewed_only_when_the_policy_checks_them():
    values = [None] + [100] * 11
    checked, _ = one_cell(values, DisclosurePolicy(check_missing_values=True))
    assert checked.rules == {Rule.MISSING}
    assert checked.verdict is Verdict.REVIEW
    ignored, notes = one_cell(values)
    assert ignored.rules == set()
    assert notes == ("1 missing contribution(s) were ignored (the policy does not check missing values).",)


def test_records_with_missing_values_still_count_towards_the_threshold():
    cell, _ = one_cell([None] + [100] * 9)
    assert Rule.THRESHOLD not in cell.rules


def test_a_cell_of_only_missing_values_is_not_assessed_for_dominance():
    cell, _ = one_cell([None] * 10)
    assert cell.rules == set()


# ---------------------------------------------------------------------------------------------------
# Degrees of freedom


@pytest.mark.parametrize(("dof", "fails"), [(9, True), (10, False), (Decimal("9.0"), True), (11, False)])
def test_dof_boundary(dof, fails):
    flag = check_degrees_of_freedom(dof, ACRO_POLICY)
    assert (flag is not None) is fails
    if flag:
        assert (flag.rule, flag.verdict) == (Rule.DOF, Verdict.FAIL)


def test_residual_dof_is_observations_minus_rank():
    design = [[1, 2], [2, 4], [3, 6], [4, 9], [5, 1]]
    # The second regressor is not a multiple of the first in every row, so the rank is 3 with a constant.
    assert residual_degrees_of_freedom(design) == 2
    assert residual_degrees_of_freedom(design, add_constant=False) == 3
    collinear = [[1, 2], [2, 4], [3, 6], [4, 8]]
    assert residual_degrees_of_freedom(collinear) == 2


def test_model_summary_csv_is_checked_for_dof():
    failing = check_file(finalise_folder("1.0.2") / "output_4_0.csv", ACRO_POLICY)
    assert failing.kind == "model"
    assert [(flag.rule, flag.verdict, flag.value) for flag in failing.flags] == [
        (Rule.DOF, Verdict.FAIL, "9")
    ]
    assert check_file(finalise_folder("1.0.2") / "output_5_0.csv", ACRO_POLICY).verdict is Verdict.PASS


def test_model_summary_without_dof_and_coefficients_need_review():
    for name in ("output_4_1.csv", "output_4_2.csv"):
        result = check_file(finalise_folder("1.0.2") / name, ACRO_POLICY)
        assert result.verdict is Verdict.REVIEW
        assert [flag.rule for flag in result.flags] == [Rule.MANUAL]


# ---------------------------------------------------------------------------------------------------
# Kinds of file


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("t.csv", "table"),
        ("plot.PNG", "figure"),
        ("paper.pdf", "report"),
        ("fit.rds", "model"),
        ("run.log", "code"),
        ("blob.xyz", "other"),
    ],
)
def test_kind_by_extension(name, kind):
    assert kind_for(name) == kind


def test_files_without_an_automatic_check_need_review(tmp_path):
    path = tmp_path / "figure.png"
    path.write_bytes(b"\x89PNG\r\n")
    result = check_file(path, DEFAULT_POLICY)
    assert (result.kind, result.verdict) == ("figure", Verdict.REVIEW)
    assert [flag.rule for flag in result.flags] == [Rule.MANUAL]


def test_kinds_the_policy_does_not_permit_fail(tmp_path):
    path = tmp_path / "figure.png"
    path.write_bytes(b"\x89PNG\r\n")
    policy = DisclosurePolicy(permitted_output_kinds=frozenset({"table"}))
    result = check_file(path, policy)
    assert result.verdict is Verdict.FAIL
    assert Rule.KIND in {flag.rule for flag in result.flags}
    table = check_table_bytes(b"group,n\na,12\n", policy, path="t.csv")
    assert table.verdict is Verdict.PASS


def test_unrecognised_files_need_review(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"\x00\x01")
    result = check_file(path, DisclosurePolicy(permitted_output_kinds=frozenset()))
    assert (result.kind, result.verdict) == ("other", Verdict.REVIEW)


def test_every_result_records_the_policy_version(tmp_path):
    policy = DisclosurePolicy(min_cell_count=7)
    assert check_table_bytes(b"g,n\na,12\n", policy, path="t.csv").policy_version == policy.version

"""Issue 16: a table's shape is never guessed silently, zeros follow the policy, bad input gets a verdict.

Every table here is real bytes checked by `check_table_bytes` (what `sdc_check`, the portal's output
checks and the combination all call).
"""

import time

import pytest

from reviews.sdc.checks import check_table_bytes
from reviews.sdc.policy import DisclosurePolicy
from reviews.sdc.verdicts import Rule, Verdict

ZEROS_SAFE = DisclosurePolicy(zeros_disclosive=False)
ZEROS_DISCLOSIVE = DisclosurePolicy(zeros_disclosive=True)

# The demo workflow's table (agent/demo_workflows/age_sex_table): every band for every sex, zeros included.
DEMO = (
    b"age_band,sex,persons\n"
    b"0-9,female,52\n0-9,male,48\n0-9,other,0\n"
    b"10-19,female,61\n10-19,male,57\n10-19,other,0\n"
    b"90+,female,12\n90+,male,3\n90+,other,0\n"
)


def check(data, policy=ZEROS_SAFE, **kwargs):
    return check_table_bytes(data, policy, path="t.csv", **kwargs)


# --- Part 1: readings ------------------------------------------------------------------------------


def test_a_count_table_without_labels_fails_on_its_small_count():
    result = check(b"under_18,adult,over_65\n12,240,33\n1,198,27\n")
    assert result.verdict is Verdict.FAIL
    (flag,) = result.all_flags
    assert (flag.rule, flag.column, flag.value, flag.field) == (Rule.THRESHOLD, "under_18", "1", 0)
    assert any("can be read in 2 ways" in note and "strictest" in note for note in result.notes)


def test_a_numeric_first_column_read_as_labels_or_counts_keeps_the_strictest():
    # A year column is a label; a small number in that column would be a count in the other reading.
    passing = check(b"year,A,B\n2010,15,59\n2011,15,80\n")
    assert passing.verdict is Verdict.PASS
    failing = check(b"code,A,B\n1,15,59\n2,15,80\n")
    assert failing.verdict is Verdict.FAIL
    assert {flag.value for flag in failing.all_flags} == {"1", "2"}


def test_numeric_labels_join_text_labels_only_while_rows_repeat():
    result = check(b"year,sex,persons\n2010,female,15\n2010,male,7\n2011,female,20\n2011,male,30\n")
    assert result.verdict is Verdict.FAIL
    assert result.cell(("2010", "male"), "persons").rules == {Rule.THRESHOLD}


def test_a_repeated_text_label_is_not_explained_away_by_a_count_column():
    result = check(b"row,C1,C2\nR1,10,12\nR1,12,14\n")
    assert result.verdict is Verdict.REVIEW
    assert "appears twice" in result.flags[0].message


def test_text_columns_are_labels_wherever_they_stand():
    result = check(b"n,sex\n12,female\n3,male\n")
    assert result.verdict is Verdict.FAIL
    assert result.cell(("male",), "n").rules == {Rule.THRESHOLD}


def test_a_declared_shape_settles_the_reading():
    data = b"code,A,B\n1,15,59\n2,15,80\n"
    declared = {"labels": ["code"], "counts": ["A", "B"]}
    result = check(data, declared=declared)
    assert result.verdict is Verdict.PASS
    assert "declared shape" in result.notes[0]
    assert not any("ways" in note for note in result.notes)


def test_a_declared_shape_that_does_not_fit_is_reported_and_every_reading_checked():
    result = check(b"under_18,adult\n12,240\n1,198\n", declared={"labels": ["age"], "counts": ["adult"]})
    assert result.verdict is Verdict.FAIL
    assert any(f.rule is Rule.FORMAT and "declared shape" in f.message for f in result.flags)


def test_a_declared_magnitude_column_is_not_counted():
    result = check(
        b"group,mean_age\nA,3.5\nB,4\n", declared={"labels": ["group"], "statistics": ["mean_age"]}
    )
    assert result.verdict is Verdict.REVIEW
    assert [f.rule for f in result.all_flags] == [Rule.MANUAL]


# --- Part 2: zeros as the policy says, every flag at its value --------------------------------------


def test_the_demo_table_passes_when_zeros_are_not_disclosive():
    result = check(DEMO.replace(b"90+,male,3", b"90+,male,30"))
    assert result.verdict is Verdict.PASS, result.all_flags


def test_the_demo_table_fails_for_its_small_count_only():
    result = check(DEMO)
    assert result.verdict is Verdict.FAIL
    (flag,) = result.all_flags
    assert (flag.rule, flag.row, flag.column, flag.value) == (Rule.THRESHOLD, ("90+", "male"), "persons", "3")
    # The viewer marks the value cell: the file's third column, on the body row of the flagged cell.
    assert (flag.field, flag.position[0], flag.line) == (2, 7, 9)


def test_the_demo_table_fails_every_zero_when_zeros_are_disclosive():
    result = check(DEMO, ZEROS_DISCLOSIVE)
    zeros = [f for f in result.all_flags if f.rule is Rule.ZEROS]
    assert len(zeros) == 3 and all(f.field == 2 and f.value == "0" for f in zeros)
    assert {f.row[1] for f in zeros} == {"other"}


def test_flags_are_all_in_the_json_form():
    result = check(DEMO, ZEROS_DISCLOSIVE)
    flags = result.to_dict()["flags"]
    assert len(flags) == len(result.all_flags) == 7  # 3 zeros + 3 zero thresholds + the 3
    assert all(flag["field"] == 2 for flag in flags)


# --- Bad input: a clear verdict with a reason, never a crash, never a silent pass --------------------


@pytest.mark.parametrize(
    ("data", "verdict", "says"),
    [
        (b"group,n\nA,12\nB,3,4\n", Verdict.REVIEW, "ragged"),
        (b"", Verdict.REVIEW, "empty"),
        (b"   \n\n", Verdict.REVIEW, "empty"),
        (b"\xef\xbb\xbfgroup,n\nA,12\nB,3\n", Verdict.FAIL, "minimum cell count"),
        (b"group;n\nA;12\nB;3\n", Verdict.FAIL, "minimum cell count"),
        (b"group\tn\nA\t12\nB\t3\n", Verdict.FAIL, "minimum cell count"),
        (b'group,n\nA,"1,234"\nB,3\n', Verdict.FAIL, "minimum cell count"),
        (b'group,n\nA,"12"\nB,"3"\n', Verdict.FAIL, "minimum cell count"),
        (b"group,n\nA,12\nB,-3\n", Verdict.REVIEW, "cannot be negative"),
        (b"group,n\nA,12\nB,3.5\n", Verdict.REVIEW, "magnitudes"),
        (b"group,n\nA,12\nB,NA\n", Verdict.REVIEW, "suppressed or missing"),
        (b"group,n\nA,12\nB,*\n", Verdict.REVIEW, "suppressed or missing"),
        (b"group,n\nA,12\nB,<5\n", Verdict.REVIEW, "suppressed or missing"),
    ],
)
def test_bad_input_gets_a_verdict_with_a_reason(data, verdict, says):
    result = check(data)
    assert result.verdict is verdict
    assert any(says in flag.message for flag in result.all_flags), result.all_flags


def test_a_hundred_thousand_rows_are_checked_quickly_and_the_one_small_count_found():
    lines = [b"id_band,sex,persons"] + [
        b"%d,%s,%d" % (i // 2, (b"female", b"male")[i % 2], 50) for i in range(100_000)
    ]
    lines[54_321] = lines[54_321].rsplit(b",", 1)[0] + b",4"
    started = time.monotonic()
    result = check(b"\n".join(lines) + b"\n")
    assert time.monotonic() - started < 30
    assert result.verdict is Verdict.FAIL
    assert [(f.value, f.line) for f in result.all_flags] == [("4", 54_322)]

"""How CSV tables are read: shape detection, and malformed files becoming clear `review` verdicts."""

import random

import pytest

from reviews.sdc.checks import check_file, check_table_bytes
from reviews.sdc.policy import DEFAULT_POLICY
from reviews.sdc.tables import Shape, detect_layout, is_no_value, parse_number, read_rows
from reviews.sdc.verdicts import Rule, Verdict


def check(text: str | bytes, **kwargs):
    data = text.encode() if isinstance(text, str) else text
    return check_table_bytes(data, DEFAULT_POLICY, path="t.csv", **kwargs)


def layout(text: str):
    return detect_layout(read_rows(text.encode()))


# ---------------------------------------------------------------------------------------------------
# Shapes


def test_cross_tab_with_text_row_labels():
    result = check("row,C1,C2\nR1,25,9\nR2,12,30\n")
    assert result.shape == Shape.CROSS_TAB
    assert [(cell.row, cell.column, cell.value) for cell in result.cells] == [
        (("R1",), "C1", "25"),
        (("R1",), "C2", "9"),
        (("R2",), "C1", "12"),
        (("R2",), "C2", "30"),
    ]
    assert result.cell("R1", "C2").rules == {Rule.THRESHOLD}


def test_cross_tab_whose_first_column_is_numeric_uses_it_as_labels():
    found = layout("year,G,N\n2010,15,59\n2011,15,8\n")
    assert (found.shape, found.label_columns, found.count_columns) == (Shape.CROSS_TAB, (0,), (1, 2))
    assert "first column may be row labels" in found.explanation


def test_long_table_with_a_count_column_reads_every_other_column_as_labels():
    result = check("year,sex,count\n2010,1,15\n2010,2,7\n")
    assert result.shape == Shape.LONG
    assert result.cell(("2010", "2"), "count").rules == {Rule.THRESHOLD}
    assert result.cell(("2010", "1"), "count").rules == set()


def test_long_table_with_text_labels():
    found = layout("region,age,n_patients\nNorth,18-30,12\nNorth,31-50,40\n")
    assert (found.shape, found.label_columns, found.count_columns) == (Shape.LONG, (0, 1), (2,))


def test_pandas_index_column_may_be_unnamed():
    result = check(",C1,C2\nR1,25,10\n")
    assert result.verdict is Verdict.PASS


def test_one_column_of_counts_numbers_its_rows():
    result = check("n\n15\n3\n")
    assert result.cell("2", "n").rules == {Rule.THRESHOLD}


def test_rows_without_any_numbers_are_records_counted_as_a_cross_tab():
    result = check("sex,region\nF,N\nF,S\nM,N\n" + "M,S\n" * 10)
    assert result.shape == Shape.RECORDS
    assert {(cell.row[0], cell.column): cell.value for cell in result.cells} == {
        ("F", "N"): "1",
        ("F", "S"): "1",
        ("M", "N"): "1",
        ("M", "S"): "10",
    }
    assert result.verdict is Verdict.FAIL


def test_records_of_one_column_are_counted_per_value():
    result = check("sex\n" + "F\n" * 10 + "M\n")
    assert result.cell("F", "count").verdict is Verdict.PASS
    assert result.cell("M", "count").rules == {Rule.THRESHOLD}


def test_repeated_labels_with_one_value_column_are_contributions():
    result = check("group,value\n" + "A,100\n" * 12 + "B,5000\n")
    assert result.shape == Shape.CONTRIBUTIONS
    assert result.cell("A", "value").value == "1200"
    assert result.cell("B", "value").rules == {Rule.THRESHOLD, Rule.DOMINANCE, Rule.P_RATIO}


@pytest.mark.parametrize(
    "text",
    [
        "group,value\nA,1200\nB,900\n",  # named like a magnitude
        "group,x\nA,1200.5\nB,900\n",  # a non-integer
        "year,G,N\n2010,9.921906e+06,59\n",  # scientific notation
    ],
)
def test_magnitudes_without_contributions_are_left_to_a_person(text):
    result = check(text)
    assert result.cells == ()
    assert [flag.rule for flag in result.flags] == [Rule.MANUAL]
    assert result.verdict is Verdict.REVIEW


def test_columns_named_as_statistics_are_read_one_by_one():
    result = check("group,n,mean_age\nA,12,40.5\nB,7,38\n")
    assert [cell.column for cell in result.cells] == ["n", "n"]
    assert result.cell("B", "n").rules == {Rule.THRESHOLD}
    assert Rule.MANUAL in {flag.rule for flag in result.flags}


def test_a_cross_tab_category_that_looks_like_a_count_name_is_not_one():
    # "N" is a grant type here, and its non-integer values make the whole table magnitudes.
    found = layout("year,G,N\n2010,15.5,0.0\n")
    assert found.count_columns == ()
    assert found.magnitude_columns == (1, 2)


@pytest.mark.parametrize("marker", ["", "*", "<10", "[c]", "NA", "redacted", "-"])
def test_suppressed_counts_need_review(marker):
    result = check(f"row,C1,C2\nR1,25,{marker}\nR2,12,30\n")
    assert result.cell("R1", "C2").rules == {Rule.SUPPRESSED}
    assert result.verdict is Verdict.REVIEW


def test_semicolon_separated_and_tab_separated_files(tmp_path):
    assert check("row;C1;C2\nR1;25;10\n").verdict is Verdict.PASS
    path = tmp_path / "t.tsv"
    path.write_text("row\tC1\tC2\nR1\t25\t9\n")
    assert check_file(path, DEFAULT_POLICY).cell("R1", "C2").rules == {Rule.THRESHOLD}


def test_thousands_separators_and_a_utf8_bom_are_accepted():
    result = check('\ufeffrow,C1\nR1,"1,234"\n'.encode())
    assert result.cell("R1", "C1").verdict is Verdict.PASS


def test_blank_lines_are_ignored_and_lines_are_reported():
    result = check("row,C1\n\nR1,9\n\n")
    (flag,) = result.all_flags
    assert flag.line == 3


def test_the_explanation_of_the_reading_is_a_note():
    result = check("row,C1,C2\nR1,25,10\n")
    assert result.notes[0].startswith("Read as cross-tab table; row labels from 'row'")


def test_tokens():
    assert parse_number("1,234.5") == parse_number("1234.5")
    assert parse_number("\u22125") == parse_number("-5")
    for text in ("inf", "nan", "1e999", "abc", ""):
        assert parse_number(text) is None
    assert all(is_no_value(text) for text in ("", "NA", "*", "< 10", "≤7", "[x]", "suppressed"))
    assert not is_no_value("12")


# ---------------------------------------------------------------------------------------------------
# Malformed files


@pytest.mark.parametrize(
    ("data", "message", "line"),
    [
        (b"", "The file is empty.", None),
        (b"  \n\n", "The file is empty.", None),
        (b",,,\n,,\n", "The file has no rows with any content.", None),
        (b"row,C1,C2\n", "The file has a header row but no data rows.", 1),
        (
            b"row,C1,C2\nR1,25,10\nR2,12\n",
            "Line 3 has 2 fields but the header has 3: the rows are ragged.",
            3,
        ),
        (b"row,C1,C2\nR1,25,10,7\n", "Line 2 has 4 fields but the header has 3: the rows are ragged.", 2),
        (b"row,C1,C2\nR1,25,abc\nR2,12,30\n", "Line 2, column 'C2': 'abc' is not a number.", 2),
        (b"row,C1,C2\nR1,abc,10\nR2,12,30\nR3,14,11\n", "Line 2, column 'C1': 'abc' is not a number.", 2),
        (b"row,C1\nR1,\xff\n", "The file is not UTF-8 text: byte 0xff on line 2 cannot be decoded", 2),
        ("row,C1\nR1,12\n".encode("utf-16"), "The file is UTF-16 text; save it as UTF-8.", 1),
        (b"row,C1\nR1,1\x002\n", "Line 2 contains a NUL character", 2),
        (
            b"row,C1,C1\nR1,25,10\n",
            "Column name 'C1' appears more than once in the header (columns 2 and 3).",
            1,
        ),
        (b"row,,C2\nR1,25,10\n", "Column 2 of the header has no name.", 1),
        (b'row,C1\nR1,"12\n', "Line 2 is not valid CSV", 2),
        (b'row,C1\n"R1"x,12\n', "Line 2 is not valid CSV", 2),
        (b"row,n\nR1,10\nR1,12\n", "Row label 'R1' appears twice, at lines 2 and 3.", 3),
        (b"row,C1,C2\nR1,10,12\nR1,12,14\n", "Row label 'R1' appears twice, at lines 2 and 3.", 3),
    ],
)
def test_malformed_files_need_review_saying_what_and_where(data, message, line):
    result = check(data)
    assert result.verdict is Verdict.REVIEW
    (flag,) = result.flags
    assert flag.rule is Rule.FORMAT
    assert flag.message.startswith(message)
    assert flag.line == line


def test_files_too_large_to_parse_need_review(tmp_path, monkeypatch):
    monkeypatch.setattr("reviews.sdc.checks.MAX_TABLE_BYTES", 10)
    path = tmp_path / "big.csv"
    path.write_text("row,C1\nR1,25\nR2,30\n")
    result = check_file(path, DEFAULT_POLICY)
    assert result.verdict is Verdict.REVIEW
    assert "more than the 10 checked automatically" in result.flags[0].message


def test_arbitrary_bytes_never_raise():
    generator = random.Random(20240601)
    alphabet = b'abcR1,;\t"\n\r 0123456789.-*<>\xff\x00e'
    for _ in range(2000):
        data = bytes(generator.choice(alphabet) for _ in range(generator.randrange(0, 60)))
        result = check(data)
        assert result.verdict in set(Verdict)

"""Reading delimited text (CSV/TSV) into rows, and deciding what kind of table the rows hold.

`read_rows` turns bytes into stripped rows or raises `TableFormatError` with a message that says what is
wrong and where (line numbers are 1-based lines of the file). `detect_layout` never guesses silently: the
`Layout` it returns carries an `explanation` that is shown to the output checker.

How the shape is decided, in order:
1. A statsmodels-style summary (first cells like "Dep. Variable:") is a *model summary*; a header with a
   coefficient and a standard-error column is a *coefficient table*.
2. Every column is classed as numeric (more numbers than text; blanks and suppression markers such as
   "*", "<10", "[c]" or "NA" count as neither) or not.
3. If every column is non-numeric, each row is one *record*: the table is the frequency table of the
   columns (the last column across, the others down).
4. Label columns are the leading non-numeric columns, or just the first column when the table starts with
   numbers (pandas writes its index first, e.g. a year). If the last column is named like a count
   ("n", "count", "freq", "n_patients") and the first column's values repeat (a long table such as
   year, sex, count), every column but the last is a label instead.
5. Value columns must hold numbers, either counts or magnitudes. A column holding a non-integer or
   scientific notation holds magnitudes, as does one named like a magnitude ("value", "mean", "sum",
   ...). When every value column is named like a statistic ("n", "mean_age"), each is read by itself
   and the rest hold counts; otherwise the headers are categories of one statistic (a cross-tab), so
   one magnitude column makes every column a magnitude column.
6. If row labels repeat and there is one value column not named like a count, each row is one
   *contribution* to its group's cell (a magnitude table with per-contributor values); otherwise a
   repeated row label is a format error.
7. One label column and several value columns is a *cross-tab*; one value column is a *long* table.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from portal.errors import Refusal

#: Files larger than this are not parsed; a person reviews them instead.
MAX_TABLE_BYTES = 64 * 1024 * 1024

_CANDIDATE_DELIMITERS = (",", ";", "\t", "|")

# Tokens that stand for "no value here": missing, or suppressed by the researcher.
_NO_VALUE = re.compile(
    r"""^(
        | na | n/a | nan | null | none | \. | -+ | ~
        | \*+ | c | x | \[c\] | \[x\] | \[?redacted\]? | \[?suppressed\]?
        | (< | <= | ≤) \s* \d+(\.\d+)?
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")

_COUNT_WORDS = frozenset(
    {
        "n",
        "count",
        "counts",
        "freq",
        "frequency",
        "frequencies",
        "number",
        "num",
        "cnt",
        "records",
        "persons",
        "people",
        "patients",
        "individuals",
    }
)
_MAGNITUDE_WORDS = frozenset(
    {
        "value", "values", "sum", "mean", "average", "avg", "median", "mode", "min", "minimum", "max",
        "maximum", "std", "sd", "stdev", "stddev", "variance", "var", "amount", "rate", "ratio",
        "percent", "percentage", "pct", "proportion", "score", "cost", "income",
    }
)  # fmt: skip
_COEFFICIENT_WORDS = ("coef", "coefficient", "estimate")
_STD_ERROR_NAMES = ("std err", "std.error", "std. error", "std error", "se", "stderr")


class TableFormatError(Refusal):
    """The bytes are not a table we can check; `message` says what is wrong and where."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class Shape(StrEnum):
    CROSS_TAB = "cross-tab"
    LONG = "long"
    CONTRIBUTIONS = "contributions"
    RECORDS = "records"
    MODEL_SUMMARY = "model summary"
    COEFFICIENTS = "coefficients"


@dataclass(frozen=True)
class RawTable:
    """Non-blank rows of a delimited file, every field stripped; `rows[0]` is the header.

    Invariant: `len(rows) == len(lines)` and `lines[i]` is the 1-based file line where `rows[i]` starts.
    """

    rows: tuple[tuple[str, ...], ...]
    lines: tuple[int, ...]
    delimiter: str

    @property
    def header(self) -> tuple[str, ...]:
        return self.rows[0]

    @property
    def body(self) -> tuple[tuple[str, ...], ...]:
        return self.rows[1:]

    @property
    def body_lines(self) -> tuple[int, ...]:
        return self.lines[1:]


@dataclass(frozen=True)
class Layout:
    """Which columns label rows and which hold values, and why.

    Invariants: label, count and magnitude column indexes are disjoint and together cover every
    column except for `RECORDS`, `MODEL_SUMMARY` and `COEFFICIENTS`, which have no value columns.
    """

    shape: Shape
    label_columns: tuple[int, ...] = ()
    count_columns: tuple[int, ...] = ()
    magnitude_columns: tuple[int, ...] = ()
    explanation: str = ""


def read_rows(data: bytes, *, delimiter: str | None = None) -> RawTable:
    """Decode and split delimited text. Raises `TableFormatError` for anything that is not a table."""
    if not data.strip():
        raise TableFormatError("The file is empty.")
    if len(data) > MAX_TABLE_BYTES:
        raise TableFormatError(
            f"The file is {len(data):,} bytes, more than the {MAX_TABLE_BYTES:,} checked automatically."
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise TableFormatError("The file is UTF-16 text; save it as UTF-8.", line=1)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise TableFormatError(
            f"The file is not UTF-8 text: byte 0x{data[error.start]:02x} on line {line} cannot be decoded; "
            "save the file as UTF-8.",
            line=line,
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise TableFormatError(
            f"Line {line} contains a NUL character: this is binary data, not text.", line=line
        )

    chosen = delimiter or guess_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=chosen, strict=True)
    rows: list[tuple[str, ...]] = []
    lines: list[int] = []
    start = 1
    try:
        for record in reader:
            fields = tuple(field.strip() for field in record)
            if any(fields):
                rows.append(fields)
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as error:
        raise TableFormatError(
            f"Line {reader.line_num} is not valid CSV: {error}.", line=reader.line_num
        ) from None

    if not rows:
        raise TableFormatError("The file has no rows with any content.")
    if len(rows) < 2:
        raise TableFormatError("The file has a header row but no data rows.", line=lines[0])
    width = len(rows[0])
    for fields, line in zip(rows[1:], lines[1:], strict=True):
        if len(fields) != width:
            raise TableFormatError(
                f"Line {line} has {len(fields)} fields but the header has {width}: the rows are ragged.",
                line=line,
            )
    return RawTable(tuple(rows), tuple(lines), chosen)


def guess_delimiter(text: str) -> str:
    """The likeliest of `,` `;` tab `|` from the first non-blank line (comma when none occurs)."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {candidate: first.count(candidate) for candidate in _CANDIDATE_DELIMITERS}
    best = max(_CANDIDATE_DELIMITERS, key=lambda candidate: counts[candidate])
    return best if counts[best] else ","


def is_no_value(token: str) -> bool:
    """True for an empty cell, a missing-value code or a suppression marker such as "*" or "<10"."""
    return bool(_NO_VALUE.match(token.strip()))


def parse_number(token: str) -> Decimal | None:
    """The finite number a token spells ("1,234", "−5" and "1e3" included), or None."""
    text = token.strip().replace("\u2212", "-")
    if _THOUSANDS.match(text):
        text = text.replace(",", "")
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    # An absurd exponent is a typo, and converting it to an exact fraction would exhaust memory.
    if not number.is_finite() or abs(number.adjusted()) > 60:
        return None
    return number


def is_integral(number: Decimal) -> bool:
    return number == number.to_integral_value()


def _words(name: str) -> set[str]:
    return {word for word in re.split(r"[^a-z0-9]+", name.lower()) if word}


def is_count_name(name: str) -> bool:
    return bool(_words(name) & _COUNT_WORDS)


def is_magnitude_name(name: str) -> bool:
    return bool(_words(name) & _MAGNITUDE_WORDS)


def column_name(header: Sequence[str], index: int) -> str:
    """How a column is named in messages: its header, or its 1-based position when it has none."""
    return repr(header[index]) if header[index] else f"{index + 1} (unnamed)"


def model_summary_pairs(raw: RawTable) -> dict[str, str] | None:
    """The "Key:" / value pairs of a statsmodels summary written as CSV, or None if it is not one.

    statsmodels writes two key/value pairs per row ("Dep. Variable:,y,R-squared:,0.709"), keys ending
    in a colon; we require that of at least two rows' first cell.
    """
    keyed = sum(1 for row in raw.rows if row[0].endswith(":"))
    if keyed < 2:
        return None
    pairs: dict[str, str] = {}
    for row in raw.rows:
        for index in range(0, len(row) - 1, 2):
            if row[index].endswith(":"):
                pairs[row[index].rstrip(":").strip()] = row[index + 1]
    return pairs


def _is_coefficient_table(header: Sequence[str]) -> bool:
    names = [name.lower() for name in header]
    has_coefficient = any(any(word in name for word in _COEFFICIENT_WORDS) for name in names)
    return has_coefficient and any(name in _STD_ERROR_NAMES for name in names)


def detect_layout(raw: RawTable) -> Layout:
    """The most likely reading of the table (the first of `plausible_layouts`)."""
    return plausible_layouts(raw)[0]


def plausible_layouts(raw: RawTable) -> tuple[Layout, ...]:
    """Every plausible reading of the table, the most likely first (see the module docstring).

    Raises `TableFormatError` for bad headers, text in value columns, and repeated row labels that no
    reading explains. A table is only ever read in more than one way when it leaves room for doubt:
    all-numeric columns (is the first a label, such as a year, or a count?) and numeric columns that
    must be labels for the row labels to be unique.
    """
    if model_summary_pairs(raw) is not None:
        return (
            Layout(
                Shape.MODEL_SUMMARY, explanation="a model summary (key: value pairs, as statsmodels writes)"
            ),
        )
    header = raw.header
    _check_header(raw)
    if _is_coefficient_table(header):
        return (Layout(Shape.COEFFICIENTS, explanation="a table of model coefficients with standard errors"),)

    width = len(header)
    numeric = [_is_numeric_column(raw, index) for index in range(width)]
    if not any(numeric):
        names = ", ".join(column_name(header, index) for index in range(width))
        return (
            Layout(
                Shape.RECORDS,
                label_columns=tuple(range(width)),
                explanation=f"one record per row (no column holds numbers); counted by {names}",
            ),
        )

    text = tuple(index for index in range(width) if not numeric[index])
    candidates: list[tuple[tuple[int, ...], str]] = []
    if numeric[-1] and is_count_name(header[-1]) and _first_repeated_label(raw, (0,)) is not None:
        # A long table (year, sex, count) names its count and repeats its first label: decisive.
        why = f"the last column {column_name(header, width - 1)} is named as a count and the first column repeats"
        candidates.append((tuple(range(width - 1)), why))
    else:
        # Labels lead: a numeric column may be one only before the last text label, or, in an
        # all-numeric table, in the unbroken run of label-like columns at the start.
        labelable = []
        for index in range(width):
            if numeric[index] and _could_be_labels(raw, index):
                if (text and index < text[-1]) or (not text and index == len(labelable)):
                    labelable.append(index)
        if not text:
            if width >= 2 and labelable and labelable[0] == 0:
                candidates.append(
                    ((0,), "the table starts with numbers, so its first column may be row labels")
                )
            candidates.append(((), "every column holds numbers, so every column may be counts"))
        else:
            why = "the columns without numbers are row labels"
            candidates.append((text, why))
        # Numeric columns join the labels, in order, while the labels so far repeat (year, sex, n).
        labels = candidates[0][0]
        for index in labelable:
            if index in labels:
                continue
            if _first_repeated_label(raw, labels) is None:
                break
            labels = tuple(sorted({*labels, index}))
            if len(labels) < width:
                names = ", ".join(column_name(header, i) for i in labels)
                candidates.append((labels, f"the other labels repeat without {names}"))

    layouts: list[Layout] = []
    repeated_error: TableFormatError | None = None
    for labels, why in candidates:
        values = tuple(index for index in range(width) if index not in labels)
        if not values:
            continue
        _check_values_are_numbers(raw, values)
        repeated = _first_repeated_label(raw, labels)
        if repeated is not None:
            key, first_line, line = repeated
            if len(values) == 1 and not is_count_name(header[values[0]]):
                layouts.append(
                    Layout(
                        Shape.CONTRIBUTIONS,
                        label_columns=labels,
                        magnitude_columns=values,
                        explanation=(
                            f"one contribution per row: row labels repeat (first at lines {first_line} and "
                            f"{line}), so the values in {column_name(header, values[0])} are summed per group"
                        ),
                    )
                )
            elif repeated_error is None:
                shown = " / ".join(key)
                repeated_error = TableFormatError(
                    f"Row label {shown!r} appears twice, at lines {first_line} and {line}.", line=line
                )
            continue
        layouts.append(_aggregate_layout(raw, labels, values, why))
    if not layouts:
        raise repeated_error or TableFormatError("No column of the table holds values to check.")
    return tuple(layouts)


def declared_layout(raw: RawTable, declared: Mapping[str, Sequence[str]]) -> Layout:
    """The layout a declared shape gives: `declared` maps "labels", "counts", "magnitudes" and
    "statistics" to column names. Raises `TableFormatError` when the file does not match it."""
    header = raw.header
    _check_header(raw)
    where = {name: index for index, name in enumerate(header)}
    roles: dict[int, str] = {}
    for role in ("labels", "counts", "magnitudes", "statistics"):
        for name in declared.get(role, ()):
            if name not in where:
                raise TableFormatError(
                    f"The declared shape names a column {name!r} that the file does not have "
                    f"(it has {', '.join(repr(h) for h in header)}).",
                    line=raw.lines[0],
                )
            if where[name] in roles:
                raise TableFormatError(
                    f"The declared shape gives column {name!r} two roles.", line=raw.lines[0]
                )
            roles[where[name]] = role
    missing = [header[index] or str(index + 1) for index in range(len(header)) if index not in roles]
    if missing:
        raise TableFormatError(
            f"The declared shape does not say what column(s) {', '.join(repr(m) for m in missing)} hold.",
            line=raw.lines[0],
        )
    labels = tuple(index for index in range(len(header)) if roles[index] == "labels")
    counts = tuple(index for index in range(len(header)) if roles[index] == "counts")
    magnitudes = tuple(index for index in range(len(header)) if roles[index] in ("magnitudes", "statistics"))
    values = counts + magnitudes
    if not values:
        raise TableFormatError("The declared shape has no count or magnitude columns.", line=raw.lines[0])
    _check_values_are_numbers(raw, values)
    repeated = _first_repeated_label(raw, labels)
    if repeated is not None:
        key, first_line, line = repeated
        if not counts and len(magnitudes) == 1:
            return Layout(
                Shape.CONTRIBUTIONS,
                label_columns=labels,
                magnitude_columns=magnitudes,
                explanation=f"the declared shape: one contribution per row, summed per {_names(header, labels)}",
            )
        raise TableFormatError(
            f"Row label {' / '.join(key)!r} appears twice, at lines {first_line} and {line}, "
            "although the declared shape makes it a row label.",
            line=line,
        )
    shape = Shape.CROSS_TAB if labels and len(values) >= 2 else Shape.LONG
    return Layout(
        shape,
        labels,
        counts,
        tuple(sorted(magnitudes)),
        f"the declared shape: {shape} table; row labels from {_names(header, labels)}",
    )


_INTEGER_TYPES = frozenset(
    {"integer", "int", "long", "short", "byte", "nonnegativeinteger", "positiveinteger", "unsignedint",
     "unsignedlong", "unsignedshort", "unsignedbyte"}
)  # fmt: skip
_NUMBER_TYPES = frozenset({"number", "decimal", "double", "float"})
_ROLES = {"label": "labels", "count": "counts", "magnitude": "magnitudes", "statistic": "statistics"}


def shape_from_csvw(schema: Any) -> dict[str, list[str]] | None:
    """A declared shape from a CSVW `tableSchema` (None when it declares nothing usable).

    Columns in `primaryKey` are row labels. Otherwise a column's `sdc:role` (label, count, magnitude,
    statistic) says what it holds; without one, an integer `datatype` is a count, another numeric
    datatype a magnitude, and any other datatype (text) a label. A column with neither is undeclared,
    and the shape is then refused by `declared_layout`.
    """
    if not isinstance(schema, Mapping) or not isinstance(schema.get("columns"), list):
        return None
    keys = schema.get("primaryKey") or []
    keys = [keys] if isinstance(keys, str) else [key for key in keys if isinstance(key, str)]
    shape: dict[str, list[str]] = {"labels": [], "counts": [], "magnitudes": [], "statistics": []}
    for column in schema["columns"]:
        if not isinstance(column, Mapping):
            continue
        titles = column.get("titles")
        name = column.get("name") or (titles[0] if isinstance(titles, list) and titles else titles)
        if not isinstance(name, str):
            continue
        role = column.get("sdc:role") or column.get("role")
        datatype = column.get("datatype")
        if isinstance(datatype, Mapping):
            datatype = datatype.get("base")
        datatype = str(datatype or "").lower().removeprefix("xsd:")
        if name in keys or role == "label":
            shape["labels"].append(name)
        elif role in _ROLES:
            shape[_ROLES[role]].append(name)
        elif datatype in _INTEGER_TYPES:
            shape["counts"].append(name)
        elif datatype in _NUMBER_TYPES:
            shape["magnitudes"].append(name)
        elif datatype:
            shape["labels"].append(name)
    return shape if any(shape.values()) else None


def _names(header: Sequence[str], columns: Sequence[int]) -> str:
    return ", ".join(column_name(header, index) for index in columns) or "none"


def _aggregate_layout(raw: RawTable, labels: tuple[int, ...], values: tuple[int, ...], why: str) -> Layout:
    magnitude = _magnitude_columns(raw, values)
    counts = tuple(index for index in values if index not in magnitude)
    shape = Shape.CROSS_TAB if len(values) >= 2 else Shape.LONG
    explanation = f"{shape} table; row labels from {_names(raw.header, labels)}"
    if why:
        explanation += f" ({why})"
    return Layout(shape, labels, counts, magnitude, explanation)


def _could_be_labels(raw: RawTable, index: int) -> bool:
    """A numeric column may hold labels (a year, a coded category) when every value is a whole
    number and it is not named as a count or a magnitude."""
    name = raw.header[index]
    if is_count_name(name) or is_magnitude_name(name):
        return False
    for fields in raw.body:
        number = parse_number(fields[index])
        if number is None or not is_integral(number):
            return False
    return True


def _first_repeated_label(raw: RawTable, labels: Sequence[int]) -> tuple[tuple[str, ...], int, int] | None:
    """The first row label seen twice, with the lines of both rows; None if labels are unique.

    Without label columns rows are identified by position, which cannot repeat.
    """
    if not labels:
        return None
    seen: dict[tuple[str, ...], int] = {}
    for fields, line in zip(raw.body, raw.body_lines, strict=True):
        key = tuple(fields[index] for index in labels)
        if key in seen:
            return key, seen[key], line
        seen[key] = line
    return None


def _check_header(raw: RawTable) -> None:
    seen: dict[str, int] = {}
    for index, name in enumerate(raw.header):
        if not name:
            # pandas leaves the index column's name empty; any other unnamed column is a mistake.
            if index == 0:
                continue
            raise TableFormatError(f"Column {index + 1} of the header has no name.", line=raw.lines[0])
        if name in seen:
            raise TableFormatError(
                f"Column name {name!r} appears more than once in the header (columns {seen[name] + 1} "
                f"and {index + 1}).",
                line=raw.lines[0],
            )
        seen[name] = index


def _is_numeric_column(raw: RawTable, index: int) -> bool:
    numbers = texts = 0
    for fields in raw.body:
        token = fields[index]
        if parse_number(token) is not None:
            numbers += 1
        elif not is_no_value(token):
            texts += 1
    # A count column with one typo is still a count column: report the typo rather than
    # reading the column as labels.
    return numbers > 0 and numbers >= texts


def _check_values_are_numbers(raw: RawTable, values: Sequence[int]) -> None:
    for index in values:
        for fields, line in zip(raw.body, raw.body_lines, strict=True):
            token = fields[index]
            if parse_number(token) is None and not is_no_value(token):
                raise TableFormatError(
                    f"Line {line}, column {column_name(raw.header, index)}: {token!r} is not a number.",
                    line=line,
                )


def _magnitude_columns(raw: RawTable, values: Sequence[int]) -> tuple[int, ...]:
    """Which value columns hold magnitudes rather than counts (see the module docstring, step 5)."""
    readings = {index: _reading(raw, index) for index in values}
    if all(is_count_name(raw.header[index]) or is_magnitude_name(raw.header[index]) for index in values):
        # Headers name statistics ("n", "mean_age"): each column is what it says.
        return tuple(index for index, reading in readings.items() if reading == "magnitude")
    # Headers are categories of one statistic (a cross-tab): one magnitude column makes them all so.
    if any(reading == "magnitude" for reading in readings.values()):
        return tuple(values)
    return ()


def _reading(raw: RawTable, index: int) -> str:
    """'magnitude' when values or name say so, 'count' when only the name says so, else 'unknown'."""
    for fields in raw.body:
        token = fields[index]
        number = parse_number(token)
        # Counts are whole numbers, and are not written in scientific notation.
        if number is not None and (not is_integral(number) or "e" in token.lower()):
            return "magnitude"
    name = raw.header[index]
    if is_magnitude_name(name):
        return "magnitude"
    return "count" if is_count_name(name) else "unknown"

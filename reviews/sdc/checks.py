"""Automatic disclosure-control checks on output files, following ACRO 1.x's rules and formulae.

Count tables (frequencies) get the threshold, zeros and rounding rules; magnitude tables with
per-contributor values get the threshold, dominance (n, k), p-ratio, negative and missing-value rules;
model summaries get the residual degrees-of-freedom rule. Arithmetic is exact (rational numbers built
from the decimal text), so a share of exactly k or a ratio of exactly p is judged as the rule states,
free of binary floating-point error.

Nothing here raises for bad input: a file that cannot be read as a table yields a `review` verdict whose
flag says what is wrong and where. Only `check_file` can raise, with `OSError`, when the file itself
cannot be opened.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType

from reviews.sdc.policy import OUTPUT_KINDS, DisclosurePolicy
from reviews.sdc.tables import (
    MAX_TABLE_BYTES,
    Layout,
    RawTable,
    Shape,
    TableFormatError,
    column_name,
    declared_layout,
    is_no_value,
    model_summary_pairs,
    parse_number,
    plausible_layouts,
    read_rows,
)
from reviews.sdc.verdicts import Cell, FileResult, Flag, Rule, Verdict

SOURCE = "portal"

#: Output kind by file extension (lower case, with the dot).
EXTENSION_KINDS: Mapping[str, str] = MappingProxyType(
    {
        **dict.fromkeys(
            (".csv", ".tsv", ".tab", ".xlsx", ".xls", ".ods", ".dta", ".sav", ".parquet"), "table"
        ),
        **dict.fromkeys(
            (
                ".png",
                ".jpg",
                ".jpeg",
                ".gif",
                ".svg",
                ".tif",
                ".tiff",
                ".bmp",
                ".webp",
                ".eps",
                ".emf",
                ".gph",
            ),
            "figure",
        ),
        **dict.fromkeys(
            (".pdf", ".html", ".htm", ".md", ".txt", ".rtf", ".doc", ".docx", ".odt", ".tex", ".rmd", ".qmd"),
            "report",
        ),
        **dict.fromkeys(
            (".rds", ".rda", ".rdata", ".pkl", ".pickle", ".joblib", ".onnx", ".h5", ".ster"), "model"
        ),
        **dict.fromkeys(
            (".py", ".r", ".do", ".ado", ".sas", ".sps", ".sql", ".sh", ".ipynb", ".log", ".jl", ".m", ".cwl")
            + (".json", ".yaml", ".yml", ".toml", ".ini", ".cfg"),
            "code",
        ),
    }
)
_DELIMITED = {".csv": None, ".tsv": "\t", ".tab": "\t"}

_ROW_LEVEL = (
    "The file holds one row per {unit} (row-level data). It was checked as the table it tabulates, "
    "but row-level data should not normally leave the TRE."
)


def kind_for(path: str | Path) -> str:
    """The output kind a file's extension suggests: one of `OUTPUT_KINDS`, or "other"."""
    return EXTENSION_KINDS.get(Path(path).suffix.lower(), "other")


def kind_flags(kind: str, policy: DisclosurePolicy) -> tuple[Flag, ...]:
    """A `kind` failure when the policy does not permit this kind of output."""
    if kind in OUTPUT_KINDS and kind not in policy.permitted_output_kinds:
        permitted = ", ".join(sorted(policy.permitted_output_kinds)) or "none"
        return (Flag(Rule.KIND, Verdict.FAIL, f"{kind} outputs are not permitted (permitted: {permitted})."),)
    return ()


def _show(number: Decimal | Fraction) -> str:
    if isinstance(number, Fraction):
        if number.denominator == 1:
            return str(number.numerator)
        return format(float(number), ".6g")
    return format(number.normalize(), "f") if number == number.to_integral_value() else str(number)


def _percent(value: Fraction | Decimal) -> str:
    return f"{float(value) * 100:.4g}%"


# ---------------------------------------------------------------------------------------------------
# Count tables


def count_flags(
    cell: Cell, count: Decimal | None, policy: DisclosurePolicy, *, line: int | None = None
) -> tuple[Flag, ...]:
    """The flags a published count earns. `count` is None where the table shows no value.

    Zeros follow the policy: when zeros are disclosive a zero fails the `zeros` rule and, as in ACRO,
    the threshold too; when they are not, a zero is no one and passes (ACRO 1.x still fails it on the
    threshold for tables, but not for histograms: see docs/sdc.md).
    """
    if count is None:
        return (
            cell.flag(
                Rule.SUPPRESSED,
                Verdict.REVIEW,
                "No value (suppressed or missing): check it cannot be recovered from totals or other outputs.",
                line=line,
            ),
        )
    if count < 0:
        return (
            cell.flag(
                Rule.NEGATIVE, Verdict.REVIEW, f"A count cannot be negative ({_show(count)}).", line=line
            ),
        )
    flags = []
    if count == 0 and policy.zeros_disclosive:
        flags.append(
            cell.flag(Rule.ZEROS, Verdict.FAIL, "A zero count is disclosive under this policy.", line=line)
        )
    if count < policy.min_cell_count and (count > 0 or policy.zeros_disclosive):
        flags.append(
            cell.flag(
                Rule.THRESHOLD,
                Verdict.FAIL,
                f"{_show(count)} is below the minimum cell count of {policy.min_cell_count}.",
                line=line,
            )
        )
    if policy.rounding_base and count % policy.rounding_base:
        flags.append(
            cell.flag(
                Rule.ROUNDING,
                Verdict.FAIL,
                f"{_show(count)} is not rounded to a multiple of {policy.rounding_base}.",
                line=line,
            )
        )
    return tuple(flags)


def check_counts(
    counts: Iterable[tuple[tuple[str, ...], str, Decimal | int | None]], policy: DisclosurePolicy
) -> tuple[Cell, ...]:
    """Check a count table given as (row labels, column label, count) triples in table order.

    Positions are assigned in order of first appearance of each row and each column label.
    """
    rows: dict[tuple[str, ...], int] = {}
    columns: dict[str, int] = {}
    cells = []
    for row, column, count in counts:
        position = (rows.setdefault(row, len(rows)), columns.setdefault(column, len(columns)))
        number = Decimal(count) if isinstance(count, int) else count
        cell = Cell(row, column, _show(number) if number is not None else None, position)
        cells.append(_with_flags(cell, count_flags(cell, number, policy)))
    return tuple(cells)


def _with_flags(cell: Cell, flags: Sequence[Flag]) -> Cell:
    return Cell(cell.row, cell.column, cell.value, cell.position, tuple(flags), cell.field)


# ---------------------------------------------------------------------------------------------------
# Magnitude tables with per-contributor values


@dataclass(frozen=True)
class Contributions:
    """The contributions to one magnitude cell; None stands for a missing value."""

    row: tuple[str, ...]
    column: str
    values: tuple[Fraction | None, ...]
    position: tuple[int, int]


def check_contributions(
    groups: Sequence[Contributions], policy: DisclosurePolicy
) -> tuple[tuple[Cell, ...], tuple[str, ...]]:
    """Check a magnitude table cell by cell, as ACRO 1.x does; returns the cells and notes for the file.

    For a cell with records r, present (non-missing) contributions x1 >= x2 >= ... and total T:
    - threshold: fail if r < min_cell_count (records are counted whether or not their value is missing);
    - missing: review if any value is missing and the policy checks missing values (otherwise ignored);
    - if any contribution anywhere in the table is negative, dominance is undefined: cells holding a
      negative get `dominance` and `p_ratio` reviews, and no cell is assessed for dominance;
    - dominance: fail if T > 0 and x1 + ... + xn >= k * T;
    - p_ratio: p = (T - x1 - x2) / x1, or T - x1 - x2 when x1 = 0; fail if p < p_ratio. A single
      contributor gives 0 and fails; a cell with no present values is not assessed.
    The cell's value is its total T.
    """
    negative_anywhere = any(value is not None and value < 0 for group in groups for value in group.values)
    missing = sum(value is None for group in groups for value in group.values)
    cells = []
    for group in groups:
        present = sorted((value for value in group.values if value is not None), reverse=True)
        total = sum(present, Fraction(0))
        cell = Cell(group.row, group.column, _show(total), group.position)
        flags = []
        records = len(group.values)
        if records < policy.min_cell_count:
            flags.append(
                cell.flag(
                    Rule.THRESHOLD,
                    Verdict.FAIL,
                    f"{records} contributor(s), below the minimum cell count of {policy.min_cell_count}.",
                )
            )
        if policy.check_missing_values and len(present) < records:
            flags.append(
                cell.flag(
                    Rule.MISSING,
                    Verdict.REVIEW,
                    f"{records - len(present)} contribution(s) missing; the total ignores them.",
                )
            )
        if negative_anywhere:
            if any(value < 0 for value in present):
                reason = "not defined when contributions are negative"
                flags.append(cell.flag(Rule.DOMINANCE, Verdict.REVIEW, f"Dominance (n, k) is {reason}."))
                flags.append(cell.flag(Rule.P_RATIO, Verdict.REVIEW, f"The p-ratio is {reason}."))
        else:
            flags.extend(_dominance_flags(cell, present, total, policy))
        cells.append(_with_flags(cell, flags))

    notes = []
    if negative_anywhere:
        notes.append(
            "The table has negative contributions, so dominance and the p-ratio were not assessed for any cell."
        )
    if missing and not policy.check_missing_values:
        notes.append(
            f"{missing} missing contribution(s) were ignored (the policy does not check missing values)."
        )
    return tuple(cells), tuple(notes)


def _dominance_flags(
    cell: Cell, present: Sequence[Fraction], total: Fraction, policy: DisclosurePolicy
) -> list[Flag]:
    flags = []
    n, k, p = policy.dominance_n, Fraction(policy.dominance_k), Fraction(policy.p_ratio)
    top_n = sum(present[:n], Fraction(0))
    if total > 0 and top_n >= k * total:
        flags.append(
            cell.flag(
                Rule.DOMINANCE,
                Verdict.FAIL,
                f"The {n} largest contribution(s) make up {_percent(top_n / total)} of the total; "
                f"they must be below {_percent(k)}.",
            )
        )
    if present:
        largest = present[0]
        remainder = total - sum(present[:2], Fraction(0))
        # ACRO divides by the largest contribution unless it is zero, when it keeps the remainder as is.
        ratio = remainder / largest if largest else remainder
        if ratio < p:
            flags.append(
                cell.flag(
                    Rule.P_RATIO,
                    Verdict.FAIL,
                    f"(total - x1 - x2) / x1 = {_show(ratio)}, below the p-ratio of {_show(p)}: "
                    "the largest contributor's value can be estimated too closely.",
                )
            )
    return flags


# ---------------------------------------------------------------------------------------------------
# Models


def check_degrees_of_freedom(dof: Decimal | int, policy: DisclosurePolicy) -> Flag | None:
    """A `dof` failure when residual degrees of freedom are below the policy's minimum (equal passes)."""
    if dof < policy.min_degrees_of_freedom:
        shown = _show(Decimal(dof))
        return Flag(
            Rule.DOF,
            Verdict.FAIL,
            f"Residual degrees of freedom {shown} < {policy.min_degrees_of_freedom}.",
            value=shown,
        )
    return None


def residual_degrees_of_freedom(
    design: Sequence[Sequence[Decimal | Fraction | int | str]], *, add_constant: bool = True
) -> int:
    """Residual degrees of freedom of a linear model: observations minus the rank of the design matrix.

    `design` has one row per observation and one column per regressor; `add_constant` adds the
    intercept. The rank is computed exactly (rational Gaussian elimination), so collinear regressors
    are not counted twice.
    """
    intercept = [Fraction(1)] if add_constant else []
    # Fraction reads decimal text and Decimals exactly ("0.1" is 1/10, not the nearest binary float).
    matrix = [intercept + [Fraction(value) for value in row] for row in design]
    return len(matrix) - _rank(matrix)


def _rank(matrix: list[list[Fraction]]) -> int:
    rows = [row[:] for row in matrix]
    rank = 0
    columns = len(rows[0]) if rows else 0
    for column in range(columns):
        pivot = next((index for index in range(rank, len(rows)) if rows[index][column]), None)
        if pivot is None:
            continue
        rows[rank], rows[pivot] = rows[pivot], rows[rank]
        for index in range(rank + 1, len(rows)):
            factor = rows[index][column] / rows[rank][column]
            if factor:
                rows[index] = [a - factor * b for a, b in zip(rows[index], rows[rank], strict=True)]
        rank += 1
    return rank


# ---------------------------------------------------------------------------------------------------
# Files


def check_file(
    path: str | Path,
    policy: DisclosurePolicy,
    *,
    display: str | None = None,
    declared: Mapping[str, Sequence[str]] | None = None,
) -> FileResult:
    """Check one output file, choosing the checker by its extension (and, for CSV, by its shape).

    Files we cannot check automatically get a `manual` review. Raises `OSError` only if the file
    cannot be read at all.
    """
    path = Path(path)
    name = display if display is not None else str(path)
    suffix = path.suffix.lower()
    if suffix in _DELIMITED:
        size = path.stat().st_size
        if size > MAX_TABLE_BYTES:
            message = f"The file is {size:,} bytes, more than the {MAX_TABLE_BYTES:,} checked automatically."
            return _unreadable_table(name, policy, TableFormatError(message))
        return check_table_bytes(
            path.read_bytes(), policy, path=name, delimiter=_DELIMITED[suffix], declared=declared
        )
    kind = kind_for(path)
    if kind == "other":
        message = f"Unrecognised type of file ({suffix or 'no extension'}): a person must inspect it."
    else:
        message = f"No automatic disclosure check for {kind} files ({suffix}): a person must inspect it."
    return FileResult(
        path=name,
        kind=kind,
        source=SOURCE,
        policy_version=policy.version,
        flags=(Flag(Rule.MANUAL, Verdict.REVIEW, message), *kind_flags(kind, policy)),
    )


def check_table_bytes(
    data: bytes,
    policy: DisclosurePolicy,
    *,
    path: str,
    delimiter: str | None = None,
    declared: Mapping[str, Sequence[str]] | None = None,
) -> FileResult:
    """Check the bytes of a delimited table (see `reviews.sdc.tables` for how its shape is read).

    `declared` is the table's declared shape (column names under "labels", "counts", "magnitudes",
    "statistics"), from a CSVW tableSchema or the workflow's output schema. Without one, every plausible
    reading is checked and the strictest verdict kept, so a count under the threshold never passes
    because the table was read the wrong way.
    """
    try:
        raw = read_rows(data, delimiter=delimiter)
    except TableFormatError as error:
        return _unreadable_table(path, policy, error)
    declared_problem: Flag | None = None
    try:
        if declared:
            try:
                layouts: tuple[Layout, ...] = (declared_layout(raw, declared),)
            except TableFormatError as error:
                declared_problem = Flag(
                    Rule.FORMAT,
                    Verdict.REVIEW,
                    f"The table does not match its declared shape: {error.message} "
                    "It was checked in every plausible reading instead.",
                    line=error.line,
                )
                layouts = plausible_layouts(raw)
        else:
            layouts = plausible_layouts(raw)
    except TableFormatError as error:
        result = _unreadable_table(path, policy, error)
        if declared_problem is not None:
            result = dataclasses.replace(result, flags=(declared_problem, *result.flags))
        return result
    results = [_check_layout(raw, layout, policy, path) for layout in layouts]
    # The strictest reading wins; between equally strict readings, the most likely (the first).
    chosen = max(range(len(results)), key=lambda index: (results[index].verdict.severity, -index))
    result = results[chosen]
    notes = list(result.notes)
    if len(results) > 1:
        readings = "; ".join(
            f"({number}) {layout.explanation}: {results[index].verdict}"
            for number, (index, layout) in enumerate(enumerate(layouts), start=1)
        )
        notes.append(
            f"The table can be read in {len(results)} ways, and each was checked: {readings}. "
            f"The strictest verdict is kept (reading {chosen + 1}). Declare the table's shape (a CSVW "
            "tableSchema in the results crate) to settle how it is read."
        )
    flags = result.flags if declared_problem is None else (declared_problem, *result.flags)
    return dataclasses.replace(result, notes=tuple(notes), flags=flags)


def _check_layout(raw: RawTable, layout: Layout, policy: DisclosurePolicy, path: str) -> FileResult:
    if layout.shape is Shape.MODEL_SUMMARY:
        return _check_model_summary(raw, layout, policy, path)
    if layout.shape is Shape.COEFFICIENTS:
        return _result(
            path,
            "model",
            policy,
            layout,
            flags=(
                Flag(
                    Rule.MANUAL,
                    Verdict.REVIEW,
                    "Model coefficients: this file does not state the residual degrees of freedom; "
                    "check them in the model summary.",
                ),
            ),
        )
    if layout.shape is Shape.RECORDS:
        cells = check_counts(tabulate_records(raw, layout.label_columns), policy)
        manual = Flag(Rule.MANUAL, Verdict.REVIEW, _ROW_LEVEL.format(unit="record"))
        return _result(path, "table", policy, layout, cells=cells, flags=(manual,))
    if layout.shape is Shape.CONTRIBUTIONS:
        cells, notes = check_contributions(group_contributions(raw, layout), policy)
        manual = Flag(Rule.MANUAL, Verdict.REVIEW, _ROW_LEVEL.format(unit="contribution"))
        return _result(path, "table", policy, layout, cells=cells, flags=(manual,), notes=notes)
    return _check_aggregate_table(raw, layout, policy, path)


def _result(
    path: str,
    kind: str,
    policy: DisclosurePolicy,
    layout: Layout,
    *,
    cells: tuple[Cell, ...] = (),
    flags: tuple[Flag, ...] = (),
    notes: tuple[str, ...] = (),
) -> FileResult:
    return FileResult(
        path=path,
        kind=kind,
        source=SOURCE,
        policy_version=policy.version,
        shape=str(layout.shape),
        cells=cells,
        flags=flags + kind_flags(kind, policy),
        notes=(f"Read as {layout.explanation}.", *notes),
        label_columns=layout.label_columns
        if layout.shape in (Shape.CROSS_TAB, Shape.LONG, Shape.CONTRIBUTIONS)
        else (),
    )


def _unreadable_table(path: str, policy: DisclosurePolicy, error: TableFormatError) -> FileResult:
    return FileResult(
        path=path,
        kind="table",
        source=SOURCE,
        policy_version=policy.version,
        flags=(
            Flag(Rule.FORMAT, Verdict.REVIEW, error.message, line=error.line),
            *kind_flags("table", policy),
        ),
    )


def _check_model_summary(raw: RawTable, layout: Layout, policy: DisclosurePolicy, path: str) -> FileResult:
    pairs = model_summary_pairs(raw) or {}
    text = pairs.get("Df Residuals")
    dof = parse_number(text) if text is not None else None
    if dof is None:
        found = "no 'Df Residuals:' entry" if text is None else f"'Df Residuals:' is {text!r}, not a number"
        flag = Flag(
            Rule.MANUAL,
            Verdict.REVIEW,
            f"Model summary with {found}: the residual degrees of freedom cannot be checked.",
        )
        return _result(path, "model", policy, layout, flags=(flag,))
    dof_flag = check_degrees_of_freedom(dof, policy)
    notes = [f"Residual degrees of freedom: {_show(dof)} (minimum {policy.min_degrees_of_freedom})."]
    if "No. Observations" in pairs:
        notes.append(f"Observations: {pairs['No. Observations']}.")
    return _result(path, "model", policy, layout, flags=(dof_flag,) if dof_flag else (), notes=tuple(notes))


def _check_aggregate_table(raw: RawTable, layout: Layout, policy: DisclosurePolicy, path: str) -> FileResult:
    header = raw.header
    cells = []
    for row_index, (fields, line) in enumerate(zip(raw.body, raw.body_lines, strict=True)):
        # Row labels are unique (detect_layout refuses repeats); without labels, rows are numbered.
        row = tuple(fields[column] for column in layout.label_columns) or (str(row_index + 1),)
        for column_index, column in enumerate(layout.count_columns):
            token = fields[column]
            count = None if is_no_value(token) else parse_number(token)
            cell = Cell(row, header[column], token, (row_index, column_index), field=column)
            cells.append(_with_flags(cell, count_flags(cell, count, policy, line=line)))
    flags: tuple[Flag, ...] = ()
    if layout.magnitude_columns:
        names = ", ".join(column_name(header, column) for column in layout.magnitude_columns)
        flags = (
            Flag(
                Rule.MANUAL,
                Verdict.REVIEW,
                f"Column(s) {names} hold magnitudes (a name such as value/mean/sum, or non-integer values) and "
                "the file gives no per-contributor values, so threshold, dominance and p-ratio cannot be "
                "checked: provide ACRO's results.json or the contributions.",
            ),
        )
    return _result(path, "table", policy, layout, cells=tuple(cells), flags=flags)


def tabulate_records(raw: RawTable, columns: Sequence[int]) -> list[tuple[tuple[str, ...], str, int]]:
    """The frequency table of row-level records, including the zero cells a cross-tab shows.

    With one column, each distinct value is a row of a single "count" column. With more, the last
    column's values run across and the others' combinations run down. Labels are sorted (as pandas'
    crosstab sorts them), and a blank value is a category of its own.
    """
    counts: dict[tuple[tuple[str, ...], str], int] = {}
    for fields in raw.body:
        values = [fields[column] for column in columns]
        row, column = (tuple(values), "count") if len(values) == 1 else (tuple(values[:-1]), values[-1])
        counts[row, column] = counts.get((row, column), 0) + 1
    rows = sorted({row for row, _ in counts})
    across = sorted({column for _, column in counts})
    return [(row, column, counts.get((row, column), 0)) for row in rows for column in across]


def group_contributions(raw: RawTable, layout: Layout) -> list[Contributions]:
    """Contributions per group of a long table, groups sorted by label (as pandas' pivot_table sorts)."""
    (value_column,) = layout.magnitude_columns
    column = raw.header[value_column]
    groups: dict[tuple[str, ...], list[Fraction | None]] = {}
    for fields in raw.body:
        key = tuple(fields[index] for index in layout.label_columns)
        number = parse_number(fields[value_column])
        groups.setdefault(key, []).append(Fraction(number) if number is not None else None)
    return [
        Contributions(row, column, tuple(values), (position, 0))
        for position, (row, values) in enumerate(sorted(groups.items()))
    ]

"""The vocabulary of disclosure-control results: verdicts, rules, flags, cells and per-file results.

Everything here is an immutable value. A file's verdict is never stored: it is derived from its flags,
so it cannot disagree with the evidence that produced it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """`pass`: no rule objects. `review`: a person must judge. `fail`: a rule is broken."""

    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    REVIEW = "review"
    FAIL = "fail"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Verdict.PASS: 0, Verdict.REVIEW: 1, Verdict.FAIL: 2}


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """The most severe of the verdicts; `pass` when there are none."""
    return max(verdicts, key=_SEVERITY.__getitem__, default=Verdict.PASS)


class Rule(StrEnum):
    """Why a cell or file was flagged."""

    THRESHOLD = "threshold"  # fewer records in a cell than the minimum cell count
    ZEROS = "zeros"  # a zero count when zeros are disclosive
    DOMINANCE = "dominance"  # the (n, k) rule
    P_RATIO = "p_ratio"  # the p% rule as ACRO computes it
    MISSING = "missing"  # missing contributions when the policy checks for them
    NEGATIVE = "negative"  # negative counts or contributions
    ROUNDING = "rounding"  # a count not rounded to the policy's base
    DOF = "dof"  # too few residual degrees of freedom
    ALL_SAME = "all_same"  # every contribution equal (ACRO 0.4 class disclosure)
    SUPPRESSED = "suppressed"  # a published cell without a value: its suppression needs checking
    KIND = "kind"  # the kind of output is not permitted
    FORMAT = "format"  # the file cannot be read as the table it claims to be
    MANUAL = "manual"  # nothing automatic applies; a person must inspect it
    INTEGRITY = "integrity"  # the file does not match what ACRO checked
    APPETITE = "appetite"  # ACRO ran with a laxer risk appetite than this policy
    ACRO = "acro"  # ACRO's own status, where no finer-grained flag explains it


@dataclass(frozen=True)
class Flag:
    """One rule's finding, on one cell (`row`/`column` set) or on a whole file (both None).

    `verdict` is never `pass`: a flag only exists because something needs attention.
    `position` is (row index, column index) in the table body, 0-based, as ACRO's `sdc.cells`.
    """

    rule: Rule
    verdict: Verdict
    message: str
    row: tuple[str, ...] | None = None
    column: str | None = None
    value: str | None = None
    position: tuple[int, int] | None = None
    line: int | None = None
    #: The 0-based column of the file holding the flagged value, where the cell is one of the file's.
    field: int | None = None

    def __post_init__(self) -> None:
        if self.verdict is Verdict.PASS:
            raise ValueError("A flag records a problem; its verdict cannot be pass.")

    def capped(self, ceiling: Verdict) -> Flag:
        """The same finding, made no more severe than `ceiling` (which must not be pass)."""
        if self.verdict.severity <= ceiling.severity:
            return self
        return Flag(
            self.rule,
            ceiling,
            self.message,
            self.row,
            self.column,
            self.value,
            self.position,
            self.line,
            self.field,
        )

    def to_dict(self, file: str) -> dict[str, Any]:
        data: dict[str, Any] = {
            "file": file,
            "row": list(self.row) if self.row is not None else None,
            "column": self.column,
            "value": self.value,
            "rule": str(self.rule),
            "verdict": str(self.verdict),
            "message": self.message,
        }
        if self.position is not None:
            data["position"] = list(self.position)
        if self.line is not None:
            data["line"] = self.line
        if self.field is not None:
            data["field"] = self.field
        return data


@dataclass(frozen=True)
class Cell:
    """One cell of a checked table, with every flag raised against it (none means it passed)."""

    row: tuple[str, ...]
    column: str
    value: str | None
    position: tuple[int, int]
    flags: tuple[Flag, ...] = ()
    #: The 0-based column of the file holding the value, where the cell is one of the file's.
    field: int | None = None

    @property
    def verdict(self) -> Verdict:
        return worst(flag.verdict for flag in self.flags)

    @property
    def rules(self) -> frozenset[Rule]:
        return frozenset(flag.rule for flag in self.flags)

    def flag(self, rule: Rule, verdict: Verdict, message: str, *, line: int | None = None) -> Flag:
        """A flag located at this cell."""
        return Flag(
            rule, verdict, message, self.row, self.column, self.value, self.position, line, self.field
        )


@dataclass(frozen=True)
class FileResult:
    """The disclosure-control result for one output file.

    `source` says who judged it: "portal" for our own checks, "ACRO <version>" when ACRO's results.json
    described the file. `justification` is ACRO's exception (the researcher's case for release) and
    `comments` ACRO's comments; neither changes the verdict, they are shown to the output checker.
    """

    path: str
    kind: str
    source: str
    policy_version: str
    shape: str | None = None
    cells: tuple[Cell, ...] = ()
    flags: tuple[Flag, ...] = ()
    notes: tuple[str, ...] = ()
    justification: str = ""
    comments: tuple[str, ...] = ()
    #: The 0-based file columns read as row labels (for a table read cell by cell).
    label_columns: tuple[int, ...] = ()

    @property
    def verdict(self) -> Verdict:
        return worst(flag.verdict for flag in self.all_flags)

    @property
    def all_flags(self) -> tuple[Flag, ...]:
        """Cell flags in table order, then file-level flags."""
        return tuple(flag for cell in self.cells for flag in cell.flags) + self.flags

    def cell(self, row: str | tuple[str, ...], column: str) -> Cell:
        """The cell at the given labels (a single row label may be given as a plain string)."""
        key = (row,) if isinstance(row, str) else tuple(row)
        for cell in self.cells:
            if cell.row == key and cell.column == column:
                return cell
        raise KeyError(f"{self.path} has no cell at row {key!r}, column {column!r}.")

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "verdict": str(self.verdict),
            "kind": self.kind,
            "shape": self.shape,
            "source": self.source,
            "policy_version": self.policy_version,
            "cells_checked": len(self.cells),
            "flags": [flag.to_dict(self.path) for flag in self.all_flags],
            "notes": list(self.notes),
            "justification": self.justification,
            "comments": list(self.comments),
            "label_columns": list(self.label_columns),
        }


# What each rule means, in words that quote no value: what a researcher reads before release.
RULE_TEXT = {
    Rule.THRESHOLD: "A count is below the minimum cell count.",
    Rule.ZEROS: "A zero count, which this policy treats as disclosive.",
    Rule.DOMINANCE: "A few contributors dominate this cell.",
    Rule.P_RATIO: "The p% rule: one contribution could be estimated too closely.",
    Rule.MISSING: "Some contributions are missing.",
    Rule.NEGATIVE: "A count or contribution is negative.",
    Rule.ROUNDING: "A count is not rounded as the policy requires.",
    Rule.DOF: "Too few residual degrees of freedom.",
    Rule.ALL_SAME: "Every contribution to this cell is the same.",
    Rule.SUPPRESSED: "A suppressed cell whose suppression needs checking.",
    Rule.KIND: "This kind of output is not permitted.",
    Rule.FORMAT: "The file cannot be read as the table it claims to be.",
    Rule.MANUAL: "No automatic check applies: a person must inspect it.",
    Rule.INTEGRITY: "The file does not match what ACRO checked.",
    Rule.APPETITE: "ACRO ran with a laxer risk appetite than this policy.",
    Rule.ACRO: "ACRO's own checks did not pass.",
}
_REDACTED_FLAG_KEYS = ("file", "row", "column", "field", "position", "line", "rule", "verdict")
_REDACTED_KEYS = (
    "path",
    "verdict",
    "kind",
    "shape",
    "source",
    "policy_version",
    "cells_checked",
    "label_columns",
    "justification",
)


def redact(result: dict[str, Any] | None) -> dict[str, Any]:
    """A file's result (``FileResult.to_dict()``) as it may be shown before release to someone who is not
    its checker: verdicts, rule names and cell positions, never the flagged values.

    Values, the checks' messages (which quote them), notes and ACRO's comments are left out; each flag's
    message is its rule's plain description. ``justification`` is the researcher's own text and stays.
    """
    result = result or {}
    shown = {key: result[key] for key in _REDACTED_KEYS if key in result}
    flags = []
    for flag in result.get("flags") or []:
        kept = {key: flag[key] for key in _REDACTED_FLAG_KEYS if key in flag}
        try:
            kept["message"] = RULE_TEXT[Rule(flag.get("rule"))]
        except ValueError:
            kept["message"] = "A disclosure rule flagged this."
        flags.append(kept)
    shown["flags"] = flags
    shown["notes"] = []
    shown["comments"] = []
    shown["redacted"] = True
    return shown

"""Reading ACRO's `results.json` (0.4.x and 1.x) into the portal's verdicts.

ACRO (AI-SDC/ACRO) checks outputs inside the TRE as the researcher makes them, and `finalise()` writes a
folder holding `results.json`, `config.json` (the risk appetite it used), the output files and their
SHA-256 checksums. This module maps each output ACRO describes to a `FileResult` per file:

- ACRO's per-cell outcome strings ("ok", "NKCheck; PPercentCheck; ", or 0.4's "threshold; nk-rule; ")
  become cell flags with the portal's rule names (`ACRO_CHECK_RULES`);
- a flag's verdict is the check's own status where 1.x records it (`fair.check_status`), else `review`
  for missing/negative/manual checks and `fail` for the rest, and never more severe than the output's
  status (ACRO lowers the status to review when it suppressed or rounded cells, or found missing values);
- the file's verdict is therefore ACRO's status, plus anything the portal adds: a laxer risk appetite
  than the policy, a file changed since ACRO checksummed it, a kind the policy does not permit;
- ACRO's exception (the researcher's justification) and comments are kept, and change no verdict.

Nothing here raises for bad content: unknown versions, missing fields and malformed values become
`review` flags with a message naming what is wrong. Only reading files can raise `OSError`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

from reviews.sdc.checks import kind_flags, kind_for
from reviews.sdc.policy import DisclosurePolicy, PolicyError
from reviews.sdc.tables import TableFormatError, detect_layout, read_rows
from reviews.sdc.verdicts import Cell, FileResult, Flag, Rule, Verdict, worst

RESULTS_NAME = "results.json"
CONFIG_NAME = "config.json"
CHECKSUMS_DIR = "checksums"

#: ACRO's check names (1.x) and outcome codes (0.4.x) and the portal rule each corresponds to.
ACRO_CHECK_RULES: Mapping[str, Rule] = MappingProxyType(
    {
        "MinimumThresholdCheck": Rule.THRESHOLD,
        "PresenceOfZeroCheck": Rule.ZEROS,
        "NKCheck": Rule.DOMINANCE,
        "PPercentCheck": Rule.P_RATIO,
        "MissingCheck": Rule.MISSING,
        "MinimumDoFCheck": Rule.DOF,
        "AllSameValuesCheck": Rule.ALL_SAME,
        "StatbarnDataCheck": Rule.MANUAL,
        "PresenceOfLinkedTableCheck": Rule.MANUAL,
        "threshold": Rule.THRESHOLD,
        "p-ratio": Rule.P_RATIO,
        "nk-rule": Rule.DOMINANCE,
        "all-values-are-same": Rule.ALL_SAME,
        "negative": Rule.NEGATIVE,
        "missing": Rule.MISSING,
    }
)

# ACRO asks for review rather than failing on these (and on checks it cannot decide).
_REVIEW_RULES = frozenset({Rule.MISSING, Rule.NEGATIVE, Rule.MANUAL})

_MEANING = {
    Rule.THRESHOLD: "fewer records than the minimum cell count",
    Rule.ZEROS: "a zero count, disclosive under ACRO's risk appetite",
    Rule.DOMINANCE: "the largest contributors dominate the cell",
    Rule.P_RATIO: "the largest contribution can be estimated too closely",
    Rule.MISSING: "missing values were ignored in the calculation",
    Rule.NEGATIVE: "negative values, for which dominance is not defined",
    Rule.DOF: "too few residual degrees of freedom",
    Rule.ALL_SAME: "every value in the cell is the same",
    Rule.MANUAL: "a manual check is needed",
}
_UNDECIDED = "ACRO could not assess it and asks for review (for example, dominance with negative values)"

_OUTPUT_TYPE_KINDS = {
    "table": "table",
    "regression": "model",
    "histogram": "figure",
    "pie chart": "figure",
    "survival plot": "figure",
}

_STATUSES = {"pass": Verdict.PASS, "review": Verdict.REVIEW, "fail": Verdict.FAIL}
_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.\S+)?$")


@dataclass(frozen=True)
class AcroResults:
    """What one `results.json` says about the files it lists.

    `files` maps each file name as listed in results.json (relative to its folder) to its result.
    `problems` are flags about results.json itself (invalid JSON, unknown version, an output without
    files) that belong to no single output file.
    """

    path: str
    version: str | None
    files: Mapping[str, FileResult] = field(default_factory=dict)
    problems: tuple[Flag, ...] = ()
    policy_version: str = ""

    @property
    def supported(self) -> bool:
        return is_supported_version(self.version)

    def problems_result(self) -> FileResult | None:
        """A result for results.json itself when it has problems (so they reach the report), else None."""
        if not self.problems:
            return None
        return FileResult(
            path=self.path,
            kind="acro results",
            source=_source(self.version),
            policy_version=self.policy_version,
            flags=self.problems,
        )


def is_supported_version(version: Any) -> bool:
    """ACRO 1.x, and 0.x from 0.4 on (the pre-ontology format; SACRO-Viewer's oldest supported)."""
    match = _VERSION.match(version) if isinstance(version, str) else None
    if match is None:
        return False
    major, minor = int(match[1]), int(match[2])
    return (major == 0 and minor >= 4) or major == 1


def _source(version: str | None) -> str:
    return f"ACRO {version}" if version else "ACRO"


def read_results(path: str | Path, policy: DisclosurePolicy, *, display: str | None = None) -> AcroResults:
    """Read `results.json` and its folder (config.json, checksums, the listed files).

    Raises `OSError` only when results.json itself cannot be read.
    """
    path = Path(path)
    shown = display if display is not None else str(path)
    data = path.read_bytes()
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        return _broken(shown, policy, f"{RESULTS_NAME} is not UTF-8 text (byte offset {error.start}).")
    except json.JSONDecodeError as error:
        return _broken(
            shown,
            policy,
            f"{RESULTS_NAME} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}.",
        )
    folder = path.parent
    config: Mapping[str, Any] | None | str
    try:
        config = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        config = None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        config = f"{CONFIG_NAME} cannot be read: {error}"
    return parse_results(document, policy, path=shown, folder=folder, acro_config=config)


def _broken(path: str, policy: DisclosurePolicy, message: str) -> AcroResults:
    return AcroResults(
        path, None, problems=(Flag(Rule.FORMAT, Verdict.REVIEW, message),), policy_version=policy.version
    )


def parse_results(
    document: Any,
    policy: DisclosurePolicy,
    *,
    path: str = RESULTS_NAME,
    folder: Path | None = None,
    acro_config: Mapping[str, Any] | None | str = None,
) -> AcroResults:
    """Map a parsed results.json document to verdicts.

    `folder` is where the listed files are; without it, files are not looked at (no values, checksums
    or presence checks). `acro_config` is ACRO's config.json: None when there is none (its appetite is
    then unknown, which needs review), a string when it could not be read (the reason).
    """
    if not isinstance(document, Mapping):
        return _broken(path, policy, f"{RESULTS_NAME} is not a JSON object.")
    version = document.get("version")
    problems: list[Flag] = []
    if not isinstance(version, str):
        problems.append(
            Flag(Rule.FORMAT, Verdict.REVIEW, f"{RESULTS_NAME} does not say which ACRO version wrote it.")
        )
        version = None
    outputs = document.get("results")
    if not isinstance(outputs, Mapping) or not outputs:
        problems.append(
            Flag(Rule.FORMAT, Verdict.REVIEW, f"{RESULTS_NAME} has no 'results' listing outputs.")
        )
        return AcroResults(path, version, problems=tuple(problems), policy_version=policy.version)

    reader = _Reader(policy, version, folder, _appetite_flags(acro_config, policy))
    files: dict[str, FileResult] = {}
    for uid, record in outputs.items():
        for name, result in reader.output(str(uid), record, problems):
            if name in files:
                problems.append(
                    Flag(
                        Rule.FORMAT,
                        Verdict.REVIEW,
                        f"{name} is listed by more than one output; all verdicts kept.",
                    )
                )
                earlier = files[name]
                result = dataclasses.replace(
                    earlier, cells=earlier.cells + result.cells, flags=earlier.flags + result.flags
                )
            files[name] = result
    return AcroResults(path, version, files, tuple(problems), policy.version)


def _appetite_flags(
    acro_config: Mapping[str, Any] | None | str, policy: DisclosurePolicy
) -> tuple[Flag, ...]:
    """A review when ACRO's risk appetite is unknown, unreadable or laxer than the policy in any check."""
    if acro_config is None:
        return (
            Flag(
                Rule.APPETITE,
                Verdict.REVIEW,
                f"No {CONFIG_NAME} next to {RESULTS_NAME}: the risk appetite ACRO used is unknown.",
            ),
        )
    if isinstance(acro_config, str):
        return (Flag(Rule.APPETITE, Verdict.REVIEW, acro_config),)
    try:
        ran = DisclosurePolicy.from_acro_config(acro_config)
    except PolicyError as error:
        return (
            Flag(Rule.APPETITE, Verdict.REVIEW, f"{CONFIG_NAME} is not a valid ACRO risk appetite: {error}"),
        )
    laxer = []
    if ran.min_cell_count < policy.min_cell_count:
        laxer.append(f"safe_threshold {ran.min_cell_count} (policy {policy.min_cell_count})")
    if policy.zeros_disclosive and not ran.zeros_disclosive:
        laxer.append("zeros_are_disclosive false (policy: zeros are disclosive)")
    if ran.dominance_n < policy.dominance_n:
        laxer.append(f"safe_nk_n {ran.dominance_n} (policy {policy.dominance_n})")
    if ran.dominance_k > policy.dominance_k:
        laxer.append(f"safe_nk_k {ran.dominance_k} (policy {policy.dominance_k})")
    if ran.p_ratio < policy.p_ratio:
        laxer.append(f"safe_pratio_p {ran.p_ratio} (policy {policy.p_ratio})")
    if policy.check_missing_values and not ran.check_missing_values:
        laxer.append("check_missing_values false (policy checks missing values)")
    if ran.min_degrees_of_freedom < policy.min_degrees_of_freedom:
        laxer.append(
            f"safe_dof_threshold {ran.min_degrees_of_freedom} (policy {policy.min_degrees_of_freedom})"
        )
    if not laxer:
        return ()
    return (
        Flag(
            Rule.APPETITE,
            Verdict.REVIEW,
            "ACRO checked this with a laxer risk appetite than the policy, so its verdict may be too lenient: "
            + "; ".join(laxer)
            + ".",
        ),
    )


class _Reader:
    """Maps one results.json's outputs; holds what every output shares."""

    def __init__(
        self, policy: DisclosurePolicy, version: str | None, folder: Path | None, appetite: tuple[Flag, ...]
    ) -> None:
        self.policy = policy
        self.version = version
        self.supported = is_supported_version(version)
        self.folder = folder
        self.appetite = appetite

    def output(self, uid: str, record: Any, problems: list[Flag]) -> list[tuple[str, FileResult]]:
        """(file name, result) for each file of one output; problems without a file go to `problems`."""
        if not isinstance(record, Mapping):
            problems.append(Flag(Rule.FORMAT, Verdict.REVIEW, f"Output {uid!r} is not a JSON object."))
            return []
        names = _file_names(record.get("files"))
        if not names:
            problems.append(
                Flag(Rule.FORMAT, Verdict.REVIEW, f"Output {uid!r} lists no files (each needs a 'name').")
            )
            return []
        output_type = _text(record.get("type")) or None
        summary = _text(record.get("summary"))
        notes = [f"ACRO output {uid}" + (f" ({output_type})" if output_type else "") + "."]
        if summary:
            notes.append(f"ACRO summary: {' '.join(summary.split())}")
        if self.supported:
            cells, flags = self._judgement(uid, record, names[0], summary, notes)
        else:
            shown = repr(self.version) if self.version else "(none given)"
            message = (
                f"ACRO version {shown} is not supported (0.4.x and 1.x are), so its verdicts were not used; "
                f"it recorded status {record.get('status')!r}."
            )
            cells, flags = (), [Flag(Rule.ACRO, Verdict.REVIEW, message)]

        # A table output's cells belong to its first (normally only) file.
        return [
            (name, self._file_result(name, record, output_type, cells if index == 0 else (), flags, notes))
            for index, name in enumerate(names)
        ]

    def _judgement(
        self, uid: str, record: Mapping[str, Any], first_file: str, summary: str, notes: list[str]
    ) -> tuple[tuple[Cell, ...], list[Flag]]:
        """ACRO's verdict on one output: its cells, and file-level flags that explain its status."""
        status, flags = _status(uid, record.get("status"))
        # No flag may be more severe than ACRO's status; a pass with flagged cells is inconsistent.
        ceiling = status if status is not Verdict.PASS else Verdict.REVIEW
        fair = record.get("fair")
        check_status = fair.get("check_status") if isinstance(fair, Mapping) else None
        cells: tuple[Cell, ...] = ()
        outcome = record.get("outcome")
        if outcome:
            cells, problems = cells_from_outcome(
                outcome, check_status=check_status, ceiling=ceiling, values=self._values(first_file)
            )
            flags.extend(problems)
            if status is Verdict.PASS and any(cell.flags for cell in cells):
                flags.append(Flag(Rule.ACRO, Verdict.REVIEW, "ACRO's status is pass, yet it flagged cells."))
        flags.extend(_model_flags(record, ceiling, check_status, summary, notes))
        if record.get("type") == "custom":
            flags.append(
                Flag(
                    Rule.MANUAL, Verdict.REVIEW, "A custom output: ACRO does not check these; a person must."
                )
            )
        notes.extend(_mitigation_notes(record))
        explained = worst(flag.verdict for flag in [*flags, *(f for cell in cells for f in cell.flags)])
        if explained.severity < status.severity:
            flags.append(
                Flag(Rule.ACRO, status, f"ACRO's status is {status}: {summary or 'no summary given'}")
            )
        return cells, flags

    def _file_result(
        self,
        name: str,
        record: Mapping[str, Any],
        output_type: str | None,
        cells: tuple[Cell, ...],
        flags: list[Flag],
        notes: list[str],
    ) -> FileResult:
        # Custom outputs and unknown types are whatever kind their file is.
        kind = _OUTPUT_TYPE_KINDS.get(output_type or "") or kind_for(name)
        file_flags = [*flags, *kind_flags(kind, self.policy)]
        if output_type != "custom":
            file_flags.extend(self.appetite)
            file_flags.extend(self._rounding_flags(record, output_type))
        file_notes = list(notes)
        file_flags.extend(self._integrity_flags(name, file_notes))
        return FileResult(
            path=name,
            kind=kind,
            source=_source(self.version),
            policy_version=self.policy.version,
            shape=f"ACRO {output_type}" if output_type else None,
            cells=cells,
            flags=tuple(file_flags),
            notes=tuple(file_notes),
            justification=_text(record.get("exception")),
            comments=_texts(record.get("comments")),
        )

    def _rounding_flags(self, record: Mapping[str, Any], output_type: str | None) -> list[Flag]:
        base = self.policy.rounding_base
        if not base or output_type != "table":
            return []
        properties = record.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        mitigation, round_base = properties.get("mitigation"), properties.get("round_base")
        if (
            mitigation == "round"
            and isinstance(round_base, int)
            and round_base > 0
            and round_base % base == 0
        ):
            return []
        done = f"rounded to {round_base}" if mitigation == "round" else f"mitigation {mitigation or 'none'}"
        return [
            Flag(
                Rule.ROUNDING,
                Verdict.REVIEW,
                f"The policy requires counts rounded to a multiple of {base}; ACRO's output has {done}.",
            )
        ]

    def _resolve(self, name: str) -> Path | None:
        return listed_path(self.folder, name) if self.folder is not None else None

    def _integrity_flags(self, name: str, notes: list[str]) -> list[Flag]:
        if self.folder is None:
            return []
        path = self._resolve(name)
        if path is None:
            return [
                Flag(
                    Rule.INTEGRITY, Verdict.REVIEW, f"The file name {name!r} points outside the ACRO folder."
                )
            ]
        if not path.is_file():
            return [
                Flag(
                    Rule.INTEGRITY,
                    Verdict.REVIEW,
                    f"{RESULTS_NAME} lists {name} but it is not in the folder.",
                )
            ]
        checksum_file = self.folder / CHECKSUMS_DIR / f"{PurePosixPath(name).name}.txt"
        try:
            recorded = checksum_file.read_text(encoding="utf-8").strip().lower()
        except (OSError, UnicodeDecodeError):
            notes.append(f"No checksum recorded by ACRO for {name}.")
            return []
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if recorded != actual:
            return [
                Flag(
                    Rule.INTEGRITY,
                    Verdict.REVIEW,
                    f"{name} has changed since ACRO checked it: its SHA-256 differs from "
                    f"{CHECKSUMS_DIR}/{checksum_file.name}.",
                )
            ]
        notes.append("SHA-256 matches ACRO's checksum.")
        return []

    def _values(self, name: str) -> Mapping[tuple[str, str], str]:
        """The published value of each (row label, column) of a listed CSV, when it can be read."""
        path = self._resolve(name)
        if path is None or path.suffix.lower() not in (".csv", ".tsv") or not path.is_file():
            return {}
        try:
            raw = read_rows(path.read_bytes())
            layout = detect_layout(raw)
        except (OSError, TableFormatError):
            return {}
        if len(layout.label_columns) != 1:
            return {}
        (label,) = layout.label_columns
        columns = layout.count_columns + layout.magnitude_columns
        return {
            (fields[label], raw.header[column]): fields[column] for fields in raw.body for column in columns
        }


def listed_path(folder: Path, name: str) -> Path | None:
    """Where a file listed in results.json is: inside `folder`, or None if the name would leave it."""
    relative = PurePosixPath(name.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        return None
    return folder.joinpath(*relative.parts)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()


def _file_names(files: Any) -> list[str]:
    if not isinstance(files, list):
        return []
    names = []
    for entry in files:
        name = entry.get("name") if isinstance(entry, Mapping) else None
        if not isinstance(name, str) or not name.strip():
            return []
        names.append(name)
    return names


def _status(uid: str, raw: Any) -> tuple[Verdict, list[Flag]]:
    if not isinstance(raw, str):
        return Verdict.REVIEW, [
            Flag(Rule.ACRO, Verdict.REVIEW, f"ACRO recorded no status for output {uid!r}.")
        ]
    status = _STATUSES.get(raw.strip().lower())
    if status is None:
        message = (
            f"ACRO status {raw!r} of output {uid!r} is not one ACRO's checks produce (pass, review, fail)."
        )
        return Verdict.REVIEW, [Flag(Rule.ACRO, Verdict.REVIEW, message)]
    return status, []


def cells_from_outcome(
    outcome: Any,
    *,
    check_status: Any = None,
    ceiling: Verdict = Verdict.FAIL,
    values: Mapping[tuple[str, str], str] | None = None,
) -> tuple[tuple[Cell, ...], tuple[Flag, ...]]:
    """Cells from ACRO's `outcome` ({column: {row: "ok" | "Check; Check; "}}), and any problems with it.

    Positions follow the order ACRO wrote (pandas keeps table order), so they match `sdc.cells`.
    An empty string (0.4.x, for cells it did not assess) carries no flag, like "ok".
    """
    if not isinstance(outcome, Mapping) or not all(
        isinstance(column, Mapping) for column in outcome.values()
    ):
        return (), (
            Flag(
                Rule.FORMAT, Verdict.REVIEW, "ACRO's outcome is not a table of cells ({column: {row: text}})."
            ),
        )
    statuses = check_status if isinstance(check_status, Mapping) else {}
    rows: dict[str, int] = {}
    for column_cells in outcome.values():
        for row in column_cells:
            rows.setdefault(str(row), len(rows))
    values = values or {}
    cells = []
    problems = []
    for column_index, (column, column_cells) in enumerate(outcome.items()):
        column = str(column)
        for row, text in column_cells.items():
            row = str(row)
            cell = Cell((row,), column, values.get((row, column)), (rows[row], column_index))
            if not isinstance(text, str):
                problems.append(
                    Flag(
                        Rule.FORMAT,
                        Verdict.REVIEW,
                        f"ACRO's outcome for row {row!r}, column {column!r} is not text.",
                    )
                )
                continue
            flags = [_cell_flag(cell, name, statuses).capped(ceiling) for name in _check_names(text)]
            cells.append(Cell(cell.row, cell.column, cell.value, cell.position, tuple(flags)))
    cells.sort(key=lambda cell: cell.position)
    return tuple(cells), tuple(problems)


def _check_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(";") if name.strip() and name.strip().lower() != "ok"]


def _cell_flag(cell: Cell, name: str, statuses: Mapping[str, Any]) -> Flag:
    rule = ACRO_CHECK_RULES.get(name)
    if rule is None:
        return cell.flag(
            Rule.ACRO, Verdict.REVIEW, f"ACRO flagged the cell with {name!r}, a check not known here."
        )
    recorded = statuses.get(name)
    if recorded in ("fail", "review"):
        verdict = Verdict(recorded)
    elif recorded == "pass":
        # The check passed overall yet marked this cell: inconsistent, so a person must look.
        verdict = Verdict.REVIEW
    else:
        verdict = Verdict.REVIEW if rule in _REVIEW_RULES else Verdict.FAIL
    meaning = _UNDECIDED if verdict is Verdict.REVIEW and rule not in _REVIEW_RULES else _MEANING[rule]
    return cell.flag(rule, verdict, f"ACRO {name}: {meaning}.")


def _model_flags(
    record: Mapping[str, Any], ceiling: Verdict, check_status: Any, summary: str, notes: list[str]
) -> list[Flag]:
    """The degrees-of-freedom verdict of a model output (ACRO keeps dof in `properties`)."""
    properties = record.get("properties")
    dof = properties.get("dof") if isinstance(properties, Mapping) else None
    if isinstance(dof, bool) or not isinstance(dof, int | float):
        return []
    shown = f"{dof:g}"
    notes.append(f"ACRO: residual degrees of freedom {shown}.")
    recorded = check_status.get("MinimumDoFCheck") if isinstance(check_status, Mapping) else None
    # 0.4.x records no per-check status; a failing regression output failed on its dof.
    verdict = (
        _STATUSES.get(recorded)
        if isinstance(recorded, str)
        else _STATUSES.get(_text(record.get("status")).lower())
    )
    if verdict is None or verdict is Verdict.PASS:
        return []
    message = f"ACRO: {summary}" if summary else "ACRO MinimumDoFCheck: too few residual degrees of freedom."
    return [Flag(Rule.DOF, verdict, message, value=shown).capped(ceiling)]


def _mitigation_notes(record: Mapping[str, Any]) -> list[str]:
    notes = []
    properties = record.get("properties")
    mitigation = properties.get("mitigation") if isinstance(properties, Mapping) else None
    if mitigation == "suppress":
        notes.append("ACRO suppressed the disclosive cells.")
    elif mitigation == "round":
        notes.append(f"ACRO rounded every cell to base {properties.get('round_base', '?')}.")
    counts = []
    for entry in record.get("files") or ():
        sdc = entry.get("sdc") if isinstance(entry, Mapping) else None
        summary = sdc.get("summary") if isinstance(sdc, Mapping) else None
        if not isinstance(summary, Mapping):
            continue
        if summary.get("suppressed") is True:
            notes.append("ACRO suppressed the disclosive cells.")
        counts.extend(
            f"{check} {number}"
            for check, number in summary.items()
            if isinstance(number, int) and not isinstance(number, bool) and number > 0
        )
    if counts:
        notes.append("ACRO cells per check: " + ", ".join(counts) + ".")
    return notes

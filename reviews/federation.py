"""Federated results: released count tables from several TREs' jobs of one request, combined.

Tables combine when they have the same row-label columns (by name, in any order); rows match by their
label tuple, value columns by name. A category (row or column) that some TREs lack contributes nothing
from them; a cell a TRE suppressed leaves the combined cell without a value. Counts are summed cell by
cell, rounded to the strictest rounding base of the TREs involved, and the sum is re-checked under the
strictest of their policies. Cells that someone could recover by subtracting one TRE's released table (or
an earlier combination) from the sum are flagged (differencing). A combination is itself a release: it
waits for an output checker's decision.
"""

import csv
import hashlib
import io
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from portal import audit
from portal.errors import Refusal
from reviews import notifications, outputs, pooling
from reviews.models import CombinedRelease, OutputFile
from reviews.permissions import check_combine, check_decide_combined
from reviews.sdc import check_table_bytes, strictest
from reviews.sdc.tables import (
    Shape,
    TableFormatError,
    declared_layout,
    is_no_value,
    parse_number,
    plausible_layouts,
    read_rows,
)


class CombineError(Refusal):
    """The tables cannot be combined; the message says why."""


@dataclass
class Table:
    """One TRE's released count table: label and value column names, and cells by label tuple.

    A cell's value is None where the TRE published no value (suppressed)."""

    where: str
    labels: tuple[str, ...]
    values: tuple[str, ...]
    rows: dict[tuple[str, ...], dict[str, Decimal | None]] = field(default_factory=dict)


def read_table(data, where, declared=None):
    """The count table in `data` (bytes of a released CSV), read as the disclosure checks read it:
    by its declared shape, or by the one plausible reading (a table that reads several ways is refused,
    since rows matched under the wrong reading would be summed wrongly)."""
    try:
        raw = read_rows(data)
        if declared:
            layout = declared_layout(raw, declared)
        else:
            layouts = plausible_layouts(raw)
            if len({layout.label_columns for layout in layouts}) > 1:
                raise CombineError(
                    f"{where}: the table can be read in {len(layouts)} ways, so its rows cannot be matched "
                    "safely; declare its shape (the workflow's output schema or a CSVW tableSchema)."
                )
            layout = layouts[0]
    except TableFormatError as error:
        raise CombineError(f"{where}: {error.message}") from None
    header = raw.header
    if layout.shape not in (Shape.CROSS_TAB, Shape.LONG) or layout.magnitude_columns:
        raise CombineError(
            f"{where}: only tables of counts can be combined, and this is read as {layout.explanation}."
        )
    if not layout.label_columns:
        raise CombineError(f"{where}: the table has no row-label columns to match rows by.")
    table = Table(
        where,
        tuple(header[i] for i in layout.label_columns),
        tuple(header[i] for i in layout.count_columns),
    )
    for fields, line in zip(raw.body, raw.body_lines, strict=True):
        key = tuple(fields[i] for i in layout.label_columns)
        cells = {}
        for index in layout.count_columns:
            token = fields[index]
            number = None if is_no_value(token) else parse_number(token)
            if number is not None and (number < 0 or number != number.to_integral_value()):
                raise CombineError(
                    f"{where}, line {line}, column {header[index]!r}: {token!r} is not a count "
                    "(only whole, non-negative numbers can be combined)."
                )
            cells[header[index]] = number
        table.rows[key] = cells
    return table


def _released_rows(table):
    """The cells of an earlier combination, from its stored header and rows."""
    header, count = table["header"], table.get("labels", 1)
    return {
        tuple(row[:count]): {
            column: None if is_no_value(value) else parse_number(value)
            for column, value in zip(header[count:], row[count:], strict=False)
        }
        for row in table["rows"]
    }


def _read_output(output):
    workflow = output.job.workflow
    declared = (workflow.output_schemas or {}).get(output.name) if workflow is not None else None
    with output.stored.open("rb") as handle:
        return read_table(handle.read(), f"{output.path} at {output.job.tre}", declared)


def _aligned(tables):
    """Every table's rows keyed in the first table's label order; the label and value columns."""
    labels = tables[0].labels
    for table in tables[1:]:
        if set(table.labels) != set(labels):
            raise CombineError(
                f"{table.where} has row labels {list(table.labels)}, not {list(labels)}: the schemas differ."
            )
    values = []
    for table in tables:
        values.extend(name for name in table.values if name not in values)
    for table in tables:
        order = [table.labels.index(name) for name in labels]
        table.rows = {tuple(key[i] for i in order): cells for key, cells in table.rows.items()}
        table.labels = labels
    return labels, tuple(values)


def combine_tables(tables, rounding_base=0):
    """The combined table: (labels, values, rows, notes); `rows` maps label tuples to {column: value}."""
    labels, values = _aligned(tables)
    keys = []
    for table in tables:
        keys.extend(key for key in table.rows if key not in keys)
    notes = []
    rows = {}
    for key in keys:
        cells = {}
        for column in values:
            present = [t for t in tables if key in t.rows and column in t.rows[key]]
            if any(t.rows[key][column] is None for t in present):
                cells[column] = None
                continue
            total = sum((t.rows[key][column] for t in present), Decimal(0))
            if rounding_base:
                total = (total / rounding_base).quantize(Decimal(1), rounding=ROUND_HALF_UP) * rounding_base
            cells[column] = total
        rows[key] = cells
    for table in tables:
        missing_rows = [" / ".join(key) for key in keys if key not in table.rows]
        missing_columns = [column for column in values if column not in table.values]
        if missing_rows or missing_columns:
            parts = [f"rows {', '.join(missing_rows)}" if missing_rows else "", ", ".join(missing_columns)]
            notes.append(
                f"{table.where} has no {' or columns '.join(p for p in parts if p)}; it contributes nothing there."
            )
    suppressed = sum(value is None for cells in rows.values() for value in cells.values())
    if suppressed:
        notes.append(f"{suppressed} cell(s) suppressed at a TRE are left without a value.")
    if rounding_base:
        notes.append(f"Sums are rounded to the nearest multiple of {rounding_base} (the strictest base).")
    return labels, values, rows, notes


def differencing(rows, others, threshold):
    """Cells where a released table subtracted from the combined one leaves a small non-zero count."""
    risks = []
    for key, cells in rows.items():
        for column, total in cells.items():
            if total is None:
                continue
            for name, other in others:
                value = other.get(key, {}).get(column)
                if value is None:
                    continue
                rest = total - value
                if 0 < rest < threshold:
                    risks.append(
                        {
                            "row": " / ".join(key),
                            "column": column,
                            "value": str(rest),
                            "message": f"The combined {total} minus {value} from {name} leaves {rest}, "
                            f"under {threshold}.",
                        }
                    )
    return risks


def combinable(request):
    """Released CSV outputs of the request grouped by file name, where more than one TRE released one."""
    groups = defaultdict(list)
    released = (
        OutputFile.objects.filter(job__request=request, status=OutputFile.Status.RELEASED)
        .select_related("job__tre")
        .order_by("job__tre__slug", "pk")
    )
    for output in released:
        if output.name.lower().endswith(".csv"):
            groups[output.name].append(output)
    return {name: items for name, items in groups.items() if len({o.job.tre_id for o in items}) > 1}


@transaction.atomic
def combine(request, name, *, by):
    """Combine the released `name` tables of `request` into a pending release."""
    sources = combinable(request).get(name)
    if not sources:
        raise CombineError(f"No two TREs have released a table called {name}.")
    check_combine(by, [output.job for output in sources])
    tables = [(o, _read_output(o)) for o in sources]
    policy = strictest(*(outputs.policy_for(o.job) for o, _ in tables))
    labels, values, rows, notes = combine_tables([t for _, t in tables], policy.rounding_base)
    header = [*labels, *values]
    lines = io.StringIO()
    writer = csv.writer(lines, lineterminator="\n")
    writer.writerow(header)
    shown_rows = [
        [*key, *("" if cells[c] is None else str(cells[c]) for c in values)] for key, cells in rows.items()
    ]
    writer.writerows(shown_rows)
    data = lines.getvalue().encode()
    result = check_table_bytes(
        data, policy, path=f"combined/{name}", declared={"labels": list(labels), "counts": list(values)}
    )
    others = [(f"{o.job.tre}", t.rows) for o, t in tables]
    for earlier in CombinedRelease.objects.filter(request=request, status=CombinedRelease.Status.RELEASED):
        if earlier.table.get("header") == header:
            others.append((f"combined release {earlier.pk}", _released_rows(earlier.table)))
    risks = differencing(rows, others, policy.min_cell_count)
    sdc = result.to_dict()
    sdc["notes"] = [*sdc["notes"], *notes]
    verdict = str(result.verdict)
    if risks and verdict == "pass":
        verdict = "review"
    release = CombinedRelease(
        request=request,
        created_by=by,
        table={"header": header, "labels": len(labels), "rows": shown_rows},
        sha256=hashlib.sha256(data).hexdigest(),
        policy_version=policy.version,
        policy=policy.as_dict(),
        sdc=sdc,
        sdc_verdict=verdict,
        differencing=risks,
    )
    release.stored.save(f"combined-{request.pk}-{name}", ContentFile(data), save=False)
    release.save()
    release.sources.set([o for o, _ in tables])
    audit.record(
        "outputs.combined",
        by=by,
        obj=release,
        after={
            "sources": [o.pk for o, _ in tables],
            "verdict": verdict,
            "risks": len(risks),
            "policy": policy.version,
        },
        project=request.project,
    )
    checkers = {u.pk: u for o, _ in tables for u in notifications.checkers_of(o.job.tre)}
    notifications.notify(
        checkers.values(),
        notifications.Kind.OUTPUTS,
        f"A combined table to check: {request.title}",
        f"{name} combined across {len(tables)} TREs.",
    )
    return release


@transaction.atomic
def decide(release, approve, rationale="", *, by):
    release = (
        CombinedRelease.objects.select_for_update(of=("self",))
        .select_related("request__project")
        .get(pk=release.pk)
    )
    check_decide_combined(by, release)
    target = CombinedRelease.Status.RELEASED if approve else CombinedRelease.Status.WITHHELD
    if release.status == target:
        return release
    if release.status != CombinedRelease.Status.PENDING:
        raise CombineError(f"This combination was already {release.get_status_display().lower()}.")
    if not approve and not rationale.strip():
        raise ValidationError({"rationale": "Say why it is withheld."})
    if approve and release.differencing and not rationale.strip():
        raise ValidationError(
            {"rationale": "Cells are at risk of differencing: record why release is still safe."}
        )
    release.status, release.decided_by, release.decided_at, release.rationale = (
        target,
        by,
        timezone.now(),
        rationale.strip(),
    )
    release.save()
    audit.record(
        f"outputs.combined_{target}",
        by=by,
        obj=release,
        message=release.rationale,
        project=release.request.project,
    )
    return release


# --------------------------------------------------------------------------- pooled DataSHIELD regressions
_GLM_OUTPUT_RE = re.compile(r"^call-\d{2}-glmDS2\.json$")
_GLM_CALL_RE = re.compile(
    r"^glmDS2\('([^']+)', '([a-z]+)', '([^']+)', NULL, NULL, '([A-Za-z][A-Za-z0-9_]{0,31})'\)$"
)


def glm_round(request, *, by, previous_deviance=None):
    """Pool the released ``glmDS2`` answers of ``request`` (one per TRE) into the next round of ``ds.glm``.

    Every TRE must have released its answer to the same call (formula, family, coefficients, data symbol);
    the answers pass :func:`reviews.pooling.check_glm_answers` before anything is pooled. Returns the pooled
    step: the coefficients sent, the next ones, the pooled deviance and counts, whether the deviance has
    converged against ``previous_deviance`` (the last round's), and the call to send in the next round.
    """
    released = list(
        OutputFile.objects.filter(job__request=request, status=OutputFile.Status.RELEASED)
        .select_related("job__tre", "job__request__project")
        .order_by("job__tre__slug", "pk")
    )
    sources = [output for output in released if _GLM_OUTPUT_RE.match(output.name)]
    if not sources:
        raise CombineError("No TRE has released a regression answer (a glmDS2 call) for this request.")
    check_combine(by, [output.job for output in sources])
    answers, calls = [], set()
    for output in sources:
        where = str(output.job.tre)
        try:
            with output.stored.open("rb") as handle:
                document = json.loads(handle.read().decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            raise CombineError(f"The regression answer from {where} is not readable JSON.") from None
        if not isinstance(document, dict) or document.get("status") != "completed":
            raise CombineError(
                f"The regression call at {where} did not complete, so there is nothing to pool."
            )
        match = _GLM_CALL_RE.match(str(document.get("call", "")))
        if match is None:
            raise CombineError(f"The answer from {where} is not one glmDS2 call the portal can pool.")
        calls.add(match.groups())
        try:
            answers.append(pooling.read_glm_answer(where, document.get("result")))
        except pooling.PoolingError as exc:
            raise CombineError(str(exc)) from None
    if len(calls) != 1:
        raise CombineError("The TREs answered different regression calls; a round pools one call.")
    formula, family, sent, symbol = calls.pop()
    try:
        beta = [float(value) for value in sent.split(",")]
        pooling.check_glm_answers(answers, n_params=len(beta))
        step = pooling.glm_step(answers, beta)
    except ValueError:
        raise CombineError("The coefficients in the call are not numbers.") from None
    except pooling.PoolingError as exc:
        raise CombineError(str(exc)) from None
    converged = (
        previous_deviance is not None
        and abs(step.deviance - previous_deviance) / (abs(step.deviance) + 0.1) < pooling.EPSILON
    )
    next_call = (
        f"glmDS2('{formula}', '{family}', '{pooling.beta_text(step.beta_next)}', NULL, NULL, '{symbol}')"
    )
    return {
        "formula": formula,
        "family": family,
        "coefficients_sent": beta,
        "coefficients_next": list(step.beta_next),
        "deviance": step.deviance,
        "n_valid": step.n_valid,
        "per_tre_n": {answer.tre: answer.n_valid for answer in answers},
        "converged": converged,
        "next_call": next_call,
    }

"""Federated results: released count tables from several TREs' jobs of one request, combined.

Tables combine when they share a schema (the same header and the same row labels). Counts are
summed cell by cell; the sum is re-checked under the strictest policy of the TREs involved, and
cells that someone could recover by subtracting one released table from another are flagged
(differencing). A combination is itself a release: it waits for an output checker's decision.
"""

import csv
import hashlib
import io
from collections import defaultdict
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from portal import audit
from portal.errors import Refusal
from reviews import notifications, outputs
from reviews.models import CombinedRelease, OutputFile
from reviews.permissions import check_combine, check_decide_combined
from reviews.sdc import check_table_bytes, strictest


class CombineError(Refusal):
    """The tables cannot be combined; the message says why."""


def _read_table(output):
    with output.stored.open("rb") as handle:
        text = handle.read().decode("utf-8-sig")
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if len(rows) < 2:
        raise CombineError(f"{output.path} at {output.job.tre} has no rows to combine.")
    header, body = rows[0], rows[1:]
    table = {}
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise CombineError(
                f"{output.path} at {output.job.tre}, line {number}: {len(row)} values for {len(header)} columns."
            )
        label = row[0]
        if label in table:
            raise CombineError(f"{output.path} at {output.job.tre}: the row {label!r} appears twice.")
        try:
            table[label] = [Decimal(value) for value in row[1:]]
        except InvalidOperation as exc:
            raise CombineError(
                f"{output.path} at {output.job.tre}, line {number}: only counts can be combined, not {row[1:]!r}."
            ) from exc
    return header, table


def combinable(request):
    """Released CSV outputs of the request grouped by file name, where more than one TRE released one."""
    groups = defaultdict(list)
    released = OutputFile.objects.filter(
        job__request=request, status=OutputFile.Status.RELEASED
    ).select_related("job__tre")
    for output in released:
        if output.name.lower().endswith(".csv"):
            groups[output.name].append(output)
    return {name: items for name, items in groups.items() if len({o.job.tre_id for o in items}) > 1}


def _differencing(combined, sources, previous, threshold):
    """Cells where a released table subtracted from another leaves a small non-zero count."""
    risks = []
    for label, values in combined.items():
        for column, total in enumerate(values):
            for name, table in [*sources, *previous]:
                other = table.get(label)
                if other is None or column >= len(other):
                    continue
                rest = total - other[column]
                if 0 < rest < threshold:
                    risks.append(
                        {
                            "row": label,
                            "column": column,
                            "value": str(rest),
                            "message": f"The combined {total} minus {other[column]} from {name} leaves {rest}, under {threshold}.",
                        }
                    )
    return risks


@transaction.atomic
def combine(request, name, *, by):
    """Combine the released `name` tables of `request` into a pending release."""
    sources = combinable(request).get(name)
    if not sources:
        raise CombineError(f"No two TREs have released a table called {name}.")
    check_combine(by, [output.job for output in sources])
    tables = [(o, *_read_table(o)) for o in sources]
    header = tables[0][1]
    labels = set(tables[0][2])
    for output, other_header, table in tables[1:]:
        if other_header != header:
            raise CombineError(
                f"{name} at {output.job.tre} has columns {other_header}, not {header}: the schemas differ."
            )
        if set(table) != labels:
            raise CombineError(f"{name} at {output.job.tre} has different rows: the schemas differ.")
    combined = {
        label: [sum(t[label][i] for _, _, t in tables) for i in range(len(header) - 1)]
        for label in tables[0][2]
    }
    lines = io.StringIO()
    writer = csv.writer(lines, lineterminator="\n")
    writer.writerow(header)
    for label, values in combined.items():
        writer.writerow([label, *(str(v) for v in values)])
    data = lines.getvalue().encode()
    policy = strictest(*(outputs.policy_for(o.job) for o, _, _ in tables))
    result = check_table_bytes(data, policy, path=f"combined/{name}")
    previous = [
        (f"combined release {c.pk}", {row[0]: [Decimal(v) for v in row[1:]] for row in c.table["rows"]})
        for c in CombinedRelease.objects.filter(request=request, status=CombinedRelease.Status.RELEASED)
        if c.table.get("header") == header
    ]
    risks = _differencing(
        combined, [(f"{o.job.tre}", t) for o, _, t in tables], previous, policy.min_cell_count
    )
    verdict = str(result.verdict)
    if risks and verdict == "pass":
        verdict = "review"
    release = CombinedRelease(
        request=request,
        created_by=by,
        table={
            "header": header,
            "rows": [[label, *(str(v) for v in values)] for label, values in combined.items()],
        },
        sha256=hashlib.sha256(data).hexdigest(),
        policy_version=policy.version,
        policy=policy.as_dict(),
        sdc=result.to_dict(),
        sdc_verdict=verdict,
        differencing=risks,
    )
    release.stored.save(f"combined-{request.pk}-{name}", ContentFile(data), save=False)
    release.save()
    release.sources.set([o for o, _, _ in tables])
    audit.record(
        "outputs.combined",
        by=by,
        obj=release,
        after={
            "sources": [o.pk for o, _, _ in tables],
            "verdict": verdict,
            "risks": len(risks),
            "policy": policy.version,
        },
        project=request.project,
    )
    checkers = {u.pk: u for o, _, _ in tables for u in notifications.checkers_of(o.job.tre)}
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

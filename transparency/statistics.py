"""The public statistics page: monthly figures and charts built from aggregate counts only."""

import statistics as stats
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import TruncMonth
from django.utils import timezone

from crates.models import Job, Request
from reviews.models import Outcome, Step, StepDecision
from transparency import charts

S = Job.Status

# --- Statistics ----------------------------------------------------------------------------

STATISTICS_MONTHS = 12


@dataclass(frozen=True)
class Figure:
    """A chart and the same numbers as a table (headers, then rows of cells)."""

    chart: charts.Chart
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    @property
    def svg(self):
        return charts.render(self.chart)


@dataclass(frozen=True)
class Statistics:
    since: date
    until: date
    figures: tuple[Figure, ...]
    totals: dict = field(default_factory=dict)


def _month_starts(count, today):
    year, month = today.year, today.month
    months = []
    for _ in range(count):
        months.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months[::-1]


def _month_of(value):
    if isinstance(value, datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
        return value.date().replace(day=1)
    return value.replace(day=1)


def _by_month(rows, months, keys):
    """{key: [count per month]} from (month, key, n) rows."""
    index = {m: i for i, m in enumerate(months)}
    series = {key: [0] * len(months) for key in keys}
    for month, key, n in rows:
        position = index.get(_month_of(month))
        if position is not None and key in series:
            series[key][position] += n
    return series


def _month_labels(months):
    """Short chart labels and full table labels. The year goes under each January, and under the first
    month unless that is a December (the January beside it says the year, and two would collide)."""
    short = [
        m.strftime("%b") + (f"\n{m.year}" if m.month == 1 or (i == 0 and m.month != 12) else "")
        for i, m in enumerate(months)
    ]
    return short, [m.strftime("%B %Y") for m in months]


def _monthly_figure(chart_id, title, description, months, named_series, unit):
    short, full = _month_labels(months)
    chart = charts.Chart(
        id=chart_id,
        title=title,
        description=description,
        categories=tuple(short),
        series=tuple(charts.Series(name, tuple(values)) for name, values in named_series),
        unit=unit,
    )
    rows = tuple((label, *(str(values[i]) for _, values in named_series)) for i, label in enumerate(full))
    return Figure(chart, ("Month", *(name for name, _ in named_series)), rows)


def _final_decisions(since):
    """Each job's final review decision: a sign-off approval, or a rejection at any step."""
    return StepDecision.objects.filter(
        Q(step=Step.SIGN_OFF, outcome=Outcome.APPROVE) | Q(outcome=Outcome.REJECT),
        decided_at__gte=since,
    )


def _days(delta):
    return delta.total_seconds() / 86400


def statistics(today=None):
    """The last 12 months in four queries, whatever the volume of requests."""
    today = today or timezone.localdate()
    months = _month_starts(STATISTICS_MONTHS, today)
    since = timezone.make_aware(datetime.combine(months[0], datetime.min.time()))
    span = f"{months[0]:%B %Y} to {months[-1]:%B %Y}"

    requests = (
        Request.objects.filter(created_at__gte=since)
        .filter(Exists(Job.objects.filter(request=OuterRef("pk"))))
        .annotate(month=TruncMonth("created_at"))
        .order_by()
        .values_list("month")
        .annotate(n=Count("pk"))
    )
    per_month = _by_month(((m, "requests", n) for m, n in requests), months, ["requests"])["requests"]

    decisions = (
        _final_decisions(since)
        .annotate(month=TruncMonth("decided_at"))
        .order_by()
        .values_list("month", "outcome")
        .annotate(n=Count("pk"))
    )
    decided = _by_month(decisions, months, [Outcome.APPROVE, Outcome.REJECT])

    outputs = (
        Job.objects.filter(status__in=[S.RELEASED, S.WITHHELD], status_changed_at__gte=since)
        .annotate(month=TruncMonth("status_changed_at"))
        .order_by()
        .values_list("month", "status")
        .annotate(n=Count("pk"))
    )
    released = _by_month(outputs, months, [S.RELEASED, S.WITHHELD])

    waits = {}
    for tre_name, created_at, decided_at in _final_decisions(since).values_list(
        "job__tre__name", "job__created_at", "decided_at"
    ):
        waits.setdefault(tre_name, []).append(_days(decided_at - created_at))
    medians = sorted((name, round(stats.median(days), 1), len(days)) for name, days in waits.items())

    figures = (
        _monthly_figure(
            "chart-requests",
            "Requests sent for review each month",
            f"Bar chart of the number of analysis requests sent to the TREs for review each month, {span}.",
            months,
            [("Requests", per_month)],
            "requests",
        ),
        _monthly_figure(
            "chart-decisions",
            "Decisions on requests each month",
            f"Bar chart comparing, for each month from {span}, how many requests the TREs approved "
            "and how many they turned down.",
            months,
            [("Approved", decided[Outcome.APPROVE]), ("Turned down", decided[Outcome.REJECT])],
            "decisions",
        ),
        Figure(
            charts.Chart(
                id="chart-decision-time",
                title="Median time to a decision at each TRE",
                description="Horizontal bar chart of the median number of days between a request "
                f"reaching a TRE and that TRE's final decision, for decisions made from {span}.",
                categories=tuple(name for name, _, _ in medians),
                series=(charts.Series("Median days", tuple(m for _, m, _ in medians)),),
                unit="days",
                horizontal=True,
            ),
            ("TRE", "Median days to decision", "Decisions counted"),
            tuple((name, f"{median:g}", str(n)) for name, median, n in medians),
        ),
        _monthly_figure(
            "chart-outputs",
            "Results released and withheld each month",
            f"Bar chart comparing, for each month from {span}, how many finished analyses had their "
            "results released after output checking and how many had them withheld.",
            months,
            [("Released", released[S.RELEASED]), ("Withheld", released[S.WITHHELD])],
            "analyses",
        ),
    )
    totals = {
        "requests": sum(per_month),
        "approved": sum(decided[Outcome.APPROVE]),
        "rejected": sum(decided[Outcome.REJECT]),
        "released": sum(released[S.RELEASED]),
        "withheld": sum(released[S.WITHHELD]),
    }
    return Statistics(since=months[0], until=today, figures=figures, totals=totals)

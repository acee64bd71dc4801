"""What the public may see, and the few things the public may do.

Public pages never receive a model instance: every function here returns a small frozen record
holding public values only (`Project.PUBLIC_FIELDS`, publicly listed datasets, TREs' public
descriptions, aggregate counts, moderated answers). Templates cannot leak a field they are not given.

Sections: projects and TREs; the hook for published outputs; statistics; the daily audit digest;
questions from the public (spam checks, submission, moderation); the public page cache.
"""

import hashlib
import logging
import statistics as stats
import time
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from django import forms
from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Prefetch, Q, Subquery, Value
from django.db.models.functions import Coalesce, TruncMonth
from django.urls import reverse
from django.utils import timezone

from crates.models import Job, Request
from portal import audit, charts, permissions
from portal.audit import AuditChainHead, AuditEvent
from portal.models import TRE, DataAccessAgreement, Dataset, Decision, Project, ProjectApproval
from portal.public_models import PublicQuestion
from portal.services import ServiceError
from reviews.models import Outcome, PublicOutput, Step, StepDecision

log = logging.getLogger(__name__)

PROJECTS_PER_PAGE = 20

# Plain-language names for a project's status (drafts are never public).
PROJECT_STATUS = {
    Project.Status.ACTIVE: "Under way",
    Project.Status.SUSPENDED: "Paused",
    Project.Status.CLOSED: "Finished",
}

S = Job.Status
# How the public reads a job's status: (key, plain label, job statuses), in the order a job moves.
OUTCOME_GROUPS = (
    ("reviewing", "Being reviewed", (S.AWAITING_REVIEW, S.IN_REVIEW, S.CHANGES_REQUESTED)),
    ("rejected", "Turned down", (S.REJECTED,)),
    ("running", "Approved, analysis under way", (S.APPROVED, S.QUEUED, S.CLAIMED, S.RUNNING)),
    (
        "checking",
        "Results being checked",
        (S.OUTPUTS_RETURNED, S.OUTPUT_REVIEW, S.OUTPUT_CHANGES_REQUESTED),
    ),
    ("released", "Results released", (S.RELEASED,)),
    ("withheld", "Results withheld", (S.WITHHELD,)),
    ("stopped", "Stopped before finishing", (S.FAILED, S.CANCELLED)),
    ("paused", "Paused", (S.SUSPENDED,)),
)
_GROUP_OF_STATUS = {status: key for key, _, statuses in OUTCOME_GROUPS for status in statuses}


# --- Public records ------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicOrganisation:
    name: str
    ror_id: str
    website: str


@dataclass(frozen=True)
class PublicApproval:
    tre_name: str
    tre_slug: str
    approved_on: date


@dataclass(frozen=True)
class PublicDataset:
    name: str
    description: str
    sensitivity: str
    tre_name: str
    tre_slug: str


@dataclass(frozen=True)
class OutcomeCount:
    key: str
    label: str
    count: int


@dataclass(frozen=True)
class PublishedOutput:
    title: str
    url: str
    released_on: date | None = None
    tre_name: str = ""
    summary: str = ""


@dataclass(frozen=True)
class PublicAnswer:
    question: str
    answer: str
    asked_on: date
    answered_on: date


@dataclass(frozen=True)
class PublicProject:
    identifier: str
    title: str
    lay_summary: str
    public_benefit: str
    organisation: PublicOrganisation | None
    funder: str
    grant_reference: str
    start_date: date | None
    end_date: date | None
    status: str
    status_label: str
    approvals: tuple[PublicApproval, ...]
    datasets: tuple[PublicDataset, ...]
    request_count: int
    outcomes: tuple[OutcomeCount, ...]
    outputs: tuple[PublishedOutput, ...] = ()
    questions: tuple[PublicAnswer, ...] = ()

    def get_absolute_url(self):
        return reverse("public_project_detail", args=[self.identifier])


@dataclass(frozen=True)
class PublicTRE:
    name: str
    slug: str
    organisation: str
    website: str
    description: str
    datasets: tuple[PublicDataset, ...]
    project_count: int
    min_cell_count: int
    output_checkers: int

    def get_absolute_url(self):
        return reverse("public_tre_detail", args=[self.slug])


# --- Projects ------------------------------------------------------------------------------


def approved_projects():
    """Projects approved at one or more TREs: the ones the public pages and the register show."""
    approved = ProjectApproval.objects.filter(project=OuterRef("pk"), status=Decision.APPROVED)
    return Project.objects.filter(Exists(approved)).exclude(status=Project.Status.DRAFT)


def _with_public_data(queryset):
    """Only public columns, plus what a project summary shows, in a fixed number of queries."""
    approved = ProjectApproval.objects.filter(project=OuterRef("pk"), status=Decision.APPROVED)
    reviewed_requests = (
        Request.objects.filter(project=OuterRef("pk"))
        .filter(Exists(Job.objects.filter(request=OuterRef("pk"))))
        .order_by()
        .values("project")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        queryset.only(*Project.PUBLIC_FIELDS)
        .select_related("sponsor")
        .prefetch_related(
            Prefetch(
                "approvals",
                queryset=ProjectApproval.objects.filter(status=Decision.APPROVED)
                .select_related("tre")
                .order_by("decided_at"),
                to_attr="public_approvals",
            ),
            Prefetch(
                "agreements",
                queryset=DataAccessAgreement.objects.filter(approved_at__isnull=False)
                .only("project_id", "tre_id")
                .prefetch_related(
                    Prefetch(
                        "datasets",
                        queryset=Dataset.objects.filter(is_public=True)
                        .select_related("tre")
                        .order_by("name"),
                    )
                ),
                to_attr="public_agreements",
            ),
            public_outputs_prefetch(),
        )
        .annotate(
            latest_approval=Subquery(approved.order_by("-decided_at").values("decided_at")[:1]),
            public_request_count=Coalesce(Subquery(reviewed_requests, output_field=IntegerField()), Value(0)),
        )
    )


def _public_dataset(dataset):
    return PublicDataset(
        name=dataset.name,
        description=dataset.public_description,
        sensitivity=dataset.get_sensitivity_display(),
        tre_name=dataset.tre.name,
        tre_slug=dataset.tre.slug,
    )


def _outcome_counts(project_ids):
    """{project id: {outcome key: number of jobs}} for these projects, in one query."""
    counts = {}
    rows = (
        Job.objects.filter(request__project_id__in=project_ids)
        .order_by()
        .values_list("request__project_id", "status")
        .annotate(n=Count("pk"))
    )
    for project_id, status, n in rows:
        group = _GROUP_OF_STATUS[status]
        counts.setdefault(project_id, {}).setdefault(group, 0)
        counts[project_id][group] += n
    return counts


def _public_project(project, outcome_counts):
    approvals = tuple(
        PublicApproval(a.tre.name, a.tre.slug, timezone.localdate(a.decided_at))
        for a in project.public_approvals
    )
    approved_tres = {a.tre_id for a in project.public_approvals}
    datasets = {}
    for agreement in project.public_agreements:
        if agreement.tre_id in approved_tres:
            for dataset in agreement.datasets.all():
                datasets.setdefault(dataset.pk, _public_dataset(dataset))
    sponsor = project.sponsor
    return PublicProject(
        identifier=project.identifier,
        title=project.title,
        lay_summary=project.lay_summary,
        public_benefit=project.public_benefit,
        organisation=PublicOrganisation(sponsor.name, sponsor.ror_id, sponsor.website) if sponsor else None,
        funder=project.funder,
        grant_reference=project.grant_reference,
        start_date=project.start_date,
        end_date=project.end_date,
        status=project.status,
        status_label=PROJECT_STATUS.get(project.status, project.get_status_display()),
        approvals=approvals,
        datasets=tuple(sorted(datasets.values(), key=lambda d: (d.tre_name, d.name))),
        request_count=project.public_request_count,
        outcomes=tuple(
            OutcomeCount(key, label, outcome_counts[key])
            for key, label, _ in OUTCOME_GROUPS
            if outcome_counts.get(key)
        ),
    )


def _summaries(projects):
    projects = list(projects)
    counts = _outcome_counts([p.pk for p in projects])
    return [_public_project(p, counts.get(p.pk, {})) for p in projects]


def _ordered(queryset):
    return queryset.order_by(F("latest_approval").desc(nulls_last=True), "identifier")


def project_page(*, query="", tre_slug="", page=None, per_page=None):
    """A page of public project summaries, newest approval first, optionally searched or by TRE."""
    queryset = approved_projects()
    query = (query or "").strip()[:100]
    if query:
        queryset = queryset.filter(
            Q(identifier__iexact=query)
            | Q(title__icontains=query)
            | Q(lay_summary__icontains=query)
            | Q(public_benefit__icontains=query)
            | Q(sponsor__name__icontains=query)
        )
    if tre_slug:
        queryset = queryset.filter(
            Exists(
                ProjectApproval.objects.filter(
                    project=OuterRef("pk"), status=Decision.APPROVED, tre__slug=tre_slug
                )
            )
        )
    page = Paginator(_ordered(_with_public_data(queryset)), per_page or PROJECTS_PER_PAGE).get_page(page)
    page.object_list = _summaries(page.object_list)
    return page


def public_project(identifier):
    """One project's public record with its published outputs and answered questions, or None."""
    project = _with_public_data(approved_projects()).filter(identifier=identifier).first()
    if project is None:
        return None
    summary = _summaries([project])[0]
    return replace(
        summary,
        # Links only to web pages: never a javascript: or data: URL from whatever fills the hook.
        outputs=tuple(o for o in published_outputs(project) if o.url.startswith(("https://", "http://"))),
        questions=tuple(published_answers(project)),
    )


def project_for_questions(identifier):
    """The Project (model) the public may ask about, or None."""
    return approved_projects().only("pk", "identifier", "title").filter(identifier=identifier).first()


def public_outputs_prefetch(to_attr="published_output_records"):
    """The Prefetch that loads a project's published outputs (one query for any number of projects)."""
    return Prefetch(
        "public_outputs",
        queryset=PublicOutput.objects.filter(output__status="released")
        .select_related("output__job__tre")
        .only(
            "project_id",
            "title",
            "summary",
            "published_at",
            "output__id",
            "output__path",
            "output__released_at",
            "output__status",
            "output__job__id",
            "output__job__tre__name",
        )
        .order_by("-output__released_at", "pk"),
        to_attr=to_attr,
    )


def published_outputs(project):
    """The released outputs the project's lead chose to publish, newest first, each with an absolute
    link to its public download. Reads the prefetch of `public_outputs_prefetch()` when present."""
    records = getattr(project, "published_output_records", None)
    if records is None:
        records = list(
            PublicOutput.objects.filter(project=project, output__status="released")
            .select_related("output__job__tre")
            .order_by("-output__released_at", "pk")
        )
    base = settings.PORTAL_BASE_URL.rstrip("/")
    return [
        PublishedOutput(
            title=record.title,
            url=base + reverse("public_output_download", args=[record.output_id, record.output.name]),
            released_on=timezone.localdate(record.output.released_at) if record.output.released_at else None,
            tre_name=record.output.job.tre.name,
            summary=record.summary,
        )
        for record in records
    ]


def all_published_results(limit=50):
    """Every released output a project chose to publish, newest first (for PPIE oversight)."""
    return (
        PublicOutput.objects.filter(output__status="released")
        .select_related("project", "output__job__tre")
        .order_by("-output__released_at", "pk")[:limit]
    )


def published_answers(project):
    rows = PublicQuestion.objects.filter(project=project, status=PublicQuestion.Status.PUBLISHED).order_by(
        "-answered_at"
    )
    return [
        PublicAnswer(
            question=q.question,
            answer=q.answer,
            asked_on=timezone.localdate(q.created_at),
            answered_on=timezone.localdate(q.answered_at),
        )
        for q in rows.only("question", "answer", "created_at", "answered_at")
    ]


# --- TREs ----------------------------------------------------------------------------------


def _tres():
    return (
        TRE.objects.select_related("organisation")
        .prefetch_related(
            Prefetch(
                "datasets",
                queryset=Dataset.objects.filter(is_public=True).select_related("tre").order_by("name"),
                to_attr="public_datasets",
            )
        )
        .annotate(
            approved_projects=Count(
                "project_approvals__project",
                filter=Q(project_approvals__status=Decision.APPROVED)
                & ~Q(project_approvals__project__status=Project.Status.DRAFT),
                distinct=True,
            )
        )
        .order_by("name")
    )


def _public_tre(tre):
    return PublicTRE(
        name=tre.name,
        slug=tre.slug,
        organisation=tre.organisation.name,
        website=tre.website,
        description=tre.public_description,
        datasets=tuple(_public_dataset(d) for d in tre.public_datasets),
        project_count=tre.approved_projects,
        min_cell_count=tre.min_cell_count,
        output_checkers=tre.required_output_checkers,
    )


def public_tres():
    return [_public_tre(tre) for tre in _tres()]


def public_tre(slug):
    tre = _tres().filter(slug=slug).first()
    return _public_tre(tre) if tre else None


def overview():
    """Headline numbers for the public home page."""
    return {
        "projects": approved_projects().count(),
        "tres": TRE.objects.count(),
        "datasets": Dataset.objects.filter(is_public=True).count(),
        "latest_digest": latest_digest(),
    }


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


# --- The daily audit digest ----------------------------------------------------------------

DIGEST_VERB = "audit.digest_published"


class AuditChainBroken(RuntimeError):
    """The audit chain failed verification, so no digest may vouch for it."""


@dataclass(frozen=True)
class Digest:
    date: date
    hash: str
    count: int
    published_at: datetime


@dataclass(frozen=True)
class DigestCheck:
    count: int
    hash: str
    result: str  # "match", "mismatch" or "missing"


def publish_audit_digest(today=None):
    """Publish today's digest of the audit chain's head, once per day; returns its event.

    The chain is verified first, so a digest never vouches for a broken chain (the missing digest
    is then the public signal, and the raised error the operators'). The digest is the head as it
    stands under the append lock, so the digest event's own previous-hash equals the published hash.
    """
    today = today or timezone.localdate()
    day = today.isoformat()
    existing = AuditEvent.objects.filter(verb=DIGEST_VERB, object_type="audit", object_id=day).first()
    if existing is not None:
        return existing
    problem = audit.verify_chain()
    if problem is not None:
        log.error("Audit digest for %s not published: %s", day, problem)
        raise AuditChainBroken(str(problem))
    with transaction.atomic():
        AuditChainHead.objects.select_for_update().get_or_create(singleton=1)
        # Checked again under the lock, so two workers publish one digest.
        existing = AuditEvent.objects.filter(verb=DIGEST_VERB, object_type="audit", object_id=day).first()
        if existing is not None:
            return existing
        digest = audit.head_digest()
        event = audit.record(
            DIGEST_VERB,
            by=audit.SYSTEM,
            object_type="audit",
            object_id=day,
            object_label=f"Audit digest for {day}",
            after={"hash": digest["hash"], "count": digest["count"], "date": day},
            message="Daily digest of the audit chain's head, published on the public pages.",
        )
    transaction.on_commit(invalidate_public_pages)
    return event


def _digest(event):
    return Digest(
        date=date.fromisoformat(event.after["date"]),
        hash=event.after["hash"],
        count=int(event.after["count"]),
        published_at=event.created_at,
    )


def digest_page(page=None, per_page=30):
    events = AuditEvent.objects.filter(verb=DIGEST_VERB).order_by("-id").only("created_at", "after")
    page = Paginator(events, per_page).get_page(page)
    page.object_list = [_digest(e) for e in page.object_list]
    return page


def all_digests():
    events = AuditEvent.objects.filter(verb=DIGEST_VERB).order_by("id").only("created_at", "after")
    return [_digest(e) for e in events.iterator()]


def latest_digest():
    event = AuditEvent.objects.filter(verb=DIGEST_VERB).order_by("-id").only("created_at", "after").first()
    return _digest(event) if event else None


def check_digest(count, hash_):
    """Is event number `count` of the chain still the one a digest published as `hash_`?"""
    stored = list(AuditEvent.objects.order_by("id").values_list("hash", flat=True)[count - 1 : count])
    if not stored:
        return DigestCheck(count, hash_, "missing")
    return DigestCheck(count, hash_, "match" if stored[0] == hash_ else "mismatch")


class DigestCheckForm(forms.Form):
    count = forms.IntegerField(
        label="Number of entries",
        min_value=1,
        help_text="The “entries” number from the digest you saved.",
    )
    hash = forms.RegexField(
        label="Fingerprint (hash)",
        regex=r"^[0-9a-f]{64}$",
        help_text="The 64 characters from the digest you saved (0 to 9 and a to f).",
        error_messages={"invalid": "Enter the 64-character fingerprint exactly as published."},
    )

    def clean_hash(self):
        return self.cleaned_data["hash"].strip().lower()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.is_bound:  # accept a pasted fingerprint with spaces or capitals
            data = self.data.copy()
            data["hash"] = "".join(str(data.get("hash", "")).split()).lower()
            self.data = data


# --- Questions from the public -------------------------------------------------------------

QUESTION_MIN_SECONDS = 3  # a person needs longer than this to read the form and type a question
QUESTION_MAX_AGE_SECONDS = 2 * 60 * 60
_TOKEN_SALT = "portal.public.question-form"  # noqa: S105  (a signing namespace, not a secret)


def _now():
    return time.time()


def questions_per_hour():
    return getattr(settings, "PORTAL_PUBLIC_QUESTIONS_PER_HOUR", 5)


def issue_form_token(identifier):
    """A signed note of when the form was shown, and for which project."""
    return signing.dumps({"p": identifier, "t": int(_now())}, salt=_TOKEN_SALT, compress=True)


def check_form_token(token, identifier):
    """Raise ValidationError unless the token is ours, for this project, and neither too new nor too old."""
    try:
        data = signing.loads(token or "", salt=_TOKEN_SALT)
    except signing.BadSignature:
        raise ValidationError(
            "The form could not be checked. Please send your question again.", code="token"
        ) from None
    age = _now() - int(data.get("t", 0))
    if data.get("p") != identifier:
        raise ValidationError(
            "This form was for another project. Please send your question again.", code="token"
        )
    if age < QUESTION_MIN_SECONDS:
        raise ValidationError(
            "That was sent faster than a person can type. Please wait a few seconds and send it again.",
            code="too_fast",
        )
    if age > QUESTION_MAX_AGE_SECONDS:
        raise ValidationError(
            "The form was open too long and has expired. Please send your question again.", code="expired"
        )


def client_ip(request):
    """The visitor's address: REMOTE_ADDR, or with PORTAL_TRUSTED_PROXIES proxies in front, the address
    the nearest untrusted hop gave (X-Forwarded-For is read from the right, as proxies append to it)."""
    proxies = getattr(settings, "PORTAL_TRUSTED_PROXIES", 0)
    if proxies:
        hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def allow_question_from(ip):
    """Count one attempt from this address; False once it has made too many this hour."""
    key = "public-questions:" + hashlib.sha256(ip.encode()).hexdigest()[:32]
    cache.add(key, 0, timeout=60 * 60)
    try:
        attempts = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=60 * 60)
        attempts = 1
    return attempts <= questions_per_hour()


class QuestionForm(forms.Form):
    question = forms.CharField(
        label="Your question",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Ask in your own words. Please do not include personal or medical details about "
        "yourself or anyone else: the question may be published.",
    )
    name = forms.CharField(
        label="Your name",
        max_length=100,
        required=False,
        help_text="Only the governance officers see your name and e-mail address. They are never published.",
    )
    email = forms.EmailField(
        label="Your e-mail address",
        required=False,
        help_text="So an officer can contact you if your question needs clarifying.",
    )
    # A trap for robots: hidden from people (and from screen readers) by the template and CSS.
    website = forms.CharField(
        label="Leave this empty",
        required=False,
        widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
    )
    token = forms.CharField(widget=forms.HiddenInput, required=False)

    RATE_LIMITED = (
        "Too many questions have come from your connection in the last hour. Please try again later."
    )

    def __init__(self, *args, identifier, blocked=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.identifier = identifier
        self.blocked = blocked  # over the per-address rate limit

    def fresh_token(self):
        return issue_form_token(self.identifier)

    def clean(self):
        cleaned = super().clean()
        if self.blocked:
            self.add_error(None, ValidationError(self.RATE_LIMITED, code="rate_limited"))
        elif not self.is_spam:
            try:
                check_form_token(cleaned.get("token"), self.identifier)
            except ValidationError as exc:
                self.add_error(None, exc)
        return cleaned

    @property
    def is_spam(self):
        return bool(self.data.get("website", "").strip())


class ModerationForm(forms.Form):
    question = forms.CharField(
        label="Question as it will be published",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Remove any personal details before publishing.",
    )
    answer = forms.CharField(
        label="Answer", required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 5})
    )
    reason = forms.CharField(
        label="Why it should not be published",
        required=False,
        max_length=1000,
        help_text="Only if you decide not to publish it. Kept in the audit trail, not shown to the public.",
    )
    action = forms.ChoiceField(choices=[("publish", "Publish"), ("reject", "Do not publish")])


def _officers_to_tell(project):
    from reviews.notifications import officers_of

    tres = TRE.objects.filter(project_approvals__project=project, project_approvals__status=Decision.APPROVED)
    return [o for tre in tres for o in officers_of(tre) if not permissions.is_project_member(o, project)]


@transaction.atomic
def submit_question(project, *, question, name="", email=""):
    """Store a question for moderation and tell the officers who may moderate it."""
    from reviews.notifications import Kind, notify

    entry = PublicQuestion.objects.create(
        project=project, question=question.strip(), name=name.strip(), email=email.strip()
    )
    audit.record(
        "public_question.received",
        by=audit.PUBLIC,
        obj=entry,
        object_label=f"Question {entry.pk} about {project.identifier}",
        project=project,
    )
    notify(
        _officers_to_tell(project),
        Kind.REVIEW,
        f"A question from the public about {project.identifier}",
        "Read it, answer it and publish it, or decide not to publish it.",
        reverse("public_questions_moderation"),
    )
    return entry


# --- Moderation ----------------------------------------------------------------------------


def questions_to_moderate(user):
    """Questions waiting for this officer, oldest first (none from projects they belong to)."""
    from portal.models import Membership

    return (
        PublicQuestion.objects.filter(
            status=PublicQuestion.Status.PENDING, project__in=permissions.moderatable_projects(user)
        )
        .exclude(project__lead=user)
        .exclude(project__in=Membership.objects.filter(person=user).values("project"))
        .select_related("project")
        .order_by("created_at")
    )


def _locked(question):
    return PublicQuestion.objects.select_for_update().select_related("project").get(pk=question.pk)


@transaction.atomic
def publish_question(question, *, by, answer, question_text=None):
    """Publish the question (as the officer may have edited it to remove personal details) with an answer."""
    question = _locked(question)
    permissions.check_moderate(by, question)
    if question.status != PublicQuestion.Status.PENDING:
        raise ServiceError(f"This question was already moderated ({question.get_status_display().lower()}).")
    answer = (answer or "").strip()
    if not answer:
        raise ValidationError({"answer": "Write the answer to publish with the question."})
    edited = question_text is not None and question_text.strip() != question.question
    if question_text is not None and not question_text.strip():
        raise ValidationError({"question": "The question to publish cannot be empty."})
    if edited:
        question.question = question_text.strip()
    now = timezone.now()
    question.status = PublicQuestion.Status.PUBLISHED
    question.answer, question.answered_by, question.answered_at, question.moderated_at = answer, by, now, now
    question.save()
    audit.record(
        "public_question.published",
        by=by,
        obj=question,
        object_label=f"Question {question.pk} about {question.project.identifier}",
        after={"status": question.status, "question_edited": edited},
        project=question.project,
    )
    transaction.on_commit(invalidate_public_pages)
    return question


@transaction.atomic
def reject_question(question, *, by, reason=""):
    """Decide not to publish a question (spam, abuse, personal details); the reason stays in the audit trail."""
    question = _locked(question)
    permissions.check_moderate(by, question)
    if question.status != PublicQuestion.Status.PENDING:
        raise ServiceError(f"This question was already moderated ({question.get_status_display().lower()}).")
    question.status = PublicQuestion.Status.REJECTED
    question.moderated_at = timezone.now()
    question.save()
    audit.record(
        "public_question.rejected",
        by=by,
        obj=question,
        object_label=f"Question {question.pk} about {question.project.identifier}",
        after={"status": question.status},
        message=(reason or "").strip(),
        project=question.project,
    )
    return question


# --- The public page cache -----------------------------------------------------------------

_GENERATION_KEY = "public-pages:generation"


def page_cache_seconds():
    return getattr(settings, "PORTAL_PUBLIC_CACHE_SECONDS", 300)


def cache_prefix():
    """The key prefix of cached public pages; a new one after `invalidate_public_pages`."""
    cache.add(_GENERATION_KEY, 1, timeout=None)
    return f"public-pages.{cache.get(_GENERATION_KEY, 1)}"


def invalidate_public_pages():
    """Retire every cached public page at once (registry changes otherwise show within the TTL)."""
    try:
        cache.incr(_GENERATION_KEY)
    except ValueError:
        cache.set(_GENERATION_KEY, 2, timeout=None)


def public_output_file(pk, name):
    """The stored file of a published output of an approved project, or None."""
    record = (
        PublicOutput.objects.filter(
            output_id=pk, output__status="released", project__in=approved_projects().values("pk")
        )
        .select_related("output")
        .first()
    )
    if record is None or record.output.name != name:
        return None
    return record.output

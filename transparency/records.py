"""What the public may see: read models of projects, TREs and their published outputs.

Public pages never receive a model instance: every function here returns a small frozen record
holding public values only (`Project.PUBLIC_FIELDS`, publicly listed datasets, TREs' public
descriptions, aggregate counts, moderated answers). Templates cannot leak a field they are not given.

The other public modules: `statistics`, `digests` (the daily audit digest), `questions` (questions
from the public: spam checks, submission, moderation) and `cache` (the public page cache).
"""

from dataclasses import dataclass, replace
from datetime import date

from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Prefetch, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from crates.models import Job, Request
from portal.models import TRE, DataAccessAgreement, Dataset, Decision, Project, ProjectApproval
from portal.public_models import PublicQuestion
from reviews.models import PublicOutput
from transparency.digests import latest_digest

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


def all_published_results(limit=50):
    """Every released output a project chose to publish, newest first (for PPIE oversight)."""
    return (
        PublicOutput.objects.filter(output__status="released")
        .select_related("project", "output__job__tre")
        .order_by("-output__released_at", "pk")[:limit]
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

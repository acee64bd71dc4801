"""Benchmark of the list pages: the same pages at 10 and at 10,000 requests.

A scratch database (SQLite, and PostgreSQL when a server is given) gets the federation of
``benchmarks.federation`` and then 10 requests with everything around them, inserted in bulk: projects
(one for every ten requests) approved at the TRE with their sponsors, memberships, agreements,
datasets and workflows, and for each request its version, its job at the TRE in one of the job
states, the review decisions that state implies and its audit event (chained as ``portal.audit.record``
chains them). The main list pages are fetched with Django's test client as the people who use them,
timed (median of several fetches after a warm-up) and their queries counted; then the database grows
to 10,000 requests and the same pages are measured again. Goal: the same number of queries at both
sizes; the time ratio is reported.

Run by ``python -m benchmarks`` (``--only pages``); ``measure`` returns the measurements, ``goals`` and
``render`` read them.
"""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from benchmarks.common import (
    REQUEST_METADATA,
    Goal,
    database_child,
    per_database,
    progress,
    ratio,
    time_calls,
)

NAME = "pages"
FULL_SIZES, QUICK_SIZES = (10, 10_000), (10, 50)
FULL_RUNS, QUICK_RUNS = 7, 1
REQUESTS_PER_PROJECT = 10


@dataclass(frozen=True)
class Page:
    label: str
    url_name: str
    args: tuple[str, ...]
    viewer: str | None  # a username of benchmarks.federation, None: the public


PAGES = (
    Page("researcher's requests", "request_list", (), "alice"),
    Page("officer's review queue", "review_queue", ("tre-a",), "olivia"),
    Page("output checker's requests", "request_list", (), "cam"),
    Page("public: projects", "public_project_list", (), None),
    Page("public: a TRE and its projects", "public_tre_detail", ("tre-a",), None),
    Page("public: statistics", "public_statistics", (), None),
    Page("public: Data Use Register", "public_dur", (), None),
    Page("projects (auditor)", "project_list", (), "audrey"),
    Page("project directory", "project_directory", (), "alice"),
    Page("agreements", "agreement_list", (), "olivia"),
    Page("approved workflows", "workflow_list", (), "olivia"),
    Page("organisations", "organisation_list", (), "olivia"),
    Page("TREs", "tre_list", (), "olivia"),
    Page("TRE approvals queue", "approvals_queue", ("tre-a",), "olivia"),
    Page("audit trail", "audit_list", (), "audrey"),
    Page("officer's dashboard", "dashboard", (), "olivia"),
    Page("API: requests", "api_request_list", (), "alice"),
    Page("API: review queue", "api_review_queue", (), "olivia"),
    Page("API: projects", "api_project_list", (), "audrey"),
)

# The jobs' states, in turn: most requests of a working federation are finished.
STATES = (
    "released",
    "released",
    "released",
    "released",
    "withheld",
    "rejected",
    "awaiting_review",
    "in_review",
    "changes_requested",
    "queued",
    "running",
    "output_review",
)
SIGNED_OFF = {"queued", "running", "output_review", "released", "withheld"}
DAYS = 360  # requests are spread over the last year, which the public statistics cover


# -- building the database ------------------------------------------------------------------------------------
class Grower:
    """Adds requests, with the registry that goes with them, in bulk."""

    def __init__(self, federation) -> None:
        from django.utils import timezone

        self.f = federation
        self.now = timezone.now()
        self.metadata = json.loads(REQUEST_METADATA.read_text(encoding="utf-8"))
        self.requests = 0
        self.projects: list[Any] = []

    def grow(self, total: int) -> None:
        from django.db import transaction

        from crates.models import Job, Request, RequestVersion

        with transaction.atomic():
            self._grow_registry(max(1, total // REQUESTS_PER_PROJECT))
            numbers = range(self.requests, total)
            approved = [project for number, project in enumerate(self.projects) if number % 10 != 9]
            requests = Request.objects.bulk_create(
                [
                    Request(
                        project=approved[n % len(approved)],
                        submitter=self.f.alice,
                        title=f"Benchmark request {n}",
                        description="An analysis of outcomes.",
                    )
                    for n in numbers
                ],
                batch_size=1000,
            )
            Request.tres.through.objects.bulk_create(
                [Request.tres.through(request_id=r.pk, tre_id=self.f.tre.pk) for r in requests],
                batch_size=1000,
            )
            versions = RequestVersion.objects.bulk_create(
                [
                    RequestVersion(
                        request=r,
                        number=1,
                        crate=f"crates/benchmark-{r.pk}.zip",
                        sha256="0" * 64,
                        size=1,
                        external_identifier=f"urn:uuid:00000000-0000-4000-8000-{r.pk:012d}",
                        status=RequestVersion.Status.VALID,
                        metadata=self.metadata,
                        summary={},
                        created_by=self.f.alice,
                        validated_at=self.now,
                    )
                    for r in requests
                ],
                batch_size=1000,
            )
            jobs = Job.objects.bulk_create(
                [
                    Job(
                        request=r,
                        version=v,
                        tre=self.f.tre,
                        status=STATES[n % len(STATES)],
                        metadata=self.metadata,
                        workflow=self.f.workflow,
                    )
                    for n, r, v in zip(numbers, requests, versions, strict=True)
                ],
                batch_size=1000,
            )
            when = [self.now - timedelta(days=(n * 7919) % DAYS, minutes=n % 600) for n in numbers]
            self._backdate(Request, requests, when, "created_at")
            self._backdate(RequestVersion, versions, when, "created_at")
            for column in ("created_at", "status_changed_at"):
                self._backdate(Job, jobs, when, column)
            self._decisions(jobs, versions, when)
            self._audit(requests)
        self.requests = total

    @staticmethod
    def _backdate(model, objects, when, column: str) -> None:
        """Set a timestamp that ``auto_now_add`` filled in at insertion."""
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {model._meta.db_table} SET {column} = %s WHERE id = %s",  # noqa: S608 - our names
                [(at, obj.pk) for obj, at in zip(objects, when, strict=True)],
            )

    def _grow_registry(self, count: int) -> None:
        from guardian.shortcuts import assign_perm

        from portal.models import (
            ApprovedWorkflow,
            DataAccessAgreement,
            Dataset,
            Decision,
            Membership,
            MembershipApproval,
            Organisation,
            Project,
            ProjectApproval,
            WorkflowApproval,
        )

        start = len(self.projects)
        numbers = range(start, count)
        if not numbers:
            return
        today = self.now.date()
        sponsors = Organisation.objects.bulk_create(
            [Organisation(name=f"Benchmark University {n}") for n in numbers], batch_size=1000
        )
        projects = Project.objects.bulk_create(
            [
                Project(
                    identifier=f"PRJ-BENCH-{n:05d}",
                    title=f"Benchmark project {n}",
                    lay_summary="Who recovered, and how fast.",
                    public_benefit="Better planning.",
                    technical_summary="Cox models.",
                    lead=self.f.bob,
                    sponsor=sponsor,
                    status=Project.Status.ACTIVE,
                )
                for n, sponsor in zip(numbers, sponsors, strict=True)
            ],
            batch_size=1000,
        )
        # One project in ten still waits for the TRE's approval (the officers' approvals queue).
        ProjectApproval.objects.bulk_create(
            [
                ProjectApproval(project=p, tre=self.f.tre, status=Decision.PENDING)
                if n % 10 == 9
                else ProjectApproval(
                    project=p,
                    tre=self.f.tre,
                    status=Decision.APPROVED,
                    decided_by=self.f.olivia,
                    decided_at=self.now - timedelta(days=n % DAYS),
                )
                for n, p in zip(numbers, projects, strict=True)
            ],
            batch_size=1000,
        )
        memberships = Membership.objects.bulk_create(
            [
                Membership(project=p, person=person, role=role, status=Membership.Status.ACTIVE)
                for p in projects
                for person, role in ((self.f.bob, "lead"), (self.f.alice, "researcher"))
            ],
            batch_size=1000,
        )
        MembershipApproval.objects.bulk_create(
            [
                MembershipApproval(
                    membership=m,
                    tre=self.f.tre,
                    status=Decision.APPROVED,
                    decided_by=self.f.olivia,
                    decided_at=self.now,
                )
                for m in memberships
            ],
            batch_size=1000,
        )
        for person in (self.f.alice, self.f.bob):
            assign_perm(
                "portal.view_project", person, Project.objects.filter(pk__in=[p.pk for p in projects])
            )
        datasets = Dataset.objects.bulk_create(
            [
                Dataset(
                    tre=self.f.tre,
                    identifier=f"https://data.example.org/bench/{n}",
                    name=f"Bench dataset {n}",
                )
                for n in numbers
            ],
            batch_size=1000,
        )
        agreements = DataAccessAgreement.objects.bulk_create(
            [
                DataAccessAgreement(
                    project=p,
                    tre=self.f.tre,
                    reference=f"DAA-BENCH-{n:05d}",
                    valid_from=today - timedelta(days=DAYS),
                    valid_until=today + timedelta(days=365 + n % 100),
                    status=DataAccessAgreement.Status.ACTIVE,
                    created_by=self.f.olivia,
                    approved_by=self.f.olivia,
                    approved_at=self.now,
                )
                for n, p in zip(numbers, projects, strict=True)
            ],
            batch_size=1000,
        )
        DataAccessAgreement.datasets.through.objects.bulk_create(
            [
                DataAccessAgreement.datasets.through(dataaccessagreement_id=a.pk, dataset_id=d.pk)
                for a, d in zip(agreements, datasets, strict=True)
            ],
            batch_size=1000,
        )
        workflows = ApprovedWorkflow.objects.bulk_create(
            [
                ApprovedWorkflow(
                    name=f"Bench workflow {n}",
                    workflow_id=f"https://workflowhub.example.org/workflows/bench-{n}",
                    version="1",
                    sha256="a" * 64,
                    language=ApprovedWorkflow.Language.CWL,
                    executor=ApprovedWorkflow.Executor.CWL,
                )
                for n in numbers
            ],
            batch_size=1000,
        )
        WorkflowApproval.objects.bulk_create(
            [
                WorkflowApproval(
                    workflow=w,
                    tre=self.f.tre,
                    status=Decision.APPROVED,
                    decided_by=self.f.olivia,
                    decided_at=self.now,
                )
                for w in workflows
            ],
            batch_size=1000,
        )
        self.projects += projects

    def _decisions(self, jobs, versions, when) -> None:
        from reviews.models import CHECK_STEPS, Outcome, Step, StepDecision

        rows = []
        for job, version, at in zip(jobs, versions, when, strict=True):
            decided = at + timedelta(days=2)
            if job.status in SIGNED_OFF:
                steps = [*CHECK_STEPS, Step.SIGN_OFF]
            elif job.status == "in_review":
                steps = CHECK_STEPS[:2]
            elif job.status == "rejected":
                rows.append(
                    StepDecision(
                        job=job,
                        version=version,
                        step=Step.SAFE_PEOPLE,
                        outcome=Outcome.REJECT,
                        rationale="Not accredited.",
                        evidence={},
                        decided_by=self.f.olivia,
                        decided_at=decided,
                    )
                )
                continue
            else:
                continue
            rows += [
                StepDecision(
                    job=job,
                    version=version,
                    step=step,
                    outcome=Outcome.APPROVE,
                    evidence={},
                    decided_by=self.f.olivia,
                    decided_at=decided,
                )
                for step in steps
            ]
        StepDecision.objects.bulk_create(rows, batch_size=1000)

    def _audit(self, requests) -> None:
        """One ``request.created`` event per request, chained onto the head as ``audit.record`` does."""
        from django.utils import timezone

        from portal.audit import Actor, AuditChainHead, AuditEvent

        head, _ = AuditChainHead.objects.select_for_update().get_or_create(singleton=1)
        actor = Actor.of(self.f.alice)
        events = []
        for request in requests:
            event = AuditEvent(
                created_at=timezone.now(),
                actor_kind=actor.kind,
                actor_id=actor.id,
                actor_label=actor.label,
                verb="request.created",
                object_type="crates.request",
                object_id=str(request.pk),
                object_label=request.title,
                tre_slug=self.f.tre.slug,
                project_identifier=request.project.identifier,
                after={"title": request.title, "tres": [self.f.tre.slug]},
                prev_hash=head.last_hash,
            )
            event.hash = event.compute_hash()
            head.last_hash = event.hash
            events.append(event)
        AuditEvent.objects.bulk_create(events, batch_size=1000)
        head.count += len(events)
        head.save(update_fields=["last_hash", "count"])


def row_counts() -> dict[str, int]:
    from crates.models import Job, Request
    from portal.audit import AuditEvent
    from portal.models import Project
    from reviews.models import StepDecision

    return {
        "requests": Request.objects.count(),
        "jobs": Job.objects.count(),
        "decisions": StepDecision.objects.count(),
        "projects": Project.objects.count(),
        "audit events": AuditEvent.objects.count(),
    }


# -- measuring the pages --------------------------------------------------------------------------------------
def _key(page: Page) -> str:
    return f"{page.url_name}|{page.viewer or 'public'}"


def _clients(federation) -> dict[str | None, Any]:
    import time

    from allauth.account.internal.flows.login import AUTHENTICATION_METHODS_SESSION_KEY
    from allauth.account.internal.userkit import user_id_to_str
    from django.test import Client

    clients: dict[str | None, Any] = {None: Client()}
    for page in PAGES:
        if page.viewer and page.viewer not in clients:
            client = Client()
            viewer = getattr(federation, page.viewer)
            client.force_login(viewer)
            # Officers, checkers and auditors reach the API only from a session that passed the second
            # factor (docs/security.md, finding 4): record the check as allauth's sign-in would.
            session = client.session
            session[AUTHENTICATION_METHODS_SESSION_KEY] = [
                {"method": "mfa", "type": "totp", "at": time.time()}
            ]
            session["account_authentication_methods_user"] = user_id_to_str(viewer)
            session.save()
            clients[page.viewer] = client
    return clients


def _pagination(response) -> dict[str, Any] | None:
    """The page of a list as the view built it: a Django ``Page`` in the context, or DRF's envelope."""
    from django.core.paginator import Page as DjangoPage

    if response.get("Content-Type", "").startswith("application/json"):
        data = response.json()
        if isinstance(data, dict) and "results" in data and "count" in data:
            return {"shown": len(data["results"]), "total": data["count"]}
        return None
    for context in response.context or []:
        for value in context.flatten().values():
            if isinstance(value, DjangoPage):
                return {"shown": len(value.object_list), "total": value.paginator.count}
    return None


def measure_size(clients, runs: int) -> dict[str, Any]:
    """Time every page (a warm-up fetch, then ``runs`` timed ones), then count the queries of one more
    fetch and read its pagination from the template context, which the test environment records."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, setup_test_environment, teardown_test_environment
    from django.urls import reverse

    def fetch(page: Page):
        url = reverse(page.url_name, args=page.args)
        response = clients[page.viewer].get(url)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
        return response

    measured = {_key(page): {"seconds": time_calls(lambda page=page: fetch(page), runs)} for page in PAGES}
    setup_test_environment()
    try:
        for page in PAGES:
            with CaptureQueriesContext(connection) as captured:
                response = fetch(page)
            measured[_key(page)].update(queries=len(captured), pagination=_pagination(response))
    finally:
        teardown_test_environment()
    return measured


def measure_here(quick: bool) -> dict[str, Any]:
    from benchmarks import federation

    sizes, runs = (QUICK_SIZES, QUICK_RUNS) if quick else (FULL_SIZES, FULL_RUNS)
    progress(NAME, "building the federation")
    fed = federation.build()
    grower = Grower(fed)
    clients = _clients(fed)
    by_size = {}
    for size in sizes:
        progress(NAME, f"growing to {size:,} requests")
        grower.grow(size)
        progress(NAME, f"{len(PAGES)} pages at {size:,} requests, {runs} timed fetches each")
        by_size[str(size)] = {"rows": row_counts(), "pages": measure_size(clients, runs)}
    return {"sizes": list(sizes), "runs": runs, "by_size": by_size}


def measure(quick: bool = False, database_url: str = "") -> dict[str, Any]:
    return {"quick": quick, "databases": per_database("benchmarks.pages", NAME, quick, database_url)}


# -- goals and report -----------------------------------------------------------------------------------------
def _rows(result: dict[str, Any]):
    """(page, small, large) per page, for each database's run."""
    small, large = (str(size) for size in result["sizes"])
    for page in PAGES:
        yield (
            page,
            result["by_size"][small]["pages"][_key(page)],
            result["by_size"][large]["pages"][_key(page)],
        )


def _time_ratio(small: dict[str, Any], large: dict[str, Any]) -> float:
    return statistics.median(large["seconds"]) / statistics.median(small["seconds"])


DATABASE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def goals(result: dict[str, Any]) -> list[Goal]:
    found = []
    for database, run in result["databases"].items():
        small, large = run["sizes"]
        rows = list(_rows(run))
        equal = [page for page, s, b in rows if s["queries"] == b["queries"]]
        differ = [
            f"{page.label} ({s['queries']} → {b['queries']})" for page, s, b in rows if page not in equal
        ]
        ratios = sorted(((_time_ratio(s, b), page.label) for page, s, b in rows), reverse=True)
        name = DATABASE_NAMES.get(database, database)
        found += [
            Goal(
                NAME,
                f"list pages on {name}: the same number of queries at {small:,} and {large:,} requests",
                f"{len(equal)} of {len(rows)} pages equal"
                + (f"; differ: {', '.join(differ)}" if differ else ""),
                not differ,
            ),
            Goal(
                NAME,
                f"list pages on {name}: time at {large:,} requests over time at {small:,}",
                f"median over the pages {ratio(statistics.median(r for r, _ in ratios))}; largest "
                f"{ratio(ratios[0][0])} ({ratios[0][1]})",
                None,
            ),
        ]
    return found


def render(result: dict[str, Any]) -> str:
    lines = []
    if result["quick"]:
        lines += [
            "> Quick run: fewer requests and fewer fetches. These numbers only show the benchmark works.",
            "",
        ]
    for run in result["databases"].values():
        small, large = run["sizes"]
        lines += [
            f"### {run['database']}",
            "",
            "Rows at each size: "
            + "; ".join(
                f"{size:,} requests: "
                + ", ".join(f"{count:,} {what}" for what, count in run["by_size"][str(size)]["rows"].items())
                for size in (small, large)
            )
            + ".",
            "",
            f"| page | as | queries at {small:,} | queries at {large:,} | ms at {small:,} | ms at {large:,} "
            "| time ratio | list paginated |",
            "|---|---|---:|---:|---:|---:|---:|---|",
        ]
        for page, s, b in _rows(run):
            paging = b["pagination"]
            shown = (
                f"yes: {paging['shown']:,} of {paging['total']:,}"
                if paging
                else "no (a summary, or the whole list)"
            )
            mark = "" if s["queries"] == b["queries"] else " ≠"
            lines.append(
                f"| {page.label} (`{page.url_name}`) | {page.viewer or 'the public'} | {s['queries']} "
                f"| {b['queries']}{mark} | {statistics.median(s['seconds']) * 1000:,.1f} "
                f"| {statistics.median(b['seconds']) * 1000:,.1f} | {ratio(_time_ratio(s, b))} | {shown} |"
            )
        whole = [page.label for page, _, b in _rows(run) if not b["pagination"]]
        growth = sorted(((_time_ratio(s, b), page.label) for page, s, b in _rows(run)), reverse=True)[:3]
        lines += [
            "",
            f"The three pages that slowed most from {small:,} to {large:,} requests: "
            + ", ".join(f"{label} ({ratio(value)})" for value, label in growth)
            + ". "
            + (
                f"Without a page object at {large:,} requests: {', '.join(whole)}."
                if whole
                else "Every page is paginated."
            ),
            "",
        ]
    first = next(iter(result["databases"].values()))
    runs, (small, large) = first["runs"], first["sizes"]
    lines += [
        "How it is measured: each database is built in a fresh process, migrated, given the federation of "
        "`benchmarks/federation.py` through the services, then grown in bulk (`bulk_create`, one "
        f"transaction) to {small:,} requests: one project for every {REQUESTS_PER_PROJECT} requests with "
        "its sponsor, memberships, agreement, dataset and workflow (one project in ten awaiting approval), "
        "and for each request its version and crate metadata, its job at TRE A in one of twelve states in "
        "turn (most of them finished), the review decisions that state implies and its audit event, "
        f"spread over the last {DAYS} days. Each page is fetched with Django's test client signed in as "
        f"the person named (the public: signed out), once to warm up, then {runs} "
        f"time{'s' if runs > 1 else ''}: the median is shown. The queries of one more fetch are counted. The database then grows to "
        f"{large:,} requests and the same fetches are made. Public pages are measured uncached "
        "(`PORTAL_PUBLIC_CACHE_SECONDS = 0`): in production they are cached for five minutes. "
        "'List paginated' reads the page object of the template context (or the API's `count` and "
        f"`results`) at {large:,} requests: how many rows were shown of how many.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return database_child(NAME, measure_here, argv)


if __name__ == "__main__":
    sys.exit(main())

"""Demo requests in several states, built with the portal's own request builder.

Runs after the demo registry and the demo agents' workflows exist; idempotent (requests are
matched by title).
"""

import tempfile
from pathlib import Path

from django.core.files import File

from crates import builder, services
from crates.models import Request
from portal.models import TRE, ApprovedWorkflow, Decision, Project
from reviews import services as reviews
from reviews.models import CHECK_STEPS, Step

DEMO_REQUESTS = [
    # (title, project, TRE slugs, what happens to each job)
    ("Recovery after COVID-19 by age band", "PRJ-2026-0001", ["cymru-sdb", "nfhdn"], "queued"),
    ("Re-consultation within 90 days", "PRJ-2026-0001", ["cymru-sdb"], "in_review"),
    ("Inhaler prescriptions after high-pollution days", "PRJ-2026-0002", ["taybridge"], "changes_requested"),
    ("Asthma admissions by month", "PRJ-2026-0002", ["taybridge"], "awaiting_review"),
    ("Linked deaths by postcode", "PRJ-2026-0001", ["nfhdn"], "rejected"),
]


def _workflow_for(tres):
    approved = ApprovedWorkflow.objects.all()
    for tre in tres:
        approved = approved.filter(approvals__tre=tre, approvals__status=Decision.APPROVED)
    return approved.order_by("pk").first()


def _officer_for(tre, cast):
    return cast["oscar"] if tre.slug == "nfhdn" else cast["olivia"]


def seed_demo_requests(cast, stdout=None):
    researcher = cast["alice"]
    made = 0
    for title, identifier, slugs, fate in DEMO_REQUESTS:
        if Request.objects.filter(title=title).exists():
            continue
        project = Project.objects.get(identifier=identifier)
        tres = list(TRE.objects.filter(slug__in=slugs).order_by("slug"))
        workflow = _workflow_for(tres)
        if workflow is None:
            continue
        with tempfile.TemporaryDirectory(prefix="demo-request-") as scratch:
            zip_path = builder.build_for_request(
                user=researcher,
                project=project,
                tres=tres,
                workflow=workflow,
                datasets=[d for tre in tres for d in tre.datasets.all()[:1]],
                parameters=[("min_age", "18")],
                inputs=[],
                title=title,
                description=f"{title}: a demonstration request.",
                scratch=Path(scratch),
            )
            with zip_path.open("rb") as handle:
                request = services.submit_request(
                    by=researcher,
                    project=project,
                    tres=tres,
                    title=title,
                    upload=File(handle, name=zip_path.name),
                )
        services.validate_version(request.versions.get().pk)
        for job in request.jobs.select_related("tre"):
            _bring_to(job, fate, _officer_for(job.tre, cast))
        made += 1
    if stdout and made:
        stdout.write(f"Added {made} demo request(s).")
    return made


def _bring_to(job, fate, officer):
    if fate == "awaiting_review":
        return
    reviews.start_review(job, by=officer)
    if fate == "in_review":
        reviews.decide_step(job, Step.SAFE_PEOPLE, "approve", by=officer)
    elif fate == "changes_requested":
        reviews.decide_step(
            job,
            Step.SAFE_DATA,
            "changes",
            "Say which prescribing codes define an inhaler; attach the code list.",
            by=officer,
        )
    elif fate == "rejected":
        reviews.decide_step(
            job,
            Step.SAFE_DATA,
            "reject",
            "Postcode-level linkage is outside the agreement with this TRE.",
            by=officer,
        )
    elif fate == "queued":
        for step in CHECK_STEPS:
            reviews.decide_step(job, step, "approve", by=officer)
        reviews.decide_step(job, Step.SIGN_OFF, "approve", "All five safes met.", by=officer)

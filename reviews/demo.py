"""The whole demo federation (`manage.py seed_demo`), and its requests in several states.

`seed()` seeds the registry (portal.demo), the demo agents and their workflows (crates.demo_agents),
then demo requests built with the portal's own request builder and brought to several states by the
review services: it lives here, in the highest layer it needs. Idempotent (requests are matched by
title).
"""

import json
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files import File

from agent.demo_workflows import COHORT_QUERY
from crates import builder, demo_agents, services
from crates.models import Request
from portal import demo
from portal.models import TRE, ApprovedWorkflow, Decision, Project
from reviews import services as reviews
from reviews.models import CHECK_STEPS, Step

# The demo agents' workflows, and inputs each really takes (a request naming an input its workflow does
# not have is refused by the agent).
AGE_SEX = (demo_agents.AGE_SEX.workflow_id, [("reference_year", "2025")])
SEX_COUNTS = (demo_agents.SEX_COUNTS.workflow_id, [("born_from", "1940")])
COHORT = (demo_agents.COHORT_COUNT.workflow_id, [("query", json.dumps(json.loads(COHORT_QUERY.read_text())))])

DEMO_REQUESTS = [
    # (title, project, TRE slugs, (workflow id, parameters), what happens to each job)
    ("Recovery after COVID-19 by age band", "PRJ-2026-0001", ["cymru-sdb", "nfhdn"], AGE_SEX, "queued"),
    # Runs in a container at cymru-sdb; skipped where the demo has no podman (no approved workflow then).
    ("Persons by sex, counted in a container", "PRJ-2026-0001", ["cymru-sdb"], SEX_COUNTS, "queued"),
    ("Re-consultation within 90 days", "PRJ-2026-0001", ["cymru-sdb"], COHORT, "in_review"),
    (
        "Inhaler prescriptions after high-pollution days",
        "PRJ-2026-0002",
        ["taybridge"],
        COHORT,
        "changes_requested",
    ),
    ("Asthma admissions by month", "PRJ-2026-0002", ["taybridge"], AGE_SEX, "awaiting_review"),
    ("Linked deaths by postcode", "PRJ-2026-0001", ["nfhdn"], AGE_SEX, "rejected"),
]


def seed(stdout=None):
    """Create the demo federation: registry, agents and their workflows, requests. Returns the cast."""
    cast = demo.seed_registry()
    demo_agents.seed_demo_agents(cast["admin"], settings.DATA_DIR / "demo-agents")
    seed_demo_requests(cast, stdout)
    if stdout:
        stdout.write(demo.summary())
    return cast


def _workflow_for(tres, workflow_id):
    approved = ApprovedWorkflow.objects.filter(workflow_id=workflow_id)
    for tre in tres:
        approved = approved.filter(approvals__tre=tre, approvals__status=Decision.APPROVED)
    return approved.order_by("-pk").first()


def _officer_for(tre, cast):
    return cast["oscar"] if tre.slug == "nfhdn" else cast["olivia"]


def seed_demo_requests(cast, stdout=None):
    researcher = cast["alice"]
    made = 0
    for title, identifier, slugs, (workflow_id, parameters), fate in DEMO_REQUESTS:
        if Request.objects.filter(title=title).exists():
            continue
        project = Project.objects.get(identifier=identifier)
        tres = list(TRE.objects.filter(slug__in=slugs).order_by("slug"))
        workflow = _workflow_for(tres, workflow_id)
        if workflow is None:
            continue
        with tempfile.TemporaryDirectory(prefix="demo-request-") as scratch:
            zip_path = builder.build_for_request(
                user=researcher,
                project=project,
                tres=tres,
                workflow=workflow,
                datasets=[d for tre in tres for d in tre.datasets.all()[:1]],
                parameters=parameters,
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
        reviews.decide_step(job, Step.SAFE_PEOPLE, "approve", "Checked against the registry.", by=officer)
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
            reviews.decide_step(job, step, "approve", "Checked against the registry.", by=officer)
        reviews.decide_step(job, Step.SIGN_OFF, "approve", "All five safes met.", by=officer)

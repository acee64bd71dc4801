"""Reach any job state through the real services and transitions (never by writing `status`)."""

import json

from django.core.files.uploadedfile import SimpleUploadedFile

from crates import services as crate_services
from crates.models import Agent, Job
from crates.transitions import transition
from portal import audit
from reviews import evidence
from reviews import services as review_services
from reviews.models import CHECK_STEPS, Step

S = Job.Status
SYSTEM = audit.SYSTEM

# The path from a fresh job to each state: (to_state, who) pairs, who being a key of `actors`.
PATHS = {
    S.AWAITING_REVIEW: [],
    S.IN_REVIEW: ["start"],
    S.CHANGES_REQUESTED: ["start", "changes"],
    S.REJECTED: ["start", "reject"],
    # Sign-off moves on to queued at once; tests that need to stop at approved make the move directly.
    S.APPROVED: ["start", (S.APPROVED, "officer")],
    S.QUEUED: ["start", "signoff"],
    S.CLAIMED: ["start", "signoff", (S.CLAIMED, "agent")],
    S.RUNNING: ["start", "signoff", (S.CLAIMED, "agent"), (S.RUNNING, "agent")],
    S.FAILED: ["start", "signoff", (S.CLAIMED, "agent"), (S.RUNNING, "agent"), (S.FAILED, "agent")],
    S.OUTPUTS_RETURNED: [
        "start",
        "signoff",
        (S.CLAIMED, "agent"),
        (S.RUNNING, "agent"),
        (S.OUTPUTS_RETURNED, "agent"),
    ],
    S.OUTPUT_REVIEW: [
        "start",
        "signoff",
        (S.CLAIMED, "agent"),
        (S.RUNNING, "agent"),
        (S.OUTPUTS_RETURNED, "agent"),
        (S.OUTPUT_REVIEW, "system"),
    ],
    S.OUTPUT_CHANGES_REQUESTED: [
        "start",
        "signoff",
        (S.CLAIMED, "agent"),
        (S.RUNNING, "agent"),
        (S.OUTPUTS_RETURNED, "agent"),
        (S.OUTPUT_REVIEW, "system"),
        (S.OUTPUT_CHANGES_REQUESTED, "system"),
    ],
    S.WITHHELD: [
        "start",
        "signoff",
        (S.CLAIMED, "agent"),
        (S.RUNNING, "agent"),
        (S.OUTPUTS_RETURNED, "agent"),
        (S.OUTPUT_REVIEW, "system"),
        (S.WITHHELD, "system"),
    ],
    S.RELEASED: [
        "start",
        "signoff",
        (S.CLAIMED, "agent"),
        (S.RUNNING, "agent"),
        (S.OUTPUTS_RETURNED, "agent"),
        (S.OUTPUT_REVIEW, "system"),
        (S.RELEASED, "system"),
    ],
    S.SUSPENDED: [(S.SUSPENDED, "system")],
    S.CANCELLED: [(S.CANCELLED, "researcher")],
}


def submit(*, researcher, project, tres, crate_zip, capture, title="A request"):
    """Submit a crate through the service and run its validation; returns the Request."""
    upload = SimpleUploadedFile(crate_zip.name, crate_zip.read_bytes(), content_type="application/zip")
    with capture(execute=True):
        request = crate_services.submit_request(
            by=researcher, project=project, tres=tres, title=title, upload=upload
        )
    version = request.versions.get()
    assert version.status == "valid", json.dumps(version.validation_report, indent=1)
    return request


def agent_for(tre, by=None):
    """The TRE's test agent, registered by `by` (or by whoever approved a project there)."""
    agent = Agent.objects.filter(tre=tre, name="test agent").first()
    if agent is None:
        from portal.models import ProjectApproval

        creator = by or ProjectApproval.objects.filter(tre=tre, decided_by__isnull=False).first().decided_by
        agent = Agent.objects.create(
            tre=tre,
            name="test agent",
            token_prefix="fsa_test",
            token_hash=f"{tre.pk:064d}",
            created_by=creator,
        )
    return agent


def approve(job, step, officer):
    """Approve one step as an officer would: with a reason where an automated check is not met
    (docs/security.md, finding 12), without one where all are."""
    if step == Step.SIGN_OFF:
        findings = [f for items in evidence.all_evidence(job).values() for f in items]
    else:
        findings = evidence.evidence_for(job, step)
    reason = (
        ""
        if evidence.is_clear(findings)
        else "Checked by hand: approved although an automated check is not met."
    )
    return review_services.decide_step(job, step, "approve", reason, by=officer)


def approve_all_steps(job, officer):
    review_services.start_review(job, by=officer)
    for step in CHECK_STEPS:
        approve(job, step, officer)
    review_services.decide_step(job, Step.SIGN_OFF, "approve", "All five safes met.", by=officer)
    job.refresh_from_db()
    return job


def walk(job, state, *, officer, researcher):
    """Move `job` (awaiting review) to `state` along PATHS, as the right people."""
    steps = PATHS[state]
    actors = {
        "agent": agent_for(job.tre, officer),
        "system": SYSTEM,
        "researcher": researcher,
        "officer": officer,
    }
    for step in steps:
        if step == "start":
            review_services.start_review(job, by=officer)
        elif step == "changes":
            review_services.decide_step(job, Step.SAFE_DATA, "changes", "Name the dataset.", by=officer)
        elif step == "reject":
            review_services.decide_step(job, Step.SAFE_PEOPLE, "reject", "Not accredited.", by=officer)
        elif step == "signoff":
            for check in CHECK_STEPS:
                approve(job, check, officer)
            approve(job, Step.SIGN_OFF, officer)
        else:
            to_state, who = step
            transition(job, to_state, by=actors[who], message=f"test: {who} moves to {to_state}")
        job.refresh_from_db()
    assert job.status == state, (job.status, state)
    return job


def completed_results_crate(job, tables, folder):
    """The results crate the reference agent writes for `job` after a completed run returning `tables`
    ({file name: bytes}), built by the agent's own code from the job's crate; returns its path."""
    import hashlib
    from datetime import UTC, datetime, timedelta

    from agent.config import TreIdentity
    from agent.executors.base import Engine, ExecutionResult, ExecutionStatus, OutputFile
    from agent.results import WorkflowRetrieval, write_result_crate

    outputs_dir = folder / f"outputs-{job.pk}"
    outputs_dir.mkdir()
    declared = []
    for name, content in tables.items():
        (outputs_dir / name).write_bytes(content)
        declared.append(OutputFile(name, len(content), hashlib.sha256(content).hexdigest(), "text/csv"))
    now = datetime.now(UTC)
    result = ExecutionResult(
        status=ExecutionStatus.COMPLETED,
        started_at=now - timedelta(minutes=1),
        ended_at=now,
        engine=Engine("cwltool", "3.1"),
        outputs=tuple(declared),
    )
    crate = write_result_crate(
        job.metadata,
        result,
        outputs_dir=outputs_dir,
        external_identifier=job.version.external_identifier,
        tre=TreIdentity(slug=job.tre.slug, name=job.tre.name, url=f"https://{job.tre.slug}.example.org"),
        dest=folder / f"results-{job.pk}.zip",
        retrieval=WorkflowRetrieval(
            started_at=now - timedelta(minutes=2),
            ended_at=now - timedelta(minutes=1, seconds=50),
            sha256=job.workflow.sha256 if job.workflow else "0" * 64,
        ),
    )
    return crate.path


def return_results(job, tables, *, tmp_path, agent=None):
    """Run the job through the real dispatch services as its TRE agent would, returning `tables`.

    `tables` maps output file names to bytes. The results crate is built by the reference agent's
    own code from the job's crate, so it is exactly what an agent uploads.
    """
    import hashlib
    import io

    from crates import dispatch

    agent = agent or agent_for(job.tre, None)
    claim = dispatch.claim_next(agent)
    assert claim is not None and claim.job.pk == job.pk
    token = claim.lease.fencing_token
    dispatch.report_status(agent, job.pk, fencing_token=token, status="running")
    job.refresh_from_db()
    path = completed_results_crate(job, tables, tmp_path)
    body = path.read_bytes()
    upload, _ = dispatch.receive_results(
        agent,
        job.pk,
        fencing_token=token,
        idempotency_key=f"results-{job.pk}",
        declared_sha256=hashlib.sha256(body).hexdigest(),
        stream=io.BytesIO(body),
        length=len(body),
    )
    dispatch.report_status(agent, job.pk, fencing_token=token, status="completed")
    job.refresh_from_db()
    return upload

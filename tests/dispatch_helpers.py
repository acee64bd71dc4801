"""Dispatch test helpers: queued jobs reached through intake and review, agents, results crates."""

import hashlib
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from django.core.files.base import ContentFile

from agent.archive import safe_extract
from agent.config import TreIdentity
from agent.executors.base import Engine, ExecutionResult, ExecutionStatus, write_output
from agent.results import external_identifier_of, write_result_crate
from agent.runner import declare_bagit_1_0
from crates import dispatch
from crates.models import Job, Request, RequestVersion
from crates.services import export_job_crate
from portal import services as portal_services
from portal.models import ApprovedWorkflow
from tests.builders import approve_all_steps, submit


def queued_job(registry, alice, olivia, crate_zip, capture, *, title="Counts by age band"):
    """A job at TRE A, submitted by alice and signed off by olivia: queued for an agent."""
    project = registry["project"]
    request = submit(
        researcher=alice,
        project=project,
        tres=[project.approvals.get().tre],
        crate_zip=crate_zip,
        capture=capture,
        title=title,
    )
    job = approve_all_steps(request.jobs.get(), olivia)
    assert job.status == Job.Status.QUEUED
    return job


def queued_jobs(count, registry, alice, olivia, crate_zip, capture):
    """`count` queued jobs: the first through intake, the others opened from a copy of its validated
    version (as intake opens jobs), each reviewed and signed off through the review services."""
    first = queued_job(registry, alice, olivia, crate_zip, capture, title="Request 1")
    return [first, *(_copy_of(first, olivia, n) for n in range(2, count + 1))]


def _copy_of(job, officer, n):
    source = job.version
    request = Request.objects.create(
        project=job.request.project, submitter=job.request.submitter, title=f"Request {n}"
    )
    request.tres.set([job.tre])
    version = RequestVersion.objects.create(
        request=request,
        number=1,
        crate=source.crate.name,
        original_filename=source.original_filename,
        sha256=source.sha256,
        size=source.size,
        external_identifier=source.external_identifier,
        status=RequestVersion.Status.VALID,
        metadata=source.metadata,
        validation_report=source.validation_report,
        crosscheck=source.crosscheck,
        summary=source.summary,
        created_by=source.created_by,
        validated_at=source.validated_at,
    )
    copy = Job.objects.create(
        request=request, version=version, tre=job.tre, metadata=source.metadata, workflow=job.workflow
    )
    return approve_all_steps(copy, officer)


def issue(tre, by, name="agent-1"):
    """An agent of `tre` and its token."""
    return dispatch.issue_agent(tre, name, by=by)


def bearer(secret):
    return {"Authorization": f"Bearer {secret}"}


def attach_workflow_crate(workflow, zip_path):
    """Store the Workflow RO-Crate zip of a registered workflow, with its real checksum."""
    data = Path(zip_path).read_bytes()
    workflow.crate.save(f"{workflow.pk}.zip", ContentFile(data), save=False)
    workflow.sha256 = hashlib.sha256(data).hexdigest()
    ApprovedWorkflow.objects.filter(pk=workflow.pk).update(crate=workflow.crate.name, sha256=workflow.sha256)
    return workflow


def approve_workflow(workflow, tre, officer):
    approval = portal_services.request_workflow_approval(workflow, tre, by=officer)
    return portal_services.decide_workflow(approval, "approved", by=officer)


def results_crate(job, dest, *, outputs=None, external_identifier=None):
    """A results crate for `job` as the reference agent writes it: the job's crate metadata updated
    with a completed run, and `outputs` ({name: bytes}) as its outputs."""
    dest = Path(dest)
    scratch = dest.parent / f"{dest.stem}-work"
    export = export_job_crate(job, scratch / "job.zip")
    safe_extract(export, scratch / "job")
    bag = next((scratch / "job").iterdir())
    metadata = json.loads((bag / "data" / "ro-crate-metadata.json").read_text())
    outputs_dir = scratch / "outputs"
    outputs_dir.mkdir()
    written = tuple(
        write_output(outputs_dir, name, content, max_bytes=1 << 20)
        for name, content in (outputs or {"counts.csv": b"age_band,count\n40-49,20\n"}).items()
    )
    now = datetime.now(UTC)
    result = ExecutionResult(
        status=ExecutionStatus.COMPLETED,
        started_at=now,
        ended_at=now,
        engine=Engine("test engine", "1"),
        outputs=written,
    )
    crate = write_result_crate(
        metadata,
        result,
        outputs_dir=outputs_dir,
        external_identifier=external_identifier or external_identifier_of(bag),
        tre=TreIdentity(slug=job.tre.slug, name=job.tre.name, url=f"https://{job.tre.slug}.example.org/"),
        dest=dest,
    )
    declare_bagit_1_0(crate.path)
    return crate.path


def zip_names(path):
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()

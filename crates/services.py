"""Crate intake: receive a crate, validate it in the background, open one job per target TRE.

Every function that changes something takes the actor as `by=` and audits the change in the
same transaction. The slow part (unpacking, BagIt checksums, profile validation) runs in the
django-q2 task `crates.tasks.validate_version`, enqueued on commit.
"""

import hashlib
import json
import logging
import shutil
import tempfile
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from crates import crosscheck as crosschecks
from crates import permissions as crate_permissions
from crates import signals, versions
from crates import summary as summaries
from crates.fivesafes import paths, writeback
from crates.fivesafes.errors import CrateRefused
from crates.fivesafes.loader import load_metadata
from crates.fivesafes.safezip import Limits, extract_bag
from crates.fivesafes.validator import validate_metadata
from crates.fivesafes.zipbag import verify_zip_bag
from crates.models import CrateRefusal, Job, Request, RequestVersion
from crates.transitions import transition
from portal import audit
from portal.models import ApprovedWorkflow, Decision, ProjectApproval

log = logging.getLogger(__name__)

PORTAL_SOFTWARE = {"name": "Five Safes Portal", "version": "1.0"}


def crate_limits():
    return Limits(**settings.PORTAL_CRATE_LIMITS)


def portal_agent():
    """The portal as the agent of the actions it records in crates, provided by the federation."""
    return writeback.Software(
        id=f"{settings.PORTAL_BASE_URL.rstrip('/')}/#portal",
        name=PORTAL_SOFTWARE["name"],
        provider=writeback.Organization(id=settings.FEDERATION_URL, name=settings.FEDERATION_NAME),
    )


# --- Who may submit ----------------------------------------------------------------------


def check_can_submit(user, project, tres):
    """Only active members submit, and only to TREs where the project is approved."""
    crate_permissions.check_submit(user, project)
    if not tres:
        raise ValidationError({"tres": "Choose at least one TRE."})
    approved = set(
        ProjectApproval.objects.filter(project=project, status=Decision.APPROVED).values_list(
            "tre_id", flat=True
        )
    )
    refused = [tre.name for tre in tres if tre.pk not in approved]
    if refused:
        raise ValidationError({"tres": f"{project.identifier} is not approved at {', '.join(refused)}."})
    crate_permissions.check_submit(user, project, tres)


# --- Receiving a crate --------------------------------------------------------------------


def _store_upload(upload, request, number):
    """Stream an upload to storage, hashing as it goes; refuse it past the size limit."""
    limit = settings.PORTAL_CRATE_LIMITS["max_compressed_bytes"]
    if upload.size is not None and upload.size > limit:
        raise CrateRefused(
            "upload.too_large",
            f"The crate is {filesizeformat(upload.size)}; the limit is {filesizeformat(limit)}.",
            getattr(upload, "name", ""),
        )
    digest = hashlib.sha256()
    size = 0
    for chunk in upload.chunks():
        digest.update(chunk)
        size += len(chunk)
    upload.seek(0)
    version = RequestVersion(request=request, number=number, sha256=digest.hexdigest(), size=size)
    name = default_storage.save(
        version.crate.field.upload_to(version, upload.name), File(upload, name=upload.name)
    )
    return name, digest.hexdigest(), size


@transaction.atomic
def submit_request(*, by, project, tres, title, upload, description="", message=""):
    """Create a request with its first version from an uploaded crate ZIP; validation follows."""
    check_can_submit(by, project, tres)
    request = Request.objects.create(
        project=project, submitter=by, title=title.strip(), description=description
    )
    request.tres.set(tres)
    audit.record(
        "request.created",
        by=by,
        obj=request,
        after={"title": request.title, "tres": [t.slug for t in tres]},
        project=project,
    )
    add_version(request, by=by, upload=upload, message=message)
    return request


@transaction.atomic
def add_version(request, *, by, upload, message=""):
    """Store a new version of the request's crate and enqueue its validation."""
    request = Request.objects.select_for_update(of=("self",)).select_related("project").get(pk=request.pk)
    latest = request.versions.order_by("-number").first()
    if latest is not None:
        crate_permissions.check_resubmit(by, request)
        if not latest.is_final:
            raise ValidationError("The previous version is still being checked; wait for its report.")
        if (
            latest.status == RequestVersion.Status.VALID
            and not request.jobs.filter(status=Job.Status.CHANGES_REQUESTED).exists()
        ):
            raise ValidationError("No TRE has asked for changes, so there is nothing to resubmit.")
    number = (latest.number if latest else 0) + 1
    try:
        name, sha256, size = _store_upload(upload, request, number)
    except CrateRefused as refusal:
        _record_refusal(refusal, by=by, request=request, filename=getattr(upload, "name", ""))
        raise
    version = RequestVersion.objects.create(
        request=request,
        number=number,
        crate=name,
        original_filename=getattr(upload, "name", "")[:255],
        sha256=sha256,
        size=size,
        created_by=by,
        message=message,
    )
    audit.record(
        "request.version_received",
        by=by,
        obj=version,
        after={"number": number, "sha256": sha256, "size": size},
        project=request.project,
    )
    from crates.tasks import enqueue_validation

    transaction.on_commit(lambda: enqueue_validation(version.pk))
    return version


def _record_refusal(refusal, *, by, request=None, filename="", size=0, sha256=""):
    CrateRefusal.objects.create(
        user=by if getattr(by, "is_authenticated", False) else None,
        request=request,
        filename=(filename or "")[:255],
        size=size,
        sha256=sha256,
        code=refusal.code,
        message=refusal.message,
        where=(refusal.where or "")[:500],
    )
    audit.record(
        "crate.refused",
        by=by,
        object_type="crates.request",
        object_id=str(request.pk) if request else "",
        after={"code": refusal.code, "where": refusal.where or ""},
        message=refusal.message,
        project=request.project if request else "",
    )


# --- Validation (run by the worker) ---------------------------------------------------------


@contextmanager
def stored_copy(file_field):
    """The stored crate ZIP copied to a local temporary file (storage may be remote), removed afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix="crate-"))
    try:
        archive = scratch / "crate.zip"
        with file_field.open("rb") as source, archive.open("wb") as target:
            shutil.copyfileobj(source, target, length=1024 * 1024)
        yield archive
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextmanager
def unpacked(file_field):
    """The crate's bag directory, unpacked safely into a temporary folder removed afterwards."""
    with stored_copy(file_field) as archive:
        yield extract_bag(archive, archive.parent / "bag", crate_limits())


def validate_version(version_id):
    """Check a received version: unpack, BagIt, profile, write-back, cross-checks, jobs. Idempotent."""
    started = timezone.now()
    claimed = RequestVersion.objects.filter(pk=version_id, status=RequestVersion.Status.RECEIVED).update(
        status=RequestVersion.Status.VALIDATING, validation_started_at=started
    )
    if not claimed:
        return None  # another worker has it, or it is done
    version = RequestVersion.objects.select_related("request__project", "created_by").get(pk=version_id)
    try:
        # Verified straight from the ZIP: every entry checked and hashed as it streams, nothing of the
        # payload written to disk (crates.fivesafes.zipbag).
        with stored_copy(version.crate) as archive:
            bag = verify_zip_bag(archive, crate_limits())
            digests = versions.manifest_digests(archive)
        doc = load_metadata(bag.metadata, limits=crate_limits())
    except CrateRefused as refusal:
        return _finish_invalid(version, refusal=refusal, started=started)
    report = validate_metadata(doc)
    if not report.valid:
        # Only a valid crate's metadata is kept, and write-back needs a well-formed crate.
        return _finish_invalid(version, report=report, started=started)
    try:
        # Names of files in the crate go on to agents and write-back: only plain names inside data/.
        paths.check_data_entities(doc)
    except CrateRefused as refusal:
        return _finish_invalid(version, refusal=refusal, started=started)
    try:
        stripped = writeback.strip_assess_actions(doc)
        agent = portal_agent()
        writeback.add_check_action(
            doc,
            agent=agent,
            ok=True,
            detail=f"BagIt manifest (SHA-512) verified for {bag.payload_files} payload files; crate SHA-256 {version.sha256}.",
            started=started,
        )
        writeback.add_validation_action(
            doc, agent=agent, valid=report.valid, detail=_validation_message(report), started=started
        )
    except ValueError as exc:  # a shape the profile allows but review steps cannot be written into
        refusal = CrateRefused(
            "metadata.unrecordable",
            f"The portal cannot record review steps in this crate: {exc}.",
            "ro-crate-metadata.json",
        )
        return _finish_invalid(version, refusal=refusal, started=started)
    summary = versions.add_checksums(summaries.summarise(doc), digests)
    findings = crosschecks.crosscheck(summary, version.request)
    workflow = ApprovedWorkflow.objects.filter(pk=findings.get("workflow_pk")).first()
    problems = versions.input_problems(summary, workflow)
    if problems:
        refusal = CrateRefused(
            "inputs.invalid",
            f"The inputs do not fit {workflow}: " + " ".join(problems),
            "ro-crate-metadata.json",
        )
        return _finish_invalid(version, refusal=refusal, started=started)
    with transaction.atomic():
        version = RequestVersion.objects.select_for_update(of=("self",)).get(pk=version_id)
        if not _still_ours(version, started):
            return None
        version.status = RequestVersion.Status.VALID
        version.metadata = doc
        version.validation_report = report.to_dict()
        version.summary = summary
        version.crosscheck = findings
        version.stripped_actions = stripped
        version.external_identifier = bag.external_identifier
        version.validated_at = timezone.now()
        version.save()
        audit.record(
            "request.version_valid",
            by=audit.SYSTEM,
            obj=version,
            after={"warnings": len(report.warnings), "stripped_actions": len(stripped)},
            project=version.request.project,
        )
        if stripped:
            audit.record(
                "crate.assess_actions_stripped",
                by=audit.SYSTEM,
                obj=version,
                after={"ids": [a.get("@id") for a in stripped]},
                message=f"{len(stripped)} client-supplied AssessAction(s) removed on intake.",
                project=version.request.project,
            )
        _open_jobs(version, findings.get("workflow_pk"))
    return version


def redo_lost_validations(now=None):
    """Hand out again the checks of crates that have waited too long: received but never picked up, or
    claimed by a worker that has not finished within the retry time (the Redis broker does not
    redeliver the task of a worker that died). Returns the version ids handed out."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.PORTAL_VALIDATION_RETRY_SECONDS)
    S = RequestVersion.Status
    lost = []
    for pk, started in RequestVersion.objects.filter(
        status=S.VALIDATING, validation_started_at__lt=cutoff
    ).values_list("pk", "validation_started_at"):
        # Taken back only if still the same claim; the old run, should it wake, finds it gone.
        if RequestVersion.objects.filter(pk=pk, status=S.VALIDATING, validation_started_at=started).update(
            status=S.RECEIVED, validation_started_at=None
        ):
            lost.append(pk)
    lost += (
        RequestVersion.objects.filter(status=S.RECEIVED, created_at__lt=cutoff)
        .exclude(pk__in=lost)
        .values_list("pk", flat=True)
    )
    from crates.tasks import enqueue_validation

    for pk in sorted(lost):
        enqueue_validation(pk)
    return sorted(lost)


def _validation_message(report):
    if report.valid:
        return f"Valid against the Five Safes RO-Crate profile ({len(report.warnings)} recommendation(s) not met)."
    return f"Not valid against the Five Safes RO-Crate profile: {len(report.errors)} required rule(s) failed."


def _still_ours(version, started):
    """Whether the run that claimed `version` at `started` still holds it (a sweep may have handed a
    lost run's work to another worker: then only that one records its outcome)."""
    return version.status == RequestVersion.Status.VALIDATING and version.validation_started_at == started


def _finish_invalid(version, *, started, refusal=None, report=None, stripped=()):
    """An invalid crate keeps nothing but the record of why: the stored ZIP is deleted."""
    with transaction.atomic():
        version = (
            RequestVersion.objects.select_for_update(of=("self",))
            .select_related("request__project")
            .get(pk=version.pk)
        )
        if not _still_ours(version, started):
            return None
        if refusal is not None:
            version.validation_report = {
                "valid": False,
                "refusal": refusal.to_dict(),
                "errors": [],
                "warnings": [],
            }
            _record_refusal(
                refusal,
                by=version.created_by,
                request=version.request,
                filename=version.original_filename,
                size=version.size,
                sha256=version.sha256,
            )
        else:
            version.validation_report = report.to_dict()
        version.status = RequestVersion.Status.INVALID
        version.validated_at = timezone.now()
        stored = version.crate.name
        version.crate = ""
        version.save()
        audit.record(
            "request.version_invalid",
            by=audit.SYSTEM,
            obj=version,
            after={
                "errors": len(version.validation_report.get("errors", [])),
                "refusal": refusal.code if refusal else "",
            },
            project=version.request.project,
        )
        if stored:
            transaction.on_commit(lambda: default_storage.delete(stored))
    return version


def _open_jobs(version, workflow_pk):
    """One job per target TRE; on resubmission, jobs waiting for changes move back to review."""
    request = version.request
    existing = {job.tre_id: job for job in request.jobs.select_for_update(of=("self",))}
    dataset_ids = [d["id"] for d in (version.summary or {}).get("datasets", [])]
    for tre in request.tres.all():
        job = existing.get(tre.pk)
        if job is None:
            job = Job.objects.create(
                request=request,
                version=version,
                tre=tre,
                metadata=json.loads(json.dumps(version.metadata)),
                workflow_id=workflow_pk,
            )
            job.datasets.set(tre.datasets.filter(identifier__in=dataset_ids))
            audit.record(
                "job.created",
                by=audit.SYSTEM,
                obj=job,
                after={"version": version.number},
                tre=tre,
                project=request.project,
            )
            signals.review_needed.send(sender=Job, job=job)
        elif job.status == Job.Status.CHANGES_REQUESTED:
            previous = job.version
            Job.objects.filter(pk=job.pk).update(
                version=version, metadata=json.loads(json.dumps(version.metadata)), workflow_id=workflow_pk
            )
            job.datasets.set(tre.datasets.filter(identifier__in=dataset_ids))
            transition(
                job, Job.Status.AWAITING_REVIEW, by=version.created_by, extra={"version": version.number}
            )
            job.refresh_from_db()
            signals.job_resubmitted.send(
                sender=Job, job=job, previous_version=previous, version=version, by=version.created_by
            )
            signals.review_needed.send(sender=Job, job=job)


# --- Exporting ---------------------------------------------------------------------------


def export_job_crate(job, out_path):
    """Write the job's crate as it stands (this TRE's metadata, with fresh BagIt manifests) to a ZIP."""
    out_path = Path(out_path)
    with unpacked(job.version.crate) as bag_dir:
        writeback.write_metadata(bag_dir, job.metadata)
        writeback.pack_bag(bag_dir, out_path)
    return out_path


def job_crate_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()

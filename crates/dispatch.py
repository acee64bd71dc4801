"""Dispatch: TRE agents, their tokens, and the leases under which they run approved jobs.

Every function that changes something takes the actor as `by=` (a person, an Agent, or
`audit.SYSTEM`) and audits the change in the same transaction; job status moves only through
`crates.transitions.transition`.

Invariants:

* An agent acts only on jobs of its own TRE whose lease it holds. A lapsed lease stays the agent's
  until the expiry sweep (or a revocation) ends it; ending it is what lets another agent claim the job.
* Every claim increments the job's fencing token. Status updates, downloads and uploads carry the
  token they were given; any other token is stale and refused, so a job whose lease expired and was
  claimed again can never be finished by the agent that lost it.
* Row locks are always taken in the order agent, job, lease, audit head, so claims, updates and the
  expiry sweep never deadlock.
* A results crate becomes visible only when its checksum and contents are verified, in the same
  transaction that moves the job to "outputs returned" (the disclosure checks start on commit); a
  rejected upload keeps nothing but the record of why.
"""

import hashlib
import secrets
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from crates import claiming, signals
from crates.fivesafes.bag import verify_bag
from crates.fivesafes.errors import CrateRefused
from crates.fivesafes.loader import load_metadata
from crates.fivesafes.paths import check_declared_results
from crates.fivesafes.safezip import extract_bag
from crates.fivesafes.validator import validate_metadata
from crates.models import Agent, Job, JobLease, ResultUpload
from crates.permissions import check_cancel, check_manage_agents
from crates.services import crate_limits, export_job_crate, job_crate_sha256
from crates.transitions import transition
from portal import audit
from portal.errors import Refusal
from portal.models import DataAccessAgreement, Decision, WorkflowApproval

S = Job.Status

# Jobs an agent works on under a lease; with queued ones, the jobs "in dispatch".
ACTIVE = (S.CLAIMED, S.RUNNING)
DISPATCH_STATES = (S.QUEUED, S.CLAIMED, S.RUNNING)
# Last contact is written at most this often outside claims, to keep busy agents cheap.
LAST_SEEN_RESOLUTION = timedelta(seconds=10)
_CHUNK = 1024 * 1024
_SHA256_CHARS = frozenset("0123456789abcdef")


def _setting(name):
    """A PORTAL_AGENT_* setting; its default lives in one place, portal/settings.py."""
    return getattr(settings, f"PORTAL_AGENT_{name}")


def lease_seconds():
    """How long a claim or heartbeat keeps a job leased to an agent."""
    return int(_setting("LEASE_SECONDS"))


def heartbeat_seconds():
    """How often agents are asked to heartbeat: three chances within one lease."""
    return max(1, lease_seconds() // 3)


def max_claim_wait():
    """The longest a claim waits for a job before answering that there is none."""
    return float(_setting("CLAIM_MAX_WAIT_SECONDS"))


def claim_poll_seconds():
    return float(_setting("CLAIM_POLL_SECONDS"))


def max_attempts():
    """How many leases a job may lose before it fails instead of being queued again."""
    return int(_setting("MAX_ATTEMPTS"))


def results_max_bytes():
    return int(_setting("RESULTS_MAX_BYTES"))


def quiet_after():
    return timedelta(seconds=int(_setting("QUIET_SECONDS")))


def stuck_after():
    return timedelta(seconds=int(_setting("STUCK_SECONDS")))


# --- Errors ------------------------------------------------------------------------------------


class DispatchError(Refusal):
    """A refused agent request. `code` is stable for machines; the message is for operators."""

    def __init__(self, message, code=None, *, status=None):
        super().__init__(message, code=code, status=status)


class JobNotFound(DispatchError):
    status = HTTPStatus.NOT_FOUND
    code = "job_not_found"


class LeaseConflict(DispatchError):
    """The job is not (or no longer) this agent's to act on, or not in a state that allows it."""

    status = HTTPStatus.CONFLICT
    code = "lease_conflict"


class StaleFencingToken(LeaseConflict):
    code = "stale_fencing_token"


class WorkflowUnavailable(DispatchError):
    """The job's workflow is not one this TRE may run."""

    status = HTTPStatus.FORBIDDEN
    code = "workflow_not_approved"


class WorkflowCrateMissing(DispatchError):
    status = HTTPStatus.NOT_FOUND
    code = "workflow_crate_missing"


class UploadRejected(DispatchError):
    """A results upload that is refused: checksum, size, format or contents."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    code = "upload_rejected"


class UploadTooLarge(UploadRejected):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "upload_too_large"


class BadUploadRequest(UploadRejected):
    status = HTTPStatus.BAD_REQUEST
    code = "bad_upload_request"


# --- Agents and their tokens -------------------------------------------------------------------


def hash_token(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret():
    return f"{Agent.TOKEN_PREFIX}{secrets.token_urlsafe(32)}"


@transaction.atomic
def issue_agent(tre, name, *, by):
    """Register an agent for `tre`; returns (agent, token). The token is shown once and never stored."""
    check_manage_agents(by, tre)
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Name the agent, e.g. after the machine it runs on."})
    if Agent.objects.filter(tre=tre, name__iexact=name).exists():
        raise ValidationError({"name": f"{tre} already has an agent called {name}."})
    secret = _new_secret()
    agent = Agent.objects.create(
        tre=tre,
        name=name,
        token_prefix=secret[:12],
        token_hash=hash_token(secret),
        created_by=by,
    )
    audit.record(
        "agent.created", by=by, obj=agent, after={"name": name, "token_prefix": agent.token_prefix}, tre=tre
    )
    return agent, secret


@transaction.atomic
def rotate_agent_token(agent, *, by):
    """Give the agent a new token; the old one stops working at once. Returns the new token."""
    agent = Agent.objects.select_for_update().select_related("tre").get(pk=agent.pk)
    check_manage_agents(by, agent.tre)
    if agent.revoked_at is not None:
        raise ValidationError("A revoked agent cannot be given a new token; register a new agent.")
    secret = _new_secret()
    before = agent.token_prefix
    agent.token_prefix, agent.token_hash = secret[:12], hash_token(secret)
    agent.rotated_at = timezone.now()
    agent.save(update_fields=["token_prefix", "token_hash", "rotated_at"])
    audit.record(
        "agent.token_rotated",
        by=by,
        obj=agent,
        before={"token_prefix": before},
        after={"token_prefix": agent.token_prefix},
        tre=agent.tre,
    )
    return secret


@transaction.atomic
def revoke_agent(agent, *, by, reason=""):
    """Revoke the agent's token for good; the jobs it holds are queued again for another agent."""
    agent = Agent.objects.select_for_update().select_related("tre").get(pk=agent.pk)
    check_manage_agents(by, agent.tre)
    if agent.revoked_at is not None:
        return agent
    # Lock the jobs it holds before the audit head, in id order, as every other writer does.
    held = list(
        Job.objects.filter(lease__agent=agent, lease__finished_at__isnull=True, status__in=ACTIVE)
        .select_for_update(of=("self",))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    agent.revoked_at = timezone.now()
    agent.save(update_fields=["revoked_at"])
    audit.record("agent.revoked", by=by, obj=agent, message=reason.strip(), tre=agent.tre)
    for job_id in held:
        _release(job_id, why=f"The agent {agent.name} was revoked.")
    return agent


# An authenticated agent carries its own fields and what it needs of its TRE.
_AGENT_FIELDS = (
    *(field.name for field in Agent._meta.concrete_fields),
    "tre__slug",
    "tre__name",
    "tre__paused",
)


def agent_for_token(secret):
    """The active agent whose token this is, or None."""
    if not secret or not secret.startswith(Agent.TOKEN_PREFIX):
        return None
    agent = (
        Agent.objects.select_related("tre").only(*_AGENT_FIELDS).filter(token_hash=hash_token(secret)).first()
    )
    if agent is None or agent.revoked_at is not None:
        return None
    return agent


def touch(agent, *, version=None):
    """Record the agent's last contact (at most every few seconds) and what it says it is."""
    now = timezone.now()
    changes = {}
    if agent.last_seen_at is None or now - agent.last_seen_at >= LAST_SEEN_RESOLUTION:
        changes["last_seen_at"] = now
    if version is not None and version[:100] != agent.version:
        changes["version"] = version[:100]
    if changes:
        Agent.objects.filter(pk=agent.pk).update(**changes)
        for key, value in changes.items():
            setattr(agent, key, value)


# --- Claiming ----------------------------------------------------------------------------------


_BULKY = claiming.BULKY


def claim_next(agent, *, wait=0.0):
    """Lease the oldest queued job of the agent's TRE to it, waiting up to `wait` seconds for one.

    Returns a Claim, or None when no job came within the wait. While waiting it polls with a cheap
    indexed query and opens a transaction only when a job is there to claim.
    """
    deadline = time.monotonic() + max(0.0, min(float(wait), max_claim_wait()))
    first = True
    while True:
        if not agent.tre.paused and (
            first or Job.objects.filter(tre_id=agent.tre_id, status=S.QUEUED).exists()
        ):
            claim = claiming.claim_one(agent, lease_seconds=lease_seconds())
            if claim is not None:
                return claim
        first = False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        time.sleep(min(claim_poll_seconds(), remaining))


def _workflow_approved_at(job):
    return WorkflowApproval.objects.filter(
        workflow_id=job.workflow_id, tre_id=job.tre_id, status=Decision.APPROVED
    ).exists()


# --- Acting under a lease ----------------------------------------------------------------------


def check_job_at_tre(agent, job_id):
    """Raise JobNotFound unless `job_id` is a job of the agent's TRE."""
    if not Job.objects.filter(pk=job_id, tre_id=agent.tre_id).exists():
        raise JobNotFound(f"There is no job {job_id} at {agent.tre.slug}.")


def _job_at_tre(agent, job_id, *, lock=False):
    queryset = Job.objects.select_related("lease", "tre", "request__project", "version", "workflow").defer(
        *_BULKY
    )
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    job = queryset.filter(pk=job_id, tre_id=agent.tre_id).first()
    if job is None:
        raise JobNotFound(f"There is no job {job_id} at {agent.tre.slug}.")
    return job


def _lease_of(job):
    try:
        return job.lease
    except ObjectDoesNotExist:
        return None


def _check_holder(job, agent, fencing_token):
    """The job's lease, if this agent holds it under this token; raise otherwise."""
    lease = _lease_of(job)
    if lease is None or lease.agent_id != agent.pk:
        raise LeaseConflict(f"Job {job.pk} is not leased to this agent.")
    if lease.fencing_token != fencing_token:
        raise StaleFencingToken(
            f"Fencing token {fencing_token} is stale: job {job.pk} is now held under token "
            f"{lease.fencing_token}. Stop working on it."
        )
    return lease


def _check_live(job, lease):
    """The lease is the agent's until the portal ends it: a lapsed lease only lets the sweep end it."""
    if job.status not in ACTIVE:
        raise LeaseConflict(f"Job {job.pk} is {job.get_status_display().lower()}, not leased for work.")
    if lease.expires_at is None:
        raise LeaseConflict(f"The lease on job {job.pk} has ended.")


def _held_job(agent, job_id, fencing_token, *, lock=False):
    job = _job_at_tre(agent, job_id, lock=lock)
    lease = _check_holder(job, agent, fencing_token)
    _check_live(job, lease)
    return job, lease


def heartbeat(agent, job_id, *, fencing_token, message=None):
    """Renew the lease; returns it, with any cancellation requested since.

    Renewal is one compare-and-set update, so it cannot revive a lease the expiry sweep or a new
    claim has already taken. Heartbeats are not audited: they change nothing but the lease's clock.
    """
    now = timezone.now()
    changes = {"expires_at": now + timedelta(seconds=lease_seconds()), "heartbeat_at": now}
    if message is not None:
        changes["message"] = message[:2000]
    # Conditions on the lease row only (no join): PostgreSQL re-checks them against a row another
    # transaction has just changed, so a renewal cannot land on a lease the sweep has ended.
    renewed = JobLease.objects.filter(
        job_id=job_id,
        agent=agent,
        fencing_token=fencing_token,
        finished_at__isnull=True,
        expires_at__isnull=False,
    ).update(**changes)
    job = _job_at_tre(agent, job_id)
    lease = _check_holder(job, agent, fencing_token)
    if not renewed:
        _check_live(job, lease)
        raise LeaseConflict(f"The lease on job {job_id} cannot be renewed.")
    return lease


_REPORTABLE = {
    "running": S.RUNNING,
    "failed": S.FAILED,
    "cancelled": S.CANCELLED,
    "completed": S.OUTPUTS_RETURNED,
}


def report_status(agent, job_id, *, fencing_token, status, started_at=None, finished_at=None, message=""):
    """Record what the agent says about a job it holds: running, failed, cancelled or completed.

    Reporting the state a job is already in is harmless (agents retry). "completed" is accepted only
    after the results crate has been verified, which is what moves the job on.
    """
    if status not in _REPORTABLE:
        raise DispatchError(f"Unknown status {status!r}; report one of {', '.join(_REPORTABLE)}.")
    message = (message or "").strip()[:2000]
    if status == "completed":
        return _report_completed(agent, job_id, fencing_token, started_at, finished_at, message)
    target = _REPORTABLE[status]
    with transaction.atomic():
        job = _job_at_tre(agent, job_id, lock=True)
        lease = _check_holder(job, agent, fencing_token)
        if job.status == target:
            return lease
        _check_live(job, lease)
        now = timezone.now()
        if target == S.CANCELLED and lease.cancel_requested_at is None:
            raise LeaseConflict(f"Nobody asked to cancel job {job_id}; report it as failed instead.")
        if target == S.RUNNING and job.status != S.CLAIMED:
            raise LeaseConflict(f"Job {job_id} is {job.get_status_display().lower()}.")
        lease.message = message
        if target == S.RUNNING:
            lease.started_at = started_at or now
            fields = ["started_at", "message"]
        else:
            lease.started_at = lease.started_at or started_at
            lease.finished_at = finished_at or now
            lease.expires_at = None
            fields = ["started_at", "finished_at", "expires_at", "message"]
        lease.save(update_fields=fields)
        transition(
            job,
            target,
            by=agent,
            message=message,
            extra={
                "fencing_token": fencing_token,
                "started_at": lease.started_at,
                "finished_at": lease.finished_at,
            },
        )
    return lease


def _report_completed(agent, job_id, fencing_token, started_at, finished_at, message):
    with transaction.atomic():
        job = _job_at_tre(agent, job_id, lock=True)
        lease = _check_holder(job, agent, fencing_token)
        verified = job.result_uploads.filter(
            status=ResultUpload.Status.VERIFIED, agent=agent, fencing_token=fencing_token
        ).exists()
        if not verified:
            raise LeaseConflict(f"Upload the results crate of job {job_id} before reporting it completed.")
        lease.started_at = started_at or lease.started_at
        lease.finished_at = finished_at or lease.finished_at
        lease.message = message
        lease.save(update_fields=["started_at", "finished_at", "message"])
        audit.record(
            "job.execution_reported",
            by=agent,
            obj=job,
            after={"started_at": lease.started_at, "finished_at": lease.finished_at},
            message=message,
            tre=job.tre,
            project=job.request.project,
        )
    return lease


# --- Downloads ---------------------------------------------------------------------------------


def export_crate_for(agent, job_id, *, fencing_token, dest_dir):
    """Write the job's crate (this TRE's metadata, with the sign-off) to `dest_dir`; (path, sha256)."""
    job, _ = _held_job(agent, job_id, fencing_token)
    if not job.version.crate:
        raise JobNotFound(f"The crate of job {job_id} was not kept.")
    path = export_job_crate(job, Path(dest_dir) / f"job-{job.pk}.zip")
    sha256 = job_crate_sha256(path)
    audit.record(
        "job.crate_downloaded",
        by=agent,
        obj=job,
        after={"sha256": sha256, "fencing_token": fencing_token},
        tre=job.tre,
        project=job.request.project,
    )
    return path, sha256


def workflow_for(agent, job_id, *, fencing_token):
    """The approved workflow of a job the agent holds, if it is on its TRE's approved list."""
    job, _ = _held_job(agent, job_id, fencing_token)
    workflow = job.workflow
    if workflow is None:
        raise WorkflowUnavailable(
            f"Job {job_id}'s crate names a workflow that is not in the registry, so there is nothing to run."
        )
    if not _workflow_approved_at(job):
        raise WorkflowUnavailable(f"{workflow} is not on {job.tre}'s list of approved workflows.")
    if not workflow.crate:
        raise WorkflowCrateMissing(f"No Workflow RO-Crate is stored for {workflow}; ask the TRE's officers.")
    audit.record(
        "workflow.downloaded",
        by=agent,
        obj=workflow,
        after={"job": job.pk, "sha256": workflow.sha256},
        tre=job.tre,
        project=job.request.project,
    )
    return workflow


# --- Results -----------------------------------------------------------------------------------


def check_upload_headers(idempotency_key, declared_sha256, content_length):
    """Validate what an upload declares before any of it is read."""
    key = (idempotency_key or "").strip()
    if not key or len(key) > 200 or not key.isascii() or not key.isprintable():
        raise BadUploadRequest("Send an Idempotency-Key header of 1 to 200 printable ASCII characters.")
    sha = (declared_sha256 or "").strip().lower()
    if len(sha) != 64 or not set(sha) <= _SHA256_CHARS:
        raise BadUploadRequest("Send the crate's SHA-256 (64 hexadecimal characters) in X-Content-SHA256.")
    if content_length is None:
        raise BadUploadRequest("Send a Content-Length: results are streamed with a declared size.")
    if content_length <= 0:
        raise BadUploadRequest("The results crate is empty.")
    if content_length > results_max_bytes():
        raise UploadTooLarge(
            f"The results crate is {filesizeformat(content_length)}; at most "
            f"{filesizeformat(results_max_bytes())} are accepted."
        )
    return key, sha


def receive_results(agent, job_id, *, fencing_token, idempotency_key, declared_sha256, stream, length):
    """Stream a results crate to a scratch file, verify it, then store it and return the job's outputs.

    Returns (upload, replayed). A retry with an Idempotency-Key that already succeeded returns the
    first upload without reading anything. Checksum, size or content problems are recorded as a
    rejected upload (nothing stored) and raised as UploadRejected; a lost lease raises LeaseConflict.
    """
    key, declared = check_upload_headers(idempotency_key, declared_sha256, length)
    job = _job_at_tre(agent, job_id)
    replay = _replay(job, agent, key)
    if replay is not None:
        return replay, True
    lease = _check_holder(job, agent, fencing_token)
    _check_live(job, lease)
    _check_uploadable(job, lease)
    scratch = Path(tempfile.mkdtemp(prefix="results-"))
    try:
        received = scratch / "results.zip"
        sha256, size = _spool(stream, received, length)
        try:
            if sha256 != declared:
                raise UploadRejected(
                    f"The results crate received has SHA-256 {sha256}, but {declared} was declared.",
                    code="checksum_mismatch",
                )
            metadata = _verify_results_crate(received, job, scratch / "unpacked")
        except UploadRejected as rejection:
            _record_rejection(job, agent, key, fencing_token, declared, sha256, size, rejection)
            raise
        return _commit_results(job, agent, key, fencing_token, declared, sha256, size, received, metadata)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _replay(job, agent, key):
    upload = job.result_uploads.filter(idempotency_key=key, status=ResultUpload.Status.VERIFIED).first()
    if upload is not None and upload.agent_id != agent.pk:
        raise LeaseConflict("This Idempotency-Key belongs to another agent's upload.")
    return upload


def _check_uploadable(job, lease):
    if job.status != S.RUNNING:
        raise LeaseConflict(f"Report job {job.pk} as running before uploading its results.")
    if lease.cancel_requested_at is not None:
        raise LeaseConflict(f"Job {job.pk} was cancelled: acknowledge the cancellation instead.")


def _spool(stream, path, length):
    """Copy exactly the declared bytes to `path`, hashing as they arrive; never more than the limit."""
    digest = hashlib.sha256()
    size = 0
    with path.open("wb") as handle:
        while size < length:
            chunk = stream.read(min(_CHUNK, length - size))
            if not chunk:
                break
            size += len(chunk)
            digest.update(chunk)
            handle.write(chunk)
    if size != length:
        raise BadUploadRequest(f"The upload ended after {size} of the {length} bytes declared.")
    return digest.hexdigest(), size


def _verify_results_crate(path, job, scratch):
    """BagIt fixity, the profile, and the crate's identity; returns the crate's metadata."""
    limits = crate_limits()
    try:
        bag_dir = extract_bag(path, scratch, limits)
        bag = verify_bag(bag_dir)
        metadata = load_metadata(bag_dir / "data" / "ro-crate-metadata.json", limits=limits)
    except CrateRefused as refusal:
        where = f" ({refusal.where})" if refusal.where else ""
        raise UploadRejected(f"{refusal.message}{where}", code="malformed_crate") from refusal
    try:
        # Every output the run declares must name a file inside the crate, or nothing of it is taken.
        check_declared_results(bag_dir / "data", metadata)
    except CrateRefused as refusal:
        raise UploadRejected(f"{refusal.message} ({refusal.where})", code="unsafe_path") from refusal
    report = validate_metadata(metadata)
    if not report.valid:
        first = report.errors[0]
        raise UploadRejected(
            f"The results crate is not a valid Five Safes RO-Crate ({len(report.errors)} required "
            f"rule(s) failed), first: {first.message}",
            code="invalid_crate",
        )
    expected = job.version.external_identifier
    if expected and bag.external_identifier != expected:
        raise UploadRejected(
            f"The results crate's External-Identifier is {bag.external_identifier}, but job {job.pk}'s "
            f"crate is {expected}.",
            code="wrong_crate",
        )
    return metadata


@transaction.atomic
def _record_rejection(job, agent, key, fencing_token, declared, sha256, size, rejection):
    job = Job.objects.select_for_update().select_related("tre", "request__project").get(pk=job.pk)
    existing = ResultUpload.objects.select_for_update().filter(job=job, idempotency_key=key).first()
    if existing is not None and existing.status == ResultUpload.Status.VERIFIED:
        return existing
    upload = existing or ResultUpload(job=job, idempotency_key=key)
    upload.agent = agent
    upload.fencing_token = fencing_token
    upload.declared_sha256, upload.sha256, upload.size = declared, sha256, size
    upload.status = ResultUpload.Status.REJECTED
    upload.message = rejection.message
    upload.save()
    audit.record(
        "job.results_rejected",
        by=agent,
        obj=job,
        after={"upload": upload.pk, "code": rejection.code, "sha256": sha256, "size": size},
        message=rejection.message,
        tre=job.tre,
        project=job.request.project,
    )
    return upload


def _commit_results(job, agent, key, fencing_token, declared, sha256, size, received, metadata):
    stored = None
    try:
        with transaction.atomic():
            job = _job_at_tre(agent, job.pk, lock=True)
            replay = _replay(job, agent, key)
            if replay is not None:
                return replay, True
            lease = _check_holder(job, agent, fencing_token)
            now = timezone.now()
            _check_live(job, lease)
            _check_uploadable(job, lease)
            upload = ResultUpload.objects.select_for_update().filter(
                job=job, idempotency_key=key
            ).first() or ResultUpload(job=job, idempotency_key=key)
            upload.agent = agent
            upload.fencing_token = fencing_token
            upload.declared_sha256, upload.sha256, upload.size = declared, sha256, size
            upload.status = ResultUpload.Status.VERIFIED
            upload.message = ""
            upload.metadata = metadata
            upload.verified_at = now
            with received.open("rb") as handle:
                upload.file.save(f"job-{job.pk}-{uuid.uuid4().hex[:12]}.zip", File(handle), save=False)
            stored = upload.file.name
            upload.save()
            lease.finished_at, lease.expires_at = now, None
            lease.save(update_fields=["finished_at", "expires_at"])
            transition(
                job,
                S.OUTPUTS_RETURNED,
                by=agent,
                extra={"upload": upload.pk, "sha256": sha256, "size": size, "fencing_token": fencing_token},
            )
            # The disclosure checks (reviews) start in the background once the upload is committed.
            signals.results_returned.send(sender=ResultUpload, upload=upload)
        return upload, False
    except IntegrityError:
        # Another request with the same key committed first: answer as it did.
        if stored:
            default_storage.delete(stored)
        replay = _replay(job, agent, key)
        if replay is None:
            raise
        return replay, True
    except BaseException:
        if stored:
            default_storage.delete(stored)
        raise


# --- Reconcile ---------------------------------------------------------------------------------


def reconcile(agent):
    """The jobs the portal believes this agent holds, as Claims: a restarted agent resumes these and
    drops any other work it remembers. Two queries, however many jobs."""
    leases = list(
        JobLease.objects.filter(agent=agent, finished_at__isnull=True, job__status__in=ACTIVE)
        .select_related("job__request__project", "job__tre", "job__version", "job__workflow")
        .defer(*(f"job__{field}" for field in _BULKY))
        .annotate(
            agreement_overrides=Subquery(
                DataAccessAgreement.objects.filter(
                    project=OuterRef("job__request__project"), tre=OuterRef("job__tre"), status="active"
                )
                .order_by("-valid_until")
                .values("disclosure_overrides")[:1]
            )
        )
        .order_by("job_id")
    )
    approved = dict(
        WorkflowApproval.objects.filter(tre_id=agent.tre_id, status=Decision.APPROVED).values_list(
            "workflow_id", "service_settings"
        )
    )
    return [
        claiming.Claim(
            lease,
            lease.job,
            lease.job.workflow_id in approved,
            approved.get(lease.job.workflow_id) or {},
            claiming.disclosure_policy(lease.job.tre, lease.agreement_overrides),
        )
        for lease in leases
    ]


# --- Expiry ------------------------------------------------------------------------------------


@dataclass
class ExpiryReport:
    requeued: list = field(default_factory=list)
    failed: list = field(default_factory=list)


def expire_leases(now=None):
    """Queue again the jobs whose lease expired, or fail them once they have used every attempt.

    Idempotent: each lease is re-checked under lock, so a heartbeat that arrived in time, or a second
    sweep running at the same moment, leaves the job alone.
    """
    now = now or timezone.now()
    report = ExpiryReport()
    expired = JobLease.objects.filter(
        expires_at__lt=now, finished_at__isnull=True, job__status__in=ACTIVE
    ).values_list("job_id", flat=True)
    for job_id in list(expired):
        outcome = _release(job_id, now=now)
        if outcome == S.QUEUED:
            report.requeued.append(job_id)
        elif outcome == S.FAILED:
            report.failed.append(job_id)
    return report


def _release(job_id, *, now=None, why=None):
    """End the lease on one job: requeue it, or fail it when attempts are used up or it was cancelled.

    Without `why`, only an expired lease is released (the expiry sweep); with it, any live lease is.
    """
    with transaction.atomic():
        job = (
            Job.objects.select_for_update(of=("self",))
            .select_related("lease__agent", "tre", "request__project")
            .filter(pk=job_id)
            .first()
        )
        if job is None or _lease_of(job) is None:
            return None
        # Read the lease again under its own lock, so a heartbeat that renewed it in time is seen.
        lease = JobLease.objects.select_for_update(of=("self",)).select_related("agent").get(job=job)
        now = now or timezone.now()
        if job.status not in ACTIVE or lease.finished_at is not None:
            return None
        if why is None and (lease.expires_at is None or lease.expires_at >= now):
            return None
        holder = lease.agent.name if lease.agent else "the agent"
        why = why or f"The lease of {holder} expired."
        extra = {"fencing_token": lease.fencing_token, "attempt": lease.attempts, "agent": holder}
        if lease.cancel_requested_at is not None:
            target = S.FAILED
            message = f"{why} The job had been cancelled ({lease.cancel_reason}), so it is not run again."
        elif lease.attempts >= max_attempts():
            target = S.FAILED
            message = f"{why} The job has used all {max_attempts()} attempts, so it is not run again."
        else:
            target = S.QUEUED
            message = f"{why} The job is queued again (attempt {lease.attempts} of {max_attempts()})."
        lease.expires_at = None
        lease.message = message
        fields = ["expires_at", "message"]
        if target == S.FAILED:
            lease.finished_at = now
            fields.append("finished_at")
        lease.save(update_fields=fields)
        transition(job, target, by=audit.SYSTEM, message=message, extra=extra)
        return target


# --- Cancellation ------------------------------------------------------------------------------


def request_cancel(job, *, by, reason):
    """A researcher or officer cancels a job. Before an agent has it, it is cancelled at once; once
    claimed, the agent is told at its next heartbeat and the job is cancelled when it acknowledges.

    The one place a person cancels a job: `reviews.services.cancel` (pages and API) calls this.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the job is cancelled."})
    with transaction.atomic():
        job = (
            Job.objects.select_for_update(of=("self",))
            .select_related("lease", "tre", "request__project", "request__submitter")
            .get(pk=job.pk)
        )
        if job.status not in ACTIVE:
            return transition(job, S.CANCELLED, by=by, message=reason)
        check_cancel(by, job)
        lease = job.lease
        if lease.cancel_requested_at is None:
            lease.cancel_requested_at = timezone.now()
            lease.cancel_reason = reason
            lease.save(update_fields=["cancel_requested_at", "cancel_reason"])
            audit.record(
                "job.cancel_requested",
                by=by,
                obj=job,
                after={"fencing_token": lease.fencing_token},
                message=reason,
                tre=job.tre,
                project=job.request.project,
            )
    return job


# --- What officers see -------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentRow:
    agent: Agent
    quiet: bool


@dataclass(frozen=True)
class JobRow:
    job: Job
    lease: JobLease | None
    lease_expired: bool
    stuck: bool


@dataclass(frozen=True)
class DispatchOverview:
    """A TRE's agents and the jobs in dispatch, with what deserves an officer's attention."""

    agents: list
    jobs: list
    quiet_after: timedelta
    stuck_after: timedelta

    @property
    def quiet_agents(self):
        return [row.agent for row in self.agents if row.quiet]

    @property
    def stuck_jobs(self):
        return [row for row in self.jobs if row.stuck]


def dispatch_overview(tre, now=None):
    """The agents page's data, in two queries however many agents and jobs there are."""
    now = now or timezone.now()
    quiet, stuck = quiet_after(), stuck_after()
    agents = [
        AgentRow(
            agent,
            agent.revoked_at is None and (agent.last_seen_at is None or now - agent.last_seen_at > quiet),
        )
        for agent in Agent.objects.filter(tre=tre).order_by("revoked_at", "name")
    ]
    jobs = []
    for job in (
        Job.objects.filter(tre=tre, status__in=DISPATCH_STATES)
        .select_related("request__project", "lease__agent")
        .defer("metadata")
        .order_by("status_changed_at")
    ):
        lease = _lease_of(job)
        expired = bool(job.status in ACTIVE and lease and lease.expires_at and lease.expires_at < now)
        jobs.append(JobRow(job, lease, expired, expired or now - job.status_changed_at > stuck))
    return DispatchOverview(agents=agents, jobs=jobs, quiet_after=quiet, stuck_after=stuck)

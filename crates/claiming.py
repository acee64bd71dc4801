"""Claiming: how a queued job is leased to an agent, the request every agent makes over and over.

One way, the same on every database, in one transaction:

1. lock the oldest queued job of the agent's TRE with `select_for_update(skip_locked=True)`, so
   claimers running at once each take a different job (the partial index `job_queue_idx` serves the
   TRE's queue in this order);
2. take its lease with the next fencing token and attempt;
3. move it to "claimed" with `crates.transitions.transition()`, which checks the move against the
   state machine, writes the status and appends the `job.claimed` event with `portal.audit.record()`.

SQLite has no row locks; its transactions begin IMMEDIATE (portal.settings), taking the database's
write lock before the queue is read, so two claimers never read the same queued job there either.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.utils import timezone

from crates.models import Job, JobLease
from crates.transitions import transition
from portal.models import DataAccessAgreement, Decision, WorkflowApproval

S = Job.Status

# Crate metadata and reports an agent's claim never needs, left in the database when reading jobs.
BULKY = (
    "metadata",
    "version__metadata",
    "version__validation_report",
    "version__crosscheck",
    "version__summary",
    "version__stripped_actions",
)


@dataclass(frozen=True)
class Claim:
    """A job just leased to an agent, and whether its workflow is on the TRE's approved list."""

    lease: JobLease
    job: Job
    workflow_approved: bool
    #: The TRE's approved service settings for the workflow (WorkflowApproval.service_settings).
    workflow_settings: dict = field(default_factory=dict)
    #: What the agent must honour of the disclosure policy (`disclosure_policy`).
    policy: dict = field(default_factory=dict)


def claim_one(agent, *, lease_seconds):
    """Lease the oldest queued job of the agent's TRE to it now; None when there is none."""
    with transaction.atomic():
        job = (
            Job.objects.filter(tre_id=agent.tre_id, status=S.QUEUED)
            .order_by("status_changed_at", "pk")
            .select_related("request__project", "tre", "version", "workflow", "lease")
            .defer(*BULKY)
            .select_for_update(of=("self",), skip_locked=True)
            .first()
        )
        if job is None:
            return None
        # The TRE's approval of the job's workflow (its service settings, or None when there is none),
        # read before the move: the audit event takes the chain's head, held until the commit.
        settings = (
            WorkflowApproval.objects.filter(
                workflow_id=job.workflow_id, tre_id=job.tre_id, status=Decision.APPROVED
            )
            .order_by("-pk")
            .values_list("service_settings", flat=True)
            .first()
            if job.workflow_id is not None
            else None
        )
        # The project's agreement in force at the TRE, whose overrides narrow the TRE's disclosure policy.
        overrides = (
            DataAccessAgreement.objects.filter(
                project_id=job.request.project_id, tre_id=job.tre_id, status=DataAccessAgreement.Status.ACTIVE
            )
            .order_by("-valid_until")
            .values_list("disclosure_overrides", flat=True)
            .first()
        )
        now = timezone.now()
        lease = _lease_of(job) or JobLease(job=job)
        lease.agent = agent
        lease.fencing_token += 1
        lease.attempts += 1
        lease.claimed_at = lease.heartbeat_at = now
        lease.expires_at = now + timedelta(seconds=lease_seconds)
        lease.started_at = lease.finished_at = lease.cancel_requested_at = None
        lease.cancel_reason = lease.message = ""
        lease.save()
        extra = {"fencing_token": lease.fencing_token, "attempt": lease.attempts}
        transition(job, S.CLAIMED, by=agent, extra=extra, locked=True)
        return Claim(lease, job, settings is not None, settings or {}, disclosure_policy(job.tre, overrides))


def _lease_of(job):
    try:
        return job.lease
    except ObjectDoesNotExist:
        return None


#: The disclosure-policy fields an agent applies to what it writes (suppression, rounding, zeros).
AGENT_POLICY_FIELDS = ("min_cell_count", "zeros_disclosive", "rounding_base")


def disclosure_policy(tre, overrides=None):
    """What an agent must honour of the TRE's disclosure policy, with the agreement's overrides
    (the same fields the portal checks the outputs against)."""
    policy = {name: getattr(tre, name) for name in AGENT_POLICY_FIELDS}
    if isinstance(overrides, dict):
        policy.update({name: overrides[name] for name in AGENT_POLICY_FIELDS if name in overrides})
    return policy

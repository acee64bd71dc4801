"""The job state machine, as data: every allowed move, who may make it, and the audit event it writes.

`check_transition()` raises if a move is not allowed; `transition()` checks, then writes the new
status and its audit event in one transaction. Nothing else changes a job's status (the Job
model refuses direct status writes). `docs/job-states.md` is generated from TRANSITIONS by
`manage.py statediagram`, and CI fails if it differs.
"""

from dataclasses import dataclass
from http import HTTPStatus

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

# Who may make a move: actor kinds, resolved against the job by crates.permissions.actor_kinds().
from crates import signals
from crates.models import Job
from crates.permissions import AGENT, CHECKER, OFFICER, RESEARCHER, SYSTEM, actor_kinds
from portal import audit
from portal.errors import Refusal

__all__ = [
    "AGENT",
    "CHECKER",
    "OFFICER",
    "RESEARCHER",
    "SUSPENDABLE",
    "SYSTEM",
    "TRANSITIONS",
    "actor_kinds",
    "transition",
]

S = Job.Status


@dataclass(frozen=True)
class Move:
    actors: frozenset
    event: str
    description: str


def _rule(actors, event, description):
    return Move(frozenset(actors), event, description)


# The states a lapsed agreement, accreditation or membership (or a paused TRE) suspends a job from.
SUSPENDABLE = [S.AWAITING_REVIEW, S.IN_REVIEW, S.CHANGES_REQUESTED, S.APPROVED, S.QUEUED]
_CANCELLABLE_BEFORE_RUN = [
    S.AWAITING_REVIEW,
    S.IN_REVIEW,
    S.CHANGES_REQUESTED,
    S.APPROVED,
    S.QUEUED,
    S.SUSPENDED,
]

TRANSITIONS = {
    # Review (Five Safes steps and sign-off)
    (S.AWAITING_REVIEW, S.IN_REVIEW): _rule({OFFICER}, "review.started", "an officer starts the review"),
    (S.IN_REVIEW, S.AWAITING_REVIEW): _rule(
        {OFFICER}, "review.released", "the officer hands the review back"
    ),
    (S.IN_REVIEW, S.CHANGES_REQUESTED): _rule(
        {OFFICER}, "review.changes_requested", "the officer asks for changes"
    ),
    (S.IN_REVIEW, S.REJECTED): _rule({OFFICER}, "review.rejected", "the officer rejects the request"),
    (S.IN_REVIEW, S.APPROVED): _rule({OFFICER}, "review.signed_off", "the officer signs off"),
    (S.CHANGES_REQUESTED, S.AWAITING_REVIEW): _rule(
        {RESEARCHER}, "request.resubmitted", "the researcher resubmits a new version"
    ),
    # Dispatch
    (S.APPROVED, S.QUEUED): _rule({SYSTEM}, "job.queued", "the job is queued for the TRE agent"),
    (S.QUEUED, S.CLAIMED): _rule({AGENT}, "job.claimed", "the agent claims the job"),
    (S.CLAIMED, S.RUNNING): _rule({AGENT}, "job.started", "the agent starts the workflow"),
    (S.CLAIMED, S.QUEUED): _rule({SYSTEM}, "job.requeued", "the agent's lease expired"),
    (S.RUNNING, S.QUEUED): _rule({SYSTEM}, "job.requeued", "the agent's lease expired"),
    (S.CLAIMED, S.FAILED): _rule({AGENT, SYSTEM}, "job.failed", "the job failed"),
    (S.RUNNING, S.FAILED): _rule({AGENT, SYSTEM}, "job.failed", "the job failed"),
    (S.RUNNING, S.OUTPUTS_RETURNED): _rule(
        {AGENT}, "job.outputs_returned", "the agent returns a results crate"
    ),
    (S.CLAIMED, S.CANCELLED): _rule({AGENT}, "job.cancelled", "the agent acknowledges a cancellation"),
    (S.RUNNING, S.CANCELLED): _rule({AGENT}, "job.cancelled", "the agent acknowledges a cancellation"),
    # Safe Outputs
    (S.OUTPUTS_RETURNED, S.OUTPUT_REVIEW): _rule({SYSTEM}, "outputs.checking", "automated checks are done"),
    (S.OUTPUT_REVIEW, S.OUTPUT_CHANGES_REQUESTED): _rule(
        {CHECKER, SYSTEM}, "outputs.changes_requested", "the checkers ask the researcher for changes"
    ),
    (S.OUTPUT_CHANGES_REQUESTED, S.OUTPUT_REVIEW): _rule(
        {RESEARCHER}, "outputs.responded", "the researcher responds to the checkers"
    ),
    (S.OUTPUT_REVIEW, S.WITHHELD): _rule({CHECKER, SYSTEM}, "outputs.withheld", "the outputs are withheld"),
    (S.OUTPUT_REVIEW, S.RELEASED): _rule({CHECKER, SYSTEM}, "outputs.released", "the outputs are released"),
    (S.OUTPUT_CHANGES_REQUESTED, S.WITHHELD): _rule(
        {RESEARCHER, SYSTEM}, "outputs.withdrawn", "the researcher withdraws the outputs"
    ),
}
for _state in SUSPENDABLE:
    TRANSITIONS[(_state, S.SUSPENDED)] = _rule(
        {OFFICER, SYSTEM},
        "job.suspended",
        "an agreement, accreditation or membership lapsed, or the TRE paused",
    )
    TRANSITIONS[(S.SUSPENDED, _state)] = _rule({OFFICER, SYSTEM}, "job.resumed", "the cause was resolved")
for _state in _CANCELLABLE_BEFORE_RUN:
    TRANSITIONS[(_state, S.CANCELLED)] = _rule(
        {RESEARCHER, OFFICER}, "job.cancelled", "the researcher or an officer cancels"
    )

TERMINAL = frozenset({S.REJECTED, S.FAILED, S.WITHHELD, S.RELEASED, S.CANCELLED})


class TransitionError(Refusal):
    """The move is not in the table: the job is not in a state that allows it."""

    status = HTTPStatus.CONFLICT
    code = "invalid_transition"


def check_transition(job, to_state, *, by):
    """Raise TransitionError (bad move) or PermissionDenied (wrong person); return the Move."""
    move = TRANSITIONS.get((job.status, to_state))
    if move is None:
        raise TransitionError(
            f"A job that is {Job.Status(job.status).label.lower()} cannot become {Job.Status(to_state).label.lower()}."
        )
    if not (actor_kinds(job, by) & move.actors):
        raise PermissionDenied(f"You may not move this job to {Job.Status(to_state).label.lower()}.")
    return move


def can_transition(job, to_state, *, by):
    try:
        check_transition(job, to_state, by=by)
    except (TransitionError, PermissionDenied):
        return False
    return True


def transition(job, to_state, *, by, message="", extra=None, locked=False):
    """Move the job, writing the change and its audit event in one transaction. Returns the job.

    With `locked=True` the caller already holds the job's row lock in its own transaction and read
    `job` (with its request's project and its TRE) under that lock, so the job is not read again.
    """
    if locked:
        if not transaction.get_connection().in_atomic_block:
            raise RuntimeError("transition(locked=True) needs the transaction that holds the job's row lock.")
        if job.status != to_state:
            _move(job, to_state, by=by, message=message, extra=extra)
        return job
    with transaction.atomic():
        current = (
            Job.objects.select_for_update(of=("self",))
            .select_related("request__project", "tre")
            .get(pk=job.pk)
        )
        if current.status == to_state:
            return current  # the same move twice (a double submission) is harmless
        _move(current, to_state, by=by, message=message, extra=extra)
    job.__dict__.update(
        {
            k: getattr(current, k)
            for k in ("status", "status_changed_at", "suspended_from", "suspended_reason")
        }
    )
    job._loaded_status = current.status
    return current


def _move(job, to_state, *, by, message, extra):
    """Check the move, write the job's new status and audit it (inside the caller's transaction)."""
    move = check_transition(job, to_state, by=by)
    before = job.status
    job.status = to_state
    job.status_changed_at = timezone.now()
    update = ["status", "status_changed_at"]
    if to_state == S.SUSPENDED:
        job.suspended_from, job.suspended_reason = before, message
        update += ["suspended_from", "suspended_reason"]
    elif before == S.SUSPENDED:
        job.suspended_from, job.suspended_reason = "", ""
        update += ["suspended_from", "suspended_reason"]
    # Job.save() refuses status changes but this one, made here.
    job._transition_in_progress = True
    try:
        job.save(update_fields=update)
    finally:
        job._transition_in_progress = False
    job._loaded_status = to_state
    audit.record(
        move.event,
        by=by,
        obj=job,
        before={"status": before},
        after={"status": to_state, **(extra or {})},
        message=message,
        tre=job.tre,
        project=job.request.project,
    )
    if to_state == S.FAILED:
        signals.job_failed.send(sender=Job, job=job)

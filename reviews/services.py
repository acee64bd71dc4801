"""The Five Safes review of a job: start, decide each step, sign off or reject, suspend and resume.

Status changes go through `crates.transitions.transition`; every function takes the actor as `by=`.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crates import dispatch
from crates import summary as summaries
from crates.fivesafes import writeback
from crates.models import Job
from crates.transitions import SUSPENDABLE, TransitionError, transition
from portal import audit
from portal.errors import Refusal
from portal.models import DataAccessAgreement, Decision, Membership
from reviews import evidence, notifications
from reviews.models import CHECK_STEPS, CarryOver, Message, Notification, Outcome, Step, StepDecision
from reviews.permissions import check_post_message, check_review

S = Job.Status


class ReviewError(Refusal):
    """The review cannot go that way; the message says why."""


def _lock(job):
    return (
        Job.objects.select_for_update(of=("self",))
        .select_related("request__project", "request__submitter", "tre", "version", "workflow")
        .get(pk=job.pk)
    )


def decisions_for(job):
    """This version's decisions, by step."""
    return {
        d.step: d
        for d in job.decisions.filter(version=job.version).select_related(
            "decided_by", "carried_from__version"
        )
    }


# What each step's decision rests on, as sections of the version summary (crates.summary.diff).
STEP_SECTIONS = {
    Step.SAFE_PEOPLE: ("people",),
    Step.SAFE_PROJECT: ("project",),
    Step.SAFE_DATA: ("datasets",),
    Step.SAFE_SETTINGS: ("workflow", "inputs"),
}
_SECTION_WORDS = {
    "people": "the people named",
    "project": "the project named",
    "datasets": "the datasets requested",
    "workflow": "the workflow",
    "inputs": "the workflow's inputs",
}


def carry_over(job, *, previous_version, version, by):
    """On resubmission: approvals whose inputs did not change carry over to the new version; the
    others are decided again. Records which and why (`CarryOver`) and audits it. Idempotent."""
    if CarryOver.objects.filter(job=job, version=version).exists():
        return None
    earlier = {d.step: d for d in StepDecision.objects.filter(job=job, version=previous_version)}
    changes = summaries.diff(previous_version.summary or {}, version.summary or {})
    steps = []
    for step in CHECK_STEPS:
        label = Step(step).label
        decision = earlier.get(step)
        changed = [text for section, text in changes if section in STEP_SECTIONS[step]]
        findings = evidence.evidence_for(job, step)
        if decision is None:
            carried, reason = False, f"It was not decided on version {previous_version.number}."
        elif decision.outcome != Outcome.APPROVE:
            carried, reason = False, "This step asked for the changes, so it is decided again."
        elif changed:
            words = " and ".join(sorted({_SECTION_WORDS[s] for s, _ in changes if s in STEP_SECTIONS[step]}))
            carried, reason = False, f"What it rests on changed ({words}): " + "; ".join(changed) + "."
        elif not evidence.is_clear(findings):
            carried, reason = (
                False,
                "What it rests on did not change, but its automated checks no longer all pass.",
            )
        else:
            carried = True
            reason = (
                f"Approved on version {previous_version.number} by {decision.decided_by.email}; "
                f"{' and '.join(_SECTION_WORDS[s] for s in STEP_SECTIONS[step])} did not change."
            )
            StepDecision.objects.create(
                job=job,
                version=version,
                step=step,
                outcome=Outcome.APPROVE,
                rationale=decision.rationale,
                evidence=decision.evidence,
                decided_by=decision.decided_by,
                decided_at=decision.decided_at,
                carried_from=decision.carried_from or decision,
            )
        steps.append({"step": step, "label": label, "carried": carried, "reason": reason})
    record = CarryOver.objects.create(job=job, version=version, from_version=previous_version, steps=steps)
    audit.record(
        "review.decisions_carried_over",
        by=by,
        obj=job,
        after={"version": version.number, "carried": [s["step"] for s in steps if s["carried"]]},
        message="; ".join(
            f"{s['label']}: {'carried over' if s['carried'] else 'to decide again'}" for s in steps
        ),
        tre=job.tre,
        project=job.request.project,
    )
    return record


def start_review(job, *, by):
    check_review(by, job)
    return transition(job, S.IN_REVIEW, by=by)


def decide_step(job, step, outcome, rationale="", *, by):
    """Record a decision on one step with its evidence frozen; changes or rejection end the review."""
    rationale = (rationale or "").strip()
    if outcome not in Outcome.values:
        raise ValidationError({"outcome": "Choose approve, request changes or reject."})
    if step not in Step.values:
        raise ValidationError({"step": f"Unknown review step {step!r}."})
    if outcome != Outcome.APPROVE and not rationale:
        raise ValidationError({"rationale": "Give the reason; the researcher will see it."})
    with transaction.atomic():
        job = _lock(job)
        check_review(by, job)
        existing = job.decisions.filter(version=job.version, step=step).first()
        if existing is not None:
            if existing.outcome == outcome:
                return existing  # the same decision twice is harmless
            raise ReviewError(
                f"{Step(step).label} was already decided ({existing.get_outcome_display().lower()})."
            )
        if job.status != S.IN_REVIEW:
            raise ReviewError(f"The job is {job.get_status_display().lower()}, not in review.")
        if step == Step.SIGN_OFF:
            return _sign_off(job, outcome, rationale, by=by)
        findings = evidence.evidence_for(job, step)
        if outcome == Outcome.APPROVE and not evidence.is_clear(findings):
            _require_override_reason(rationale, [f for f in findings if not f["ok"]])
        decision = StepDecision.objects.create(
            job=job,
            version=job.version,
            step=step,
            outcome=outcome,
            rationale=rationale,
            evidence=findings,
            decided_by=by,
            decided_at=timezone.now(),
        )
        audit.record(
            f"review.step.{outcome}",
            by=by,
            obj=job,
            after={"step": step, "outcome": outcome, "evidence_clear": evidence.is_clear(findings)},
            message=rationale,
            tre=job.tre,
            project=job.request.project,
        )
        if outcome == Outcome.CHANGES:
            transition(job, S.CHANGES_REQUESTED, by=by, message=rationale, extra={"step": step})
            notifications.decision_made(job, f"{job.tre} asks for changes ({Step(step).label})", rationale)
        elif outcome == Outcome.REJECT:
            _write_signoff(job, approved=False, by=by, message=f"{Step(step).label}: {rationale}")
            transition(job, S.REJECTED, by=by, message=rationale, extra={"step": step})
            notifications.decision_made(job, f"{job.tre} rejected your request", rationale)
        return decision


def _require_override_reason(rationale, unmet):
    """Approving against an automated check that is not met needs a written reason (kept and certified)."""
    if not rationale:
        raise ValidationError(
            {
                "rationale": f"An automated check is not met ({unmet[0]['message']}). Write why you approve "
                "anyway: the reason is kept with the decision and printed on the certificate."
            }
        )


def _agreement_for(job):
    today = timezone.localdate()
    return next(
        (
            a
            for a in DataAccessAgreement.objects.filter(project=job.request.project, tre=job.tre)
            if a.is_in_force(today)
        ),
        None,
    )


def _person(user):
    profile = getattr(user, "profile", None)
    return writeback.Person(
        id=f"https://orcid.org/{profile.orcid}" if profile and profile.orcid else f"mailto:{user.email}",
        name=profile.name if profile else user.email,
    )


def _write_signoff(job, *, approved, by, message):
    agreement = _agreement_for(job)
    summary = job.version.summary or {}
    base = settings.PORTAL_BASE_URL.rstrip("/")
    writeback.add_signoff_action(
        job.metadata,
        officer=_person(by),
        approved=approved,
        message=message,
        agreement=writeback.Agreement(
            id=f"{base}{agreement.get_absolute_url()}" if agreement else f"{base}/agreements/none-in-force",
            name=f"Data-access agreement {agreement.reference}" if agreement else "No agreement in force",
        ),
        workflow_id=summary.get("workflow", {}).get("id"),
        project_id=summary.get("project", {}).get("id"),
    )
    Job.objects.filter(pk=job.pk).update(metadata=job.metadata)


def _sign_off(job, outcome, rationale, *, by):
    decisions = decisions_for(job)
    if outcome == Outcome.APPROVE:
        missing = [
            Step(s).label
            for s in CHECK_STEPS
            if s not in decisions or decisions[s].outcome != Outcome.APPROVE
        ]
        if missing:
            raise ReviewError(f"Approve {', '.join(missing)} before signing off.")
    findings = evidence.all_evidence(job)
    if outcome == Outcome.APPROVE:
        unmet = [f for items in findings.values() for f in items if not f["ok"]]
        if unmet:
            _require_override_reason(rationale, unmet)
    decision = StepDecision.objects.create(
        job=job,
        version=job.version,
        step=Step.SIGN_OFF,
        outcome=outcome,
        rationale=rationale,
        evidence={step: items for step, items in findings.items()},
        decided_by=by,
        decided_at=timezone.now(),
    )
    audit.record(
        f"review.step.{outcome}",
        by=by,
        obj=job,
        after={"step": Step.SIGN_OFF, "outcome": outcome},
        message=rationale,
        tre=job.tre,
        project=job.request.project,
    )
    if outcome == Outcome.APPROVE:
        _write_signoff(
            job, approved=True, by=by, message=rationale or "Signed off after the Five Safes review."
        )
        transition(job, S.APPROVED, by=by, message=rationale)
        transition(job, S.QUEUED, by=audit.SYSTEM)
        notifications.decision_made(job, f"{job.tre} approved your request", rationale)
    elif outcome == Outcome.CHANGES:
        transition(job, S.CHANGES_REQUESTED, by=by, message=rationale, extra={"step": Step.SIGN_OFF})
        notifications.decision_made(job, f"{job.tre} asks for changes", rationale)
    else:
        _write_signoff(job, approved=False, by=by, message=rationale)
        transition(job, S.REJECTED, by=by, message=rationale, extra={"step": Step.SIGN_OFF})
        notifications.decision_made(job, f"{job.tre} rejected your request", rationale)
    return decision


def hand_back(job, *, by):
    check_review(by, job)
    return transition(job, S.AWAITING_REVIEW, by=by)


def cancel(job, *, by, reason):
    """Cancel a job, through crates.dispatch.request_cancel (the one place cancellation lives): at once
    before an agent has it; one an agent holds (claimed or running) is cancelled when the agent stops."""
    try:
        return dispatch.request_cancel(job, by=by, reason=reason)
    except TransitionError as exc:
        raise ReviewError(str(exc)) from exc


@transaction.atomic
def post_message(job, body, *, by):
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": "Write a message."})
    check_post_message(by, job)
    message = Message.objects.create(job=job, author=by, body=body)
    audit.record("job.message", by=by, obj=job, message=body[:500], tre=job.tre, project=job.request.project)
    notifications.message_posted(message)
    return message


# --- Notification preferences -------------------------------------------------------------------


@transaction.atomic
def set_email_preferences(user, chosen):
    """Which kinds of notification `user` also gets by e-mail (`chosen`: kind values); saved and
    audited together."""
    profile = user.profile
    profile.notification_preferences = {kind: kind in set(chosen) for kind in Notification.Kind.values}
    profile.save(update_fields=["notification_preferences"])
    audit.record(
        "profile.notifications_changed", by=user, obj=profile, after=profile.notification_preferences
    )
    return profile.notification_preferences


# --- Suspension --------------------------------------------------------------------------------


def blocking_reasons(job, today=None):
    """Why this job cannot go on right now (empty when nothing blocks it)."""
    today = today or timezone.localdate()
    reasons = []
    if job.tre.paused:
        reasons.append(f"{job.tre} is paused: {job.tre.paused_reason}")
    if not any(a.is_in_force(today) for a in job.request.project.agreements.all() if a.tre_id == job.tre_id):
        reasons.append(f"No data-access agreement with {job.tre} is in force.")
    project_ok = any(
        a.status == Decision.APPROVED for a in job.request.project.approvals.all() if a.tre_id == job.tre_id
    )
    if not project_ok:
        reasons.append(f"{job.request.project.identifier} is no longer approved at {job.tre}.")
    submitter = job.request.submitter
    membership = next((m for m in job.request.project.memberships.all() if m.person_id == submitter.pk), None)
    if membership is None or membership.status != Membership.Status.ACTIVE:
        reasons.append(f"{submitter.email}'s membership of the project is not active.")
    elif not any(
        a.verified_at and a.valid_from <= today <= a.valid_until for a in submitter.accreditations.all()
    ):
        reasons.append(f"{submitter.email} has no verified accreditation valid today.")
    return reasons


def sweep_suspensions(today=None):
    """Suspend jobs that something now blocks; resume suspended jobs whose causes are resolved."""
    today = today or timezone.localdate()
    jobs = (
        Job.objects.filter(Q(status__in=SUSPENDABLE) | Q(status=S.SUSPENDED))
        .select_related("tre", "request__submitter", "request__project")
        .prefetch_related(
            "request__project__agreements",
            "request__project__approvals",
            "request__project__memberships",
            "request__submitter__accreditations",
        )
    )
    suspended, resumed = [], []
    for job in jobs:
        reasons = blocking_reasons(job, today)
        if reasons and job.status != S.SUSPENDED:
            transition(job, S.SUSPENDED, by=audit.SYSTEM, message=" ".join(reasons))
            notifications.job_suspended(job, reasons)
            suspended.append(job)
        elif not reasons and job.status == S.SUSPENDED:
            transition(job, job.suspended_from, by=audit.SYSTEM, message="The cause was resolved.")
            notifications.job_resumed(job)
            resumed.append(job)
    return suspended, resumed

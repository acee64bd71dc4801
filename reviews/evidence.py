"""Automated evidence for each Five Safes review step, computed from the registry and the crate.

Each step returns a list of findings `{"check", "ok", "message"}`; a step is clear when every
finding is ok. Evidence is computed on the day asked (accreditations and agreements expire) and
frozen into the officer's decision when they decide.
"""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone

from portal import plain, ppie, service_settings
from portal.models import (
    TRE,
    DataAccessAgreement,
    Dataset,
    Decision,
    Membership,
    MembershipApproval,
    ProjectApproval,
)
from reviews.models import Step


def _finding(check, ok, message):
    return {"check": check, "ok": bool(ok), "message": message}


def _people(job, summary):
    """Everyone on the request: the submitter and every person the crate names (matched by ORCID)."""
    User = get_user_model()
    people = {job.request.submitter_id: job.request.submitter}
    unmatched = []
    orcids = [p["orcid"] for p in summary.get("people", []) if p.get("orcid")]
    for user in User.objects.filter(profile__orcid__in=orcids):
        people[user.pk] = user
    known = {u.profile.orcid for u in people.values() if hasattr(u, "profile")}
    for person in summary.get("people", []):
        if not person.get("orcid") or person["orcid"] not in known:
            unmatched.append(person.get("name") or person.get("id") or "someone")
    return list(people.values()), unmatched


def safe_people(job, today):
    summary = job.version.summary or {}
    people, unmatched = _people(job, summary)
    findings = [
        _finding("identified", False, f"{name} is named in the crate but is not a registered person.")
        for name in unmatched
    ]
    approvals = {
        a.membership.person_id: a
        for a in MembershipApproval.objects.filter(
            tre=job.tre, membership__project=job.request.project, membership__person__in=people
        ).select_related("membership")
    }
    for person in people:
        label = person.email
        approval = approvals.get(person.pk)
        membership = approval.membership if approval else None
        if membership is None or membership.status != Membership.Status.ACTIVE:
            state = membership.get_status_display().lower() if membership else "not a member"
            findings.append(
                _finding("membership", False, f"{label} is {state} in {job.request.project.identifier}.")
            )
        elif approval.status != Decision.APPROVED:
            findings.append(_finding("membership", False, f"{label} is not approved at {job.tre}."))
        elif membership.valid_until and membership.valid_until < today:
            findings.append(
                _finding(
                    "membership", False, f"{label}'s membership ended on {plain.day(membership.valid_until)}."
                )
            )
        else:
            findings.append(_finding("membership", True, f"{label} is an approved member at {job.tre}."))
        valid = [
            a
            for a in person.accreditations.all()
            if a.verified_at is not None and a.valid_from <= today <= a.valid_until
        ]
        if valid:
            best = max(valid, key=lambda a: a.valid_until)
            findings.append(
                _finding(
                    "accreditation",
                    True,
                    f"{label} holds {best.get_kind_display()} valid until {plain.day(best.valid_until)}.",
                )
            )
        else:
            findings.append(
                _finding("accreditation", False, f"{label} has no verified accreditation valid today.")
            )
    return findings


def _agreements(job, today):
    return [
        a
        for a in DataAccessAgreement.objects.filter(
            project=job.request.project, tre=job.tre
        ).prefetch_related("datasets")
        if a.is_in_force(today)
    ]


def safe_project(job, today):
    project = job.request.project
    approval = ProjectApproval.objects.filter(project=project, tre=job.tre).first()
    findings = [
        _finding(
            "approved",
            approval is not None and approval.status == Decision.APPROVED,
            f"{project.identifier} is {'approved' if approval and approval.status == Decision.APPROVED else 'not approved'} at {job.tre}.",
        ),
        _finding(
            "in_date",
            project.is_in_date(today),
            f"The project runs {plain.day(project.start_date) if project.start_date else 'from an open start'} to {plain.day(project.end_date) if project.end_date else 'an open end'}"
            + ("." if project.is_in_date(today) else ", which does not include today."),
        ),
        _finding(
            "status",
            project.status == project.Status.ACTIVE,
            f"The project is {project.get_status_display().lower()}.",
        ),
    ]
    agreements = _agreements(job, today)
    if agreements:
        refs = ", ".join(f"{a.reference} (until {plain.day(a.valid_until)})" for a in agreements)
        findings.append(_finding("agreement", True, f"Agreement in force: {refs}."))
    else:
        findings.append(
            _finding("agreement", False, f"No data-access agreement with {job.tre} is in force today.")
        )
    findings.extend(_ppie(job))
    return findings


def _ppie(job):
    """The PPIE members' view of the lay summary and public benefit statement, under the TRE's policy."""
    policy = job.tre.ppie_review
    if policy == TRE.PPIEReview.OFF:
        return []
    current, review = ppie.state(job.request.project)
    said = f' They said: "{review.comment}"' if review is not None and review.comment else ""
    if current == ppie.CLEAR:
        when = timezone.localtime(review.created_at)
        return [
            _finding(
                "ppie",
                True,
                f"A PPIE member cleared the lay summary for the public on {plain.day(when)}.{said}",
            )
        ]
    if current == ppie.PLAINER:
        return [_finding("ppie", False, f"A PPIE member asked for plainer words in the lay summary.{said}")]
    if policy == TRE.PPIEReview.REQUIRED:
        return [
            _finding(
                "ppie",
                False,
                f"{job.tre} requires PPIE review, and no PPIE member has cleared the current lay summary.",
            )
        ]
    return [
        _finding(
            "ppie",
            True,
            "No PPIE member has read the current lay summary yet (their review is advisory here).",
        )
    ]


def safe_data(job, today):
    summary = job.version.summary or {}
    requested = summary.get("datasets", [])
    if not requested:
        return [_finding("named", False, "The crate names no dataset, so its data use cannot be checked.")]
    held = {d.identifier: d for d in job.tre.datasets.all()}
    # A request to several TREs names each TRE's datasets; the others are reviewed by their own TREs.
    elsewhere = {
        d.identifier: d
        for d in Dataset.objects.filter(tre__in=job.request.tres.exclude(pk=job.tre_id)).select_related("tre")
    }
    covered = {d.pk for a in _agreements(job, today) for d in a.datasets.all()}
    findings = []
    if not any(item["id"] in held for item in requested):
        findings.append(_finding("held", False, f"The crate names no dataset held by {job.tre}."))
    for item in requested:
        dataset = held.get(item["id"])
        if dataset is None and item["id"] in elsewhere:
            other = elsewhere[item["id"]]
            findings.append(
                _finding(
                    "elsewhere",
                    True,
                    f"{other.name} is held by {other.tre}, another TRE of this request, which reviews its use.",
                )
            )
        elif dataset is None:
            findings.append(
                _finding(
                    "held",
                    False,
                    f"{item.get('name') or item['id']} is not held by {job.tre} or any other TRE of this request.",
                )
            )
        elif dataset.pk not in covered:
            findings.append(
                _finding("covered", False, f"{dataset.name} is not covered by an agreement in force.")
            )
        else:
            findings.append(
                _finding(
                    "covered", True, f"{dataset.name} is held by {job.tre} and covered by the agreement."
                )
            )
    return findings


def safe_settings(job, today):
    findings = []
    workflow = job.workflow
    summary = (job.version.summary or {}).get("workflow", {})
    if job.tre.paused:
        findings.append(_finding("tre_open", False, f"{job.tre} is paused: {job.tre.paused_reason}"))
    if workflow is None:
        findings.append(
            _finding(
                "registered",
                False,
                f"Workflow {summary.get('id') or '(none)'} version {summary.get('version') or '?'} is not registered.",
            )
        )
        return findings
    approval = workflow.approvals.filter(tre=job.tre).first()
    approved = approval is not None and approval.status == Decision.APPROVED
    findings.append(
        _finding(
            "approved", approved, f"{workflow} is {'on' if approved else 'not on'} {job.tre}'s approved list."
        )
    )
    declared = (summary.get("sha256") or "").lower()
    if declared:
        findings.append(
            _finding(
                "checksum",
                declared == workflow.sha256,
                "The crate's workflow checksum matches the approved crate."
                if declared == workflow.sha256
                else f"The crate declares SHA-256 {declared}; the approved crate's is {workflow.sha256}.",
            )
        )
    else:
        findings.append(
            _finding(
                "checksum",
                True,
                f"The agent will run the approved crate (SHA-256 {workflow.sha256}) and verify it on download.",
            )
        )
    if approved and service_settings.needs_settings(workflow.executor):
        try:
            service_settings.clean(workflow.executor, approval.service_settings)
            complete = True
        except ValidationError:
            complete = False
        findings.append(
            _finding(
                "service",
                complete,
                f"At {job.tre}: {approval.service_description}"
                if complete
                else f"{job.tre}'s approval does not say which {workflow.get_executor_display()} service "
                "settings this workflow may use; the agent will refuse the job.",
            )
        )
    if approved and workflow.executor == "cwl" and approval.service_settings.get("containers"):
        findings.append(_finding("containers", True, f"At {job.tre}: {approval.service_description}"))
    allowed = job.tre.allowed_executors
    ok = not allowed or workflow.executor in allowed
    findings.append(
        _finding(
            "executor",
            ok,
            f"{workflow.get_executor_display()} is {'allowed' if ok else 'not allowed'} at {job.tre}.",
        )
    )
    return findings


STEP_EVIDENCE = {
    Step.SAFE_PEOPLE: safe_people,
    Step.SAFE_PROJECT: safe_project,
    Step.SAFE_DATA: safe_data,
    Step.SAFE_SETTINGS: safe_settings,
}


def evidence_for(job, step, today=None):
    today = today or timezone.localdate()
    return STEP_EVIDENCE[step](job, today)


def all_evidence(job, today=None):
    today = today or timezone.localdate()
    return {step: STEP_EVIDENCE[step](job, today) for step in STEP_EVIDENCE}


def is_clear(findings):
    return all(f["ok"] for f in findings)

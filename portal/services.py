"""Every change to the registry goes through one of these functions.

Each takes the actor as `by=` (keyword-only), checks the rule it owns, makes the change
and writes its audit event in one transaction. Views and API views only translate HTTP.
"""

import time
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models.fields.files import FieldFile
from django.forms.models import model_to_dict
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from portal import audit, grants, permissions, plain, ppie, roles, service_settings, signals
from portal.accounts import RECENT_SECOND_FACTOR_SECONDS
from portal.errors import Refusal
from portal.models import (
    PRIVILEGED_SCOPES,
    TRE,
    Accreditation,
    ApprovedWorkflow,
    DataAccessAgreement,
    Decision,
    Membership,
    MembershipApproval,
    PersonalToken,
    Project,
    ProjectApproval,
    TokenScope,
    WorkflowApproval,
    default_token_scopes,
)


class ServiceError(Refusal):
    """A rule of the domain said no; the message is for the person who asked."""


def snapshot(obj, fields=None):
    """The plain values of a model instance, for an audit event's before/after."""
    data = model_to_dict(obj, fields=fields)
    for key, value in list(data.items()):
        if isinstance(value, FieldFile):  # files: keep the name only (an empty one has no url)
            data[key] = value.name or ""
        elif isinstance(value, list):
            data[key] = [getattr(item, "pk", item) for item in value]
    return data


def standing_changed():
    """After a change that can block or unblock jobs, re-check suspensions once the change commits."""

    def enqueue():
        from django_q.tasks import async_task

        async_task("reviews.tasks.sweep_suspensions", task_name="sweep-suspensions")

    transaction.on_commit(enqueue)


# --- Roles -----------------------------------------------------------------------------


@transaction.atomic
def grant_role(user, role, *, by, tre=None):
    """Give a user a role; officer and checker roles are scoped to a TRE."""
    if role not in roles.ROLES:
        raise ServiceError(f"Unknown role {role!r}.")
    if role in roles.TRE_ROLE_PERMISSIONS and tre is None:
        raise ServiceError(f"The {roles.ROLES[role]} role needs a TRE.")
    group, _ = Group.objects.get_or_create(name=role)
    with grants.audited_by_caller():  # the role.granted event below says it all
        user.groups.add(group)
        if role in roles.TRE_ROLE_PERMISSIONS:
            assign_perm(f"portal.{roles.TRE_ROLE_PERMISSIONS[role]}", user, tre)
    user.__dict__.pop("_portal_roles", None)
    audit.record(
        "role.granted",
        by=by,
        obj=user,
        object_label=user.email,
        after={"role": role, "tre": tre.slug if tre else ""},
        tre=tre or "",
    )


@transaction.atomic
def revoke_role(user, role, *, by, tre=None):
    with grants.audited_by_caller():  # the role.revoked event below says it all
        if role in roles.TRE_ROLE_PERMISSIONS and tre is not None:
            remove_perm(f"portal.{roles.TRE_ROLE_PERMISSIONS[role]}", user, tre)
        else:
            user.groups.remove(Group.objects.get(name=role))
    user.__dict__.pop("_portal_roles", None)
    audit.record(
        "role.revoked", by=by, obj=user, object_label=user.email, before={"role": role}, tre=tre or ""
    )


# --- Generic create/update of registry records ------------------------------------------


@transaction.atomic
def save_record(form, *, by, verb_prefix, tre=None, project=None):
    """Save a validated ModelForm and audit the change (creation or the fields that changed)."""
    instance = form.instance
    creating = instance.pk is None
    before = {} if creating else snapshot(type(instance).objects.get(pk=instance.pk))
    obj = form.save()
    after = snapshot(obj)
    if not creating:
        changed = {k for k in after if before.get(k) != after.get(k)}
        before = {k: before.get(k) for k in changed}
        after = {k: after[k] for k in changed}
    audit.record(
        f"{verb_prefix}.{'created' if creating else 'updated'}",
        by=by,
        obj=obj,
        before=before,
        after=after,
        tre=tre or getattr(obj, "tre", None) or "",
        project=project or getattr(obj, "project", None) or "",
    )
    return obj


# --- TREs ------------------------------------------------------------------------------


@transaction.atomic
def pause_tre(tre, *, by, reason):
    permissions.check_edit_tre(by, tre)
    if not reason.strip():
        raise ServiceError("Say why the TRE is paused; researchers and officers will see it.")
    tre = TRE.objects.select_for_update(of=("self",)).get(pk=tre.pk)
    if tre.paused:
        return tre
    tre.paused, tre.paused_reason, tre.paused_at = True, reason.strip(), timezone.now()
    tre.save(update_fields=["paused", "paused_reason", "paused_at"])
    audit.record("tre.paused", by=by, obj=tre, after={"reason": tre.paused_reason}, tre=tre)
    standing_changed()
    return tre


@transaction.atomic
def resume_tre(tre, *, by):
    permissions.check_edit_tre(by, tre)
    tre = TRE.objects.select_for_update(of=("self",)).get(pk=tre.pk)
    if not tre.paused:
        return tre
    before = {"reason": tre.paused_reason}
    tre.paused, tre.paused_reason, tre.paused_at = False, "", None
    tre.save(update_fields=["paused", "paused_reason", "paused_at"])
    audit.record("tre.resumed", by=by, obj=tre, before=before, tre=tre)
    standing_changed()
    return tre


# --- Accreditations --------------------------------------------------------------------


@transaction.atomic
def verify_accreditation(accreditation, *, by):
    permissions.check_verify_accreditation(by, accreditation)
    accreditation = Accreditation.objects.select_for_update(of=("self",)).get(pk=accreditation.pk)
    if accreditation.is_verified:
        return accreditation
    accreditation.verified_by, accreditation.verified_at = by, timezone.now()
    accreditation.save(update_fields=["verified_by", "verified_at"])
    audit.record(
        "accreditation.verified",
        by=by,
        obj=accreditation,
        after={"person": accreditation.person.email, "valid_until": accreditation.valid_until},
    )
    return accreditation


def has_valid_accreditation(person, day=None):
    return permissions.has_valid_accreditation(person, day)


# --- Projects --------------------------------------------------------------------------


@transaction.atomic
def create_project(form, *, by):
    permissions.check_create_project(by)
    form.instance.lead = by
    project = save_record(form, by=by, verb_prefix="project")
    membership = Membership.objects.create(
        project=project, person=by, role=Membership.Role.LEAD, status=Membership.Status.PENDING
    )
    assign_perm("portal.view_project", by, project)
    assign_perm("portal.manage_project", by, project)
    audit.record("membership.created", by=by, obj=membership, after={"role": "lead"}, project=project)
    return project


@transaction.atomic
def request_project_approval(project, tre, *, by):
    """The lead asks a TRE to approve the project; members are put to that TRE's officers too."""
    permissions.check_manage_project(by, project)
    approval, created = ProjectApproval.objects.get_or_create(project=project, tre=tre)
    if not created and approval.status == Decision.PENDING:
        return approval
    if not created:
        if approval.status == Decision.APPROVED:
            raise ServiceError(f"{project.identifier} is already approved at {tre}.")
        approval.status, approval.decided_by, approval.decided_at, approval.rationale = (
            Decision.PENDING,
            None,
            None,
            "",
        )
        approval.save()
    for membership in project.memberships.exclude(
        status__in=[Membership.Status.INVITED, Membership.Status.WITHDRAWN]
    ):
        MembershipApproval.objects.get_or_create(membership=membership, tre=tre)
    audit.record("project.approval_requested", by=by, obj=approval, tre=tre, project=project)
    return approval


def _decide(approval, decision, rationale, *, by, verb, project, tre, after=None):
    if decision not in (Decision.APPROVED, Decision.REFUSED, Decision.REVOKED):
        raise ServiceError("Choose approve or refuse.")
    if decision != Decision.APPROVED and not (rationale or "").strip():
        raise ValidationError({"rationale": "Give the reason; the applicant will see it."})
    if approval.status == decision:
        return approval  # a repeated submission of the same decision changes nothing
    if decision == Decision.REVOKED and approval.status != Decision.APPROVED:
        raise ServiceError("Only an approval can be revoked.")
    if decision != Decision.REVOKED and approval.status != Decision.PENDING:
        raise ServiceError(f"This was already decided ({approval.get_status_display().lower()}).")
    before = {"status": approval.status}
    approval.status, approval.decided_by, approval.decided_at = decision, by, timezone.now()
    approval.rationale = (rationale or "").strip()
    approval.save()
    audit.record(
        f"{verb}.{decision}",
        by=by,
        obj=approval,
        before=before,
        after={"status": decision, "rationale": approval.rationale, **(after or {})},
        tre=tre,
        project=project,
    )
    return approval


@transaction.atomic
def decide_project(approval, decision, rationale="", *, by):
    approval = (
        ProjectApproval.objects.select_for_update(of=("self",))
        .select_related("project", "tre")
        .get(pk=approval.pk)
    )
    permissions.check_govern_tre(by, approval.tre)
    permissions.check_not_conflicted(by, approval.project)
    project = approval.project
    if decision == Decision.APPROVED:
        ppie.check_ready_for_approval(approval)
    _decide(approval, decision, rationale, by=by, verb="project", project=project, tre=approval.tre)
    if decision == Decision.APPROVED:
        # Apps above the registry may refuse the approval (the Data Use Register's required fields must
        # be complete); a refusal here rolls the approval back with the rest of this transaction.
        signals.project_approved.send(sender=ProjectApproval, approval=approval, project=project)
    standing_changed()
    if decision == Decision.APPROVED and project.status == Project.Status.DRAFT:
        project.status = Project.Status.ACTIVE
        project.save(update_fields=["status"])
    return approval


# --- Memberships -----------------------------------------------------------------------


def _open_membership_approvals(membership):
    for approval in membership.project.approvals.exclude(status=Decision.REFUSED).select_related("tre"):
        MembershipApproval.objects.get_or_create(membership=membership, tre=approval.tre)


@transaction.atomic
def apply_to_project(project, *, by, justification):
    if not permissions.has_role(by, roles.RESEARCHER):
        raise PermissionDenied("Only researchers can apply to join a project.")
    if Membership.objects.filter(project=project, person=by).exists():
        raise ValidationError("You have already applied to or joined this project.")
    membership = Membership.objects.create(
        project=project, person=by, status=Membership.Status.PENDING, justification=justification
    )
    assign_perm("portal.view_project", by, project)
    _open_membership_approvals(membership)
    audit.record("membership.applied", by=by, obj=membership, project=project)
    return membership


@transaction.atomic
def invite_member(project, person, role, *, by, justification=""):
    permissions.check_manage_project(by, project)
    if Membership.objects.filter(project=project, person=person).exists():
        raise ValidationError(f"{person.email} is already a member of, or invited to, this project.")
    membership = Membership.objects.create(
        project=project,
        person=person,
        role=role,
        status=Membership.Status.INVITED,
        invited_by=by,
        justification=justification,
    )
    assign_perm("portal.view_project", person, project)
    audit.record(
        "membership.invited",
        by=by,
        obj=membership,
        after={"person": person.email, "role": role},
        project=project,
    )
    return membership


@transaction.atomic
def accept_invitation(membership, *, by):
    membership = Membership.objects.select_for_update(of=("self",)).get(pk=membership.pk)
    if membership.person_id != by.pk:
        raise PermissionDenied("This invitation is for someone else.")
    if membership.status != Membership.Status.INVITED:
        return membership
    membership.status = Membership.Status.PENDING
    membership.save(update_fields=["status"])
    _open_membership_approvals(membership)
    audit.record("membership.accepted", by=by, obj=membership, project=membership.project)
    return membership


@transaction.atomic
def withdraw_membership(membership, *, by):
    membership = (
        Membership.objects.select_for_update(of=("self",)).select_related("project").get(pk=membership.pk)
    )
    if membership.person_id != by.pk and not permissions.can_manage_project(by, membership.project):
        raise PermissionDenied("Only the member or the project lead can end a membership.")
    if membership.role == Membership.Role.LEAD:
        raise ServiceError("The project lead cannot leave; hand the project over first.")
    before = {"status": membership.status}
    membership.status = Membership.Status.WITHDRAWN
    membership.save(update_fields=["status"])
    remove_perm("portal.view_project", membership.person, membership.project)
    audit.record("membership.withdrawn", by=by, obj=membership, before=before, project=membership.project)
    return membership


def _refresh_membership_status(membership):
    """A membership is active when approved at any TRE, refused when refused everywhere."""
    if membership.status in (
        Membership.Status.INVITED,
        Membership.Status.WITHDRAWN,
        Membership.Status.LAPSED,
    ):
        return
    statuses = set(membership.approvals.values_list("status", flat=True))
    if Decision.APPROVED in statuses:
        new = Membership.Status.ACTIVE
    elif statuses and statuses <= {Decision.REFUSED, Decision.REVOKED}:
        new = Membership.Status.REFUSED
    else:
        new = Membership.Status.PENDING
    if new != membership.status:
        membership.status = new
        membership.save(update_fields=["status"])


@transaction.atomic
def decide_membership(approval, decision, rationale="", *, by):
    approval = (
        MembershipApproval.objects.select_for_update(of=("self",))
        .select_related("membership__project", "membership__person", "tre")
        .get(pk=approval.pk)
    )
    membership = approval.membership
    permissions.check_govern_tre(by, approval.tre)
    permissions.check_not_conflicted(by, membership.project)
    if membership.status == Membership.Status.INVITED:
        raise ServiceError("The person has not accepted the invitation yet.")
    if decision == Decision.APPROVED and not has_valid_accreditation(membership.person):
        raise ServiceError(
            f"{membership.person.email} has no verified accreditation valid today, so cannot be approved."
        )
    _decide(
        approval, decision, rationale, by=by, verb="membership", project=membership.project, tre=approval.tre
    )
    _refresh_membership_status(membership)
    standing_changed()
    return approval


@transaction.atomic
def lapse_expired_memberships(*, today=None):
    """Lapse active or pending memberships whose holder has no valid accreditation (daily schedule)."""
    today = today or timezone.localdate()
    lapsed = []
    candidates = Membership.objects.filter(
        status__in=[Membership.Status.ACTIVE, Membership.Status.PENDING]
    ).select_related("person", "project")
    for membership in candidates.select_for_update(of=("self",)):
        expired_membership = membership.valid_until is not None and membership.valid_until < today
        if not expired_membership and has_valid_accreditation(membership.person, today):
            continue
        reason = (
            f"Membership ended on {plain.day(membership.valid_until)}."
            if expired_membership
            else "No verified accreditation valid on " + f"{plain.day(today)}."
        )
        before = {"status": membership.status}
        membership.status, membership.lapsed_reason = Membership.Status.LAPSED, reason
        membership.save(update_fields=["status", "lapsed_reason"])
        audit.record(
            "membership.lapsed",
            by=audit.SYSTEM,
            obj=membership,
            before=before,
            after={"status": "lapsed"},
            message=reason,
            project=membership.project,
        )
        lapsed.append(membership)
    if lapsed:
        standing_changed()
    return lapsed


@transaction.atomic
def reinstate_membership(membership, *, by):
    """An officer restores a lapsed membership once the person holds a valid accreditation again."""
    membership = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("project", "person")
        .get(pk=membership.pk)
    )
    if not any(permissions.can_govern_tre(by, a.tre) for a in membership.approvals.select_related("tre")):
        raise PermissionDenied("Only an officer of one of this project's TREs can reinstate a member.")
    if membership.status != Membership.Status.LAPSED:
        raise ServiceError("Only a lapsed membership can be reinstated.")
    if not has_valid_accreditation(membership.person):
        raise ServiceError("The person still has no verified accreditation valid today.")
    if membership.valid_until and membership.valid_until < timezone.localdate():
        raise ServiceError("The membership's end date has passed; extend it first.")
    membership.status, membership.lapsed_reason = Membership.Status.PENDING, ""
    membership.save(update_fields=["status", "lapsed_reason"])
    _refresh_membership_status(membership)
    audit.record(
        "membership.reinstated",
        by=by,
        obj=membership,
        after={"status": membership.status},
        project=membership.project,
    )
    return membership


# --- Agreements ------------------------------------------------------------------------


@transaction.atomic
def save_agreement(form, *, by):
    agreement = form.instance
    permissions.check_govern_tre(by, form.cleaned_data["tre"] if agreement.pk is None else agreement.tre)
    if agreement.pk is None:
        agreement.created_by = by
    if agreement.status != DataAccessAgreement.Status.DRAFT and agreement.pk is not None:
        changed = set(form.changed_data) - {"conditions"}
        if changed:
            raise ServiceError("An agreement in force can only be suspended or terminated, not edited.")
    return save_record(form, by=by, verb_prefix="agreement")


_AGREEMENT_MOVES = {
    # action: (statuses it may start from, status it leads to, audit verb)
    "activate": ({"draft", "suspended"}, "active", "agreement.activated"),
    "suspend": ({"active"}, "suspended", "agreement.suspended"),
    "terminate": ({"draft", "active", "suspended"}, "terminated", "agreement.terminated"),
}


@transaction.atomic
def change_agreement_status(agreement, action, *, by, reason=""):
    agreement = (
        DataAccessAgreement.objects.select_for_update(of=("self",))
        .select_related("project", "tre")
        .get(pk=agreement.pk)
    )
    permissions.check_govern_tre(by, agreement.tre)
    permissions.check_not_conflicted(by, agreement.project)
    if action not in _AGREEMENT_MOVES:
        raise ServiceError(f"Unknown action {action!r}.")
    allowed_from, target, verb = _AGREEMENT_MOVES[action]
    if agreement.status == target:
        return agreement
    if agreement.status not in allowed_from:
        raise ServiceError(f"A {agreement.get_status_display().lower()} agreement cannot be {target}.")
    if action != "activate" and not reason.strip():
        raise ValidationError({"reason": "Give the reason."})
    if action == "activate":
        if not agreement.datasets.exists():
            raise ServiceError("Name at least one dataset before the agreement comes into force.")
        if agreement.datasets.exclude(tre=agreement.tre).exists():
            raise ServiceError("Every dataset in the agreement must be held by its TRE.")
        if agreement.approved_at is None:
            agreement.approved_by, agreement.approved_at = by, timezone.now()
    before = {"status": agreement.status}
    agreement.status = target
    agreement.save()
    audit.record(
        verb,
        by=by,
        obj=agreement,
        before=before,
        after={"status": target},
        message=reason,
        tre=agreement.tre,
        project=agreement.project,
    )
    standing_changed()
    return agreement


# --- Workflows -------------------------------------------------------------------------


@transaction.atomic
def request_workflow_approval(workflow, tre, *, by):
    permissions.check_govern_tre(by, tre)
    approval, _ = WorkflowApproval.objects.get_or_create(workflow=workflow, tre=tre)
    audit.record("workflow.approval_requested", by=by, obj=approval, tre=tre)
    return approval


def is_workflow_approved_anywhere(workflow):
    return workflow.pk is not None and workflow.approvals.filter(status=Decision.APPROVED).exists()


@transaction.atomic
def change_workflow(form, *, by):
    """Register a workflow, or change one. A workflow awaiting a decision at a TRE is changed only by
    that TRE's officers. Once approved anywhere it never changes: the change becomes a new version,
    awaiting a decision at each TRE the officer governs where the old version was approved or pending;
    the approved version stays as it was, so the jobs that name it keep what was approved."""
    workflow = form.instance
    if workflow.pk is not None:
        # Lock the row so a decision and a change cannot cross.
        ApprovedWorkflow.objects.select_for_update(of=("self",)).get(pk=workflow.pk)
    permissions.check_change_workflow(by, workflow)
    if not is_workflow_approved_anywhere(workflow):
        return save_record(form, by=by, verb_prefix="workflow")
    original = ApprovedWorkflow.objects.get(pk=workflow.pk)
    if (
        form.cleaned_data["version"] == original.version
        and form.cleaned_data["workflow_id"] == original.workflow_id
    ):
        raise ValidationError(
            {
                "version": f"Version {original.version} is approved and cannot change: give the changed workflow a new version."
            }
        )
    earlier = list(original.approvals.exclude(status=Decision.REFUSED).select_related("tre"))
    workflow.pk, workflow._state.adding = None, True
    if not form.cleaned_data.get("crate") and original.crate:
        workflow.crate = original.crate.name
    workflow = save_record(form, by=by, verb_prefix="workflow")
    audit.record(
        "workflow.new_version",
        by=by,
        obj=workflow,
        before={"workflow": original.pk, "version": original.version, "sha256": original.sha256},
        after={"workflow": workflow.pk, "version": workflow.version, "sha256": workflow.sha256},
    )
    for approval in earlier:
        if permissions.can_govern_tre(by, approval.tre):
            request_workflow_approval(workflow, approval.tre, by=by)
    return workflow


@transaction.atomic
def decide_workflow(approval, decision, rationale="", *, by, settings=None):
    """Approve or refuse a workflow for one TRE. Approving a workflow that calls a federated analytics
    service (DataSHIELD, Bitfount) also fixes what it may use there: `settings` (portal.service_settings)."""
    approval = (
        WorkflowApproval.objects.select_for_update(of=("self",))
        .select_related("workflow", "tre")
        .get(pk=approval.pk)
    )
    permissions.check_govern_tre(by, approval.tre)
    after = None
    if decision == Decision.APPROVED:
        executor = approval.workflow.executor
        allowed = approval.tre.allowed_executors
        if allowed and executor not in allowed:
            raise ServiceError(
                f"{approval.tre} does not allow the {approval.workflow.get_executor_display()} executor."
            )
        if approval.status == Decision.PENDING:
            approval.service_settings = service_settings.clean(executor, settings)
            after = {"service_settings": approval.service_settings} if approval.service_settings else None
    return _decide(
        approval, decision, rationale, by=by, verb="workflow", project="", tre=approval.tre, after=after
    )


# --- API tokens ------------------------------------------------------------------------


@transaction.atomic
def create_token(user, name, *, by, days=None, scopes=None, second_factor_at=None):
    """Create a personal API token; returns (token, secret). The secret is never stored.

    `scopes` defaults to read and submit. A privileged scope (review, check, audit, admin) needs the role
    it stands for, a second-factor check within the last five minutes (`second_factor_at`, a Unix time
    from the session: portal.accounts.second_factor_at) and a lifetime of at most
    PORTAL_PRIVILEGED_TOKEN_MAX_DAYS days.
    """
    from django.conf import settings  # (a local name: decide_workflow takes a `settings` argument)

    if by.pk != user.pk:
        raise PermissionDenied("People create their own tokens.")
    scopes = sorted(set(scopes or default_token_scopes()), key=TokenScope.values.index)
    unknown = [s for s in scopes if s not in TokenScope.values]
    if unknown:
        raise ValidationError({"scopes": f"Unknown scope {unknown[0]!r}."})
    beyond = [s for s in scopes if s not in permissions.token_scopes_for(user)]
    if beyond:
        raise PermissionDenied(
            f"Your roles do not allow a token with the {TokenScope(beyond[0]).value} scope."
        )
    privileged = bool(PRIVILEGED_SCOPES & set(scopes))
    longest = settings.PORTAL_PRIVILEGED_TOKEN_MAX_DAYS if privileged else settings.PORTAL_TOKEN_MAX_DAYS
    days = days or min(settings.PORTAL_TOKEN_DEFAULT_DAYS, longest)
    if not 1 <= days <= longest:
        raise ValidationError({"days": f"Choose between 1 and {longest} days."})
    if privileged and (
        second_factor_at is None or time.time() - second_factor_at > RECENT_SECOND_FACTOR_SECONDS
    ):
        raise PermissionDenied(
            "Confirm your second factor first: a token that can review, check, audit or administer is "
            "made only within five minutes of that check."
        )
    secret = PersonalToken.generate_key()
    token = PersonalToken.objects.create(
        user=user,
        name=name,
        key_prefix=secret[:10],
        key_hash=PersonalToken.hash_key(secret),
        expires_at=timezone.now() + timedelta(days=days),
        scopes=scopes,
    )
    audit.record(
        "token.created",
        by=by,
        obj=token,
        after={"name": name, "expires_at": token.expires_at, "scopes": scopes},
    )
    return token, secret


@transaction.atomic
def revoke_token(token, *, by):
    if token.user_id != by.pk and not permissions.is_admin(by):
        raise PermissionDenied("You can only revoke your own tokens.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record("token.revoked", by=by, obj=token)
    return token


def find_user_by_email(email):
    return get_user_model().objects.filter(email__iexact=email.strip()).first()

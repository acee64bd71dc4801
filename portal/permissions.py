"""Who may do what in the registry: `can_*` answers, `check_*` raises PermissionDenied.

Views, API permission classes and templates all ask these functions; nothing else calls
guardian directly. Roles are groups (`portal.roles`); where a role is scoped to a TRE, the
scope is a guardian object permission on that TRE.
"""

from functools import cached_property

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from guardian.shortcuts import get_objects_for_user, get_users_with_perms

from portal import roles


class _RoleCache:
    """Group names of a user, fetched once per user object."""

    def __init__(self, user):
        self.user = user

    @cached_property
    def names(self):
        if not self.user.is_authenticated:
            return frozenset()
        return frozenset(self.user.groups.values_list("name", flat=True))


def user_roles(user):
    cache = getattr(user, "_portal_roles", None)
    if cache is None:
        cache = _RoleCache(user)
        if user.is_authenticated:
            user._portal_roles = cache
    return cache.names


def has_role(user, role):
    if not user.is_authenticated:
        return False
    if role == roles.FEDERATION_ADMIN and user.is_superuser:
        return True
    return role in user_roles(user)


def is_officer(user):
    return has_role(user, roles.GOVERNANCE_OFFICER)


def is_checker(user):
    return has_role(user, roles.OUTPUT_CHECKER)


def is_auditor(user):
    return has_role(user, roles.AUDITOR)


def is_admin(user):
    return has_role(user, roles.FEDERATION_ADMIN)


def is_privileged(user):
    """Officers, output checkers, auditors and admins: their sessions and tokens need the second factor."""
    if not getattr(user, "is_authenticated", False) or getattr(user, "is_agent", False):
        return False
    required = set(settings.PORTAL_MFA_REQUIRED_ROLES)
    return user.is_superuser or bool(required & user_roles(user))


def needs_mfa_setup(user):
    """True when the user's role requires a second factor and they have none yet."""
    if not is_privileged(user):
        return False
    from allauth.mfa.models import Authenticator

    return not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def token_scopes_for(user):
    """The personal-token scopes `user` may ask for: read and submit for everyone, the rest by role."""
    from portal.models import TokenScope

    scopes = [TokenScope.READ, TokenScope.SUBMIT]
    if is_officer(user):
        scopes.append(TokenScope.REVIEW)
    if is_checker(user):
        scopes.append(TokenScope.CHECK)
    if is_auditor(user):
        scopes.append(TokenScope.AUDIT)
    if is_admin(user):
        scopes.append(TokenScope.ADMIN)
    return scopes


# --- TREs -----------------------------------------------------------------------------


def officers_of(tre):
    """The governance officers of `tre` (with their profiles)."""
    users = get_users_with_perms(tre, only_with_perms_in=["govern_tre"], with_group_users=False)
    return [u for u in users.filter(groups__name=roles.GOVERNANCE_OFFICER).select_related("profile")]


def checkers_of(tre):
    """The output checkers of `tre` (with their profiles)."""
    users = get_users_with_perms(tre, only_with_perms_in=["check_outputs_tre"], with_group_users=False)
    return [u for u in users.filter(groups__name=roles.OUTPUT_CHECKER).select_related("profile")]


def tres_governed_by(user):
    """TREs this user is a governance officer of."""
    from portal.models import TRE

    if not is_officer(user):
        return TRE.objects.none()
    return get_objects_for_user(user, "portal.govern_tre", klass=TRE, accept_global_perms=False)


def tres_checked_by(user):
    from portal.models import TRE

    if not is_checker(user):
        return TRE.objects.none()
    return get_objects_for_user(user, "portal.check_outputs_tre", klass=TRE, accept_global_perms=False)


def can_govern_tre(user, tre):
    return is_officer(user) and user.has_perm("portal.govern_tre", tre)


def check_govern_tre(user, tre):
    if not can_govern_tre(user, tre):
        raise PermissionDenied(f"Only governance officers of {tre} can do this.")


def can_check_outputs_at(user, tre):
    return is_checker(user) and user.has_perm("portal.check_outputs_tre", tre)


def can_edit_tre(user, tre):
    return can_govern_tre(user, tre) or is_admin(user)


def check_edit_tre(user, tre):
    if not can_edit_tre(user, tre):
        raise PermissionDenied(f"Only governance officers of {tre} can change its settings.")


def can_manage_organisations(user):
    return is_admin(user) or is_officer(user)


def check_manage_organisations(user):
    if not can_manage_organisations(user):
        raise PermissionDenied("Only governance officers and federation admins can change organisations.")


# --- Projects -------------------------------------------------------------------------


def visible_projects(user):
    """Projects a user may see inside the portal: members see theirs, officers their TREs', auditors all."""
    from portal.models import Project

    if not user.is_authenticated:
        return Project.objects.none()
    if is_auditor(user) or is_admin(user):
        return Project.objects.all()
    member_of = get_objects_for_user(user, "portal.view_project", klass=Project, accept_global_perms=False)
    queryset = Project.objects.filter(pk__in=member_of.values("pk"))
    if is_officer(user):
        queryset = queryset | Project.objects.filter(approvals__tre__in=tres_governed_by(user))
    return queryset.distinct()


def can_view_project(user, project):
    if not user.is_authenticated:
        return False
    if is_auditor(user) or is_admin(user) or user.has_perm("portal.view_project", project):
        return True
    return is_officer(user) and any(
        can_govern_tre(user, a.tre) for a in project.approvals.select_related("tre")
    )


def check_view_project(user, project):
    if not can_view_project(user, project):
        raise PermissionDenied("You are not a member of this project.")


def can_manage_project(user, project):
    return user.is_authenticated and user.has_perm("portal.manage_project", project)


def check_manage_project(user, project):
    if not can_manage_project(user, project):
        raise PermissionDenied("Only the project lead can do this.")


def can_create_project(user):
    return has_role(user, roles.RESEARCHER) or has_role(user, roles.PROJECT_LEAD)


def check_create_project(user):
    if not can_create_project(user):
        raise PermissionDenied("Only researchers can start a project.")


def can_apply_to_project(user, project):
    return has_role(user, roles.RESEARCHER) and not project.memberships.filter(person=user).exists()


# --- Membership: one question ------------------------------------------------------------
# A person *acts as a member* of a project only while their membership is approved (active), approved
# at the TRE in question where one is, and they hold a verified accreditation valid today. Pending
# applicants, invitees, refused, removed (withdrawn) and lapsed members, and members whose
# accreditation ran out before the nightly sweep lapsed them, see at most their own application.
# Separation of duties asks the wider question, `belongs_to_project`: any tie in any state.


def has_valid_accreditation(person, day=None):
    """A verified accreditation valid on `day` (today by default)."""
    from portal.models import Accreditation

    day = day or timezone.localdate()
    return Accreditation.objects.filter(
        person=person, verified_at__isnull=False, valid_from__lte=day, valid_until__gte=day
    ).exists()


def acting_memberships(user, tre=None):
    """The memberships through which `user` acts as a member now (at `tre`, when given)."""
    from portal.models import Decision, Membership

    if not getattr(user, "is_authenticated", False) or getattr(user, "is_agent", False):
        return Membership.objects.none()
    if not has_valid_accreditation(user):
        return Membership.objects.none()
    memberships = Membership.objects.filter(person=user, status=Membership.Status.ACTIVE)
    if tre is not None:
        memberships = memberships.filter(approvals__tre=tre, approvals__status=Decision.APPROVED)
    return memberships


def is_project_member(user, project, tre=None):
    """Whether `user` acts as a member of `project` (at `tre`, when given): see `acting_memberships`."""
    return acting_memberships(user, tre).filter(project=project).exists()


def is_member_at_any(user, project, tres):
    """Whether `user` acts as a member of `project` at one of `tres` (a request's TREs)."""
    from portal.models import Decision

    return (
        acting_memberships(user)
        .filter(project=project, approvals__tre__in=tres, approvals__status=Decision.APPROVED)
        .exists()
    )


def belongs_to_project(user, project):
    """Any tie to the project in any state (lead, applicant, member, lapsed, removed): separation of duties."""
    return getattr(user, "is_authenticated", False) and (
        project.lead_id == user.pk or project.memberships.filter(person=user).exists()
    )


def can_receive_outputs(user, project, tres):
    """Released outputs of a project (files, the published results crate, combined tables) go only to
    people acting as its members at a TRE they came from (`tres`: TREs or their ids). Every view of
    released outputs, HTML, API and ZIP, asks this one question; the member question is
    `is_member_at_any`'s (approved, at that TRE, with a valid accreditation)."""
    return is_member_at_any(user, project, tres)


def check_not_conflicted(user, project):
    """Nobody decides on a project they lead or belong to."""
    if belongs_to_project(user, project):
        raise PermissionDenied("You belong to this project, so another officer must decide.")


# --- Workflows ------------------------------------------------------------------------


def tres_deciding_workflow(workflow):
    """The TREs where `workflow` awaits a decision."""
    from portal.models import TRE, Decision

    return TRE.objects.filter(
        workflow_approvals__workflow=workflow, workflow_approvals__status=Decision.PENDING
    )


def can_change_workflow(user, workflow):
    """Officers change a workflow; one awaiting a decision at a TRE only the officers of that TRE (of
    every such TRE). After any approval a change is a new version (portal.services.change_workflow)."""
    if not is_officer(user):
        return False
    if workflow.pk is None:
        return True
    return all(can_govern_tre(user, tre) for tre in tres_deciding_workflow(workflow))


def check_change_workflow(user, workflow):
    if not is_officer(user):
        raise PermissionDenied("Only governance officers can register workflows.")
    if not can_change_workflow(user, workflow):
        names = ", ".join(
            tre.name for tre in tres_deciding_workflow(workflow) if not can_govern_tre(user, tre)
        )
        raise PermissionDenied(
            f"{workflow} awaits a decision at {names}; only that TRE's officers can change it."
        )


# --- Agreements -----------------------------------------------------------------------


def visible_agreements(user):
    """Agreements `user` may read: the TRE's officers, members acting at its TRE, auditors and admins."""
    from django.db.models import Exists, OuterRef, Q

    from portal.models import DataAccessAgreement, Decision

    if not getattr(user, "is_authenticated", False):
        return DataAccessAgreement.objects.none()
    if is_auditor(user) or is_admin(user):
        return DataAccessAgreement.objects.all()
    acting = acting_memberships(user).filter(
        project=OuterRef("project"), approvals__tre=OuterRef("tre"), approvals__status=Decision.APPROVED
    )
    return DataAccessAgreement.objects.filter(Exists(acting) | Q(tre__in=tres_governed_by(user)))


def can_view_agreement(user, agreement):
    return (
        is_auditor(user)
        or is_admin(user)
        or can_govern_tre(user, agreement.tre)
        or is_project_member(user, agreement.project, tre=agreement.tre)
    )


def check_view_agreement(user, agreement):
    if not can_view_agreement(user, agreement):
        raise PermissionDenied("Only the project's approved members and the TRE's officers can read this.")


def can_see_project_records(user, project):
    """The project's members, agreements and history: acting members, its lead, the officers of its TREs,
    auditors and admins. Applicants, lapsed and removed members see their own application only."""
    return (
        is_auditor(user)
        or is_admin(user)
        or can_manage_project(user, project)
        or is_project_member(user, project)
        or (
            is_officer(user)
            and any(can_govern_tre(user, a.tre) for a in project.approvals.select_related("tre"))
        )
    )


# --- People ---------------------------------------------------------------------------


def can_verify_accreditations(user):
    return is_officer(user)


def check_verify_accreditation(user, accreditation):
    if not can_verify_accreditations(user):
        raise PermissionDenied("Only governance officers can verify accreditations.")
    if accreditation.person_id == user.pk:
        raise PermissionDenied("You cannot verify your own accreditation.")


def can_view_person(user, person):
    return user.pk == person.pk or is_officer(user) or is_auditor(user) or is_admin(user)


# --- Audit ----------------------------------------------------------------------------


def can_view_audit(user):
    return is_auditor(user) or is_admin(user)


def check_view_audit(user):
    if not can_view_audit(user):
        raise PermissionDenied("Only auditors can read the audit trail.")


# --- Questions from the public -------------------------------------------------------------


def moderatable_projects(user):
    """The projects whose public questions `user` may moderate (as a values queryset of ids).

    Officers moderate for the projects their TREs approved; PPIE members for every approved project.
    """
    from portal.models import Decision, ProjectApproval

    approved = ProjectApproval.objects.filter(status=Decision.APPROVED)
    if not is_ppie(user):
        approved = approved.filter(tre__in=tres_governed_by(user))
    return approved.values("project")


def can_moderate(user, question):
    """Officers of a TRE that approved the project, and PPIE members, may moderate, unless they
    belong to the project."""
    if not (is_officer(user) or is_ppie(user)):
        return False
    allowed = moderatable_projects(user).filter(project=question.project_id).exists()
    return allowed and not belongs_to_project(user, question.project)


def check_moderate(user, question):
    if not can_moderate(user, question):
        raise PermissionDenied(
            "Only governance officers of a TRE that approved this project, and PPIE members, can moderate it."
        )


# --- Work pages (the checkers' queue, PPIE oversight) ---------------------------------------


def can_use_output_queue(user):
    """Output checkers see the files waiting for their vote at `/outputs/`."""
    return is_checker(user)


def check_use_output_queue(user):
    if not can_use_output_queue(user):
        raise PermissionDenied("Only output checkers have an output queue.")


def is_ppie(user):
    return has_role(user, roles.PPIE)


def can_ppie_review(user, project):
    """PPIE members read lay summaries, except of projects they belong to."""
    return is_ppie(user) and not is_project_member(user, project)


def check_ppie_review(user, project):
    if not is_ppie(user):
        raise PermissionDenied("Only PPIE members review lay summaries.")
    if is_project_member(user, project):
        raise PermissionDenied("You belong to this project, so another PPIE member must review it.")


def can_use_ppie_page(user):
    return is_ppie(user)


def check_use_ppie_page(user):
    if not can_use_ppie_page(user):
        raise PermissionDenied("Only PPIE members (patient and public representatives) have this page.")

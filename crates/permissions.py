"""Who may submit, see and resubmit requests, and manage a TRE's agents: `can_*` answers, `check_*` raises.

Built on the registry's roles and django-guardian object permissions (portal.permissions). Questions
about a job's review and outputs live in reviews.permissions.
"""

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q

from crates.models import Request
from portal import permissions
from portal.models import Decision

# --- Requests ------------------------------------------------------------------------------------


def can_submit_requests(user):
    """Researchers submit requests (for projects they are active members of: see can_submit)."""
    return permissions.has_role(user, "researcher")


def check_submit_requests(user):
    if not can_submit_requests(user):
        raise PermissionDenied("Only researchers can submit requests.")


def can_submit(user, project, tres=()):
    """Researchers who act as members of the project (at each of `tres`) submit requests for it."""
    if not permissions.has_role(user, "researcher"):
        return False
    return all(permissions.is_project_member(user, project, tre=tre) for tre in tres or [None])


def check_submit(user, project, tres=()):
    check_submit_requests(user)
    if not permissions.is_project_member(user, project):
        raise PermissionDenied(f"You are not an approved member of {project.identifier}.")
    outside = [tre.name for tre in tres if not permissions.is_project_member(user, project, tre=tre)]
    if outside:
        raise PermissionDenied(
            f"You are not an approved member of {project.identifier} at {', '.join(outside)}."
        )


def is_request_member(user, request):
    """Whether `user` acts as a member of the request's project at one of the request's TREs."""
    return permissions.is_member_at_any(user, request.project, request.tres.all())


def can_resubmit(user, request):
    """The submitter and the project's lead add versions to a request, while they act as members."""
    return (request.submitter_id == user.pk or request.project.lead_id == user.pk) and is_request_member(
        user, request
    )


def check_resubmit(user, request):
    if not can_resubmit(user, request):
        raise PermissionDenied("Only the request's submitter or the project's lead can send a new version.")


def can_view_request(user, request):
    """Members acting at one of its TREs, the officers and output checkers of its TREs, auditors, admins."""
    if permissions.can_view_audit(user) or permissions.is_admin(user):
        return True
    if is_request_member(user, request):
        return True
    return any(
        permissions.can_govern_tre(user, tre) or permissions.can_check_outputs_at(user, tre)
        for tre in request.tres.all()
    )


def check_view_request(user, request):
    if not can_view_request(user, request):
        raise PermissionDenied("You cannot see this request.")


def visible_requests(user):
    """The requests `user` may see, as a queryset (the list pages' and the API's scope)."""
    if permissions.can_view_audit(user) or permissions.is_admin(user):
        return Request.objects.all()
    acting = permissions.acting_memberships(user).filter(
        project=OuterRef("project"), approvals__tre__in=OuterRef("tres"), approvals__status=Decision.APPROVED
    )
    staff_at = [
        *permissions.tres_governed_by(user).values_list("pk", flat=True),
        *permissions.tres_checked_by(user).values_list("pk", flat=True),
    ]
    as_member = Request.objects.filter(Exists(acting)).values("pk")
    return Request.objects.filter(Q(pk__in=as_member) | Q(tres__in=staff_at)).distinct()


# --- Agents --------------------------------------------------------------------------------------


def can_manage_agents(user, tre):
    """The TRE's governance officers and federation admins issue, rotate and revoke its agents' tokens."""
    return permissions.can_edit_tre(user, tre)


def check_manage_agents(user, tre):
    if not can_manage_agents(user, tre):
        raise PermissionDenied(f"Only governance officers of {tre} can manage its agents.")


def can_view_agents(user, tre):
    return can_manage_agents(user, tre) or permissions.can_view_audit(user)


def check_view_agents(user, tre):
    if not can_view_agents(user, tre):
        raise PermissionDenied(f"Only governance officers of {tre} can see its agents.")

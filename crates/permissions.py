"""Who may submit, see and resubmit requests, and manage a TRE's agents: `can_*` answers, `check_*` raises.

Built on the registry's roles and django-guardian object permissions (portal.permissions). Questions
about a job's review and outputs live in reviews.permissions.
"""

from django.core.exceptions import PermissionDenied
from django.db.models import Q

from crates.models import Request
from portal import permissions
from portal.models import Membership

# --- Requests ------------------------------------------------------------------------------------


def can_submit_requests(user):
    """Researchers submit requests (for projects they are active members of: see can_submit)."""
    return permissions.has_role(user, "researcher")


def check_submit_requests(user):
    if not can_submit_requests(user):
        raise PermissionDenied("Only researchers can submit requests.")


def can_submit(user, project):
    """Researchers who are active members of the project submit requests for it."""
    return (
        permissions.has_role(user, "researcher")
        and Membership.objects.filter(project=project, person=user, status=Membership.Status.ACTIVE).exists()
    )


def check_submit(user, project):
    check_submit_requests(user)
    if not can_submit(user, project):
        raise PermissionDenied(f"You are not an approved member of {project.identifier}.")


def can_resubmit(user, request):
    """The submitter and the project's members add versions to a request."""
    return request.submitter_id == user.pk or permissions.is_project_member(user, request.project)


def check_resubmit(user, request):
    if not can_resubmit(user, request):
        raise PermissionDenied("Only the project's members can resubmit.")


def can_view_request(user, request):
    """The project's members, the officers and output checkers of its TREs, auditors and admins."""
    if permissions.can_view_audit(user) or permissions.is_admin(user):
        return True
    if request.submitter_id == user.pk or permissions.is_project_member(user, request.project):
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
    member_of = Membership.objects.filter(person=user).exclude(status=Membership.Status.WITHDRAWN)
    staff_at = [
        *permissions.tres_governed_by(user).values_list("pk", flat=True),
        *permissions.tres_checked_by(user).values_list("pk", flat=True),
    ]
    return Request.objects.filter(
        Q(project__in=member_of.values("project_id")) | Q(submitter=user) | Q(tres__in=staff_at)
    ).distinct()


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

"""Who may submit, see and resubmit requests, and manage a TRE's agents: `can_*` answers, `check_*` raises.

Built on the registry's roles and django-guardian object permissions (portal.permissions). The actor
kinds a person or agent has on a job (the transition table in crates.transitions names the kinds allowed
for each move) and who may cancel a job live here too; questions about a job's review and outputs live
in reviews.permissions.
"""

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q

from crates.models import Request
from portal import audit, permissions
from portal.models import Decision

# --- Actor kinds on a job ---------------------------------------------------------------------

RESEARCHER = "researcher"  # an approved, accredited member of the project at the job's TRE
OFFICER = "officer"  # a governance officer of the job's TRE
CHECKER = "checker"  # an output checker of the job's TRE
AGENT = "agent"  # the TRE agent of the job's TRE
SYSTEM = "system"  # the portal itself (tasks, schedules, other services)


def actor_kinds(job, by):
    """The actor kinds that `by` (a user, an agent, or None/an audit.Actor for the system) has on `job`."""
    if by is None or isinstance(by, audit.Actor):
        return {SYSTEM}
    if getattr(by, "is_agent", False):
        return {AGENT} if by.tre_id == job.tre_id else set()
    kinds = set()
    if not getattr(by, "is_authenticated", False):
        return kinds
    if permissions.is_project_member(by, job.request.project, tre=job.tre):
        kinds.add(RESEARCHER)
    if not on_project(by, job):
        # Separation of duties: anyone tied to the project, in any state, never acts as its officer or checker.
        if permissions.can_govern_tre(by, job.tre):
            kinds.add(OFFICER)
        if permissions.can_check_outputs_at(by, job.tre):
            kinds.add(CHECKER)
    return kinds


def on_project(user, job):
    """Any tie to the job's request or project, in any state (separation of duties). Acting as the
    project's member is the narrower question `portal.permissions.is_project_member`."""
    return job.request.submitter_id == user.pk or permissions.belongs_to_project(user, job.request.project)


# --- Cancellation ------------------------------------------------------------------------------


def can_cancel(user, job):
    """Whether `user` may cancel `job` now: through the transition table before an agent has it, or by
    asking the agent to stop (project members and the TRE's officers) while it is claimed or running."""
    from crates.dispatch import ACTIVE  # the states in which an agent holds the job
    from crates.transitions import can_transition

    if job.status in ACTIVE:
        return bool(actor_kinds(job, user) & {RESEARCHER, OFFICER})
    return can_transition(job, job.Status.CANCELLED, by=user)


def check_cancel(user, job):
    if not can_cancel(user, job):
        raise PermissionDenied("Only the project's members or the TRE's officers can cancel this job.")


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

"""Who may act on a job, its review and its outputs: `can_*` answers, `check_*` raises PermissionDenied.

Everyone who touches a job does so as one or more *actor kinds*, worked out from the registry by
:func:`crates.permissions.actor_kinds` (beside the job and its transition table in crates.transitions,
which names the kinds allowed for each move); the functions here answer the other questions views, the
API and templates ask about reviews and outputs. Separation of
duties is built in: members of a project never act as its officers or output checkers.
"""

from django.core.exceptions import PermissionDenied

from crates.permissions import CHECKER, OFFICER, RESEARCHER, actor_kinds, on_project
from portal import permissions

# --- Review --------------------------------------------------------------------------------------


def can_review(user, job):
    """Officers of the job's TRE who are not on the project decide its review steps."""
    return OFFICER in actor_kinds(job, user)


def check_review(user, job):
    if not can_review(user, job):
        if getattr(user, "is_authenticated", False) and on_project(user, job):
            raise PermissionDenied("You belong to this request's project, so another officer must decide.")
        raise PermissionDenied(f"Only governance officers of {job.tre} can review this job.")


def can_post_message(user, job):
    """The project's members and the TRE's officers and checkers talk on the job's page."""
    return bool(actor_kinds(job, user) & {RESEARCHER, OFFICER, CHECKER})


def check_post_message(user, job):
    if not can_post_message(user, job):
        raise PermissionDenied("Only the project's members and the TRE's staff can write here.")


# --- Outputs -------------------------------------------------------------------------------------


def can_check_outputs(user, job):
    """Output checkers of the job's TRE who are not on the project vote on its outputs."""
    return CHECKER in actor_kinds(job, user)


def check_check_outputs(user, job):
    if not can_check_outputs(user, job):
        if getattr(user, "is_authenticated", False) and on_project(user, job):
            raise PermissionDenied("You belong to this project, so you cannot check its outputs.")
        raise PermissionDenied(f"Only output checkers of {job.tre} can check these outputs.")


def can_act_as_researcher(user, job):
    """The submitter and the project's members answer checkers, describe and withdraw outputs."""
    return RESEARCHER in actor_kinds(job, user)


def check_act_as_researcher(user, job):
    if not can_act_as_researcher(user, job):
        raise PermissionDenied("Only the project's members can do this.")


def can_download_output(user, output):
    """Released files: the project's acting members (portal.permissions.can_receive_outputs). Before
    release: the TRE's checkers only."""
    job = output.job
    if output.status == output.Status.RELEASED:
        return permissions.can_receive_outputs(user, job.request.project, [job.tre_id])
    return can_check_outputs(user, job)


def check_download_output(user, output):
    if not can_download_output(user, output):
        raise PermissionDenied("This file is not released to you.")


def can_view_outputs(user, job):
    """Who sees a job's outputs listed, with their verdicts and flags (values only as `sdc_visible_to`
    allows): the project's members, the job's TRE's checkers and officers, and auditors. Officers of
    other TREs do not. The outputs page, the file page and the API all ask this."""
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(actor_kinds(job, user) & {RESEARCHER, CHECKER, OFFICER}) or permissions.can_view_audit(user)


def check_view_outputs(user, job):
    if not can_view_outputs(user, job):
        raise PermissionDenied("You cannot see this job's outputs.")


def can_view_output(user, output):
    """One file's page: whoever sees the job's outputs (its content only once released to them)."""
    return can_view_outputs(user, output.job) or can_download_output(user, output)


def check_view_output(user, output):
    if not can_view_output(user, output):
        raise PermissionDenied("You cannot see this output.")


def can_view_published_crate(user, job):
    """The published results crate (it carries the released files): the project's acting members, the
    job's TRE's checkers and officers, and auditors. Not removed or lapsed members, nor other TREs' staff."""
    if permissions.can_receive_outputs(user, job.request.project, [job.tre_id]) or permissions.can_view_audit(
        user
    ):
        return True
    return bool(actor_kinds(job, user) & {OFFICER, CHECKER})


def check_view_published_crate(user, job):
    if not can_view_published_crate(user, job):
        raise PermissionDenied("You cannot see this job's published crate.")


def can_publish_output(user, output):
    """The project's lead chooses which released outputs its public page shows."""
    return (
        output.status == output.Status.RELEASED
        and getattr(user, "is_authenticated", False)
        and output.job.request.project.lead_id == user.pk
    )


def check_publish_output(user, output):
    if output.status != output.Status.RELEASED:
        raise PermissionDenied("Only a released output can be published.")
    if not can_publish_output(user, output):
        raise PermissionDenied("Only the project's lead chooses what its public page shows.")


# --- Combining results across TREs -----------------------------------------------------------------


def can_combine(user, jobs):
    """The project's members and the output checkers of any TRE involved may combine released tables."""
    return any(actor_kinds(job, user) & {RESEARCHER, CHECKER} for job in jobs)


def check_combine(user, jobs):
    if not can_combine(user, jobs):
        raise PermissionDenied(
            "Only the project's members and the TREs' output checkers can combine results."
        )


def _source_jobs(release):
    return [o.job for o in release.sources.select_related("job__request__project", "job__tre")]


def can_decide_combined(user, release):
    """An output checker of one of the TREs involved, not on the project, releases a combined table."""
    return any(can_check_outputs(user, job) for job in _source_jobs(release))


def check_decide_combined(user, release):
    if not can_decide_combined(user, release):
        if permissions.belongs_to_project(user, release.request.project):
            raise PermissionDenied("You belong to this project, so you cannot release its outputs.")
        raise PermissionDenied("Only an output checker of one of the TREs involved can decide.")


def can_download_combined(user, release):
    """A released combination goes to the project's active members."""
    return release.status == release.Status.RELEASED and permissions.can_receive_outputs(
        user, release.request.project, [o.job.tre_id for o in release.sources.select_related("job")]
    )


def check_download_combined(user, release):
    if not can_download_combined(user, release):
        raise PermissionDenied("This combined table is not released to you.")


def can_view_combined(user, release):
    """The checkers of the TREs involved see a combination before it is released; members after."""
    return can_download_combined(user, release) or can_decide_combined(user, release)

"""A job's state and a failure explained in plain words, for the researcher's pages and notifications.

The agent's own message (often technical) is kept as the detail; what failed and what to do come
from here, so the same words appear on the "To do" page, the job page, in the portal notification
and in the e-mail.
"""

from dataclasses import dataclass

from crates.models import Job, JobLease

S = Job.Status

# What a job in each state is doing or waiting for, as researchers read it.
NOW = {
    S.AWAITING_REVIEW: "Waiting for a governance officer to start the review",
    S.IN_REVIEW: "A governance officer is reviewing it",
    S.CHANGES_REQUESTED: "The officer asked for changes: edit and submit a new version",
    S.REJECTED: "Rejected by the governance officer",
    S.APPROVED: "Approved; about to be queued",
    S.QUEUED: "Approved and waiting for the TRE to pick it up",
    S.CLAIMED: "The TRE has picked it up and is about to run it",
    S.RUNNING: "Running inside the TRE",
    S.FAILED: "Failed: see what to do",
    S.OUTPUTS_RETURNED: "Finished; the results are being checked automatically",
    S.OUTPUT_REVIEW: "Finished; output checkers are checking the results",
    S.OUTPUT_CHANGES_REQUESTED: "The output checkers asked you about the results",
    S.WITHHELD: "Finished, but the results were withheld",
    S.RELEASED: "Results released to you",
    S.SUSPENDED: "Paused until an agreement, accreditation or the TRE is back in order",
    S.CANCELLED: "Cancelled",
}

# States after which nothing more happens to a job.
ENDED = frozenset({S.REJECTED, S.FAILED, S.WITHHELD, S.RELEASED, S.CANCELLED})

# States in which something is happening without anyone having to act: pages refresh themselves.
IN_PROGRESS = frozenset({S.APPROVED, S.QUEUED, S.CLAIMED, S.RUNNING, S.OUTPUTS_RETURNED})


@dataclass(frozen=True)
class Failure:
    what: str  # what failed, in a sentence
    next: str  # what to do about it, in a sentence or two
    detail: str  # the TRE's own message, as it came
    when: object  # when it failed (a datetime)


def _matches(text, *words):
    return any(word in text for word in words)


def failure(job, lease=None):
    """Why `job` failed and what to do, or None if it has not failed (`lease` read afresh if not given)."""
    if job.status != S.FAILED:
        return None
    if lease is None:
        lease = JobLease.objects.filter(job_id=job.pk).first()
    detail = (lease.message if lease is not None else "") or ""
    when = (lease.finished_at if lease is not None else None) or job.status_changed_at
    text = detail.lower()
    tre = job.tre.name
    if _matches(text, "lease", "attempts", "stopped responding"):
        what = f"{tre}'s system stopped responding while it held your job, and the job could not be finished."
        next_step = (
            "Nothing ran to completion and no results left the TRE. Submit the request again when "
            f"{tre} is working, or write to {tre}'s team below to ask what happened."
        )
    elif _matches(text, "results crate", "bytes"):
        what = f"Your workflow ran at {tre}, but its results could not be sent back to the portal."
        next_step = "Make the outputs smaller (fewer or aggregated files), then submit a new version."
    elif _matches(text, "input", "parameter", "missing", "required"):
        what = f"{tre} could not start your workflow because an input was missing or wrong."
        next_step = "Check the inputs named below, correct them and submit a new version of the request."
    elif _matches(text, "refused", "not allowed", "not approved", "checksum", "digest", "executor"):
        what = f"{tre}'s own rules did not allow this job to run."
        next_step = (
            f"Read {tre}'s reason below. If the workflow or its version is not on {tre}'s approved "
            f"list, ask {tre}'s governance officers about it by writing below."
        )
    elif _matches(text, "agent failed", "internal"):
        what = f"Something went wrong in {tre}'s system while it handled your job; it was not your workflow."
        next_step = f"Submit the request again later, or write to {tre}'s team below."
    else:
        what = f"Your workflow stopped with an error while it ran at {tre}."
        next_step = (
            "Read the message from the TRE below. Fix the workflow or its inputs and submit a new version; "
            f"if the message does not make sense to you, write to {tre}'s team below."
        )
    return Failure(what=what, next=next_step, detail=detail, when=when)

"""Plain words for people: audit events as sentences, crate terms as what they mean.

Timelines and the audit page show `sentence(event)`; the raw event code stays in the audit
exports (CSV/JSON) for machines and auditors' tools.
"""

import re

# One sentence per event code: what happened, in the past tense, without its actor (shown beside it).
EVENTS = {
    "accreditation.created": "added an accreditation",
    "accreditation.updated": "changed an accreditation",
    "accreditation.verified": "verified an accreditation",
    "accreditation.evidence_viewed": "looked at an accreditation's evidence",
    "agent.created": "set up a TRE agent",
    "agent.revoked": "revoked a TRE agent's access",
    "agent.token_rotated": "gave a TRE agent a new token",
    "agreement.created": "drafted a data-access agreement",
    "agreement.updated": "changed a data-access agreement",
    "agreement.activated": "put a data-access agreement in force",
    "agreement.suspended": "suspended a data-access agreement",
    "agreement.terminated": "ended a data-access agreement",
    "agreement.pdf_downloaded": "downloaded an agreement as PDF",
    "audit.digest_published": "published the daily audit digest",
    "crate.assess_actions_stripped": "removed review steps the sender had written into the crate",
    "crate.refused": "refused a crate that could not be read safely",
    "job.created": "sent the request to this TRE",
    "job.queued": "queued the approved job for the TRE",
    "job.claimed": "picked up the job inside the TRE",
    "job.started": "started running the workflow",
    "job.requeued": "put the job back in the queue after the TRE stopped responding",
    "job.failed": "reported that the job failed",
    "job.outputs_returned": "returned the results",
    "job.results_rejected": "refused the results sent back",
    "job.execution_reported": "reported how the run went",
    "job.cancel_requested": "asked for the job to be cancelled",
    "job.cancelled": "cancelled the job",
    "job.suspended": "paused the job",
    "job.resumed": "resumed the job",
    "job.message": "wrote a message",
    "job.crate_downloaded": "downloaded the request's crate",
    "job.certificate_downloaded": "downloaded the decision certificate",
    "membership.invited": "invited someone to the project",
    "membership.created": "added a member to the project",
    "membership.applied": "applied to join the project",
    "membership.accepted": "accepted an invitation to the project",
    "membership.withdrawn": "left or was removed from the project",
    "membership.lapsed": "lapsed a membership (accreditation expired)",
    "membership.reinstated": "reinstated a membership",
    "membership.approved": "approved a member at this TRE",
    "membership.refused": "refused a member at this TRE",
    "outputs.checking": "finished the automated checks of the results",
    "outputs.checked": "ran the automated disclosure checks",
    "outputs.vote.approve": "voted to approve an output",
    "outputs.vote.changes": "asked for changes to an output",
    "outputs.vote.reject": "voted to reject an output",
    "outputs.file_decided": "recorded the checkers' decision on an output",
    "outputs.file_released": "released an output",
    "outputs.file_viewed": "looked at an output",
    "outputs.file_downloaded": "downloaded an output",
    "outputs.file_withdrawn": "withdrew an output",
    "outputs.file_responded": "answered the checkers about an output",
    "outputs.described": "described an output for the checkers",
    "outputs.changes_requested": "asked the researcher about the results",
    "outputs.responded": "answered the output checkers",
    "outputs.released": "released the results",
    "outputs.withheld": "withheld the results",
    "outputs.withdrawn": "withdrew the results",
    "outputs.published": "published a result on the public pages",
    "outputs.unpublished": "took a result off the public pages",
    "outputs.publication_changed": "changed a published result",
    "outputs.combined": "combined results across TREs",
    "outputs.combined_viewed": "looked at combined results",
    "outputs.combined_downloaded": "downloaded combined results",
    "outputs.crate_downloaded": "downloaded the published results crate",
    "outputs.certificate_downloaded": "downloaded the release certificate",
    "ppie.clear": "marked the lay summary clear for the public",
    "ppie.plainer": "asked for plainer words in the lay summary",
    "profile.created": "created a profile",
    "profile.updated": "changed their profile",
    "profile.notifications_changed": "changed which e-mails they get",
    "project.created": "started the project",
    "project.updated": "changed the project's details",
    "project.approval_requested": "asked a TRE to approve the project",
    "project.approved": "approved the project at this TRE",
    "project.refused": "refused the project at this TRE",
    "public_question.received": "received a question from the public",
    "public_question.published": "published a public question with its answer",
    "public_question.rejected": "decided not to publish a public question",
    "request.created": "submitted the request",
    "request.resubmitted": "submitted a new version",
    "request.version_received": "received a new version of the crate",
    "request.version_valid": "checked the crate: it meets the Five Safes profile",
    "request.version_invalid": "checked the crate: it does not meet the Five Safes profile",
    "review.started": "started the Five Safes review",
    "review.released": "handed the review back to the queue",
    "review.changes_requested": "asked for changes",
    "review.rejected": "rejected the request",
    "review.signed_off": "signed off the review and approved the job",
    "review.step.approve": "approved a review step",
    "review.step.changes": "asked for changes in a review step",
    "review.step.reject": "rejected a review step",
    "role.granted": "gave someone a role",
    "role.revoked": "took a role away",
    "token.created": "created an API token",
    "token.revoked": "revoked an API token",
    "tre.created": "added a TRE",
    "tre.updated": "changed the TRE's policies",
    "tre.paused": "paused the TRE",
    "tre.resumed": "reopened the TRE",
    "upload.too_large": "refused an upload that was too large",
    "workflow.created": "registered a workflow",
    "workflow.updated": "changed a workflow",
    "workflow.approval_requested": "asked a TRE to approve a workflow",
    "workflow.approved": "approved a workflow at this TRE",
    "workflow.refused": "refused a workflow at this TRE",
    "workflow.downloaded": "fetched the approved workflow",
}

_VERBS = {"created": "added", "updated": "changed", "approved": "approved", "refused": "refused"}


def sentence(verb):
    """The event `verb` as a short phrase ("started the Five Safes review"); never the code itself."""
    if verb in EVENTS:
        return EVENTS[verb]
    subject, _, action = verb.rpartition(".")
    subject = subject.split(".")[0].replace("_", " ")
    action = _VERBS.get(action, action.replace("_", " "))
    return f"{action} ({subject})" if subject else action


# The crate's technical names, as what they stand for.
CRATE_TERMS = {
    "CheckValue": "checksum check",
    "ValidationCheck": "profile check",
    "SignOff": "sign-off",
    "DownloadAction": "workflow download",
    "DisclosureCheck": "output check",
    "CreateAction": "run",
    "AssessAction": "review step",
    "FormalParameter": "declared workflow input",
    "sourceOrganization": "project",
    "mainEntity": "workflow",
    "actionStatus": "status",
    "conformsTo": "declared profile",
    "exampleOfWork": "declared input it fills",
}
_TERM = re.compile(r"\(?\b(" + "|".join(CRATE_TERMS) + r")\b\)?")

# Steps the portal and the TRE write into the crate themselves as the request moves on.
RECORDED_LATER = (
    "CheckValue",
    "ValidationCheck",
    "SignOff",
    "DownloadAction",
    "DisclosureCheck",
    "published",
)


def in_words(text):
    """Replace the crate's class and property names in `text` with what they mean."""
    return _TERM.sub(lambda m: CRATE_TERMS[m.group(1)], text or "")


def recommendations(warnings):
    """Split unmet recommendations into (worth_fixing, recorded_later), each message in plain words."""
    worth, later = [], []
    for issue in warnings or []:
        message = issue.get("message", "")
        target = later if any(term in message for term in RECORDED_LATER) else worth
        target.append({**issue, "message": in_words(message)})
    return worth, later


def day(value):
    """A date as people read it: "7 December 2026" (GOV.UK style, no leading zero)."""
    return f"{value.day} {value:%B %Y}"

"""Background work for the public transparency pages, run by django-q2 workers."""

import logging

from transparency import digests

log = logging.getLogger(__name__)


def publish_audit_digest():
    """Daily: publish the digest of the audit chain's head (idempotent: once per day).

    Raises `digests.AuditChainBroken` when the chain fails verification, so the failed task shows
    in the admin's task list; no digest is published for that day.
    """
    event = digests.publish_audit_digest()
    log.info(
        "Audit digest for %s: %s events, head %s", event.object_id, event.after["count"], event.after["hash"]
    )
    return event.after

"""Background work for dispatch (django-q2). Tasks take ids or nothing, and are idempotent."""

import logging

from crates import dispatch, signals

log = logging.getLogger(__name__)


def expire_leases():
    """Every minute: queue again the jobs whose agent stopped renewing its lease, or fail them when
    they have used every attempt; then tell the apps above (crates.signals.leases_swept), which hand
    out again the disclosure checks of returned results that a worker lost (the Redis broker does not
    redeliver a task whose worker died)."""
    report = dispatch.expire_leases()
    if report.requeued or report.failed:
        log.info("Lease expiry: requeued jobs %s, failed jobs %s", report.requeued, report.failed)
    signals.leases_swept.send(sender=None)
    return {"requeued": report.requeued, "failed": report.failed}

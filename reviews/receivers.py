"""Work that crates hands to reviews by signal (crates.signals), so crates never imports reviews.

Connected by ReviewsConfig.ready().
"""

import logging

from django.db import transaction
from django.dispatch import receiver

from crates import signals
from reviews import notifications, outputs, services

log = logging.getLogger(__name__)


@receiver(signals.review_needed, dispatch_uid="reviews.review_needed")
def tell_officers(sender, job, **kwargs):
    notifications.review_needed(job)


@receiver(signals.job_failed, dispatch_uid="reviews.job_failed")
def tell_researchers_of_failure(sender, job, **kwargs):
    notifications.job_failed(job)


@receiver(signals.job_resubmitted, dispatch_uid="reviews.job_resubmitted")
def carry_over_decisions(sender, job, previous_version, version, by, **kwargs):
    services.carry_over(job, previous_version=previous_version, version=version, by=by)


@receiver(signals.results_returned, dispatch_uid="reviews.results_returned")
def check_returned_outputs(sender, upload, **kwargs):
    # The disclosure checks run in the background once the upload is committed.
    transaction.on_commit(lambda: outputs.enqueue_output_checks(upload.pk))


@receiver(signals.leases_swept, dispatch_uid="reviews.leases_swept")
def redo_lost_checks(sender, **kwargs):
    """Hand out again the disclosure checks of returned results that a worker lost (the Redis broker
    does not redeliver a task whose worker died)."""
    rechecked = outputs.redo_lost_checks()
    if rechecked:
        log.warning("Disclosure checks overdue, handed out again: uploads %s", rechecked)
    return rechecked

"""Background work for the registry, run by django-q2 workers. Tasks take ids and are idempotent."""

import logging

from portal import services, webhooks

log = logging.getLogger(__name__)


def lapse_expired_memberships():
    """Daily: lapse memberships whose holder's accreditation or end date has passed."""
    lapsed = services.lapse_expired_memberships()
    log.info("Lapsed %d memberships", len(lapsed))
    return len(lapsed)


def deliver_webhook(delivery_id):
    """Post one webhook delivery (a no-op if another worker holds it or it is not due)."""
    return webhooks.deliver(delivery_id)


def deliver_due_webhooks():
    """Every minute: hand out webhook retries that are due."""
    return len(webhooks.deliver_due())

"""Background work for the registry, run by django-q2 workers. Tasks take ids and are idempotent."""

import logging

from portal import services

log = logging.getLogger(__name__)


def lapse_expired_memberships():
    """Daily: lapse memberships whose holder's accreditation or end date has passed."""
    lapsed = services.lapse_expired_memberships()
    log.info("Lapsed %d memberships", len(lapsed))
    return len(lapsed)

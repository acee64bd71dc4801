"""Background work on crates. Tasks take ids and are idempotent (they claim their row first)."""

import logging

from django_q.tasks import async_task

from crates import services

log = logging.getLogger(__name__)


def validate_version(version_id):
    version = services.validate_version(version_id)
    return version.status if version is not None else "skipped"


def enqueue_validation(version_id):
    async_task("crates.tasks.validate_version", version_id, task_name=f"validate-version-{version_id}")


def redo_lost_validations():
    """Every few minutes: check again the crates a lost worker left unchecked (see the service)."""
    lost = services.redo_lost_validations()
    if lost:
        log.warning("Crate checks overdue, handed out again: versions %s", lost)
    return lost

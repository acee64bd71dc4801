"""Background work on crates. Tasks take ids and are idempotent (they claim their row first)."""

from django_q.tasks import async_task

from crates import services


def validate_version(version_id):
    version = services.validate_version(version_id)
    return version.status if version is not None else "skipped"


def enqueue_validation(version_id):
    async_task("crates.tasks.validate_version", version_id, task_name=f"validate-version-{version_id}")

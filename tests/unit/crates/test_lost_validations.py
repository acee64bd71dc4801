"""A crate whose check a worker lost is checked again, and only one run records the outcome."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from crates import services
from crates.fivesafes.validator import Report
from crates.models import Job, RequestVersion

pytestmark = pytest.mark.django_db
V = RequestVersion.Status


@pytest.fixture
def unchecked(registry, alice, tre_a, crate_zip, django_capture_on_commit_callbacks):
    """A received version whose validation task never ran (lost with its worker)."""
    upload = SimpleUploadedFile("crate.zip", crate_zip.read_bytes(), content_type="application/zip")
    with django_capture_on_commit_callbacks(execute=False):
        request = services.submit_request(
            by=alice, project=registry["project"], tres=[tre_a], title="T", upload=upload
        )
    version = request.versions.get()
    assert version.status == V.RECEIVED
    return version


def _age(version, **fields):
    RequestVersion.objects.filter(pk=version.pk).update(**fields)


def test_a_received_crate_left_unchecked_is_checked_after_the_retry_time(unchecked, settings):
    settings.PORTAL_VALIDATION_RETRY_SECONDS = 600
    assert services.redo_lost_validations() == []  # not overdue yet
    _age(unchecked, created_at=timezone.now() - timedelta(seconds=900))
    assert services.redo_lost_validations() == [unchecked.pk]
    unchecked.refresh_from_db()
    assert unchecked.status == V.VALID
    assert Job.objects.filter(request=unchecked.request).count() == 1
    assert services.redo_lost_validations() == []


def test_a_check_whose_worker_died_is_taken_back_and_the_old_run_records_nothing(unchecked, settings):
    settings.PORTAL_VALIDATION_RETRY_SECONDS = 600
    dead_run = timezone.now() - timedelta(seconds=900)
    _age(unchecked, status=V.VALIDATING, validation_started_at=dead_run)

    assert services.redo_lost_validations() == [unchecked.pk]
    unchecked.refresh_from_db()
    assert unchecked.status == V.VALID and unchecked.validation_started_at > dead_run

    # The first run wakes up and tries to record a verdict: it no longer holds the version.
    report = Report()
    assert services._finish_invalid(unchecked, started=dead_run, report=report) is None
    unchecked.refresh_from_db()
    assert unchecked.status == V.VALID and unchecked.crate
    assert Job.objects.filter(request=unchecked.request).count() == 1


def test_a_running_check_within_the_retry_time_is_left_alone(unchecked, settings):
    settings.PORTAL_VALIDATION_RETRY_SECONDS = 600
    _age(unchecked, status=V.VALIDATING, validation_started_at=timezone.now() - timedelta(seconds=60))
    assert services.redo_lost_validations() == []
    unchecked.refresh_from_db()
    assert unchecked.status == V.VALIDATING

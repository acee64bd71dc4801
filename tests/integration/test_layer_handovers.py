"""Work a lower app hands to a higher one by signal, never by importing it (docs/adr/0005-layers.md),
seen from outside: what the higher app does once the lower one has done its part."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crates import dispatch_tasks
from crates.models import Job
from reviews import outputs
from tests import builders
from transparency import page_cache

pytestmark = pytest.mark.django_db

S = Job.Status
TABLE = b"age_band,female,male\n18-39,120,131\n40-64,210,198\n"


def status(job):
    job.refresh_from_db()
    return job.status


def test_results_an_agent_returns_have_their_disclosure_checks_queued_on_commit(
    new_job, tmp_path, django_capture_on_commit_callbacks
):
    job = new_job(S.QUEUED)
    with django_capture_on_commit_callbacks(execute=True):
        builders.return_results(job, {"by_age.csv": TABLE}, tmp_path=tmp_path)
    # The tests run django-q2 tasks inline: the checks ran, and the outputs wait for the checkers.
    assert status(job) == S.OUTPUT_REVIEW
    assert job.outputs.get().sdc


def test_the_lease_sweep_hands_out_again_the_checks_a_lost_worker_dropped(new_job, tmp_path, settings):
    settings.PORTAL_OUTPUT_CHECK_RETRY_SECONDS = 60
    job = new_job(S.QUEUED)
    # The commit hooks are not run: as if the web process died between the commit and the enqueue.
    builders.return_results(job, {"by_age.csv": TABLE}, tmp_path=tmp_path)
    assert status(job) == S.OUTPUTS_RETURNED

    dispatch_tasks.expire_leases()
    assert status(job) == S.OUTPUTS_RETURNED  # not overdue yet

    Job.objects.filter(pk=job.pk).update(status_changed_at=timezone.now() - timedelta(minutes=5))
    dispatch_tasks.expire_leases()
    assert status(job) == S.OUTPUT_REVIEW


def test_publishing_an_output_retires_the_cached_public_pages(
    new_job, tmp_path, cam, chris, bob, django_capture_on_commit_callbacks
):
    job = new_job(S.QUEUED)
    upload = builders.return_results(job, {"by_age.csv": TABLE}, tmp_path=tmp_path)
    outputs.check_outputs(upload.pk)
    output = job.outputs.get()
    outputs.vote(output, "approve", by=cam)
    outputs.vote(output, "approve", by=chris)
    outputs.release(output, by=cam)

    before = page_cache.cache_prefix()
    with django_capture_on_commit_callbacks(execute=True):
        outputs.publish_output(output, title="Cohort table", by=bob)
    published = page_cache.cache_prefix()
    assert published != before
    with django_capture_on_commit_callbacks(execute=True):
        outputs.unpublish_output(output, by=bob)
    assert page_cache.cache_prefix() != published

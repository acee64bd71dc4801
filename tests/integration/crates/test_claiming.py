"""A claim, the same ORM code on every database: the oldest queued job, locked and skipped by other
claimers, its lease with the next fencing token, and the move and its audit event written by
`transition()` and `audit.record()` in one transaction."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from crates import claiming, dispatch
from crates.models import Job, JobLease, Request
from portal.audit import AuditEvent, verify_chain
from tests.dispatch_helpers import issue, queued_jobs

pytestmark = pytest.mark.django_db

TITLES = [
    "Counts by age band",
    'Quotes " and \\ backslashes, "prev_hash":"x"',
    "Gwasanaeth Iechyd: ŵ ŷ — données 日本 🙂\ttab\x7f",
    "Long " + "x" * 290,
]


@pytest.fixture
def jobs(registry, alice, olivia, crate_zip, django_capture_on_commit_callbacks):
    made = queued_jobs(len(TITLES), registry, alice, olivia, crate_zip, django_capture_on_commit_callbacks)
    for job, title in zip(made, TITLES, strict=True):
        Request.objects.filter(pk=job.request_id).update(title=title)
    return made


def _event(job, fencing_token):
    return AuditEvent.objects.get(
        verb="job.claimed", object_id=str(job.pk), after__fencing_token=fencing_token
    )


def test_claims_take_the_queue_oldest_first_each_with_its_lease_and_audit_event(jobs, tre_a, olivia):
    agent = dispatch.agent_for_token(issue(tre_a, olivia)[1])  # as the API finds it
    oldest_first = sorted(jobs, key=lambda job: (job.status_changed_at, job.pk))
    for expected in oldest_first:
        claim = claiming.claim_one(agent, lease_seconds=120)
        assert claim.job.pk == expected.pk
        job = Job.objects.select_related("request__project", "tre").get(pk=expected.pk)
        lease = JobLease.objects.get(job=job)
        assert job.status == claim.job.status == Job.Status.CLAIMED
        assert claim.job.status_changed_at == job.status_changed_at  # the answer is what was stored
        assert (lease.agent_id, lease.fencing_token, lease.attempts) == (agent.pk, 1, 1)
        assert (claim.lease.fencing_token, claim.lease.attempts) == (1, 1)
        assert lease.expires_at - lease.claimed_at == timedelta(seconds=120)
        assert lease.heartbeat_at == lease.claimed_at
        assert (lease.started_at, lease.finished_at, lease.cancel_requested_at) == (None, None, None)
        assert claim.job.request.title == job.request.title  # awkward titles read back as written
        assert claim.job.tre.slug == tre_a.slug
        assert claim.job.request.project.identifier == job.request.project.identifier
        event = _event(job, 1)
        assert (event.actor_kind, event.actor_id) == ("agent", str(agent.pk))
        assert event.object_label == str(job)[:300]
        assert (event.tre_slug, event.project_identifier) == (tre_a.slug, job.request.project.identifier)
        assert event.before == {"status": "queued"}
        assert event.after == {"status": "claimed", "fencing_token": 1, "attempt": 1}
        assert event.compute_hash() == event.hash
    assert claiming.claim_one(agent, lease_seconds=120) is None
    assert AuditEvent.objects.filter(verb="job.claimed").count() == len(TITLES)
    assert verify_chain() is None


def test_a_second_claim_of_a_requeued_job_takes_the_next_fencing_token(jobs, tre_a, olivia):
    agent, _ = issue(tre_a, olivia)
    first = claiming.claim_one(agent, lease_seconds=120)
    report = dispatch.expire_leases(now=timezone.now() + timedelta(seconds=600))
    assert first.job.pk in report.requeued
    Job.objects.exclude(pk=first.job.pk).filter(status=Job.Status.QUEUED).update(
        status_changed_at=timezone.now() + timedelta(days=1)
    )
    again = claiming.claim_one(agent, lease_seconds=120)
    assert again.job.pk == first.job.pk
    assert (again.lease.fencing_token, again.lease.attempts) == (2, 2)
    assert again.lease.pk == first.lease.pk
    assert _event(again.job, 2).after == {"status": "claimed", "fencing_token": 2, "attempt": 2}
    assert verify_chain() is None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the function existed on PostgreSQL only")
def test_the_hand_written_sql_function_is_gone():
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regproc('portal_json_quote'), to_regproc('portal_json_quote_escaping')")
        assert cursor.fetchone() == (None, None)

"""A claim on PostgreSQL is one statement; it must do exactly what the claim in steps does.

The statement writes the job's status, its lease and the audit event with SQL, the canonical form
of the event completed in the database: these tests hold its result equal, field by field, to the
claim in steps (the way SQLite claims, which PostgreSQL runs as well), for awkward titles too.
"""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from crates import claiming, dispatch
from crates.models import Job, JobLease, Request
from portal.audit import AuditEvent, verify_chain
from tests.dispatch_helpers import issue, queued_jobs

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement claim is PostgreSQL's"),
]

TITLES = [
    "Counts by age band",
    'Quotes " and \\ backslashes, "prev_hash":"x"',
    "Gwasanaeth Iechyd: ŵ ŷ — données 日本 🙂\ttab\x7f",
    "Long " + "x" * 290,
]


def _shape(claim):
    """What a claim answered and wrote, without what differs from job to job."""
    lease = JobLease.objects.get(job=claim.job)
    event = AuditEvent.objects.get(
        verb="job.claimed", object_id=str(claim.job.pk), after__fencing_token=lease.fencing_token
    )
    job = Job.objects.select_related("request__project", "tre").get(pk=claim.job.pk)
    assert event.object_label == str(job)[:300]
    assert event.compute_hash() == event.hash
    assert claim.job.status_changed_at == job.status_changed_at  # the answer is what was stored
    return {
        "answer": (
            claim.job.status,
            claim.workflow_approved,
            claim.workflow_settings,
            claim.lease.fencing_token,
            claim.lease.attempts,
            claim.lease.agent_id,
            claim.lease.cancel_reason,
            claim.lease.message,
            claim.job.workflow_id,
            claim.job.tre.slug,
            claim.job.request.project.identifier,
        ),
        "lease": (
            lease.agent_id,
            lease.fencing_token,
            lease.attempts,
            lease.started_at,
            lease.finished_at,
            lease.cancel_requested_at,
            lease.cancel_reason,
            lease.message,
            lease.expires_at - lease.claimed_at,
            lease.heartbeat_at == lease.claimed_at,
        ),
        "job": job.status,
        "event": (
            event.actor_kind,
            event.actor_id,
            event.actor_label,
            event.verb,
            event.object_type,
            event.tre_slug,
            event.project_identifier,
            event.before,
            event.after,
            event.message,
        ),
    }


@pytest.fixture
def jobs(registry, alice, olivia, crate_zip, django_capture_on_commit_callbacks):
    made = queued_jobs(
        2 * len(TITLES), registry, alice, olivia, crate_zip, django_capture_on_commit_callbacks
    )
    for n, job in enumerate(made):
        Request.objects.filter(pk=job.request_id).update(title=TITLES[n // 2])
    return made


def test_the_statement_claims_as_the_steps_do(jobs, tre_a, olivia):
    agent = dispatch.agent_for_token(issue(tre_a, olivia)[1])  # as the API finds it
    db = transaction.get_connection()
    for _ in TITLES:  # jobs come in claiming order: each title once by each way
        by_statement = claiming._claim_in_one_statement(db, agent, 120)
        in_steps = claiming._claim_in_steps(db, agent, 120)
        assert by_statement.job.request.title == in_steps.job.request.title
        assert _shape(by_statement) == _shape(in_steps)
    assert claiming._claim_in_one_statement(db, agent, 120) is None
    assert verify_chain() is None


def test_a_second_claim_of_a_requeued_job_takes_the_next_fencing_token(jobs, tre_a, olivia):
    agent, _ = issue(tre_a, olivia)
    db = transaction.get_connection()
    first = claiming._claim_in_one_statement(db, agent, 120)
    report = dispatch.expire_leases(now=timezone.now() + timedelta(seconds=600))
    assert first.job.pk in report.requeued
    Job.objects.exclude(pk=first.job.pk).filter(status=Job.Status.QUEUED).update(
        status_changed_at=timezone.now() + timedelta(days=1)
    )
    again = claiming._claim_in_one_statement(db, agent, 120)
    assert again.job.pk == first.job.pk
    assert (again.lease.fencing_token, again.lease.attempts) == (2, 2)
    assert again.lease.pk == first.lease.pk
    assert _shape(again)["event"][-2] == {"status": "claimed", "fencing_token": 2, "attempt": 2}
    assert verify_chain() is None


def test_a_claim_is_one_statement(jobs, tre_a, olivia, django_assert_num_queries):
    agent, _ = issue(tre_a, olivia)
    claiming.claim_one(agent, lease_seconds=120)
    with django_assert_num_queries(1):
        assert claiming.claim_one(agent, lease_seconds=120) is not None

"""Dispatch under real concurrency, on PostgreSQL: many claimers, racing sweeps, racing uploads.

Every thread has its own database connection, so these races are real ones. SQLite serialises
writers, so there is nothing to race there: the module is skipped unless the database is PostgreSQL.
"""

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from django.db import connections
from django.utils import timezone

from crates import dispatch
from crates.models import Job, JobLease, ResultUpload
from portal.audit import AuditEvent, verify_chain
from tests.dispatch_helpers import bearer, issue, queued_jobs, results_crate

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connections["default"].vendor != "postgresql", reason="needs PostgreSQL"),
]

S = Job.Status


def in_threads(count, work):
    """Run work(index) in `count` threads started together; each closes its own connection."""
    barrier = threading.Barrier(count)

    def run(index):
        try:
            barrier.wait()
            return work(index)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


@pytest.fixture
def many_jobs(registry, alice, olivia, crate_zip, django_capture_on_commit_callbacks):
    return queued_jobs(10, registry, alice, olivia, crate_zip, django_capture_on_commit_callbacks)


@pytest.fixture
def queue_of_40(registry, alice, olivia, crate_zip, django_capture_on_commit_callbacks):
    return queued_jobs(40, registry, alice, olivia, crate_zip, django_capture_on_commit_callbacks)


def test_twenty_concurrent_claimers_never_claim_a_job_twice(queue_of_40, tre_a, olivia):
    """20 agents drain a queue of 40 at once, each claim the ORM's select_for_update(skip_locked)."""
    many_jobs = queue_of_40
    agents = [issue(tre_a, olivia, name=f"agent-{n}")[0] for n in range(20)]

    def drain(index):
        mine = []
        while (claim := dispatch.claim_next(agents[index])) is not None:
            mine.append(claim.job.pk)
        return mine

    claimed = [job for jobs in in_threads(len(agents), drain) for job in jobs]

    assert sorted(claimed) == sorted(job.pk for job in many_jobs)
    assert set(JobLease.objects.values_list("fencing_token", "attempts")) == {(1, 1)}
    assert AuditEvent.objects.filter(verb="job.claimed").count() == len(many_jobs)
    assert not Job.objects.filter(status=S.QUEUED).exists()
    assert verify_chain() is None


def test_many_agents_claiming_over_http_share_the_queue_without_overlap(
    many_jobs, tre_a, olivia, live_server
):
    secrets = [issue(tre_a, olivia, name=f"agent-{n}")[1] for n in range(12)]
    url = f"{live_server.url}/api/v1/agent/claim/"

    def drain(index):
        mine = []
        with requests.Session() as session:
            session.headers.update(bearer(secrets[index]))
            while (response := session.post(url, json={"wait_seconds": 0}, timeout=30)).status_code == 200:
                mine.append(response.json()["id"])
            assert response.status_code == 204, response.text
        return mine

    claimed = [job for jobs in in_threads(len(secrets), drain) for job in jobs]

    assert sorted(claimed) == sorted(job.pk for job in many_jobs)
    assert AuditEvent.objects.filter(verb="job.claimed").count() == len(many_jobs)
    assert verify_chain() is None


def test_racing_expiry_sweeps_requeue_each_job_once(many_jobs, tre_a, olivia):
    agent, _ = issue(tre_a, olivia)
    while dispatch.claim_next(agent) is not None:
        pass
    later = timezone.now() + timedelta(seconds=dispatch.lease_seconds() + 1)

    reports = in_threads(4, lambda index: dispatch.expire_leases(now=later))

    requeued = [job for report in reports for job in report.requeued]
    assert sorted(requeued) == sorted(job.pk for job in many_jobs)
    assert AuditEvent.objects.filter(verb="job.requeued").count() == len(many_jobs)
    assert Job.objects.filter(status=S.QUEUED).count() == len(many_jobs)


def test_a_heartbeat_racing_the_sweep_either_keeps_or_loses_the_lease_cleanly(many_jobs, tre_a, olivia):
    agent, _ = issue(tre_a, olivia)
    claims = []
    while (claim := dispatch.claim_next(agent)) is not None:
        claims.append(claim)
    JobLease.objects.update(expires_at=timezone.now() - timedelta(milliseconds=1))
    JobLease.objects.filter(job__in=[c.job for c in claims]).update(
        expires_at=timezone.now() + timedelta(seconds=1)
    )

    def race(index):
        if index % 2:
            return dispatch.expire_leases(now=timezone.now() + timedelta(seconds=2)).requeued
        kept = []
        for claim in claims:
            try:
                dispatch.heartbeat(agent, claim.job.pk, fencing_token=claim.lease.fencing_token)
                kept.append(claim.job.pk)
            except dispatch.LeaseConflict:
                pass
        return kept

    in_threads(2, race)
    for claim in claims:
        job = Job.objects.select_related("lease").get(pk=claim.job.pk)
        requeues = AuditEvent.objects.filter(verb="job.requeued", object_id=str(job.pk)).count()
        if job.status == S.QUEUED:
            assert (requeues, job.lease.expires_at) == (1, None)
        else:
            assert (job.status, requeues) == (S.CLAIMED, 0)
            assert job.lease.expires_at > timezone.now()


def test_racing_uploads_with_one_key_keep_exactly_one_result(job_running, tmp_path):
    job, agent, token = job_running
    data = results_crate(job, tmp_path / "results.zip").read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()

    def send(index):
        import io

        upload, replayed = dispatch.receive_results(
            agent,
            job.pk,
            fencing_token=token,
            idempotency_key="results-1",
            declared_sha256=sha256,
            stream=io.BytesIO(data),
            length=len(data),
        )
        return upload.pk, replayed

    answers = in_threads(4, send)

    assert len({pk for pk, _ in answers}) == 1
    assert sorted(replayed for _, replayed in answers) == [False, True, True, True]
    assert ResultUpload.objects.get().status == "verified"
    assert AuditEvent.objects.filter(verb="job.outputs_returned").count() == 1


@pytest.fixture
def job_running(registry, alice, olivia, crate_zip, django_capture_on_commit_callbacks, tre_a):
    (job,) = queued_jobs(1, registry, alice, olivia, crate_zip, django_capture_on_commit_callbacks)
    agent, _ = issue(tre_a, olivia)
    claim = dispatch.claim_next(agent)
    dispatch.report_status(agent, job.pk, fencing_token=claim.lease.fencing_token, status="running")
    return job, agent, claim.lease.fencing_token


def test_concurrent_audit_appends_keep_one_chain():
    """Each append locks the chain's head row in its transaction: racing writers still make one unbroken chain."""
    from portal import audit

    def append(index):
        for n in range(25):
            audit.record("thing.happened", by=None, object_type="thing", object_id=f"{index}-{n}")

    in_threads(8, append)
    assert AuditEvent.objects.count() == 200
    assert len(set(AuditEvent.objects.values_list("prev_hash", flat=True))) == 200
    assert verify_chain() is None

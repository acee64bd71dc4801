"""The TRE-agent API: tokens, claims, leases and fencing, downloads, uploads, cancellation, reconcile."""

import hashlib
import io
import time
import zipfile
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from agent.demo_workflows import AGE_SEX_TABLE, pack_workflow_crate
from crates import dispatch, dispatch_tasks
from crates.models import Agent, Job, JobLease, ResultUpload
from portal import services as portal_services
from portal.audit import AuditEvent
from tests import factories
from tests.dispatch_helpers import (
    attach_workflow_crate,
    bearer,
    issue,
    queued_job,
    queued_jobs,
    results_crate,
    zip_names,
)

pytestmark = pytest.mark.django_db

S = Job.Status


@pytest.fixture
def job(registry, alice, olivia, crate_zip, django_capture_on_commit_callbacks):
    return queued_job(registry, alice, olivia, crate_zip, django_capture_on_commit_callbacks)


@pytest.fixture
def agent(tre_a, olivia):
    return issue(tre_a, olivia)


def claim(client, secret, wait=0):
    return client.post(
        reverse("api_agent_claim"),
        {"wait_seconds": wait},
        content_type="application/json",
        headers=bearer(secret),
    )


def post(client, secret, name, job_id, data):
    return client.post(
        reverse(name, args=[job_id]), data, content_type="application/json", headers=bearer(secret)
    )


def download(client, secret, name, job_id, token):
    return client.get(reverse(name, args=[job_id]), headers={**bearer(secret), "Fencing-Token": str(token)})


def upload(client, secret, job_id, token, data, *, key="results-1", sha256=None):
    return client.put(
        reverse("api_agent_results", args=[job_id]),
        data,
        content_type="application/zip",
        headers={
            **bearer(secret),
            "Fencing-Token": str(token),
            "Idempotency-Key": key,
            "X-Content-SHA256": sha256 or hashlib.sha256(data).hexdigest(),
        },
    )


def claimed(client, secret, job_id):
    response = claim(client, secret)
    assert response.status_code == 200, response.content
    assert response.json()["id"] == job_id
    return response.json()


def running(client, secret, job_id):
    body = claimed(client, secret, job_id)
    response = post(
        client,
        secret,
        "api_agent_status",
        job_id,
        {"fencing_token": body["fencing_token"], "status": "running"},
    )
    assert response.status_code == 200, response.content
    return body["fencing_token"]


# --- Tokens ------------------------------------------------------------------------------------


def test_a_token_is_shown_once_stored_hashed_and_audited(client, tre_a, olivia):
    agent, secret = issue(tre_a, olivia)

    assert secret.startswith("fsa_") and len(secret) > 40
    assert agent.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(Agent.objects.values().get())
    assert claim(client, secret).status_code == 204
    event = AuditEvent.objects.get(verb="agent.created")
    assert (event.actor_label, event.tre_slug, event.after["token_prefix"]) == (
        olivia.email,
        "tre-a",
        secret[:12],
    )
    agent.refresh_from_db()
    assert agent.last_seen_at is not None


def test_rotation_replaces_the_token_and_revocation_ends_it(client, tre_a, olivia):
    agent, old = issue(tre_a, olivia)
    new = dispatch.rotate_agent_token(agent, by=olivia)

    stale = claim(client, old)
    assert stale["Content-Type"] == "application/problem+json"
    assert stale.json() == {
        "type": "about:blank",
        "title": "Unauthorized",
        "status": 401,
        "detail": "The agent token is unknown or revoked.",
        "instance": "/api/v1/agent/claim/",
        "code": "authentication_failed",
    }
    assert claim(client, new).status_code == 204
    dispatch.revoke_agent(agent, by=olivia, reason="Machine retired.")
    refused = claim(client, new)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "The agent token is unknown or revoked."
    assert list(AuditEvent.objects.filter(object_type="crates.agent").values_list("verb", flat=True)) == [
        "agent.created",
        "agent.token_rotated",
        "agent.revoked",
    ]


def test_only_the_tres_officers_manage_its_agents(tre_a, tre_b, olivia, alice, oscar):
    with pytest.raises(PermissionDenied):
        issue(tre_a, alice)
    with pytest.raises(PermissionDenied):
        issue(tre_a, oscar)
    agent, _ = issue(tre_b, oscar)
    with pytest.raises(PermissionDenied):
        dispatch.revoke_agent(agent, by=olivia)
    with pytest.raises(ValidationError):
        issue(tre_b, oscar, name="AGENT-1")


def test_requests_without_an_agent_token_are_refused(client, alice, job):
    _, personal = portal_services.create_token(alice, "scripts", by=alice, days=1)
    assert claim(client, personal).status_code == 401
    assert "needs an agent token" in claim(client, personal).json()["detail"]
    assert client.post(reverse("api_agent_claim")).status_code == 401
    assert claim(client, "fsa_not-a-real-token").status_code == 401
    client.force_login(alice)
    assert client.post(reverse("api_agent_claim")).status_code == 401
    job.refresh_from_db()
    assert job.status == S.QUEUED


def test_an_agent_of_another_tre_sees_neither_the_queue_nor_the_job(client, job, agent, tre_b, oscar):
    _, secret = agent
    _, other = issue(tre_b, oscar)
    assert claim(client, other).status_code == 204
    token = claimed(client, secret, job.pk)["fencing_token"]
    for name in ("api_agent_crate", "api_agent_workflow"):
        refused = download(client, other, name, job.pk, token)
        assert refused.status_code == 404
        assert refused.json()["detail"] == f"There is no job {job.pk} at tre-b."
        assert refused.json()["code"] == "job_not_found" and refused.json()["status"] == 404
    assert post(client, other, "api_agent_heartbeat", job.pk, {"fencing_token": token}).status_code == 404


# --- Claiming ----------------------------------------------------------------------------------


def test_a_claim_leases_the_job_with_a_fencing_token(client, job, agent, registry):
    _, secret = agent
    body = claimed(client, secret, job.pk)

    assert body["status"] == "claimed"
    assert (body["fencing_token"], body["attempt"], body["max_attempts"]) == (1, 1, 3)
    assert body["tre"] == "tre-a"
    assert body["external_identifier"] == job.version.external_identifier
    assert body["workflow"]["id"] == registry["workflow"].workflow_id
    assert body["crate_url"].endswith(f"/api/v1/agent/jobs/{job.pk}/crate/")
    lease = JobLease.objects.get(job=job)
    assert lease.expires_at > timezone.now() + timedelta(seconds=100)
    event = AuditEvent.objects.filter(verb="job.claimed").get()
    assert event.actor_kind == "agent"
    assert event.after == {"status": "claimed", "fencing_token": 1, "attempt": 1}
    assert claim(client, secret).status_code == 204


def test_a_claim_waits_for_a_job_then_answers_that_there_is_none(client, agent, settings):
    _, secret = agent
    settings.PORTAL_AGENT_CLAIM_POLL_SECONDS = 0.05
    started = time.monotonic()
    assert claim(client, secret, wait=0.4).status_code == 204
    assert 0.35 < time.monotonic() - started < 3
    settings.PORTAL_AGENT_CLAIM_MAX_WAIT_SECONDS = 0.1
    started = time.monotonic()
    assert claim(client, secret, wait=30).status_code == 204
    assert time.monotonic() - started < 2
    bad = claim(client, secret, wait=-1)
    assert bad.status_code == 400
    assert "wait_seconds" in bad.json()["errors"]


def test_a_paused_tre_hands_out_no_jobs(client, job, agent, tre_a, olivia):
    _, secret = agent
    portal_services.pause_tre(tre_a, by=olivia, reason="Maintenance")
    assert claim(client, secret).status_code == 204


def test_claiming_costs_the_same_number_of_queries_however_long_the_queue(
    client,
    agent,
    registry,
    alice,
    olivia,
    crate_zip,
    django_capture_on_commit_callbacks,
    django_assert_num_queries,
    django_assert_max_num_queries,
):
    _, secret = agent
    jobs = queued_jobs(3, registry, alice, olivia, crate_zip, django_capture_on_commit_callbacks)
    claimed(client, secret, jobs[0].pk)
    with django_assert_max_num_queries(15) as first:
        claimed(client, secret, jobs[1].pk)
    with django_assert_num_queries(len(first.captured_queries)):
        claimed(client, secret, jobs[2].pk)


# --- Heartbeats, status ------------------------------------------------------------------------


def test_a_heartbeat_renews_the_lease(client, job, agent, django_assert_max_num_queries):
    _, secret = agent
    token = claimed(client, secret, job.pk)["fencing_token"]
    JobLease.objects.filter(job=job).update(expires_at=timezone.now() + timedelta(seconds=5))
    with django_assert_max_num_queries(3):
        response = post(
            client, secret, "api_agent_heartbeat", job.pk, {"fencing_token": token, "message": "50%"}
        )
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["fencing_token"], body["cancel_requested"]) == ("claimed", token, False)
    lease = JobLease.objects.get(job=job)
    assert lease.expires_at > timezone.now() + timedelta(seconds=100)
    assert lease.message == "50%"


def test_status_reports_move_the_job_and_repeat_harmlessly(client, job, agent):
    _, secret = agent
    token = claimed(client, secret, job.pk)["fencing_token"]
    started = "2026-01-01T10:00:00Z"
    for _ in range(2):
        response = post(
            client,
            secret,
            "api_agent_status",
            job.pk,
            {"fencing_token": token, "status": "running", "started_at": started},
        )
        assert response.status_code == 200
    assert AuditEvent.objects.filter(verb="job.started").count() == 1
    refused = post(
        client, secret, "api_agent_status", job.pk, {"fencing_token": token, "status": "cancelled"}
    )
    assert refused.status_code == 409
    assert refused.json()["detail"] == f"Nobody asked to cancel job {job.pk}; report it as failed instead."
    early = post(client, secret, "api_agent_status", job.pk, {"fencing_token": token, "status": "completed"})
    assert early.status_code == 409
    assert "Upload the results crate" in early.json()["detail"]
    failed = {"fencing_token": token, "status": "failed", "message": "the workflow failed: cwltool exit 1"}
    assert post(client, secret, "api_agent_status", job.pk, failed).status_code == 200
    assert post(client, secret, "api_agent_status", job.pk, failed).status_code == 200
    job.refresh_from_db()
    lease = job.lease
    assert job.status == S.FAILED
    assert (lease.started_at.isoformat(), lease.message) == (
        "2026-01-01T10:00:00+00:00",
        "the workflow failed: cwltool exit 1",
    )
    assert lease.finished_at is not None and lease.expires_at is None
    event = AuditEvent.objects.get(verb="job.failed")
    assert event.message == "the workflow failed: cwltool exit 1"
    bad = post(client, secret, "api_agent_status", job.pk, {"fencing_token": token, "status": "released"})
    assert bad.status_code == 400


# --- Downloads ---------------------------------------------------------------------------------


def test_the_crate_download_streams_the_job_crate_with_its_checksum(client, job, agent):
    _, secret = agent
    token = claimed(client, secret, job.pk)["fencing_token"]
    response = download(client, secret, "api_agent_crate", job.pk, token)

    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert response["X-Content-SHA256"] == hashlib.sha256(body).hexdigest()
    assert response["Content-Length"] == str(len(body))
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith("data/ro-crate-metadata.json"))
        assert "https://w3id.org/shp#SignOff" in archive.read(metadata).decode()
    assert AuditEvent.objects.filter(verb="job.crate_downloaded", actor_kind="agent").count() == 1
    missing = client.get(reverse("api_agent_crate", args=[job.pk]), headers=bearer(secret))
    assert missing.status_code == 400
    assert missing.json()["code"] == "fencing_token_missing"


def test_the_workflow_download_serves_the_approved_crate(client, job, agent, registry, tmp_path):
    _, secret = agent
    workflow = attach_workflow_crate(
        registry["workflow"], pack_workflow_crate(AGE_SEX_TABLE, tmp_path / "wf.zip").path
    )
    token = claimed(client, secret, job.pk)["fencing_token"]
    response = download(client, secret, "api_agent_workflow", job.pk, token)

    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert hashlib.sha256(body).hexdigest() == response["X-Content-SHA256"] == workflow.sha256
    assert "ro-crate-metadata.json" in zip_names(io.BytesIO(body))


def test_jobs_without_an_approved_workflow_are_refused_clearly(client, job, agent, registry, tre_a, olivia):
    _, secret = agent
    token = claimed(client, secret, job.pk)["fencing_token"]
    no_crate = download(client, secret, "api_agent_workflow", job.pk, token)
    assert no_crate.status_code == 404
    assert no_crate.json()["detail"].startswith("No Workflow RO-Crate is stored")
    approval = registry["workflow"].approvals.get(tre=tre_a)
    portal_services.decide_workflow(approval, "revoked", "Superseded", by=olivia)
    refused = download(client, secret, "api_agent_workflow", job.pk, token)
    assert refused.status_code == 403
    assert {k: refused.json()[k] for k in ("detail", "code", "status")} == {
        "detail": f"{registry['workflow']} is not on TRE A's list of approved workflows.",
        "code": "workflow_not_approved",
        "status": 403,
    }
    Job.objects.filter(pk=job.pk).update(workflow=None)
    unmapped = download(client, secret, "api_agent_workflow", job.pk, token)
    assert "not in the registry" in unmapped.json()["detail"]
    assert dispatch.reconcile(Agent.objects.get())[0].workflow_approved is False


# --- Results -----------------------------------------------------------------------------------


def test_a_verified_upload_returns_the_outputs_and_a_retry_returns_the_first_result(
    client, job, agent, tmp_path
):
    _, secret = agent
    token = running(client, secret, job.pk)
    data = results_crate(job, tmp_path / "results.zip").read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()

    first = upload(client, secret, job.pk, token, data)
    assert first.status_code == 201, first.content
    again = upload(client, secret, job.pk, token, data)
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert first.json()["job_status"] == "outputs_returned"
    stored = ResultUpload.objects.get()
    assert (stored.status, stored.sha256, stored.size) == ("verified", sha256, len(data))
    with default_storage.open(stored.file.name) as kept:
        assert kept.read() == data
    assert any(e.get("@id") == "outputs/counts.csv" for e in stored.metadata["@graph"])
    job.refresh_from_db()
    assert job.status == S.OUTPUTS_RETURNED
    assert job.lease.finished_at is not None
    done = {"fencing_token": token, "status": "completed", "message": "1 output"}
    assert post(client, secret, "api_agent_status", job.pk, done).status_code == 200
    assert AuditEvent.objects.filter(verb="job.outputs_returned").count() == 1
    assert AuditEvent.objects.filter(verb="job.execution_reported").count() == 1


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("checksum", 422, "checksum_mismatch"),
        ("not a zip", 422, "malformed_crate"),
        ("another crate", 422, "wrong_crate"),
        ("no key", 400, "bad_upload_request"),
        ("too large", 413, "upload_too_large"),
    ],
)
def test_bad_uploads_are_refused_and_keep_nothing(client, job, agent, tmp_path, settings, case, status, code):
    _, secret = agent
    token = running(client, secret, job.pk)
    data = results_crate(job, tmp_path / "results.zip").read_bytes()
    kwargs = {}
    if case == "checksum":
        kwargs["sha256"] = "0" * 64
    elif case == "not a zip":
        data = b"this is not a zip file" * 10
    elif case == "another crate":
        other = "urn:uuid:00000000-0000-4000-8000-000000000000"
        data = results_crate(job, tmp_path / "other.zip", external_identifier=other).read_bytes()
    elif case == "no key":
        kwargs["key"] = ""
    elif case == "too large":
        settings.PORTAL_AGENT_RESULTS_MAX_BYTES = len(data) - 1

    response = upload(client, secret, job.pk, token, data, **kwargs)
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert response.json()["detail"]
    assert not ResultUpload.objects.filter(status="verified").exists()
    assert not default_storage.exists("results") or not default_storage.listdir("results")[1]
    job.refresh_from_db()
    assert job.status == S.RUNNING
    if status == 422:
        rejected = ResultUpload.objects.get()
        assert (rejected.status, rejected.file.name) == ("rejected", "")
        assert AuditEvent.objects.filter(verb="job.results_rejected").count() == 1


def test_a_rejected_upload_may_be_retried_with_the_same_key(client, job, agent, tmp_path):
    _, secret = agent
    token = running(client, secret, job.pk)
    data = results_crate(job, tmp_path / "results.zip").read_bytes()
    assert (
        upload(client, secret, job.pk, token, data[:-10], sha256=hashlib.sha256(data).hexdigest()).status_code
        == 422
    )
    assert upload(client, secret, job.pk, token, data).status_code == 201
    assert ResultUpload.objects.get().status == "verified"


# --- Leases, fencing, expiry -------------------------------------------------------------------


def test_an_expired_lease_requeues_the_job_and_fences_off_the_old_agent(
    client, job, agent, tre_a, olivia, tmp_path, settings
):
    _, first = agent
    _, second = issue(tre_a, olivia, name="agent-2")
    token = running(client, first, job.pk)
    data = results_crate(job, tmp_path / "results.zip").read_bytes()
    late = timezone.now() + timedelta(seconds=dispatch.lease_seconds() + 1)

    assert dispatch_tasks.expire_leases() == {"requeued": [], "failed": []}
    report = dispatch.expire_leases(now=late)
    assert report.requeued == [job.pk]
    requeued = AuditEvent.objects.get(verb="job.requeued")
    assert requeued.actor_kind == "system"
    assert "expired" in requeued.message and "attempt 1 of 3" in requeued.message
    assert claimed(client, second, job.pk)["fencing_token"] == token + 1

    for response in (
        post(client, first, "api_agent_heartbeat", job.pk, {"fencing_token": token}),
        post(client, first, "api_agent_status", job.pk, {"fencing_token": token, "status": "failed"}),
        upload(client, first, job.pk, token, data),
        download(client, first, "api_agent_crate", job.pk, token),
    ):
        assert response.status_code == 409, response.content
        assert response.json()["code"] == "lease_conflict"
    stale = post(client, second, "api_agent_heartbeat", job.pk, {"fencing_token": token})
    assert stale.json()["code"] == "stale_fencing_token"
    assert not ResultUpload.objects.exists()
    job.refresh_from_db()
    assert (job.status, job.lease.fencing_token, job.lease.attempts) == (S.CLAIMED, token + 1, 2)


def test_a_lapsed_lease_stays_with_its_agent_until_the_sweep_ends_it(client, job, agent):
    _, secret = agent
    token = claimed(client, secret, job.pk)["fencing_token"]
    JobLease.objects.filter(job=job).update(expires_at=timezone.now() - timedelta(seconds=1))
    renewed = post(client, secret, "api_agent_heartbeat", job.pk, {"fencing_token": token})
    assert renewed.status_code == 200
    assert JobLease.objects.get(job=job).expires_at > timezone.now()

    JobLease.objects.filter(job=job).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert dispatch.expire_leases().requeued == [job.pk]
    refused = post(client, secret, "api_agent_heartbeat", job.pk, {"fencing_token": token})
    assert refused.status_code == 409
    assert refused.json()["detail"] == f"Job {job.pk} is queued for the tre agent, not leased for work."
    running_ = post(client, secret, "api_agent_status", job.pk, {"fencing_token": token, "status": "running"})
    assert running_.status_code == 409


def test_a_job_that_keeps_losing_its_lease_fails_after_the_last_attempt(client, job, agent, settings):
    _, secret = agent
    settings.PORTAL_AGENT_MAX_ATTEMPTS = 2
    for attempt in (1, 2):
        assert claimed(client, secret, job.pk)["attempt"] == attempt
        dispatch.expire_leases(now=timezone.now() + timedelta(seconds=dispatch.lease_seconds() + 1))
    job.refresh_from_db()
    assert job.status == S.FAILED
    assert job.lease.finished_at is not None
    failed = AuditEvent.objects.get(verb="job.failed")
    assert failed.actor_kind == "system"
    assert "used all 2 attempts" in failed.message


def test_revoking_an_agent_requeues_what_it_holds(client, job, agent, olivia):
    holder, secret = agent
    claimed(client, secret, job.pk)
    dispatch.revoke_agent(holder, by=olivia)
    job.refresh_from_db()
    assert job.status == S.QUEUED
    assert "was revoked" in AuditEvent.objects.get(verb="job.requeued").message


# --- Cancellation ------------------------------------------------------------------------------


def test_a_queued_job_is_cancelled_at_once(job, alice):
    dispatch.request_cancel(job, by=alice, reason="Wrong dataset")
    job.refresh_from_db()
    assert job.status == S.CANCELLED


def test_a_running_job_is_cancelled_when_the_agent_acknowledges(
    client, job, agent, alice, olivia, tmp_path, pat
):
    _, secret = agent
    token = running(client, secret, job.pk)
    with pytest.raises(ValidationError):
        dispatch.request_cancel(job, by=alice, reason=" ")
    with pytest.raises(PermissionDenied):
        dispatch.request_cancel(job, by=pat, reason="Not mine")
    dispatch.request_cancel(job, by=alice, reason="Wrong dataset")
    dispatch.request_cancel(job, by=alice, reason="Asked twice")

    beat = post(client, secret, "api_agent_heartbeat", job.pk, {"fencing_token": token}).json()
    assert (beat["status"], beat["cancel_requested"], beat["cancel_reason"]) == (
        "running",
        True,
        "Wrong dataset",
    )
    data = results_crate(job, tmp_path / "results.zip").read_bytes()
    late = upload(client, secret, job.pk, token, data)
    assert late.status_code == 409
    assert "was cancelled" in late.json()["detail"]
    ack = post(client, secret, "api_agent_status", job.pk, {"fencing_token": token, "status": "cancelled"})
    assert ack.status_code == 200
    job.refresh_from_db()
    assert job.status == S.CANCELLED
    assert AuditEvent.objects.filter(verb="job.cancel_requested").count() == 1
    assert AuditEvent.objects.get(verb="job.cancelled").actor_kind == "agent"


def test_a_cancelled_job_whose_agent_went_silent_fails_instead_of_running_again(client, job, agent, olivia):
    _, secret = agent
    claimed(client, secret, job.pk)
    dispatch.request_cancel(job, by=olivia, reason="The agreement was withdrawn.")
    dispatch.expire_leases(now=timezone.now() + timedelta(seconds=dispatch.lease_seconds() + 1))
    job.refresh_from_db()
    assert job.status == S.FAILED
    assert "had been cancelled" in job.lease.message


# --- Reconcile ---------------------------------------------------------------------------------


def test_reconcile_lists_exactly_the_jobs_the_agent_holds(
    client,
    agent,
    registry,
    alice,
    olivia,
    crate_zip,
    django_capture_on_commit_callbacks,
    django_assert_num_queries,
):
    _, secret = agent
    jobs = queued_jobs(3, registry, alice, olivia, crate_zip, django_capture_on_commit_callbacks)
    tokens = [claimed(client, secret, job.pk)["fencing_token"] for job in jobs[:2]]
    post(client, secret, "api_agent_status", jobs[1].pk, {"fencing_token": tokens[1], "status": "failed"})

    with django_assert_num_queries(3):
        response = client.get(reverse("api_agent_reconcile"), headers=bearer(secret))
    held = response.json()["jobs"]
    assert [(j["id"], j["status"], j["fencing_token"]) for j in held] == [(jobs[0].pk, "claimed", tokens[0])]
    assert held[0]["workflow"]["sha256"] == registry["workflow"].sha256
    claimed(client, secret, jobs[2].pk)
    with django_assert_num_queries(3):
        assert len(client.get(reverse("api_agent_reconcile"), headers=bearer(secret)).json()["jobs"]) == 2


# --- Pages and schema --------------------------------------------------------------------------


def test_officers_issue_rotate_and_revoke_tokens_on_the_agents_page(client, tre_a, olivia, alice):
    url = reverse("tre_agents", args=[tre_a.slug])
    client.force_login(alice)
    assert client.get(url).status_code == 403
    client.force_login(olivia)
    assert "No agents yet" in client.get(url).content.decode()

    page = client.post(url, {"name": "sdb-runner-1"}).content.decode()
    agent = Agent.objects.get()
    secret = page.split('id="new-token">')[1].split("<")[0]
    assert agent.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in client.get(url).content.decode()
    duplicate = client.post(url, {"name": "SDB-runner-1"}).content.decode()
    assert "already has an agent called" in duplicate

    rotated = client.post(reverse("agent_rotate", args=[agent.pk])).content.decode()
    new_secret = rotated.split('id="new-token">')[1].split("<")[0]
    assert new_secret != secret
    response = client.post(reverse("agent_revoke", args=[agent.pk]), {"reason": "Retired"})
    assert response.url == url
    agent.refresh_from_db()
    assert agent.revoked_at is not None
    assert "Revoked" in client.get(url).content.decode()


def test_the_agents_page_warns_about_quiet_agents_and_stuck_jobs(
    client, job, agent, tre_a, olivia, settings, django_assert_max_num_queries
):
    holder, _ = agent
    client.force_login(olivia)
    url = reverse("tre_agents", args=[tre_a.slug])
    page = client.get(url).content.decode()
    assert "Agents not heard from" in page and "never connected" in page
    assert "Jobs waiting too long" not in page
    settings.PORTAL_AGENT_STUCK_SECONDS = 0
    Agent.objects.filter(pk=holder.pk).update(last_seen_at=timezone.now())
    for n in range(3):
        factories.UserFactory()
        issue(tre_a, olivia, name=f"extra-{n}")
    with django_assert_max_num_queries(12):
        page = client.get(url).content.decode()
    assert "Jobs waiting too long" in page
    assert f"Job {job.pk}" in page


def test_the_tre_page_warns_its_officers_when_agents_go_quiet(
    client, job, agent, tre_a, olivia, alice, settings
):
    url = reverse("tre_detail", args=[tre_a.slug])
    client.force_login(alice)
    assert "Agents not heard from" not in client.get(url).content.decode()
    client.force_login(olivia)
    page = client.get(url).content.decode()
    assert "Agents not heard from" in page and "never connected" in page
    settings.PORTAL_AGENT_STUCK_SECONDS = 0
    assert f"Job {job.pk}" in client.get(url).content.decode()
    Agent.objects.filter(pk=agent[0].pk).update(last_seen_at=timezone.now())
    settings.PORTAL_AGENT_STUCK_SECONDS = 3600
    quiet = client.get(url).content.decode()
    assert "Agents not heard from" not in quiet and "Jobs waiting too long" not in quiet


def test_the_openapi_schema_describes_the_agent_api(client):
    from drf_spectacular.validation import validate_schema

    schema = client.get(reverse("schema"), {"format": "json"}).json()
    validate_schema(schema)
    assert "agentToken" in schema["components"]["securitySchemes"]
    for path in ("claim/", "reconcile/", "jobs/{id}/heartbeat/", "jobs/{id}/status/", "jobs/{id}/results/"):
        assert f"/api/v1/agent/{path}" in schema["paths"]
    upload_op = schema["paths"]["/api/v1/agent/jobs/{id}/results/"]["put"]
    assert "application/zip" in upload_op["requestBody"]["content"]
    assert upload_op["security"] == [{"agentToken": []}]


def test_a_claim_carries_what_the_tre_approved_for_the_workflows_service(client, job, agent, registry):
    from portal.models import WorkflowApproval

    approved = {"profile": "default", "functions": ["meanDS"]}
    WorkflowApproval.objects.filter(workflow=registry["workflow"], tre=job.tre).update(
        service_settings=approved
    )
    _, secret = agent
    assert claimed(client, secret, job.pk)["workflow"]["settings"] == approved
    reconciled = client.get(reverse("api_agent_reconcile"), headers=bearer(secret)).json()
    assert reconciled["jobs"][0]["workflow"]["settings"] == approved


def test_the_review_page_cancels_a_running_job_by_asking_its_agent(client, job, agent, alice, cam):
    from reviews import services as review_services

    _, secret = agent
    running(client, secret, job.pk)
    client.force_login(cam)
    assert "Cancel this job" not in client.get(reverse("job_detail", args=[job.pk])).content.decode()
    client.force_login(alice)
    assert "Cancel this job" in client.get(reverse("job_detail", args=[job.pk])).content.decode()

    done = client.post(reverse("job_cancel", args=[job.pk]), {"reason": "Wrong cohort"}, follow=True)
    page = done.content.decode()
    assert "asked to stop" in page and "Cancellation was asked for: Wrong cohort" in page
    assert "Cancel this job" not in page
    job.refresh_from_db()
    assert job.status == S.RUNNING and job.lease.cancel_reason == "Wrong cohort"
    # A second request (from the API, say) changes nothing and is not an error.
    review_services.cancel(job, by=alice, reason="Again")
    assert AuditEvent.objects.filter(verb="job.cancel_requested").count() == 1


def test_the_claim_answer_is_what_its_declared_fields_give(
    rf, job, agent, registry, tre_a, olivia, alice, crate_zip, django_capture_on_commit_callbacks
):
    """The claim's answer is exactly the declared fields (which the OpenAPI schema describes), whatever
    the claim holds."""
    from rest_framework.request import Request

    from crates.agent_api import LeasedJobSerializer, WorkflowSerializer

    agent_row, _ = agent
    request = Request(rf.post("/", secure=True))
    first = dispatch.claim_next(agent_row)
    dispatch.request_cancel(first.job, by=olivia, reason="Wrong cohort")
    portal_services.decide_workflow(
        registry["workflow"].approvals.get(tre=tre_a), "revoked", "Old", by=olivia
    )
    more = queued_jobs(2, registry, alice, olivia, crate_zip, django_capture_on_commit_callbacks)
    Job.objects.filter(pk__in=[j.pk for j in more]).update(workflow=None)
    claims = [first, *dispatch.reconcile(agent_row), dispatch.claim_next(agent_row)]
    assert claims[-1] is not None and claims[-1].job.workflow is None
    assert any(c.lease.cancel_requested_at for c in claims) and any(c.job.workflow for c in claims)
    for claim in claims:
        serializer = LeasedJobSerializer(claim, context={"request": request})
        fast = serializer.data
        assert list(fast) == list(serializer.fields)
        assert fast["fencing_token"] == claim.lease.fencing_token and fast["id"] == claim.job.pk
        if fast["workflow"] is not None:  # the workflow is what the schema's WorkflowSerializer names
            assert list(fast["workflow"]) == list(WorkflowSerializer().fields)

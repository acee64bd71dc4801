"""The agent's HTTP client against a scripted stand-in for the portal: retries, refusals, transfers."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent.client import (
    ChecksumMismatch,
    LeasedJob,
    LeaseLost,
    NotAuthorized,
    PortalClient,
    Refused,
    Unavailable,
)

TOKEN = "fsa_test-token"
CRATE = b"PK\x03\x04 a crate's bytes " * 1000


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, data: object) -> Reply:
        return cls(status, json.dumps(data).encode(), {"Content-Type": "application/json"})


@dataclass
class Seen:
    method: str
    path: str
    headers: dict
    body: bytes


class Portal:
    """Answers each request with the next scripted reply for its path; records what it received."""

    def __init__(self) -> None:
        self.replies: dict[str, list[Reply]] = {}
        self.seen: list[Seen] = []
        portal = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                portal.seen.append(Seen(self.command, self.path, dict(self.headers), body))
                queue = portal.replies.get(self.path) or [Reply(500, b"unscripted")]
                reply = queue.pop(0) if len(queue) > 1 else queue[0]
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def script(self, path: str, *replies: Reply) -> None:
        self.replies[path] = list(replies)

    def calls(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]


@pytest.fixture
def portal() -> Iterator[Portal]:
    server = Portal()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def pauses() -> list[float]:
    return []


@pytest.fixture
def client(portal: Portal, pauses: list[float]) -> Iterator[PortalClient]:
    client = PortalClient(portal.url, TOKEN, timeout=5, retries=3, backoff=0.5, sleep=pauses.append)
    with client.session:
        yield client


def leased(portal: Portal, job_id: int = 7, *, sha256: str | None = None) -> dict:
    base = f"{portal.url}/api/v1/agent/jobs/{job_id}"
    return {
        "id": job_id,
        "status": "claimed",
        "request": 3,
        "title": "Counts",
        "project": "PRJ-1",
        "tre": "tre-a",
        "external_identifier": "urn:uuid:0f1e2d3c-4b5a-4697-8877-665544332211",
        "fencing_token": 4,
        "attempt": 1,
        "max_attempts": 3,
        "claimed_at": "2026-01-01T10:00:00Z",
        "lease_expires_at": "2026-01-01T10:02:00Z",
        "heartbeat_seconds": 40,
        "cancel_requested": False,
        "cancel_reason": "",
        "workflow": {
            "id": "https://workflows.example.org/counts",
            "version": "1",
            "name": "Counts",
            "sha256": sha256 or hashlib.sha256(CRATE).hexdigest(),
            "language": "cwl",
            "executor": "cwl",
        },
        "crate_url": f"{base}/crate/",
        "workflow_url": f"{base}/workflow/",
        "results_url": f"{base}/results/",
        "results_max_bytes": 1 << 20,
    }


def test_a_claim_sends_the_token_and_reads_the_lease(portal, client):
    portal.script("/api/v1/agent/claim/", Reply(204), Reply.json(200, leased(portal)))

    assert client.claim(wait=2) is None
    job = client.claim(wait=2)

    assert isinstance(job, LeasedJob)
    assert (job.id, job.fencing_token, job.heartbeat_seconds, job.workflow.version) == (7, 4, 40, "1")
    first = portal.calls("/api/v1/agent/claim/")[0]
    assert first.headers["Authorization"] == f"Bearer {TOKEN}"
    assert first.headers["User-Agent"].startswith("five-safes-agent/")
    assert json.loads(first.body) == {"wait_seconds": 2}


def test_transient_failures_are_retried_with_growing_jittered_pauses(portal, client, pauses):
    state = {
        "id": 7,
        "status": "running",
        "fencing_token": 4,
        "cancel_requested": True,
        "cancel_reason": "No",
    }
    portal.script(
        "/api/v1/agent/jobs/7/heartbeat/",
        Reply(503),
        Reply(502),
        Reply(429),
        Reply.json(200, state),
    )

    beat = client.heartbeat(7, 4)

    assert (beat.cancel_requested, beat.cancel_reason) == (True, "No")
    assert len(portal.calls("/api/v1/agent/jobs/7/heartbeat/")) == 4
    assert len(pauses) == 3
    assert all(0 <= pause <= ceiling for pause, ceiling in zip(pauses, [0.5, 1.0, 2.0], strict=True))


def test_a_claim_is_never_retried(portal, client):
    portal.script("/api/v1/agent/claim/", Reply(503))
    with pytest.raises(Unavailable):
        client.claim(wait=0)
    assert len(portal.calls("/api/v1/agent/claim/")) == 1


@pytest.mark.parametrize(
    ("status", "error"), [(409, LeaseLost), (401, NotAuthorized), (422, Refused), (404, Refused)]
)
def test_refusals_are_typed_and_not_retried(portal, client, status, error):
    detail = {"detail": "Fencing token 3 is stale.", "code": "stale_fencing_token"}
    portal.script("/api/v1/agent/jobs/7/status/", Reply.json(status, detail))

    with pytest.raises(error) as refused:
        client.report(7, 3, "failed", message="the workflow failed")

    assert (str(refused.value), refused.value.status, refused.value.code) == (
        "Fencing token 3 is stale.",
        status,
        "stale_fencing_token",
    )
    assert len(portal.calls("/api/v1/agent/jobs/7/status/")) == 1


def test_an_unreachable_portal_is_unavailable_after_every_retry(pauses):
    client = PortalClient("http://127.0.0.1:9", TOKEN, timeout=1, retries=2, sleep=pauses.append)
    with pytest.raises(Unavailable, match="after 3 attempt"):
        client.reconcile()
    assert len(pauses) == 2


def test_a_download_is_verified_and_a_corrupted_one_fetched_again(portal, client, tmp_path):
    path = "/api/v1/agent/jobs/7/workflow/"
    good = {"X-Content-SHA256": hashlib.sha256(CRATE).hexdigest()}
    portal.script(path, Reply(200, CRATE[:-1] + b"!", good), Reply(200, CRATE, good))

    download = client.download_workflow(LeasedJob.from_json(leased(portal)), tmp_path / "workflow.zip")

    assert download.path.read_bytes() == CRATE
    assert download.sha256 == hashlib.sha256(CRATE).hexdigest()
    assert [call.headers["Fencing-Token"] for call in portal.calls(path)] == ["4", "4"]
    assert not list(tmp_path.glob("*.partial"))


def test_a_download_that_never_matches_the_approved_checksum_leaves_nothing(portal, client, tmp_path):
    path = "/api/v1/agent/jobs/7/workflow/"
    portal.script(path, Reply(200, CRATE, {"X-Content-SHA256": hashlib.sha256(CRATE).hexdigest()}))
    job = LeasedJob.from_json(leased(portal, sha256="0" * 64))

    with pytest.raises(ChecksumMismatch, match="expected"):
        client.download_workflow(job, tmp_path / "workflow.zip")

    assert list(tmp_path.iterdir()) == []
    assert len(portal.calls(path)) == 4


def test_an_upload_streams_the_file_and_a_retry_reuses_its_key(portal, client, tmp_path):
    results = tmp_path / "results.zip"
    results.write_bytes(CRATE)
    sha256 = hashlib.sha256(CRATE).hexdigest()
    answer = {"id": 1, "job": 7, "status": "verified", "sha256": sha256}
    portal.script("/api/v1/agent/jobs/7/results/", Reply(502), Reply.json(201, answer))

    assert (
        client.upload_results(
            LeasedJob.from_json(leased(portal)), results, sha256=sha256, idempotency_key="k-1"
        )
        == answer
    )

    calls = portal.calls("/api/v1/agent/jobs/7/results/")
    assert [call.body for call in calls] == [CRATE, CRATE]
    assert {call.headers["Idempotency-Key"] for call in calls} == {"k-1"}
    assert calls[0].headers["X-Content-SHA256"] == sha256
    assert calls[0].headers["Content-Length"] == str(len(CRATE))
    assert calls[0].headers["Content-Type"] == "application/zip"


def test_the_client_needs_a_token():
    with pytest.raises(ValueError, match="empty"):
        PortalClient("http://portal.example.org", "  ")


def test_leased_jobs_round_trip_through_their_json(portal):
    job = LeasedJob.from_json(leased(portal))
    data = json.loads(json.dumps(job.__dict__, default=lambda value: value.__dict__))
    assert LeasedJob.from_json(data) == job
    assert Path(job.results_url).name == "results"


def test_the_workflows_approved_service_settings_reach_the_job(portal):
    data = leased(portal)
    assert LeasedJob.from_json(data).workflow.settings == {}
    data["workflow"]["settings"] = {"profile": "census", "functions": ["meanDS"]}
    job = LeasedJob.from_json(data)
    assert job.workflow.settings == {"profile": "census", "functions": ["meanDS"]}
    data["workflow"]["settings"] = ["meanDS"]
    with pytest.raises(ValueError, match="settings must be an object"):
        LeasedJob.from_json(data)

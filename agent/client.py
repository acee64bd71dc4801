"""The agent's HTTP client for the portal's TRE-agent API (``/api/v1/agent/``).

The agent only ever connects *out* to the portal. Every call authenticates with the agent's token
(``Authorization: Bearer fsa_...``). Transient failures (connection errors, timeouts, 429 and 5xx
answers) are retried with exponential backoff and full jitter; refusals are not retried and surface
as typed errors the runner acts on:

=====================  ===============================================================================
:class:`NotAuthorized`  401: the token is unknown or revoked; the agent stops
:class:`LeaseLost`      409: the fencing token is stale or the lease has ended; stop working on the job
:class:`Refused`        any other 4xx (bad request, job not found, upload too large or rejected)
:class:`Unavailable`    the portal could not be reached after every retry
=====================  ===============================================================================

Retrying is safe because the API is idempotent where it matters: status reports repeat harmlessly,
downloads are reads, and uploads carry an ``Idempotency-Key``. Claims are the exception (a claim whose
answer was lost leaves a job leased to this agent), so :meth:`PortalClient.claim` is not retried; the
runner reconciles after a failed claim instead.

Downloads and uploads stream in chunks and are checked against their SHA-256: a download is written to
``<dest>.partial``, hashed on the way, and renamed into place only when the checksum matches.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

import agent

__all__ = [
    "ChecksumMismatch",
    "Download",
    "LeaseLost",
    "LeaseState",
    "LeasedJob",
    "NotAuthorized",
    "PortalClient",
    "PortalError",
    "Refused",
    "Unavailable",
    "WorkflowInfo",
]

_CHUNK = 1 << 20
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class PortalError(Exception):
    """The portal refused a request, or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class NotAuthorized(PortalError):
    """401: the agent's token is unknown or revoked."""


class LeaseLost(PortalError):
    """409: the job is no longer this agent's (stale fencing token, lease expired or ended)."""


class Refused(PortalError):
    """Any other refusal (4xx); the message is the portal's ``detail``."""


class Unavailable(PortalError):
    """The portal could not be reached, or kept failing, after every retry."""


class ChecksumMismatch(PortalError):
    """A download did not match its declared SHA-256, after every retry."""


@dataclass(frozen=True)
class WorkflowInfo:
    """The approved workflow of a job, as the portal names it."""

    id: str
    version: str
    name: str
    sha256: str
    language: str
    executor: str
    #: What this TRE approved for the workflow's service (e.g. a DataSHIELD profile and its functions, or
    #: Bitfount pods): the ``settings`` object of the portal's workflow approval; empty for most executors.
    settings: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WorkflowInfo:
        settings = data.get("settings") or {}
        if not isinstance(settings, Mapping):
            raise ValueError("the workflow's settings must be an object")
        return cls(
            id=str(data["id"]),
            version=str(data["version"]),
            name=str(data.get("name", "")),
            sha256=str(data["sha256"]),
            language=str(data.get("language", "")),
            executor=str(data["executor"]),
            settings=dict(settings),
        )


@dataclass(frozen=True)
class LeasedJob:
    """A job leased to this agent (from a claim or from reconcile)."""

    id: int
    status: str
    title: str
    project: str
    tre: str
    external_identifier: str
    fencing_token: int
    attempt: int
    max_attempts: int
    lease_expires_at: str | None
    heartbeat_seconds: int
    cancel_requested: bool
    cancel_reason: str
    workflow: WorkflowInfo | None
    crate_url: str
    workflow_url: str
    results_url: str
    results_max_bytes: int
    #: The TRE's disclosure policy the agent must honour (see agent.policy); empty if none was sent.
    policy: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LeasedJob:
        workflow = data.get("workflow")
        return cls(
            id=int(data["id"]),
            status=str(data["status"]),
            title=str(data.get("title", "")),
            project=str(data.get("project", "")),
            tre=str(data.get("tre", "")),
            external_identifier=str(data.get("external_identifier", "")),
            fencing_token=int(data["fencing_token"]),
            attempt=int(data.get("attempt", 1)),
            max_attempts=int(data.get("max_attempts", 1)),
            lease_expires_at=data.get("lease_expires_at"),
            heartbeat_seconds=max(1, int(data.get("heartbeat_seconds", 30))),
            cancel_requested=bool(data.get("cancel_requested", False)),
            cancel_reason=str(data.get("cancel_reason", "")),
            workflow=WorkflowInfo.from_json(workflow) if workflow else None,
            crate_url=str(data["crate_url"]),
            workflow_url=str(data["workflow_url"]),
            results_url=str(data["results_url"]),
            results_max_bytes=int(data["results_max_bytes"]),
            policy=dict(data["policy"]) if isinstance(data.get("policy"), Mapping) else {},
        )


@dataclass(frozen=True)
class LeaseState:
    """The portal's view of a lease, returned by heartbeats and status reports."""

    id: int
    status: str
    fencing_token: int
    lease_expires_at: str | None
    cancel_requested: bool
    cancel_reason: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LeaseState:
        return cls(
            id=int(data["id"]),
            status=str(data["status"]),
            fencing_token=int(data["fencing_token"]),
            lease_expires_at=data.get("lease_expires_at"),
            cancel_requested=bool(data.get("cancel_requested", False)),
            cancel_reason=str(data.get("cancel_reason", "")),
        )


@dataclass(frozen=True)
class Download:
    """A downloaded file whose SHA-256 matched."""

    path: Path
    sha256: str
    size: int


class PortalClient:
    """The portal's agent API. ``base_url`` is the portal's address (``https://portal.example.org``)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        retries: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not token.strip():
            raise ValueError("the agent token is empty")
        self.base_url = base_url.rstrip("/") + "/"
        self._token = token.strip()
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self.session = session or requests.Session()
        self.session.headers.update(
            {
                "Authorization": f"Bearer {token.strip()}",
                "User-Agent": f"five-safes-agent/{agent.__version__}",
                "Accept": "application/json",
            }
        )

    def fork(self) -> PortalClient:
        """A client with the same settings and its own connection pool (one per thread)."""
        return PortalClient(
            self.base_url,
            self._token,
            timeout=self.timeout,
            retries=self.retries,
            backoff=self.backoff,
            max_backoff=self.max_backoff,
            sleep=self._sleep,
        )

    # --- the API ---------------------------------------------------------------------------------

    def claim(self, wait: float = 20.0) -> LeasedJob | None:
        """Claim the next queued job, waiting up to ``wait`` seconds; None when there is none.

        Not retried: if the answer is lost, the job may be leased to us, and only reconcile says so.
        """
        response = self._send(
            "POST",
            self._url("api/v1/agent/claim/"),
            json={"wait_seconds": wait},
            timeout=(self.timeout, wait + self.timeout),
            retry=False,
        )
        if response.status_code == 204:
            return None
        return LeasedJob.from_json(response.json())

    def reconcile(self) -> list[LeasedJob]:
        """Every job the portal believes this agent holds."""
        response = self._send("GET", self._url("api/v1/agent/reconcile/"))
        return [LeasedJob.from_json(item) for item in response.json()["jobs"]]

    def heartbeat(self, job_id: int, fencing_token: int, message: str | None = None) -> LeaseState:
        """Renew the lease; the answer says whether the job was cancelled."""
        body: dict[str, Any] = {"fencing_token": fencing_token}
        if message is not None:
            body["message"] = message
        response = self._send("POST", self._url(f"api/v1/agent/jobs/{job_id}/heartbeat/"), json=body)
        return LeaseState.from_json(response.json())

    def report(
        self,
        job_id: int,
        fencing_token: int,
        status: str,
        *,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        message: str = "",
    ) -> LeaseState:
        """Report ``running``, ``failed``, ``cancelled`` (acknowledging a cancellation) or ``completed``."""
        body: dict[str, Any] = {"fencing_token": fencing_token, "status": status, "message": message}
        if started_at is not None:
            body["started_at"] = started_at.isoformat()
        if finished_at is not None:
            body["finished_at"] = finished_at.isoformat()
        response = self._send("POST", self._url(f"api/v1/agent/jobs/{job_id}/status/"), json=body)
        return LeaseState.from_json(response.json())

    def download_crate(self, job: LeasedJob, dest: Path) -> Download:
        """The job's crate, checked against the SHA-256 the portal declares for it."""
        return self._download(job.crate_url, job.fencing_token, Path(dest), expected=None)

    def download_workflow(self, job: LeasedJob, dest: Path) -> Download:
        """The approved Workflow RO-Crate, checked against the checksum of the approved workflow."""
        if job.workflow is None:
            raise Refused(f"job {job.id} has no approved workflow to download")
        return self._download(job.workflow_url, job.fencing_token, Path(dest), expected=job.workflow.sha256)

    def upload_results(
        self, job: LeasedJob, path: Path, *, sha256: str, idempotency_key: str
    ) -> dict[str, Any]:
        """Stream the results crate to the portal; a retry with the same key returns the first result."""
        path = Path(path)
        size = path.stat().st_size
        headers = {
            "Content-Type": "application/zip",
            "Content-Length": str(size),
            "Fencing-Token": str(job.fencing_token),
            "Idempotency-Key": idempotency_key,
            "X-Content-SHA256": sha256,
        }

        def send() -> requests.Response:
            with path.open("rb") as body:
                return self.session.put(
                    job.results_url, data=body, headers=headers, timeout=(self.timeout, self.timeout * 4)
                )

        return self._with_retries(send).json()

    # --- plumbing --------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return urljoin(self.base_url, path)

    def _send(
        self, method: str, url: str, *, retry: bool = True, timeout: Any = None, **kwargs: Any
    ) -> requests.Response:
        def send() -> requests.Response:
            return self.session.request(method, url, timeout=timeout or self.timeout, **kwargs)

        return self._with_retries(send, retry=retry)

    def _with_retries(
        self, send: Callable[[], requests.Response], *, retry: bool = True
    ) -> requests.Response:
        attempts = self.retries + 1 if retry else 1
        problem = "no attempt made"
        for attempt in range(attempts):
            if attempt:
                self._pause(attempt)
            try:
                response = send()
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in _RETRY_STATUSES:
                problem = f"HTTP {response.status_code}"
                response.close()
                continue
            return _checked(response)
        raise Unavailable(f"the portal did not answer ({problem}) after {attempts} attempt(s)")

    def _pause(self, attempt: int) -> None:
        # Full jitter: agents that lost the portal together do not all come back at the same moment.
        ceiling = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        self._sleep(random.uniform(0, ceiling))

    def _download(self, url: str, fencing_token: int, dest: Path, *, expected: str | None) -> Download:
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".partial")
        mismatch = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self._pause(attempt)

            def send() -> requests.Response:
                return self.session.get(
                    url, headers={"Fencing-Token": str(fencing_token)}, stream=True, timeout=self.timeout
                )

            response = self._with_retries(send)
            declared = response.headers.get("X-Content-SHA256", "").lower()
            digest, size = hashlib.sha256(), 0
            try:
                with response, partial.open("wb") as handle:
                    for chunk in response.iter_content(_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        handle.write(chunk)
            except (requests.ConnectionError, requests.Timeout) as exc:
                mismatch = f"the transfer broke off ({type(exc).__name__})"
                continue
            actual = digest.hexdigest()
            wanted = {value for value in (declared, (expected or "").lower()) if value}
            if not wanted:
                partial.unlink(missing_ok=True)
                raise Refused(f"{url} declared no SHA-256, so the download cannot be verified")
            if wanted == {actual}:
                partial.replace(dest)
                return Download(dest, actual, size)
            mismatch = f"got SHA-256 {actual}, expected {' and '.join(sorted(wanted))}"
        partial.unlink(missing_ok=True)
        raise ChecksumMismatch(f"download of {url} failed verification: {mismatch}")


def _checked(response: requests.Response) -> requests.Response:
    if response.status_code < 400:
        return response
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        body = {}
    detail = body.get("detail") if isinstance(body, dict) else None
    code = body.get("code") if isinstance(body, dict) else None
    message = str(detail or f"HTTP {response.status_code} from {response.url}")
    kind: type[PortalError] = Refused
    if response.status_code == 401:
        kind = NotAuthorized
    elif response.status_code == 409:
        kind = LeaseLost
    response.close()
    raise kind(message, status=response.status_code, code=code)

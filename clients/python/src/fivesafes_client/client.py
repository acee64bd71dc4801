"""The Five Safes Portal API from Python: typed results, clear errors, one token.

from fivesafes_client import Client
portal = Client("https://portal.example.org", token="fsp_...")
request = portal.submit("analysis.zip", project="PRJ-2026-0001", tres=["tre-a", "tre-b"], title="Ages")
request = portal.wait(request.id)            # until every job has finished one way or another
for output in portal.outputs(request.jobs[0].id):
    portal.download(output, "results/")
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

# Job states after which nothing more happens without a person acting.
FINISHED = frozenset({"released", "withheld", "rejected", "failed", "cancelled"})
# States where a job waits for the researcher.
NEEDS_YOU = frozenset({"changes_requested", "outputs_changes_requested"})


class APIError(Exception):
    """The portal said no: `status` is the HTTP status, `detail` its explanation."""

    def __init__(self, status: int, detail: Any):
        self.status, self.detail = status, detail
        super().__init__(f"HTTP {status}: {detail}")


class TimedOut(Exception):
    """`wait` gave up before the jobs reached the states asked for."""


@dataclass(frozen=True)
class Job:
    id: int
    tre: str
    status: str
    version: int | None = None
    suspended_reason: str = ""

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @classmethod
    def from_api(cls, data: dict) -> Job:
        return cls(
            id=data["id"],
            tre=data["tre"],
            status=data["status"],
            version=data.get("version"),
            suspended_reason=data.get("suspended_reason") or "",
        )


@dataclass(frozen=True)
class Request:
    id: int
    title: str
    project: str
    status: str
    tres: list[str]
    jobs: list[Job] = field(default_factory=list)
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: dict) -> Request:
        return cls(
            id=data["id"],
            title=data["title"],
            project=data["project"],
            status=data["status"],
            tres=list(data["tres"]),
            jobs=[Job.from_api(job) for job in data.get("jobs", [])],
            raw=data,
        )

    def job_at(self, tre: str) -> Job:
        return next(job for job in self.jobs if job.tre == tre)


@dataclass(frozen=True)
class Output:
    id: int
    name: str
    status: str
    size: int | None
    sha256: str
    download_url: str | None

    @classmethod
    def from_api(cls, data: dict) -> Output:
        return cls(
            id=data["id"],
            name=data["name"],
            status=data["status"],
            size=data.get("size"),
            sha256=data.get("sha256") or "",
            download_url=data.get("download"),
        )


class Client:
    """One portal, one personal token. Every method returns typed results or raises `APIError`."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400 or 300 <= response.status_code < 400:
            try:
                detail = response.json()
            except ValueError:
                detail = response.text[:500]
            if isinstance(detail, dict) and set(detail) <= {"detail", "title", "type", "status"}:
                detail = detail.get("detail", detail)
            raise APIError(response.status_code, detail)
        return response

    def _json(self, method: str, path: str, **kwargs) -> Any:
        return self._call(method, path, **kwargs).json()

    def _all(self, path: str, **params) -> list[dict]:
        """Every item of a list, following its pages."""
        data = self._json("GET", path, params=params or None)
        if isinstance(data, list):
            return data
        items = list(data["results"])
        while data.get("next"):
            data = self._json("GET", data["next"])
            items += data["results"]
        return items

    # -- reading -------------------------------------------------------------------------------------

    def me(self) -> dict:
        return self._json("GET", "/api/v1/me/")

    def projects(self) -> list[dict]:
        return self._all("/api/v1/projects/")

    def tres(self) -> list[dict]:
        return self._all("/api/v1/tres/")

    def requests(self) -> list[Request]:
        return [Request.from_api(item) for item in self._all("/api/v1/requests/")]

    def request(self, request_id: int) -> Request:
        return Request.from_api(self._json("GET", f"/api/v1/requests/{request_id}/"))

    status = request

    def job(self, job_id: int) -> dict:
        return self._json("GET", f"/api/v1/jobs/{job_id}/")

    def outputs(self, job_id: int) -> list[Output]:
        return [Output.from_api(item) for item in self._all(f"/api/v1/jobs/{job_id}/outputs/")]

    # -- acting --------------------------------------------------------------------------------------

    def submit(
        self, crate: str | Path, *, project: str, tres: list[str], title: str, description: str = ""
    ) -> Request:
        """Submit a crate ZIP as a new request to one or more TREs."""
        path = Path(crate)
        with path.open("rb") as handle:
            data = self._json(
                "POST",
                "/api/v1/requests/",
                data={"project": project, "tres": list(tres), "title": title, "description": description},
                files={"crate": (path.name, handle, "application/zip")},
            )
        return Request.from_api(data)

    def build(
        self,
        *,
        project: str,
        tres: list[str],
        title: str,
        workflow: int,
        datasets: list[str] | None = None,
        inputs: dict | None = None,
        description: str = "",
    ) -> Request:
        """Have the portal build the request crate from an approved workflow, datasets and inputs."""
        body = {
            "project": project,
            "tres": list(tres),
            "title": title,
            "description": description,
            "workflow": workflow,
            "datasets": list(datasets or []),
            "inputs": dict(inputs or {}),
        }
        return Request.from_api(self._json("POST", "/api/v1/requests/build/", json=body))

    def cancel(self, job_id: int, reason: str) -> dict:
        return self._json("POST", f"/api/v1/jobs/{job_id}/cancel/", json={"reason": reason})

    def wait(
        self,
        request_id: int,
        *,
        until: set[str] | frozenset[str] | None = None,
        timeout: float = 3600,
        interval: float = 10,
        on_change=None,
    ) -> Request:
        """Poll until every job is in one of `until` (default: finished, or waiting for you)."""
        targets = frozenset(until) if until else FINISHED | NEEDS_YOU
        deadline = time.monotonic() + timeout
        seen = None
        while True:
            current = self.request(request_id)
            states = tuple((job.tre, job.status) for job in current.jobs)
            if states != seen and on_change is not None:
                on_change(current)
            seen = states
            if current.jobs and all(job.status in targets for job in current.jobs):
                return current
            if time.monotonic() >= deadline:
                raise TimedOut(f"Request {request_id} is still at {dict(states)}.")
            time.sleep(interval)

    def download(self, output: Output | int, folder: str | Path = ".") -> Path:
        """Save a released output file in `folder`; returns its path. Checks its SHA-256 when known."""
        if isinstance(output, int):
            url, name, sha256 = f"/api/v1/outputs/{output}/download/", None, ""
        else:
            if not output.download_url:
                raise APIError(403, f"{output.name} is not released to you.")
            url, name, sha256 = output.download_url, output.name, output.sha256
        target_folder = Path(folder)
        target_folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with self._http.stream("GET", url) as response:
            if response.status_code != 200:
                response.read()
                raise APIError(response.status_code, response.text[:500])
            if name is None:
                disposition = response.headers.get("content-disposition", "")
                name = disposition.partition("filename=")[2].strip('"') or f"output-{output}"
            target = target_folder / Path(name).name
            with target.open("wb") as handle:
                for chunk in response.iter_bytes():
                    digest.update(chunk)
                    handle.write(chunk)
        if sha256 and digest.hexdigest() != sha256:
            target.unlink()
            raise APIError(502, f"{name} arrived damaged: its SHA-256 does not match.")
        return target

    def download_released(self, request_id: int, folder: str | Path = ".") -> list[Path]:
        """Every released output of every job of a request, each TRE's in its own sub-folder."""
        saved = []
        for job in self.request(request_id).jobs:
            for output in self.outputs(job.id):
                if output.status == "released" and output.download_url:
                    saved.append(self.download(output, Path(folder) / job.tre))
        return saved

    # -- combining across TREs -----------------------------------------------------------------------

    def combinable(self, request_id: int) -> list[str]:
        """Names of released tables that every TRE of the request returned, ready to combine."""
        return list(self._json("GET", f"/api/v1/requests/{request_id}/combined/")["combinable"])

    def combined(self, request_id: int) -> list[dict]:
        """The request's combinations, each with its status (checked, then released or withheld)."""
        return list(self._json("GET", f"/api/v1/requests/{request_id}/combined/")["releases"])

    def combine(self, request_id: int, name: str) -> dict:
        """Combine one released table across the request's TREs; output checkers then decide on it."""
        return self._json("POST", f"/api/v1/requests/{request_id}/combined/", json={"name": name})

    # -- webhooks ------------------------------------------------------------------------------------

    def subscribe(
        self, url: str, *, project: str | None = None, tre: str | None = None, events: list[str] | None = None
    ) -> dict:
        """Have the portal post signed messages to `url` for one project or TRE; keep the returned
        `secret` to verify them (`standardwebhooks.Webhook(secret).verify(body, headers)`)."""
        body = {"url": url, "project": project, "tre": tre, "event_types": list(events or [])}
        return self._json("POST", "/api/v1/webhooks/", json=body)

    def webhooks(self) -> list[dict]:
        return self._all("/api/v1/webhooks/")

    def deliveries(self, webhook_id: int) -> list[dict]:
        return self._all(f"/api/v1/webhooks/{webhook_id}/deliveries/")

    def replay(self, delivery_id: int) -> dict:
        return self._json("POST", f"/api/v1/webhook-deliveries/{delivery_id}/replay/")

    def unsubscribe(self, webhook_id: int) -> None:
        self._call("DELETE", f"/api/v1/webhooks/{webhook_id}/")

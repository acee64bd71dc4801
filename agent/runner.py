"""The agent's work loop: claim a job, prepare it, run it, return the results crate.

For each job leased to it the runner

1. renews the lease from a heartbeat thread (every ``heartbeat_seconds`` the portal asks for) and learns
   of cancellations there;
2. reports it running, downloads the job's crate and verifies it (sha256, BagIt fixity and version, the
   5S profile's root, requested run and an approving sign-off, the External-Identifier the portal
   named);
3. checks that this TRE maps the job's approved workflow (``agent.toml``), then fetches the Workflow
   RO-Crate from the portal, checks its sha256 against the approved one and records the retrieval (the
   ``DownloadAction``);
4. stages the request's inputs and runs the executor, which honours cancellation;
5. writes the results crate, uploads it with an ``Idempotency-Key`` and confirms completion; or reports
   the failure, or acknowledges the cancellation.

State that must survive a restart lives in ``<work_dir>/jobs/<id>/state/lease.json`` (fencing token,
phase, upload key). On start-up, and whenever the portal was unreachable, the runner *reconciles*:
jobs the portal says it still holds (same fencing token) are resumed, an interrupted upload is sent
again with the same key, and anything else it remembers is dropped, after killing processes a previous
run left behind in the job's directory. A job whose lease was lost (409) is abandoned at once and
nothing more is reported about it: the portal has given it to someone else.

Shutdown (SIGTERM or SIGINT) stops claiming and stops a running workflow; the job's lease stays with
this agent, so a restart within the lease resumes it and otherwise the portal queues it again. A second
signal stops at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs, urlparse

import bagit
import psutil

import agent
from agent.archive import ArchiveError, safe_extract, sha256_file, write_zip
from agent.client import (
    ChecksumMismatch,
    LeasedJob,
    LeaseLost,
    NotAuthorized,
    PortalClient,
    Refused,
    Unavailable,
    WorkflowInfo,
)
from agent.config import AcceptPolicy, AgentConfig, WorkflowNotApprovedError
from agent.crate import CrateError, entity_index, ids, requested_run, root_entity, stage_parameters
from agent.executors import execute
from agent.executors.base import ExecutionStatus
from agent.jobs import Job, JobDirectory
from agent.policy import DisclosureRules, PolicyNotHonoured
from agent.results import ResultCrateError, WorkflowRetrieval, external_identifier_of, write_result_crate

__all__ = ["JobRefused", "JsonFormatter", "Runner", "configure_logging", "declare_bagit_1_0"]

log = logging.getLogger("agent")

PROFILE_PREFIX = "https://w3id.org/5s-crate/"
SIGN_OFF = "https://w3id.org/shp#SignOff"
COMPLETED = "http://schema.org/CompletedActionStatus"
# Phases after which a job needs nothing more from this agent.
FINAL_PHASES = frozenset({"done", "failed", "cancelled", "abandoned"})
# What a received crate may expand to on disk.
MAX_CRATE_BYTES = 8 << 30
MAX_CRATE_MEMBERS = 20_000


class JobRefused(Exception):
    """The agent will not run this job; the message (written by the agent) is reported to the portal."""


class ShutdownRequested(BaseException):
    """Raised in the main thread by a signal while it waits for work, to stop waiting at once."""


# --- Logging -----------------------------------------------------------------------------------

_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({key: value for key, value in record.__dict__.items() if key not in _RECORD_FIELDS})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # bagit reports every file it hashes at INFO.
    logging.getLogger("bagit").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)


# --- Local state -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalState:
    """What the agent remembers about one job between restarts."""

    job_id: int
    fencing_token: int
    phase: str  # claimed, running, interrupted, uploading, done, failed, cancelled, abandoned
    idempotency_key: str | None = None
    results_sha256: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    outputs: int = 0
    claim: dict[str, Any] | None = None


def _state_path(directory: JobDirectory) -> Path:
    return directory.state / "lease.json"


def load_state(directory: JobDirectory) -> LocalState | None:
    try:
        return LocalState(**json.loads(_state_path(directory).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def save_state(directory: JobDirectory, state: LocalState) -> LocalState:
    path = _state_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".lease-")
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(state), handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return state


# --- Heartbeats --------------------------------------------------------------------------------


class Heartbeat(threading.Thread):
    """Renews one job's lease until stopped. Sets ``cancel`` when the portal cancels the job or the
    lease is lost; ``cancel_requested`` and ``lost`` say which."""

    def __init__(self, client: PortalClient, job: LeasedJob, cancel: threading.Event) -> None:
        super().__init__(name=f"heartbeat-{job.id}", daemon=True)
        self.client = client.fork()
        self.job = job
        self.cancel = cancel
        self.cancel_requested = threading.Event()
        self.lost = threading.Event()
        self._stopped = threading.Event()
        # While results upload, the upload's answer is what counts: an accepted upload ends the lease.
        self.uploading = False
        if job.cancel_requested:
            self._cancelled(job.cancel_reason)

    def _cancelled(self, reason: str) -> None:
        if not self.cancel_requested.is_set():
            log.info(
                "the portal cancelled the job",
                extra={"event": "job.cancel_requested", "job": self.job.id, "reason": reason},
            )
        self.cancel_requested.set()
        self.cancel.set()

    def run(self) -> None:
        while not self._stopped.wait(self.job.heartbeat_seconds):
            try:
                state = self.client.heartbeat(self.job.id, self.job.fencing_token)
            except (LeaseLost, NotAuthorized) as exc:
                if not self._stopped.is_set() and not self.uploading:
                    log.warning(
                        "lease lost; stopping work on the job",
                        extra={"event": "job.lease_lost", "job": self.job.id, "detail": str(exc)},
                    )
                    self.lost.set()
                    self.cancel.set()
                return
            except (Unavailable, Refused) as exc:
                log.warning(
                    "heartbeat failed; will try again",
                    extra={"event": "heartbeat.failed", "job": self.job.id, "detail": str(exc)},
                )
                continue
            if state.cancel_requested:
                self._cancelled(state.cancel_reason)

    def stop(self) -> None:
        self._stopped.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=self.client.timeout + 5)


# --- Checking what the portal sends ------------------------------------------------------------


@dataclass(frozen=True)
class PreparedJob:
    job: Job
    metadata: dict[str, Any]
    external_identifier: str
    retrieval: WorkflowRetrieval


def verify_request_crate(
    zip_path: Path, dest: Path, *, external_identifier: str
) -> tuple[Path, dict[str, Any]]:
    """Unpack and check a job's crate; return its bag directory and metadata, or raise JobRefused."""
    try:
        safe_extract(zip_path, dest, max_bytes=MAX_CRATE_BYTES, max_members=MAX_CRATE_MEMBERS)
    except ArchiveError as exc:
        raise JobRefused(f"the job's crate is not a safe ZIP archive: {exc}") from None
    entries = list(dest.iterdir())
    if len(entries) != 1 or not entries[0].is_dir():
        raise JobRefused("the job's crate must hold exactly one BagIt directory")
    bag_dir = entries[0]
    try:
        bag = bagit.Bag(str(bag_dir))
        bag.validate()
    except (bagit.BagError, bagit.BagValidationError) as exc:
        raise JobRefused(f"the job's crate fails its BagIt checks: {exc}") from None
    if tuple(bag.version_info) < (1, 0) or "sha512" not in bag.algorithms:
        raise JobRefused("the job's crate must be a BagIt 1.0 bag with a SHA-512 manifest")
    try:
        identifier = external_identifier_of(bag_dir)
    except ResultCrateError as exc:
        raise JobRefused(f"the job's crate: {exc}") from None
    if external_identifier and identifier != external_identifier:
        raise JobRefused(f"the crate is {identifier}, but the portal dispatched {external_identifier}")
    try:
        metadata = json.loads((bag_dir / "data" / "ro-crate-metadata.json").read_text(encoding="utf-8"))
        root = root_entity(metadata)
        requested_run(metadata)
    except (OSError, ValueError, CrateError) as exc:
        raise JobRefused(f"the job's crate metadata is unusable: {exc}") from None
    profiles = [p for p in ids(root.get("conformsTo")) if p.startswith(PROFILE_PREFIX)]
    if not profiles:
        raise JobRefused(
            f"the job's crate does not declare the Five Safes RO-Crate profile ({PROFILE_PREFIX}...)"
        )
    if not _signed_off(metadata):
        raise JobRefused("the job's crate carries no approving sign-off (a completed SignOff AssessAction)")
    return bag_dir, metadata


def _signed_off(metadata: dict[str, Any]) -> bool:
    for entity in entity_index(metadata).values():
        kinds = entity.get("@type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        extra = entity.get("additionalType")
        extra = [extra] if not isinstance(extra, list) else extra
        named = {item.get("@id") if isinstance(item, dict) else item for item in extra}
        if "AssessAction" in kinds and SIGN_OFF in named and entity.get("actionStatus") == COMPLETED:
            return True
    return False


def check_accepted(accept: AcceptPolicy, job: LeasedJob, executor: str) -> None:
    """Refuse a job outside what this TRE's ``[accept]`` rules allow, whatever the portal approved."""
    if accept.projects is not None and job.project not in accept.projects:
        raise JobRefused(f"this TRE's own rules do not accept jobs of project {job.project!r}")
    if accept.executors is not None and executor not in accept.executors:
        raise JobRefused(f"this TRE's own rules do not accept workflows run by the {executor} executor")
    if (
        accept.workflow_sha256 is not None
        and job.workflow is not None
        and job.workflow.sha256 not in accept.workflow_sha256
    ):
        raise JobRefused(
            f"this TRE's own rules do not accept the workflow crate with SHA-256 {job.workflow.sha256}"
        )


def check_workflow_named(metadata: dict[str, Any], workflow: WorkflowInfo) -> None:
    """The crate's main entity must be the workflow the portal dispatched."""
    index = entity_index(metadata)
    named = ids(root_entity(metadata).get("mainEntity"))
    if len(named) != 1:
        raise JobRefused("the job's crate names no single workflow (mainEntity)")
    parsed = urlparse(named[0])
    base = parsed._replace(query="", fragment="").geturl() if parsed.scheme else named[0]
    if workflow.id not in (named[0], base):
        raise JobRefused(f"the crate names workflow {named[0]}, but the portal dispatched {workflow.id}")
    entity = index.get(named[0], {})
    version = entity.get("version") or parse_qs(parsed.query).get("version", [None])[0]
    if version is not None and str(version) != workflow.version:
        raise JobRefused(
            f"the crate names version {version} of the workflow, but the portal dispatched {workflow.version}"
        )


def declare_bagit_1_0(crate_zip: Path) -> str:
    """Make the results crate a BagIt 1.0 bag (the 5S profile's minimum); return its new sha256.

    ``bagit.make_bag`` declares BagIt 0.97. Only ``bagit.txt`` changes, so only the tag manifests that
    cover it are recomputed; the payload manifest stays as written.
    """
    crate_zip = Path(crate_zip)
    with tempfile.TemporaryDirectory(prefix=".bagit-", dir=crate_zip.parent) as scratch:
        unpacked = Path(scratch) / "crate"
        safe_extract(crate_zip, unpacked)
        (bag_dir,) = list(unpacked.iterdir())
        declaration = bag_dir / "bagit.txt"
        if "BagIt-Version: 0.97" not in declaration.read_text():
            return sha256_file(crate_zip)
        declaration.write_text("BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
        for manifest in bag_dir.glob("tagmanifest-*.txt"):
            algorithm = manifest.name.removeprefix("tagmanifest-").removesuffix(".txt")
            lines = []
            for line in manifest.read_text().splitlines():
                _, name = line.split(maxsplit=1)
                digest = hashlib.new(algorithm, (bag_dir / name).read_bytes()).hexdigest()
                lines.append(f"{digest}  {name}")
            manifest.write_text("\n".join(lines) + "\n")
        bagit.Bag(str(bag_dir)).validate()
        return write_zip(unpacked, crate_zip)


def reap_leftovers(root: Path) -> int:
    """Kill processes a previous run of this agent left working inside ``root``; return how many."""
    root = root.resolve()
    found = []
    for process in psutil.process_iter(["pid", "cwd"]):
        cwd = process.info.get("cwd")
        if process.pid == os.getpid() or not cwd:
            continue
        try:
            if Path(cwd).resolve().is_relative_to(root):
                found.append(process)
        except OSError:
            continue
    for process in found:
        try:
            process.kill()
        except psutil.Error:
            continue
    psutil.wait_procs(found, timeout=10)
    return len(found)


def _tidy(directory: JobDirectory) -> None:
    """Remove working copies of the request and data; keep logs, provenance, outputs and state."""
    for path in (directory.work, directory.tmp, directory.home, directory.inputs, directory.root / "request"):
        shutil.rmtree(path, ignore_errors=True)
    for name in ("request.zip", "workflow.zip"):
        (directory.root / name).unlink(missing_ok=True)


def _now() -> datetime:
    return datetime.now(UTC)


# --- The runner --------------------------------------------------------------------------------


class Runner:
    """Claims and runs jobs until stopped; see the module docstring."""

    def __init__(
        self,
        config: AgentConfig,
        client: PortalClient,
        *,
        claim_wait: float = 20.0,
        retry_pause: float = 5.0,
    ) -> None:
        self.config = config
        self.client = client
        self.claim_wait = claim_wait
        self.retry_pause = retry_pause
        self.stopping = threading.Event()
        self._idle = False
        self._current: threading.Event | None = None
        self._needs_reconcile = True

    # --- lifecycle -------------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.stopping.is_set():
            log.warning("second signal: stopping now", extra={"event": "agent.stop_now"})
            raise ShutdownRequested
        log.info(
            "shutting down",
            extra={"event": "agent.stopping", "signal": signal.Signals(signum).name},
        )
        self.stop()
        if self._idle:
            raise ShutdownRequested

    def stop(self) -> None:
        """Stop claiming; interrupt the running workflow (its lease stays with this agent)."""
        self.stopping.set()
        if self._current is not None:
            self._current.set()

    def run(self) -> int:
        """Work until stopped. Returns the process exit status."""
        log.info(
            "agent started",
            extra={
                "event": "agent.started",
                "tre": self.config.tre.slug,
                "portal": self.client.base_url,
                "version": agent.__version__,
                "workflows": [f"{w} {v}" for (w, v) in self.config.workflows],
            },
        )
        try:
            while not self.stopping.is_set():
                try:
                    if self._needs_reconcile:
                        self._converge()
                        self._needs_reconcile = False
                    job = self._claim()
                    if job is not None:
                        self._work(job)
                except Unavailable as exc:
                    log.warning(
                        "the portal is unreachable; will reconcile and try again",
                        extra={"event": "portal.unavailable", "detail": str(exc)},
                    )
                    self._needs_reconcile = True
                    self.stopping.wait(self.retry_pause)
        except NotAuthorized as exc:
            log.error(
                "the portal refused the agent's token; stopping",
                extra={"event": "agent.unauthorized", "detail": str(exc)},
            )
            return 3
        except ShutdownRequested:
            pass
        log.info("agent stopped", extra={"event": "agent.stopped"})
        return 0

    def _claim(self) -> LeasedJob | None:
        self._idle = True
        try:
            if self.stopping.is_set():
                return None
            job = self.client.claim(self.claim_wait)
        except (LeaseLost, Refused) as exc:
            log.error("claim refused", extra={"event": "claim.refused", "detail": str(exc)})
            self.stopping.wait(self.retry_pause)
            return None
        finally:
            self._idle = False
        if job is not None:
            log.info(
                "claimed a job",
                extra={
                    "event": "job.claimed",
                    "job": job.id,
                    "fencing_token": job.fencing_token,
                    "attempt": job.attempt,
                },
            )
        return job

    def _converge(self) -> None:
        """Resume what the portal says this agent holds; drop everything else remembered."""
        held = {job.id: job for job in self.client.reconcile()}
        jobs_dir = self.config.work_dir / "jobs"
        for path in sorted(jobs_dir.glob("*/state/lease.json")) if jobs_dir.is_dir() else []:
            directory = JobDirectory(path.parent.parent)
            local = load_state(directory)
            if local is None or local.phase in FINAL_PHASES:
                continue
            job = held.get(local.job_id)
            if job is not None and job.fencing_token == local.fencing_token:
                continue
            if local.phase == "uploading" and local.claim and self._confirm_upload(directory, local):
                continue
            killed = reap_leftovers(directory.root)
            save_state(directory, replace(local, phase="abandoned"))
            _tidy(directory)
            log.info(
                "dropped a job this agent no longer holds",
                extra={"event": "job.dropped", "job": local.job_id, "processes_killed": killed},
            )
        for job in sorted(held.values(), key=lambda j: j.id):
            if self.stopping.is_set():
                return
            log.info(
                "resuming a job this agent holds",
                extra={"event": "job.resumed", "job": job.id, "fencing_token": job.fencing_token},
            )
            self._work(job)

    def _confirm_upload(self, directory: JobDirectory, local: LocalState) -> bool:
        """After a restart: an upload whose answer was lost may have succeeded, which ended the lease.
        Sending it again with the same key returns the first result; then confirm completion."""
        job = LeasedJob.from_json(local.claim or {})
        path = directory.root / "results" / "results.zip"
        if not path.is_file():
            return False
        try:
            self.client.upload_results(
                job, path, sha256=local.results_sha256 or "", idempotency_key=local.idempotency_key or ""
            )
        except (LeaseLost, Refused):
            return False
        heartbeat = Heartbeat(self.client, job, threading.Event())
        self._end(
            job,
            directory,
            local,
            heartbeat,
            "completed",
            f"{local.outputs} output file(s) returned in the results crate.",
        )
        return True

    # --- one job ---------------------------------------------------------------------------------

    def _work(self, job: LeasedJob) -> None:
        directory = JobDirectory.create(self.config.work_dir, str(job.id))
        previous = load_state(directory)
        results = directory.root / "results" / "results.zip"
        resumable_upload = (
            previous is not None
            and previous.fencing_token == job.fencing_token
            and previous.phase == "uploading"
            and previous.results_sha256 is not None
            and results.is_file()
            and sha256_file(results) == previous.results_sha256
        )
        if not resumable_upload:
            reap_leftovers(directory.root)
            shutil.rmtree(directory.root)
            directory = JobDirectory.create(self.config.work_dir, str(job.id))
            previous = save_state(
                directory, LocalState(job.id, job.fencing_token, "claimed", claim=asdict(job))
            )
        cancel = threading.Event()
        if self.stopping.is_set():
            cancel.set()
        self._current = cancel
        heartbeat = Heartbeat(self.client, job, cancel)
        heartbeat.start()
        try:
            if resumable_upload:
                self._upload(job, directory, previous, heartbeat)
            else:
                self._run(job, directory, previous, cancel, heartbeat)
        except LeaseLost as exc:
            self._abandon(job, directory, str(exc))
        except Refused as exc:
            # A refusal the runner cannot act on: leave the job to the lease's expiry.
            log.error(
                "the portal refused a request about the job",
                extra={"event": "job.refused", "job": job.id, "status": exc.status, "detail": str(exc)},
            )
            self._abandon(job, directory, str(exc))
        except (Unavailable, NotAuthorized):
            raise  # the run loop reconciles, or stops
        except Exception as exc:
            log.exception(
                "the agent failed while handling the job", extra={"event": "job.error", "job": job.id}
            )
            self._fail_after_error(job, directory, heartbeat, exc)
        finally:
            heartbeat.stop()
            self._current = None

    def _fail_after_error(
        self, job: LeasedJob, directory: JobDirectory, heartbeat: Heartbeat, exc: Exception
    ) -> None:
        state = load_state(directory) or LocalState(job.id, job.fencing_token, "running")
        reason = f"the TRE agent failed while handling the job ({type(exc).__name__})"
        try:
            self._end(job, directory, state, heartbeat, "failed", reason)
        except (LeaseLost, Refused) as refused:
            self._abandon(job, directory, str(refused))

    def _run(
        self,
        job: LeasedJob,
        directory: JobDirectory,
        state: LocalState,
        cancel: threading.Event,
        heartbeat: Heartbeat,
    ) -> None:
        started = _now()
        self.client.report(job.id, job.fencing_token, "running", started_at=started)
        state = save_state(directory, replace(state, phase="running", started_at=started.isoformat()))
        try:
            prepared = self._prepare(job, directory)
        except JobRefused as exc:
            return self._end(job, directory, state, heartbeat, "failed", str(exc))
        if cancel.is_set():
            return self._stopped_before_finishing(job, directory, state, heartbeat)
        log.info(
            "running the workflow",
            extra={"event": "job.running", "job": job.id, "workflow": prepared.job.workflow_id},
        )
        result = execute(prepared.job, self.config, cancel=cancel)
        if heartbeat.lost.is_set():
            raise LeaseLost("the lease was lost while the workflow ran")
        if result.status is ExecutionStatus.CANCELLED:
            return self._stopped_before_finishing(job, directory, state, heartbeat)
        if result.status is ExecutionStatus.FAILED:
            return self._end(
                job, directory, state, heartbeat, "failed", result.reason or "the workflow failed"
            )
        crate = write_result_crate(
            prepared.metadata,
            result,
            outputs_dir=directory.outputs,
            external_identifier=prepared.external_identifier,
            tre=self.config.tre,
            dest=directory.root / "results" / "results.zip",
            retrieval=prepared.retrieval,
            provenance=directory.provenance / "released",
        )
        sha256 = declare_bagit_1_0(crate.path)
        size = crate.path.stat().st_size
        if size > job.results_max_bytes:
            return self._end(
                job,
                directory,
                state,
                heartbeat,
                "failed",
                f"the results crate is {size} bytes; the portal accepts at most {job.results_max_bytes}",
            )
        state = save_state(
            directory,
            replace(
                state,
                phase="uploading",
                idempotency_key=f"job-{job.id}-token-{job.fencing_token}-{sha256}",
                results_sha256=sha256,
                finished_at=result.ended_at.isoformat(),
                outputs=len(result.outputs),
            ),
        )
        self._upload(job, directory, state, heartbeat)

    def _prepare(self, job: LeasedJob, directory: JobDirectory) -> PreparedJob:
        accept = self.config.accept
        workflow = job.workflow
        if workflow is None:
            raise JobRefused("the portal names no workflow on this TRE's approved list for this job")
        try:
            route = self.config.route(workflow.id, workflow.version)
        except WorkflowNotApprovedError as exc:
            raise JobRefused(str(exc)) from None
        check_accepted(self.config.accept, job, route.executor)
        if job.policy:
            try:
                DisclosureRules.from_claim(job.policy)
            except PolicyNotHonoured as exc:
                raise JobRefused(f"the job's disclosure policy cannot be honoured: {exc}") from None
        try:
            crate = self.client.download_crate(job, directory.root / "request.zip")
        except (ChecksumMismatch, Refused) as exc:
            raise JobRefused(f"the job's crate could not be fetched intact: {exc}") from None
        bag_dir, metadata = verify_request_crate(
            crate.path, directory.root / "request", external_identifier=job.external_identifier
        )
        check_workflow_named(metadata, workflow)
        fetch_started = _now()
        try:
            packed = self.client.download_workflow(job, directory.root / "workflow.zip")
            safe_extract(
                packed.path, directory.workflow, max_bytes=MAX_CRATE_BYTES, max_members=MAX_CRATE_MEMBERS
            )
        except (ChecksumMismatch, Refused, ArchiveError) as exc:
            raise JobRefused(f"the approved workflow could not be fetched intact: {exc}") from None
        if accept.workflow_sha256 is not None and packed.sha256 not in accept.workflow_sha256:
            raise JobRefused(
                f"this TRE's own rules do not accept the workflow crate with SHA-256 {packed.sha256}"
            )
        retrieval = WorkflowRetrieval(
            started_at=fetch_started, ended_at=_now(), sha256=packed.sha256, source=job.workflow_url
        )
        log.info(
            "workflow retrieved and verified",
            extra={
                "event": "workflow.retrieved",
                "job": job.id,
                "sha256": packed.sha256,
                "executor": route.executor,
            },
        )
        try:
            parameters = stage_parameters(metadata, bag_dir / "data", directory.inputs)
        except CrateError as exc:
            raise JobRefused(f"the request's inputs cannot be staged: {exc}") from None
        return PreparedJob(
            Job(
                str(job.id),
                workflow.id,
                workflow.version,
                directory,
                parameters,
                MappingProxyType(dict(workflow.settings)),
                MappingProxyType(dict(job.policy)),
            ),
            metadata,
            external_identifier_of(bag_dir),
            retrieval,
        )

    def _stopped_before_finishing(
        self, job: LeasedJob, directory: JobDirectory, state: LocalState, heartbeat: Heartbeat
    ) -> None:
        if heartbeat.lost.is_set():
            raise LeaseLost("the lease was lost")
        if heartbeat.cancel_requested.is_set():
            return self._end(
                job, directory, state, heartbeat, "cancelled", "Stopped at the portal's request."
            )
        # Shutting down: the lease stays ours, so a restart resumes the job.
        save_state(directory, replace(state, phase="interrupted"))
        log.info("job interrupted by shutdown", extra={"event": "job.interrupted", "job": job.id})

    def _upload(
        self, job: LeasedJob, directory: JobDirectory, state: LocalState, heartbeat: Heartbeat
    ) -> None:
        path = directory.root / "results" / "results.zip"
        heartbeat.uploading = True
        try:
            answer = self.client.upload_results(
                job, path, sha256=state.results_sha256 or "", idempotency_key=state.idempotency_key or ""
            )
        except Refused as exc:
            return self._end(
                job, directory, state, heartbeat, "failed", f"the portal refused the results crate: {exc}"
            )
        heartbeat.stop()
        log.info(
            "results crate returned",
            extra={
                "event": "job.results_uploaded",
                "job": job.id,
                "upload": answer.get("id"),
                "sha256": state.results_sha256,
            },
        )
        self._end(
            job,
            directory,
            state,
            heartbeat,
            "completed",
            f"{state.outputs} output file(s) returned in the results crate.",
        )

    def _end(
        self,
        job: LeasedJob,
        directory: JobDirectory,
        state: LocalState,
        heartbeat: Heartbeat,
        status: str,
        message: str,
    ) -> None:
        heartbeat.stop()
        finished = datetime.fromisoformat(state.finished_at) if state.finished_at else _now()
        started = datetime.fromisoformat(state.started_at) if state.started_at else None
        self.client.report(
            job.id, job.fencing_token, status, started_at=started, finished_at=finished, message=message
        )
        save_state(directory, replace(state, phase="done" if status == "completed" else status))
        _tidy(directory)
        log.info(
            f"job {status}",
            extra={
                "event": f"job.{status}",
                "job": job.id,
                "fencing_token": job.fencing_token,
                "detail": message,
            },
        )

    def _abandon(self, job: LeasedJob, directory: JobDirectory, why: str) -> None:
        state = load_state(directory) or LocalState(job.id, job.fencing_token, "claimed")
        save_state(directory, replace(state, phase="abandoned"))
        _tidy(directory)
        log.warning(
            "abandoned a job whose lease was lost",
            extra={
                "event": "job.abandoned",
                "job": job.id,
                "fencing_token": job.fencing_token,
                "detail": why,
            },
        )

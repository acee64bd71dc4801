"""``tes``: hand the whole job to the TRE's GA4GH TES server as one task (Funnel, TESK, ...).

One job is one TES task with one executor: the image and command the TRE approved for the workflow
(``[workflows.options]``), never anything from the request. Inside the task:

* ``/job/parameters.json`` holds the job's parameters (file parameters replaced by their paths below);
* ``/job/inputs/<name>`` are the job's input files, staged through the shared storage area;
* ``/job/outputs/<name>`` must be written by the command for every declared output; the TES server
  copies them back to the storage area, from where the agent collects them.

The task id is kept in the job's ``state/`` directory, so an agent restarted mid-job re-attaches to its
task instead of submitting a second one. The agent polls the task (``view=MINIMAL``) until it reaches
a terminal state, cancels it (``POST /tasks/{id}:cancel``) when the job is cancelled or runs out of
time, and records the task's full log (``view=FULL``) in the job's ``logs/``.

========================  ==================================================
TES state                 result
========================  ==================================================
``COMPLETE``              ``COMPLETED`` (once every declared output is found)
``EXECUTOR_ERROR``        ``FAILED``: the command failed
``SYSTEM_ERROR``          ``FAILED``: the TES server failed
``PREEMPTED``             ``FAILED``: the task was preempted
``CANCELED``              ``CANCELLED`` if the agent cancelled it, else ``FAILED``
other states              still running: keep polling
========================  ==================================================
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import requests
import tes

import agent
from agent.config import AgentConfig, ConfigError, Table, WorkflowRoute
from agent.executors.base import (
    Engine,
    ExecutionResult,
    ExecutionStatus,
    OutputError,
    OutputFile,
    check_output_path,
    clear_outputs,
    collect_output,
)
from agent.jobs import Job

__all__ = ["TERMINAL_STATES", "TesExecutor", "TesOptions", "build_task"]

JOB_ROOT = "/job"
PARAMETERS_PATH = f"{JOB_ROOT}/parameters.json"
TERMINAL_STATES = frozenset({"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"})
_FAILURES = {
    "EXECUTOR_ERROR": "the task's command failed on the TES server",
    "SYSTEM_ERROR": "the TES server reported a system error",
    "PREEMPTED": "the TES server preempted the task",
    "CANCELED": "the task was cancelled on the TES server",
}
# Consecutive failed polls tolerated before the job is failed (the server may be restarting).
_MAX_POLL_ERRORS = 5
_T = TypeVar("_T")


@dataclass(frozen=True)
class TesOptions:
    """``[workflows.options]`` of a ``tes`` route: what the TRE approved to run for the workflow."""

    image: str
    command: tuple[str, ...]
    outputs: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    cpu_cores: int | None = None
    ram_gb: float | None = None
    disk_gb: float | None = None


class _Abandon(Exception):
    """Polling must stop: ``status``/``reason`` say how the job ends."""

    def __init__(self, status: ExecutionStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class TesExecutor:
    """Runs a job as one TES task; see the module docstring."""

    name: ClassVar[str] = "tes"
    engine = Engine(
        "GA4GH TES hand-off (py-tes)", tes.__version__, "https://github.com/ga4gh/task-execution-schemas"
    )

    def __init__(self, config: AgentConfig, route: WorkflowRoute) -> None:
        if config.tes is None:
            raise ConfigError("the tes executor needs a [tes] section")
        self.config = config
        self.settings = config.tes
        self.route = route
        self.options: TesOptions = route.options

    @classmethod
    def parse_options(cls, options: Table, config: AgentConfig) -> TesOptions:
        if config.tes is None:
            raise ConfigError(f"{options.where}: the tes executor needs a [tes] section")
        command = options.string_list("command")
        if not command:
            raise ConfigError(f'{options.where} command: give the executor\'s argv, e.g. ["cwltool", ...]')
        outputs = options.string_list("outputs")
        for name in outputs:
            try:
                check_output_path(name)
            except OutputError as exc:
                raise ConfigError(f"{options.where} outputs: {exc}") from None
        cpu_cores = options.integer("cpu_cores", minimum=1) if "cpu_cores" in options.data else None
        ram_gb = options.number("ram_gb", minimum=0.001) if "ram_gb" in options.data else None
        disk_gb = options.number("disk_gb", minimum=0.001) if "disk_gb" in options.data else None
        return TesOptions(
            image=options.string("image"),
            command=tuple(command),
            outputs=tuple(outputs),
            env=options.string_map("env", default={}),
            cpu_cores=cpu_cores,
            ram_gb=ram_gb,
            disk_gb=disk_gb,
        )

    def _client(self) -> tes.HTTPClient:
        token = None
        if self.settings.token_file is not None:
            token = self.settings.token_file.read_text(encoding="utf-8").strip()
        return tes.HTTPClient(self.settings.url, timeout=self.settings.request_timeout_seconds, token=token)

    def run(self, job: Job, *, cancel: threading.Event | None = None) -> ExecutionResult:
        started_at = datetime.now(UTC)
        clear_outputs(job.directory.outputs)
        state_file = job.directory.state / "tes-task.json"
        log_file = job.directory.logs / "tes-task.json"
        staging = self.settings.storage_dir / job.id
        client = self._client()
        outputs: tuple[OutputFile, ...] = ()
        task_id = None
        try:
            task_id = self._submit(client, job, staging, state_file)
            final_state = self._wait(client, task_id, cancel)
            if final_state != "COMPLETE":
                raise _Abandon(
                    ExecutionStatus.FAILED, _FAILURES.get(final_state, f"unexpected TES state {final_state}")
                )
            outputs = self._collect(staging, job)
            status, reason = ExecutionStatus.COMPLETED, None
        except _Abandon as exc:
            status, reason = exc.status, exc.reason
        except OutputError as exc:
            status, reason = ExecutionStatus.FAILED, f"output refused: {exc}"
        if task_id is not None:
            self._record_log(client, task_id, log_file)
        if status is not ExecutionStatus.COMPLETED:
            clear_outputs(job.directory.outputs)
            outputs = ()
        state_file.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        return ExecutionResult(
            status=status,
            started_at=started_at,
            ended_at=datetime.now(UTC),
            engine=self.engine,
            outputs=outputs,
            reason=reason,
            logs=(log_file,) if log_file.exists() else (),
            network="decided by the TES server's policy",
        )

    def _submit(self, client: tes.HTTPClient, job: Job, staging: Path, state_file: Path) -> str:
        """The id of the job's task: the one recorded in ``state_file``, or a newly created one."""
        if state_file.exists():
            return json.loads(state_file.read_text())["task_id"]
        shutil.rmtree(staging, ignore_errors=True)
        task = build_task(
            job,
            self.options,
            staging=staging,
            storage_url=f"{self.settings.storage_url}/{job.id}",
            tre=self.config.tre.slug,
        )
        try:
            task_id = client.create_task(task)
        except (requests.RequestException, ValueError) as exc:
            raise _Abandon(
                ExecutionStatus.FAILED, f"the TES server refused the task ({_describe(exc)})"
            ) from None
        state_file.write_text(json.dumps({"task_id": task_id}))
        return task_id

    def _wait(self, client: tes.HTTPClient, task_id: str, cancel: threading.Event | None) -> str:
        """Poll until the task ends; cancel it on request or timeout (then raise :class:`_Abandon`)."""
        deadline = time.monotonic() + self.route.limits.timeout_seconds
        errors = 0
        while True:
            if cancel is not None and cancel.is_set():
                self._cancel(client, task_id)
                raise _Abandon(ExecutionStatus.CANCELLED, "cancelled")
            if time.monotonic() >= deadline:
                self._cancel(client, task_id)
                raise _Abandon(
                    ExecutionStatus.FAILED,
                    f"timeout: wall-clock limit of {self.route.limits.timeout_seconds} s reached",
                )
            try:
                state = client.get_task(task_id, "MINIMAL").state
                errors = 0
            except (requests.RequestException, ValueError) as exc:
                errors += 1
                if errors >= _MAX_POLL_ERRORS:
                    raise _Abandon(
                        ExecutionStatus.FAILED, f"lost contact with the TES server ({_describe(exc)})"
                    ) from None
                state = None
            if state in TERMINAL_STATES:
                return state
            if cancel is not None:
                cancel.wait(self.settings.poll_seconds)
            else:
                time.sleep(self.settings.poll_seconds)

    def _cancel(self, client: tes.HTTPClient, task_id: str) -> None:
        """Ask the server to cancel the task and wait, up to the grace period, for it to stop."""
        deadline = time.monotonic() + max(
            self.config.sandbox.cancel_grace_seconds, self.settings.poll_seconds
        )
        _quietly(lambda: client.cancel_task(task_id))
        while time.monotonic() < deadline:
            task = _quietly(lambda: client.get_task(task_id, "MINIMAL"))
            if task is not None and task.state in TERMINAL_STATES:
                return
            time.sleep(self.settings.poll_seconds)

    def _record_log(self, client: tes.HTTPClient, task_id: str, log_file: Path) -> None:
        # The full view can hold the command's stdout/stderr, which may quote data: TRE-only log.
        task = _quietly(lambda: client.get_task(task_id, "FULL"))
        if task is not None:
            log_file.write_text(task.as_json(indent=2))

    def _collect(self, staging: Path, job: Job) -> tuple[OutputFile, ...]:
        limit = self.route.limits.max_output_file_bytes
        return tuple(
            collect_output(
                staging / "outputs" / name,
                job.directory.outputs,
                name,
                max_bytes=limit,
                description=f"Output {name!r} of the TES task",
            )
            for name in self.options.outputs
        )


def build_task(job: Job, options: TesOptions, *, staging: Path, storage_url: str, tre: str) -> tes.Task:
    """The TES task for ``job``: input files are copied into ``staging/inputs`` (which the TES server reads
    as ``storage_url/inputs``) and declared outputs are to be written to ``storage_url/outputs``."""
    inputs_dir = job.directory.inputs.resolve()
    (staging / "inputs").mkdir(parents=True, exist_ok=True)
    (staging / "outputs").mkdir(parents=True, exist_ok=True)
    parameters: dict[str, Any] = {}
    task_inputs = []
    for name, value in sorted(job.parameters.items()):
        if isinstance(value, Path):
            path = value.resolve()
            if not path.is_relative_to(inputs_dir) or not path.is_file():
                raise _Abandon(
                    ExecutionStatus.FAILED,
                    f"input {name!r} is not a file staged in the job's inputs directory",
                )
            relative = path.relative_to(inputs_dir).as_posix()
            target = staging / "inputs" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            container_path = f"{JOB_ROOT}/inputs/{relative}"
            task_inputs.append(
                tes.Input(url=f"{storage_url}/inputs/{relative}", path=container_path, type="FILE")
            )
            parameters[name] = container_path
        else:
            parameters[name] = value
    task_inputs.append(tes.Input(content=json.dumps(parameters, indent=2), path=PARAMETERS_PATH, type="FILE"))
    return tes.Task(
        name=f"job-{job.id}",
        description=f"Five Safes job {job.id}: workflow {job.workflow_id} version {job.workflow_version}",
        inputs=task_inputs,
        outputs=[
            tes.Output(url=f"{storage_url}/outputs/{name}", path=f"{JOB_ROOT}/outputs/{name}", type="FILE")
            for name in options.outputs
        ],
        resources=tes.Resources(cpu_cores=options.cpu_cores, ram_gb=options.ram_gb, disk_gb=options.disk_gb),
        executors=[
            tes.Executor(
                image=options.image,
                command=list(options.command),
                workdir=f"{JOB_ROOT}/outputs",
                env=dict(options.env) or None,
            )
        ],
        tags={"portal_job_id": job.id, "tre": tre, "agent": f"five-safes-agent/{agent.__version__}"},
    )


def _describe(exc: Exception) -> str:
    # Status code or exception class only: bodies and URLs may carry tokens or internal host names.
    response = getattr(exc, "response", None)
    if response is not None:
        return f"HTTP {response.status_code}"
    return type(exc).__name__


def _quietly(call: Callable[[], _T]) -> _T | None:
    """``call()``, or None if the TES server could not be reached or answered with an error."""
    try:
        return call()
    except (requests.RequestException, ValueError):
        return None

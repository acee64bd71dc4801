"""``wfexs``: hand an approved workflow to WfExS-backend (the EOSC-Life workflow execution service).

WfExS-backend is driven through its documented command line (``WfExS-backend.py``, from
``inab/WfExS-backend``: ``wfexs_backend/__main__.py`` and ``docs/source/usage.rst``) and its documented
staging file (a "workflow configuration file", YAML, whose JSON Schema is
``wfexs_backend/schemas/stage-definition.json``; a copy is in ``tests/data/wfexs/``). For each job the agent
writes, inside the job directory only:

* ``work/wfexs/local_config.yaml``: WfExS's local configuration, with ``workDir`` in the job directory,
  ``cacheDir`` from the route (the TRE's cache), the container technology and the crypt4gh key pair
  (``state/wfexs.key``/``.pub``, made by ``init`` on the first run of the job);
* ``work/wfexs/packed.cwl``: for CWL, the approved main workflow packed by ``cwltool --pack`` (WfExS
  fetches a ``file:`` workflow as that single file, so its steps' tools must be inside it);
* ``work/wfexs/job.wfex.stage``: the staging file, generated from the crate (:func:`stage_document`):
  ``workflow_id`` is the approved workflow crate's main workflow as a ``file://`` URI inside the job's
  ``workflow/`` folder, ``params`` are the request's inputs (a staged file becomes
  ``{c-l-a-s-s: File, url: file://...}``, a value stays a value), ``workflow_config`` sets the container
  technology and ``secure: false`` (WfExS refuses encrypted working directories with podman or docker).
  Nothing is fetched from a remote URL: every URI in the file is a ``file://`` path the agent checked.

then runs, each as a sandboxed subprocess (minimal environment, process group, wall-clock limit,
cancellation, CPU/memory/file-size limits; network off unless the route allows it, and with
``require_network_isolation`` a job is refused rather than run with network when the kernel cannot
isolate it)::

    WfExS-backend.py -L local_config.yaml init                              (only when the keys are absent)
    WfExS-backend.py -L local_config.yaml stage -W job.wfex.stage --save-workdir-id state/wfexs-workdir-id
    WfExS-backend.py -L local_config.yaml offline-execute -J <workdir id>
    WfExS-backend.py -L local_config.yaml export-crate -J <workdir id>

The outputs are the regular files WfExS leaves in ``<workDir>/<workdir id>/outputs/<execution id>/``
(WfExS's ``WORKDIR_OUTPUTS_RELDIR``, one folder per execution), each copied under the route's size limit with :func:`collect_output`; links and
special files are refused. WfExS's own Workflow Run Crate (``outputs/execution.ro-crate.zip``, from
``export-crate``) is provenance inside the
TRE (``ExecutionResult.provenance``): it may hold inputs, so it never leaves; when ``export-crate`` fails
(it needs Graphviz's ``dot``) the outputs still stand and ``details["provenance"]`` says why there is no
run crate. Any other failing step fails the job
with a reason naming the step and how it ended, never WfExS's output (which may quote data).

The route's ``[workflows.options]``: ``executable`` (required: the ``WfExS-backend.py`` of the TRE's own
WfExS installation, run with its own Python), ``cache_dir`` (required), ``container_type`` (``podman``,
the default; ``singularity``, ``docker`` or ``none``), ``workflow_type`` (``cwl``, the default, or
``nextflow``), ``allow_network`` (default false: WfExS then runs with the sandbox's network isolation, so
it must find everything it needs in the job directory and the TRE's cache).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlparse

from ruamel.yaml import YAML

from agent.config import AgentConfig, ConfigError, Table, WorkflowRoute
from agent.executors.base import (
    Engine,
    ExecutionResult,
    ExecutionStatus,
    OutputError,
    OutputFile,
    clear_outputs,
    collect_output,
)
from agent.jobs import Job, ParameterValue
from agent.sandbox import (
    Outcome,
    ResourceLimits,
    SandboxError,
    SandboxResult,
    minimal_environment,
    run_sandboxed,
)

__all__ = [
    "CONTAINER_TYPES",
    "StageRefused",
    "WfExSExecutor",
    "WfExSOptions",
    "local_config_document",
    "stage_document",
]

ENGINE_URL = "https://github.com/inab/WfExS-backend"
CONTAINER_TYPES = ("podman", "singularity", "docker", "none")
WORKFLOW_TYPES = ("cwl", "nextflow")
MAX_OUTPUT_FILES = 200
# A parameter name WfExS accepts as a key of ``params`` (stage-definition.json: ^(?!c-l-a-s-s)[^:;]+$),
# narrowed to plain names.
_PARAM_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")
_WORKDIR_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_VERSION_RE = re.compile(r"version\s+([0-9][0-9A-Za-z.+_-]*)")
_VERSION_TIMEOUT_SECONDS = 120.0
_CWLTOOL = (sys.executable, "-c", "import sys; from cwltool.main import run; sys.exit(run())")


class StageRefused(ValueError):
    """The job cannot be turned into a staging file; the message says why."""


@dataclass(frozen=True)
class WfExSOptions:
    """``[workflows.options]`` of a ``wfexs`` route (see the module docstring)."""

    executable: Path
    cache_dir: Path
    container_type: str = "podman"
    workflow_type: str = "cwl"
    allow_network: bool = False


def _yaml() -> YAML:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    return yaml


def _main_workflow(workflow_dir: Path) -> Path:
    """The approved crate's ``mainEntity``, as a path that stays inside ``workflow_dir``."""
    try:
        metadata = json.loads((workflow_dir / "ro-crate-metadata.json").read_text(encoding="utf-8"))
        graph = {entity["@id"]: entity for entity in metadata["@graph"]}
        main = graph["./"]["mainEntity"]["@id"]
    except (OSError, ValueError, KeyError, TypeError):
        raise StageRefused("the workflow crate's ro-crate-metadata.json names no main workflow") from None
    path = (workflow_dir / main).resolve()
    root = workflow_dir.resolve()
    if not isinstance(main, str) or root not in path.parents or not path.is_file():
        raise StageRefused("the workflow crate's main workflow is not a file inside the crate")
    return path


def _param(job: Job, name: str, value: ParameterValue) -> Any:
    if not _PARAM_RE.match(name):
        raise StageRefused(f"input {name!r} is not a plain parameter name")
    if isinstance(value, Path):
        path = value.resolve()
        inputs = job.directory.inputs.resolve()
        if inputs not in path.parents:
            raise StageRefused(f"input {name!r} is not a file staged for this job")
        try:
            info = path.lstat()
        except OSError:
            raise StageRefused(f"input {name!r} is missing") from None
        kind = "Directory" if stat.S_ISDIR(info.st_mode) else "File" if stat.S_ISREG(info.st_mode) else None
        if kind is None or value.is_symlink():
            raise StageRefused(f"input {name!r} is not a regular file or folder")
        return {"c-l-a-s-s": kind, "url": path.as_uri()}
    if isinstance(value, bool | int | float | str):
        return value
    raise StageRefused(f"input {name!r} has a value of an unsupported kind")


def stage_document(job: Job, options: WfExSOptions) -> dict[str, Any]:
    """The WfExS staging file (stage-definition.json) for ``job``; raises :class:`StageRefused`."""
    workflow = _main_workflow(job.directory.workflow)
    return {
        "workflow_id": workflow.as_uri(),
        "workflow_type": options.workflow_type,
        "nickname": f"job-{job.id}",
        "paranoid_mode": False,
        "workflow_config": {"secure": False, "containerType": options.container_type},
        "params": {name: _param(job, name, value) for name, value in sorted(job.parameters.items())},
    }


def local_config_document(job: Job, options: WfExSOptions) -> dict[str, Any]:
    """WfExS's local configuration (config.json) for ``job``: everything it writes stays in the job."""
    return {
        "cacheDir": str(options.cache_dir),
        "workDir": str(job.directory.work / "wfexs" / "workdirs"),
        "crypt4gh": {
            "key": str(job.directory.state / "wfexs.key"),
            "pub": str(job.directory.state / "wfexs.pub"),
            "passphrase": "",
        },
        "tools": {"containerType": options.container_type, "engineMode": "local"},
    }


class WfExSExecutor:
    """Runs a job through WfExS-backend's command line; see the module docstring."""

    name: ClassVar[str] = "wfexs"

    def __init__(self, config: AgentConfig, route: WorkflowRoute) -> None:
        self.config = config
        self.route = route
        self.options: WfExSOptions = route.options

    @classmethod
    def parse_options(cls, options: Table, config: AgentConfig) -> WfExSOptions:
        executable = options.path("executable")
        cache_dir = options.path("cache_dir")
        container_type = options.string("container_type", default="podman")
        workflow_type = options.string("workflow_type", default="cwl")
        if container_type not in CONTAINER_TYPES:
            raise ConfigError(f"{options.where} container_type: expected one of {', '.join(CONTAINER_TYPES)}")
        if workflow_type not in WORKFLOW_TYPES:
            raise ConfigError(f"{options.where} workflow_type: expected one of {', '.join(WORKFLOW_TYPES)}")
        return WfExSOptions(
            executable=executable,
            cache_dir=cache_dir,
            container_type=container_type,
            workflow_type=workflow_type,
            allow_network=options.boolean("allow_network", default=False),
        )

    def run(self, job: Job, *, cancel: threading.Event | None = None) -> ExecutionResult:
        started_at = datetime.now(UTC)
        directory = job.directory
        clear_outputs(directory.outputs)
        base = directory.work / "wfexs"
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(mode=0o700, parents=True)
        engine = Engine("WfExS-backend", "unknown", ENGINE_URL)
        details: dict[str, Any] = {"container_type": self.options.container_type}
        provenance: Path | None = None
        network = "allowed" if self.options.allow_network else "none"

        def finish(
            status: ExecutionStatus, reason: str | None, outputs: tuple[OutputFile, ...] = ()
        ) -> ExecutionResult:
            if status is not ExecutionStatus.COMPLETED:
                clear_outputs(directory.outputs)
                outputs = ()
            return ExecutionResult(
                status=status,
                started_at=started_at,
                ended_at=datetime.now(UTC),
                engine=engine,
                outputs=outputs,
                reason=reason,
                logs=tuple(sorted(path for path in directory.logs.glob("wfexs-*.log") if path.is_file())),
                provenance=provenance,
                network=network,
                details=details,
            )

        try:
            stage = stage_document(job, self.options)
        except StageRefused as exc:
            return finish(ExecutionStatus.FAILED, f"refused: {exc}")
        executable = self.options.executable
        if not executable.is_file() or not os.access(executable, os.X_OK):
            return finish(
                ExecutionStatus.FAILED, "the TRE's WfExS-backend executable is missing or not executable"
            )
        self.options.cache_dir.mkdir(parents=True, exist_ok=True)
        local_config = base / "local_config.yaml"
        stage_file = base / "job.wfex.stage"
        yaml = _yaml()
        with local_config.open("w", encoding="utf-8") as handle:
            yaml.dump(local_config_document(job, self.options), handle)

        limits = self.route.limits
        timeout = float(limits.timeout_seconds)
        deadline = time.monotonic() + timeout
        sandbox = self.config.sandbox

        def step(
            name: str, *arguments: str, seconds: float | None = None, argv: list[str] | None = None
        ) -> SandboxResult:
            remaining = deadline - time.monotonic() if seconds is None else seconds
            return run_sandboxed(
                argv or [str(executable), "-L", str(local_config), *arguments],
                cwd=base,
                env=minimal_environment(path=sandbox.path, home=directory.home, tmpdir=directory.tmp),
                limits=ResourceLimits(
                    timeout_seconds=max(remaining, 0.001),
                    cpu_seconds=limits.cpu_seconds,
                    memory_bytes=limits.memory_bytes,
                    max_file_bytes=limits.max_output_file_bytes,
                    max_open_files=sandbox.max_open_files,
                ),
                stdout=directory.logs / f"wfexs-{name}.stdout.log",
                stderr=directory.logs / f"wfexs-{name}.stderr.log",
                allow_network=self.options.allow_network,
                require_network_isolation=sandbox.require_network_isolation
                and not self.options.allow_network,
                cancel=cancel,
                grace_seconds=sandbox.cancel_grace_seconds,
            )

        def failed(name: str, outcome: SandboxResult) -> ExecutionResult | None:
            nonlocal network
            network = outcome.network
            if outcome.outcome is Outcome.CANCELLED:
                return finish(ExecutionStatus.CANCELLED, "cancelled")
            if outcome.outcome is Outcome.TIMED_OUT:
                return finish(ExecutionStatus.FAILED, f"timeout: wall-clock limit of {timeout:g} s reached")
            if not outcome.succeeded:
                what = name if name.startswith("could not") else f"WfExS-backend {name} failed"
                return finish(ExecutionStatus.FAILED, f"{what} ({outcome.describe()})")
            return None

        try:
            # WfExS fetches a file: workflow as that one file, so a CWL workflow goes to it packed (one document
            # with every step's tool), as cwltool --pack writes it; the approved crate itself is not changed.
            if self.options.workflow_type == "cwl":
                packed = base / "packed.cwl"
                main = stage["workflow_id"]
                outcome = step("pack", argv=[*_CWLTOOL, "--pack", _path_of(main)])
                if (ended := failed("could not pack the CWL workflow: cwltool --pack", outcome)) is not None:
                    return ended
                shutil.copyfile(directory.logs / "wfexs-pack.stdout.log", packed)
                stage["workflow_id"] = packed.as_uri()
            with stage_file.open("w", encoding="utf-8") as handle:
                yaml.dump(stage, handle)

            # The version names the engine in the result crate and proves the installation starts.
            outcome = step(
                "version", "--version", seconds=min(_VERSION_TIMEOUT_SECONDS, deadline - time.monotonic())
            )
            if (ended := failed("--version", outcome)) is not None:
                return ended
            version = _parse_version(directory.logs / "wfexs-version.stdout.log")
            engine = Engine("WfExS-backend", version or "unknown", ENGINE_URL)

            if not (directory.state / "wfexs.key").exists():
                if (ended := failed("init", step("init", "init"))) is not None:
                    return ended
            id_file = directory.state / "wfexs-workdir-id"
            id_file.unlink(missing_ok=True)
            if (
                ended := failed(
                    "stage", step("stage", "stage", "-W", str(stage_file), "--save-workdir-id", str(id_file))
                )
            ) is not None:
                return ended
            try:
                workdir_id = id_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):
                workdir_id = ""
            if not _WORKDIR_ID_RE.match(workdir_id):
                return finish(
                    ExecutionStatus.FAILED, "WfExS-backend stage did not save a usable working directory id"
                )
            details["workdir_id"] = workdir_id
            if (
                ended := failed("offline-execute", step("execute", "offline-execute", "-J", workdir_id))
            ) is not None:
                return ended
            # The run crate is provenance kept inside the TRE; without it the outputs still stand.
            exported = step("export", "export-crate", "-J", workdir_id)
            if exported.outcome is Outcome.CANCELLED:
                return finish(ExecutionStatus.CANCELLED, "cancelled")
            if not exported.succeeded:
                details["provenance"] = f"WfExS-backend export-crate failed ({exported.describe()})"

            workdir = (base / "workdirs" / workdir_id).resolve()
            if (base / "workdirs").resolve() not in workdir.parents:
                return finish(
                    ExecutionStatus.FAILED, "WfExS-backend's working directory is not inside the job"
                )
            crates = sorted(
                path for path in workdir.glob("**/*crate.zip") if path.is_file() and not path.is_symlink()
            )
            provenance = crates[0] if crates else None
            try:
                outputs = _collect(
                    _execution_outputs(workdir / "outputs"),
                    directory.outputs,
                    max_bytes=limits.max_output_file_bytes,
                )
            except OutputError as exc:
                return finish(ExecutionStatus.FAILED, f"output refused: {exc}")
            if not outputs:
                return finish(
                    ExecutionStatus.FAILED, "WfExS-backend finished but the workflow produced no outputs"
                )
            return finish(ExecutionStatus.COMPLETED, None, outputs)
        except SandboxError as exc:
            return finish(ExecutionStatus.FAILED, f"refused: {exc}")


def _path_of(uri: str) -> str:
    return unquote(urlparse(uri).path)


def _is_run_crate(path: Path) -> bool:
    """WfExS's own run crate (``export-crate`` writes ``outputs/execution.ro-crate.zip``)."""
    return path.name.endswith("crate.zip")


def _execution_outputs(outputs: Path) -> Path:
    """WfExS keeps each execution's outputs in ``outputs/<execution id>/``; one execution ran here."""
    if outputs.is_dir() and not outputs.is_symlink():
        entries = [entry for entry in outputs.iterdir() if not _is_run_crate(entry)]
        if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
            if _WORKDIR_ID_RE.match(entries[0].name):
                return entries[0]
    return outputs


def _collect(source: Path, outputs_dir: Path, *, max_bytes: int) -> tuple[OutputFile, ...]:
    """Every regular file under ``source`` as an output with the same relative path."""
    if not source.is_dir() or source.is_symlink():
        return ()
    collected = []
    for path in sorted(source.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        if _is_run_crate(path):
            continue  # WfExS's provenance crate: inside the TRE only
        if len(collected) >= MAX_OUTPUT_FILES:
            raise OutputError(f"the workflow produced more than {MAX_OUTPUT_FILES} output files")
        relative = path.relative_to(source).as_posix()
        collected.append(collect_output(path, outputs_dir, relative, max_bytes=max_bytes))
    return tuple(collected)


def _parse_version(stdout: Path) -> str | None:
    try:
        match = _VERSION_RE.search(stdout.read_text(encoding="utf-8", errors="replace")[:4000])
    except OSError:
        return None
    return match.group(1) if match else None


def read_stage_file(path: Path) -> Mapping[str, Any]:
    """A staging file as WfExS reads it (YAML), for tests and for operators checking a job."""
    with path.open(encoding="utf-8") as handle:
        return _yaml().load(handle)

"""``cwl``: run an approved CWL workflow with cwltool inside the sandbox; container steps run with podman.

cwltool runs as a subprocess (its ``run()`` entry point, ``--strict``), never in-process: a subprocess
can be limited and killed as a process group, cwltool installs its own SIGTERM clean-up only in its
command-line entry point, and in-process runs leak state between jobs.

Workflows without a ``DockerRequirement`` run with ``--no-container``: their tools use the host's programs
(``python3``, coreutils), so the TRE approves workflows knowing exactly what they can call. Workflows
that declare one run with ``--podman --disable-pull`` and only if this TRE set up ``[containers]``. Before
anything runs, every image the workflow names must be in the TRE's local store and its digest must be
both in ``[accept] container_digests`` and in the portal's approval of the workflow (``containers`` in
its Safe Settings): the portal can narrow what runs, never widen it. ``dockerLoad``, ``dockerFile`` and
``dockerImport`` are refused (nothing is fetched or built), and so is ``NetworkAccess``. cwltool then
reaches podman only through :mod:`agent.podman_shim`, which checks each ``podman run`` again (approved
digest, run by image id, mounts only from the job and the TRE's datasets) and adds no network, a
read-only root, no capabilities, the route's memory limit and the TRE's ``runtime`` and ``ulimits``.

Inputs: the job's parameters become the CWL job order (string values are converted to the ``int``,
``float`` or ``boolean`` the workflow declares). Input files must lie in the job's ``inputs/``
directory. A TRE dataset, if the route names one, is given as a ``File`` input chosen by the TRE
(``dataset_input``); a request can never set that input. Credentials are never CWL inputs: cwltool
would copy them into its provenance.

Outputs: only the ``File`` and ``Directory`` values of cwltool's output object, that is, the workflow's
declared outputs, are copied into ``outputs/``, and only if they are regular files inside cwltool's
output directory. Provenance (cwltool's CWLProv research object and, from it, a Workflow Run Crate made
by runcrate) stays under ``provenance/``: it holds copies of the inputs and never leaves the TRE. What
may leave is ``provenance/released/``: a Provenance Run Crate stripped of data, paths and credentials
(:mod:`agent.provenance`), which the runner puts in the results crate.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlparse

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from agent import podman_shim
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
from agent.jobs import Job, JobDirectory, ParameterValue
from agent.provenance import ProvenanceError, release_provenance
from agent.sandbox import (
    Outcome,
    ResourceLimits,
    SandboxError,
    minimal_environment,
    probe_container_host_isolation,
    run_sandboxed,
)

__all__ = ["CwlExecutor", "CwlOptions", "job_order"]

# cwltool's command-line entry point. Not `python -m cwltool`: its __main__ drops run()'s return value,
# so every failure would exit with status 0.
_CWLTOOL = (sys.executable, "-c", "import sys; from cwltool.main import run; sys.exit(run())")
# cwltool's exit status when a workflow needs a feature it cannot provide (e.g. DockerRequirement
# under --no-container).
_UNSUPPORTED_REQUIREMENT = 33
_SCALAR_TYPES = {"int": int, "long": int, "float": float, "double": float, "boolean": bool, "string": str}


class JobOrderError(ValueError):
    """The job's parameters cannot be turned into a CWL job order."""


class ContainerRefused(ValueError):
    """The workflow's containers break this TRE's rules; the message is safe to show the researcher."""


_PODMAN_ADDRESS_SPACE = 1 << 42
_IMAGE_KEYS = ("dockerPull", "dockerImageId")
_REFUSED_IMAGE_KEYS = ("dockerLoad", "dockerFile", "dockerImport")


@dataclass(frozen=True)
class CwlOptions:
    """``[workflows.options]`` of a ``cwl`` route.

    ``workflow`` is the main CWL file, relative to the unpacked Workflow RO-Crate (default: the crate's
    ``mainEntity``). ``dataset`` names a SQLite dataset given to the workflow as the ``File`` input
    ``dataset_input``. ``provenance`` keeps cwltool's CWLProv research object, converted with runcrate
    into a Workflow Run Crate, in the job's ``provenance/`` directory.
    """

    workflow: str | None = None
    dataset: str | None = None
    dataset_input: str = "dataset"
    provenance: bool = True


class CwlExecutor:
    """Runs CWL workflows; see the module docstring."""

    name: ClassVar[str] = "cwl"
    engine = Engine(
        "cwltool",
        importlib.metadata.version("cwltool"),
        "https://github.com/common-workflow-language/cwltool",
    )

    def __init__(self, config: AgentConfig, route: WorkflowRoute) -> None:
        self.config = config
        self.route = route
        self.options: CwlOptions = route.options

    @classmethod
    def parse_options(cls, options: Table, config: AgentConfig) -> CwlOptions:
        dataset = options.string("dataset", default=None)
        if dataset is not None:
            if dataset not in config.datasets:
                raise ConfigError(f"{options.where} dataset: no dataset named {dataset!r} in [datasets]")
            if config.datasets[dataset].engine != "sqlite":
                # The workflow runs without network, so it can only be given a file.
                raise ConfigError(f"{options.where} dataset: CWL workflows can only be given SQLite datasets")
        workflow = options.string("workflow", default=None)
        if workflow is not None and (Path(workflow).is_absolute() or ".." in Path(workflow).parts):
            raise ConfigError(f"{options.where} workflow: must be a path inside the workflow crate")
        return CwlOptions(
            workflow=workflow,
            dataset=dataset,
            dataset_input=options.string("dataset_input", default="dataset"),
            provenance=options.boolean("provenance", default=True),
        )

    def run(self, job: Job, *, cancel: threading.Event | None = None) -> ExecutionResult:
        started_at = datetime.now(UTC)
        directory = job.directory
        clear_outputs(directory.outputs)
        stdout, stderr = directory.logs / "cwltool.stdout.json", directory.logs / "cwltool.stderr.log"
        provenance = directory.provenance / "cwlprov"
        refusal_file = directory.logs / "container-refusal.txt"
        sandbox = self.config.sandbox
        network = None

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
                engine=self.engine,
                outputs=outputs,
                reason=reason,
                logs=tuple(sorted(directory.logs.iterdir())),
                provenance=provenance
                if status is ExecutionStatus.COMPLETED and provenance.exists()
                else None,
                network=network,
            )

        try:
            workflow = self._workflow_path(job)
            order = job_order(
                workflow, job, dataset=self._dataset_path(), dataset_input=self.options.dataset_input
            )
        except (JobOrderError, OSError) as exc:
            return finish(ExecutionStatus.FAILED, f"cannot prepare the workflow: {exc}")
        try:
            policy = self._container_policy(job)
        except ContainerRefused as exc:
            return finish(ExecutionStatus.FAILED, f"refused: {exc}")
        order_path = directory.work / "job-order.json"
        order_path.write_text(json.dumps(order, indent=2))
        outdir = directory.work / "cwl-outputs"
        for stale in (outdir, provenance, directory.provenance / "run-crate"):
            shutil.rmtree(stale, ignore_errors=True)

        path = (
            sandbox.path
            if policy is None
            else f"{podman_shim.write_launcher(directory.tmp / 'bin', policy)}:{sandbox.path}"
        )
        engine = ["--no-container"] if policy is None else ["--podman", "--disable-pull"]
        argv = [
            *_CWLTOOL,
            *engine,
            "--strict",
            "--disable-color",
            "--outdir",
            str(outdir),
            "--tmpdir-prefix",
            f"{directory.tmp}/cwl-",
            "--tmp-outdir-prefix",
            f"{directory.tmp}/cwl-out-",
        ]
        if self.options.provenance:
            # The defaults keep the TRE's user account and host name out of the provenance.
            argv += [
                "--provenance",
                str(provenance),
                "--disable-user-provenance",
                "--disable-host-provenance",
            ]
        argv += [str(workflow), str(order_path)]
        limits = self.route.limits
        try:
            result = run_sandboxed(
                argv,
                cwd=directory.work,
                env=minimal_environment(path=path, home=directory.home, tmpdir=directory.tmp),
                limits=ResourceLimits(
                    timeout_seconds=limits.timeout_seconds,
                    cpu_seconds=limits.cpu_seconds,
                    # podman is a Go program, which reserves far more address space than it uses:
                    # with containers, the route's memory limit is the containers' cgroup limit instead.
                    memory_bytes=limits.memory_bytes if policy is None else _PODMAN_ADDRESS_SPACE,
                    max_file_bytes=limits.max_output_file_bytes,
                    max_open_files=_open_files(sandbox.max_open_files, policy),
                ),
                stdout=stdout,
                stderr=stderr,
                require_network_isolation=sandbox.require_network_isolation,
                cancel=cancel,
                grace_seconds=sandbox.cancel_grace_seconds,
                isolation=None if policy is None else probe_container_host_isolation(),
            )
        except SandboxError as exc:
            return finish(ExecutionStatus.FAILED, f"refused: {exc}")
        finally:
            if policy is not None:
                podman_shim.remove_containers(policy)
        network = result.network
        if policy is not None:
            network = f"{network}; containers: podman --network=none"
        if result.outcome is Outcome.CANCELLED:
            return finish(ExecutionStatus.CANCELLED, "cancelled")
        if result.outcome is Outcome.TIMED_OUT:
            return finish(ExecutionStatus.FAILED, result.describe(limits.timeout_seconds))
        if refusal_file.exists():
            refusal = refusal_file.read_text(encoding="utf-8").splitlines()[0]
            return finish(ExecutionStatus.FAILED, f"refused: {refusal}")
        if result.returncode == _UNSUPPORTED_REQUIREMENT:
            return finish(
                ExecutionStatus.FAILED,
                "the workflow needs a feature this TRE does not provide (e.g. a DockerRequirement)",
            )
        if not result.succeeded:
            return finish(ExecutionStatus.FAILED, f"the workflow failed: cwltool {result.describe()}")
        try:
            outputs = self._collect(stdout, outdir, directory.outputs)
        except OutputError as exc:
            return finish(ExecutionStatus.FAILED, f"output refused: {exc}")
        if self.options.provenance:
            self._make_run_crate(provenance, directory, cancel)
            self._release_provenance(job, outputs)
        return finish(ExecutionStatus.COMPLETED, None, outputs)

    def _container_policy(self, job: Job) -> dict[str, Any] | None:
        """The podman shim's policy for ``job``, or None when the workflow declares no container.

        Raises :class:`ContainerRefused` when a container the workflow names may not run here.
        """
        requests = container_requests(job.directory.workflow)
        if not requests:
            return None
        containers = self.config.containers
        if containers is None:
            raise ContainerRefused("the workflow runs in containers and this TRE runs no containers")
        for key, _value in requests:
            if key in _REFUSED_IMAGE_KEYS:
                raise ContainerRefused(
                    f"the workflow asks to {key[len('docker') :].lower()} a container image; "
                    "this TRE runs only approved images from its own store"
                )
            if key == "networkAccess":
                raise ContainerRefused("the workflow asks for network access, which this TRE never gives")
        portal = job.service.get("containers")
        portal_digests = {str(item) for item in portal} if isinstance(portal, list | tuple) else set()
        approved = sorted(self.config.accept.container_digests & portal_digests)
        dataset = self._dataset_path()
        policy: dict[str, Any] = {
            "podman": str(containers.podman),
            "runtime": containers.runtime,
            "ulimits": list(containers.ulimits),
            "memory_bytes": self.route.limits.memory_bytes,
            "pids_limit": containers.pids_limit,
            "approved": approved,
            "readable": [str(job.directory.root), *([str(dataset)] if dataset else [])],
            "writable": [str(job.directory.tmp)],
            "refusal_file": str(job.directory.logs / "container-refusal.txt"),
            # Every container of this job carries it, so none outlives the job (podman_shim.remove_containers).
            "label": f"five-safes-job={job.directory.root.name}-{uuid.uuid4().hex[:12]}",
        }
        for _, image in requests:
            if not isinstance(image, str):
                continue
            try:
                _, digests = podman_shim.image_identity(policy, image)
            except podman_shim.Refusal as exc:
                raise ContainerRefused(str(exc)) from None
            except (OSError, ValueError) as exc:
                raise ContainerRefused(f"this TRE's container engine cannot be used ({exc})") from None
            if not digests & set(approved):
                where = (
                    "by the portal's approval of this workflow"
                    if digests & self.config.accept.container_digests
                    else "in this TRE's own rules"
                )
                raise ContainerRefused(
                    f"the container image {image!r} ({min(digests)}) is not approved {where}"
                )
        return policy

    def _release_provenance(self, job: Job, outputs: tuple[OutputFile, ...]) -> None:
        """Write the releasable Provenance Run Crate (see :mod:`agent.provenance`) into ``provenance/released``.

        When the run crate is missing or cannot be stripped safely, nothing is released and the job still
        completes: the full provenance stays in the TRE.
        """
        directory = job.directory
        released = directory.provenance / "released"
        shutil.rmtree(released, ignore_errors=True)
        dataset = self._dataset_path()
        try:
            release_provenance(
                directory.provenance / "run-crate",
                released,
                outputs=[output.path for output in outputs],
                tre=self.config.tre,
                workflow_version=job.workflow_version,
                workflow_url=job.workflow_id,
                forbidden=[
                    str(directory.root),
                    str(self.config.work_dir),
                    *([str(dataset)] if dataset else []),
                ],
            )
        except (ProvenanceError, OSError, KeyError, TypeError, ValueError):
            shutil.rmtree(released, ignore_errors=True)

    def _workflow_path(self, job: Job) -> Path:
        crate = job.directory.workflow.resolve()
        name = self.options.workflow or _main_entity(crate)
        path = (crate / name).resolve()
        if not path.is_relative_to(crate) or not path.is_file():
            raise JobOrderError(f"the workflow crate has no file {name!r}")
        return path

    def _dataset_path(self) -> Path | None:
        if self.options.dataset is None:
            return None
        return self.config.dataset(self.options.dataset).sqlite_path

    def _collect(self, stdout: Path, outdir: Path, outputs_dir: Path) -> tuple[OutputFile, ...]:
        try:
            document = json.loads(stdout.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise OutputError("cwltool did not report an output object") from None
        if not isinstance(document, dict):
            raise OutputError("cwltool's output object is not a JSON object")
        outdir = outdir.resolve()
        limit = self.route.limits.max_output_file_bytes
        collected = []
        for output_id, value in sorted(document.items()):
            for source, relative in _declared_files(value, outdir):
                description = f"Workflow output {output_id!r}"
                collected.append(
                    collect_output(source, outputs_dir, relative, max_bytes=limit, description=description)
                )
        return tuple(collected)

    def _make_run_crate(
        self, provenance: Path, directory: JobDirectory, cancel: threading.Event | None
    ) -> None:
        """Convert the CWLProv research object into a Workflow Run Crate beside it, for audit in the TRE.

        A failed conversion is logged and leaves the research object in place; it does not fail the job.
        """
        limits = self.route.limits
        sandbox = self.config.sandbox
        run_sandboxed(
            [
                sys.executable,
                "-m",
                "runcrate.cli",
                "convert",
                str(provenance),
                "-o",
                str(directory.provenance / "run-crate"),
            ],
            cwd=directory.work,
            env=minimal_environment(path=sandbox.path, home=directory.home, tmpdir=directory.tmp),
            limits=ResourceLimits(
                timeout_seconds=min(limits.timeout_seconds, 300),
                cpu_seconds=limits.cpu_seconds,
                memory_bytes=limits.memory_bytes,
                max_file_bytes=max(limits.max_output_file_bytes, 1 << 30),
                max_open_files=sandbox.max_open_files,
            ),
            stdout=directory.logs / "runcrate.stdout.log",
            stderr=directory.logs / "runcrate.stderr.log",
            cancel=cancel,
            grace_seconds=sandbox.cancel_grace_seconds,
        )


def job_order(
    workflow: Path, job: Job, *, dataset: Path | None = None, dataset_input: str = "dataset"
) -> dict[str, Any]:
    """The CWL job order for ``job``: its parameters, typed as ``workflow`` declares, plus the dataset.

    Raises :class:`JobOrderError` if a file parameter lies outside the job's ``inputs/`` directory, a
    value does not fit its declared type, or the request tries to set the TRE's dataset input.
    """
    declared = _declared_inputs(workflow)
    inputs_dir = job.directory.inputs.resolve()
    order: dict[str, Any] = {}
    for name, value in job.parameters.items():
        if dataset is not None and name == dataset_input:
            raise JobOrderError(f"input {name!r} is provided by the TRE, not by the request")
        if name not in declared:
            raise JobOrderError(f"the workflow has no input named {name!r}")
        if isinstance(value, Path):
            path = value.resolve()
            if not path.is_relative_to(inputs_dir) or not path.is_file():
                raise JobOrderError(f"input {name!r} is not a file staged in the job's inputs directory")
            order[name] = {"class": "File", "path": str(path)}
        else:
            order[name] = _coerce(name, value, declared[name])
    if dataset is not None:
        order[dataset_input] = {"class": "File", "path": str(dataset)}
    return order


def _open_files(default: int, policy: dict[str, Any] | None) -> int:
    """The sandbox's RLIMIT_NOFILE: a container's ``nofile`` ulimit cannot exceed what podman inherits."""
    wanted = [default]
    for ulimit in (policy or {}).get("ulimits", []):
        name, _, values = ulimit.partition("=")
        if name == "nofile":
            wanted += [int(value) for value in values.split(":") if int(value) > 0]
    return max(wanted)


def container_requests(crate: Path) -> list[tuple[str, Any]]:
    """Every ``(key, value)`` in the workflow crate's CWL files that asks for a container or the network.

    Keys are ``dockerPull``/``dockerImageId`` (an image to run), ``dockerLoad``/``dockerFile``/``dockerImport``
    (refused) and ``networkAccess`` (when true). Requirements and hints count alike: cwltool acts on both.
    """
    found: list[tuple[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key in _IMAGE_KEYS or key in _REFUSED_IMAGE_KEYS:
                    found.append((str(key), value))
                elif key == "networkAccess" and value not in (False, "false"):
                    found.append(("networkAccess", value))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for path in sorted(crate.rglob("*")):
        if path.suffix not in (".cwl", ".yml", ".yaml") or not path.is_file() or path.is_symlink():
            continue
        try:
            walk(YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, YAMLError):
            continue
    return list(
        dict.fromkeys((key, value if isinstance(value, str) else repr(value)) for key, value in found)
    )


def _coerce(name: str, value: ParameterValue, declared: Any) -> ParameterValue:
    """Convert a string parameter (PropertyValue values are often strings) to the declared scalar type."""
    kind = _scalar_type(declared)
    if kind is None or not isinstance(value, str):
        return value
    try:
        if kind is bool:
            if value.strip().lower() not in ("true", "false"):
                raise ValueError(value)
            return value.strip().lower() == "true"
        return kind(value)
    except ValueError:
        raise JobOrderError(f"input {name!r}: {value!r} is not a valid {kind.__name__}") from None


def _scalar_type(declared: Any) -> type | None:
    if isinstance(declared, dict):
        declared = declared.get("type")
    if isinstance(declared, list):
        kinds = [item for item in declared if item != "null"]
        declared = kinds[0] if len(kinds) == 1 else None
    if isinstance(declared, str):
        return _SCALAR_TYPES.get(declared.rstrip("?"))
    return None


def _declared_inputs(workflow: Path) -> dict[str, Any]:
    """The main process's inputs, ``{id: type}``, read from the CWL file without executing anything."""
    try:
        document = YAML(typ="safe", pure=True).load(workflow.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError) as exc:
        raise JobOrderError(f"cannot read {workflow.name}: {exc}") from None
    if isinstance(document, dict) and "$graph" in document:
        mains = [
            item
            for item in document["$graph"]
            if isinstance(item, dict) and item.get("id") in ("main", "#main")
        ]
        document = mains[0] if mains else None
    if not isinstance(document, dict):
        raise JobOrderError(f"{workflow.name} is not a CWL process")
    inputs = document.get("inputs", {})
    if isinstance(inputs, dict):
        return {str(key).lstrip("#"): value for key, value in inputs.items()}
    if isinstance(inputs, list):
        return {str(item.get("id", "")).lstrip("#"): item for item in inputs if isinstance(item, dict)}
    raise JobOrderError(f"{workflow.name} has malformed inputs")


def _main_entity(crate: Path) -> str:
    """The ``mainEntity`` of the Workflow RO-Crate unpacked in ``crate``."""
    try:
        metadata = json.loads((crate / "ro-crate-metadata.json").read_text(encoding="utf-8"))
        graph = {entity["@id"]: entity for entity in metadata["@graph"]}
        return graph["./"]["mainEntity"]["@id"]
    except (OSError, ValueError, KeyError, TypeError):
        raise JobOrderError("the workflow crate's ro-crate-metadata.json names no mainEntity") from None


def _declared_files(value: Any, outdir: Path) -> Iterator[tuple[Path, str]]:
    """(source, output path) for every file in an output value; Directory contents keep their layout."""
    if isinstance(value, list):
        for item in value:
            yield from _declared_files(item, outdir)
        return
    if not isinstance(value, Mapping) or value.get("class") not in ("File", "Directory"):
        return  # a scalar or null output: nothing to copy
    source = _local_path(value)
    if not source.is_relative_to(outdir):
        raise OutputError(
            f"output {value.get('basename', source.name)!r} lies outside cwltool's output directory"
        )
    if value["class"] == "File":
        yield source, source.name
        return
    if source.is_symlink() or not source.is_dir():
        raise OutputError(f"output directory {source.name!r} is not a directory")
    for path in sorted(source.rglob("*")):
        if path.is_symlink() or not path.is_dir():
            yield path, str(Path(source.name) / path.relative_to(source))


def _local_path(value: Mapping[str, Any]) -> Path:
    if "path" in value:
        raw = Path(value["path"])
    else:
        location = urlparse(str(value.get("location", "")))
        if location.scheme != "file":
            raise OutputError("an output is not a local file")
        raw = Path(unquote(location.path))
    # Resolve the parent only: the file itself may be a symlink, which collect_output refuses.
    return raw.parent.resolve() / raw.name

"""``bitfount``: run the approved Bitfount task on the approved pods with ``bitfount run_modeller``.

Bitfount 10 to 13 need Python 3.12 exactly and Bitfount's hosted services (hub, access manager, message
service); there is no offline mode. So the agent never imports Bitfount: it writes a task file and runs
the ``bitfount`` command of a separate Python 3.12 environment named in ``[bitfount]`` of agent.toml, as a
subprocess under the sandbox's process-group, time-out, cancellation and minimal-environment rules, but
**with network** (outbound HTTPS to Bitfount). Formats below were read from the bitfount 13.0.0 wheel
(``bitfount/runners/config_schemas/``, ``bitfount/federated/protocols/results_only.py``) and checked
against 10.0.1.

What may run (decided before anything starts; a refusal is a ``FAILED`` result):

* ``job.service`` holds what the TRE's officers approved in the portal: ``pods`` (``owner/pod``),
  ``task`` (``algorithm`` and ``protocol``) and an optional ``project_id``. The request may address a
  subset of the approved pods and only the approved algorithm; the protocol must be
  ``bitfount.ResultsOnly``, the one whose results this executor can collect.
* The route's ``[workflows.options]`` may narrow further (``pods``, ``algorithms``): the TRE's own
  configuration is a second, local allow-list.

The request's inputs (:data:`PARAMETERS`): ``pods`` (comma- or space-separated; default: every approved
pod), ``algorithm`` (optional; must be the approved one), ``query`` (text or a staged file: the
``query`` argument of ``bitfount.SqlQuery``) and ``arguments`` (a JSON object, as text or a staged file:
further algorithm arguments). Any other input is refused.

One ``bitfount run_modeller <task.yaml> --require_all_pods=True`` runs per pod, each with its own results
directory (``BITFOUNT_TASK_RESULTS_DIR``): Bitfount's ResultsOnly modeller writes every pod's DataFrame to
the same ``results.csv``, so a single multi-pod run would keep only the last pod's table. With a
``project_id`` Bitfount writes ``<dir>/<project_id>/<task id>/results.csv``, otherwise
``<dir>/results.csv``. Each pod's table becomes the output ``<owner>/<pod>.csv``; a pod that fails or
returns no table fails the whole job.

The TRE's API key id and key are read from files for each job and reach the modeller only as the
``BITFOUNT_API_KEY_ID`` and ``BITFOUNT_API_KEY`` environment variables (Bitfount reads them when the task
file has no ``secrets``): never in the task file, the command line, the outputs or a reason. Files the
modeller leaves in the job's ``logs/``, ``work/``, ``home/`` and ``tmp/`` are scrubbed of them afterwards.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from ruamel.yaml import YAML

from agent.config import AgentConfig, BitfountSettings, ConfigError, Table, WorkflowRoute
from agent.executors.base import (
    Engine,
    ExecutionResult,
    ExecutionStatus,
    OutputError,
    OutputFile,
    check_output_path,
    clear_outputs,
    write_output,
)
from agent.jobs import Job, ParameterValue
from agent.sandbox import Outcome, ResourceLimits, SandboxResult, minimal_environment, run_sandboxed

__all__ = [
    "PARAMETERS",
    "RESULTS_ONLY",
    "BitfountExecutor",
    "BitfountOptions",
    "PodResults",
    "ResultsError",
    "TaskPlan",
    "TaskRefused",
    "output_path",
    "plan_task",
    "read_pod_results",
    "render_csv",
    "task_document",
    "write_task_file",
]

#: The only protocol whose results this executor knows how to collect.
RESULTS_ONLY = "bitfount.ResultsOnly"
#: The request inputs this executor reads; any other input is refused.
PARAMETERS = ("pods", "algorithm", "query", "arguments")
ENGINE_URL = "https://pypi.org/project/bitfount/"

# As the portal validates approved pods (portal/service_settings.py): "<owner>/<pod>".
POD_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}/[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_DOTTED_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_PROJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
_ARGUMENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_VERSION_RE = re.compile(r"^\d+\.\d+(?:\.\d+)?[A-Za-z0-9.+-]*$")
# A query or an arguments file is a few lines of text, never data.
MAX_INPUT_BYTES = 1 << 20
# Redaction reads files in chunks; a secret split across two chunks is caught by the overlap.
_REDACT_CHUNK = 1 << 20
_REDACTED = b"[REDACTED]"
# `bitfount version` imports the whole SDK; asked once per installed executable.
_VERSION_TIMEOUT_SECONDS = 300
_versions: dict[tuple[str, int, int], str] = {}
_versions_lock = threading.Lock()


class TaskRefused(ValueError):
    """The request asks for something the approval does not allow; the message is agent-written."""


class ResultsError(ValueError):
    """A pod's results are missing or unreadable; the message is agent-written."""


@dataclass(frozen=True)
class BitfountOptions:
    """``[workflows.options]`` of a ``bitfount`` route: optional local allow-lists of pods and algorithms.

    ``None`` means the TRE's configuration adds no restriction to the portal's approval.
    """

    pods: tuple[str, ...] | None = None
    algorithms: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TaskPlan:
    """What one job will run: checked against the approval, ready to become task files."""

    pods: tuple[str, ...]
    algorithm: str
    protocol: str
    arguments: Mapping[str, Any]
    project_id: str | None = None


@dataclass(frozen=True)
class PodResults:
    """One pod's results table: a header and rows of the same width, all strings."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


class BitfountExecutor:
    """Runs an approved Bitfount task per pod; see the module docstring."""

    name: ClassVar[str] = "bitfount"

    def __init__(self, config: AgentConfig, route: WorkflowRoute) -> None:
        if config.bitfount is None:
            raise ConfigError("the bitfount executor needs a [bitfount] section")
        self.config = config
        self.settings: BitfountSettings = config.bitfount
        self.route = route
        self.options: BitfountOptions = route.options

    @classmethod
    def parse_options(cls, options: Table, config: AgentConfig) -> BitfountOptions:
        if config.bitfount is None:
            raise ConfigError(f"{options.where}: the bitfount executor needs a [bitfount] section")
        pods = options.string_list("pods", default=None)
        if pods is not None:
            bad = [pod for pod in pods if not POD_RE.match(pod)]
            if bad or not pods:
                raise ConfigError(f'{options.where} pods: expected pod identifiers such as "owner/pod"')
        algorithms = options.string_list("algorithms", default=None)
        if algorithms is not None:
            if not algorithms or not all(_DOTTED_RE.match(name) for name in algorithms):
                raise ConfigError(
                    f'{options.where} algorithms: expected algorithm names such as "bitfount.SqlQuery"'
                )
        return BitfountOptions(
            pods=tuple(pods) if pods is not None else None,
            algorithms=tuple(algorithms) if algorithms is not None else None,
        )

    def run(self, job: Job, *, cancel: threading.Event | None = None) -> ExecutionResult:
        started_at = datetime.now(UTC)
        directory = job.directory
        clear_outputs(directory.outputs)
        work = directory.work / "bitfount"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(mode=0o700, parents=True)
        engine = Engine("Bitfount", "unknown", ENGINE_URL)
        details: dict[str, Any] = {}
        secrets: tuple[str, ...] = ()

        def finish(
            status: ExecutionStatus, reason: str | None, outputs: tuple[OutputFile, ...] = ()
        ) -> ExecutionResult:
            if secrets:
                for root in (directory.logs, work, directory.home, directory.tmp):
                    redact_tree(root, secrets)
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
                logs=tuple(sorted(path for path in directory.logs.rglob("*") if path.is_file())),
                network="allowed: the modeller needs outbound HTTPS to Bitfount's hosted services",
                details=details,
            )

        try:
            plan = plan_task(job, self.options)
        except TaskRefused as exc:
            return finish(ExecutionStatus.FAILED, f"refused: {exc}")
        details.update(
            pods=list(plan.pods),
            algorithm=plan.algorithm,
            protocol=plan.protocol,
            project_id=plan.project_id,
        )
        executable = self.settings.executable
        if not executable.is_file() or not os.access(executable, os.X_OK):
            return finish(
                ExecutionStatus.FAILED, "the TRE's Bitfount executable is missing or not executable"
            )
        try:
            key_id, key = self._read_api_keys()
        except (OSError, UnicodeDecodeError, ValueError):
            return finish(ExecutionStatus.FAILED, "the TRE's Bitfount API key files cannot be read")
        secrets = _secret_forms(key_id, key)

        limits = self.route.limits
        timeout = float(limits.timeout_seconds)
        if self.settings.timeout_seconds is not None:
            timeout = min(timeout, float(self.settings.timeout_seconds))
        deadline = time.monotonic() + timeout
        sandbox = self.config.sandbox

        def sandboxed(
            argv: list[str], *, name: str, cwd: Path, seconds: float, extra: Mapping[str, str]
        ) -> SandboxResult:
            return run_sandboxed(
                argv,
                cwd=cwd,
                env=minimal_environment(
                    path=sandbox.path, home=directory.home, tmpdir=directory.tmp, extra=extra
                ),
                limits=ResourceLimits(
                    timeout_seconds=seconds,
                    cpu_seconds=limits.cpu_seconds,
                    memory_bytes=limits.memory_bytes,
                    max_file_bytes=limits.max_output_file_bytes,
                    max_open_files=sandbox.max_open_files,
                ),
                stdout=directory.logs / f"{name}.stdout.log",
                stderr=directory.logs / f"{name}.stderr.log",
                allow_network=True,
                cancel=cancel,
                grace_seconds=sandbox.cancel_grace_seconds,
            )

        # The version is the Engine of the result crate; asking for it also proves the installation works.
        version = self._cached_version()
        if version is None:
            seconds = min(deadline - time.monotonic(), _VERSION_TIMEOUT_SECONDS)
            outcome = sandboxed(
                [str(executable), "version"],
                name="bitfount-version",
                cwd=work,
                seconds=max(seconds, 0.001),
                extra=dict(self.settings.env),
            )
            if outcome.outcome is Outcome.CANCELLED:
                return finish(ExecutionStatus.CANCELLED, "cancelled")
            version = _parse_version(directory.logs / "bitfount-version.stdout.log")
            if not outcome.succeeded or version is None:
                return finish(
                    ExecutionStatus.FAILED,
                    f"the TRE's Bitfount installation did not report its version ({outcome.describe()})",
                )
            self._remember_version(version)
        engine = Engine("Bitfount", version, ENGINE_URL)

        tables: list[tuple[str, PodResults]] = []
        for index, pod in enumerate(plan.pods, start=1):
            if cancel is not None and cancel.is_set():
                return finish(ExecutionStatus.CANCELLED, "cancelled")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return finish(ExecutionStatus.FAILED, f"timeout: wall-clock limit of {timeout:g} s reached")
            pod_dir = work / f"pod-{index}"
            results_dir = pod_dir / "results"
            results_dir.mkdir(mode=0o700, parents=True)
            task_file = pod_dir / "task.yaml"
            write_task_file(task_file, task_document(plan, pod, self.settings))
            env = {
                **self.settings.env,
                "BITFOUNT_API_KEY_ID": key_id,
                "BITFOUNT_API_KEY": key,
                "BITFOUNT_TASK_RESULTS_DIR": str(results_dir),
                "BITFOUNT_OUTPUT_DIR": str(pod_dir),
                "BITFOUNT_LOGS_DIR": str(directory.logs / f"bitfount-pod-{index}"),
            }
            outcome = sandboxed(
                [str(executable), "run_modeller", str(task_file), "--require_all_pods=True"],
                name=f"bitfount-pod-{index}",
                cwd=pod_dir,
                seconds=remaining,
                extra=env,
            )
            if outcome.outcome is Outcome.CANCELLED:
                return finish(ExecutionStatus.CANCELLED, "cancelled")
            if outcome.outcome is Outcome.TIMED_OUT:
                return finish(ExecutionStatus.FAILED, f"timeout: wall-clock limit of {timeout:g} s reached")
            if not outcome.succeeded:
                return finish(
                    ExecutionStatus.FAILED,
                    f"the Bitfount task failed for pod {pod}: bitfount run_modeller {outcome.describe()}",
                )
            try:
                tables.append((pod, read_pod_results(results_dir, max_bytes=limits.max_output_file_bytes)))
            except ResultsError as exc:
                return finish(ExecutionStatus.FAILED, f"pod {pod}: {exc}")

        outputs = []
        try:
            for pod, table in tables:
                outputs.append(
                    write_output(
                        directory.outputs,
                        output_path(pod),
                        render_csv(table),
                        max_bytes=limits.max_output_file_bytes,
                        description=f"Results of {plan.algorithm} from Bitfount pod {pod}",
                    )
                )
        except OutputError as exc:
            return finish(ExecutionStatus.FAILED, f"output refused: {exc}")
        return finish(ExecutionStatus.COMPLETED, None, tuple(outputs))

    def _read_api_keys(self) -> tuple[str, str]:
        key_id = self.settings.api_key_id_file.read_text(encoding="utf-8").strip()
        key = self.settings.api_key_file.read_text(encoding="utf-8").strip()
        if not key_id or not key or any(char.isspace() for char in key_id + key):
            raise ValueError("empty or malformed API key file")
        return key_id, key

    def _version_key(self) -> tuple[str, int, int]:
        info = self.settings.executable.stat()
        return str(self.settings.executable), info.st_mtime_ns, info.st_size

    def _cached_version(self) -> str | None:
        with _versions_lock:
            return _versions.get(self._version_key())

    def _remember_version(self, version: str) -> None:
        with _versions_lock:
            _versions[self._version_key()] = version


# --------------------------------------------------------------------------------------- the plan
def plan_task(job: Job, options: BitfountOptions = BitfountOptions()) -> TaskPlan:
    """Check the request (``job.parameters``) against the approval (``job.service``) and the route's
    allow-lists; return what may run or raise :class:`TaskRefused` saying why not."""
    approved_pods, algorithm, protocol, project_id = _approval(job.service)
    if options.pods is not None:
        approved_pods = tuple(pod for pod in approved_pods if pod in options.pods)
        if not approved_pods:
            raise TaskRefused(
                "none of the pods approved in the portal is allowed by this TRE's configuration"
            )
    if options.algorithms is not None and algorithm not in options.algorithms:
        raise TaskRefused(f"the approved algorithm {algorithm} is not allowed by this TRE's configuration")

    parameters = job.parameters
    unknown = sorted(name for name in parameters if name not in PARAMETERS)
    if unknown:
        shown = ", ".join(repr(name) for name in unknown if _ARGUMENT_RE.match(name)) or "unnamed inputs"
        raise TaskRefused(f"the request has inputs this workflow does not take ({shown})")

    pods = approved_pods
    if "pods" in parameters:
        pods = _requested_pods(parameters["pods"])
        for pod in pods:
            if pod not in approved_pods:
                raise TaskRefused(f"pod {pod} is not among the pods approved for this workflow")

    if "algorithm" in parameters:
        requested = parameters["algorithm"]
        if not isinstance(requested, str) or requested.strip() != algorithm:
            shown = (
                requested.strip()
                if isinstance(requested, str) and _DOTTED_RE.match(requested.strip())
                else None
            )
            raise TaskRefused(
                f"the request asks for algorithm {shown or 'other than the approved one'}; "
                f"only {algorithm} is approved"
            )

    arguments: dict[str, Any] = {}
    if "arguments" in parameters:
        document = _json_object(_text(job, "arguments", parameters["arguments"]), "arguments")
        for name in document:
            if not _ARGUMENT_RE.match(name):
                raise TaskRefused("input 'arguments' has a key that is not an argument name")
        arguments.update(document)
    if "query" in parameters:
        if "query" in arguments:
            raise TaskRefused("the query is given twice, as input 'query' and in input 'arguments'")
        query = _text(job, "query", parameters["query"]).strip()
        if not query:
            raise TaskRefused("input 'query' is empty")
        arguments["query"] = query
    return TaskPlan(
        pods=pods, algorithm=algorithm, protocol=protocol, arguments=arguments, project_id=project_id
    )


def _approval(service: Mapping[str, Any]) -> tuple[tuple[str, ...], str, str, str | None]:
    """(pods, algorithm, protocol, project_id) from the portal's approved settings, fail-closed."""
    if not service:
        raise TaskRefused("the portal sent no approved Bitfount settings (pods and task) for this workflow")
    pods = service.get("pods")
    if (
        not isinstance(pods, list | tuple)
        or not pods
        or not all(isinstance(pod, str) and POD_RE.match(pod) for pod in pods)
    ):
        raise TaskRefused("the approved settings do not list valid pod identifiers")
    task = service.get("task")
    if not isinstance(task, Mapping):
        raise TaskRefused("the approved settings have no task")
    if set(task) - {"algorithm", "protocol"}:
        # A key the agent does not understand may be a restriction it would not enforce.
        raise TaskRefused("the approved task has settings this agent does not understand")
    algorithm, protocol = task.get("algorithm"), task.get("protocol", RESULTS_ONLY)
    if not isinstance(algorithm, str) or not _DOTTED_RE.match(algorithm):
        raise TaskRefused("the approved task names no valid algorithm")
    if protocol != RESULTS_ONLY:
        raise TaskRefused(f"this agent runs only {RESULTS_ONLY} tasks, and another protocol was approved")
    project_id = service.get("project_id") or None
    if project_id is not None and (not isinstance(project_id, str) or not _PROJECT_RE.match(project_id)):
        raise TaskRefused("the approved Bitfount project id is not valid")
    return tuple(dict.fromkeys(pods)), algorithm, protocol, project_id


def _requested_pods(value: ParameterValue) -> tuple[str, ...]:
    if not isinstance(value, str):
        raise TaskRefused("input 'pods' must be text: pod identifiers separated by commas or spaces")
    names = [name for name in re.split(r"[\s,]+", value) if name]
    if not names:
        raise TaskRefused("input 'pods' names no pod")
    if not all(POD_RE.match(name) for name in names):
        raise TaskRefused("input 'pods' has an entry that is not a pod identifier (owner/pod)")
    return tuple(dict.fromkeys(names))


def _text(job: Job, name: str, value: ParameterValue) -> str:
    """A text input: the value itself, or the content of a file staged in the job's inputs."""
    if isinstance(value, Path):
        inputs = job.directory.inputs.resolve()
        path = value.resolve()
        if not path.is_relative_to(inputs) or not path.is_file():
            raise TaskRefused(f"input {name!r} is not a file staged in the job's inputs directory")
        if path.stat().st_size > MAX_INPUT_BYTES:
            raise TaskRefused(f"input {name!r} is larger than {MAX_INPUT_BYTES} bytes")
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise TaskRefused(f"input {name!r} is not UTF-8 text") from None
    if not isinstance(value, str):
        raise TaskRefused(f"input {name!r} must be text")
    if len(value.encode()) > MAX_INPUT_BYTES:
        raise TaskRefused(f"input {name!r} is larger than {MAX_INPUT_BYTES} bytes")
    return value


def _json_object(text: str, name: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        raise TaskRefused(f"input {name!r} is not valid JSON") from None
    if not isinstance(document, dict):
        raise TaskRefused(f"input {name!r} must be a JSON object")
    return document


# ---------------------------------------------------------------------------------- the task file
def task_document(plan: TaskPlan, pod: str, settings: BitfountSettings) -> dict[str, Any]:
    """The ``bitfount run_modeller`` task file (as data) for one pod of ``plan``.

    It holds no credentials: the API keys travel in the environment. ``key-based`` identity verification
    is the only method that needs nobody at a browser; without a ``private_key_file`` Bitfount generates
    and registers a key pair in its storage path.
    """
    if pod not in plan.pods:
        raise ValueError(f"pod {pod!r} is not part of the plan")
    modeller: dict[str, Any] = {"username": settings.username, "identity_verification_method": "key-based"}
    if settings.private_key_file is not None:
        modeller["private_key_file"] = str(settings.private_key_file)
    document: dict[str, Any] = {
        "modeller": modeller,
        "pods": {"identifiers": [pod]},
        "task": {
            "protocol": {"name": plan.protocol, "arguments": {"save_location": ["Modeller"]}},
            "algorithm": {"name": plan.algorithm, "arguments": json.loads(json.dumps(dict(plan.arguments)))},
            "data_structure": {},
        },
    }
    if not plan.arguments:
        del document["task"]["algorithm"]["arguments"]
    if plan.project_id is not None:
        document["project_id"] = plan.project_id
    return document


def write_task_file(path: Path, document: Mapping[str, Any]) -> None:
    """Write ``document`` as YAML (Bitfount reads it with ``yaml.safe_load``)."""
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(json.loads(json.dumps(document)), handle)


# ------------------------------------------------------------------------------------- the results
def read_pod_results(results_dir: Path, *, max_bytes: int) -> PodResults:
    """The one results CSV Bitfount's ResultsOnly modeller wrote under ``results_dir``.

    It is ``results.csv`` (pandas ``to_csv(index=False)``), directly in the directory or, for a task in
    a project, under ``<project id>/<task id>/``. Refuses no file, several, links, oversized or
    malformed tables.
    """
    found = sorted(path for path in results_dir.rglob("*.csv"))
    if not found:
        raise ResultsError("Bitfount wrote no results table")
    if len(found) > 1:
        raise ResultsError(f"Bitfount wrote {len(found)} results tables where one was expected")
    (path,) = found
    if path.is_symlink() or not path.is_file():
        raise ResultsError("the results table is not a regular file")
    if path.stat().st_size > max_bytes:
        raise ResultsError(f"the results table is over the limit of {max_bytes} bytes")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ResultsError("the results table is not UTF-8 text") from None
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        raise ResultsError("the results table is not valid CSV") from None
    if not records or not records[0] or not all(records[0]):
        raise ResultsError("the results table has no header row")
    header = tuple(records[0])
    if len(set(header)) != len(header):
        raise ResultsError("the results table repeats a column name")
    rows = tuple(tuple(record) for record in records[1:] if record)
    if any(len(row) != len(header) for row in rows):
        raise ResultsError("the results table has rows of a different width from its header")
    return PodResults(header, rows)


def render_csv(table: PodResults) -> bytes:
    """``table`` as the CSV returned in the result crate (RFC 4180 quoting, ``\\n`` line ends)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.header)
    writer.writerows(table.rows)
    return buffer.getvalue().encode("utf-8")


def output_path(pod: str) -> str:
    """The output path of a pod's table: ``<owner>/<pod>.csv``."""
    owner, name = pod.split("/", 1)
    return str(check_output_path(f"{owner}/{name}.csv"))


def _parse_version(stdout: Path) -> str | None:
    try:
        lines = stdout.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    versions = [line.strip() for line in lines if _VERSION_RE.match(line.strip())]
    return versions[-1] if versions else None


# -------------------------------------------------------------------------------------- redaction
def _secret_forms(key_id: str, key: str) -> tuple[str, ...]:
    """The strings to scrub: each key and, as Bitfount sends to the hub, its part before a colon."""
    forms = {key_id, key, key_id.split(":")[0], key.split(":")[0]}
    return tuple(sorted((form for form in forms if len(form) >= 8), key=len, reverse=True))


def redact_tree(root: Path, secrets: Iterable[str]) -> None:
    """Replace every occurrence of ``secrets`` in the regular files under ``root``."""
    patterns = [secret.encode() for secret in secrets if secret]
    if not patterns or not root.is_dir():
        return
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            for pattern in patterns:
                _redact_file(path, pattern)


def _redact_file(path: Path, secret: bytes) -> None:
    overlap = len(secret) - 1
    with path.open("rb") as source:
        found = False
        tail = b""
        while chunk := source.read(_REDACT_CHUNK):
            if secret in tail + chunk:
                found = True
                break
            tail = (tail + chunk)[-overlap:] if overlap else b""
        if not found:
            return
        source.seek(0)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, prefix=".redact-") as target:
            pending = b""
            while chunk := source.read(_REDACT_CHUNK):
                pending = (pending + chunk).replace(secret, _REDACTED)
                # Keep back what could be the start of a secret completed by the next chunk.
                keep = min(overlap, len(pending))
                target.write(pending[: len(pending) - keep])
                pending = pending[len(pending) - keep :]
            target.write(pending.replace(secret, _REDACTED))
    os.chmod(target.name, path.stat().st_mode & 0o777)
    os.replace(target.name, path)

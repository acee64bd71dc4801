"""What every executor promises: the :class:`Executor` protocol and its :class:`ExecutionResult`.

Invariants of an :class:`ExecutionResult`:

* times are timezone-aware and ``ended_at >= started_at``;
* only a ``COMPLETED`` result has outputs, and only ``COMPLETED`` has no ``reason``;
* every output is a regular file under the job's ``outputs/`` directory, copied there by
  :func:`collect_output` or written by :func:`write_output`, with its size and sha256 measured
  while it was written;
* ``reason`` is a short sentence written by the agent, never text taken from engine output (which may
  quote data), so it is safe to report to the portal and to record in the result crate.
"""

from __future__ import annotations

import enum
import hashlib
import mimetypes
import re
import shutil
import stat
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Protocol, runtime_checkable

from agent.config import AgentConfig, Table, WorkflowRoute
from agent.jobs import Job

__all__ = [
    "Engine",
    "ExecutionResult",
    "ExecutionStatus",
    "Executor",
    "OutputError",
    "OutputFile",
    "collect_output",
    "write_output",
]

COMPLETED_ACTION_STATUS = "http://schema.org/CompletedActionStatus"
FAILED_ACTION_STATUS = "http://schema.org/FailedActionStatus"

# Output paths are relative POSIX paths of plain names: no hidden files, no "..", nothing absolute.
_OUTPUT_COMPONENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
_MEDIA_TYPES = {
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".json": "application/json",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".html": "text/html",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".pdf": "application/pdf",
}
_CHUNK = 1 << 20


class ExecutionStatus(enum.StrEnum):
    """How a job ended."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def action_status(self) -> str:
        """The 5S-crate ``actionStatus`` string of the requested run's CreateAction."""
        return COMPLETED_ACTION_STATUS if self is ExecutionStatus.COMPLETED else FAILED_ACTION_STATUS


@dataclass(frozen=True)
class Engine:
    """The software that ran the job, as recorded in the result crate."""

    name: str
    version: str
    url: str | None = None


@dataclass(frozen=True)
class OutputFile:
    """A declared output, at ``outputs/<path>`` in the job directory and in the result crate."""

    path: str
    size: int
    sha256: str
    media_type: str
    description: str | None = None


@dataclass(frozen=True)
class ExecutionResult:
    """The outcome of one job; see the module docstring for its invariants.

    ``logs`` and ``provenance`` are paths inside the TRE for audit; they are never part of the result
    crate. ``details`` holds executor facts worth recording (e.g. the disclosure rules applied).
    """

    status: ExecutionStatus
    started_at: datetime
    ended_at: datetime
    engine: Engine
    outputs: tuple[OutputFile, ...] = ()
    reason: str | None = None
    logs: tuple[Path, ...] = ()
    provenance: Path | None = None
    network: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.started_at.tzinfo is None or self.ended_at.tzinfo is None:
            raise ValueError("execution times must be timezone-aware")
        if self.ended_at < self.started_at:
            raise ValueError("execution cannot end before it starts")
        if self.status is ExecutionStatus.COMPLETED:
            if self.reason is not None:
                raise ValueError("a completed execution has no failure reason")
        else:
            if self.outputs:
                raise ValueError("only a completed execution returns outputs")
            if not self.reason:
                raise ValueError("a failed or cancelled execution needs a reason")
        if len({output.path for output in self.outputs}) != len(self.outputs):
            raise ValueError("output paths must be unique")


@runtime_checkable
class Executor(Protocol):
    """Runs a prepared job for one approved workflow route.

    ``parse_options`` validates the route's ``[workflows.options]`` table when the configuration is
    loaded and returns the options object later found in ``route.options``. ``run`` never raises for a
    failure of the job itself (bad query, engine error, timeout, oversized output): those are
    ``FAILED`` results. It raises only for agent faults such as an unwritable job directory.
    Setting ``cancel`` asks ``run`` to stop the job and return a ``CANCELLED`` result.
    """

    name: ClassVar[str]

    @classmethod
    def parse_options(cls, options: Table, config: AgentConfig) -> Any: ...

    def __init__(self, config: AgentConfig, route: WorkflowRoute) -> None: ...

    def run(self, job: Job, *, cancel: threading.Event | None = None) -> ExecutionResult: ...


class OutputError(Exception):
    """An output cannot be returned (unsafe name, not a regular file, too large, duplicate)."""


def check_output_path(path: str) -> PurePosixPath:
    """Validate an output's relative path (see ``_OUTPUT_COMPONENT_RE``) and return it."""
    relative = PurePosixPath(path)
    if relative.is_absolute() or not relative.parts or len(relative.parts) > 8:
        raise OutputError(f"output path {path!r} is not a short relative path")
    for part in relative.parts:
        if not _OUTPUT_COMPONENT_RE.match(part):
            raise OutputError(f"output path {path!r} has an unsafe component {part!r}")
    return relative


def media_type_of(path: str) -> str:
    """The IANA media type for an output file name (``application/octet-stream`` when unknown)."""
    suffix = PurePosixPath(path).suffix.lower()
    return _MEDIA_TYPES.get(suffix) or mimetypes.guess_type(path)[0] or "application/octet-stream"


def collect_output(
    source: Path,
    outputs_dir: Path,
    path: str,
    *,
    max_bytes: int,
    description: str | None = None,
) -> OutputFile:
    """Copy the regular file ``source`` to ``outputs_dir/path`` and describe it.

    Refuses symbolic links and special files (a workflow could otherwise "output" a link to the
    dataset), files over ``max_bytes``, and a ``path`` already used. The checksum is computed from the
    bytes written, so it describes exactly the file that may leave.
    """
    relative = check_output_path(path)
    try:
        info = source.lstat()
    except OSError as exc:
        raise OutputError(f"output {path!r} is missing ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise OutputError(f"output {path!r} is not a regular file")
    if info.st_size > max_bytes:
        raise OutputError(f"output {path!r} is {info.st_size} bytes, over the limit of {max_bytes}")
    target = outputs_dir.joinpath(*relative.parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    try:
        with source.open("rb") as src, target.open("xb") as dst:
            while chunk := src.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise OutputError(f"output {path!r} grew over the limit of {max_bytes} bytes")
                digest.update(chunk)
                dst.write(chunk)
    except FileExistsError:
        raise OutputError(f"output {path!r} is declared twice") from None
    except OutputError:
        target.unlink(missing_ok=True)
        raise
    return OutputFile(str(relative), size, digest.hexdigest(), media_type_of(path), description)


def write_output(
    outputs_dir: Path, path: str, content: bytes, *, max_bytes: int, description: str | None = None
) -> OutputFile:
    """Write ``content`` as the output ``outputs_dir/path`` (for executors that produce outputs themselves)."""
    relative = check_output_path(path)
    if len(content) > max_bytes:
        raise OutputError(f"output {path!r} is {len(content)} bytes, over the limit of {max_bytes}")
    target = outputs_dir.joinpath(*relative.parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with target.open("xb") as dst:
            dst.write(content)
    except FileExistsError:
        raise OutputError(f"output {path!r} is declared twice") from None
    return OutputFile(
        str(relative), len(content), hashlib.sha256(content).hexdigest(), media_type_of(path), description
    )


def clear_outputs(outputs_dir: Path) -> None:
    """Empty the outputs directory, so that a re-run (or a failure) never returns stale files."""
    if outputs_dir.exists():
        shutil.rmtree(outputs_dir)
    outputs_dir.mkdir(mode=0o700)

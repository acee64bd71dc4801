"""A job as the executors see it: a prepared directory inside the TRE plus the request's parameters.

Layout of a job directory (every path stays inside the TRE)::

    <work_dir>/jobs/<job id>/
        workflow/     the approved Workflow RO-Crate, unpacked (cwl, tes)
        inputs/       files taken from the request crate (e.g. a cohort query)
        work/         engine working space (cwltool's --outdir, TES staging)
        outputs/      declared outputs only, written by the executor; the only files that may leave
        provenance/   engine provenance (CWLProv, Workflow Run Crate); contains input data, never leaves
        logs/         engine stdout/stderr; may echo data, never leaves
        state/        small files that let a restarted agent re-attach (e.g. a TES task id)
        home/, tmp/   HOME and TMPDIR of sandboxed processes

The agent's claim loop creates the directory with :meth:`JobDirectory.create`, unpacks the workflow into
``workflow/``, stages input files into ``inputs/`` and builds the :class:`Job`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = ["Job", "JobDirectory", "ParameterValue"]

# A job id becomes a directory name, so it must not be able to name anything else.
_JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SUBDIRECTORIES = ("workflow", "inputs", "work", "outputs", "provenance", "logs", "state", "home", "tmp")

#: A parameter value: a scalar from a ``PropertyValue``, or the path of a staged input ``File``.
ParameterValue = str | int | float | bool | Path


@dataclass(frozen=True)
class JobDirectory:
    """The directory tree of one job (see the module docstring). ``root`` is absolute."""

    root: Path

    @classmethod
    def create(cls, work_dir: Path, job_id: str) -> JobDirectory:
        """Create (or reuse, after a restart) the directory of ``job_id`` under ``work_dir/jobs``."""
        if not _JOB_ID_RE.match(job_id):
            raise ValueError(f"job id {job_id!r} is not usable as a directory name")
        directory = cls((Path(work_dir) / "jobs" / job_id).resolve())
        for name in ("", *_SUBDIRECTORIES):
            (directory.root / name).mkdir(mode=0o700, parents=True, exist_ok=True)
        return directory

    @property
    def workflow(self) -> Path:
        return self.root / "workflow"

    @property
    def inputs(self) -> Path:
        return self.root / "inputs"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    @property
    def provenance(self) -> Path:
        return self.root / "provenance"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"


@dataclass(frozen=True)
class Job:
    """One approved job, ready to execute.

    ``workflow_id`` and ``workflow_version`` identify the approved workflow as the portal names it; the
    TRE's configuration maps them to an executor. ``parameters`` maps each input's formal parameter
    name to its value (see :func:`agent.crate.job_parameters`); file values lie under
    ``directory.inputs``. ``service`` holds what the TRE's governance officers approved in the portal for
    the workflow's analytics service (for ``datashield``: ``profile`` and ``functions``; for ``bitfount``:
    ``pods`` and the approved ``task``); executors that call such a service must stay inside it.
    """

    id: str
    workflow_id: str
    workflow_version: str
    directory: JobDirectory
    parameters: Mapping[str, ParameterValue] = field(default_factory=lambda: MappingProxyType({}))
    service: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: The TRE's disclosure policy sent with the claim (``agent.policy``); executors that suppress or
    #: round counts apply it, and refuse the job when it is missing or cannot be honoured.
    policy: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

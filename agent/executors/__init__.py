"""The executors, by the names used in ``agent.toml``, and :func:`execute`, which routes a job to one.

=================  =============================================================================
``cwl``            an approved CWL workflow run by cwltool in the sandbox; ``DockerRequirement``
                   steps run with podman, from approved images in the TRE's local store only
``sql-aggregate``  a structured cohort-count query over a TRE dataset, with disclosure control
``tes``            the whole job handed to the TRE's GA4GH TES server as one task
``datashield``     approved DataSHIELD aggregate calls run on the TRE's Opal (no free-form R)
``bitfount``       the approved Bitfount task run on approved pods by ``bitfount run_modeller``
``wfexs``          the approved workflow handed to WfExS-backend's command line with a staging file
=================  =============================================================================

Each executor's module is imported only when a route of this TRE names it, so an agent with no ``tes``
route starts without py-tes installed, and one with no ``sql-aggregate`` route without psycopg.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator, Mapping

from agent.config import AgentConfig, WorkflowRoute
from agent.executors.base import ExecutionResult, Executor
from agent.jobs import Job

__all__ = ["EXECUTORS", "create_executor", "execute"]

# name -> (module, class); the module is imported on first use.
_REGISTRY: Mapping[str, tuple[str, str]] = {
    "cwl": ("agent.executors.cwl", "CwlExecutor"),
    "sql-aggregate": ("agent.executors.sql_aggregate", "SqlAggregateExecutor"),
    "tes": ("agent.executors.tes", "TesExecutor"),
    "datashield": ("agent.executors.datashield", "DataShieldExecutor"),
    "bitfount": ("agent.executors.bitfount", "BitfountExecutor"),
    "wfexs": ("agent.executors.wfexs", "WfExSExecutor"),
}


class _LazyExecutors(Mapping[str, type[Executor]]):
    """``{name: executor class}``, importing an executor's module only when its class is asked for."""

    def __getitem__(self, name: str) -> type[Executor]:
        module, attribute = _REGISTRY[name]
        return getattr(importlib.import_module(module), attribute)

    def __iter__(self) -> Iterator[str]:
        return iter(_REGISTRY)

    def __len__(self) -> int:
        return len(_REGISTRY)


EXECUTORS: Mapping[str, type[Executor]] = _LazyExecutors()


def create_executor(config: AgentConfig, route: WorkflowRoute) -> Executor:
    """An executor instance for ``route``."""
    return EXECUTORS[route.executor](config, route)


def execute(job: Job, config: AgentConfig, *, cancel: threading.Event | None = None) -> ExecutionResult:
    """Run ``job`` with the executor this TRE configured for its workflow version.

    Raises :class:`agent.config.WorkflowNotApprovedError` when the workflow version is not mapped, before
    anything runs; every other failure of the job is a ``FAILED`` result.
    """
    route = config.route(job.workflow_id, job.workflow_version)
    return create_executor(config, route).run(job, cancel=cancel)

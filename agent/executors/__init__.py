"""The executors, by the names used in ``agent.toml``, and :func:`execute`, which routes a job to one.

=================  =============================================================================
``cwl``            an approved CWL workflow run by cwltool (``--no-container``) in the sandbox
``sql-aggregate``  a structured cohort-count query over a TRE dataset, with disclosure control
``tes``            the whole job handed to the TRE's GA4GH TES server as one task
``datashield``     approved DataSHIELD aggregate calls run on the TRE's Opal (no free-form R)
``bitfount``       the approved Bitfount task run on approved pods by ``bitfount run_modeller``
=================  =============================================================================
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import MappingProxyType

from agent.config import AgentConfig, WorkflowRoute
from agent.executors.base import ExecutionResult, Executor
from agent.executors.bitfount import BitfountExecutor
from agent.executors.cwl import CwlExecutor
from agent.executors.datashield import DataShieldExecutor
from agent.executors.sql_aggregate import SqlAggregateExecutor
from agent.executors.tes import TesExecutor
from agent.jobs import Job

__all__ = ["EXECUTORS", "create_executor", "execute"]

EXECUTORS: Mapping[str, type[Executor]] = MappingProxyType(
    {
        cls.name: cls
        for cls in (CwlExecutor, SqlAggregateExecutor, TesExecutor, BitfountExecutor, DataShieldExecutor)
    }
)


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

"""The ``wfexs`` executor with a real WfExS-backend installation, when the machine has one.

``WFEXS_BACKEND`` names its ``WfExS-backend.py`` (e.g. ``/opt/wfexs/.venv/bin/WfExS-backend.py``, from
``pip install`` of the WfExS-backend source into its own virtual environment). Staging installs cwltool into
WfExS's cache from PyPI on first use, so the first run needs network (``allow_network``); ``export-crate``
needs Graphviz's ``dot``. The workflow is the one the stand-in tests use (two CWL files, packed by the agent).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.executors import execute
from agent.executors.base import ExecutionStatus
from agent.jobs import Job
from tests.unit.agent.test_wfexs import wfexs_config, wfexs_job

EXECUTABLE = os.environ.get("WFEXS_BACKEND", "")

pytestmark = pytest.mark.skipif(
    not EXECUTABLE, reason="needs a WfExS-backend installation: set WFEXS_BACKEND (see the module docstring)"
)


def test_a_cwl_workflow_runs_through_a_real_wfexs_backend(tmp_path):
    config = wfexs_config(
        tmp_path,
        Path(EXECUTABLE),
        timeout=900,
        options='container_type = "none"\nallow_network = true',
    )
    staged = wfexs_job(config)
    # only the input the workflow declares: WfExS refuses parameters a workflow does not have
    job = Job(staged.id, staged.workflow_id, "1", staged.directory, {"cohort": staged.parameters["cohort"]})

    result = execute(job, config)

    assert result.status is ExecutionStatus.COMPLETED, result.reason
    assert result.engine.name == "WfExS-backend" and result.engine.version[0].isdigit()
    assert [output.path for output in result.outputs] == ["line-counts.txt"]
    assert (job.directory.outputs / "line-counts.txt").read_text().split()[0] == "4"
    assert result.provenance is not None, result.details.get("provenance")

"""Shared fixtures of the agent's tests: a synthetic dataset, configurations, jobs and the 5S oracle."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.archive import safe_extract
from agent.config import AgentConfig, load_config
from agent.demo_workflows import AGE_SEX_TABLE, pack_workflow_crate
from agent.executors import execute
from agent.executors.base import ExecutionResult
from agent.jobs import Job, JobDirectory
from agent.synthetic import SyntheticDataset, generate, write_sqlite
from tests.reference_data import CRATE_FIXTURES, oracle_command

REPO = Path(__file__).resolve().parents[3]
REQUEST_CRATE = CRATE_FIXTURES / "validator-valid-five-safes-crate-request" / "ro-crate-metadata.json"
SYNTHETIC_PERSONS = 600
SYNTHETIC_SEED = 20250101


@pytest.fixture(scope="session")
def synthetic() -> SyntheticDataset:
    return generate(SYNTHETIC_PERSONS, SYNTHETIC_SEED)


@pytest.fixture(scope="session")
def synthetic_sqlite(synthetic: SyntheticDataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sqlite(synthetic, tmp_path_factory.mktemp("dataset") / "omop.sqlite")


@pytest.fixture
def request_metadata() -> dict[str, Any]:
    return json.loads(REQUEST_CRATE.read_text())


TOML_BASE = """
[tre]
slug = "tre-test"
name = "Test TRE"
url = "https://tre-test.example.org/"

[agent]
work_dir = "{work_dir}"

[limits]
timeout_seconds = {timeout}
cpu_seconds = 60
memory_bytes = "2 GiB"
max_output_file_bytes = "10 MiB"

[sandbox]
cancel_grace_seconds = 2
"""


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., AgentConfig]:
    """Write an agent.toml with the given extra TOML (datasets, tes, workflows) and load it."""

    def make(extra: str = "", *, timeout: int = 120) -> AgentConfig:
        path = tmp_path / "agent.toml"
        path.write_text(TOML_BASE.format(work_dir=tmp_path / "work", timeout=timeout) + extra)
        return load_config(path)

    return make


@pytest.fixture
def make_job(tmp_path: Path) -> Callable[..., Job]:
    def make(
        workflow_id: str,
        version: str = "1",
        parameters: dict[str, Any] | None = None,
        job_id: str = "job-1",
        policy: dict[str, Any] | None = None,
    ) -> Job:
        directory = JobDirectory.create(tmp_path / "work", job_id)
        # The portal's default disclosure policy, as a claim carries it.
        policy = (
            {"min_cell_count": 10, "zeros_disclosive": False, "rounding_base": 0}
            if policy is None
            else policy
        )
        return Job(job_id, workflow_id, version, directory, parameters or {}, policy=policy)

    return make


def run_oracle(*paths: Path) -> dict[str, Any]:
    """Run the community validator (tests/oracle_runner.py) at REQUIRED severity on the crates; return its JSON report."""
    completed = subprocess.run(
        oracle_command("--json", *paths),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.stdout, completed.stderr
    return json.loads(completed.stdout)


# --------------------------------------------------------------------------- the cwl demo workflow
WORKFLOW_ID = "https://portal.example.org/workflows/age-sex-table"
# Credentials the agent holds: they must never reach a workflow, its outputs or the result crate.
AGENT_SECRET = "agent-portal-token-6f1d2c"
DATABASE_PASSWORD = "pg-password-93be1a"


def cwl_config(tmp_path: Path, dataset: Path, *, timeout: int = 120, provenance: bool = True) -> AgentConfig:
    path = tmp_path / "agent.toml"
    path.write_text(
        TOML_BASE.format(work_dir=tmp_path / "work", timeout=timeout)
        + f"""
[datasets.omop]
sqlite_path = "{dataset}"

[datasets.warehouse]
postgresql_dsn = "postgresql://reader:{DATABASE_PASSWORD}@db.internal/omop"

[[workflows]]
id = "{WORKFLOW_ID}"
version = "1"
executor = "cwl"
[workflows.options]
dataset = "omop"
provenance = {str(provenance).lower()}
"""
    )
    return load_config(path)


def prepared_job(config: AgentConfig, job_id: str, workflow: Path = AGE_SEX_TABLE, **parameters: Any) -> Job:
    """A job whose workflow/ holds the demo crate, unpacked from its packed zip as the agent would."""
    directory = JobDirectory.create(config.work_dir, job_id)
    packed = pack_workflow_crate(workflow, directory.root / "workflow.zip")
    safe_extract(packed.path, directory.workflow)
    return Job(job_id, WORKFLOW_ID, "1", directory, parameters)


@pytest.fixture(scope="session")
def completed_run(tmp_path_factory, synthetic_sqlite) -> tuple[Job, ExecutionResult]:
    """One real cwltool run of the demo workflow with provenance, shared by the tests that inspect it.

    The agent's environment holds a secret during the run, as a real agent's would.
    """
    tmp_path = tmp_path_factory.mktemp("cwl")
    config = cwl_config(tmp_path, synthetic_sqlite)
    job = prepared_job(config, "cwl-ok", reference_year="2024")
    previous = os.environ.get("FIVE_SAFES_AGENT_TOKEN")
    os.environ["FIVE_SAFES_AGENT_TOKEN"] = AGENT_SECRET
    try:
        return job, execute(job, config)
    finally:
        if previous is None:
            del os.environ["FIVE_SAFES_AGENT_TOKEN"]
        else:
            os.environ["FIVE_SAFES_AGENT_TOKEN"] = previous

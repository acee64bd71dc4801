"""The tes executor against a TES server double (tes_server.py): complete, error, cancel, re-attach."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from agent.config import AgentConfig, load_config
from agent.executors import execute
from agent.executors.base import ExecutionStatus
from agent.jobs import Job, JobDirectory
from tests.unit.agent.conftest import TOML_BASE
from tests.unit.agent.tes_server import TesServer

WORKFLOW_ID = "https://portal.example.org/workflows/cohort-report"
# Reads the parameters and the staged query, writes the declared output (paths are container paths).
REPORT = (
    "import json; p = json.load(open('/job/parameters.json')); query = open(p['query']).read(); "
    "open('/job/outputs/report.csv', 'w').write('label,characters\\n%s,%d\\n' % (p['label'], len(query)))"
)


@pytest.fixture
def tes_server():
    with TesServer() as server:
        yield server


def tes_config(tmp_path: Path, url: str, command: list[str], *, timeout: int = 60) -> AgentConfig:
    path = tmp_path / "agent.toml"
    path.write_text(
        TOML_BASE.format(work_dir=tmp_path / "work", timeout=timeout)
        + f"""
[tes]
url = "{url}"
storage_dir = "{tmp_path / "shared"}"
poll_seconds = 0.05

[[workflows]]
id = "{WORKFLOW_ID}"
version = "2"
executor = "tes"
[workflows.options]
image = "registry.example.org/cohort-report:1"
command = {json.dumps(command)}
outputs = ["report.csv"]
"""
    )
    return load_config(path)


def make_job(config: AgentConfig, job_id: str = "tes-1") -> Job:
    directory = JobDirectory.create(config.work_dir, job_id)
    query = directory.inputs / "query.json"
    query.write_text('{"cohort": {}}')
    return Job(job_id, WORKFLOW_ID, "2", directory, {"query": query, "label": "demo"})


def test_a_completed_task_returns_its_declared_outputs(tmp_path, tes_server):
    config = tes_config(tmp_path, tes_server.url, ["python3", "-c", REPORT])
    job = make_job(config)

    result = execute(job, config)

    assert result.status is ExecutionStatus.COMPLETED, result.reason
    assert [output.path for output in result.outputs] == ["report.csv"]
    assert (job.directory.outputs / "report.csv").read_text() == "label,characters\ndemo,14\n"
    (task,) = tes_server.tasks.values()
    assert task.state == "COMPLETE"
    assert task.body["name"] == "job-tes-1"
    assert task.body["tags"]["portal_job_id"] == "tes-1"
    assert task.body["executors"][0]["image"] == "registry.example.org/cohort-report:1"
    parameters = next(item for item in task.body["inputs"] if item["path"] == "/job/parameters.json")
    assert json.loads(parameters["content"]) == {"label": "demo", "query": "/job/inputs/query.json"}
    log = json.loads((job.directory.logs / "tes-task.json").read_text())
    assert log["state"] == "COMPLETE"
    assert not (job.directory.state / "tes-task.json").exists()
    assert not (tmp_path / "shared" / job.id).exists()  # staging area cleaned up


def test_an_executor_error_fails_the_job(tmp_path, tes_server):
    config = tes_config(
        tmp_path, tes_server.url, ["sh", "-c", "echo partial > /job/outputs/report.csv; exit 3"]
    )
    job = make_job(config)

    result = execute(job, config)

    assert result.status is ExecutionStatus.FAILED
    assert result.reason == "the task's command failed on the TES server"
    assert list(job.directory.outputs.iterdir()) == []
    log = json.loads((job.directory.logs / "tes-task.json").read_text())
    assert log["logs"][0]["logs"][0]["exit_code"] == 3


def test_a_missing_declared_output_fails_the_job(tmp_path, tes_server):
    config = tes_config(tmp_path, tes_server.url, ["true"])

    result = execute(make_job(config), config)

    assert result.status is ExecutionStatus.FAILED
    assert result.reason.startswith("output refused: output 'report.csv' is missing")


def test_cancelling_the_job_cancels_the_task(tmp_path, tes_server):
    config = tes_config(tmp_path, tes_server.url, ["sleep", "3201"])
    cancel = threading.Event()

    def cancel_when_running() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(task.state == "RUNNING" for task in tes_server.tasks.values()):
                cancel.set()
                return
            time.sleep(0.02)

    threading.Thread(target=cancel_when_running, daemon=True).start()
    result = execute(make_job(config), config, cancel=cancel)

    assert result.status is ExecutionStatus.CANCELLED
    (task,) = tes_server.tasks.values()
    assert task.state == "CANCELED"
    assert ("POST", f"/ga4gh/tes/v1/tasks/{task.id}:cancel") in tes_server.requests
    assert task.process.poll() is not None


def test_a_timeout_cancels_the_task_and_fails_the_job(tmp_path, tes_server):
    config = tes_config(tmp_path, tes_server.url, ["sleep", "3202"], timeout=1)

    result = execute(make_job(config), config)

    assert result.status is ExecutionStatus.FAILED
    assert result.reason == "timeout: wall-clock limit of 1 s reached"
    (task,) = tes_server.tasks.values()
    assert task.state == "CANCELED"


def test_a_restarted_agent_reattaches_to_its_task(tmp_path, tes_server):
    config = tes_config(tmp_path, tes_server.url, ["python3", "-c", REPORT])
    first = make_job(config)
    assert execute(first, config).status is ExecutionStatus.COMPLETED
    (task,) = tes_server.tasks.values()
    # Simulate a restart between submission and completion: the state file names the submitted task.
    (tmp_path / "shared" / "tes-1" / "outputs").mkdir(parents=True)
    (tmp_path / "shared" / "tes-1" / "outputs" / "report.csv").write_text("label,characters\ndemo,14\n")
    (first.directory.state / "tes-task.json").write_text(json.dumps({"task_id": task.id}))

    result = execute(make_job(config), config)

    assert result.status is ExecutionStatus.COMPLETED
    assert len(tes_server.tasks) == 1  # no second submission
    assert [method for method, _ in tes_server.requests].count("POST") == 1


def test_an_unreachable_server_fails_the_job(tmp_path):
    config = tes_config(tmp_path, "http://127.0.0.1:9", ["true"])

    result = execute(make_job(config), config)

    assert result.status is ExecutionStatus.FAILED
    assert result.reason.startswith("the TES server refused the task (")

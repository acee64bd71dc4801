"""The bitfount executor against real Bitfount, when the deployer supplies an installation, keys and a pod.

Needed (environment variables):

* ``BITFOUNT_LIVE_EXECUTABLE``: the ``bitfount`` command of a Python 3.12 environment with bitfount 10-13;
* ``BITFOUNT_LIVE_USERNAME``: the Bitfount account that owns the API keys;
* ``BITFOUNT_API_KEY_ID`` and ``BITFOUNT_API_KEY``: that account's API keys;
* ``BITFOUNT_LIVE_POD``: a pod (``owner/pod``) that accepts ``bitfount.SqlQuery`` tasks from the account.

Optional: ``BITFOUNT_LIVE_QUERY`` (default: a row count of the pod's table), ``BITFOUNT_LIVE_PROJECT_ID``,
``BITFOUNT_LIVE_PRIVATE_KEY_FILE``, ``BITFOUNT_LIVE_ENVIRONMENT`` (default ``production``) and
``BITFOUNT_LIVE_MEMORY`` (the job's address-space limit, default ``16 GiB``). Without the required ones the
test is skipped: it is the only Bitfount test that needs Bitfount's hosted services.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from types import MappingProxyType

import pytest

from agent.config import load_config
from agent.executors import execute
from agent.executors.base import ExecutionStatus
from agent.executors.bitfount import output_path
from agent.jobs import Job, JobDirectory

REQUIRED = (
    "BITFOUNT_LIVE_EXECUTABLE",
    "BITFOUNT_LIVE_USERNAME",
    "BITFOUNT_API_KEY_ID",
    "BITFOUNT_API_KEY",
    "BITFOUNT_LIVE_POD",
)
MISSING = [name for name in REQUIRED if not os.environ.get(name)]
WORKFLOW_ID = "https://portal.example.org/workflows/bitfount-live"

pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"live Bitfount test needs {', '.join(MISSING)} (see the module docstring)"
)


def test_a_real_modeller_returns_the_pods_table(tmp_path: Path):
    env = os.environ
    pod = env["BITFOUNT_LIVE_POD"]
    (tmp_path / "api-key-id").write_text(env["BITFOUNT_API_KEY_ID"])
    (tmp_path / "api-key").write_text(env["BITFOUNT_API_KEY"])
    private_key = env.get("BITFOUNT_LIVE_PRIVATE_KEY_FILE")
    (tmp_path / "agent.toml").write_text(
        f"""
[tre]
slug = "tre-live"
name = "Live test TRE"
url = "https://tre-live.example.org/"

[agent]
work_dir = "{tmp_path / "work"}"

[limits]
timeout_seconds = 1800
cpu_seconds = 1800
memory_bytes = "{env.get("BITFOUNT_LIVE_MEMORY", "16 GiB")}"
max_output_file_bytes = "10 MiB"

[bitfount]
executable = "{env["BITFOUNT_LIVE_EXECUTABLE"]}"
username = "{env["BITFOUNT_LIVE_USERNAME"]}"
api_key_id_file = "api-key-id"
api_key_file = "api-key"
{f'private_key_file = "{private_key}"' if private_key else ""}
env = {{ BITFOUNT_ENVIRONMENT = "{env.get("BITFOUNT_LIVE_ENVIRONMENT", "production")}" }}

[[workflows]]
id = "{WORKFLOW_ID}"
version = "1"
executor = "bitfount"
"""
    )
    config = load_config(tmp_path / "agent.toml")
    service = {"pods": [pod], "task": {"algorithm": "bitfount.SqlQuery", "protocol": "bitfount.ResultsOnly"}}
    if env.get("BITFOUNT_LIVE_PROJECT_ID"):
        service["project_id"] = env["BITFOUNT_LIVE_PROJECT_ID"]
    # Bitfount's SqlQuery names a single-table pod's table after the pod, in backticks. The query is the
    # request's input, run by the deployer's pod; nothing here executes it.
    table = pod.split("/")[1]
    query = env.get("BITFOUNT_LIVE_QUERY") or f"SELECT COUNT(*) AS records FROM `{table}`"  # noqa: S608
    directory = JobDirectory.create(config.work_dir, "bitfount-live")
    job = Job(
        "bitfount-live",
        WORKFLOW_ID,
        "1",
        directory,
        MappingProxyType({"pods": pod, "query": query}),
        MappingProxyType(service),
    )

    result = execute(job, config)

    assert result.status is ExecutionStatus.COMPLETED, result.reason
    assert result.engine.version.split(".")[0] in {"10", "11", "12", "13"}
    assert [output.path for output in result.outputs] == [output_path(pod)]
    with (directory.outputs / output_path(pod)).open(newline="") as handle:
        header = next(csv.reader(handle))
    assert header
    for path in config.work_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert env["BITFOUNT_API_KEY"].encode() not in content, path

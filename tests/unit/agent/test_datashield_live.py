"""The datashield executor against a deployer's real Opal. Runs only when these are set:

``OPAL_URL``        the Opal server, e.g. https://opal.tre.internal
``OPAL_TOKEN``      an Opal personal access token allowed to use the DataSHIELD profile
``OPAL_TABLE``      a table the token may assign, as project.table (e.g. CNSIM.CNSIM1)
``OPAL_PROFILE``    optional: the DataSHIELD profile (default ``default``); it needs dsBase's meanDS and lengthDS
``OPAL_VARIABLE``   optional: a numeric variable of the table (found from the table's dictionary otherwise)
``OPAL_CA_BUNDLE``  optional: the CA bundle that signed Opal's certificate

It records the shapes of Opal's documents in ``opal_shapes/`` (keys and JSON types only, never values, so
nothing about the data is written), checks that the stand-in answers with the same shapes, runs the executor
end to end and checks that OBiBa's own client gets the same results.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

import pytest
import requests

from agent.config import load_config
from agent.executors import execute
from agent.executors.base import ExecutionStatus
from agent.jobs import Job, JobDirectory
from tests.unit.agent.conftest import TOML_BASE
from tests.unit.agent.opal_server import OpalServer, capture_documents, json_shape

SHAPES = Path(__file__).parent / "opal_shapes"
URL = os.environ.get("OPAL_URL", "").rstrip("/")
TOKEN = os.environ.get("OPAL_TOKEN", "")
TABLE = os.environ.get("OPAL_TABLE", "")
PROFILE = os.environ.get("OPAL_PROFILE", "default")
CA_BUNDLE = os.environ.get("OPAL_CA_BUNDLE") or None

pytestmark = pytest.mark.skipif(
    not (URL and TOKEN and TABLE),
    reason="needs a deployer's Opal: set OPAL_URL, OPAL_TOKEN and OPAL_TABLE (see the module docstring)",
)


@pytest.fixture(scope="module")
def variable() -> str:
    if os.environ.get("OPAL_VARIABLE"):
        return os.environ["OPAL_VARIABLE"]
    project, _, table = TABLE.partition(".")
    response = requests.get(
        f"{URL}/ws/datasource/{project}/table/{table}/variables",
        headers={"X-Opal-Auth": TOKEN, "Accept": "application/json"},
        verify=CA_BUNDLE or True,
        timeout=60,
    )
    assert response.status_code == 200, (
        f"cannot read {TABLE}'s dictionary (HTTP {response.status_code}): set OPAL_VARIABLE"
    )
    numeric = [item["name"] for item in response.json() if item.get("valueType") in ("integer", "decimal")]
    assert numeric, f"{TABLE} has no numeric variable: set OPAL_VARIABLE"
    return numeric[0]


def test_record_the_shapes_of_opal_s_documents_and_compare_the_stand_in(variable):
    documents = capture_documents(
        URL, TOKEN, profile=PROFILE, table=TABLE, variable=variable, verify=CA_BUNDLE or True
    )
    version = documents.pop("opal_version")
    captured_at = datetime.now(UTC).date().isoformat()
    for name, document in documents.items():
        path = SHAPES / f"{name}.json"
        about = json.loads(path.read_text())["about"] if path.exists() else name
        record = {
            "about": about,
            "source": f"captured from a real Opal {version} by test_datashield_live.py on {captured_at}",
            "opal_version": version,
            "shape": json_shape(document),
        }
        path.write_text(json.dumps(record, indent=2) + "\n")

    with OpalServer(token="stand-in", tables={"CNSIM.CNSIM1": {"AGE": [23, 35, 41, None, 52]}}) as opal:
        stand_in = capture_documents(
            opal.url, "stand-in", profile="default", table="CNSIM.CNSIM1", variable="AGE"
        )
    differences = {
        name: {"opal": json_shape(document), "stand-in": json_shape(stand_in[name])}
        for name, document in documents.items()
        if json_shape(document) != json_shape(stand_in[name])
    }
    assert not differences, json.dumps(differences, indent=2)


def test_the_executor_runs_on_opal_and_agrees_with_the_official_client(tmp_path, variable):
    from datashield import DSLoginBuilder, DSSession

    calls = [f"lengthDS('D${variable}')", f"meanDS(D${variable})"]
    (tmp_path / "opal.token").write_text(TOKEN)
    tls = f'ca_bundle = "{CA_BUNDLE}"\n' if CA_BUNDLE else ""
    (tmp_path / "agent.toml").write_text(
        TOML_BASE.format(work_dir=tmp_path / "work", timeout=600)
        + f'\n[datashield]\nurl = "{URL}"\ntoken_file = "{tmp_path / "opal.token"}"\n{tls}'
        + '\n[[workflows]]\nid = "live"\nversion = "1"\nexecutor = "datashield"\n'
    )
    config = load_config(tmp_path / "agent.toml")
    job = Job(
        "live-1",
        "live",
        "1",
        JobDirectory.create(config.work_dir, "live-1"),
        {"profile": PROFILE, "assignments": json.dumps({"D": TABLE}), "calls": json.dumps(calls)},
        MappingProxyType({"profile": PROFILE, "functions": ["lengthDS", "meanDS"]}),
    )

    result = execute(job, config)

    assert result.status is ExecutionStatus.COMPLETED, result.reason
    summary = json.loads((job.directory.outputs / "summary.json").read_text())
    assert summary["opal_version"] == result.engine.version != "unknown"
    assert "dsBase" in summary["packages"]
    assert [row["status"] for row in summary["calls"]] == ["completed", "completed"]
    ours = [
        json.loads((job.directory.outputs / row["output"]).read_text())["result"] for row in summary["calls"]
    ]

    logins = DSLoginBuilder().add("tre", URL, token=TOKEN, profile=PROFILE).build()
    session = DSSession(logins)
    session.open()
    try:
        session.assign_table("D", table=TABLE)
        theirs = [session.aggregate(call)["tre"] for call in calls]
    finally:
        session.close()
    assert ours == theirs

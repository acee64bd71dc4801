"""The Opal stand-in (opal_server.py) is faithful: OBiBa's own Python client (``datashield-opal``, a GPL-3.0
test-only dependency the agent never imports) works against it, every request the executor makes is one
the official client makes too, both get the same results, and the stand-in's documents have the shapes
recorded in ``opal_shapes/`` (transcribed from Opal's source, replaced by captures from a real Opal when
test_datashield_live.py runs)."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from types import MappingProxyType

import pytest
from datashield import DSError, DSLoginBuilder, DSSession

from agent.config import load_config
from agent.executors import execute
from agent.executors.base import ExecutionStatus
from agent.jobs import Job, JobDirectory
from tests.unit.agent.conftest import TOML_BASE
from tests.unit.agent.opal_server import FUNCTIONS, OpalServer, RecordedRequest, capture_documents, json_shape

SHAPES = Path(__file__).parent / "opal_shapes"
TOKEN = "opal-pat-2f8d61ab90"
AGES = [23, 35, 41, None, 52, 67, 29, None, 44, 38, 71, 30]
TABLES = {
    "CNSIM.CNSIM1": {"AGE": AGES, "SEX": ["F", "M", "F", "F", "M", "M", "F", None, "M", "F", "M", "F"]},
    "CNSIM.TINY": {"AGE": [30, None, 41]},
}
CALLS = ["meanDS(D$AGE)", "lengthDS('D$AGE')"]


@pytest.fixture
def opal():
    with OpalServer(token=TOKEN, tables=TABLES) as server:
        yield server


def client_session(opal: OpalServer, token: str = TOKEN) -> DSSession:
    logins = DSLoginBuilder().add("tre", opal.url, token=token, profile="default").build()
    session = DSSession(logins, start_timeout=30)
    session.open()
    return session


def signature(request: RecordedRequest) -> tuple:
    """A request without its ids: method, path template, query and media type."""
    path = re.sub(r"/session/[0-9a-f]{32}", "/session/{id}", request.path)
    path = re.sub(r"/command/[0-9a-f]{32}", "/command/{rid}", path)
    query = tuple(sorted((key, tuple(values)) for key, values in request.query.items()))
    return request.method, path, query, request.headers.get("content-type")


# --------------------------------------------------------------------------- the official client
def test_the_official_client_runs_a_session_on_the_stand_in(opal):
    session = client_session(opal)
    try:
        assert session.profiles() == {"tre": {"available": ["default"], "current": "default"}}
        methods = session.methods()["tre"]
        assert {method["name"] for method in methods} == set(FUNCTIONS)
        assert {(method["class"], method["pkg"]) for method in methods} == {("func", "dsBase")}
        session.assign_table("D", table="CNSIM.CNSIM1")
        assert session.ls() == {"tre": ["D"]}
        mean = session.aggregate("meanDS(D$AGE)")["tre"]
        length = session.aggregate("lengthDS('D$AGE')")["tre"]
    finally:
        session.close()

    valid = [age for age in AGES if age is not None]
    assert mean["EstimatedMean"] == pytest.approx(statistics.mean(valid))
    assert (mean["Nvalid"], mean["Nmissing"], mean["ValidityMessage"]) == (len(valid), 2, "VALID ANALYSIS")
    assert length == len(AGES)
    assert opal.requests[-1].method == "DELETE"
    assert opal.sessions == {}
    assert {request.headers["x-opal-auth"] for request in opal.requests} == {TOKEN}


def test_the_official_client_sees_a_refused_call_as_opal_reports_it(opal):
    session = client_session(opal)
    try:
        session.assign_table("D", table="CNSIM.CNSIM1")
        with pytest.raises(DSError):
            session.aggregate("ls()")
        error = session.get_errors()["tre"]
    finally:
        session.close()

    assert error.is_client_error()
    assert error.get_error() == {
        "code": 400,
        "status": "DataShieldParseError",
        "arguments": ["No such DataSHIELD 'AGGREGATE' method with name: ls"],
    }


def test_the_official_client_sees_a_failed_command_with_dsbase_s_message(opal):
    session = client_session(opal)
    try:
        session.assign_table("T", table="CNSIM.TINY")
        with pytest.raises(DSError):
            session.aggregate("meanDS(T$AGE)")
        error = session.get_errors()["tre"]
    finally:
        session.close()

    assert "FAILED: Nvalid less than nfilter.tab" in str(error)


def test_the_official_client_waits_for_a_pending_session(opal):
    opal.session_start_seconds = 0.3
    session = client_session(opal)
    try:
        session.assign_table("D", table="CNSIM.CNSIM1")
    finally:
        session.close()

    session_polls = [
        request
        for request in opal.requests
        if signature(request)[:2] == ("GET", "/ws/datashield/session/{id}")
    ]
    assert len(session_polls) > 1
    assert opal.requests[0].path == "/ws/system/subject-profile/_current"


def test_the_official_client_is_refused_with_a_bad_token(opal):
    with pytest.raises(DSError, match="Failed to authenticate"):
        client_session(opal, token="not-the-token")


# --------------------------------------------------------------------------- the executor, compared
def test_the_executor_makes_only_requests_the_official_client_makes_and_gets_the_same_results(tmp_path):
    with OpalServer(token=TOKEN, tables=TABLES) as opal:
        session = client_session(opal)
        try:
            session.methods()
            session.assign_table("D", table="CNSIM.CNSIM1")
            client_results = [session.aggregate(call)["tre"] for call in CALLS]
        finally:
            session.close()
        client_requests = {signature(request) for request in opal.requests}

    with OpalServer(token=TOKEN, tables=TABLES) as opal:
        (tmp_path / "opal.token").write_text(TOKEN)
        (tmp_path / "agent.toml").write_text(
            TOML_BASE.format(work_dir=tmp_path / "work", timeout=60)
            + f'\n[datashield]\nurl = "{opal.url}"\ntoken_file = "{tmp_path / "opal.token"}"\npoll_seconds = 0.02\n'
            + '\n[[workflows]]\nid = "wf"\nversion = "1"\nexecutor = "datashield"\n'
        )
        config = load_config(tmp_path / "agent.toml")
        parameters = {
            "profile": "default",
            "assignments": '{"D": "CNSIM.CNSIM1"}',
            "calls": json.dumps(CALLS),
        }
        service = MappingProxyType({"profile": "default", "functions": ["lengthDS", "meanDS"]})
        job = Job(
            "contract-1", "wf", "1", JobDirectory.create(config.work_dir, "contract-1"), parameters, service
        )
        result = execute(job, config)
        executor_requests = {signature(request) for request in opal.requests}

    assert result.status is ExecutionStatus.COMPLETED, result.reason
    assert executor_requests <= client_requests, executor_requests - client_requests
    executor_results = [
        json.loads((job.directory.outputs / f"call-{index:02d}-{call.split('(')[0]}.json").read_text())[
            "result"
        ]
        for index, call in enumerate(CALLS, start=1)
    ]
    assert executor_results == client_results


# --------------------------------------------------------------------------- shapes of the documents
SHAPE_FILES = sorted(SHAPES.glob("*.json"))


def test_every_recorded_shape_is_checked(opal):
    documents = capture_documents(opal.url, TOKEN, profile="default", table="CNSIM.CNSIM1", variable="AGE")

    assert {path.stem for path in SHAPE_FILES} == set(documents) - {"opal_version"}
    assert documents["opal_version"] == opal.version


@pytest.mark.parametrize("path", SHAPE_FILES, ids=[path.stem for path in SHAPE_FILES])
def test_the_stand_in_answers_with_the_recorded_shape(opal, path):
    recorded = json.loads(path.read_text())

    documents = capture_documents(opal.url, TOKEN, profile="default", table="CNSIM.CNSIM1", variable="AGE")

    assert json_shape(documents[path.stem]) == recorded["shape"], recorded["source"]

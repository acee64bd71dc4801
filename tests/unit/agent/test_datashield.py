"""The datashield executor against an Opal-shaped server (opal_server.py): approval checks, sessions,
asynchronous commands, refusals, failures, timeout, cancellation, and the token's confinement."""

from __future__ import annotations

import csv
import io
import json
import re
import statistics
import threading
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from agent.config import AgentConfig, ConfigError, load_config
from agent.executors import execute
from agent.executors.base import ExecutionStatus
from agent.executors.datashield import CallError, DataShieldOptions, parse_call
from agent.jobs import Job, JobDirectory
from tests.unit.agent.conftest import REPO, TOML_BASE
from tests.unit.agent.opal_server import DSBASE_VERSION, FUNCTIONS, OpalServer

WORKFLOW_ID = "https://portal.example.org/workflows/datashield-summary"
TOKEN = "opal-pat-7c1e94d05b"
APPROVED = ["classDS", "lengthDS", "meanDS", "numNaDS"]
AGES = [23, 35, 41, None, 52, 67, 29, None, 44, 38, 71, 30]
SEXES = ["F", "M", "F", "F", "M", "M", "F", None, "M", "F", "M", "F"]
TABLES = {
    "CNSIM.CNSIM1": {"AGE": AGES, "SEX": SEXES},
    # Two valid values: dsBase's meanDS refuses them (nfilter.tab is 3).
    "CNSIM.TINY": {"AGE": [30, None, 41]},
}


@pytest.fixture
def opal():
    profiles = {"default": sorted(FUNCTIONS), "strict": ["lengthDS"]}
    with OpalServer(token=TOKEN, tables=TABLES, profiles=profiles) as server:
        yield server


def ds_config(
    tmp_path: Path, url: str, *, timeout: int = 60, token: str = TOKEN, options: str = ""
) -> AgentConfig:
    (tmp_path / "opal.token").write_text(token + "\n")
    path = tmp_path / "agent.toml"
    path.write_text(
        TOML_BASE.format(work_dir=tmp_path / "work", timeout=timeout)
        + f"""
[datashield]
url = "{url}"
token_file = "{tmp_path / "opal.token"}"
poll_seconds = 0.02
request_timeout_seconds = 5

[[workflows]]
id = "{WORKFLOW_ID}"
version = "1"
executor = "datashield"
[workflows.options]
{options}
"""
    )
    return load_config(path)


def ds_job(
    config: AgentConfig,
    calls: Any,
    *,
    assignments: Any = None,
    profile: Any = "default",
    service: dict[str, Any] | None = None,
    job_id: str = "ds-1",
) -> Job:
    directory = JobDirectory.create(config.work_dir, job_id)
    parameters: dict[str, Any] = {
        "assignments": json.dumps({"D": "CNSIM.CNSIM1"} if assignments is None else assignments),
        "calls": calls if isinstance(calls, str) else json.dumps(calls),
    }
    if profile is not None:
        parameters["profile"] = profile
    approved = {"profile": "default", "functions": APPROVED} if service is None else service
    return Job(job_id, WORKFLOW_ID, "1", directory, parameters, MappingProxyType(approved))


def templates(opal: OpalServer) -> list[tuple[str, str]]:
    """The requests the server received, with session and command ids replaced by placeholders."""
    result = []
    for request in opal.requests:
        path = re.sub(r"/session/[0-9a-f]{32}", "/session/{id}", request.path)
        path = re.sub(r"/command/[0-9a-f]{32}", "/command/{rid}", path)
        result.append((request.method, path))
    return result


def outputs_of(job: Job) -> dict[str, Any]:
    return {
        path.name: json.loads(path.read_text()) if path.suffix == ".json" else path.read_text()
        for path in sorted(job.directory.outputs.iterdir())
    }


# --------------------------------------------------------------------------- the call grammar
@pytest.mark.parametrize(
    ("source", "text", "symbols"),
    [
        ("meanDS(D$AGE)", "meanDS(D$AGE)", {"D"}),
        ("  lengthDS( 'D$AGE' ) ", "lengthDS('D$AGE')", set()),
        (
            'tableDS(rvar.transmit="D$SEX", cvar.transmit=NULL, exclude.transmit=NA, force.nfilter.transmit=3L)',
            "tableDS(rvar.transmit='D$SEX', cvar.transmit=NULL, exclude.transmit=NA, force.nfilter.transmit=3L)",
            set(),
        ),
        ("quantileMeanDS(D$AGE, -1.5e3, TRUE)", "quantileMeanDS(D$AGE, -1.5e3, TRUE)", {"D"}),
        ("corDS(x=D$AGE,y=E$BMI)", "corDS(x=D$AGE, y=E$BMI)", {"D", "E"}),
        ("dimDS()", "dimDS()", set()),
    ],
)
def test_plain_calls_parse_to_a_canonical_text(source, text, symbols):
    call = parse_call(source)

    assert call.text == text
    assert call.function == text.split("(", 1)[0]
    assert call.symbols == symbols


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("meanDS(log(D$AGE))", "nested calls are not allowed"),
        ("meanDS(D$AGE + 1)", "'+' is not allowed"),
        ("meanDS(D$AGE); ls()", "';' is not allowed"),
        ("`meanDS`(D$AGE)", "'`' is not allowed"),
        ("x <- meanDS(D$AGE)", "'<' is not allowed"),
        ("x = meanDS(D$AGE)", "expected '(', found '='"),
        ("dsBase::meanDS(D$AGE)", "':' is not allowed"),
        ("meanDS(D[1])", "'[' is not allowed"),
        ("meanDS(D$AGE$x)", "'$' is not allowed"),
        ("meanDS('a(b)')", "may hold only letters"),
        ("meanDS('D$AGE\\'); system(1)')", "the string at position 8 is not closed, or holds a backslash"),
        ("function(x) x", "'function' cannot be called"),
        ("meanDS(TRUE=1)", "'TRUE' is not an argument name"),
        ("meanDS(D$AGE", "the call ends too early"),
        ("meanDS(D$AGE))", "unexpected ')' after the call"),
        ("meanDS(x=y=z)", "expected ')', found '='"),
        ("meanDS(D$AGE,)", "expected an argument, found ')'"),
        ("", "the call ends too early"),
        (["meanDS(D$AGE)"], "a call must be a string"),
    ],
)
def test_anything_but_one_plain_call_is_refused(source, message):
    with pytest.raises(CallError, match=re.escape(message)):
        parse_call(source)


# --------------------------------------------------------------------------- a whole job
def test_several_calls_run_in_one_session_and_each_result_is_an_output(tmp_path, opal):
    config = ds_config(tmp_path, opal.url)
    job = ds_job(config, ["meanDS(D$AGE)", "lengthDS('D$AGE')", "classDS( 'D$SEX' )", "numNaDS(D$AGE)"])

    result = execute(job, config)

    assert result.status is ExecutionStatus.COMPLETED, result.reason
    valid = [age for age in AGES if age is not None]
    files = outputs_of(job)
    assert sorted(files) == [
        "call-01-meanDS.json",
        "call-02-lengthDS.json",
        "call-03-classDS.json",
        "call-04-numNaDS.json",
        "summary.csv",
        "summary.json",
    ]
    assert [output.path for output in result.outputs] == [
        "call-01-meanDS.json",
        "call-02-lengthDS.json",
        "call-03-classDS.json",
        "call-04-numNaDS.json",
        "summary.json",
        "summary.csv",
    ]
    mean = files["call-01-meanDS.json"]
    assert mean["status"] == "completed"
    assert mean["call"] == "meanDS(D$AGE)"
    assert mean["result"]["EstimatedMean"] == pytest.approx(statistics.mean(valid))
    assert (mean["result"]["Nvalid"], mean["result"]["Ntotal"]) == (len(valid), len(AGES))
    assert mean["validity_message"] == "VALID ANALYSIS"
    assert files["call-02-lengthDS.json"]["result"] == len(AGES)
    assert files["call-03-classDS.json"]["call"] == "classDS('D$SEX')"  # the canonical text was sent
    assert files["call-03-classDS.json"]["result"] == "character"
    assert files["call-04-numNaDS.json"]["result"] == AGES.count(None)

    summary = files["summary.json"]
    assert summary["opal_version"] == opal.version
    assert summary["packages"] == {"dsBase": DSBASE_VERSION}
    assert summary["profile"] == "default"
    assert summary["assignments"] == {"D": "CNSIM.CNSIM1"}
    rows = list(csv.DictReader(io.StringIO(files["summary.csv"])))
    assert [(row["index"], row["function"], row["status"]) for row in rows] == [
        ("1", "meanDS", "completed"),
        ("2", "lengthDS", "completed"),
        ("3", "classDS", "completed"),
        ("4", "numNaDS", "completed"),
    ]
    assert rows[0]["validity_message"] == "VALID ANALYSIS"

    assert (result.engine.name, result.engine.version) == ("OBiBa Opal DataSHIELD", opal.version)
    assert result.details["packages"] == {"dsBase": DSBASE_VERSION}

    sent = templates(opal)
    assert sent[:4] == [
        ("GET", "/ws/datashield/env/aggregate/methods"),
        ("POST", "/ws/datashield/sessions"),
        ("GET", "/ws/datashield/session/{id}"),
        ("PUT", "/ws/datashield/session/{id}/symbol/D/table/CNSIM.CNSIM1"),
    ]
    assert sent[-1] == ("DELETE", "/ws/datashield/session/{id}")
    aggregates = [request for request in opal.requests if request.path.endswith("/aggregate")]
    assert [request.body.decode() for request in aggregates] == [
        "meanDS(D$AGE)",
        "lengthDS('D$AGE')",
        "classDS('D$SEX')",
        "numNaDS(D$AGE)",
    ]
    assert {request.headers["content-type"] for request in aggregates} == {"application/x-rscript"}
    assert {request.query["async"][0] for request in aggregates} == {"true"}
    assert opal.sessions == {}  # deleted
    assert len(opal.deleted_sessions) == 1
    assert not (job.directory.state / "datashield-session.json").exists()


def test_a_calls_file_staged_from_the_crate_is_read_like_a_value(tmp_path, opal):
    config = ds_config(tmp_path, opal.url)
    job = ds_job(config, ["lengthDS('D$AGE')"])
    calls_file = job.directory.inputs / "calls.json"
    calls_file.write_text(json.dumps(["lengthDS('D$SEX')"]))
    job = Job(
        job.id, job.workflow_id, "1", job.directory, {**job.parameters, "calls": calls_file}, job.service
    )

    result = execute(job, config)

    assert result.status is ExecutionStatus.COMPLETED, result.reason
    assert outputs_of(job)["call-01-lengthDS.json"]["call"] == "lengthDS('D$SEX')"


def test_the_session_is_used_only_once_opal_reports_it_running(tmp_path, opal):
    opal.session_start_seconds = 0.3
    config = ds_config(tmp_path, opal.url)

    result = execute(ds_job(config, ["lengthDS('D$AGE')"]), config)

    assert result.status is ExecutionStatus.COMPLETED, result.reason
    sent = templates(opal)
    polls = sent.index(("PUT", "/ws/datashield/session/{id}/symbol/D/table/CNSIM.CNSIM1"))
    assert sent[2:polls] == [("GET", "/ws/datashield/session/{id}")] * (polls - 2)
    assert polls - 2 > 1  # it asked more than once while the session was PENDING


# --------------------------------------------------------------------------- refused before anything runs
@pytest.mark.parametrize(
    ("calls", "kwargs", "reason"),
    [
        (
            ["meanDS(D$AGE)", "varDS(D$AGE)"],
            {},
            "refused: call 2: function 'varDS' is not among the DataSHIELD functions the TRE approved",
        ),
        (
            ["meanDS(D$AGE)"],
            {"profile": "strict"},
            "refused: the request asks for DataSHIELD profile 'strict', but the TRE approved 'default'",
        ),
        (["meanDS(D$AGE)"], {"profile": None}, "refused: the request names no DataSHIELD profile"),
        (
            ["meanDS(D$AGE)"],
            {"service": {}},
            "refused: the portal sent no approved DataSHIELD profile and functions for this workflow",
        ),
        (
            ["meanDS(D$AGE)"],
            {"service": {"profile": "default", "functions": "meanDS"}},
            "refused: the portal sent no approved DataSHIELD profile and functions for this workflow",
        ),
        (["meanDS(X$AGE)"], {}, "refused: call 1 refers to X, which no assignment creates"),
        (
            ["meanDS(D$AGE)"],
            {"assignments": {"D": "CNSIM"}},
            "refused: symbol 'D': 'CNSIM' is not an Opal table name (project.table)",
        ),
        (
            ["meanDS(D$AGE)"],
            {"assignments": {"_D": "CNSIM.CNSIM1"}},
            "refused: '_D' is not a usable symbol name",
        ),
        (["meanDS(D$AGE)"], {"assignments": []}, "refused: parameter 'assignments' must be a JSON object"),
        ("meanDS(D$AGE)", {}, "refused: parameter 'calls' is not readable JSON"),
        ([], {}, "refused: parameter 'calls' must be a non-empty JSON list of calls"),
        (
            ["meanDS(D$AGE); system('id')"],
            {},
            "refused: call 1 is not a plain DataSHIELD call: ';' is not allowed in a call (position 14)",
        ),
        (
            ["meanDS(exp(D$AGE))"],
            {},
            "refused: call 1 is not a plain DataSHIELD call: nested calls are not allowed (exp(...))",
        ),
    ],
)
def test_a_request_outside_the_approval_is_refused_before_any_request_to_opal(
    tmp_path, opal, calls, kwargs, reason
):
    config = ds_config(tmp_path, opal.url)
    job = ds_job(config, calls, **kwargs)

    result = execute(job, config)

    assert result.status is ExecutionStatus.FAILED
    assert result.reason.startswith(reason), result.reason
    assert opal.requests == []
    assert list(job.directory.outputs.iterdir()) == []


def test_a_function_opal_does_not_allow_for_the_profile_is_refused_before_a_session_opens(tmp_path, opal):
    # The portal approved meanDS for profile "strict", but Opal's "strict" profile only has lengthDS.
    config = ds_config(tmp_path, opal.url)
    job = ds_job(
        config,
        ["lengthDS('D$AGE')", "meanDS(D$AGE)"],
        profile="strict",
        service={"profile": "strict", "functions": APPROVED},
    )

    result = execute(job, config)

    assert result.status is ExecutionStatus.FAILED
    assert result.reason == (
        "refused: call 2: function 'meanDS' is not an aggregate method of DataSHIELD profile 'strict' "
        "on the TRE's Opal"
    )
    assert templates(opal) == [("GET", "/ws/datashield/env/aggregate/methods")]
    assert opal.requests[0].query == {"profile": ["strict"]}


def test_the_route_can_restrict_the_tables_a_workflow_may_assign(tmp_path, opal):
    config = ds_config(tmp_path, opal.url, options='tables = ["CNSIM.TINY"]')
    assert config.route(WORKFLOW_ID, "1").options == DataShieldOptions(tables=frozenset({"CNSIM.TINY"}))

    result = execute(ds_job(config, ["lengthDS('D$AGE')"]), config)

    assert result.status is ExecutionStatus.FAILED
    assert result.reason == "refused: table 'CNSIM.CNSIM1' is not one this TRE allows the workflow to use"
    assert opal.requests == []


def test_too_many_calls_are_refused(tmp_path, opal):
    config = ds_config(tmp_path, opal.url, options="max_calls = 2")

    result = execute(ds_job(config, ["lengthDS('D$AGE')"] * 3), config)

    assert result.status is ExecutionStatus.FAILED
    assert result.reason == "refused: at most 2 calls may be made"


# --------------------------------------------------------------------------- what Opal says
def test_a_failed_command_is_recorded_for_its_call_and_the_other_calls_still_run(tmp_path, opal):
    config = ds_config(tmp_path, opal.url)
    job = ds_job(config, ["meanDS(T$AGE)", "lengthDS('T$AGE')"], assignments={"T": "CNSIM.TINY"})

    result = execute(job, config)

    assert result.status is ExecutionStatus.COMPLETED, result.reason
    files = outputs_of(job)
    failed = files["call-01-meanDS.json"]
    assert failed["status"] == "failed"
    assert "FAILED: Nvalid less than nfilter.tab" in failed["error"]
    assert "result" not in failed
    assert files["call-02-lengthDS.json"]["result"] == len(TABLES["CNSIM.TINY"]["AGE"])
    rows = list(csv.DictReader(io.StringIO(files["summary.csv"])))
    assert [row["status"] for row in rows] == ["failed", "completed"]
    assert ("DELETE", "/ws/datashield/session/{id}") in templates(opal)
    assert opal.sessions == {}


def test_a_call_opal_refuses_fails_the_job_and_the_session_is_deleted(tmp_path, opal):
    opal.refuse_at_parse = {"numNaDS"}  # listed for the profile, refused by Opal's parser
    config = ds_config(tmp_path, opal.url)
    job = ds_job(config, ["meanDS(D$AGE)", "numNaDS(D$AGE)"])

    result = execute(job, config)

    assert result.status is ExecutionStatus.FAILED
    assert result.reason == "Opal refused call 2 (numNaDS): HTTP 400 DataShieldParseError"
    assert list(job.directory.outputs.iterdir()) == []
    assert templates(opal)[-1] == ("DELETE", "/ws/datashield/session/{id}")
    assert opal.sessions == {}
    # Opal's own message stays in the TRE's log.
    assert "No such DataSHIELD 'AGGREGATE' method with name: numNaDS" in result.logs[0].read_text()


def test_an_unknown_table_fails_the_job_and_the_session_is_deleted(tmp_path, opal):
    config = ds_config(tmp_path, opal.url)

    result = execute(ds_job(config, ["lengthDS('D$AGE')"], assignments={"D": "CNSIM.NOPE"}), config)

    assert result.status is ExecutionStatus.FAILED
    assert result.reason == "Opal refused to assign table 'CNSIM.NOPE' to D (HTTP 404 NoSuchValueTable)"
    assert templates(opal)[-1] == ("DELETE", "/ws/datashield/session/{id}")
    assert opal.sessions == {}


def test_a_command_that_never_finishes_times_out_and_the_session_is_deleted(tmp_path, opal):
    opal.command_seconds = {"meanDS": 3600}
    config = ds_config(tmp_path, opal.url, timeout=1)
    job = ds_job(config, ["lengthDS('D$AGE')", "meanDS(D$AGE)"])

    started = time.monotonic()
    result = execute(job, config)

    assert time.monotonic() - started < 10
    assert result.status is ExecutionStatus.FAILED
    assert result.reason == "timeout: wall-clock limit of 1 s reached"
    assert list(job.directory.outputs.iterdir()) == []
    assert templates(opal)[-1] == ("DELETE", "/ws/datashield/session/{id}")
    assert opal.sessions == {}


def test_cancelling_the_job_deletes_the_session(tmp_path, opal):
    opal.command_seconds = {"meanDS": 3600}
    config = ds_config(tmp_path, opal.url)
    cancel = threading.Event()

    def cancel_when_running() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for session in list(opal.sessions.values()):
                if any(command.status == "IN_PROGRESS" for command in list(session.commands.values())):
                    cancel.set()
                    return
            time.sleep(0.02)

    threading.Thread(target=cancel_when_running, daemon=True).start()
    result = execute(ds_job(config, ["meanDS(D$AGE)"]), config, cancel=cancel)

    assert result.status is ExecutionStatus.CANCELLED
    assert result.reason == "cancelled"
    assert templates(opal)[-1] == ("DELETE", "/ws/datashield/session/{id}")
    assert opal.sessions == {}


def test_a_session_left_open_by_an_interrupted_run_is_deleted_first(tmp_path, opal):
    config = ds_config(tmp_path, opal.url)
    job = ds_job(config, ["lengthDS('D$AGE')"])
    stale = opal.open_session("default", wait=True)
    (job.directory.state / "datashield-session.json").write_text(json.dumps({"session_id": stale.id}))

    result = execute(job, config)

    assert result.status is ExecutionStatus.COMPLETED, result.reason
    assert opal.deleted_sessions[0] == stale.id
    assert len(opal.deleted_sessions) == 2
    assert opal.sessions == {}


def test_a_token_opal_rejects_fails_the_job_before_a_session_opens(tmp_path, opal):
    config = ds_config(tmp_path, opal.url, token="not-the-token")

    result = execute(ds_job(config, ["lengthDS('D$AGE')"]), config)

    assert result.status is ExecutionStatus.FAILED
    assert result.reason == "Opal did not list the aggregate methods of profile 'default' (HTTP 401)"
    assert templates(opal) == [("GET", "/ws/datashield/env/aggregate/methods")]


def test_an_unreachable_opal_fails_the_job(tmp_path):
    config = ds_config(tmp_path, "http://127.0.0.1:9")

    result = execute(ds_job(config, ["lengthDS('D$AGE')"]), config)

    assert result.status is ExecutionStatus.FAILED
    assert result.reason == "Opal did not list the aggregate methods of profile 'default' (ConnectionError)"


def test_an_unreadable_token_file_fails_the_job(tmp_path, opal):
    config = ds_config(tmp_path, opal.url)
    (tmp_path / "opal.token").unlink()

    result = execute(ds_job(config, ["lengthDS('D$AGE')"]), config)

    assert result.status is ExecutionStatus.FAILED
    assert result.reason == "the agent cannot read its Opal token file"
    assert opal.requests == []


def test_the_token_is_sent_only_in_x_opal_auth_and_never_written_down(tmp_path, opal):
    opal.refuse_at_parse = {"numNaDS"}
    config = ds_config(tmp_path, opal.url)
    completed_job = ds_job(
        config, ["meanDS(D$AGE)", "meanDS(T$AGE)"], assignments={"D": "CNSIM.CNSIM1", "T": "CNSIM.TINY"}
    )
    failed_job = ds_job(config, ["numNaDS(D$AGE)"], job_id="ds-2")

    results = [execute(completed_job, config), execute(failed_job, config)]

    assert [result.status for result in results] == [ExecutionStatus.COMPLETED, ExecutionStatus.FAILED]
    assert len(opal.requests) > 10
    for request in opal.requests:
        assert request.headers["x-opal-auth"] == TOKEN
        others = {name: value for name, value in request.headers.items() if name != "x-opal-auth"}
        assert TOKEN not in json.dumps(others)
        assert TOKEN not in request.path
        assert TOKEN not in json.dumps(request.query)
        assert TOKEN.encode() not in request.body
    for job in (completed_job, failed_job):
        written = [path for path in job.directory.root.rglob("*") if path.is_file()]
        assert any(path.parent.name == "logs" for path in written)
        for path in written:
            assert TOKEN.encode() not in path.read_bytes(), path
    for result in results:
        assert TOKEN not in repr(result)


# --------------------------------------------------------------------------- configuration
def test_the_datashield_section_is_parsed_and_defaults_apply(tmp_path):
    config = ds_config(tmp_path, "https://opal.tre.internal/")

    settings = config.datashield
    assert settings.url == "https://opal.tre.internal"
    assert settings.token_file == tmp_path / "opal.token"
    assert settings.verify is True
    route = config.route(WORKFLOW_ID, "1")
    assert route.executor == "datashield"
    assert route.options == DataShieldOptions()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("verify_tls = false", False),
        ('ca_bundle = "tre-ca.pem"', "tre-ca.pem"),
    ],
)
def test_tls_verification_follows_the_configuration(tmp_path, make_config, extra, expected):
    config = make_config(
        f'[datashield]\nurl = "https://opal.tre.internal"\ntoken_file = "opal.token"\n{extra}\n'
    )

    verify = config.datashield.verify
    assert verify == (str(tmp_path / expected) if isinstance(expected, str) else expected)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[datashield]\nurl = "https://opal"\ntoken_file = "t"\nverify_tls = false\nca_bundle = "ca.pem"\n',
            "[datashield] ca_bundle: a CA bundle is only used when verify_tls = true",
        ),
        ('[datashield]\nurl = "https://opal"\n', "[datashield] token_file: required setting is missing"),
        (
            '[datashield]\nurl = "https://opal"\ntoken = "abc"\ntoken_file = "t"\n',
            "unknown setting(s) 'token'",
        ),
        (
            '[[workflows]]\nid = "w"\nversion = "1"\nexecutor = "datashield"\n',
            "the datashield executor needs a [datashield] section",
        ),
        (
            '[datashield]\nurl = "https://opal"\ntoken_file = "t"\n'
            '[[workflows]]\nid = "w"\nversion = "1"\nexecutor = "datashield"\n'
            '[workflows.options]\ntables = ["no-dot"]\n',
            "tables: 'no-dot' is not an Opal table name",
        ),
    ],
)
def test_configuration_mistakes_are_reported_with_their_key(make_config, toml, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_config(toml)


def test_the_example_configuration_describes_the_opal_server():
    config = load_config(REPO / "agent" / "agent.example.toml")

    assert config.datashield is not None
    assert config.datashield.url.startswith("https://")
    assert config.datashield.token_file.name == "opal.token"


# --------------------------------------------------------------------------- assign calls
def assign_job(config: AgentConfig, assign: Any, calls: Any, **kwargs: Any) -> Job:
    job = ds_job(config, calls, **kwargs)
    parameters = dict(job.parameters, assign=json.dumps(assign))
    return Job(job.id, job.workflow_id, "1", job.directory, parameters, job.service)


def test_assign_calls_make_new_symbols_on_the_server_that_later_calls_read(tmp_path, opal):
    config = ds_config(tmp_path, opal.url)
    approved = {"profile": "default", "functions": [*APPROVED, "asNumericDS"]}
    job = assign_job(config, {"AGE_N": "asNumericDS( 'D$AGE' )"}, ["meanDS(AGE_N)"], service=approved)

    result = execute(job, config)

    assert result.status is ExecutionStatus.COMPLETED, result.reason
    mean = outputs_of(job)["call-01-meanDS.json"]
    valid = [age for age in AGES if age is not None]
    assert mean["result"]["EstimatedMean"] == pytest.approx(statistics.mean(valid))
    assert ("PUT", "/ws/datashield/session/{id}/symbol/AGE_N") in templates(opal)
    sent = next(r for r in opal.requests if r.path.endswith("/symbol/AGE_N"))
    assert sent.body == b"asNumericDS('D$AGE')"  # the canonical text, as for aggregate calls
    assert sent.headers.get("content-type") == "application/x-rscript"
    assert ("GET", "/ws/datashield/env/assign/methods") in templates(opal)


@pytest.mark.parametrize(
    ("assign", "functions", "reason"),
    [
        (
            {"AGE_N": "asNumericDS('D$AGE')"},
            APPROVED,
            "refused: assign call 1: function 'asNumericDS' is not among the DataSHIELD functions the TRE approved",
        ),
        (
            {"AGE_N": "asNumericDS(X$AGE)"},
            [*APPROVED, "asNumericDS"],
            "refused: assign call 1 refers to X, which nothing before it creates",
        ),
        (
            {"D": "asNumericDS('D$AGE')"},
            [*APPROVED, "asNumericDS"],
            "refused: assign call 1: 'D' is not a new usable symbol name",
        ),
        (
            {"AGE_N": "asNumericDS(D$AGE); quit()"},
            [*APPROVED, "asNumericDS"],
            "refused: assign call 1 is not a plain DataSHIELD call",
        ),
        (
            {"AGE_N": "meanDS(D$AGE)"},
            [*APPROVED, "asNumericDS"],
            "refused: assign call 1: function 'meanDS' is not an assign method of DataSHIELD profile 'default'",
        ),
    ],
)
def test_assign_calls_outside_the_approval_or_opals_list_are_refused_before_a_session(
    tmp_path, opal, assign, functions, reason
):
    config = ds_config(tmp_path, opal.url)
    job = assign_job(
        config, assign, ["lengthDS('D$AGE')"], service={"profile": "default", "functions": functions}
    )

    result = execute(job, config)

    assert result.status is ExecutionStatus.FAILED
    assert result.reason.startswith(reason)
    assert not any(method == "POST" for method, _ in templates(opal))  # no session was opened

"""The bitfount executor: the plan and its refusals, the task file, the results parser, and the
subprocess contract against a stand-in ``bitfount`` command that these tests write into ``tmp_path``.

The stand-in checks its command line, environment and task file as Bitfount 13.0.0 reads them
(``yaml.safe_load``, ``pods.identifiers``, ``task.protocol``/``algorithm``), runs the SQL query in SQLite
over a small table per pod (as Bitfount's in-memory ``SqlQuery`` does with pandasql) and writes
``results.csv`` where Bitfount's ResultsOnly modeller would. Nothing here talks to Bitfount.
"""

from __future__ import annotations

import csv
import io
import json
import random
import stat
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from agent.config import AgentConfig, BitfountSettings, ConfigError, load_config
from agent.executors import bitfount as bitfount_module
from agent.executors import execute
from agent.executors.base import ExecutionStatus
from agent.executors.bitfount import (
    BitfountOptions,
    PodResults,
    ResultsError,
    TaskPlan,
    TaskRefused,
    output_path,
    plan_task,
    read_pod_results,
    redact_tree,
    render_csv,
    task_document,
    write_task_file,
)
from agent.jobs import Job, JobDirectory
from tests.unit.agent.conftest import REPO, TOML_BASE
from tests.unit.agent.test_sandbox import running_sleeps, wait_until

WORKFLOW_ID = "https://portal.example.org/workflows/bitfount-cohort-query"
POD_A = "hospital-a/cohort"
POD_B = "hospital-b/cohort"
APPROVED = {
    "pods": [POD_A, POD_B],
    "task": {"algorithm": "bitfount.SqlQuery", "protocol": "bitfount.ResultsOnly"},
}
QUERY = "SELECT sex, COUNT(*) AS persons FROM `cohort` WHERE age >= 50 GROUP BY sex ORDER BY sex"
# The TRE's Bitfount credentials: they must reach the modeller's environment and nothing else.
API_KEY_ID = "bf-key-id-7c41d0e2a9:am-31f0"
API_KEY = "bf-api-key-5e0b9a77d4c2f18e:am-c0ffee"
FAKE_VERSION = "13.0.0"

# The stand-in `bitfount` command. Its constants are prepended by write_fake_bitfount.
FAKE_BODY = r"""
import csv
import os
import re
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

POD_RE = re.compile(r"[a-z\d](?:[a-z\d]|(-|_)(?=[a-z\d])){0,38}/[a-z\d]+((-|_)[a-z\d]+)*")
TOP_LEVEL = {"pods", "task", "secrets", "modeller", "hub", "message_service", "version", "project_id",
             "run_on_new_data_only", "batched_execution", "test_run", "force_rerun_failed_files",
             "enable_anonymized_tracker_upload", "requires_ehr_connection", "supports_mps"}


def fail(message, code=2):
    print(f"fake bitfount: {message}", file=sys.stderr)
    sys.exit(code)


def record(line):
    with open(os.environ["FAKE_CALLS"], "a") as calls:
        calls.write(line + "\n")


mode = os.environ.get("FAKE_MODE", "ok")
args = sys.argv[1:]
if args == ["version"]:
    record("version")
    if mode == "version-fail":
        fail("cannot import bitfount", 1)
    print("INFO bitfount: loading plugins")
    print(VERSION)
    sys.exit(0)
if len(args) != 3 or args[0] != "run_modeller" or args[2] != "--require_all_pods=True":
    fail(f"unexpected arguments {args}")
record("run_modeller")
if os.environ.get("BITFOUNT_API_KEY_ID") != EXPECTED_KEY_ID or os.environ.get("BITFOUNT_API_KEY") != EXPECTED_KEY:
    fail("the API keys are not in the environment", 3)
text = Path(args[1]).read_text()
if EXPECTED_KEY in text or EXPECTED_KEY_ID in text or any(EXPECTED_KEY in arg for arg in args):
    fail("an API key is in the task file or on the command line", 3)
task = yaml.safe_load(text)
unknown = set(task) - TOP_LEVEL
if unknown or "secrets" in task:
    fail(f"unexpected task file keys {sorted(unknown)}")
pods = task["pods"]["identifiers"]
if len(pods) != 1 or not POD_RE.fullmatch(pods[0]):
    fail(f"expected one pod identifier, got {pods}")
protocol, algorithm = task["task"]["protocol"], task["task"]["algorithm"]
if protocol["name"] != "bitfount.ResultsOnly" or protocol["arguments"] != {"save_location": ["Modeller"]}:
    fail(f"unexpected protocol {protocol}")
if algorithm["name"] != "bitfount.SqlQuery" or not isinstance(task["task"]["data_structure"], dict):
    fail(f"unexpected algorithm {algorithm}")
if task["modeller"]["identity_verification_method"] != "key-based":
    fail("the modeller would need a person at a browser")
with open("fake-report.json", "w") as report:
    import json
    json.dump({"argv": args, "cwd": os.getcwd(), "env": sorted(os.environ), "task": task}, report)

logs = Path(os.environ["BITFOUNT_LOGS_DIR"])
logs.mkdir(parents=True, exist_ok=True)
with open(logs / "modeller.log", "a") as log:
    log.write(f"INFO Sending task to {pods[0]}\n")
    if mode == "leak":
        log.write(f"DEBUG headers x-api-key-id={EXPECTED_KEY_ID} x-api-key={EXPECTED_KEY}\n")
        print(f"using key {EXPECTED_KEY.split(':')[0]}", file=sys.stderr)

if mode == "fail":
    fail("Traceback (most recent call last): PodResponseError: pod rejected the task", 1)
if mode == "sleep":
    Path("started").touch()
    subprocess.run(["sleep", "3203"])
    sys.exit(0)
if mode == "no-results":
    sys.exit(0)

# Bitfount's in-memory SqlQuery: the table is the pod name, in backticks, with hyphens removed.
owner, name = pods[0].split("/")
table = algorithm["arguments"].get("table") or name
query = algorithm["arguments"]["query"]
if f"`{table}`" not in query:
    fail("the query does not name the pod's table in backticks")
with open(Path(os.environ["FAKE_POD_DATA"]) / f"{owner}__{name}.csv", newline="") as handle:
    rows = list(csv.reader(handle))
database = sqlite3.connect(":memory:")
clean = table.replace("-", "")
database.execute(f"CREATE TABLE `{clean}` ({', '.join(rows[0])})")
# Numbers as numbers, as pandas would read them.
values = [[int(value) if value.isdigit() else value for value in row] for row in rows[1:]]
database.executemany(f"INSERT INTO `{clean}` VALUES ({', '.join('?' * len(rows[0]))})", values)
cursor = database.execute(query.replace(f"`{table}`", f"`{clean}`"))

results = Path(os.environ["BITFOUNT_TASK_RESULTS_DIR"])
if task.get("project_id"):
    results = results / task["project_id"] / str(uuid.uuid4())
results.mkdir(parents=True, exist_ok=True)
with open(results / "results.csv", "w", newline="") as handle:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow([column[0] for column in cursor.description])
    writer.writerows(cursor.fetchall())
"""


def write_fake_bitfount(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "bitfount"
    constants = f"VERSION = {FAKE_VERSION!r}\nEXPECTED_KEY_ID = {API_KEY_ID!r}\nEXPECTED_KEY = {API_KEY!r}\n"
    path.write_text(f"#!{sys.executable}\n" + constants + FAKE_BODY)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def write_pod_data(directory: Path, pod: str, seed: int, persons: int = 120) -> list[tuple[int, int, str]]:
    """A small synthetic table for one pod; returns its rows."""
    generator = random.Random(seed)
    rows = [
        (index, generator.randint(18, 95), generator.choice(["female", "male"])) for index in range(persons)
    ]
    directory.mkdir(parents=True, exist_ok=True)
    owner, name = pod.split("/")
    with (directory / f"{owner}__{name}.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["person_id", "age", "sex"])
        writer.writerows(rows)
    return rows


def bitfount_config(
    tmp_path: Path,
    *,
    mode: str = "ok",
    timeout: int = 120,
    bitfount_timeout: int | None = None,
    options: str = "",
    executable: Path | None = None,
) -> AgentConfig:
    fake = executable or write_fake_bitfount(tmp_path / "bin")
    (tmp_path / "keys").mkdir(exist_ok=True)
    (tmp_path / "keys" / "api-key-id").write_text(API_KEY_ID + "\n")
    (tmp_path / "keys" / "api-key").write_text(API_KEY + "\n")
    extra_timeout = f"timeout_seconds = {bitfount_timeout}\n" if bitfount_timeout else ""
    path = tmp_path / "agent.toml"
    path.write_text(
        TOML_BASE.format(work_dir=tmp_path / "work", timeout=timeout)
        + f"""
[bitfount]
executable = "{fake}"
username = "tre-test-modeller"
api_key_id_file = "keys/api-key-id"
api_key_file = "keys/api-key"
{extra_timeout}env = {{ FAKE_MODE = "{mode}", FAKE_POD_DATA = "{tmp_path / "pods"}", FAKE_CALLS = "{tmp_path / "calls.log"}" }}

[[workflows]]
id = "{WORKFLOW_ID}"
version = "1"
executor = "bitfount"
[workflows.options]
{options}
"""
    )
    return load_config(path)


def make_job(
    config: AgentConfig,
    job_id: str = "bf-1",
    service: dict[str, Any] | None = None,
    **parameters: Any,
) -> Job:
    directory = JobDirectory.create(config.work_dir, job_id)
    return Job(
        job_id,
        WORKFLOW_ID,
        "1",
        directory,
        MappingProxyType(parameters),
        MappingProxyType(dict(APPROVED if service is None else service)),
    )


def expected_table(rows: list[tuple[int, int, str]]) -> list[list[str]]:
    counts = Counter(sex for _, age, sex in rows if age >= 50)
    return [["sex", "persons"]] + [[sex, str(counts[sex])] for sex in sorted(counts)]


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def files_containing(root: Path, *needles: str) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            if any(needle.encode() in content for needle in needles):
                found.append(path)
    return found


def calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def bitfount_settings(tmp_path: Path) -> BitfountSettings:
    return BitfountSettings(
        executable=tmp_path / "bitfount",
        username="tre-test-modeller",
        api_key_id_file=tmp_path / "id",
        api_key_file=tmp_path / "key",
    )


@pytest.fixture
def plain_job(tmp_path: Path):
    def make(service: dict[str, Any] | None = None, **parameters: Any) -> Job:
        directory = JobDirectory.create(tmp_path / "work", "plan-1")
        return Job(
            "plan-1",
            WORKFLOW_ID,
            "1",
            directory,
            parameters,
            MappingProxyType(dict(APPROVED if service is None else service)),
        )

    return make


# ------------------------------------------------------------------------------------------ the plan
def test_the_plan_takes_the_requested_pods_and_query_inside_the_approval(plain_job):
    plan = plan_task(plain_job(pods=f" {POD_B} ", algorithm="bitfount.SqlQuery", query=f"  {QUERY}\n"))

    assert plan == TaskPlan(
        pods=(POD_B,),
        algorithm="bitfount.SqlQuery",
        protocol="bitfount.ResultsOnly",
        arguments={"query": QUERY},
        project_id=None,
    )


def test_without_a_pods_input_every_approved_pod_is_used_and_files_are_read(plain_job):
    job = plain_job({**APPROVED, "project_id": "proj-42"})
    (job.directory.inputs / "query.sql").write_text(QUERY + "\n")
    (job.directory.inputs / "arguments.json").write_text('{"table": "cohort"}')
    job = Job(
        job.id,
        job.workflow_id,
        "1",
        job.directory,
        {"query": job.directory.inputs / "query.sql", "arguments": job.directory.inputs / "arguments.json"},
        job.service,
    )

    plan = plan_task(job)

    assert plan.pods == (POD_A, POD_B)
    assert plan.arguments == {"table": "cohort", "query": QUERY}
    assert plan.project_id == "proj-42"


def test_pods_may_be_separated_by_commas_or_spaces_and_repeats_collapse(plain_job):
    plan = plan_task(plain_job(pods=f"{POD_A},{POD_B}\n{POD_A}", query=QUERY))

    assert plan.pods == (POD_A, POD_B)


@pytest.mark.parametrize(
    ("service", "parameters", "options", "reason"),
    [
        (
            None,
            {"pods": "hospital-c/cohort", "query": QUERY},
            None,
            "pod hospital-c/cohort is not among the pods",
        ),
        (
            None,
            {"pods": f"{POD_A}, ../../etc", "query": QUERY},
            None,
            "input 'pods' has an entry that is not a pod identifier",
        ),
        (
            None,
            {"algorithm": "bitfount.PrivateSqlQuery", "query": QUERY},
            None,
            "asks for algorithm bitfount.PrivateSqlQuery; only bitfount.SqlQuery is approved",
        ),
        (
            None,
            {"algorithm": "rm -rf /", "query": QUERY},
            None,
            "asks for algorithm other than the approved one; only bitfount.SqlQuery is approved",
        ),
        (None, {"query": QUERY, "epsilon": "3"}, None, "inputs this workflow does not take ('epsilon')"),
        (None, {"query": QUERY, "arguments": '{"query": "SELECT 1"}'}, None, "the query is given twice"),
        (None, {"arguments": "[1, 2]"}, None, "input 'arguments' must be a JSON object"),
        (None, {"arguments": "{not json"}, None, "input 'arguments' is not valid JSON"),
        (None, {"query": "   "}, None, "input 'query' is empty"),
        (
            None,
            {"query": Path("/etc/passwd")},
            None,
            "input 'query' is not a file staged in the job's inputs",
        ),
        (None, {"pods": 3, "query": QUERY}, None, "input 'pods' must be text"),
        ({}, {"query": QUERY}, None, "the portal sent no approved Bitfount settings"),
        (
            {
                **APPROVED,
                "task": {"algorithm": "bitfount.SqlQuery", "protocol": "bitfount.FederatedAveraging"},
            },
            {"query": QUERY},
            None,
            "runs only bitfount.ResultsOnly tasks",
        ),
        (
            {**APPROVED, "task": {**APPROVED["task"], "max_rows": 10}},
            {"query": QUERY},
            None,
            "the approved task has settings this agent does not understand",
        ),
        (
            {**APPROVED, "pods": "hospital-a/cohort"},
            {"query": QUERY},
            None,
            "do not list valid pod identifiers",
        ),
        (
            {**APPROVED, "project_id": "a/b"},
            {"query": QUERY},
            None,
            "approved Bitfount project id is not valid",
        ),
        (
            None,
            {"pods": POD_B, "query": QUERY},
            BitfountOptions(pods=(POD_A,)),
            "pod hospital-b/cohort is not among the pods approved",
        ),
        (
            None,
            {"query": QUERY},
            BitfountOptions(pods=("hospital-z/cohort",)),
            "none of the pods approved in the portal is allowed by this TRE's configuration",
        ),
        (
            None,
            {"query": QUERY},
            BitfountOptions(algorithms=("bitfount.PrivateSqlQuery",)),
            "the approved algorithm bitfount.SqlQuery is not allowed by this TRE's configuration",
        ),
    ],
)
def test_requests_outside_the_approval_are_refused(plain_job, service, parameters, options, reason):
    with pytest.raises(TaskRefused) as refused:
        plan_task(plain_job(service, **parameters), options or BitfountOptions())

    assert reason in str(refused.value)


# ------------------------------------------------------------------------------------- the task file
def test_the_task_file_names_one_pod_the_approved_task_and_no_credentials(tmp_path, bitfount_settings):
    plan = TaskPlan((POD_A, POD_B), "bitfount.SqlQuery", "bitfount.ResultsOnly", {"query": QUERY})

    document = task_document(plan, POD_B, bitfount_settings)

    assert document == {
        "modeller": {"username": "tre-test-modeller", "identity_verification_method": "key-based"},
        "pods": {"identifiers": [POD_B]},
        "task": {
            "protocol": {"name": "bitfount.ResultsOnly", "arguments": {"save_location": ["Modeller"]}},
            "algorithm": {"name": "bitfount.SqlQuery", "arguments": {"query": QUERY}},
            "data_structure": {},
        },
    }
    path = tmp_path / "task.yaml"
    write_task_file(path, document)
    assert yaml.safe_load(path.read_text()) == document  # read as Bitfount reads it


def test_the_task_file_carries_the_project_and_the_private_key_path(tmp_path, bitfount_settings):
    settings = BitfountSettings(
        **{**bitfount_settings.__dict__, "private_key_file": tmp_path / "modeller.pem"}
    )
    plan = TaskPlan(
        (POD_A,), "bitfount.SqlQuery", "bitfount.ResultsOnly", {"query": "SELECT 'a: b'\n"}, "proj-42"
    )

    document = task_document(plan, POD_A, settings)
    path = tmp_path / "task.yaml"
    write_task_file(path, document)

    loaded = yaml.safe_load(path.read_text())
    assert loaded["project_id"] == "proj-42"
    assert loaded["modeller"]["private_key_file"] == str(tmp_path / "modeller.pem")
    assert loaded["task"]["algorithm"]["arguments"]["query"] == "SELECT 'a: b'\n"
    with pytest.raises(ValueError, match="not part of the plan"):
        task_document(plan, POD_B, settings)


# --------------------------------------------------------------------------------------- the results
def write_results(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_results_table_is_found_directly_or_under_project_and_task(tmp_path):
    write_results(tmp_path / "flat" / "results.csv", 'sex,persons\nfemale,31\n"male, other",29\n')
    write_results(tmp_path / "nested" / "proj-42" / "3f2a" / "results.csv", "n\n7\n")

    flat = read_pod_results(tmp_path / "flat", max_bytes=1000)
    nested = read_pod_results(tmp_path / "nested", max_bytes=1000)

    assert flat == PodResults(("sex", "persons"), (("female", "31"), ("male, other", "29")))
    assert nested == PodResults(("n",), (("7",),))
    assert render_csv(flat) == b'sex,persons\nfemale,31\n"male, other",29\n'


def test_a_header_only_table_is_an_empty_result(tmp_path):
    write_results(tmp_path / "results.csv", "sex,persons\n")

    assert read_pod_results(tmp_path, max_bytes=1000) == PodResults(("sex", "persons"), ())


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "Bitfount wrote no results table"),
        (
            {"results.csv": "a\n1\n", "results (1).csv": "a\n2\n"},
            "wrote 2 results tables where one was expected",
        ),
        ({"results.csv": "a,b\n1\n"}, "rows of a different width"),
        ({"results.csv": ""}, "has no header row"),
        ({"results.csv": "a,,c\n1,2,3\n"}, "has no header row"),
        ({"results.csv": "a,a\n1,2\n"}, "repeats a column name"),
        ({"results.csv": "a\n" + "9" * 2000 + "\n"}, "over the limit of 1000 bytes"),
        ({"results.csv": b"a\n\xff\n"}, "not UTF-8 text"),
        ({"results.csv": 'a\n"unterminated\n'}, "not valid CSV"),
    ],
)
def test_bad_results_are_refused(tmp_path, files, message):
    for name, content in files.items():
        target = tmp_path / name
        target.write_bytes(content if isinstance(content, bytes) else content.encode())

    with pytest.raises(ResultsError, match=message):
        read_pod_results(tmp_path, max_bytes=1000)


def test_a_linked_results_table_is_refused(tmp_path):
    secret = write_results(tmp_path / "elsewhere" / "data.txt", "a\n1\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "results.csv").symlink_to(secret)

    with pytest.raises(ResultsError, match="not a regular file"):
        read_pod_results(tmp_path / "results", max_bytes=1000)


def test_each_pod_has_its_own_output_path():
    assert output_path(POD_A) == "hospital-a/cohort.csv"
    assert output_path("Trust.North/omop_v5") == "Trust.North/omop_v5.csv"


def test_redaction_replaces_secrets_split_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(bitfount_module, "_REDACT_CHUNK", 7)
    log = write_results(
        tmp_path / "logs" / "modeller.log", f"header {API_KEY} middle {API_KEY_ID}\nend {API_KEY}"
    )
    clean = write_results(tmp_path / "logs" / "clean.log", "nothing to see")
    before = clean.stat().st_mtime_ns

    redact_tree(tmp_path / "logs", [API_KEY, API_KEY_ID])

    assert log.read_text() == "header [REDACTED] middle [REDACTED]\nend [REDACTED]"
    assert clean.stat().st_mtime_ns == before


# --------------------------------------------------------------------------------------- configuration
def test_the_bitfount_section_is_parsed(tmp_path):
    config = bitfount_config(tmp_path, bitfount_timeout=600, options=f'pods = ["{POD_A}"]')

    assert config.bitfount is not None
    assert config.bitfount.executable == tmp_path / "bin" / "bitfount"
    assert config.bitfount.api_key_file == tmp_path / "keys" / "api-key"
    assert config.bitfount.timeout_seconds == 600
    assert config.bitfount.env["FAKE_MODE"] == "ok"
    assert config.route(WORKFLOW_ID, "1").options == BitfountOptions(pods=(POD_A,), algorithms=None)
    assert API_KEY not in repr(config)


def test_the_example_configuration_has_a_bitfount_section():
    config = load_config(REPO / "agent" / "agent.example.toml")

    assert config.bitfount is not None
    assert config.bitfount.executable.name == "bitfount"
    assert config.bitfount.env.get("BITFOUNT_ENVIRONMENT") == "production"


BITFOUNT_SECTION = (
    '\n[bitfount]\nexecutable = "/opt/bf/bin/bitfount"\napi_key_id_file = "id"\napi_key_file = "key"\n'
)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            '\n[[workflows]]\nid = "a"\nversion = "1"\nexecutor = "bitfount"\n',
            "needs a \\[bitfount\\] section",
        ),
        (BITFOUNT_SECTION + 'username = "Not Valid"\n', "username: 'Not Valid' is not valid"),
        (
            BITFOUNT_SECTION + 'username = "u"\nenv = { BITFOUNT_API_KEY = "x" }\n',
            "'BITFOUNT_API_KEY' cannot be set",
        ),
        (BITFOUNT_SECTION + 'username = "u"\nenv = { PATH = "/tmp" }\n', "'PATH' cannot be set"),
        (BITFOUNT_SECTION + 'username = "u"\napi_key = "inline"\n', "unknown setting\\(s\\) 'api_key'"),
        (
            BITFOUNT_SECTION
            + 'username = "u"\n[[workflows]]\nid = "a"\nversion = "1"\nexecutor = "bitfount"\n'
            'options = { pods = ["no-owner"] }\n',
            "pods: expected pod identifiers",
        ),
        (
            BITFOUNT_SECTION
            + 'username = "u"\n[[workflows]]\nid = "a"\nversion = "1"\nexecutor = "bitfount"\n'
            'options = { algorithms = ["bitfount.Sql Query"] }\n',
            "algorithms: expected algorithm names",
        ),
    ],
)
def test_invalid_bitfount_configuration_names_the_key(make_config, extra, message):
    with pytest.raises(ConfigError, match=message):
        make_config(extra)


# ------------------------------------------------------------------------- the subprocess contract
def test_each_pod_runs_once_and_its_table_becomes_an_output(tmp_path):
    rows_a = write_pod_data(tmp_path / "pods", POD_A, seed=1)
    rows_b = write_pod_data(tmp_path / "pods", POD_B, seed=2)
    config = bitfount_config(tmp_path)
    job = make_job(config, query=QUERY)

    result = execute(job, config)

    assert result.status is ExecutionStatus.COMPLETED, result.reason
    assert result.engine.name == "Bitfount"
    assert result.engine.version == FAKE_VERSION
    assert [output.path for output in result.outputs] == ["hospital-a/cohort.csv", "hospital-b/cohort.csv"]
    assert read_csv(job.directory.outputs / "hospital-a" / "cohort.csv") == expected_table(rows_a)
    assert read_csv(job.directory.outputs / "hospital-b" / "cohort.csv") == expected_table(rows_b)
    assert all(output.media_type == "text/csv" for output in result.outputs)
    assert result.details == {
        "pods": [POD_A, POD_B],
        "algorithm": "bitfount.SqlQuery",
        "protocol": "bitfount.ResultsOnly",
        "project_id": None,
    }
    assert result.network.startswith("allowed")
    assert calls(tmp_path) == ["version", "run_modeller", "run_modeller"]


def test_the_modeller_gets_the_task_file_the_keys_and_a_minimal_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FIVE_SAFES_AGENT_TOKEN", "agent-portal-token-6f1d2c")
    write_pod_data(tmp_path / "pods", POD_A, seed=3)
    config = bitfount_config(tmp_path)
    job = make_job(config, pods=POD_A, query=QUERY)

    result = execute(job, config)

    assert result.status is ExecutionStatus.COMPLETED, result.reason
    pod_dir = job.directory.work / "bitfount" / "pod-1"
    report = json.loads((pod_dir / "fake-report.json").read_text())
    assert report["argv"] == ["run_modeller", str(pod_dir / "task.yaml"), "--require_all_pods=True"]
    assert report["cwd"] == str(pod_dir)
    assert set(report["env"]) == {
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "LC_ALL",
        "BITFOUNT_API_KEY_ID",
        "BITFOUNT_API_KEY",
        "BITFOUNT_TASK_RESULTS_DIR",
        "BITFOUNT_OUTPUT_DIR",
        "BITFOUNT_LOGS_DIR",
        "FAKE_MODE",
        "FAKE_POD_DATA",
        "FAKE_CALLS",
    }
    assert report["task"]["pods"] == {"identifiers": [POD_A]}
    assert report["task"]["task"]["algorithm"] == {"name": "bitfount.SqlQuery", "arguments": {"query": QUERY}}
    assert job.directory.logs / "bitfount-pod-1" / "modeller.log" in result.logs
    # The keys reached the modeller (it checks them) but no file the agent or the modeller left.
    assert files_containing(tmp_path / "work", API_KEY, API_KEY_ID, "agent-portal-token-6f1d2c") == []


def test_results_of_a_task_in_a_project_are_found(tmp_path):
    rows = write_pod_data(tmp_path / "pods", POD_B, seed=4)
    config = bitfount_config(tmp_path)
    job = make_job(config, service={**APPROVED, "project_id": "proj-42"}, pods=POD_B, query=QUERY)

    result = execute(job, config)

    assert result.status is ExecutionStatus.COMPLETED, result.reason
    assert list((job.directory.work / "bitfount" / "pod-1" / "results" / "proj-42").glob("*/results.csv"))
    assert read_csv(job.directory.outputs / "hospital-b" / "cohort.csv") == expected_table(rows)
    assert result.details["project_id"] == "proj-42"


def test_the_version_is_asked_once_per_installed_executable(tmp_path):
    write_pod_data(tmp_path / "pods", POD_A, seed=5)
    config = bitfount_config(tmp_path)

    first = execute(make_job(config, "bf-v1", pods=POD_A, query=QUERY), config)
    second = execute(make_job(config, "bf-v2", pods=POD_A, query=QUERY), config)

    assert first.status is second.status is ExecutionStatus.COMPLETED
    assert second.engine.version == FAKE_VERSION
    assert calls(tmp_path) == ["version", "run_modeller", "run_modeller"]


def test_a_refused_request_starts_nothing(tmp_path):
    config = bitfount_config(tmp_path)
    job = make_job(config, pods="hospital-c/cohort", query=QUERY)

    result = execute(job, config)

    assert result.status is ExecutionStatus.FAILED
    assert result.reason == "refused: pod hospital-c/cohort is not among the pods approved for this workflow"
    assert calls(tmp_path) == []
    assert result.outputs == ()


def test_a_failing_modeller_fails_the_job_without_outputs(tmp_path):
    write_pod_data(tmp_path / "pods", POD_A, seed=6)
    config = bitfount_config(tmp_path, mode="fail")
    job = make_job(config, query=QUERY)

    result = execute(job, config)

    assert result.status is ExecutionStatus.FAILED
    assert (
        result.reason
        == "the Bitfount task failed for pod hospital-a/cohort: bitfount run_modeller exit status 1"
    )
    assert "PodResponseError" not in result.reason
    assert list(job.directory.outputs.iterdir()) == []
    assert calls(tmp_path) == ["version", "run_modeller"]  # the second pod is not tried


def test_a_modeller_that_writes_no_results_fails_the_job(tmp_path):
    config = bitfount_config(tmp_path, mode="no-results")
    job = make_job(config, pods=POD_B, query=QUERY)

    result = execute(job, config)

    assert result.status is ExecutionStatus.FAILED
    assert result.reason == "pod hospital-b/cohort: Bitfount wrote no results table"


def test_a_broken_installation_or_missing_keys_fail_clearly(tmp_path):
    config = bitfount_config(tmp_path, mode="version-fail")
    result = execute(make_job(config, "bf-broken", query=QUERY), config)
    assert result.status is ExecutionStatus.FAILED
    assert result.reason == "the TRE's Bitfount installation did not report its version (exit status 1)"

    (tmp_path / "keys" / "api-key").unlink()
    result = execute(make_job(config, "bf-nokey", query=QUERY), config)
    assert result.reason == "the TRE's Bitfount API key files cannot be read"

    (tmp_path / "other").mkdir()
    config = bitfount_config(tmp_path / "other", executable=tmp_path / "missing" / "bitfount")
    result = execute(make_job(config, "bf-noexe", query=QUERY), config)
    assert result.reason == "the TRE's Bitfount executable is missing or not executable"


def test_keys_printed_by_the_modeller_are_scrubbed_from_its_logs(tmp_path):
    write_pod_data(tmp_path / "pods", POD_A, seed=7)
    config = bitfount_config(tmp_path, mode="leak")
    job = make_job(config, pods=POD_A, query=QUERY)

    result = execute(job, config)

    assert result.status is ExecutionStatus.COMPLETED, result.reason
    log = (job.directory.logs / "bitfount-pod-1" / "modeller.log").read_text()
    assert "x-api-key=[REDACTED]" in log
    assert "using key [REDACTED]" in (job.directory.logs / "bitfount-pod-1.stderr.log").read_text()
    assert files_containing(tmp_path / "work", API_KEY, API_KEY_ID, API_KEY.split(":")[0]) == []


def test_a_modeller_past_the_bitfount_timeout_is_stopped(tmp_path):
    config = bitfount_config(tmp_path, mode="sleep", bitfount_timeout=2)
    job = make_job(config, query=QUERY)

    started = time.monotonic()
    result = execute(job, config)

    assert result.status is ExecutionStatus.FAILED
    assert result.reason == "timeout: wall-clock limit of 2 s reached"
    assert time.monotonic() - started < 30
    assert wait_until(lambda: running_sleeps("3203") == [])
    assert result.outputs == ()


def test_cancelling_a_running_task_stops_the_modeller(tmp_path):
    config = bitfount_config(tmp_path, mode="sleep")
    job = make_job(config, query=QUERY)
    cancel = threading.Event()
    marker = job.directory.work / "bitfount" / "pod-1" / "started"

    def cancel_once_started() -> None:
        wait_until(marker.exists, timeout=60)
        cancel.set()

    threading.Thread(target=cancel_once_started, daemon=True).start()
    result = execute(job, config, cancel=cancel)

    assert result.status is ExecutionStatus.CANCELLED
    assert result.reason == "cancelled"
    assert wait_until(lambda: running_sleeps("3203") == [])
    assert calls(tmp_path) == ["version", "run_modeller"]


def test_the_csv_written_matches_what_bitfount_wrote(tmp_path):
    rows = write_pod_data(tmp_path / "pods", POD_A, seed=8)
    config = bitfount_config(tmp_path)
    job = make_job(config, pods=POD_A, query=QUERY)

    result = execute(job, config)

    (written,) = (job.directory.work / "bitfount" / "pod-1" / "results").rglob("results.csv")
    returned = (job.directory.outputs / "hospital-a" / "cohort.csv").read_bytes()
    assert result.status is ExecutionStatus.COMPLETED
    assert returned == written.read_bytes()
    assert list(csv.reader(io.StringIO(returned.decode()))) == expected_table(rows)

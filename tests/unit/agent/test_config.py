"""agent.toml: loading, validation messages, routing and refusal of unmapped workflows."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import ConfigError, WorkflowNotApprovedError, load_config
from agent.executors.cwl import CwlOptions
from agent.executors.sql_aggregate import SqlAggregateOptions
from agent.executors.tes import TesOptions
from tests.unit.agent.conftest import REPO

SQLITE_DATASET = """
[datasets.omop]
sqlite_path = "omop.sqlite"
"""


def test_the_example_configuration_loads_with_one_route_per_executor():
    config = load_config(REPO / "agent" / "agent.example.toml")

    assert config.tre.slug == "tre-north"
    assert config.limits.memory_bytes == 2 * 1024**3
    assert config.limits.max_output_file_bytes == 100 * 1024**2
    assert config.sandbox.require_network_isolation is True
    assert {route.executor for route in config.workflows.values()} == {"cwl", "sql-aggregate", "tes"}
    assert config.datasets["omop_pg"].engine == "postgresql"
    assert config.datasets["omop_pg"].schema == "cdm"


def test_routes_carry_parsed_options_and_workflow_limits_only_tighten(make_config):
    config = make_config(
        SQLITE_DATASET
        + """
[[workflows]]
id = "wf-sql"
version = "3"
executor = "sql-aggregate"
[workflows.options]
dataset = "omop"
suppression_threshold = 20
[workflows.limits]
timeout_seconds = 30
memory_bytes = "8 GiB"

[[workflows]]
id = "wf-cwl"
version = "1"
executor = "cwl"
[workflows.options]
dataset = "omop"
provenance = false
"""
    )

    sql = config.route("wf-sql", "3")
    assert sql.options == SqlAggregateOptions(dataset="omop", suppression_threshold=20)
    assert sql.limits.timeout_seconds == 30
    assert sql.limits.memory_bytes == 2 * 1024**3  # asking for 8 GiB cannot raise the TRE's 2 GiB
    assert config.route("wf-cwl", "1").options == CwlOptions(dataset="omop", provenance=False)
    assert config.datasets["omop"].sqlite_path == config.work_dir.parent / "omop.sqlite"


def test_an_unmapped_workflow_or_version_is_refused_with_a_clear_error(make_config):
    config = make_config(
        SQLITE_DATASET
        + """
[[workflows]]
id = "wf-sql"
version = "3"
executor = "sql-aggregate"
options = { dataset = "omop" }
"""
    )

    with pytest.raises(WorkflowNotApprovedError, match=r"'wf-sql' version '4' is not approved .* 'tre-test'"):
        config.route("wf-sql", "4")
    with pytest.raises(WorkflowNotApprovedError, match="no \\[\\[workflows\\]\\] entry"):
        config.route("other", "3")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[limits]\n", "not valid TOML"),
        ("\n[agent2]\nx = 1\n", "top level: unknown setting\\(s\\) 'agent2'"),
        (
            '\n[[workflows]]\nid = "a"\nversion = "1"\nexecutor = "spark"\n',
            "\\[\\[workflows\\]\\] #1 executor: 'spark' is not one of bitfount, cwl, datashield, sql-aggregate, tes",
        ),
        (
            '\n[[workflows]]\nid = "a"\nversion = "1"\nexecutor = "sql-aggregate"\noptions = { dataset = "nope" }\n',
            "dataset: no dataset named 'nope'",
        ),
        (
            SQLITE_DATASET + '\n[[workflows]]\nid = "a"\nversion = "1"\nexecutor = "sql-aggregate"\n'
            'options = { dataset = "omop", rounding = 5 }\n',
            "\\[\\[workflows\\]\\] #1.options: unknown setting\\(s\\) 'rounding'",
        ),
        (
            SQLITE_DATASET
            + '\n[[workflows]]\nid = "a"\nversion = "1"\nexecutor = "sql-aggregate"\noptions = { dataset = "omop" }\n'
            '\n[[workflows]]\nid = "a"\nversion = "1"\nexecutor = "cwl"\n',
            "mapped twice",
        ),
        ('\n[[workflows]]\nid = "a"\nversion = "1"\nexecutor = "tes"\n', "needs a \\[tes\\] section"),
        ('\n[datasets.pg]\npostgresql_dsn = "db"\n', "expected a postgresql:// URL"),
        ('\n[datasets.both]\nsqlite_path = "a"\npostgresql_dsn = "postgresql://x/y"\n', "exactly one of"),
        (
            '\n[datasets.pg]\npostgresql_dsn = "postgresql://x/y"\nschema = "a; drop"\n',
            "schema: 'a; drop' is not valid",
        ),
        (
            '\n[datasets.pg]\npostgresql_dsn = "postgresql://x/y"\n[[workflows]]\nid = "a"\nversion = "1"\n'
            'executor = "cwl"\noptions = { dataset = "pg" }\n',
            "CWL workflows can only be given SQLite datasets",
        ),
        (
            '\n[tes]\nurl = "http://tes"\nstorage_dir = "s"\n[[workflows]]\nid = "a"\nversion = "1"\n'
            'executor = "tes"\noptions = { image = "i", command = ["run"], outputs = ["../escape"] }\n',
            "outputs: output path '../escape' has an unsafe component",
        ),
    ],
)
def test_invalid_configurations_name_the_offending_key(make_config, extra, message):
    with pytest.raises(ConfigError, match=message):
        make_config(extra)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("timeout_seconds = 0", "\\[limits\\] timeout_seconds: must be at least 1"),
        ('memory_bytes = "lots"', "\\[limits\\] memory_bytes: expected a byte count"),
        ("cpu_seconds = true", "\\[limits\\] cpu_seconds: expected an integer"),
    ],
)
def test_invalid_limits_are_reported_with_their_key(tmp_path: Path, line: str, message: str):
    key = line.split(" =")[0]
    limits = {
        "timeout_seconds": "10",
        "cpu_seconds": "10",
        "memory_bytes": "1073741824",
        "max_output_file_bytes": "100",
    }
    limits[key] = line.split("= ", 1)[1]
    body = "\n".join(f"{name} = {value}" for name, value in limits.items())
    path = tmp_path / "agent.toml"
    path.write_text(
        f'[tre]\nslug = "t"\nname = "T"\nurl = "https://t.example/"\n[agent]\nwork_dir = "w"\n[limits]\n{body}\n'
    )
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_file_and_missing_section_are_clear(tmp_path: Path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "absent.toml")
    path = tmp_path / "agent.toml"
    path.write_text('[tre]\nslug = "t"\nname = "T"\nurl = "https://t.example/"\n')
    with pytest.raises(ConfigError, match="agent: required setting is missing"):
        load_config(path)


def test_dsn_is_read_from_a_file_and_kept_out_of_repr(make_config, tmp_path: Path):
    (tmp_path / "omop.dsn").write_text("postgresql://reader:s3cret@db.internal/omop\n")
    config = make_config('\n[datasets.pg]\npostgresql_dsn_file = "omop.dsn"\n')

    assert config.datasets["pg"].postgresql_dsn == "postgresql://reader:s3cret@db.internal/omop"
    assert "s3cret" not in repr(config)


def test_tes_options_are_parsed(make_config):
    config = make_config(
        """
[tes]
url = "http://127.0.0.1:9"
storage_dir = "shared"

[[workflows]]
id = "wf-tes"
version = "1"
executor = "tes"
[workflows.options]
image = "example/report:1"
command = ["report", "--out", "/job/outputs/report.csv"]
outputs = ["report.csv"]
env = { MODE = "fast" }
ram_gb = 2
"""
    )

    assert config.tes is not None
    assert config.tes.storage_url == config.tes.storage_dir.as_uri()
    assert config.route("wf-tes", "1").options == TesOptions(
        image="example/report:1",
        command=("report", "--out", "/job/outputs/report.csv"),
        outputs=("report.csv",),
        env={"MODE": "fast"},
        ram_gb=2.0,
    )


def test_the_tres_own_rules_are_read_and_checked_for_every_job(make_config):
    from agent.client import LeasedJob
    from agent.runner import JobRefused, check_accepted

    config = make_config(
        '[accept]\nprojects = ["PRJ-1"]\nexecutors = ["cwl"]\nworkflow_sha256 = ["' + "a" * 64 + '"]\n'
        'container_digests = ["sha256:' + "b" * 64 + '"]\n'
        '[containers]\nruntime = "runc"\nulimits = ["nofile=20000:20000"]\n'
    )
    assert config.accept.projects == {"PRJ-1"} and config.accept.container_digests == {"sha256:" + "b" * 64}
    assert config.containers.runtime == "runc" and config.containers.ulimits == ("nofile=20000:20000",)

    def job(project="PRJ-1", sha256="a" * 64):
        return LeasedJob.from_json(
            {
                "id": 1,
                "status": "claimed",
                "project": project,
                "fencing_token": 1,
                "workflow": {"id": "w", "version": "1", "sha256": sha256, "executor": "cwl"},
                "crate_url": "x",
                "workflow_url": "x",
                "results_url": "x",
                "results_max_bytes": 1,
            }
        )

    check_accepted(config.accept, job(), "cwl")
    for leased, executor, reason in [
        (job(project="PRJ-2"), "cwl", "do not accept jobs of project 'PRJ-2'"),
        (job(), "tes", "do not accept workflows run by the tes executor"),
        (job(sha256="c" * 64), "cwl", f"do not accept the workflow crate with SHA-256 {'c' * 64}"),
    ]:
        with pytest.raises(JobRefused, match=reason):
            check_accepted(config.accept, leased, executor)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[accept]\nexecutors = ["docker"]\n', r"\[accept\] executors: docker is not an executor"),
        (
            '[accept]\ncontainer_digests = ["alpine:latest"]\n',
            r"container_digests: 'alpine:latest' is not valid",
        ),
        ('[accept]\nprojets = ["x"]\n', r"\[accept\]: unknown setting\(s\) 'projets'"),
        (
            '[containers]\nulimits = ["nofile"]\n',
            r"\[containers\] ulimits: 'nofile' is not NAME=SOFT\[:HARD\]",
        ),
    ],
)
def test_mistakes_in_the_tres_own_rules_are_named(make_config, extra, message):
    with pytest.raises(ConfigError, match=message):
        make_config(extra)

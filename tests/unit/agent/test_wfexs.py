"""The ``wfexs`` executor: staging files contract-tested against WfExS-backend's own JSON Schemas, and its
process handling against a stand-in for WfExS-backend's command line (wfexs_stub.py); WfExS-backend itself
is not installed here (see docs/executors/wfexs.md)."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest

from agent.config import ConfigError, load_config
from agent.executors import execute
from agent.executors.base import ExecutionStatus
from agent.executors.wfexs import WfExSOptions, local_config_document, read_stage_file, stage_document
from agent.jobs import Job, JobDirectory
from tests.unit.agent.conftest import REPO, TOML_BASE

WORKFLOW_ID = "https://portal.example.org/workflows/line-counts"
SCHEMAS = REPO / "tests" / "data" / "wfexs"
STUB = Path(__file__).with_name("wfexs_stub.py")
LINE_COUNTS = """cwlVersion: v1.2
class: Workflow
inputs:
  cohort: File
outputs:
  counts: {type: File, outputSource: count/counts}
steps:
  count:
    run: count.cwl
    in: {cohort: cohort}
    out: [counts]
"""
COUNT = """cwlVersion: v1.2
class: CommandLineTool
baseCommand: [wc, -l]
inputs:
  cohort: {type: File, inputBinding: {position: 1}}
stdout: line-counts.txt
outputs:
  counts: {type: stdout}
"""


def validator(name: str):
    schema = json.loads((SCHEMAS / name).read_text())
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


@pytest.fixture
def wfexs_command(tmp_path: Path) -> Path:
    """An executable ``WfExS-backend.py`` that runs the stand-in with this interpreter."""
    command = tmp_path / "bin" / "WfExS-backend.py"
    command.parent.mkdir()
    command.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STUB}" "$@"\n')
    command.chmod(0o755)
    return command


def wfexs_config(tmp_path: Path, executable: Path, *, timeout: int = 60, options: str = ""):
    path = tmp_path / "agent.toml"
    path.write_text(
        TOML_BASE.format(work_dir=tmp_path / "work", timeout=timeout)
        + f"""
[accept]
executors = ["wfexs"]

[[workflows]]
id = "{WORKFLOW_ID}"
version = "1"
executor = "wfexs"
[workflows.options]
executable = "{executable}"
cache_dir = "{tmp_path / "wfexs-cache"}"
{options}
"""
    )
    return load_config(path)


def wfexs_job(config, parameters=None, *, job_id="wf-1", main="line_counts.cwl") -> Job:
    directory = JobDirectory.create(config.work_dir, job_id)
    (directory.workflow / "line_counts.cwl").write_text(LINE_COUNTS)
    (directory.workflow / "count.cwl").write_text(COUNT)
    (directory.workflow / "ro-crate-metadata.json").write_text(
        json.dumps({"@graph": [{"@id": "./", "mainEntity": {"@id": main}}]})
    )
    (directory.inputs / "cohort.csv").write_text("id,age\n1,40\n2,51\n3,62\n")
    values = {"cohort": directory.inputs / "cohort.csv", "threshold": 10, "label": "persons"}
    values.update(parameters or {})
    return Job(job_id, WORKFLOW_ID, "1", directory, values)


# --------------------------------------------------------------------------- the staging file contract
def test_the_generated_staging_file_validates_against_wfexs_stage_definition_schema(tmp_path, wfexs_command):
    config = wfexs_config(tmp_path, wfexs_command)
    job = wfexs_job(config)
    options = config.route(WORKFLOW_ID, "1").options

    document = stage_document(job, options)

    assert validator("stage-definition.json").is_valid(document), list(
        e.message for e in validator("stage-definition.json").iter_errors(document)
    )
    assert document["workflow_id"] == (job.directory.workflow / "line_counts.cwl").resolve().as_uri()
    assert document["workflow_config"] == {"secure": False, "containerType": "podman"}
    assert document["params"] == {
        "cohort": {"c-l-a-s-s": "File", "url": (job.directory.inputs / "cohort.csv").resolve().as_uri()},
        "label": "persons",
        "threshold": 10,
    }
    local = local_config_document(job, options)
    assert validator("config.json").is_valid(local)
    assert local["workDir"].startswith(str(job.directory.root))


@pytest.mark.parametrize("container_type", ["podman", "singularity", "docker", "none"])
def test_every_container_type_gives_a_valid_staging_file(tmp_path, container_type):
    directory = JobDirectory.create(tmp_path, "j")
    (directory.workflow / "main.nf").write_text("workflow {}\n")
    (directory.workflow / "ro-crate-metadata.json").write_text(
        json.dumps({"@graph": [{"@id": "./", "mainEntity": {"@id": "main.nf"}}]})
    )
    options = WfExSOptions(tmp_path / "x", tmp_path / "cache", container_type, "nextflow")
    document = stage_document(Job("j", WORKFLOW_ID, "1", directory, {}), options)
    assert validator("stage-definition.json").is_valid(document)
    assert validator("config.json").is_valid(
        local_config_document(Job("j", WORKFLOW_ID, "1", directory, {}), options)
    )


def test_the_schema_copy_is_wfexs_own_and_rejects_what_wfexs_rejects():
    schema = json.loads((SCHEMAS / "stage-definition.json").read_text())
    assert schema["$id"] == "https://www.eosc-life.eu/d7/WfExS-backend/Stage-Definition"
    check = validator("stage-definition.json")
    assert not check.is_valid({"params": {}})  # workflow_id is required
    assert not check.is_valid({"workflow_id": "x", "workflow_config": {"containerType": "lxc"}})
    assert not check.is_valid({"workflow_id": "x", "params": {"c-l-a-s-s": "File"}})
    assert (SCHEMAS / "LICENSE").read_text().lstrip().startswith("Apache License")
    assert "Barcelona Supercomputing Center" in (SCHEMAS / "NOTICE").read_text()


# --------------------------------------------------------------------------- running it
def test_a_job_is_staged_executed_and_exported_and_its_outputs_collected(tmp_path, wfexs_command):
    config = wfexs_config(tmp_path, wfexs_command)
    job = wfexs_job(config)

    result = execute(job, config)

    assert result.status is ExecutionStatus.COMPLETED, result.reason
    assert [output.path for output in result.outputs] == ["line-counts.csv"]
    assert (job.directory.outputs / "line-counts.csv").read_text() == "input,lines\ncohort,4\n"
    assert (result.engine.name, result.engine.version) == ("WfExS-backend", "1.0.4+stub")
    calls = (job.directory.work / "wfexs" / "calls.log").read_text().splitlines()
    workdir_id = result.details["workdir_id"]
    local = str(job.directory.work / "wfexs" / "local_config.yaml")
    packed = json.loads((job.directory.work / "wfexs" / "packed.cwl").read_text())
    assert {process["class"] for process in packed["$graph"]} == {"Workflow", "CommandLineTool"}
    stage = read_stage_file(job.directory.work / "wfexs" / "job.wfex.stage")
    assert stage["workflow_id"] == (job.directory.work / "wfexs" / "packed.cwl").as_uri()
    assert calls == [
        f"-L {local} init",
        f"-L {local} stage -W {job.directory.work / 'wfexs' / 'job.wfex.stage'} --save-workdir-id "
        f"{job.directory.state / 'wfexs-workdir-id'}",
        f"-L {local} offline-execute -J {workdir_id}",
        f"-L {local} export-crate -J {workdir_id}",
    ]
    # WfExS's own run crate is provenance kept in the TRE, never an output
    assert result.provenance is not None and result.provenance.name == "execution.ro-crate.zip"
    assert read_stage_file(job.directory.work / "wfexs" / "job.wfex.stage")["nickname"] == "job-wf-1"


def test_a_failing_workflow_fails_the_job_with_a_reason_that_quotes_nothing_from_wfexs(
    tmp_path, wfexs_command
):
    config = wfexs_config(tmp_path, wfexs_command)
    result = execute(wfexs_job(config, {"stub_behaviour": "fail"}), config)

    assert result.status is ExecutionStatus.FAILED
    assert result.reason == "WfExS-backend offline-execute failed (exit status 3)"
    assert "row 17" not in result.reason and not result.outputs


def test_a_workflow_over_its_time_limit_is_stopped(tmp_path, wfexs_command):
    config = wfexs_config(tmp_path, wfexs_command, timeout=3)
    began = time.monotonic()
    result = execute(wfexs_job(config, {"stub_behaviour": "sleep"}), config)

    assert result.status is ExecutionStatus.FAILED
    assert result.reason == "timeout: wall-clock limit of 3 s reached"
    assert time.monotonic() - began < 20


def test_cancelling_stops_wfexs(tmp_path, wfexs_command):
    config = wfexs_config(tmp_path, wfexs_command)
    cancel = threading.Event()
    threading.Timer(1.5, cancel.set).start()
    result = execute(wfexs_job(config, {"stub_behaviour": "sleep"}), config, cancel=cancel)
    assert result.status is ExecutionStatus.CANCELLED


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ("symlink", "output refused: output 'leak.csv' is not a regular file"),
        ("many", "output refused: the workflow produced more than 200 output files"),
        ("no-outputs", "WfExS-backend finished but the workflow produced no outputs"),
    ],
)
def test_outputs_that_must_not_leave_fail_the_job(tmp_path, wfexs_command, behaviour, reason):
    config = wfexs_config(tmp_path, wfexs_command)
    job = wfexs_job(config, {"stub_behaviour": behaviour})
    result = execute(job, config)
    assert (result.status, result.reason) == (ExecutionStatus.FAILED, reason)
    assert list(job.directory.outputs.iterdir()) == []


def test_a_crate_whose_main_workflow_leaves_the_crate_is_refused_before_wfexs_runs(tmp_path, wfexs_command):
    config = wfexs_config(tmp_path, wfexs_command)
    job = wfexs_job(config, main="../../../../etc/passwd")
    result = execute(job, config)
    assert result.status is ExecutionStatus.FAILED
    assert result.reason == "refused: the workflow crate's main workflow is not a file inside the crate"
    assert not (job.directory.work / "wfexs" / "calls.log").exists()


def test_an_input_that_is_not_staged_for_the_job_is_refused(tmp_path, wfexs_command):
    config = wfexs_config(tmp_path, wfexs_command)
    job = wfexs_job(config, {"cohort": Path("/etc/hostname")})
    result = execute(job, config)
    assert result.reason == "refused: input 'cohort' is not a file staged for this job"


def test_a_missing_wfexs_installation_fails_the_job(tmp_path):
    config = wfexs_config(tmp_path, tmp_path / "nowhere" / "WfExS-backend.py")
    result = execute(wfexs_job(config), config)
    assert result.reason == "the TRE's WfExS-backend executable is missing or not executable"


def test_route_options_are_checked_when_the_configuration_loads(tmp_path, wfexs_command):
    with pytest.raises(
        ConfigError, match="container_type: expected one of podman, singularity, docker, none"
    ):
        wfexs_config(tmp_path, wfexs_command, options='container_type = "lxc"')
    with pytest.raises(ConfigError, match="workflow_type"):
        wfexs_config(tmp_path, wfexs_command, options='workflow_type = "snakemake"')


def test_without_a_run_crate_from_wfexs_the_outputs_still_stand_and_the_gap_is_recorded(
    tmp_path, wfexs_command
):
    config = wfexs_config(tmp_path, wfexs_command)
    result = execute(wfexs_job(config, {"stub_behaviour": "no-dot"}), config)
    assert result.status is ExecutionStatus.COMPLETED, result.reason
    assert [output.path for output in result.outputs] == ["line-counts.csv"]
    assert result.provenance is None
    assert result.details["provenance"] == "WfExS-backend export-crate failed (exit status 1)"


def test_a_cwl_workflow_that_cannot_be_packed_fails_before_wfexs_runs(tmp_path, wfexs_command):
    config = wfexs_config(tmp_path, wfexs_command)
    job = wfexs_job(config)
    (job.directory.workflow / "count.cwl").unlink()
    result = execute(job, config)
    assert result.status is ExecutionStatus.FAILED
    assert result.reason.startswith("could not pack the CWL workflow: cwltool --pack (exit status")
    assert not (job.directory.work / "wfexs" / "calls.log").exists()

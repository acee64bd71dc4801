"""The cwl executor with the real cwltool on the demo workflow and a small synthetic dataset."""

from __future__ import annotations

import csv
import hashlib
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from agent.demo_workflows import AGE_SEX_TABLE
from agent.executors import execute
from agent.executors.base import ExecutionStatus
from agent.executors.cwl import JobOrderError, job_order
from agent.jobs import Job
from agent.synthetic import FEMALE, MALE, SyntheticDataset
from tests.unit.agent.conftest import cwl_config, prepared_job
from tests.unit.agent.test_sandbox import running_sleeps


def expected_table(synthetic: SyntheticDataset, reference_year: int) -> Counter:
    bands = [f"{low}-{low + 9}" for low in range(0, 90, 10)] + ["90+"]
    counts: Counter = Counter()
    for _, gender, year_of_birth, *_ in synthetic.rows["person"]:
        band = bands[min(max(reference_year - year_of_birth, 0) // 10, len(bands) - 1)]
        counts[(band, {MALE: "male", FEMALE: "female"}.get(gender, "other"))] += 1
    return counts


def test_the_demo_workflow_counts_the_dataset_by_age_band_and_sex(completed_run, synthetic):
    job, result = completed_run

    assert result.status is ExecutionStatus.COMPLETED, result.reason
    assert result.engine.name == "cwltool"
    assert [output.path for output in result.outputs] == ["age_sex_table.csv"]
    with (job.directory.outputs / "age_sex_table.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 30  # ten bands x three sexes, zeros included
    table = Counter({(row["age_band"], row["sex"]): int(row["persons"]) for row in rows})
    assert +table == +expected_table(synthetic, 2024)  # reference_year "2024" was coerced to int


def test_outputs_are_described_by_size_and_checksum(completed_run):
    job, result = completed_run
    (output,) = result.outputs
    content = (job.directory.outputs / output.path).read_bytes()

    assert output.size == len(content)
    assert output.sha256 == hashlib.sha256(content).hexdigest()
    assert output.media_type == "text/csv"
    assert sorted(path.name for path in job.directory.outputs.iterdir()) == ["age_sex_table.csv"]


def test_provenance_and_logs_stay_in_the_job_directory(completed_run):
    job, result = completed_run

    assert result.provenance == job.directory.provenance / "cwlprov"
    assert (result.provenance / "workflow" / "packed.cwl").is_file()
    assert (job.directory.provenance / "run-crate" / "ro-crate-metadata.json").is_file()
    assert all(path.parent == job.directory.logs for path in result.logs)
    assert result.network is not None


def test_request_parameters_cannot_name_the_dataset_or_files_outside_inputs(tmp_path, synthetic_sqlite):
    config = cwl_config(tmp_path, synthetic_sqlite)
    job = prepared_job(config, "cwl-params", dataset=Path("/etc/passwd"))
    workflow = job.directory.workflow / "age_sex_table.cwl"

    with pytest.raises(JobOrderError, match="'dataset' is provided by the TRE"):
        job_order(workflow, job, dataset=synthetic_sqlite)
    outside = Job(job.id, job.workflow_id, "1", job.directory, {"reference_year": Path("/etc/passwd")})
    with pytest.raises(JobOrderError, match="not a file staged in the job's inputs directory"):
        job_order(workflow, outside)
    unknown = Job(job.id, job.workflow_id, "1", job.directory, {"colour": "blue"})
    with pytest.raises(JobOrderError, match="no input named 'colour'"):
        job_order(workflow, unknown)
    wrong_type = Job(job.id, job.workflow_id, "1", job.directory, {"reference_year": "last year"})
    with pytest.raises(JobOrderError, match="'last year' is not a valid int"):
        job_order(workflow, wrong_type)

    result = execute(job, config)  # refused before cwltool starts
    assert result.status is ExecutionStatus.FAILED
    assert (
        result.reason
        == "cannot prepare the workflow: input 'dataset' is provided by the TRE, not by the request"
    )
    assert result.outputs == ()


def test_a_docker_requirement_is_refused_where_the_tre_runs_no_containers(tmp_path, synthetic_sqlite):
    config = cwl_config(tmp_path, synthetic_sqlite, provenance=False)
    crate = tmp_path / "docker-crate"
    crate.mkdir()
    (crate / "ro-crate-metadata.json").write_text((AGE_SEX_TABLE / "ro-crate-metadata.json").read_text())
    (crate / "age_sex_table.cwl").write_text(
        "cwlVersion: v1.2\nclass: CommandLineTool\nrequirements:\n  DockerRequirement:\n    dockerPull: alpine\n"
        "baseCommand: [echo, hi]\ninputs:\n  dataset: File\noutputs: []\n"
    )
    job = prepared_job(config, "cwl-docker", workflow=crate)

    result = execute(job, config)

    assert result.status is ExecutionStatus.FAILED
    assert result.reason == "refused: the workflow runs in containers and this TRE runs no containers"


def test_cancelling_a_running_workflow_stops_it(tmp_path, synthetic_sqlite):
    config = cwl_config(tmp_path, synthetic_sqlite, provenance=False)
    crate = tmp_path / "slow-crate"
    crate.mkdir()
    (crate / "ro-crate-metadata.json").write_text((AGE_SEX_TABLE / "ro-crate-metadata.json").read_text())
    (crate / "age_sex_table.cwl").write_text(
        "cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: [sh, -c, 'touch started; sleep 3101']\n"
        "inputs:\n  dataset: File\noutputs: []\n"
    )
    job = prepared_job(config, "cwl-cancel", workflow=crate)
    cancel = threading.Event()

    def cancel_once_started() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(job.directory.tmp.rglob("started")):
            time.sleep(0.05)
        cancel.set()

    threading.Thread(target=cancel_once_started, daemon=True).start()
    result = execute(job, config, cancel=cancel)

    assert result.status is ExecutionStatus.CANCELLED
    assert result.reason == "cancelled"
    assert result.outputs == ()
    assert running_sleeps("3101") == []


def test_a_failing_tool_fails_the_job_without_outputs(tmp_path, synthetic_sqlite):
    config = cwl_config(tmp_path, synthetic_sqlite, provenance=False)
    crate = tmp_path / "failing-crate"
    crate.mkdir()
    (crate / "ro-crate-metadata.json").write_text((AGE_SEX_TABLE / "ro-crate-metadata.json").read_text())
    (crate / "age_sex_table.cwl").write_text(
        "cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: [sh, -c, 'echo partial > out.csv; exit 4']\n"
        "inputs:\n  dataset: File\noutputs:\n  out:\n    type: File\n    outputBinding: {glob: out.csv}\n"
    )
    job = prepared_job(config, "cwl-fail", workflow=crate)

    result = execute(job, config)

    assert result.status is ExecutionStatus.FAILED
    assert result.reason == "the workflow failed: cwltool exit status 1"
    assert list(job.directory.outputs.iterdir()) == []

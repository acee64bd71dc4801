"""The result crate: JSON-LD updates, the BagIt zip, the 5S oracle, and that nothing sensitive leaks."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bagit
import pytest

from agent.archive import safe_extract, sha256_file
from agent.config import TreIdentity
from agent.crate import entity_index, ids, requested_run, root_entity
from agent.executors.base import Engine, ExecutionResult, ExecutionStatus, write_output
from agent.results import ResultCrateError, WorkflowRetrieval, rfc3339, update_metadata, write_result_crate
from tests.unit.agent.conftest import AGENT_SECRET, DATABASE_PASSWORD, REQUEST_CRATE, run_oracle

TRE = TreIdentity(slug="tre-test", name="Test TRE", url="https://tre-test.example.org/")
EXTERNAL_ID = "urn:uuid:9796155a-fe44-4614-89b8-71945f718ffb"
START = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
RETRIEVAL = WorkflowRetrieval(START - timedelta(seconds=3), START - timedelta(seconds=1), "ab" * 32)
ENGINE = Engine("Five Safes TRE agent sql-aggregate", "0.1.0")


def request() -> dict:
    return json.loads(REQUEST_CRATE.read_text())


def completed_result(outputs_dir: Path) -> ExecutionResult:
    output = write_output(
        outputs_dir, "cohort_count.json", b'{"count": 120}\n', max_bytes=1000, description="Count"
    )
    return ExecutionResult(ExecutionStatus.COMPLETED, START, START + timedelta(seconds=2), ENGINE, (output,))


def failed_result() -> ExecutionResult:
    return ExecutionResult(
        ExecutionStatus.FAILED, START, START + timedelta(seconds=1), ENGINE, reason="timeout: limit"
    )


def test_the_requested_run_records_status_times_and_described_outputs(tmp_path):
    result = completed_result(tmp_path)

    metadata = update_metadata(request(), result, tre=TRE, retrieval=RETRIEVAL)

    index = entity_index(metadata)
    run = requested_run(metadata)
    assert run["actionStatus"] == "http://schema.org/CompletedActionStatus"
    assert (run["startTime"], run["endTime"]) == ("2025-03-01T09:00:00+00:00", "2025-03-01T09:00:02+00:00")
    assert run["result"] == [{"@id": "outputs/cohort_count.json"}]
    output = index["outputs/cohort_count.json"]
    assert output["@type"] == "File"
    assert output["contentSize"] == "15"
    assert output["sha256"] == result.outputs[0].sha256
    assert output["encodingFormat"] == "application/json"
    root = root_entity(metadata)
    assert "outputs/cohort_count.json" in ids(root["hasPart"])
    assert request() != metadata and requested_run(request())["actionStatus"].endswith(
        "PotentialActionStatus"
    )


def test_workflow_retrieval_and_engine_are_recorded_by_the_tres_agent(tmp_path):
    metadata = update_metadata(request(), completed_result(tmp_path), tre=TRE, retrieval=RETRIEVAL)

    index = entity_index(metadata)
    mentioned = [index[identifier] for identifier in ids(root_entity(metadata)["mentions"])]
    (download,) = [entity for entity in mentioned if entity["@type"] == "DownloadAction"]
    assert download["object"] == {"@id": "https://workflowhub.eu/workflows/289/ro_crate?version=1"}
    assert download["actionStatus"] == "http://schema.org/CompletedActionStatus"
    assert download["description"] == "sha256 " + "ab" * 32
    agent = index[download["agent"]["@id"]]
    assert agent["@type"] == "SoftwareApplication"
    assert agent["provider"] == {"@id": TRE.url}
    assert index[TRE.url]["@type"] == "Organization"
    (organize,) = [entity for entity in mentioned if entity["@type"] == "OrganizeAction"]
    assert organize["result"] == {"@id": requested_run(metadata)["@id"]}
    assert index[organize["instrument"]["@id"]]["name"] == ENGINE.name
    creates = [entity for entity in metadata["@graph"] if entity["@type"] == "CreateAction"]
    assert len(creates) == 1  # every CreateAction is checked as the requested run


def test_a_failed_run_has_a_reason_and_no_outputs():
    metadata = update_metadata(request(), failed_result(), tre=TRE)

    run = requested_run(metadata)
    assert run["actionStatus"] == "http://schema.org/FailedActionStatus"
    assert "result" not in run
    assert entity_index(metadata)[run["error"]["@id"]]["value"] == "timeout: limit"
    assert not any(identifier.startswith("outputs/") for identifier in entity_index(metadata))


def test_times_must_be_timezone_aware():
    assert rfc3339(datetime(2025, 1, 1, 12, 0, 0, 999, tzinfo=UTC)) == "2025-01-01T12:00:00+00:00"
    with pytest.raises(ValueError, match="timezone-aware"):
        rfc3339(datetime(2025, 1, 1))


def test_the_result_crate_is_a_single_bag_with_sha512_manifests(tmp_path):
    crate = write_result_crate(
        request(),
        completed_result(tmp_path / "outputs"),
        outputs_dir=tmp_path / "outputs",
        external_identifier=EXTERNAL_ID,
        tre=TRE,
        dest=tmp_path / "result.zip",
        retrieval=RETRIEVAL,
    )

    assert crate.sha256 == sha256_file(tmp_path / "result.zip")
    assert crate.size == (tmp_path / "result.zip").stat().st_size
    with zipfile.ZipFile(crate.path) as archive:
        names = sorted(name for name in archive.namelist() if not name.endswith("/"))
    top = "result-9796155a-fe44-4614-89b8-71945f718ffb"
    assert names == [
        f"{top}/{name}"
        for name in (
            "bag-info.txt",
            "bagit.txt",
            "data/outputs/cohort_count.json",
            "data/ro-crate-metadata.json",
            "manifest-sha512.txt",
            "tagmanifest-sha512.txt",
        )
    ]
    safe_extract(crate.path, tmp_path / "unpacked")
    # Five Safes crates declare BagIt 1.0 or later (bagit-python's own default is 0.97).
    assert (tmp_path / "unpacked" / top / "bagit.txt").read_text().startswith("BagIt-Version: 1.0\n")
    bag = bagit.Bag(str(tmp_path / "unpacked" / top))
    bag.validate()
    assert bag.algorithms == ["sha512"]
    assert bag.info["External-Identifier"] == EXTERNAL_ID


def test_outputs_changed_after_collection_are_refused(tmp_path):
    result = completed_result(tmp_path / "outputs")
    (tmp_path / "outputs" / "cohort_count.json").write_text('{"count": 7}\n')

    with pytest.raises(ResultCrateError, match="changed after it was collected"):
        write_result_crate(
            request(),
            result,
            outputs_dir=tmp_path / "outputs",
            external_identifier=EXTERNAL_ID,
            tre=TRE,
            dest=tmp_path / "result.zip",
        )
    assert not (tmp_path / "result.zip").exists()
    with pytest.raises(ResultCrateError, match="External-Identifier"):
        write_result_crate(
            request(),
            failed_result(),
            outputs_dir=tmp_path,
            external_identifier="a b",
            tre=TRE,
            dest=tmp_path / "result.zip",
        )


@pytest.fixture(scope="module")
def cwl_result_crate(completed_run, tmp_path_factory) -> Path:
    job, result = completed_run
    dest = tmp_path_factory.mktemp("crates") / "cwl-result.zip"
    write_result_crate(
        request(),
        result,
        outputs_dir=job.directory.outputs,
        external_identifier=EXTERNAL_ID,
        tre=TRE,
        dest=dest,
        retrieval=RETRIEVAL,
    )
    return dest


@pytest.mark.oracle
def test_result_crates_pass_the_five_safes_oracle_at_required(cwl_result_crate, tmp_path):
    sql = write_result_crate(
        request(),
        completed_result(tmp_path / "outputs"),
        outputs_dir=tmp_path / "outputs",
        external_identifier=EXTERNAL_ID,
        tre=TRE,
        dest=tmp_path / "sql.zip",
        retrieval=RETRIEVAL,
    )
    failed = write_result_crate(
        request(),
        failed_result(),
        outputs_dir=tmp_path,
        external_identifier=EXTERNAL_ID,
        tre=TRE,
        dest=tmp_path / "failed.zip",
    )

    report = run_oracle(cwl_result_crate, sql.path, failed.path)

    verdicts = {
        Path(crate["path"]).name: (crate["verdict"], crate.get("issues"), crate.get("error"))
        for crate in report["crates"]
    }
    assert verdicts == {name: ("PASS", [], None) for name in ("cwl-result.zip", "sql.zip", "failed.zip")}
    assert report["exit_code"] == 0


def test_nothing_but_metadata_and_declared_outputs_leaves_the_tre(
    cwl_result_crate, completed_run, synthetic_sqlite, tmp_path
):
    job, result = completed_run
    safe_extract(cwl_result_crate, tmp_path / "unpacked")
    (bag,) = (tmp_path / "unpacked").iterdir()
    files = sorted(path for path in bag.rglob("*") if path.is_file())

    assert [str(path.relative_to(bag / "data")) for path in files if path.is_relative_to(bag / "data")] == [
        "outputs/age_sex_table.csv",
        "ro-crate-metadata.json",
    ]
    dataset = synthetic_sqlite.read_bytes()
    forbidden = [
        AGENT_SECRET,
        DATABASE_PASSWORD,
        str(synthetic_sqlite),
        str(job.directory.root),
        "cwlprov",
        "primary-job",
        "packed.cwl",
        "SQLite format 3",
    ]
    for path in files:
        content = path.read_bytes()
        assert dataset[:4096] not in content, path
        for text in forbidden:
            assert text.encode() not in content, (path, text)
    # The job directory does hold provenance and logs; they stay there.
    assert (job.directory.provenance / "cwlprov").is_dir()
    assert result.logs


def test_the_secret_never_reached_the_workflow(completed_run):
    job, _ = completed_run
    for path in job.directory.root.rglob("*"):
        if path.is_file():
            assert AGENT_SECRET.encode() not in path.read_bytes(), path

"""Synthetic datasets, archives, the demo workflow crate and staging a request's inputs."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from agent.archive import ArchiveError, safe_extract, sha256_file, write_zip
from agent.crate import CrateError, requested_run, stage_parameters
from agent.demo_workflows import AGE_SEX_TABLE, pack_workflow_crate
from agent.jobs import JobDirectory
from agent.synthetic import TABLES, generate, write_sqlite
from tests.unit.agent.conftest import REPO, REQUEST_CRATE


# --------------------------------------------------------------------------- synthetic data
def test_the_same_seed_gives_the_same_dataset_and_another_seed_does_not():
    first, again, other = generate(200, 1), generate(200, 1), generate(200, 2)

    assert first.rows == again.rows
    assert first.rows["person"] != other.rows["person"]
    assert len(first.rows["person"]) == 200
    assert generate(500, 1).rows["person"][:1] != []


def test_the_synthetic_dataset_is_plausible(synthetic):
    persons = {row[0]: row for row in synthetic.rows["person"]}
    assert {row[1] for row in persons.values()} == {8507, 8532}
    for table in ("condition_occurrence", "drug_exposure", "measurement", "observation"):
        assert synthetic.rows[table], table
        assert all(row[1] in persons for row in synthetic.rows[table])
    metformin_users = {row[1] for row in synthetic.rows["drug_exposure"] if row[2] == 1503297}
    diabetics = {row[1] for row in synthetic.rows["condition_occurrence"] if row[2] == 201826}
    assert metformin_users and metformin_users <= diabetics  # drugs follow their indications


def test_the_command_line_writes_a_sqlite_dataset(tmp_path):
    out = tmp_path / "tre.sqlite"
    completed = subprocess.run(
        [sys.executable, "-m", "agent.synthetic", "--out", str(out), "--persons", "50", "--seed", "3"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )

    assert completed.stdout.startswith(f"wrote {out}: concept 25, person 50")
    with sqlite3.connect(out) as connection:
        tables = {
            name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        (persons,) = connection.execute("SELECT COUNT(*) FROM person").fetchone()
    connection.close()
    assert tables == set(TABLES)
    assert persons == 50
    again = subprocess.run(
        [sys.executable, "-m", "agent.synthetic", "--out", str(out), "--persons", "50", "--seed", "3"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert again.returncode == 2
    assert "already exists" in again.stderr


def test_write_sqlite_refuses_to_overwrite(tmp_path):
    write_sqlite(generate(5, 1), tmp_path / "a.sqlite")
    with pytest.raises(FileExistsError):
        write_sqlite(generate(5, 1), tmp_path / "a.sqlite")


# --------------------------------------------------------------------------- archives
def test_write_zip_is_reproducible_and_refuses_links(tmp_path):
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "b.txt").write_text("b")
    (source / "a.txt").write_text("a")

    first = write_zip(source, tmp_path / "one.zip", root="top")
    second = write_zip(source, tmp_path / "two.zip", root="top")

    assert first == second == sha256_file(tmp_path / "one.zip")
    with zipfile.ZipFile(tmp_path / "one.zip") as archive:
        assert archive.namelist() == ["top/", "top/a.txt", "top/sub/", "top/sub/b.txt"]
    (source / "link").symlink_to("/etc/passwd")
    with pytest.raises(ArchiveError, match="only regular files"):
        write_zip(source, tmp_path / "three.zip")
    assert not (tmp_path / "three.zip").exists()


def zip_with(path: Path, name: str, content: bytes = b"x", *, mode: int | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        archive.writestr(info, content)
    return path


@pytest.mark.parametrize(
    ("name", "mode", "message"),
    [
        ("../escape.txt", None, "unsafe entry path"),
        ("/etc/cron.d/x", None, "unsafe entry path"),
        ("a/./b", None, "unsafe entry path"),
        ("dir\\file", None, "unsafe entry name"),
        ("link", stat.S_IFLNK | 0o777, "symbolic link entry"),
    ],
)
def test_safe_extract_refuses_unsafe_members(tmp_path, name, mode, message):
    archive = zip_with(tmp_path / "bad.zip", name, mode=mode)

    with pytest.raises(ArchiveError, match=message):
        safe_extract(archive, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_safe_extract_enforces_size_limits(tmp_path):
    archive = zip_with(tmp_path / "big.zip", "big.bin", b"\0" * 100_000)

    with pytest.raises(ArchiveError, match="more than 1000 bytes"):
        safe_extract(archive, tmp_path / "out", max_bytes=1000)
    with pytest.raises(ArchiveError, match="not a readable ZIP"):
        safe_extract(tmp_path / "out" / "missing.zip", tmp_path / "out2")


# --------------------------------------------------------------------------- the demo workflow crate
def test_the_demo_crate_packs_reproducibly_and_names_its_main_workflow(tmp_path):
    packed = pack_workflow_crate(AGE_SEX_TABLE, tmp_path / "a.zip")
    completed = subprocess.run(
        [sys.executable, "-m", "agent.demo_workflows", "pack", "--out", str(tmp_path / "b.zip")],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )

    assert completed.stdout == f"{packed.sha256}  {tmp_path / 'b.zip'}\n"
    assert packed.main_entity == "age_sex_table.cwl"
    with zipfile.ZipFile(packed.path) as archive:
        assert sorted(archive.namelist()) == [
            "age_sex_table.cwl",
            "count_by_age_sex.cwl",
            "count_by_age_sex.py",
            "ro-crate-metadata.json",
        ]
        metadata = json.loads(archive.read("ro-crate-metadata.json"))
    descriptor = next(entity for entity in metadata["@graph"] if entity["@id"] == "ro-crate-metadata.json")
    assert {"@id": "https://w3id.org/workflowhub/workflow-ro-crate/1.0"} in descriptor["conformsTo"]


def test_packing_refuses_a_folder_without_a_main_entity(tmp_path):
    with pytest.raises(ValueError, match="not a Workflow RO-Crate"):
        pack_workflow_crate(tmp_path, tmp_path / "x.zip")


# --------------------------------------------------------------------------- staging the request's inputs
def test_inputs_of_the_requested_run_become_job_parameters(tmp_path):
    metadata = json.loads(REQUEST_CRATE.read_text())
    payload = tmp_path / "payload"
    payload.mkdir()
    (payload / "input1.txt").write_text("ACGT")
    directory = JobDirectory.create(tmp_path / "work", "job-7")

    parameters = stage_parameters(metadata, payload, directory.inputs)

    assert parameters == {"input-sequence": directory.inputs / "input1.txt", "fast-mode": "True"}
    assert (directory.inputs / "input1.txt").read_text() == "ACGT"
    assert requested_run(metadata)["@id"] == "#query-37252371-c937-43bd-a0a7-3680b48c0538"


def test_inputs_must_be_files_inside_the_payload(tmp_path):
    metadata = json.loads(REQUEST_CRATE.read_text())
    directory = JobDirectory.create(tmp_path / "work", "job-8")
    with pytest.raises(CrateError, match="'input1.txt' is not in the crate's payload"):
        stage_parameters(metadata, tmp_path, directory.inputs)
    escaping = json.loads(REQUEST_CRATE.read_text().replace('"input1.txt"', '"../secrets.txt"'))
    with pytest.raises(CrateError, match="is not a path inside the crate"):
        stage_parameters(escaping, tmp_path, directory.inputs)
    no_run = json.loads(REQUEST_CRATE.read_text().replace('"CreateAction"', '"Action"'))
    with pytest.raises(CrateError, match="expected one requested run"):
        requested_run(no_run)


def test_job_ids_must_be_safe_directory_names(tmp_path):
    with pytest.raises(ValueError, match="not usable as a directory name"):
        JobDirectory.create(tmp_path, "../outside")

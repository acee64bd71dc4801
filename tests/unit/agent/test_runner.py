"""The runner's building blocks: logs, local state, checking crates, BagIt 1.0 results, clean-up."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import psutil
import pytest

from agent.archive import safe_extract
from agent.client import WorkflowInfo
from agent.jobs import JobDirectory
from agent.runner import (
    JobRefused,
    JsonFormatter,
    LocalState,
    check_workflow_named,
    declare_bagit_1_0,
    load_state,
    reap_leftovers,
    save_state,
    verify_request_crate,
)
from crates.fivesafes import writeback
from crates.fivesafes.bag import verify_bag
from tests import cratekit
from tests.unit.agent.conftest import REPO

WORKFLOW = "https://workflowhub.eu/workflows/289"
IDENTIFIER = "urn:uuid:3f0c2a9e-1d4b-4c8e-9a7f-5b6d2e1c0a99"


def signed_off(metadata: dict, *, approved: bool = True) -> dict:
    writeback.add_signoff_action(
        metadata,
        officer=writeback.Person(id="https://orcid.org/0000-0002-1825-0097", name="Olivia Officer"),
        agreement=writeback.Agreement(id="https://portal.example.org/agreements/1", name="DAA-1"),
        approved=approved,
    )
    return metadata


def crate(tmp_path: Path, metadata: dict, name: str = "crate.zip") -> Path:
    path = cratekit.make_crate_zip(tmp_path / name, metadata, cratekit.input_files())
    with zipfile.ZipFile(path) as archive:
        info = next(n for n in archive.namelist() if n.endswith("bag-info.txt"))
        text = archive.read(info).decode()
    return path, next(
        line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("External-Identifier")
    )


def test_logs_are_one_json_object_per_line_with_their_fields():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("agent.test-json")
    logger.addHandler(handler)
    try:
        logger.warning("lease lost", extra={"event": "job.lease_lost", "job": 7})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed", extra={"event": "x"})
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{"))
    assert {k: first[k] for k in ("level", "logger", "message", "event", "job")} == {
        "level": "warning",
        "logger": "agent.test-json",
        "message": "lease lost",
        "event": "job.lease_lost",
        "job": 7,
    }
    assert first["time"].endswith("+00:00")
    assert "ValueError: boom" in second["exception"]


def test_local_state_survives_a_restart(tmp_path):
    directory = JobDirectory.create(tmp_path, "12")
    assert load_state(directory) is None
    state = save_state(directory, LocalState(12, 3, "uploading", idempotency_key="k", results_sha256="ab"))
    assert load_state(directory) == state
    (directory.state / "lease.json").write_text("{not json")
    assert load_state(directory) is None


def test_a_signed_off_crate_passes_and_its_metadata_is_returned(tmp_path):
    path, identifier = crate(tmp_path, signed_off(cratekit.fixture_metadata()))
    bag_dir, metadata = verify_request_crate(path, tmp_path / "out", external_identifier=identifier)
    assert (bag_dir / "data" / "input1.txt").is_file()
    assert metadata["@graph"][0]["@id"] == "ro-crate-metadata.json"


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("unsigned", "no approving sign-off"),
        ("rejected", "no approving sign-off"),
        ("other crate", "but the portal dispatched"),
        ("no profile", "does not declare the Five Safes RO-Crate profile"),
        ("tampered", "fails its BagIt checks"),
        ("not a zip", "not a safe ZIP archive"),
    ],
)
def test_a_crate_that_is_not_what_was_approved_is_refused(tmp_path, problem, message):
    metadata = cratekit.fixture_metadata()
    if problem != "unsigned":
        signed_off(metadata, approved=problem != "rejected")
    if problem == "no profile":
        root = next(e for e in metadata["@graph"] if e["@id"] == "./")
        del root["conformsTo"]
    path, identifier = crate(tmp_path, metadata)
    if problem == "other crate":
        identifier = IDENTIFIER
    if problem == "tampered":
        with zipfile.ZipFile(path) as archive:
            entries = {name: archive.read(name) for name in archive.namelist()}
        payload = next(n for n in entries if n.endswith("data/input1.txt"))
        entries[payload] = b"changed after it was approved\n"
        with zipfile.ZipFile(path, "w") as archive:
            for name, content in entries.items():
                archive.writestr(name, content)
    if problem == "not a zip":
        path.write_bytes(b"not a zip")
    with pytest.raises(JobRefused, match=message):
        verify_request_crate(path, tmp_path / "out", external_identifier=identifier)


def test_the_crate_must_name_the_dispatched_workflow_and_version():
    metadata = cratekit.fixture_metadata()
    named = WorkflowInfo(WORKFLOW, "1", "MD", "0" * 64, "cwl", "cwl")
    check_workflow_named(metadata, named)
    with pytest.raises(JobRefused, match="names workflow"):
        check_workflow_named(metadata, WorkflowInfo("https://other.example.org/wf", "1", "", "", "", ""))
    with pytest.raises(JobRefused, match="version 1 of the workflow"):
        check_workflow_named(metadata, WorkflowInfo(WORKFLOW, "2", "", "", "", ""))


def test_results_crates_are_declared_bagit_1_0_and_the_portal_accepts_them(tmp_path):
    import bagit

    bag = tmp_path / "work" / "result-x"
    (bag).mkdir(parents=True)
    (bag / "ro-crate-metadata.json").write_text("{}")
    bagit.make_bag(str(bag), {"External-Identifier": IDENTIFIER}, checksums=["sha512"])
    from agent.archive import write_zip

    zip_path = tmp_path / "results.zip"
    write_zip(tmp_path / "work", zip_path)
    sha256 = declare_bagit_1_0(zip_path)

    assert sha256 == declare_bagit_1_0(zip_path)  # a 1.0 bag is left as it is
    safe_extract(zip_path, tmp_path / "check")
    info = verify_bag(tmp_path / "check" / "result-x")
    assert (info.bagit_version, info.external_identifier) == ((1, 0), IDENTIFIER)


def test_processes_left_in_a_job_directory_are_killed(tmp_path):
    directory = JobDirectory.create(tmp_path, "5")
    outside = subprocess.Popen(["sleep", "3211"], cwd=tmp_path)
    inside = subprocess.Popen(["sleep", "3213"], cwd=directory.work)
    try:
        assert reap_leftovers(directory.root) == 1
        inside.wait(timeout=5)
        assert not psutil.pid_exists(inside.pid)
        assert outside.poll() is None
    finally:
        outside.kill()
        outside.wait()


def test_the_agent_imports_nothing_of_the_portal():
    code = (
        "import sys, agent.__main__, agent.demo, agent.runner, agent.client; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'django', 'rest_framework', 'crates', 'portal', 'reviews'}))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
    )
    assert completed.stdout.strip() == "[]"


def test_the_agent_refuses_to_start_without_its_token(tmp_path):
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[tre]\nslug = "tre-a"\nname = "TRE A"\nurl = "https://tre-a.example.org/"\n'
        f'[agent]\nwork_dir = "{tmp_path}"\n'
        '[limits]\ntimeout_seconds = 10\ncpu_seconds = 10\nmemory_bytes = "1 GiB"\nmax_output_file_bytes = 1000\n'
    )
    started = time.monotonic()
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent",
            "--portal",
            "http://127.0.0.1:9",
            "--token-file",
            str(tmp_path / "missing.token"),
            "--config",
            str(config),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 2
    entry = json.loads(completed.stderr.strip().splitlines()[-1])
    assert entry["event"] == "agent.misconfigured"
    assert "cannot read the token file" in entry["detail"]
    assert time.monotonic() - started < 30


def test_the_demo_launcher_needs_what_seed_demo_writes(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "agent.demo", "--portal", "http://127.0.0.1:9", "--dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 2
    entry = json.loads(completed.stderr.strip().splitlines()[-1])
    assert (entry["event"], entry["dir"]) == ("demo.no_agents", str(tmp_path))


def test_a_sandboxed_workflow_left_by_a_killed_agent_is_reaped(tmp_path):
    directory = JobDirectory.create(tmp_path, "9")
    script = (
        "from pathlib import Path\n"
        "from agent.sandbox import ResourceLimits, minimal_environment, run_sandboxed\n"
        f"d = Path({str(directory.root)!r})\n"
        "run_sandboxed(['sleep', '3393'], cwd=d / 'work',\n"
        "    env=minimal_environment(path='/usr/bin:/bin', home=d / 'home', tmpdir=d / 'tmp'),\n"
        "    limits=ResourceLimits(timeout_seconds=600, cpu_seconds=600, memory_bytes=1 << 30,\n"
        "                          max_file_bytes=1 << 20),\n"
        "    stdout=d / 'logs' / 'out', stderr=d / 'logs' / 'err')\n"
    )

    def sleeps():
        return [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "3393"]]

    agent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    deadline = time.monotonic() + 30
    while not sleeps() and time.monotonic() < deadline:
        time.sleep(0.05)
    agent.kill()
    agent.wait()
    assert sleeps(), "the workflow outlives the agent that started it"

    assert reap_leftovers(directory.root) >= 1
    psutil.wait_procs(sleeps(), timeout=5)
    assert not sleeps()


def test_an_agent_without_a_tes_route_starts_without_py_tes(tmp_path):
    """py-tes (and psycopg) are blocked from import: only a route naming their executor needs them."""
    config = tmp_path / "agent.toml"
    base = (
        f'[tre]\nslug = "tre-a"\nname = "TRE A"\nurl = "https://tre-a.example.org/"\n'
        f'[agent]\nwork_dir = "{tmp_path}"\n'
        '[limits]\ntimeout_seconds = 10\ncpu_seconds = 10\nmemory_bytes = "1 GiB"\nmax_output_file_bytes = 1000\n'
        '[[workflows]]\nid = "https://w.example/a"\nversion = "1"\nexecutor = "cwl"\n'
    )
    config.write_text(base)
    code = (
        "import sys; sys.modules['tes'] = None; sys.modules['psycopg'] = None\n"
        "import agent.__main__, agent.runner\n"
        "from agent.client import PortalClient\n"
        "from agent.config import ConfigError, load_config\n"
        f"config = load_config({str(config)!r})\n"
        "agent.runner.Runner(config, PortalClient('http://127.0.0.1:9', 'fsa_x'))\n"
        "print(sorted(config.workflows), 'tes' in sys.modules and sys.modules['tes'] is not None)\n"
        f'open({str(config)!r}, \'a\').write(\'[[workflows]]\\nid = "https://w.example/b"\\nversion = "1"\\n'
        'executor = "tes"\\n[workflows.options]\\nimage = "x"\\ncommand = ["x"]\\n\')\n'
        "try:\n    load_config(" + repr(str(config)) + ")\nexcept ConfigError as exc:\n    print(exc)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    first, second = completed.stdout.strip().splitlines()
    assert first == "[('https://w.example/a', '1')] False"
    assert second.endswith("the tes executor needs a Python package this agent lacks (tes)")

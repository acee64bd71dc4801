"""A real agent process against a live portal over HTTP: run, fail, cancel, crash, restart.

The agent is `python -m agent` in a subprocess, exactly as a TRE runs it; the portal is pytest-django's
live server. Leases are a few seconds long so that expiry and heartbeats happen within a test.
"""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from agent.demo_workflows import AGE_SEX_TABLE, COHORT_QUERY, pack_workflow_crate
from agent.synthetic import generate, write_sqlite
from crates import dispatch, dispatch_tasks
from crates.demo_agents import AGE_SEX, COHORT_COUNT, _cohort_count_crate
from crates.models import Job, ResultUpload
from portal.audit import AuditEvent
from tests import cratekit, factories
from tests.builders import approve_all_steps, submit
from tests.dispatch_helpers import approve_workflow, attach_workflow_crate, issue
from tests.live import Portal

pytestmark = [pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[3]
S = Job.Status
SLOW_ID = "https://workflows.example.org/sleep-then-write"
UNMAPPED_ID = "https://workflows.example.org/not-mapped-at-this-tre"
SLOW_CWL = """cwlVersion: v1.2
class: CommandLineTool
baseCommand: [sh, -c]
arguments: ["touch started && sleep $(inputs.seconds) && echo finished > slow.txt"]
inputs:
  dataset: File
  seconds:
    type: string
    default: "2.93"
outputs:
  slow:
    type: File
    outputBinding: {glob: slow.txt}
"""


class AgentProcess:
    def __init__(self, portal, token_file, config, log_path):
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "agent",
                    "--portal",
                    portal.url,
                    "--token-file",
                    str(token_file),
                    "--config",
                    str(config),
                    "--claim-wait",
                    "0.5",
                ],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def events(self):
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]

    def stop(self, signum=signal.SIGTERM, timeout=60):
        self.process.send_signal(signum)
        return self.process.wait(timeout=timeout)

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=10)


@dataclass
class Site:
    """TRE A's agent (token and configuration) and the approved workflows it knows."""

    portal: Portal
    tmp: Path
    token_file: Path
    config: Path
    workflows: dict
    log: Path

    @property
    def jobs_dir(self):
        return self.tmp / "work" / "jobs"

    def start_agent(self):
        return AgentProcess(self.portal, self.token_file, self.config, self.log)

    def wait_for(self, predicate, what, timeout=90):
        return self.portal.wait_for(predicate, what, timeout=timeout, log=self.log)


def _workflow(workflow_id, name, executor, crate_dir, tre, officer, tmp):
    workflow = factories.WorkflowFactory(
        workflow_id=workflow_id, name=name, version="1", executor=executor, language="cwl"
    )
    attach_workflow_crate(workflow, pack_workflow_crate(crate_dir, tmp / f"{workflow.pk}.zip").path)
    approve_workflow(workflow, tre, officer)
    return workflow


@pytest.fixture
def site(portal, registry, tre_a, olivia, tmp_path):
    slow_crate = tmp_path / "slow-crate"
    slow_crate.mkdir()
    (slow_crate / "ro-crate-metadata.json").write_text((AGE_SEX_TABLE / "ro-crate-metadata.json").read_text())
    (slow_crate / "age_sex_table.cwl").write_text(SLOW_CWL)
    cohort_crate = _cohort_count_crate(_mkdir(tmp_path / "cohort-crate"))
    with portal.db():
        workflows = {
            "age-sex": _workflow(
                AGE_SEX.workflow_id, "Age-sex", "cwl", AGE_SEX_TABLE, tre_a, olivia, tmp_path
            ),
            "cohort": _workflow(
                COHORT_COUNT.workflow_id, "Cohort", "sql-aggregate", cohort_crate, tre_a, olivia, tmp_path
            ),
            "slow": _workflow(SLOW_ID, "Slow", "cwl", slow_crate, tre_a, olivia, tmp_path),
            "unmapped": _workflow(UNMAPPED_ID, "Unmapped", "cwl", slow_crate, tre_a, olivia, tmp_path),
        }
        _, token = issue(tre_a, olivia)
    token_file = tmp_path / "agent.token"
    token_file.write_text(token + "\n")
    dataset = write_sqlite(generate(300, 7), tmp_path / "omop.sqlite")
    config = tmp_path / "agent.toml"
    config.write_text(
        f"""
[tre]
slug = "tre-a"
name = "TRE A"
url = "https://tre-a.example.org/"

[agent]
work_dir = "{tmp_path / "work"}"

[limits]
timeout_seconds = 120
cpu_seconds = 120
memory_bytes = "2 GiB"
max_output_file_bytes = "10 MiB"

[sandbox]
cancel_grace_seconds = 2

[datasets.omop]
sqlite_path = "{dataset}"

[[workflows]]
id = "{AGE_SEX.workflow_id}"
version = "1"
executor = "cwl"
[workflows.options]
dataset = "omop"
provenance = false

[[workflows]]
id = "{COHORT_COUNT.workflow_id}"
version = "1"
executor = "sql-aggregate"
[workflows.options]
dataset = "omop"

[[workflows]]
id = "{SLOW_ID}"
version = "1"
executor = "cwl"
[workflows.options]
dataset = "omop"
provenance = false
"""
    )
    return Site(portal, tmp_path, token_file, config, workflows, tmp_path / "agent.log")


def _mkdir(path):
    path.mkdir()
    return path


def queue(site, registry, alice, olivia, workflow_id, capture, **inputs):
    """Submit a request for `workflow_id` with `inputs` as its parameters, and sign it off."""
    metadata = cratekit.request_metadata(
        orcid="0000-0002-1825-0097",
        project_identifier=registry["project"].identifier,
        workflow_id=workflow_id,
    )
    graph = metadata["@graph"]
    run = next(e for e in graph if e.get("@type") == "CreateAction")
    run["object"] = []
    for name, value in inputs.items():
        graph.append({"@id": f"#param-{name}", "@type": "FormalParameter", "name": name})
        graph.append(
            {
                "@id": f"#input-{name}",
                "@type": "PropertyValue",
                "name": name,
                "value": value,
                "exampleOfWork": {"@id": f"#param-{name}"},
            }
        )
        run["object"].append({"@id": f"#input-{name}"})
    crate = cratekit.make_crate_zip(
        site.tmp / f"request-{len(list(site.tmp.glob('request-*')))}.zip", metadata, cratekit.input_files()
    )
    with site.portal.db():
        request = submit(
            researcher=alice,
            project=registry["project"],
            tres=[registry["workflow"].approvals.get().tre],
            crate_zip=crate,
            capture=capture,
            title=f"Run {workflow_id.rsplit('/', 1)[-1]}",
        )
        job = approve_all_steps(request.jobs.get(), olivia)
    assert job.status == S.QUEUED
    return job


def status_of(job):
    return Job.objects.values_list("status", flat=True).get(pk=job.pk)


def returned(job):
    """The job's results were accepted (the disclosure checks may have started on them since)."""
    return status_of(job) in (S.OUTPUTS_RETURNED, S.OUTPUT_REVIEW)


def started_marker(site, job):
    return any((site.jobs_dir / str(job.pk) / "tmp").rglob("started"))


def sleeping(seconds):
    return [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", seconds]]


def test_an_agent_runs_approved_jobs_over_http_and_refuses_an_unmapped_workflow(
    site, registry, alice, olivia, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    table = queue(site, registry, alice, olivia, AGE_SEX.workflow_id, capture, reference_year="2024")
    count = queue(
        site, registry, alice, olivia, COHORT_COUNT.workflow_id, capture, query=COHORT_QUERY.read_text()
    )
    unmapped = queue(site, registry, alice, olivia, UNMAPPED_ID, capture)
    agent = site.start_agent()
    try:
        site.wait_for(
            lambda: returned(table) and returned(count) and status_of(unmapped) == S.FAILED,
            "the agent to finish all three jobs",
            timeout=120,
        )
    finally:
        exit_code = agent.stop()
    assert exit_code == 0

    with site.portal.db():
        assert (returned(table), returned(count), status_of(unmapped)) == (True, True, S.FAILED)
        results = {u.job_id: u for u in ResultUpload.objects.filter(status="verified")}
        unmapped.refresh_from_db()
        assert "is not approved for execution at TRE 'tre-a'" in unmapped.lease.message
        table_upload = results[table.pk]
        with table_upload.file.open("rb") as handle, zipfile.ZipFile(handle) as archive:
            csv_name = next(n for n in archive.namelist() if n.endswith("data/outputs/age_sex_table.csv"))
            rows = archive.read(csv_name).decode().splitlines()
        assert rows[0] == "age_band,sex,persons" and len(rows) == 31
        assert sum(int(row.rsplit(",", 1)[1]) for row in rows[1:]) == 300
        graph = table_upload.metadata["@graph"]
        (download,) = [e for e in graph if e.get("@type") == "DownloadAction"]
        assert download["object"]["@id"] == f"{site.portal.url}/api/v1/agent/jobs/{table.pk}/workflow/"
        assert download["actionStatus"] == "http://schema.org/CompletedActionStatus"
        run = next(e for e in graph if e.get("@type") == "CreateAction")
        assert run["actionStatus"] == "http://schema.org/CompletedActionStatus"
        assert any(e["@id"] == "outputs/cohort_count.json" for e in results[count.pk].metadata["@graph"])
        assert AuditEvent.objects.filter(verb="job.execution_reported").count() == 2

    log_text = site.log.read_text()
    assert site.token_file.read_text().strip() not in log_text
    events = [e.get("event") for e in agent.events()]
    assert events[0] == "agent.started" and events[-1] == "agent.stopped"
    assert events.count("job.claimed") == 3
    assert events.count("job.completed") == 2 and events.count("job.failed") == 1


def test_a_killed_agent_leads_to_a_requeue_and_exactly_one_completion(
    site, registry, alice, olivia, django_capture_on_commit_callbacks
):
    job = queue(site, registry, alice, olivia, SLOW_ID, django_capture_on_commit_callbacks, seconds="2.93")
    first = site.start_agent()
    try:
        site.wait_for(lambda: status_of(job) == S.RUNNING and started_marker(site, job), "the run")
    finally:
        first.kill()
    assert sleeping("2.93"), "the killed agent's workflow outlives it"
    time.sleep(dispatch.lease_seconds() + 0.5)
    with site.portal.db():
        assert dispatch_tasks.expire_leases() == {"requeued": [job.pk], "failed": []}

    second = site.start_agent()
    try:
        site.wait_for(lambda: returned(job), "the second run to finish")
        site.wait_for(lambda: AuditEvent.objects.filter(verb="job.execution_reported").exists(), "completion")
    finally:
        assert second.stop() == 0
    with site.portal.db():
        upload = ResultUpload.objects.get()
        assert (upload.status, upload.fencing_token) == ("verified", 2)
        verbs = list(
            AuditEvent.objects.filter(object_id=str(job.pk), object_type="crates.job").values_list(
                "verb", flat=True
            )
        )
    assert verbs.count("job.claimed") == 2
    assert verbs.count("job.requeued") == 1
    assert verbs.count("job.outputs_returned") == 1
    assert "job.dropped" in [e.get("event") for e in second.events()]


def test_a_stopped_agent_resumes_its_job_after_a_restart(
    site, registry, alice, olivia, django_capture_on_commit_callbacks
):
    job = queue(site, registry, alice, olivia, SLOW_ID, django_capture_on_commit_callbacks, seconds="2.07")
    agent = site.start_agent()
    site.wait_for(lambda: status_of(job) == S.RUNNING and started_marker(site, job), "the run")
    assert agent.stop() == 0
    assert "job.interrupted" in [e.get("event") for e in agent.events()]

    restarted = site.start_agent()
    try:
        site.wait_for(lambda: returned(job), "the resumed run")
    finally:
        assert restarted.stop() == 0
    with site.portal.db():
        job.refresh_from_db()
        assert (job.lease.fencing_token, job.lease.attempts) == (1, 1)
        assert not AuditEvent.objects.filter(verb="job.requeued").exists()
    events = [e.get("event") for e in restarted.events()]
    assert "job.resumed" in events


def test_cancelling_a_running_job_stops_the_workflow(
    site, registry, alice, olivia, django_capture_on_commit_callbacks
):
    job = queue(site, registry, alice, olivia, SLOW_ID, django_capture_on_commit_callbacks, seconds="3607")
    agent = site.start_agent()
    try:
        site.wait_for(lambda: status_of(job) == S.RUNNING and started_marker(site, job), "the run")
        with site.portal.db():
            dispatch.request_cancel(job, by=alice, reason="Wrong cohort")
        site.wait_for(lambda: status_of(job) == S.CANCELLED, "the agent to acknowledge")
        assert not sleeping("3607")
    finally:
        assert agent.stop() == 0
    with site.portal.db():
        assert AuditEvent.objects.get(verb="job.cancelled").actor_kind == "agent"
        assert not ResultUpload.objects.exists()
    assert os.path.isdir(site.jobs_dir / str(job.pk) / "logs")

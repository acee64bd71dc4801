"""Containerised CWL through the whole federation: a real agent process, podman, the TRE's own rules.

The portal approves the workflow at TRE A with its container image's digest (Safe Settings); the agent's
agent.toml accepts the same digest and only the registry's project. One job runs in a container, is
checked and released, and its published crate carries the run's provenance and passes the community
Five Safes profile at RECOMMENDED; a job of a project the TRE's agent does not accept is refused there.
"""

import json
import zipfile
from pathlib import Path

import pytest

from agent.container_image import ensure_image
from agent.demo_workflows import pack_workflow_crate
from agent.synthetic import generate, write_sqlite
from crates.models import Job
from portal import services as portal_services
from reviews import outputs
from tests import factories
from tests.dispatch_helpers import attach_workflow_crate, issue
from tests.integration.crates.test_dispatch_live import Site, queue, returned, status_of

pytestmark = [pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[3]
S = Job.Status
WORKFLOW_ID = "https://workflows.example.org/sex-counts-container"
IMAGE = "localhost/five-safes/sqlite-counts:1"


def container_site(portal, tre_a, olivia, tmp_path, *, projects):
    image = ensure_image(IMAGE, ["sh", "cat", "sqlite3"])
    digest = image["digests"][0]
    with portal.db():
        workflow = factories.WorkflowFactory(
            workflow_id=WORKFLOW_ID, name="Sex counts", version="1", executor="cwl", language="cwl"
        )
        crate = pack_workflow_crate(REPO / "workflows" / "sex-counts-container", tmp_path / "wf.zip")
        attach_workflow_crate(workflow, crate.path)
        approval = portal_services.request_workflow_approval(workflow, tre_a, by=olivia)
        portal_services.decide_workflow(approval, "approved", by=olivia, settings={"containers": [digest]})
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
memory_bytes = "1 GiB"
max_output_file_bytes = "10 MiB"

[sandbox]
cancel_grace_seconds = 2

[accept]
projects = {json.dumps(projects)}
executors = ["cwl"]
container_digests = ["{digest}"]

[containers]
runtime = "runc"
ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[datasets.omop]
sqlite_path = "{dataset}"

[[workflows]]
id = "{WORKFLOW_ID}"
version = "1"
executor = "cwl"
[workflows.options]
dataset = "omop"
"""
    )
    return Site(portal, tmp_path, token_file, config, {"sex-counts": workflow}, tmp_path / "agent.log")


@pytest.mark.oracle
def test_a_containerised_job_runs_and_its_released_crate_shows_its_provenance(
    portal, registry, tre_a, alice, olivia, cam, chris, tmp_path, django_capture_on_commit_callbacks
):
    from tests import oracle

    site = container_site(portal, tre_a, olivia, tmp_path, projects=[registry["project"].identifier])
    job = queue(
        site, registry, alice, olivia, WORKFLOW_ID, django_capture_on_commit_callbacks, born_from="1900"
    )
    agent = site.start_agent()
    try:
        site.wait_for(lambda: returned(job), "the agent to return the containerised job", timeout=180)
    finally:
        assert agent.stop() == 0

    with portal.db():
        job.refresh_from_db()
        if job.status == S.OUTPUTS_RETURNED:
            outputs.check_outputs(job.result_uploads.get().pk)
            job.refresh_from_db()
        for output in job.outputs.all():
            outputs.vote(output, "approve", by=cam)
            outputs.vote(output, "approve", by=chris)
            outputs.release(output, by=cam)
        job.refresh_from_db()
        assert job.status == S.RELEASED
        published = tmp_path / "published.zip"
        with job.publication.stored.open("rb") as source:
            published.write_bytes(source.read())
    with zipfile.ZipFile(published) as archive:
        names = archive.namelist()
        rows = archive.read(next(n for n in names if n.endswith("outputs/sex_counts.csv"))).decode()
        provenance = json.loads(
            archive.read(next(n for n in names if n.endswith("provenance/ro-crate-metadata.json")))
        )
    assert rows.splitlines()[0] == "sex,persons"
    assert sum(int(line.split(",")[1]) for line in rows.splitlines()[1:]) == 300
    root = next(entity for entity in provenance["@graph"] if entity["@id"] == "./")
    assert {"@id": "https://w3id.org/ro/wfrun/provenance/0.5"} in root["conformsTo"]
    assert oracle.judge([published], severity="recommended") == {str(published): []}


def test_a_job_outside_the_tres_own_rules_is_refused_by_its_agent(
    portal, registry, tre_a, alice, olivia, tmp_path, django_capture_on_commit_callbacks
):
    site = container_site(portal, tre_a, olivia, tmp_path, projects=["PRJ-ANOTHER"])
    job = queue(site, registry, alice, olivia, WORKFLOW_ID, django_capture_on_commit_callbacks)
    agent = site.start_agent()
    try:
        site.wait_for(lambda: status_of(job) == S.FAILED, "the agent to refuse the job", timeout=120)
    finally:
        assert agent.stop() == 0

    with portal.db():
        job.refresh_from_db()
        assert job.lease.message == (
            f"this TRE's own rules do not accept jobs of project {registry['project'].identifier!r}"
        )
    assert not any((site.jobs_dir / str(job.pk)).rglob("request.zip"))  # refused before fetching anything

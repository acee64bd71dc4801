"""DataSHIELD end to end: a TRE approves a profile and functions, a real agent runs a request on Opal.

The portal is pytest-django's live server (as in test_dispatch_live); the agent is `python -m agent` in a
subprocess with an agent.toml whose `[datashield]` table points at the Opal-shaped stand-in of the
agent's unit tests. The TRE's approval (profile and functions) reaches the agent only in the claim.
"""

import io
import json
import re
import statistics
import zipfile

import pytest

from agent.demo_workflows import pack_workflow_crate
from crates.models import Job, ResultUpload
from portal import services as portal_services
from portal.audit import AuditEvent
from reviews import evidence
from reviews import services as review_services
from reviews.models import CHECK_STEPS, Step, StepDecision
from tests import cratekit, factories
from tests.builders import submit, walk
from tests.dispatch_helpers import attach_workflow_crate, issue
from tests.integration.crates.test_dispatch_live import AgentProcess
from tests.unit.agent.opal_server import FUNCTIONS, OpalServer

pytestmark = [pytest.mark.django_db(transaction=True)]

S = Job.Status
WORKFLOW_ID = "https://workflows.example.org/datashield-summary"
OPAL_TOKEN = "opal-pat-3f9a61c2e8"
APPROVED = {"profile": "default", "functions": ["meanDS", "lengthDS"]}
AGES = [23, 35, 41, None, 52, 67, 29, None, 44, 38, 71, 30]
TABLES = {"CNSIM.CNSIM1": {"AGE": AGES, "SEX": ["F", "M"] * 6}}
# Opal's profile offers more than the TRE approved, tableDS included: the portal's list is the ceiling.
OPAL_PROFILES = {"default": sorted({*FUNCTIONS, "tableDS"})}

WORKFLOW_SCRIPT = """# DataSHIELD summary: what the agent runs on the TRE's Opal, written as a DSI client would.
# The request gives `profile`, `assignments` (symbol -> project.table) and `calls` (aggregate calls).
# datashield.assign.table(conns, symbol = "D", table = "CNSIM.CNSIM1")
# datashield.aggregate(conns, quote(meanDS(D$AGE)))
"""


def workflow_crate(directory):
    """A Workflow RO-Crate whose main entity is the DataSHIELD call, with its three parameters."""
    directory.mkdir()
    (directory / "datashield_summary.R").write_text(WORKFLOW_SCRIPT)
    parameters = [
        ("profile", "Text", "The Opal DataSHIELD profile the TRE approved"),
        ("assignments", "Text", "JSON object: symbol -> Opal table (project.table)"),
        ("calls", "Text", "JSON list of DataSHIELD aggregate calls"),
    ]
    metadata = {
        "@context": "https://w3id.org/ro/crate/1.1/context",
        "@graph": [
            {
                "@id": "ro-crate-metadata.json",
                "@type": "CreativeWork",
                "about": {"@id": "./"},
                "conformsTo": [
                    {"@id": "https://w3id.org/ro/crate/1.1"},
                    {"@id": "https://w3id.org/workflowhub/workflow-ro-crate/1.0"},
                ],
            },
            {
                "@id": "./",
                "@type": "Dataset",
                "name": "DataSHIELD summary",
                "description": "Runs approved DataSHIELD aggregate calls on the TRE's Opal server.",
                "license": {"@id": "https://spdx.org/licenses/Apache-2.0"},
                "datePublished": "2025-01-01T00:00:00+00:00",
                "mainEntity": {"@id": "datashield_summary.R"},
                "hasPart": [{"@id": "datashield_summary.R"}],
            },
            {
                "@id": "datashield_summary.R",
                "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow"],
                "name": "DataSHIELD summary",
                "programmingLanguage": {"@id": "#r"},
                "input": [{"@id": f"#param-{name}"} for name, _, _ in parameters],
                "output": [],
            },
            {
                "@id": "#r",
                "@type": "ComputerLanguage",
                "name": "R",
                "url": {"@id": "https://www.r-project.org/"},
            },
            *(
                {
                    "@id": f"#param-{name}",
                    "@type": "FormalParameter",
                    "conformsTo": {"@id": "https://bioschemas.org/profiles/FormalParameter/1.0-RELEASE"},
                    "name": name,
                    "additionalType": kind,
                    "description": description,
                }
                for name, kind, description in parameters
            ),
            {
                "@id": "https://spdx.org/licenses/Apache-2.0",
                "@type": "CreativeWork",
                "name": "Apache License 2.0",
            },
        ],
    }
    (directory / "ro-crate-metadata.json").write_text(json.dumps(metadata, indent=1))
    return directory


@pytest.fixture
def opal():
    with OpalServer(token=OPAL_TOKEN, tables=TABLES, profiles=OPAL_PROFILES) as server:
        yield server


@pytest.fixture
def site(portal, registry, tre_a, olivia, opal, tmp_path):
    """TRE A's DataSHIELD workflow, approved with a profile and functions; its agent's token and config."""
    with portal.db():
        workflow = factories.WorkflowFactory(
            workflow_id=WORKFLOW_ID,
            name="DataSHIELD summary",
            version="1",
            executor="datashield",
            language="r",
        )
        packed = pack_workflow_crate(workflow_crate(tmp_path / "workflow-crate"), tmp_path / "workflow.zip")
        attach_workflow_crate(workflow, packed.path)
        approval = portal_services.request_workflow_approval(workflow, tre_a, by=olivia)
        portal_services.decide_workflow(approval, "approved", by=olivia, settings=APPROVED)
        _, token = issue(tre_a, olivia)
    token_file = tmp_path / "agent.token"
    token_file.write_text(token + "\n")
    opal_token = tmp_path / "opal.token"
    opal_token.write_text(OPAL_TOKEN + "\n")
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
timeout_seconds = 60
cpu_seconds = 60
memory_bytes = "2 GiB"
max_output_file_bytes = "10 MiB"

[datashield]
url = "{opal.url}"
token_file = "{opal_token}"
verify_tls = false
poll_seconds = 0.05
request_timeout_seconds = 10

[[workflows]]
id = "{WORKFLOW_ID}"
version = "1"
executor = "datashield"
[workflows.options]
tables = ["CNSIM.CNSIM1"]
"""
    )
    return {
        "portal": portal,
        "tmp": tmp_path,
        "token_file": token_file,
        "config": config,
        "log": tmp_path / "agent.log",
    }


def queue_analysis(site, registry, alice, olivia, capture, calls):
    """alice requests `calls` on the approved profile; olivia reviews and signs off. Returns the job and
    the Safe Settings evidence as olivia saw it before signing off."""
    tmp = site["tmp"]
    metadata = cratekit.request_metadata(
        orcid="0000-0002-1825-0097",
        project_identifier=registry["project"].identifier,
        workflow_id=WORKFLOW_ID,
    )
    graph = metadata["@graph"]
    run = next(e for e in graph if e.get("@type") == "CreateAction")
    run["object"] = []
    inputs = {
        "profile": "default",
        "assignments": json.dumps({"D": "CNSIM.CNSIM1"}),
        "calls": json.dumps(calls),
    }
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
        tmp / f"request-{len(list(tmp.glob('request-*')))}.zip", metadata, cratekit.input_files()
    )
    with site["portal"].db():
        request = submit(
            researcher=alice,
            project=registry["project"],
            tres=[registry["project"].approvals.get().tre],
            crate_zip=crate,
            capture=capture,
            title="DataSHIELD summary of CNSIM1",
        )
        job = walk(request.jobs.get(), S.IN_REVIEW, officer=olivia, researcher=alice)
        assert job.workflow is not None and job.workflow.workflow_id == WORKFLOW_ID
        shown = evidence.evidence_for(job, Step.SAFE_SETTINGS)
        for step in CHECK_STEPS:
            review_services.decide_step(job, step, "approve", "Checked by hand.", by=olivia)
        review_services.decide_step(job, Step.SIGN_OFF, "approve", "All five safes met.", by=olivia)
        job.refresh_from_db()
        frozen = StepDecision.objects.get(job=job, step=Step.SAFE_SETTINGS).evidence
    assert job.status == S.QUEUED
    return job, shown, frozen


def start_agent(site):
    return AgentProcess(site["portal"], site["token_file"], site["config"], site["log"])


def wait_for(site, predicate, what):
    return site["portal"].wait_for(predicate, what, timeout=90, log=site["log"])


def status_of(job):
    return Job.objects.values_list("status", flat=True).get(pk=job.pk)


def job_history(job):
    """The job's audit trail, to explain an unexpected state."""
    return list(
        AuditEvent.objects.filter(object_type="crates.job", object_id=str(job.pk)).values_list(
            "verb", "message"
        )
    )


def finished(job):
    """The agent's final report on the job reached the portal."""
    return Job.objects.filter(pk=job.pk, lease__finished_at__isnull=False).exists()


def aggregate_scripts(opal):
    return [r.body.decode() for r in opal.requests if r.method == "POST" and r.path.endswith("/aggregate")]


def test_an_agent_runs_the_approved_datashield_calls_and_returns_one_output_per_call(
    site, opal, registry, alice, olivia, django_capture_on_commit_callbacks
):
    job, shown, frozen = queue_analysis(
        site,
        registry,
        alice,
        olivia,
        django_capture_on_commit_callbacks,
        ["meanDS(D$AGE)", "lengthDS( 'D$AGE' )"],
    )
    expected = "At TRE A: DataSHIELD profile default; approved functions: lengthDS, meanDS."
    for findings in (shown, frozen):
        (service,) = [f for f in findings if f["check"] == "service"]
        assert (service["ok"], service["message"]) == (True, expected)

    agent = start_agent(site)
    try:
        wait_for(site, lambda: finished(job), "the agent's last report on the job")
    finally:
        exit_code = agent.stop()
    assert exit_code == 0
    with site["portal"].db():
        # The results were accepted and the automatic output checks ran before the agent's last report.
        assert status_of(job) == S.OUTPUT_REVIEW, job_history(job)

    # Opal saw one session with the table assigned, the two requested (and approved) calls, then its deletion.
    scripts = aggregate_scripts(opal)
    assert scripts == ["meanDS(D$AGE)", "lengthDS('D$AGE')"]
    assert {re.match(r"\w+", script).group() for script in scripts} <= set(APPROVED["functions"])
    opened = [r for r in opal.requests if r.method == "POST" and r.path == "/ws/datashield/sessions"]
    assert len(opened) == 1 and opened[0].query["profile"] == ["default"]
    assert len(opal.deleted_sessions) == 1 and not opal.sessions
    (session_id,) = opal.deleted_sessions
    assigned = [(r.method, r.path) for r in opal.requests if "/symbol/" in r.path]
    assert assigned == [("PUT", f"/ws/datashield/session/{session_id}/symbol/D/table/CNSIM.CNSIM1")]
    assert any(
        r.method == "DELETE" and r.path == f"/ws/datashield/session/{session_id}" for r in opal.requests
    )
    assert all(r.headers.get("x-opal-auth") == OPAL_TOKEN for r in opal.requests)

    with site["portal"].db():
        job.refresh_from_db()
        assert job.lease.message == "4 output file(s) returned in the results crate."
        upload = ResultUpload.objects.get(job=job, status="verified")
        outputs = {output.path: output for output in job.outputs.all()}
        assert sorted(outputs) == [
            "outputs/call-01-meanDS.json",
            "outputs/call-02-lengthDS.json",
            "outputs/summary.csv",
            "outputs/summary.json",
        ]
        contents = {}
        for path, output in outputs.items():
            with output.stored.open("rb") as handle:
                contents[path] = handle.read()
        with upload.file.open("rb") as handle:
            crate_bytes = handle.read()
        engines = [e for e in upload.metadata["@graph"] if e.get("name") == "OBiBa Opal DataSHIELD"]
        assert AuditEvent.objects.filter(
            verb="outputs.checked", object_type="crates.job", object_id=str(job.pk)
        ).exists()

    valid = [age for age in AGES if age is not None]
    mean = json.loads(contents["outputs/call-01-meanDS.json"])
    assert (mean["call"], mean["status"]) == ("meanDS(D$AGE)", "completed")
    assert mean["result"]["EstimatedMean"] == pytest.approx(statistics.mean(valid))
    assert (mean["result"]["Nvalid"], mean["result"]["Ntotal"]) == (len(valid), len(AGES))
    length = json.loads(contents["outputs/call-02-lengthDS.json"])
    assert (length["call"], length["status"], length["result"]) == (
        "lengthDS('D$AGE')",
        "completed",
        len(AGES),
    )
    summary = json.loads(contents["outputs/summary.json"])
    assert summary["profile"] == "default" and summary["opal_version"] == opal.version
    assert summary["assignments"] == {"D": "CNSIM.CNSIM1"}
    assert [row["status"] for row in summary["calls"]] == ["completed", "completed"]
    assert [e.get("softwareVersion") for e in engines] == [opal.version]

    # The Opal token stays with the agent and Opal: not in the agent's log, not in the returned crate.
    with zipfile.ZipFile(io.BytesIO(crate_bytes)) as archive:
        returned = b"".join(archive.read(name) for name in archive.namelist())
    assert OPAL_TOKEN.encode() not in returned
    assert OPAL_TOKEN not in site["log"].read_text()
    events = [e.get("event") for e in agent.events()]
    assert events.count("job.claimed") == 1 and events.count("job.completed") == 1


def test_a_call_to_a_function_the_tre_did_not_approve_fails_the_job_before_opal_is_called(
    site, opal, registry, alice, olivia, django_capture_on_commit_callbacks
):
    job, _, _ = queue_analysis(
        site,
        registry,
        alice,
        olivia,
        django_capture_on_commit_callbacks,
        ["meanDS(D$AGE)", "tableDS(rvar.transmit='D$SEX', cvar.transmit=NULL)"],
    )
    agent = start_agent(site)
    try:
        wait_for(site, lambda: finished(job), "the agent's last report on the job")
    finally:
        assert agent.stop() == 0
    with site["portal"].db():
        assert status_of(job) == S.FAILED, job_history(job)

    # Refused on the portal's list alone: Opal's profile has tableDS, yet nothing at all reached Opal.
    assert "tableDS" in opal.profiles["default"]
    assert aggregate_scripts(opal) == []
    assert opal.requests == [] and opal.deleted_sessions == [] and not opal.sessions
    reason = "refused: call 2: function 'tableDS' is not among the DataSHIELD functions the TRE approved"
    with site["portal"].db():
        job.refresh_from_db()
        assert job.lease.message == reason
        failed = AuditEvent.objects.get(verb="job.failed", object_type="crates.job", object_id=str(job.pk))
        assert failed.message == reason and failed.actor_kind == "agent"
        assert not ResultUpload.objects.filter(job=job).exists()
        assert not job.outputs.exists()
    events = agent.events()
    assert [e.get("detail") for e in events if e.get("event") == "job.failed"] == [reason]

"""Demo TRE agents: one per demo TRE, each with its own synthetic dataset and the demo workflows.

`seed_demo_agents(by, out_dir)` (run by `manage.py seed_demo`) writes, for each demo TRE:

    out_dir/<slug>.token    the agent's token, readable by its owner only
    out_dir/<slug>.sqlite   a synthetic person-level OMOP-like dataset, of a different size per TRE
    out_dir/<slug>.toml     the agent's configuration (work directory out_dir/<slug>-work/)

and registers the two demo workflows, packed into out_dir/workflows/, as approved at every demo TRE:
the CWL "persons by age band and sex" table and the built-in cohort count. Where podman works, it also
builds the small image of `workflows/sex-counts-container/` into the local store and approves that
containerised CWL workflow, with the image's digest, at one TRE (CONTAINER_TRE), whose agent accepts
the same digest (`[accept]`, `[containers]`). `python -m agent.demo`
starts one agent per TOML file. Running it again changes nothing that is already in place: a token
file that still matches its agent is kept, datasets are not regenerated, workflows not re-registered.
"""

import json
import os
import subprocess  # only to catch the image builder's errors
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from agent.demo_workflows import AGE_SEX_TABLE, COHORT_QUERY, pack_workflow_crate
from agent.synthetic import generate, write_sqlite
from crates import dispatch
from crates.models import Agent
from crates.permissions import can_manage_agents
from portal import demo, permissions, services
from portal.forms import WorkflowForm
from portal.models import TRE, ApprovedWorkflow, Decision, WorkflowApproval

AGENT_NAME = "demo-agent"
# Persons and random seed of each demo TRE's synthetic dataset.
DATASETS = {"cymru-sdb": (2400, 1101), "nfhdn": (4000, 2202), "taybridge": (1200, 3303)}
DEFAULT_DATASET = (1000, 4404)


@dataclass(frozen=True)
class DemoWorkflow:
    key: str
    name: str
    workflow_id: str
    version: str
    language: str
    executor: str
    description: str
    #: How the disclosure checks read the workflow's tables (ApprovedWorkflow.output_schemas).
    output_schemas: dict = field(default_factory=dict)
    # Declared inputs as JSON; empty: read from the CWL workflow when it is registered.
    inputs: str = ""


AGE_SEX = DemoWorkflow(
    key="age-sex-table",
    name="Persons by age band and sex",
    workflow_id="https://portal.example.org/workflows/age-sex-table",
    version="1",
    language=ApprovedWorkflow.Language.CWL,
    executor=ApprovedWorkflow.Executor.CWL,
    description="A CWL workflow counting the persons of the TRE's OMOP-like dataset by ten-year age band "
    "and sex; returns one CSV table. Input: reference_year (optional).",
    output_schemas={"age_sex_table.csv": {"labels": ["age_band", "sex"], "counts": ["persons"]}},
)
COHORT_COUNT = DemoWorkflow(
    key="cohort-count",
    name="Cohort count",
    workflow_id="https://portal.example.org/workflows/cohort-count",
    version="1",
    language=ApprovedWorkflow.Language.SQL,
    executor=ApprovedWorkflow.Executor.SQL_AGGREGATE,
    description="The agent's built-in safe count: a structured cohort query (input 'query', JSON) becomes "
    "one count of distinct persons, suppressed below the TRE's threshold and rounded.",
    inputs=json.dumps(
        [
            {
                "name": "query",
                "type": "string",
                "required": True,
                "description": "The cohort query, as JSON (an RQuest 'cohort' object).",
            }
        ]
    ),
)
WORKFLOWS = (AGE_SEX, COHORT_COUNT)
SEX_COUNTS = DemoWorkflow(
    key="sex-counts-container",
    name="Persons by sex (in a container)",
    workflow_id="https://portal.example.org/workflows/sex-counts-container",
    version="1",
    language=ApprovedWorkflow.Language.CWL,
    executor=ApprovedWorkflow.Executor.CWL,
    description="A CWL workflow whose one step runs sqlite3 in a container image approved by digest, "
    "with no network; counts the persons of the TRE's dataset by sex. Input: born_from (optional).",
)
SEX_COUNTS_CRATE = Path(settings.BASE_DIR) / "workflows" / "sex-counts-container"
CONTAINER_TRE = "cymru-sdb"
CONTAINER_IMAGE = "localhost/five-safes/sqlite-counts:1"


def seed_demo_agents(by, out_dir):
    """Create or refresh the demo agents, datasets, configurations and workflows; return the agents."""
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    tres = list(TRE.objects.filter(slug__in=[spec["slug"] for spec in demo.TRES]).order_by("slug"))
    packed = {workflow.key: _pack(workflow, out_dir / "workflows") for workflow in WORKFLOWS}
    registered = [_register(workflow, packed[workflow.key], tres, by=by) for workflow in WORKFLOWS]
    container = _container_demo(out_dir, [tre for tre in tres if tre.slug == CONTAINER_TRE], by=by)
    agents = []
    for tre in tres:
        agents.append(_agent(tre, out_dir / f"{tre.slug}.token", by=by))
        dataset = out_dir / f"{tre.slug}.sqlite"
        if not dataset.exists():
            persons, seed = DATASETS.get(tre.slug, DEFAULT_DATASET)
            write_sqlite(generate(persons, seed), dataset)
        toml = _agent_toml(tre, out_dir, registered)
        if container is not None and tre.slug == CONTAINER_TRE:
            toml += _container_toml(*container)
        (out_dir / f"{tre.slug}.toml").write_text(toml)
    return agents


def _container_demo(out_dir, tres, *, by):
    """(workflow, image digest) of the containerised demo workflow, approved at `tres`; None without podman."""
    from agent.container_image import ensure_image

    if not tres:
        return None
    try:
        image = ensure_image(CONTAINER_IMAGE, ["sh", "cat", "sqlite3"])
    except (OSError, subprocess.SubprocessError):
        return None  # no podman (or no sqlite3) here: the demo runs without a containerised workflow
    digest = image["digests"][0]
    directory = out_dir / "workflows"
    directory.mkdir(parents=True, exist_ok=True)
    packed = pack_workflow_crate(SEX_COUNTS_CRATE, directory / f"{SEX_COUNTS.key}.zip")
    record = _register(SEX_COUNTS, packed, tres, by=by, approved_settings={"containers": [digest]})
    return record, digest


def _container_toml(workflow, digest):
    return f"""
[accept]
container_digests = [{_toml(digest)}]

[containers]
runtime = "runc"
ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[[workflows]]
id = {_toml(workflow.workflow_id)}
version = {_toml(workflow.version)}
executor = "cwl"
[workflows.options]
dataset = "omop"
provenance = true
"""


def _pack(workflow, directory):
    directory.mkdir(parents=True, exist_ok=True)
    dest = directory / f"{workflow.key}.zip"
    if workflow is AGE_SEX:
        return pack_workflow_crate(AGE_SEX_TABLE, dest)
    with tempfile.TemporaryDirectory() as scratch:
        return pack_workflow_crate(_cohort_count_crate(Path(scratch)), dest)


def _cohort_count_crate(folder):
    """The Workflow RO-Crate of the built-in cohort count: it documents what the agent's own code does."""
    main = "cohort_count.json"
    (folder / main).write_text(
        json.dumps(
            {
                "executor": "sql-aggregate",
                "input": {"query": "a cohort query (RQuest 'cohort' object), as a JSON file or string"},
                "outputs": ["cohort_count.json", "cohort_count.csv"],
                "disclosure_control": "counts below the TRE's threshold are reported as 0, then rounded",
                "example_query": json.loads(COHORT_QUERY.read_text()),
            },
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )
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
                "name": COHORT_COUNT.name,
                "description": COHORT_COUNT.description,
                "license": {"@id": "https://spdx.org/licenses/Apache-2.0"},
                "datePublished": "2025-01-01T00:00:00+00:00",
                "version": COHORT_COUNT.version,
                "mainEntity": {"@id": main},
                "hasPart": [{"@id": main}],
            },
            {
                "@id": main,
                "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow"],
                "name": COHORT_COUNT.name,
                "programmingLanguage": {"@id": "#sql-aggregate"},
                "input": [{"@id": "#param-query"}],
            },
            {"@id": "#sql-aggregate", "@type": "ComputerLanguage", "name": "Five Safes safe aggregate query"},
            {"@id": "#param-query", "@type": "FormalParameter", "name": "query", "additionalType": "File"},
        ],
    }
    (folder / "ro-crate-metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    return folder


def _officer_of(tre, by):
    if permissions.can_govern_tre(by, tre):
        return by
    officers = permissions.officers_of(tre)
    if not officers:
        raise ValueError(f"{tre} has no governance officer to approve the demo workflows.")
    return officers[0]


@transaction.atomic
def _register(workflow, packed, tres, *, by, approved_settings=None):
    record = ApprovedWorkflow.objects.filter(
        workflow_id=workflow.workflow_id, version=workflow.version
    ).first()
    if record is None:
        form = WorkflowForm(
            {
                "name": workflow.name,
                "workflow_id": workflow.workflow_id,
                "version": workflow.version,
                "sha256": packed.sha256,
                "language": workflow.language,
                "executor": workflow.executor,
                "description": workflow.description,
                "output_schemas": json.dumps(workflow.output_schemas),
                "declared_inputs": workflow.inputs,
            },
            {
                "crate": SimpleUploadedFile(
                    packed.path.name, packed.path.read_bytes(), content_type="application/zip"
                )
            },
        )
        if not form.is_valid():
            raise ValueError(f"Demo workflow {workflow.name} is invalid: {form.errors.as_text()}")
        record = services.save_record(form, by=by, verb_prefix="workflow")
    for tre in tres:
        approval = WorkflowApproval.objects.filter(workflow=record, tre=tre).first()
        if approval is not None and approval.status == Decision.APPROVED:
            continue
        officer = _officer_of(tre, by)
        approval = approval or services.request_workflow_approval(record, tre, by=officer)
        services.decide_workflow(
            approval, Decision.APPROVED, "Demo workflow.", by=officer, settings=approved_settings
        )
    return record


def _agent(tre, token_file, *, by):
    manager = by if can_manage_agents(by, tre) else _officer_of(tre, by)
    agent = Agent.objects.filter(tre=tre, name=AGENT_NAME, revoked_at__isnull=True).first()
    token = token_file.read_text().strip() if token_file.exists() else ""
    if agent is not None and token and dispatch.hash_token(token) == agent.token_hash:
        return agent
    if agent is None:
        name = AGENT_NAME
        taken = set(Agent.objects.filter(tre=tre).values_list("name", flat=True))
        suffix = 2
        while name in taken:
            name, suffix = f"{AGENT_NAME}-{suffix}", suffix + 1
        agent, token = dispatch.issue_agent(tre, name, by=manager)
    else:
        token = dispatch.rotate_agent_token(agent, by=manager)
        agent.refresh_from_db()
    _write_secret(token_file, token)
    return agent


def _write_secret(path, secret):
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secret + "\n")
    os.chmod(path, 0o600)


def _toml(value):
    return json.dumps(str(value))


def _agent_toml(tre, out_dir, workflows):
    age_sex, cohort = workflows
    url = tre.website or f"{settings.PORTAL_BASE_URL.rstrip('/')}/tres/{tre.slug}/"
    return f"""# The demo agent of {tre.name}, written by `manage.py seed_demo`.
[tre]
slug = {_toml(tre.slug)}
name = {_toml(tre.name)}
url = {_toml(url)}

[agent]
work_dir = {_toml(out_dir / f"{tre.slug}-work")}

[limits]
timeout_seconds = 600
cpu_seconds = 600
memory_bytes = "2 GiB"
max_output_file_bytes = "20 MiB"

[sandbox]
require_network_isolation = false
cancel_grace_seconds = 5

[datasets.omop]
sqlite_path = {_toml(out_dir / f"{tre.slug}.sqlite")}

[[workflows]]
id = {_toml(age_sex.workflow_id)}
version = {_toml(age_sex.version)}
executor = "cwl"
[workflows.options]
dataset = "omop"
provenance = true

[[workflows]]
id = {_toml(cohort.workflow_id)}
version = {_toml(cohort.version)}
executor = "sql-aggregate"
[workflows.options]
dataset = "omop"
query_parameter = "query"
suppression_threshold = {tre.min_cell_count}
rounding_base = {tre.rounding_base or 10}
"""

"""The demo's agents: one per demo TRE, its own dataset and token, both demo workflows approved."""

import hashlib
import sqlite3
import stat

import pytest
from django.contrib.auth import get_user_model

from agent.config import load_config
from crates.demo_agents import AGE_SEX, COHORT_COUNT, CONTAINER_TRE, SEX_COUNTS, seed_demo_agents
from crates.models import Agent, Job
from portal.audit import AuditEvent
from portal.models import TRE, ApprovedWorkflow
from reviews import demo
from tests.integration.crates.test_dispatch_live import REPO

pytestmark = pytest.mark.django_db


def persons(path):
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT COUNT(*) FROM person").fetchone()[0]
    finally:
        connection.close()


def test_seeding_demo_agents_writes_a_working_set_up_per_tre_and_is_idempotent(tmp_path):
    demo.seed()
    admin = get_user_model().objects.get(username="admin")
    out = tmp_path / "demo-agents"

    agents = seed_demo_agents(admin, out)

    slugs = sorted(TRE.objects.values_list("slug", flat=True))
    assert sorted(agent.tre.slug for agent in agents) == slugs
    sizes = set()
    for agent in agents:
        slug = agent.tre.slug
        token = (out / f"{slug}.token").read_text().strip()
        assert hashlib.sha256(token.encode()).hexdigest() == agent.token_hash
        assert stat.S_IMODE((out / f"{slug}.token").stat().st_mode) == 0o600
        sizes.add(persons(out / f"{slug}.sqlite"))
        config = load_config(out / f"{slug}.toml")
        assert config.tre.slug == slug
        assert config.route(AGE_SEX.workflow_id, "1").executor == "cwl"
        assert config.route(COHORT_COUNT.workflow_id, "1").executor == "sql-aggregate"
    assert len(sizes) == len(agents)
    for workflow in ApprovedWorkflow.objects.filter(
        workflow_id__in=[AGE_SEX.workflow_id, COHORT_COUNT.workflow_id]
    ):
        with workflow.crate.open("rb") as crate:
            assert hashlib.sha256(crate.read()).hexdigest() == workflow.sha256
        assert sorted(a.tre.slug for a in workflow.approvals.filter(status="approved")) == slugs

    # One TRE also runs the containerised workflow, approved with its image's digest on both sides.
    containerised = ApprovedWorkflow.objects.get(workflow_id=SEX_COUNTS.workflow_id)
    (approval,) = containerised.approvals.filter(status="approved")
    assert approval.tre.slug == CONTAINER_TRE
    config = load_config(out / f"{CONTAINER_TRE}.toml")
    assert config.route(SEX_COUNTS.workflow_id, "1").executor == "cwl"
    assert set(approval.service_settings["containers"]) == set(config.accept.container_digests)
    assert config.containers is not None and config.containers.runtime == "runc"

    tokens = {path.name: path.read_text() for path in out.glob("*.token")}
    events = AuditEvent.objects.count()
    seed_demo_agents(admin, out)
    assert AuditEvent.objects.count() == events
    assert {path.name: path.read_text() for path in out.glob("*.token")} == tokens
    assert Agent.objects.count() == len(agents)

    (out / "nfhdn.token").unlink()
    seed_demo_agents(admin, out)
    rotated = Agent.objects.get(tre__slug="nfhdn")
    assert rotated.rotated_at is not None
    assert (
        hashlib.sha256((out / "nfhdn.token").read_text().strip().encode()).hexdigest() == rotated.token_hash
    )


def test_the_demo_agents_take_the_queued_demo_request_to_output_checking(portal, tmp_path, settings):
    """What `scripts/demo` runs: seed_demo, then `python -m agent.demo`; the request seeded as queued
    must come back from both of its TREs, and the containerised one from its TRE, and wait for the output
    checkers."""
    import signal
    import subprocess
    import sys

    settings.DATA_DIR = tmp_path
    with portal.db():
        demo.seed()
        queued = list(Job.objects.filter(status="queued").values_list("pk", flat=True))
    assert len(queued) == 3  # two age-sex jobs and the containerised one at cymru-sdb
    log = tmp_path / "agents.log"
    with log.open("wb") as handle:
        agents = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agent.demo",
                "--portal",
                portal.url,
                "--dir",
                str(tmp_path / "demo-agents"),
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=handle,
            start_new_session=True,
        )
    try:
        portal.wait_for(
            lambda: Job.objects.filter(pk__in=queued, status="output_review").count() == 3,
            "the three demo jobs to reach output checking",
            timeout=180,
            log=log,
        )
    finally:
        agents.send_signal(signal.SIGTERM)
        agents.wait(timeout=60)
    with portal.db():
        returned = sorted(o.name for job in Job.objects.filter(pk__in=queued) for o in job.outputs.all())
        assert returned == ["age_sex_table.csv", "age_sex_table.csv", "sex_counts.csv"]

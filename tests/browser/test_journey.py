"""The whole story in a real browser, each person doing their part through the pages.

alice builds a request for two TREs; olivia (TRE A) and oscar (TRE B) take their jobs through the five
review steps and sign off; each TRE's reference agent (`python -m agent`, a real process) claims its
job, runs the CWL workflow on that TRE's synthetic data and uploads the results; cam and chris, blinded
from each other, vote and release; alice downloads what was released; the public pages show the project.
Every page is screenshotted, checked by axe-core and watched for CSP violations (see conftest.py).
"""

import csv
import io
import json
import re
import signal
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import expect

from agent.demo_workflows import AGE_SEX_TABLE, pack_workflow_crate
from agent.synthetic import generate, write_sqlite
from crates.demo_agents import AGE_SEX
from crates.models import Job, Request, ResultUpload
from portal import roles
from portal import services as portal_services
from reviews.models import OutputFile
from tests import factories
from tests.browser.conftest import REPO
from tests.dispatch_helpers import approve_workflow, attach_workflow_crate, issue

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

S = Job.Status
TITLE = "Persons by age band and sex, at two TREs"
# Persons and random seed of each TRE's synthetic dataset: the released tables must add up to these.
DATASETS = {"tre-a": (2000, 1101), "tre-b": (1500, 2202)}
PERSONS = {slug: persons for slug, (persons, _) in DATASETS.items()}


@dataclass
class Site:
    """One TRE's agent: its token, configuration and log."""

    slug: str
    token_file: Path
    config: Path
    log: Path


class AgentProcess:
    """The reference agent as a TRE runs it: `python -m agent` in its own process."""

    def __init__(self, portal, site):
        self.site = site
        with site.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "agent",
                    "--portal",
                    portal.url,
                    "--token-file",
                    str(site.token_file),
                    "--config",
                    str(site.config),
                    "--claim-wait",
                    "0.5",
                ],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def events(self):
        lines = self.site.log.read_text().splitlines()
        return [json.loads(line).get("event") for line in lines if line.startswith("{")]


def _site(tre, officer, tmp_path):
    _, token = issue(tre, officer, name=f"{tre.slug}-agent")
    token_file = tmp_path / f"{tre.slug}.token"
    token_file.write_text(token + "\n")
    dataset = write_sqlite(generate(*DATASETS[tre.slug]), tmp_path / f"{tre.slug}.sqlite")
    config = tmp_path / f"{tre.slug}.toml"
    config.write_text(
        f"""
[tre]
slug = "{tre.slug}"
name = "{tre.name}"
url = "https://{tre.slug}.example.org/"

[agent]
work_dir = "{tmp_path / f"{tre.slug}-work"}"

[limits]
timeout_seconds = 300
cpu_seconds = 300
memory_bytes = "2 GiB"
max_output_file_bytes = "10 MiB"

[sandbox]
require_network_isolation = false
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
"""
    )
    return Site(tre.slug, token_file, config, tmp_path / f"{tre.slug}-agent.log")


@pytest.fixture
def federation(portal, registry, bob, olivia, oscar, cam, chris, pat, tre_a, tre_b, admin_user, tmp_path):
    """The registry as officers left it: PRJ approved at both TREs with agreements, the CWL workflow
    approved at both, cam and chris checkers at both, and an agent registered for each TRE."""
    project = registry["project"]
    with portal.db():
        approval = portal_services.request_project_approval(project, tre_b, by=bob)
        dataset_b = factories.DatasetFactory(tre=tre_b, name="TRE B primary care records")
        agreement = factories.AgreementFactory(project=project, tre=tre_b, created_by=oscar)
        agreement.datasets.add(dataset_b)
        portal_services.change_agreement_status(agreement, "activate", by=oscar)
        portal_services.decide_project(approval, "approved", by=oscar)
        for membership in project.memberships.all():
            for membership_approval in membership.approvals.filter(tre=tre_b):
                portal_services.decide_membership(membership_approval, "approved", by=oscar)
        workflow = factories.WorkflowFactory(
            workflow_id=AGE_SEX.workflow_id,
            name=AGE_SEX.name,
            version="1",
            executor="cwl",
            language="cwl",
        )
        attach_workflow_crate(workflow, pack_workflow_crate(AGE_SEX_TABLE, tmp_path / "age-sex.zip").path)
        approve_workflow(workflow, tre_a, olivia)
        approve_workflow(workflow, tre_b, oscar)
        for checker in (cam, chris):
            portal_services.grant_role(checker, roles.OUTPUT_CHECKER, by=admin_user, tre=tre_b)
        sites = [_site(tre_a, olivia, tmp_path), _site(tre_b, oscar, tmp_path)]
    return {
        "project": project,
        "workflow": workflow,
        "datasets": [registry["dataset"], dataset_b],
        "sites": sites,
    }


def _released_table(job):
    """The table as the agent uploaded it, read from the results crate it sent."""
    upload = ResultUpload.objects.get(job=job, status="verified")
    with upload.file.open("rb") as handle, zipfile.ZipFile(io.BytesIO(handle.read())) as archive:
        name = next(n for n in archive.namelist() if n.endswith("data/outputs/age_sex_table.csv"))
        return archive.read(name)


def _persons(table):
    rows = list(csv.DictReader(io.StringIO(table.decode())))
    assert rows and list(rows[0]) == ["age_band", "sex", "persons"]
    return sum(int(row["persons"]) for row in rows)


def test_a_request_travels_from_researcher_to_public_through_the_browser(
    portal, federation, open_tab, recorder, alice, olivia, oscar, cam, chris, pat, tre_a, tre_b
):
    project, workflow = federation["project"], federation["workflow"]

    # alice builds the request in the portal and sends it to both TREs.
    researcher = open_tab(alice)
    page = researcher.page
    researcher.check("dashboard")
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Requests").click()
    researcher.check("requests")
    page.get_by_role("link", name="Build a request").click()
    researcher.check("build a request")
    page.get_by_label("Project").select_option(label=str(project))
    page.get_by_label("TRE A", exact=True).check()
    page.get_by_label("TRE B", exact=True).check()
    page.get_by_label("Title").fill(TITLE)
    page.get_by_label("Approved workflow").select_option(label=str(workflow))
    for dataset in federation["datasets"]:
        page.get_by_label(re.compile(re.escape(dataset.name))).check()
    page.get_by_label("Parameters").fill("reference_year=2025")
    page.get_by_role("button", name="Build and submit").click()
    expect(page.get_by_role("heading", name="Version 1: valid")).to_be_visible()
    researcher.check("request submitted and valid")
    with portal.db():
        request = Request.objects.get(title=TITLE)
        jobs = {job.tre.slug: job for job in request.jobs.select_related("tre")}
    assert {slug: job.status for slug, job in jobs.items()} == {
        "tre-a": S.AWAITING_REVIEW,
        "tre-b": S.AWAITING_REVIEW,
    }

    # Each TRE's officer reviews their own job, step by step, and signs off.
    for officer, tre in ((olivia, tre_a), (oscar, tre_b)):
        review = open_tab(officer)
        page = review.page
        review.check("dashboard")
        page.get_by_role("link", name="1 request to review").click()
        review.check(f"review queue of {tre.name}")
        page.get_by_role("link", name=TITLE).click()
        review.check("the job")
        page.get_by_role("button", name="Start the review").click()
        expect(page.get_by_text("Review started.")).to_be_visible()
        review.check("review started")
        for step in ("Safe People", "Safe Project", "Safe Data", "Safe Settings"):
            card = page.locator("section.nhsuk-card").filter(has=page.get_by_role("heading", name=step))
            if step == "Safe Data":
                # The crate names both TREs' datasets; each officer answers for their own TRE's.
                expect(
                    card.get_by_text(f"is held by {tre.name} and covered by the agreement.")
                ).to_be_visible()
                card.get_by_label(re.compile("Rationale")).fill(
                    "Ours is covered; the other is the other TRE's."
                )
            else:
                expect(card.get_by_text("Not met", exact=True)).to_have_count(0)
            card.get_by_label("Approve", exact=True).check()
            card.get_by_role("button", name="Record decision").click()
            expect(page.get_by_text(f"{step}: decision recorded.")).to_be_visible()
            review.check(f"{step} approved")
        card = page.locator("section.nhsuk-card").filter(has=page.get_by_role("heading", name="Sign-off"))
        card.get_by_label("Approve", exact=True).check()
        card.get_by_label(re.compile("Rationale")).fill("All five safes are met for this TRE.")
        card.get_by_role("button", name="Record decision").click()
        expect(page.get_by_text("Sign-off: decision recorded.")).to_be_visible()
        expect(page.locator("#job-status")).to_contain_text("Queued")
        review.check("signed off")
        review.close()

    # Each TRE's agent claims its job, runs the workflow on its own data and returns the results.
    agents = [AgentProcess(portal, site) for site in federation["sites"]]
    try:
        portal.wait_for(
            lambda: all(Job.objects.get(pk=job.pk).status == S.OUTPUT_REVIEW for job in jobs.values()),
            "both agents to return results",
            timeout=240,
            log=federation["sites"][0].log,
        )
    finally:
        exit_codes = [agent.stop() for agent in agents]
    assert exit_codes == [0, 0]
    for agent in agents:
        assert agent.events().count("job.completed") == 1, agent.site.log.read_text()[-3000:]
    with portal.db():
        tables = {slug: _released_table(job) for slug, job in jobs.items()}
    assert {slug: _persons(table) for slug, table in tables.items()} == PERSONS

    # The checkers vote without seeing each other's votes, then chris releases.
    for checker in (cam, chris):
        checking = open_tab(checker)
        page = checking.page
        checking.check("dashboard")
        for tre in (tre_a, tre_b):
            page.get_by_role("banner").get_by_role("link", name=re.compile("^Notifications")).click()
            checking.check("notifications")
            page.get_by_role("link", name=f"Outputs to check at {tre.name}: {TITLE}").click()
            checking.check(f"job at {tre.name}")
            page.get_by_role("link", name="Outputs", exact=True).click()
            expect(page.get_by_role("heading", name=re.compile("age_sex_table.csv"))).to_be_visible()
            # Blinded: chris cannot see cam's vote until he has voted too.
            votes = page.get_by_role("main").get_by_text(re.compile(r"@example\.org \(round \d+\):"))
            expect(votes).to_have_count(0)
            checking.check(f"outputs at {tre.name}")
            # The zeros of the 'other' rows are not disclosive under the TRE's policy: the table passes.
            expect(page.locator(".nhsuk-card").get_by_text("Pass", exact=True)).to_be_visible()
            page.get_by_label("Approve", exact=True).check()
            page.get_by_label(re.compile("Comment")).fill(
                "Counts at or above the threshold; zeros are structural."
            )
            page.get_by_role("button", name="Record my vote").click()
            expect(page.get_by_text("Vote recorded on age_sex_table.csv.")).to_be_visible()
            if checker == cam:
                expect(page.get_by_text("You voted approve; waiting for the other checkers.")).to_be_visible()
                checking.check(f"voted at {tre.name}")
            else:
                expect(page.get_by_text("cam@example.org (round 1): Approve")).to_be_visible()
                checking.check(f"voted at {tre.name}, votes revealed")
                page.get_by_role("button", name="Release age_sex_table.csv").click()
                expect(page.locator("h1 + p")).to_contain_text("Released")
                checking.check(f"released at {tre.name}")
        checking.close()
    with portal.db():
        assert {slug: Job.objects.get(pk=job.pk).status for slug, job in jobs.items()} == {
            "tre-a": S.RELEASED,
            "tre-b": S.RELEASED,
        }
        assert OutputFile.objects.filter(job__request=request, status="released").count() == 2

    # alice downloads what each TRE released: the very table its agent computed.
    page = researcher.page
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Requests").click()
    page.get_by_role("link", name=TITLE).click()
    researcher.check("request released")
    for tre in (tre_a, tre_b):
        page.get_by_role("link", name=tre.name, exact=True).click()
        expect(page.locator("#job-status")).to_contain_text("Released")
        researcher.check(f"job at {tre.name}")
        page.get_by_role("link", name="Outputs", exact=True).click()
        researcher.check(f"outputs at {tre.name}")
        with page.expect_download() as download:
            page.get_by_role("link", name="Download").click()
        assert download.value.suggested_filename == "age_sex_table.csv"
        assert Path(download.value.path()).read_bytes() == tables[tre.slug]
        page.get_by_role("link", name="Back to the job").click()
        page.get_by_role("link", name=f"Request #{request.pk}").click()

    # The public sees the project, where it is approved and what came of it.
    for visitor in (None, pat):
        public = open_tab(visitor)
        page = public.page
        public.goto("/public/", "transparency home")
        page.get_by_role("link", name="Approved projects").click()
        public.check("approved projects")
        page.get_by_role("link", name=project.title).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(project.title)
        for tre in (tre_a, tre_b):
            expect(page.get_by_role("link", name=tre.name, exact=True)).to_be_visible()
        expect(page.get_by_text("1 request to analyse data has been sent for review")).to_be_visible()
        outcomes = page.get_by_role("table", name="Where the requests are now")
        expect(outcomes.get_by_role("row", name="Results released 2")).to_be_visible()
        public.check("the project")
        if visitor is None:
            page.get_by_role("link", name=tre_b.name, exact=True).click()
            expect(page.get_by_role("heading", level=1)).to_contain_text(tre_b.name)
            public.check(f"{tre_b.name}")
            page.get_by_role("link", name="Statistics", exact=True).click()
            public.check("statistics")

    recorder.assert_clean()

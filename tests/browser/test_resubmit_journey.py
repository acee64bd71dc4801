"""Typed inputs and edit-and-resubmit in a real browser, every page checked by axe-core.

alice builds a request: choosing the workflow shows its declared inputs as fields, and a wrong value is
refused with a clear message. olivia reads the workflow's files and what changed since the version
approved before it, approves three steps and asks for changes in Safe Settings. alice opens the builder
filled from version 1, changes the input and says what she changed. olivia sees the message, the diff
and which decisions carried over, and decides only what is left.
"""

import json
import re
import shutil

import pytest
from playwright.sync_api import expect

from agent.demo_workflows import AGE_SEX_TABLE, pack_workflow_crate
from crates.models import Job, Request
from portal import workflow_inputs
from tests import factories
from tests.dispatch_helpers import approve_workflow, attach_workflow_crate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TITLE = "Persons by age band, adults only"
WORKFLOW_ID = "https://portal.example.org/workflows/adults-by-age"
DECLARED = [
    {"name": "min_age", "type": "int", "required": True, "description": "Youngest age counted"},
    {"name": "codes", "type": "File", "required": True, "description": "Diagnosis codes, one a line"},
]


@pytest.fixture
def workflows(portal, registry, tre_a, olivia, tmp_path):
    """Version 1 of the workflow approved at TRE A (with its crate), and version 0 approved before it."""
    with portal.db():
        earlier_dir = shutil.copytree(AGE_SEX_TABLE, tmp_path / "v0")
        script = earlier_dir / "count_by_age_sex.py"
        script.write_text(script.read_text().replace("ten-year", "five-year", 1) + "\n# version 0\n")
        earlier = factories.WorkflowFactory(workflow_id=WORKFLOW_ID, name="Adults by age", version="0")
        attach_workflow_crate(earlier, pack_workflow_crate(earlier_dir, tmp_path / "v0.zip").path)
        approve_workflow(earlier, tre_a, olivia)
        workflow = factories.WorkflowFactory(workflow_id=WORKFLOW_ID, name="Adults by age", version="1")
        attach_workflow_crate(workflow, pack_workflow_crate(AGE_SEX_TABLE, tmp_path / "v1.zip").path)
        workflow.inputs = workflow_inputs.parse(json.dumps(DECLARED))
        workflow.save()
        approve_workflow(workflow, tre_a, olivia)
    codes = tmp_path / "codes.txt"
    codes.write_text("E11\nE12\n")
    return {"workflow": workflow, "codes": codes}


def _card(page, step):
    return page.locator("section.nhsuk-card").filter(has=page.get_by_role("heading", name=step))


def test_typed_inputs_and_edit_and_resubmit_with_carried_over_decisions(
    portal, registry, workflows, open_tab, recorder, alice, olivia, tre_a
):
    project, workflow = registry["project"], workflows["workflow"]

    # alice builds the request; the workflow's inputs appear as fields once it is chosen.
    researcher = open_tab(alice)
    page = researcher.page
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Requests").click()
    page.get_by_role("link", name="Build a request").click()
    researcher.check("build a request")
    page.get_by_label("Project").select_option(label=str(project))
    page.get_by_label("TRE A", exact=True).check()
    page.get_by_label("Title").fill(TITLE)
    page.get_by_label("Approved workflow").select_option(label=str(workflow))
    expect(page.get_by_role("heading", name=f"Inputs of {workflow}")).to_be_visible()
    researcher.check("the workflow's inputs")
    page.get_by_label(re.compile(re.escape(registry["dataset"].name))).check()
    page.get_by_label("min_age").fill("eighteen")
    page.get_by_label("codes").set_input_files(workflows["codes"])
    page.get_by_role("button", name="Build and submit").click()
    expect(page.locator(".nhsuk-error-message").first).to_contain_text("min_age must be a whole number")
    researcher.check("a wrong input refused")
    page.get_by_label("min_age").fill("18")
    page.get_by_label("codes").set_input_files(workflows["codes"])
    page.get_by_role("button", name="Build and submit").click()
    expect(page.get_by_role("heading", name="Version 1: valid")).to_be_visible()
    researcher.check("request submitted and valid")

    # olivia reads the workflow, then reviews: three steps approved, changes asked for in Safe Settings.
    officer = open_tab(olivia)
    page = officer.page
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Workflows").click()
    page.get_by_role("link", name="Register a workflow").click()
    expect(page.get_by_label("Inputs (optional)")).to_be_visible()
    officer.check("register a workflow, its inputs optional")
    page.go_back()
    page.get_by_role("link", name=str(workflow)).click()
    officer.check("the workflow")
    page.get_by_role("link", name="Read its files").click()
    expect(page.locator(".highlight").first).to_be_visible()
    officer.check("the workflow's files")
    page.get_by_role("link", name="count_by_age_sex.py").click()
    expect(page.get_by_role("heading", name="count_by_age_sex.py")).to_be_visible()
    officer.check("one file highlighted")
    page.get_by_role("link", name="What changed since version 0").first.click()
    expect(page.get_by_text("count_by_age_sex.py: changed")).to_be_visible()
    officer.check("what changed since version 0")

    page.get_by_role("navigation", name="Menu").get_by_role("link", name="To do").click()
    page.get_by_role("link", name="1 request to review").click()
    page.get_by_role("link", name=TITLE).click()
    page.get_by_role("button", name="Start the review").click()
    expect(page.get_by_text("Review started.")).to_be_visible()
    for step in ("Safe People", "Safe Project", "Safe Data"):
        card = _card(page, step)
        card.get_by_label("Approve", exact=True).check()
        card.get_by_role("button", name="Record decision").click()
        expect(page.get_by_text(f"{step}: decision recorded.")).to_be_visible()
    card = _card(page, "Safe Settings")
    card.get_by_label("Request changes").check()
    card.get_by_label(re.compile("Rationale")).fill("Count adults from 21, as the agreement says.")
    card.get_by_role("button", name="Record decision").click()
    expect(page.get_by_text("Safe Settings: decision recorded.")).to_be_visible()
    officer.check("changes requested")

    # alice edits and resubmits from the builder, filled from version 1.
    page = researcher.page
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Requests").click()
    page.get_by_role("link", name=TITLE).click()
    researcher.check("changes requested")
    page.get_by_role("link", name="Edit and resubmit").click()
    expect(page.get_by_label("min_age")).to_have_value("18")
    expect(page.get_by_label("Title")).to_have_value(TITLE)
    expect(page.get_by_text("Leave empty to keep codes.txt from the last version.")).to_be_visible()
    researcher.check("the builder filled from version 1")
    page.get_by_label("min_age").fill("21")
    page.get_by_label("What you changed").fill("Adults from 21 now, as asked.")
    page.get_by_role("button", name="Build and resubmit").click()
    expect(page.get_by_role("heading", name="Version 2: valid")).to_be_visible()
    expect(page.get_by_text("Input min_age changed from '18' to '21'")).to_be_visible()
    researcher.check("version 2 valid")

    # olivia sees the message, the change and the carried-over decisions, and decides what is left.
    page = officer.page
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="To do").click()
    page.get_by_role("link", name="1 request to review").click()
    page.get_by_role("link", name=TITLE).click()
    resubmitted = page.locator("section.nhsuk-card").filter(has_text="Resubmitted: version 2")
    expect(resubmitted.get_by_text("Adults from 21 now, as asked.")).to_be_visible()
    expect(resubmitted.get_by_text("Input min_age changed from '18' to '21'")).to_be_visible()
    rows = resubmitted.locator("tbody tr")
    expect(rows.filter(has_text="Safe People")).to_contain_text("Carried over")
    expect(rows.filter(has_text="Safe Data")).to_contain_text("Carried over")
    expect(rows.filter(has_text="Safe Settings")).to_contain_text("This step asked for the changes")
    officer.check("the resubmission")
    expect(page.get_by_role("link", name="Read the workflow's files")).to_be_visible()
    page.get_by_role("button", name="Start the review").click()
    expect(page.get_by_text("Review started.")).to_be_visible()
    expect(page.get_by_role("button", name="Record decision")).to_have_count(2)
    expect(_card(page, "Safe People").get_by_text("Carried over from version 1")).to_be_visible()
    card = _card(page, "Safe Settings")
    card.get_by_label("Approve", exact=True).check()
    card.get_by_role("button", name="Record decision").click()
    expect(page.get_by_text("Safe Settings: decision recorded.")).to_be_visible()
    card = _card(page, "Sign-off")
    card.get_by_label("Approve", exact=True).check()
    card.get_by_label(re.compile("Rationale")).fill("All five safes are met.")
    card.get_by_role("button", name="Record decision").click()
    expect(page.locator("#job-status")).to_contain_text("Queued")
    officer.check("signed off")

    with portal.db():
        job = Request.objects.get(title=TITLE).jobs.get()
        assert job.status == Job.Status.QUEUED and job.version.number == 2
    recorder.assert_clean()

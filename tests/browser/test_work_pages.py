"""Each role's work starts from "To do": the checker's queue, a PPIE review that changes a lay summary,
and a failure the researcher sees on the job page without reloading it.

Every page is screenshotted and checked with axe-core (see conftest.py).
"""

import re

import pytest
from playwright.sync_api import expect

from crates import dispatch
from crates.models import Job
from reviews import outputs
from tests import builders

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

S = Job.Status
SAFE = b"age_band,female,male\n18-39,120,131\n40-64,210,198\n65+,95,88\n"
UNSAFE = b"age_band,female,male\n18-39,120,3\n40-64,210,198\n"


def test_the_checker_works_from_the_queue(portal, new_job, cam, tmp_path, open_tab, recorder):
    with portal.db():
        job = new_job(S.QUEUED)
        upload = builders.return_results(job, {"by_age.csv": SAFE, "small.csv": UNSAFE}, tmp_path=tmp_path)
        outputs.check_outputs(upload.pk)
    checker = open_tab(cam)
    page = checker.page
    checker.goto("/dashboard/", "to do")
    todo = page.get_by_role("table", name="Files waiting for your vote")
    expect(todo.get_by_role("row")).to_have_count(3)  # the header and two files, oldest first
    expect(todo).to_contain_text("Fail")
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Outputs to check").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Outputs to check")
    checker.check("output queue")
    page.get_by_role("link", name="by_age.csv").click()
    checker.check("the job's outputs")
    card = page.locator("section.nhsuk-card").filter(
        has=page.get_by_role("heading", name=re.compile("by_age.csv"))
    )
    card.get_by_label("Approve", exact=True).check()
    card.get_by_role("button", name="Record my vote").click()
    expect(page.get_by_text("Vote recorded on by_age.csv.")).to_be_visible()
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="Outputs to check").click()
    queue = page.get_by_role("table", name="Files waiting for your vote")
    expect(queue.get_by_role("link", name="small.csv")).to_be_visible()
    expect(queue.get_by_role("link", name="by_age.csv")).to_have_count(0)
    checker.check("queue after voting")
    recorder.assert_clean()


def test_a_ppie_review_changes_a_lay_summary(portal, pat, bob, oscar, tre_b, open_tab, recorder):
    from portal import services
    from portal.forms import ProjectForm

    with portal.db():
        tre_b.ppie_review = "required"
        tre_b.save()
        form = ProjectForm(
            {
                "identifier": "PRJ-2026-0300",
                "title": "Waiting times for hip replacement",
                "lay_summary": "Multivariable survival analysis of HES APC episodes by IMD quintile.",
                "public_benefit": "Evidence on inequalities.",
            }
        )
        assert form.is_valid(), form.errors
        project = services.create_project(form, by=bob)
        services.request_project_approval(project, tre_b, by=bob)

    reviewer = open_tab(pat)
    page = reviewer.page
    reviewer.check("to do")
    page.get_by_role("link", name="1 lay summary to read").click()
    expect(page.get_by_text("Multivariable survival analysis")).to_be_visible()
    reviewer.check("ppie page")
    card = page.locator("section.nhsuk-card").filter(has_text="PRJ-2026-0300")
    card.get_by_label("Plainer words needed").check()
    card.get_by_label(re.compile("Comment for the research team")).fill(
        "Say 'hospital stays' rather than 'HES APC episodes', and 'poorer areas' for 'IMD quintile'."
    )
    card.get_by_role("button", name="Record my view").click()
    expect(page.get_by_text("Asked PRJ-2026-0300's team for plainer words.")).to_be_visible()
    reviewer.check("plainer words asked")

    lead = open_tab(bob)
    page = lead.page
    expect(page.get_by_text("Say 'hospital stays' rather than 'HES APC episodes'")).to_be_visible()
    lead.check("to do with the PPIE comment")
    page.get_by_role("link", name=re.compile("Waiting times for hip replacement")).click()
    expect(page.get_by_text("Say 'hospital stays' rather than 'HES APC episodes'")).to_be_visible()
    lead.check("project with the PPIE comment")
    page.get_by_role("link", name="Edit details").click()
    page.get_by_label(re.compile("^Lay summary")).fill(
        "We will look at how long people wait for a new hip, and whether people in poorer areas wait longer."
    )
    lead.check("editing the lay summary")
    page.get_by_role("button", name=re.compile("Save")).click()
    expect(page.get_by_text("whether people in poorer areas wait longer")).to_be_visible()
    lead.check("lay summary rewritten")

    page = reviewer.page
    page.get_by_role("navigation", name="Menu").get_by_role("link", name="PPIE").click()
    card = page.locator("section.nhsuk-card").filter(has_text="PRJ-2026-0300")
    expect(card).to_contain_text("whether people in poorer areas wait longer")
    card.get_by_label("Clear for the public").check()
    card.get_by_role("button", name="Record my view").click()
    expect(page.get_by_text("No lay summary is waiting for you.")).to_be_visible()
    reviewer.check("cleared")

    officer = open_tab(oscar)
    page = officer.page
    page.get_by_role("link", name="TRE B").first.click()
    expect(page.get_by_text("Cleared for the public by a PPIE member")).to_be_visible()
    officer.check("approvals with the PPIE view")
    recorder.assert_clean()


def test_the_researcher_sees_a_failure_without_reloading(portal, new_job, alice, open_tab, recorder):
    with portal.db():
        job = new_job(S.QUEUED)
        agent = builders.agent_for(job.tre, None)
    researcher = open_tab(alice)
    page = researcher.page
    researcher.check("to do")
    page.get_by_role("link", name=job.request.title).first.click()
    page.get_by_role("link", name="TRE A", exact=True).click()
    expect(page.locator("#job-status")).to_contain_text("Approved and waiting for the TRE to pick it up")
    researcher.check("job queued")
    # The reader has scrolled down to the timeline; the update must not move what they are reading.
    timeline_top = "() => document.getElementById('job-timeline').getBoundingClientRect().top"
    page.evaluate("() => document.getElementById('job-timeline').scrollIntoView()")
    before = page.evaluate(timeline_top)
    assert page.evaluate("() => window.scrollY") > 0
    with portal.db():
        claim = dispatch.claim_next(agent)
        token = claim.lease.fencing_token
        dispatch.report_status(agent, job.pk, fencing_token=token, status="running")
        dispatch.report_status(
            agent,
            job.pk,
            fencing_token=token,
            status="failed",
            message="required input 'cohort_start' is missing",
        )
    failure = page.get_by_role("heading", name="This job failed at TRE A")
    expect(failure).to_be_attached(timeout=15000)
    expect(page.locator("#job-status")).to_contain_text("Check the inputs named below")
    expect(page.locator("#job-timeline")).to_contain_text("reported that the job failed")
    assert abs(page.evaluate(timeline_top) - before) < 2  # the status above grew; the timeline stayed put
    researcher.check("failure shown without reloading")
    page.get_by_role("banner").get_by_role("link", name=re.compile("^Notifications")).click()
    expect(page.get_by_text(f"Failed at TRE A: {job.request.title}")).to_be_visible()
    researcher.check("notified")
    recorder.assert_clean()


def test_every_role_starts_from_to_do(
    portal, new_job, alice, bob, olivia, cam, pat, audrey, tre_b, tmp_path, open_tab, recorder
):
    """Each of the cast signs in, reads "To do" and follows its first piece of work, without typing a URL."""
    from portal import services
    from portal.forms import ProjectForm

    with portal.db():
        waiting = new_job(S.AWAITING_REVIEW, title="Counts by region")
        returned = new_job(S.QUEUED, title="Counts by age band")
        upload = builders.return_results(returned, {"by_age.csv": SAFE}, tmp_path=tmp_path)
        outputs.check_outputs(upload.pk)
        form = ProjectForm(
            {
                "identifier": "PRJ-2026-0400",
                "title": "Asthma and air quality",
                "lay_summary": "Do inhaler prescriptions rise after days of poor air?",
                "public_benefit": "Better air-quality alerts.",
            }
        )
        assert form.is_valid(), form.errors
        services.request_project_approval(services.create_project(form, by=bob), tre_b, by=bob)

    journeys = [
        (alice, "link", waiting.request.title, re.compile("Counts by region")),
        (bob, "link", "Counts by age band", re.compile("Counts by age band")),
        (olivia, "link", "1 request to review", re.compile("Requests to review at TRE A")),
        (cam, "link", "by_age.csv", re.compile("^Outputs$")),
        (pat, "link", "1 lay summary to read", re.compile("PPIE oversight")),
        (audrey, "link", "Read the audit trail", re.compile("Audit trail")),
    ]
    for person, role, name, heading in journeys:
        tab = open_tab(person)
        page = tab.page
        expect(page.get_by_role("heading", level=1)).to_have_text("What to do next")
        tab.check("to do")
        page.get_by_role("main").get_by_role(role, name=name).first.click()
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        tab.check(f"first work: {name}")
        tab.close()
    recorder.assert_clean()

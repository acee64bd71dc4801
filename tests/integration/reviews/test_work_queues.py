"""Every role's work queue: the checkers' outputs queue, the researcher's requests and jobs, PPIE oversight."""

import pytest
from django.urls import reverse

from crates.models import Job
from portal import roles, services
from reviews import outputs
from tests import builders

pytestmark = pytest.mark.django_db

S = Job.Status
SAFE = b"age_band,female,male\n18-39,120,131\n40-64,210,198\n65+,95,88\n"
UNSAFE = b"age_band,female,male\n18-39,120,3\n40-64,210,198\n"


@pytest.fixture
def returned(new_job, tmp_path):
    job = new_job(S.QUEUED)
    upload = builders.return_results(job, {"by_age.csv": SAFE, "small.csv": UNSAFE}, tmp_path=tmp_path)
    outputs.check_outputs(upload.pk)
    job.refresh_from_db()
    return job


# --- The checkers' queue ---------------------------------------------------------------------------


def test_the_checkers_queue_lists_files_awaiting_my_vote_oldest_first(client, returned, cam):
    client.force_login(cam)
    page = client.get(reverse("output_queue"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "by_age.csv" in body and "small.csv" in body
    assert "Pass" in body and "Fail" in body  # the automated verdicts
    assert body.index("by_age.csv") < body.index("small.csv")  # same age: by primary key
    # Once I voted, the file leaves my queue (but stays in the other checker's).
    outputs.vote(returned.outputs.get(path__endswith="by_age.csv"), "approve", by=cam)
    body = client.get(reverse("output_queue")).content.decode()
    assert "by_age.csv" not in body and "small.csv" in body


def test_the_queue_is_on_the_to_do_page_too(client, returned, cam):
    client.force_login(cam)
    body = client.get(reverse("dashboard")).content.decode()
    assert "Outputs to check" in body
    assert "2 files wait for your vote" in body
    assert reverse("job_outputs", args=[returned.pk]) in body


def test_checkers_of_other_tres_and_project_members_do_not_see_the_files(
    client, returned, oscar, bob, tre_a, tre_b, admin_user
):
    other = builders_person("chloe")
    services.grant_role(other, roles.OUTPUT_CHECKER, by=admin_user, tre=tre_b)
    client.force_login(other)
    assert "by_age.csv" not in client.get(reverse("output_queue")).content.decode()
    # bob leads the project: as a checker at TRE A he still never sees its files.
    services.grant_role(bob, roles.OUTPUT_CHECKER, by=admin_user, tre=tre_a)
    client.force_login(bob)
    assert "by_age.csv" not in client.get(reverse("output_queue")).content.decode()


def test_the_queue_is_for_checkers_only(client, alice):
    client.force_login(alice)
    response = client.get(reverse("output_queue"))
    assert response.status_code == 403
    assert "Only output checkers have an output queue." in response.content.decode()


def builders_person(username):
    from tests.conftest import _person

    return _person(username, mfa=True)


# --- PPIE oversight ----------------------------------------------------------------------------------


@pytest.fixture
def waiting_project(bob, tre_b):
    """A project of bob's waiting for approval at TRE B, which requires PPIE review."""
    from portal.forms import ProjectForm

    tre_b.ppie_review = "required"
    tre_b.save()
    form = ProjectForm(
        {
            "identifier": "PRJ-2026-0200",
            "title": "Waiting times for hip replacements",
            "lay_summary": "We will use multivariable survival analysis of HES APC episodes.",
            "public_benefit": "Improved care.",
            "technical_summary": "Cox models.",
        }
    )
    assert form.is_valid(), form.errors
    project = services.create_project(form, by=bob)
    services.request_project_approval(project, tre_b, by=bob)
    return project


def test_pat_sees_lay_summaries_to_read_on_to_do_and_the_ppie_page(client, pat, waiting_project):
    client.force_login(pat)
    todo = client.get(reverse("dashboard")).content.decode()
    assert "PPIE oversight" in todo and "1 lay summary to read" in todo and "PRJ-2026-0200" in todo
    page = client.get(reverse("ppie_home")).content.decode()
    assert "multivariable survival analysis" in page
    assert reverse("public_statistics") in page and reverse("public_questions_moderation") in page


def test_plainer_words_reach_the_researcher_and_a_new_text_returns_to_the_queue(
    client, pat, bob, oscar, waiting_project
):
    client.force_login(pat)
    response = client.post(
        reverse("ppie_review", args=[waiting_project.pk]),
        {"outcome": "plainer", "comment": "Say 'hospital stays' instead of 'HES APC episodes'."},
    )
    assert response.status_code == 302
    assert (
        "multivariable"
        not in client.get(reverse("ppie_home")).content.decode().split("Waiting for plainer")[0]
    )
    # The lead sees the comment on the project page.
    client.force_login(bob)
    body = client.get(waiting_project.get_absolute_url()).content.decode()
    assert "Say &#x27;hospital stays&#x27; instead of &#x27;HES APC episodes&#x27;." in body
    assert "Plainer words needed" in body
    # The TRE requires PPIE review: its officer cannot approve yet, and is told why.
    approval = waiting_project.approvals.get()
    client.force_login(oscar)
    refused = client.post(
        reverse("project_decide", args=[approval.pk]), {"decision": "approved", "rationale": ""}, follow=True
    )
    assert "TRE B needs a PPIE member to clear the lay summary" in refused.content.decode()
    # The officer sees the PPIE view beside the approval.
    assert "Plainer words needed" in client.get(reverse("approvals_queue", args=["tre-b"])).content.decode()
    approval.refresh_from_db()
    assert approval.status == "pending"
    # bob rewrites the summary; it is back in pat's queue, and pat clears it.
    waiting_project.lay_summary = "We will look at how long people wait for a new hip, and who waits longest."
    waiting_project.save()
    client.force_login(pat)
    assert "who waits longest" in client.get(reverse("ppie_home")).content.decode()
    client.post(reverse("ppie_review", args=[waiting_project.pk]), {"outcome": "clear", "comment": ""})
    client.force_login(bob)
    assert "Clear for the public" in client.get(waiting_project.get_absolute_url()).content.decode()


def test_ppie_review_needs_a_comment_for_plainer_words_and_excludes_members(
    client, pat, bob, waiting_project
):
    from django.core.exceptions import PermissionDenied, ValidationError

    from portal import ppie

    with pytest.raises(ValidationError):
        ppie.record(waiting_project, "plainer", "", by=pat)
    with pytest.raises(PermissionDenied):
        ppie.record(waiting_project, "clear", by=bob)
    client.force_login(bob)
    assert client.get(reverse("ppie_home")).status_code == 403


# --- Researchers see their work ------------------------------------------------------------------


def _fail(job, message):
    """The agent claims the job, starts it and reports a failure, through the real dispatch calls."""
    from crates import dispatch

    agent = builders.agent_for(job.tre, None)
    claim = dispatch.claim_next(agent)
    token = claim.lease.fencing_token
    dispatch.report_status(agent, job.pk, fencing_token=token, status="running")
    dispatch.report_status(agent, job.pk, fencing_token=token, status="failed", message=message)
    job.refresh_from_db()
    return job


def test_a_failure_is_explained_first_notified_and_on_to_do(client, new_job, alice, bob, mailoutbox):
    from reviews.models import Notification

    job = new_job(S.QUEUED)
    _fail(job, "required input 'cohort_start' is missing")
    assert job.status == S.FAILED
    # In the portal and by e-mail, at once, to the submitter and the project's lead.
    notes = Notification.objects.filter(subject__startswith="Failed at TRE A")
    assert {n.recipient for n in notes} == {alice, bob}
    assert "an input was missing or wrong" in notes[0].body and "What to do" in notes[0].body
    assert all(n.email_wanted for n in notes)  # the e-mail outbox sends them
    client.force_login(alice)
    page = client.get(job.get_absolute_url()).content.decode()
    first = page.index("This job failed at TRE A")
    assert first < page.index("The request</h2>") and first < page.index("Timeline")
    assert "Check the inputs named below" in page and "cohort_start" in page
    todo = client.get(reverse("dashboard")).content.decode()
    assert "Your requests" in todo and "failed at TRE A" in todo and job.get_absolute_url() in todo
    # The timeline speaks in sentences, not event codes.
    assert "job.failed" not in page and "reported that the job failed" in page


def test_job_and_request_pages_poll_while_the_job_moves_and_stop_after(client, new_job, alice):
    job = new_job(S.QUEUED)
    client.force_login(alice)
    page = client.get(job.get_absolute_url()).content.decode()
    assert 'hx-trigger="every 3s"' in page
    partial = client.get(job.get_absolute_url(), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="job-status")
    body = partial.content.decode()
    assert body.lstrip().startswith('<div id="job-status"') and "<h1>" not in body
    assert 'id="job-timeline" hx-swap-oob="true"' in body
    request_page = client.get(job.request.get_absolute_url()).content.decode()
    assert 'id="request-jobs"' in request_page and 'hx-trigger="every 3s"' in request_page
    _fail(job, "the workflow exited with status 1")
    page = client.get(job.get_absolute_url()).content.decode()
    assert "hx-trigger" not in page.split('id="job-status"')[1].split(">")[0]
    partial = client.get(
        job.request.get_absolute_url(), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="request-jobs"
    ).content.decode()
    assert "Failed at TRE A" in partial and "stopped with an error" in partial


def test_no_certificate_before_there_is_a_decision(client, new_job, olivia):
    job = new_job(S.AWAITING_REVIEW)
    client.force_login(olivia)
    assert (
        reverse("job_certificate", args=[job.pk]) not in client.get(job.get_absolute_url()).content.decode()
    )
    response = client.get(reverse("job_certificate", args=[job.pk]), follow=True)
    assert response.headers["Content-Type"].startswith("text/html")
    assert "nothing to certify" in response.content.decode()


# --- Counts agree with the lists they count ----------------------------------------------------------


def test_members_awaiting_approval_agrees_with_the_project_page(client, project, bob, olivia):
    from tests.conftest import _person

    dan = _person("dan", roles.RESEARCHER)  # no accreditation: his membership lapses
    erin = _person("erin", roles.RESEARCHER)
    factories_accreditation(erin)
    for person in (dan, erin):
        membership = services.invite_member(project, person, "researcher", by=bob)
        services.accept_invitation(membership, by=person)
    services.lapse_expired_memberships()
    client.force_login(olivia)
    todo = client.get(reverse("dashboard")).content.decode()
    count = todo.split("Members awaiting approval</dt>")[1].split("</dd>")[0]
    assert ">1<" in count  # erin only
    page = client.get(project.get_absolute_url()).content.decode()
    # One decision form per member awaiting approval; dan's approval is on hold, not awaiting.
    assert page.count("Approve dan@example.org") == 0 and page.count("Approve erin@example.org") == 1
    assert "On hold" in page
    queue = client.get(reverse("approvals_queue", args=["tre-a"])).content.decode()
    assert "Members (1)" in queue


def factories_accreditation(person):
    from tests import factories

    factories.AccreditationFactory(person=person)


def test_pat_moderates_public_questions(client, pat, project):
    from transparency import questions

    question = questions.submit_question(project, question="Will my GP records be used?", name="Sam")
    client.force_login(pat)
    page = client.get(reverse("public_questions_moderation"))
    assert page.status_code == 200 and "Will my GP records be used?" in page.content.decode()
    assert "1 question from the public to moderate" in client.get(reverse("dashboard")).content.decode()
    client.post(
        reverse("public_question_moderate", args=[question.pk]),
        {
            f"q{question.pk}-action": "publish",
            f"q{question.pk}-question": "Will GP records be used?",
            f"q{question.pk}-answer": "No: only hospital records.",
        },
    )
    question.refresh_from_db()
    assert question.status == "published" and question.answer == "No: only hospital records."


# --- Error pages -----------------------------------------------------------------------------------


def test_error_pages_are_styled_and_keep_the_servers_message(client, alice, settings):
    client.force_login(alice)
    denied = client.get(reverse("audit_list"))
    body = denied.content.decode()
    assert denied.status_code == 403
    assert "You cannot do this" in body and "Only auditors can read the audit trail." in body
    assert 'class="nhsuk-header' in body  # the portal's own page, with its navigation
    missing = client.get("/no-such-page/")
    assert missing.status_code == 404 and "Page not found" in missing.content.decode()
    # Even with DEBUG on (as in the demo) people never see Django's technical 404 page.
    settings.DEBUG = True
    for path in ("/no-such-page/", reverse("job_detail", args=[999999])):
        response = client.get(path)
        text = response.content.decode()
        assert response.status_code == 404 and "Page not found" in text and "URLconf" not in text
    # The API keeps its JSON answers.
    assert client.get("/api/v1/no-such-thing/").status_code == 404


def test_the_server_error_page_is_the_portals_own(rf):
    from django.views.defaults import server_error

    response = server_error(rf.get("/"))
    assert response.status_code == 500
    assert "Sorry, something went wrong" in response.content.decode()


def test_a_review_step_is_swapped_in_place_so_the_page_does_not_jump(client, new_job, olivia):
    job = new_job(S.IN_REVIEW)
    client.force_login(olivia)
    url = reverse("job_decide", args=[job.pk, "safe_people"])
    response = client.post(
        url, {"outcome": "approve", "rationale": ""}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="review-steps"
    )
    body = response.content.decode()
    assert response.status_code == 200 and "HX-Redirect" not in response.headers
    assert body.lstrip().startswith('<div id="review-steps">') and "<html" not in body
    assert "Safe People: decision recorded." in body
    page = client.get(job.get_absolute_url()).content.decode()
    assert 'hx-target="#review-steps"' in page
    assert "Safe People: decision recorded." not in page  # the message was shown once, in the swap

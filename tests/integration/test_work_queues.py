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

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

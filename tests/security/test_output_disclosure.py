"""Findings 5 and 7: before release nobody but the checkers sees the values the flags protect, and every
view of outputs (HTML, API, ZIP) asks the same permission question.

The small cell here is a 3: before release the researcher must see that a threshold rule flagged the
cell at row "18-39", column "male", but never the 3 itself.
"""

import json
import time

import pytest
from django.urls import reverse

from crates.models import Job
from portal.models import Membership
from portal.permissions import token_scopes_for
from portal.services import create_token
from reviews import outputs
from tests import builders

pytestmark = pytest.mark.django_db

S = Job.Status
SAFE = b"age_band,female,male\n18-39,120,131\n40-64,210,198\n"
UNSAFE = b"age_band,female,male\n18-39,120,3\n40-64,210,198\n"


def _api(client, user, path):
    # Privileged people's tokens are made right after a second-factor check, with their roles' scopes.
    _, secret = create_token(
        user, "read", by=user, scopes=token_scopes_for(user), second_factor_at=time.time()
    )
    return client.get(path, headers={"Authorization": f"Bearer {secret}"})


def _status(client, url):
    """GET `url`, reading a streamed file to the end, and return the status code."""
    response = client.get(url)
    if response.streaming:
        b"".join(response.streaming_content)  # read to the end: the client then closes the file
    return response.status_code


def _small(job):
    return job.outputs.get(path__endswith="small.csv")


@pytest.fixture
def checking(new_job, tmp_path):
    job = new_job(S.QUEUED)
    upload = builders.return_results(job, {"small.csv": UNSAFE, "safe.csv": SAFE}, tmp_path=tmp_path)
    outputs.check_outputs(upload.pk)
    job.refresh_from_db()
    assert job.status == S.OUTPUT_REVIEW
    flags = _small(job).sdc["flags"]
    assert any(f["value"] == "3" for f in flags)  # the checkers' evidence keeps the value
    return job


def _flags_in(body, name="small.csv"):
    return next(o for o in body if o["name"] == name)["sdc"]["flags"]


def test_the_api_shows_the_researcher_rules_and_positions_but_never_the_values(client, checking, alice, cam):
    body = _api(client, alice, f"/api/v1/jobs/{checking.pk}/outputs/").json()
    flags = _flags_in(body)
    assert flags and all("value" not in f for f in flags)
    threshold = next(f for f in flags if f["rule"] == "threshold")
    assert threshold["row"] == ["18-39"] and threshold["column"] == "male" and threshold["position"]
    assert threshold["verdict"] == "fail"
    text = json.dumps(body)
    assert '"3"' not in text and " 3 " not in text and "3 is below" not in text
    assert next(o for o in body if o["name"] == "small.csv")["sdc"]["redacted"] is True

    checker = _api(client, cam, f"/api/v1/jobs/{checking.pk}/outputs/").json()
    assert any(f.get("value") == "3" for f in _flags_in(checker))


def test_the_outputs_page_and_table_viewer_show_the_researcher_no_values(client, checking, alice):
    client.force_login(alice)
    page = client.get(reverse("job_outputs", args=[checking.pk])).content.decode()
    assert "threshold" in page and "18-39" in page
    assert "A count is below the minimum cell count." in page
    assert "3 is below" not in page
    viewer = client.get(reverse("output_detail", args=[_small(checking).pk])).content.decode()
    assert "3 is below" not in viewer and ">3<" not in viewer


def test_the_release_certificate_shows_the_researcher_no_values(client, checking, alice, cam, chris):
    small = _small(checking)
    for checker in (cam, chris):  # decided (so there is a certificate) but never released
        outputs.vote(small, "reject", "Too small to release.", by=checker)
    client.force_login(alice)
    response = client.get(reverse("release_certificate", args=[checking.pk]))
    assert response.status_code == 200
    files = next(c for c in response.context if "files" in c)["files"]
    small = next(f for f in files if f["output"].name == "small.csv")
    assert all("value" not in flag and "3" not in flag["message"] for flag in small["sdc"]["flags"])


def test_once_released_the_researcher_sees_the_table_and_its_flags(client, checking, alice, cam, chris):
    small = _small(checking)
    for checker in (cam, chris):
        outputs.vote(small, "approve", "The 3 is a structural count agreed with the TRE.", by=checker)
    outputs.release(small, by=cam)
    body = _api(client, alice, f"/api/v1/jobs/{checking.pk}/outputs/").json()
    assert any(f.get("value") == "3" for f in _flags_in(body))


def test_other_tres_officers_do_not_see_outputs_anywhere(
    client, two_tre_request, olivia, oscar, tre_a, tmp_path
):
    job = builders.approve_all_steps(two_tre_request.jobs.get(tre=tre_a), olivia)
    upload = builders.return_results(job, {"small.csv": UNSAFE}, tmp_path=tmp_path)
    outputs.check_outputs(upload.pk)
    # oscar governs TRE B, where the same request has a job: he sees the request, not TRE A's outputs.
    assert _api(client, oscar, f"/api/v1/requests/{two_tre_request.pk}/").status_code == 200
    assert _api(client, oscar, f"/api/v1/jobs/{job.pk}/outputs/").status_code in (403, 404)
    client.force_login(oscar)
    assert client.get(reverse("job_outputs", args=[job.pk])).status_code == 403
    assert client.get(reverse("output_detail", args=[_small(job).pk])).status_code == 403
    assert client.get(reverse("release_certificate", args=[job.pk])).status_code == 403


def test_the_auditor_sees_the_same_outputs_on_the_page_and_in_the_api_without_values(
    client, checking, audrey
):
    client.force_login(audrey)
    page = client.get(reverse("output_detail", args=[_small(checking).pk]))
    api = _api(client, audrey, f"/api/v1/jobs/{checking.pk}/outputs/")
    assert page.status_code == 200 and api.status_code == 200
    assert all("value" not in f for f in _flags_in(api.json()))


@pytest.fixture
def released(checking, cam, chris):
    for output in checking.outputs.all():
        for checker in (cam, chris):
            outputs.vote(output, "approve", "Checked by hand.", by=checker)
        outputs.release(output, by=cam)
    checking.refresh_from_db()
    assert checking.status == S.RELEASED
    return checking


@pytest.mark.parametrize("state", [Membership.Status.WITHDRAWN, Membership.Status.LAPSED])
def test_published_zip_and_released_files_go_only_to_acting_members(client, released, bob, alice, state):
    client.force_login(alice)
    assert _status(client, reverse("published_crate", args=[released.pk])) == 200
    safe = released.outputs.get(path__endswith="safe.csv")
    assert _status(client, reverse("output_download", args=[safe.pk])) == 200

    Membership.objects.filter(project=released.request.project, person=bob).update(status=state)
    client.force_login(bob)  # the project's lead, no longer an acting member
    assert _status(client, reverse("published_crate", args=[released.pk])) == 403
    assert _status(client, reverse("output_download", args=[safe.pk])) == 403
    api = _api(client, bob, f"/api/v1/jobs/{released.pk}/outputs/")
    assert api.status_code in (403, 404) or all(o["download"] is None for o in api.json())


def test_published_zip_is_refused_to_other_tres_officers(
    client, two_tre_request, olivia, oscar, cam, chris, tre_a, tmp_path
):
    job = builders.approve_all_steps(two_tre_request.jobs.get(tre=tre_a), olivia)
    upload = builders.return_results(job, {"safe.csv": SAFE}, tmp_path=tmp_path)
    outputs.check_outputs(upload.pk)
    output = job.outputs.get()
    outputs.vote(output, "approve", by=cam)
    outputs.vote(output, "approve", by=chris)
    outputs.release(output, by=cam)
    client.force_login(oscar)
    assert _status(client, reverse("published_crate", args=[job.pk])) == 403
    client.force_login(olivia)  # the job's own TRE's officer
    assert _status(client, reverse("published_crate", args=[job.pk])) == 200

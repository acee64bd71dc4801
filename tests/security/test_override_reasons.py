"""Finding 12: approving against an automated check that failed needs a written reason, kept and certified.

Officers decide review steps and checkers vote on files over HTTP (the form and the API); the reason is
stored with the decision or vote and printed on the decision or release certificate.
"""

import time
from datetime import timedelta

import pytest
from django.template import Context
from django.urls import reverse
from django.utils import timezone

from crates.models import Job
from portal.models import Accreditation
from portal.services import create_token
from reviews import outputs
from reviews.models import OutputFile, StepDecision
from tests import builders

pytestmark = pytest.mark.django_db

S = Job.Status
UNSAFE = b"age_band,female,male\n18-39,120,3\n40-64,210,198\n"


def _certificate_html(response, name):
    """The HTML the PDF was made from, as the test client recorded its rendering."""
    template = next(t for t in response.templates if t.name == name)
    context = next(c for c in response.context if "job" in c)
    return template.render(Context(context if isinstance(context, dict) else context.flatten()))


@pytest.fixture
def unmet(new_job, alice):
    """A job in review whose Safe People evidence is not met: alice's accreditation lapsed."""
    job = new_job(S.IN_REVIEW)
    Accreditation.objects.filter(person=alice).update(valid_until=timezone.localdate() - timedelta(days=1))
    return job


def test_the_form_refuses_to_approve_an_unmet_step_without_a_reason(client, unmet, olivia):
    client.force_login(olivia)
    url = reverse("job_decide", args=[unmet.pk, "safe_people"])
    page = client.post(url, {"outcome": "approve", "rationale": " "}, follow=True).content.decode()
    assert "automated check is not met" in page
    assert not StepDecision.objects.filter(job=unmet, step="safe_people").exists()

    reason = "Renewal confirmed by the accrediting body by telephone; certificate to follow."
    client.post(url, {"outcome": "approve", "rationale": reason})
    decision = StepDecision.objects.get(job=unmet, step="safe_people")
    assert decision.rationale == reason and decision.overrides_checks

    response = client.get(reverse("job_certificate", args=[unmet.pk]))
    assert response.content.startswith(b"%PDF")
    html = _certificate_html(response, "reviews/certificate.html")
    assert "Approved although 1 automated check was not met" in html
    assert reason in html


def test_the_api_refuses_to_approve_an_unmet_step_without_a_reason(client, unmet, olivia):
    _, secret = create_token(
        olivia, "review", by=olivia, scopes=["read", "review"], second_factor_at=time.time()
    )
    headers = {"Authorization": f"Bearer {secret}"}
    url = f"/api/v1/jobs/{unmet.pk}/decisions/"
    refused = client.post(
        url, {"step": "safe_people", "outcome": "approve"}, content_type="application/json", headers=headers
    )
    assert refused.status_code == 400
    assert "rationale" in refused.json()["errors"]
    assert not StepDecision.objects.filter(job=unmet).exists()
    given = client.post(
        url,
        {"step": "safe_people", "outcome": "approve", "rationale": "Checked by hand."},
        content_type="application/json",
        headers=headers,
    )
    assert given.status_code == 200, given.content
    assert StepDecision.objects.get(job=unmet).rationale == "Checked by hand."


def test_a_clear_step_is_still_approved_without_a_word(client, new_job, olivia):
    job = new_job(S.IN_REVIEW)
    client.force_login(olivia)
    client.post(reverse("job_decide", args=[job.pk, "safe_people"]), {"outcome": "approve", "rationale": ""})
    assert StepDecision.objects.get(job=job, step="safe_people").overrides_checks is False


@pytest.fixture
def flagged(new_job, tmp_path):
    job = new_job(S.QUEUED)
    upload = builders.return_results(job, {"small.csv": UNSAFE}, tmp_path=tmp_path)
    outputs.check_outputs(upload.pk)
    output = job.outputs.get()
    assert output.sdc_verdict == "fail"
    return output


def test_a_checker_cannot_approve_a_failed_file_without_a_reason(client, flagged, cam, chris):
    client.force_login(cam)
    url = reverse("output_vote", args=[flagged.pk])
    page = client.post(url, {"decision": "approve", "comment": ""}, follow=True).content.decode()
    assert "Write why you approve it anyway" in page
    assert not flagged.votes.exists()

    _, secret = create_token(chris, "check", by=chris, scopes=["read", "check"], second_factor_at=time.time())
    api = client.post(
        f"/api/v1/outputs/{flagged.pk}/votes/",
        {"decision": "approve"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert api.status_code == 400 and "comment" in api.json()["errors"]
    assert not flagged.votes.exists()

    reason = "The small cell is a synthetic test row agreed with the TRE."
    client.post(url, {"decision": "approve", "comment": reason})
    client.force_login(chris)
    client.post(url, {"decision": "approve", "comment": "Agree: " + reason})
    flagged.refresh_from_db()
    assert flagged.status == OutputFile.Status.APPROVED
    assert [v.comment for v in flagged.votes.order_by("pk")] == [reason, "Agree: " + reason]

    response = client.get(reverse("release_certificate", args=[flagged.job_id]))
    assert response.content.startswith(b"%PDF")
    html = _certificate_html(response, "reviews/release_certificate.html")
    assert "approved although the automated checks said fail" in html
    assert reason in html

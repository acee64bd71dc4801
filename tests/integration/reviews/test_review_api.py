"""REST API parity for reviews: an officer reviews to sign-off and a researcher follows and writes back."""

import time

import pytest
from django.urls import reverse

from crates.models import Job
from portal import permissions
from portal import services as portal_services

pytestmark = pytest.mark.django_db


def _headers(user):
    # Every scope the person's roles allow, made right after a second-factor check.
    _, secret = portal_services.create_token(
        user, "api", by=user, days=1, scopes=permissions.token_scopes_for(user), second_factor_at=time.time()
    )
    return {"authorization": f"Bearer {secret}"}


def test_officer_reviews_through_the_api(client, new_job, olivia, alice, oscar):
    job = new_job()
    officer = _headers(olivia)
    queue = client.get(reverse("api_review_queue"), headers=officer).json()
    assert [j["id"] for j in queue["results"]] == [job.pk]
    assert client.get(reverse("api_review_queue"), headers=_headers(oscar)).json()["results"] == []
    assert client.post(reverse("api_job_start", args=[job.pk]), headers=officer).status_code == 200
    detail = client.get(reverse("api_job_detail", args=[job.pk]), headers=officer).json()
    assert set(detail["evidence"]) == {"safe_people", "safe_project", "safe_data", "safe_settings"}
    for step in ("safe_people", "safe_project", "safe_data", "safe_settings", "sign_off"):
        response = client.post(
            reverse("api_job_decide", args=[job.pk]),
            {"step": step, "outcome": "approve", "rationale": ""},
            headers=officer,
            content_type="application/json",
        )
        assert response.status_code == 200, response.content
    assert response.json()["status"] == Job.Status.QUEUED
    researcher = _headers(alice)
    seen = client.get(reverse("api_job_detail", args=[job.pk]), headers=researcher).json()
    assert seen["evidence"] == {} and len(seen["decisions"]) == 5


def test_api_refuses_bad_decisions_clearly(client, new_job, olivia, alice):
    job = new_job("in_review")
    response = client.post(
        reverse("api_job_decide", args=[job.pk]),
        {"step": "safe_people", "outcome": "reject", "rationale": ""},
        headers=_headers(olivia),
        content_type="application/json",
    )
    assert response.status_code == 400 and "rationale" in response.json()["errors"]
    response = client.post(
        reverse("api_job_decide", args=[job.pk]),
        {"step": "safe_people", "outcome": "approve"},
        headers=_headers(alice),
        content_type="application/json",
    )
    assert response.status_code == 403


def test_researcher_writes_and_cancels(client, new_job, alice, bob):
    job = new_job()
    headers = _headers(alice)
    response = client.post(
        reverse("api_job_message", args=[job.pk]),
        {"body": "Dataset added."},
        headers=headers,
        content_type="application/json",
    )
    assert response.status_code == 201
    response = client.post(
        reverse("api_job_cancel", args=[job.pk]),
        {"reason": "No longer needed"},
        headers=headers,
        content_type="application/json",
    )
    assert response.json()["status"] == "cancelled"


def test_strangers_cannot_see_jobs(client, new_job, pat):
    job = new_job()
    assert client.get(reverse("api_job_detail", args=[job.pk]), headers=_headers(pat)).status_code == 404

"""One vocabulary for refusals (portal/errors.py), seen from outside.

The API answers every refusal as application/problem+json (RFC 9457); a page answers a refused form
with the message as a flash message and a redirect back, never a server error.
"""

import time

import pytest
from django.urls import reverse

from crates import dispatch
from crates.transitions import TransitionError
from portal import permissions
from portal import services as portal_services
from portal.errors import Refusal
from reviews.federation import CombineError
from reviews.outputs import OutputError
from reviews.pooling import PoolingError
from reviews.sdc.policy import PolicyError
from reviews.services import ReviewError
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def _headers(user):
    _, secret = portal_services.create_token(
        user, "api", by=user, days=1, scopes=permissions.token_scopes_for(user), second_factor_at=time.time()
    )
    return {"authorization": f"Bearer {secret}"}


def test_every_domain_refusal_is_a_refusal_with_a_status():
    from crates.fivesafes.errors import CrateRefused

    roots = [
        portal_services.ServiceError,
        ReviewError,
        TransitionError,
        OutputError,
        CombineError,
        PolicyError,
        PoolingError,
        dispatch.DispatchError,
    ]
    assert all(issubclass(root, Refusal) for root in roots)
    assert isinstance(CrateRefused("zip.corrupt", "Broken."), Refusal)  # registered by the crates app
    assert dispatch.LeaseConflict("x").status == 409 and dispatch.UploadTooLarge("x").status == 413
    assert TransitionError("x").status == 409 and ReviewError("x").status == 400


def test_a_refused_review_step_is_a_problem_document(client, new_job, olivia):
    job = new_job()  # awaiting review: not in review yet
    path = reverse("api_job_decide", args=[job.pk])
    response = client.post(
        path,
        {"step": "safe_people", "outcome": "approve", "rationale": ""},
        headers=_headers(olivia),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert response.json() == {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": "The job is awaiting review, not in review.",
        "instance": path,
        "code": "refused",
    }


def test_invalid_input_is_a_problem_document_naming_each_field(client, new_job, olivia):
    job = new_job("in_review")
    response = client.post(
        reverse("api_job_decide", args=[job.pk]),
        {"step": "safe_people", "outcome": "reject", "rationale": ""},
        headers=_headers(olivia),
        content_type="application/json",
    )
    body = response.json()
    assert response.status_code == 400 and response["Content-Type"] == PROBLEM
    assert body["code"] == "invalid" and body["status"] == 400 and body["title"] == "Bad Request"
    assert body["errors"] == {"rationale": ["Give the reason; the researcher will see it."]}
    assert "rationale" in body["detail"]


def test_api_permission_and_authentication_errors_are_problem_documents(client, new_job, alice):
    job = new_job("in_review")
    path = reverse("api_job_decide", args=[job.pk])
    refused = client.post(
        path,
        {"step": "safe_people", "outcome": "approve"},
        headers=_headers(alice),
        content_type="application/json",
    )
    assert refused.status_code == 403 and refused["Content-Type"] == PROBLEM
    assert refused.json()["status"] == 403 and refused.json()["detail"]
    anonymous = client.get(reverse("api_review_queue"))
    assert anonymous.status_code in (401, 403) and anonymous["Content-Type"] == PROBLEM
    assert anonymous.json()["status"] == anonymous.status_code


def test_a_refused_page_action_says_why_and_goes_back(client, new_job, olivia):
    job = new_job()  # awaiting review
    sign_in(client, olivia)
    response = client.post(
        reverse("job_decide", args=[job.pk, "safe_people"]),
        {"outcome": "approve", "rationale": ""},
        follow=True,
    )
    assert response.status_code == 200
    assert "The job is awaiting review, not in review." in response.text


def test_a_refused_form_on_a_decorated_page_is_a_message_not_a_server_error(client, registry, olivia, tre_a):
    approval = registry["workflow"].approvals.get(tre=tre_a)
    sign_in(client, olivia)
    detail = reverse("workflow_detail", args=[registry["workflow"].pk])
    response = client.post(
        reverse("workflow_decide", args=[approval.pk]),
        {"decision": "", "rationale": ""},
        headers={"referer": f"http://testserver{detail}"},
    )
    assert response.status_code == 302 and response.url == f"http://testserver{detail}"
    page = client.get(detail)
    assert page.status_code == 200
    assert "This field is required." in page.text

"""Finding 4: `/api/` skipped the second factor for privileged roles. An officer without TOTP signed a
job off through the API with a personal token and with the browser session alike. Now a privileged
session must have passed the second factor, and tokens carry scopes: a token that can review, check,
audit or administer is made only right after a second-factor check and lasts 30 days at most."""

import importlib
import time
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crates.models import Job
from portal import roles, services
from portal.audit import AuditEvent
from portal.models import PersonalToken
from reviews.models import Step
from tests.conftest import _person, sign_in
from tests.dispatch_helpers import bearer

pytestmark = pytest.mark.django_db

S = Job.Status


def _sign_off(client, job, **headers):
    return client.post(
        f"/api/v1/jobs/{job.pk}/start/", content_type="application/json", **headers
    ), client.post(
        f"/api/v1/jobs/{job.pk}/decisions/",
        {"step": Step.SAFE_PEOPLE, "outcome": "approve", "rationale": ""},
        content_type="application/json",
        **headers,
    )


@pytest.fixture
def officer_without_totp(tre_a, admin_user):
    officer = _person("otto")
    services.grant_role(officer, roles.GOVERNANCE_OFFICER, by=admin_user, tre=tre_a)
    return officer


def test_an_officer_without_a_second_factor_cannot_review_through_the_api_session(
    client, officer_without_totp, new_job
):
    job = new_job(S.AWAITING_REVIEW)
    sign_in(client, officer_without_totp)  # the password only: there is no second factor to give
    start, decide = _sign_off(client, job)
    assert start.status_code == 403, start.content
    assert "second factor" in start.json()["detail"]
    assert decide.status_code == 403
    assert client.get(f"/api/v1/jobs/{job.pk}/").status_code == 403
    job.refresh_from_db()
    assert job.status == S.AWAITING_REVIEW


def test_an_officer_without_a_second_factor_cannot_get_a_reviewing_token(
    client, officer_without_totp, new_job
):
    job = new_job(S.AWAITING_REVIEW)
    sign_in(client, officer_without_totp)
    page = client.post(reverse("token_list"), {"name": "sign-offs", "days": 7, "scopes": ["read", "review"]})
    assert page.status_code == 302 and page.url.startswith(reverse("mfa_activate_totp"))  # set it up first
    assert not PersonalToken.objects.filter(user=officer_without_totp).exists()
    with pytest.raises(PermissionDenied, match="Confirm your second factor first"):
        services.create_token(officer_without_totp, "x", by=officer_without_totp, scopes=["review"])
    # A plain token (read and submit) reads, but cannot decide.
    _, secret = services.create_token(officer_without_totp, "plain", by=officer_without_totp)
    start, decide = _sign_off(Client(), job, headers=bearer(secret))
    assert start.status_code == 403 and "review" in start.json()["detail"]
    assert decide.status_code == 403
    job.refresh_from_db()
    assert job.status == S.AWAITING_REVIEW


def test_a_session_signed_in_without_the_second_factor_cannot_act_as_officer(client, olivia, new_job):
    """olivia has TOTP, but this session never passed it (a stolen session cookie, say)."""
    job = new_job(S.AWAITING_REVIEW)
    client.force_login(olivia)
    start, _ = _sign_off(client, job)
    assert start.status_code == 403
    job.refresh_from_db()
    assert job.status == S.AWAITING_REVIEW


def test_an_officer_who_passed_the_second_factor_reviews_through_the_session(client, olivia, new_job):
    job = new_job(S.AWAITING_REVIEW)
    sign_in(client, olivia)
    start, decide = _sign_off(client, job)
    assert start.status_code == 200, start.content
    assert decide.status_code == 200, decide.content
    job.refresh_from_db()
    assert job.status == S.IN_REVIEW


def test_a_reviewing_token_is_made_right_after_the_second_factor_and_lasts_30_days(client, olivia, new_job):
    job = new_job(S.AWAITING_REVIEW)
    sign_in(client, olivia)
    too_long = client.post(reverse("token_list"), {"name": "x", "days": 90, "scopes": ["read", "review"]})
    assert "Choose between 1 and 30 days" in too_long.content.decode()
    page = client.post(reverse("token_list"), {"name": "sign-offs", "days": 30, "scopes": ["read", "review"]})
    token = PersonalToken.objects.get(user=olivia, name="sign-offs")
    assert token.scopes == ["read", "review"]
    assert token.expires_at <= timezone.now() + timedelta(days=30)
    secret = page.context["secret"]
    start, decide = _sign_off(Client(), job, headers=bearer(secret))
    assert start.status_code == 200 and decide.status_code == 200
    created = AuditEvent.objects.filter(verb="token.created").latest("pk")
    assert created.after["scopes"] == ["read", "review"]


def test_a_second_factor_check_older_than_five_minutes_is_not_enough(olivia):
    with pytest.raises(PermissionDenied):
        services.create_token(
            olivia, "late", by=olivia, scopes=["review"], second_factor_at=time.time() - 301
        )
    with pytest.raises(ValidationError):
        services.create_token(
            olivia, "long", by=olivia, scopes=["review"], days=31, second_factor_at=time.time()
        )


def test_a_scope_beyond_the_persons_roles_is_refused(client, alice):
    with pytest.raises(PermissionDenied):
        services.create_token(alice, "x", by=alice, scopes=["check"], second_factor_at=time.time())
    sign_in(client, alice)
    page = client.post(reverse("token_list"), {"name": "x", "days": 7, "scopes": ["read", "check"]})
    assert "is not one of the available choices" in page.content.decode()
    assert not PersonalToken.objects.filter(user=alice).exists()


def test_a_checkers_plain_token_cannot_vote(client, cam, new_job, tmp_path):
    from reviews import outputs
    from tests import builders

    job = new_job(S.QUEUED)
    upload = builders.return_results(job, {"t.csv": b"a,b\nx,20\n"}, tmp_path=tmp_path)
    outputs.check_outputs(upload.pk)
    output = job.outputs.get()
    _, secret = services.create_token(cam, "plain", by=cam)
    answer = client.post(
        f"/api/v1/outputs/{output.pk}/votes/",
        {"decision": "approve"},
        content_type="application/json",
        headers=bearer(secret),
    )
    assert answer.status_code == 403
    assert not output.votes.exists()


def test_tokens_from_before_scopes_keep_only_read_and_submit(olivia):
    token, _ = services.create_token(olivia, "old", by=olivia)
    PersonalToken.objects.filter(pk=token.pk).update(scopes=["read", "submit", "review"])
    migration = importlib.import_module("portal.migrations.0008_token_scopes")
    migration.existing_tokens_read_and_submit(apps, None)
    token.refresh_from_db()
    assert token.scopes == ["read", "submit"]


def test_every_person_facing_api_view_declares_its_scopes():
    """Deny by default: a view without `required_scopes` lets nobody in, and none is left without."""
    from django.urls import get_resolver
    from rest_framework.views import APIView

    from crates.agent_api import AgentAPIView

    missing = []

    def walk(patterns):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns)
                continue
            view = getattr(pattern.callback, "cls", None)
            if view is None or not issubclass(view, APIView) or issubclass(view, AgentAPIView):
                continue
            if view.__module__.startswith("drf_spectacular"):
                continue
            if not getattr(view, "required_scopes", None):
                missing.append(view.__name__)

    walk(get_resolver().url_patterns)
    assert not missing, missing


def test_a_reviewing_token_needs_a_fresh_second_factor_on_the_tokens_page(client, olivia):
    """Signed in long ago: the page refuses a reviewing token and points to the second-factor check."""
    sign_in(client, olivia)
    session = client.session
    for record in session["account_authentication_methods"]:
        record["at"] -= 600  # the sign-in was ten minutes ago
    session.save()
    page = client.post(reverse("token_list"), {"name": "late", "days": 7, "scopes": ["read", "review"]})
    body = page.content.decode()
    assert "Confirm your second factor first" in body
    assert reverse("mfa_reauthenticate") in body
    assert not PersonalToken.objects.filter(user=olivia).exists()


def test_confirming_the_second_factor_again_allows_a_reviewing_token(client, olivia):
    """The tokens page's link: allauth's re-authentication with the TOTP code, then the token."""
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
    from django.core.cache import cache

    sign_in(client, olivia)
    session = client.session
    for record in session["account_authentication_methods"]:
        record["at"] -= 600
    session.save()
    confirm = f"{reverse('mfa_reauthenticate')}?next={reverse('token_list')}"
    assert client.get(confirm).status_code == 200
    cache.clear()  # the sign-in above used this window's code
    code = format_hotp_value(hotp_value("JBSWY3DPEHPK3PXP", int(time.time()) // 30))
    answer = client.post(confirm, {"code": code})
    assert answer.status_code == 302 and answer.url == reverse("token_list")
    page = client.post(reverse("token_list"), {"name": "fresh", "days": 7, "scopes": ["read", "review"]})
    assert page.context["secret"], page.content.decode()[:2000]
    assert PersonalToken.objects.get(user=olivia, name="fresh").scopes == ["read", "review"]

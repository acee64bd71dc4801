"""Sign-in, MFA for privileged roles, personal API tokens."""

import time
from datetime import timedelta

import pytest
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.urls import reverse
from django.utils import timezone

from portal import roles, services
from portal.models import PersonalToken
from tests import factories
from tests.conftest import _person

pytestmark = pytest.mark.django_db


def test_signup_makes_a_researcher(client):
    response = client.post(
        reverse("account_signup"),
        {
            "email": "new@example.org",
            "password1": "a long enough passphrase",
            "password2": "a long enough passphrase",
        },
    )
    assert response.status_code == 302
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(email="new@example.org")
    assert list(user.groups.values_list("name", flat=True)) == [roles.RESEARCHER]
    assert user.profile is not None


def test_officer_without_a_second_factor_must_set_one_up(client, tre_a, admin_user):
    officer = _person("newofficer")
    services.grant_role(officer, roles.GOVERNANCE_OFFICER, by=admin_user, tre=tre_a)
    client.force_login(officer)
    response = client.get(reverse("approvals_queue", args=[tre_a.slug]))
    assert response.status_code == 302
    assert response.url.startswith(reverse("mfa_activate_totp"))
    # The set-up page itself stays reachable (allauth asks for the password again first).
    setup = client.get(reverse("mfa_activate_totp"), follow=True)
    assert setup.status_code == 200
    assert setup.redirect_chain[-1][0].startswith(reverse("account_reauthenticate"))


@pytest.mark.parametrize("role", [roles.OUTPUT_CHECKER, roles.AUDITOR, roles.FEDERATION_ADMIN])
def test_other_privileged_roles_need_mfa_too(client, role):
    user = _person(f"p-{role}", role)
    client.force_login(user)
    assert client.get(reverse("dashboard")).url.startswith(reverse("mfa_activate_totp"))


def test_researchers_do_not_need_mfa(client, alice):
    client.force_login(alice)
    assert client.get(reverse("dashboard")).status_code == 200


def test_sign_in_with_password_then_totp(client, olivia):
    olivia.set_password("correct horse battery staple")
    olivia.save()
    from allauth.account.models import EmailAddress

    EmailAddress.objects.create(user=olivia, email=olivia.email, verified=True, primary=True)
    response = client.post(
        reverse("account_login"), {"login": olivia.email, "password": "correct horse battery staple"}
    )
    assert response.url == reverse("mfa_authenticate")
    code = format_hotp_value(hotp_value("JBSWY3DPEHPK3PXP", int(time.time()) // 30))
    response = client.post(reverse("mfa_authenticate"), {"code": code})
    assert response.status_code == 302
    assert client.get(reverse("dashboard")).status_code == 200


def test_failed_logins_are_rate_limited(client, settings, alice):
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "3/m/ip"}
    for _ in range(3):
        client.post(reverse("account_login"), {"login": alice.email, "password": "wrong"})
    response = client.post(reverse("account_login"), {"login": alice.email, "password": "wrong"})
    assert "Too many failed login attempts" in response.content.decode()


# --- API tokens ----------------------------------------------------------------------------


def _bearer(secret):
    return {"authorization": f"Bearer {secret}"}


def test_api_needs_a_token(client):
    assert client.get(reverse("api_me")).status_code in (401, 403)


def test_revoked_and_expired_tokens_are_refused(client, alice):
    token, secret = services.create_token(alice, "t", by=alice, days=1)
    assert client.get(reverse("api_me"), headers=_bearer(secret)).status_code == 200
    PersonalToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(reverse("api_me"), headers=_bearer(secret)).status_code == 401
    token2, secret2 = services.create_token(alice, "t2", by=alice, days=1)
    services.revoke_token(token2, by=alice)
    response = client.get(reverse("api_me"), headers=_bearer(secret2))
    assert response.status_code == 401
    assert "expired or revoked" in response.json()["detail"]


def test_unknown_token_is_refused(client):
    assert client.get(reverse("api_me"), headers=_bearer("fsp_nonsense")).status_code == 401


def test_token_of_an_inactive_user_is_refused(client, alice):
    _, secret = services.create_token(alice, "t", by=alice, days=1)
    alice.is_active = False
    alice.save()
    assert client.get(reverse("api_me"), headers=_bearer(secret)).status_code == 401


def test_api_lists_only_visible_projects(client, project, alice):
    other = factories.ProjectFactory()
    _, secret = services.create_token(alice, "t", by=alice, days=1)
    data = client.get(reverse("api_project_list"), headers=_bearer(secret)).json()
    identifiers = [p["identifier"] for p in data["results"]]
    assert identifiers == [project.identifier]
    assert (
        client.get(
            reverse("api_project_detail", args=[other.identifier]), headers=_bearer(secret)
        ).status_code
        == 404
    )
    detail = client.get(
        reverse("api_project_detail", args=[project.identifier]), headers=_bearer(secret)
    ).json()
    assert {m["person"] for m in detail["memberships"]} == {"alice@example.org", "bob@example.org"}


def test_openapi_schema_is_served_and_valid(client):
    from drf_spectacular.validation import validate_schema

    response = client.get(reverse("schema"), {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    validate_schema(schema)
    assert "/api/v1/projects/" in schema["paths"]
    assert "personalToken" in schema["components"]["securitySchemes"]

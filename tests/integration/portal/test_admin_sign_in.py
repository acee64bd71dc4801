"""Finding 3: `/admin/login/` skipped the second factor and the rate limits. Now the admin site has no
sign-in of its own: it sends people to the portal's sign-in, and opens only to staff whose session
passed the second factor."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tests.conftest import _person, sign_in

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def test_admin_login_has_no_password_form_of_its_own(client, admin_user):
    page = client.get("/admin/login/?next=/admin/portal/tre/")
    assert page.status_code == 302
    assert page.url.startswith(reverse("account_login"))
    assert "next=%2Fadmin%2Fportal%2Ftre%2F" in page.url
    # The right password posted to the old form signs nobody in.
    answer = client.post("/admin/login/", {"username": "admin", "password": PASSWORD, "next": "/admin/"})
    assert answer.status_code == 302 and answer.url.startswith(reverse("account_login"))
    assert client.get("/admin/").status_code == 302
    assert "_auth_user_id" not in client.session


def test_thirty_wrong_passwords_at_the_admin_sign_in_are_limited(client, settings, admin_user):
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key"}  # production's limits
    for _ in range(30):
        answer = client.post("/admin/login/", {"username": "admin", "password": "wrong"}, follow=True)
        # Whatever is posted there ends on the portal's sign-in page, signed out.
        assert answer.redirect_chain[0][0].startswith(reverse("account_login"))
        client.post(reverse("account_login"), {"login": admin_user.email, "password": "wrong"})
    answer = client.post(reverse("account_login"), {"login": admin_user.email, "password": PASSWORD})
    # Limited: even the right password is refused now (a 429, or the form's "too many" message).
    assert answer.status_code == 429 or "Too many failed login attempts" in answer.content.decode()
    assert "_auth_user_id" not in client.session


def test_staff_without_a_second_factor_cannot_enter_the_admin(client):
    staff = _person("stan")
    staff.is_staff = True
    staff.save()
    sign_in(client, staff)
    answer = client.get("/admin/", follow=True)
    assert answer.redirect_chain[-1][0].startswith(reverse("mfa_activate_totp")) or (
        reverse("account_reauthenticate") in answer.redirect_chain[-1][0]
    )
    assert "Site administration" not in answer.content.decode()


def test_a_password_alone_does_not_open_the_admin(client, admin_user):
    """A session that never passed the second factor (say, a stolen session from a password-only
    sign-in elsewhere) is sent to the second-factor check first."""
    client.force_login(admin_user)
    answer = client.get("/admin/")
    assert answer.status_code == 302
    follow = client.get(answer.url)
    assert follow.status_code == 302 and follow.url.startswith(reverse("mfa_reauthenticate"))


def test_staff_who_passed_the_second_factor_enter_the_admin(client, admin_user):
    sign_in(client, admin_user)
    page = client.get("/admin/")
    assert page.status_code == 200
    assert "Site administration" in page.content.decode()


def test_signed_in_people_who_are_not_staff_are_refused(client, alice):
    sign_in(client, alice)
    assert client.get("/admin/login/").status_code == 403
    assert get_user_model().objects.get(pk=alice.pk).is_staff is False

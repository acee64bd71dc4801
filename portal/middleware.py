from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse

from portal.permissions import needs_mfa_setup

# Paths a user without a second factor may still reach: sign-in, MFA set-up, static files.
_OPEN_PREFIXES = ("/accounts/", "/static/", "/public/", "/api/")


class RequireMFAMiddleware:
    """Officers, output checkers, auditors and admins must set up TOTP before acting."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(_OPEN_PREFIXES)
            and request.path != "/"
            and needs_mfa_setup(user)
        ):
            return redirect(f"{reverse('mfa_activate_totp')}?next={request.path}")
        return self.get_response(request)


def mfa_required_roles():
    return set(settings.PORTAL_MFA_REQUIRED_ROLES)

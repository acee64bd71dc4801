from django.conf import settings
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.views.defaults import page_not_found

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


class PlainNotFoundMiddleware:
    """People see the portal's own "page not found" page, even when DEBUG is on (as in the demo).

    Django shows its technical 404 page (URL patterns and all) with DEBUG on; the API keeps its JSON.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            settings.DEBUG
            and response.status_code == 404
            and not request.path.startswith(("/api/", "/static/"))
            and response.get("Content-Type", "").startswith("text/html")
            and not getattr(response, "portal_page", False)
        ):
            return page_not_found(request, Http404())
        return response

"""The admin site behind the portal's one sign-in.

Django's own admin login form checks a password and nothing else: no second factor, no rate limit.
Here it is replaced: `/admin/login/` sends people to the portal's sign-in (allauth, with its rate
limits and the second factor), and the admin opens only to staff whose session passed the second
factor. Staff without one are sent to set it up first.
"""

from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse

from portal.accounts import passed_second_factor


class PortalAdminSite(admin.AdminSite):
    site_header = "Five Safes Portal administration"
    site_title = "Five Safes Portal admin"

    def has_permission(self, request):
        return super().has_permission(request) and passed_second_factor(request)

    def login(self, request, extra_context=None):
        """Never a password form here: hand over to the portal's sign-in or its second-factor check."""
        next_url = request.GET.get("next") or reverse("admin:index", current_app=self.name)
        if not next_url.startswith("/admin/"):
            next_url = reverse("admin:index", current_app=self.name)
        user = request.user
        if not user.is_authenticated:
            return redirect(f"{reverse('account_login')}?{urlencode({'next': next_url})}")
        if not (user.is_active and user.is_staff):
            raise PermissionDenied("Your account cannot use the admin site.")
        from allauth.mfa.models import Authenticator

        if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
            return redirect(f"{reverse('mfa_activate_totp')}?{urlencode({'next': next_url})}")
        if passed_second_factor(request):
            return redirect(next_url)
        return redirect(f"{reverse('mfa_reauthenticate')}?{urlencode({'next': next_url})}")

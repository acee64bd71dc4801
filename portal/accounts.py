"""django-allauth glue: new sign-ups are researchers; what a session proved at sign-in.

allauth keeps, in the session, a record of every way the person proved who they are (password, the
second factor at sign-in or on re-authentication). The admin site and privileged API work ask
`passed_second_factor` instead of trusting a bare login.
"""

import time

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.authentication import get_authentication_records
from django.contrib.auth.models import Group

from portal import roles

# How recent a second-factor check must be before a privileged API token is created (seconds).
RECENT_SECOND_FACTOR_SECONDS = 5 * 60


class AccountAdapter(DefaultAccountAdapter):
    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=commit)
        if commit:
            group, _ = Group.objects.get_or_create(name=roles.RESEARCHER)
            user.groups.add(group)
        return user


def second_factor_at(request):
    """When this session last passed the second factor (a Unix time), or None if it never did."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not hasattr(request, "session"):
        return None
    times = [
        record.get("at")
        for record in get_authentication_records(request, user)
        if record.get("method") == "mfa" and isinstance(record.get("at"), int | float)
    ]
    return max(times, default=None)


def passed_second_factor(request, within=None):
    """Whether this session passed the second factor (within the last `within` seconds, if given)."""
    at = second_factor_at(request)
    if at is None:
        return False
    return within is None or time.time() - at <= within

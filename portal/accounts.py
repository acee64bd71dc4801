"""django-allauth glue: new sign-ups are researchers."""

from allauth.account.adapter import DefaultAccountAdapter
from django.contrib.auth.models import Group

from portal import roles


class AccountAdapter(DefaultAccountAdapter):
    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=commit)
        if commit:
            group, _ = Group.objects.get_or_create(name=roles.RESEARCHER)
            user.groups.add(group)
        return user

"""REST API authentication: researchers' personal tokens (agents have their own, in crates.api)."""

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from portal.models import PersonalToken


class PersonalTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer fsp_...`: a personal token, usable until it expires or is revoked."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        if scheme.lower() not in ("bearer", "token") or not key.startswith(PersonalToken.PREFIX):
            return None
        token = (
            PersonalToken.objects.select_related("user")
            .filter(key_hash=PersonalToken.hash_key(key.strip()))
            .first()
        )
        if token is None or not token.is_usable or not token.user.is_active:
            raise exceptions.AuthenticationFailed("The token is unknown, expired or revoked.")
        now = timezone.now()
        # Write last-use at most once a minute to keep busy clients cheap.
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            PersonalToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request):
        return self.keyword


class PersonalTokenScheme(OpenApiAuthenticationExtension):
    target_class = PersonalTokenAuthentication
    name = "personalToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token (fsp_...), created on the Tokens page. A token carries "
            "scopes: `read` and `submit` for everyone; `review`, `check`, `audit` and `admin` by role, made "
            "only right after a second-factor check and valid for 30 days at most. Each operation names "
            "the scope it needs. A privileged person's browser session is accepted only once it has "
            "passed the second factor.",
        }

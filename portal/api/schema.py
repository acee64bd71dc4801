"""OpenAPI description of the error answers every person-facing endpoint can give, beside its own."""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, in words.")


NOT_AUTHENTICATED = OpenApiResponse(
    ErrorDetailSerializer, description="No credentials, or the token is unknown, expired or revoked."
)
FORBIDDEN = OpenApiResponse(
    ErrorDetailSerializer,
    description="Not allowed for this person (role, TRE or project), a token without the scope the "
    "operation needs, a privileged person's browser session that has not passed the second factor, or a "
    "browser request without its CSRF token.",
)
NOT_FOUND = OpenApiResponse(
    ErrorDetailSerializer, description="No such object that this person can see, or no such page."
)
INVALID = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="The request does not validate, or the change is refused: messages by field name "
    '(`"detail"` for the request as a whole).',
)


class PersonAutoSchema(AutoSchema):
    """Adds the 400, 401, 403 and 404 answers DRF and the portal's checks give, where they can occur.

    401 everywhere (every endpoint needs a person); 403 everywhere (token scopes, the second factor of
    privileged sessions) and 400 where a request changes something (the portal's permission checks,
    CSRF, validation); 404 where the path names an object or the list is
    paginated. An answer an endpoint documents itself is kept.
    """

    def get_description(self):
        """The operation's own description, then the token scopes it needs (portal.api.permissions)."""
        from portal.api.permissions import scopes_needed

        description = super().get_description() or ""
        needed = scopes_needed(self.view, self.method)
        if needed:
            names = " or ".join(f"`{scope.value if hasattr(scope, 'value') else scope}`" for scope in needed)
            description = f"{description}\n\nToken scope: {names}.".strip()
        return description

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        changes = self.method not in ("GET", "HEAD", "OPTIONS")
        paginated = self.method == "GET" and getattr(self.view, "pagination_class", None) is not None
        errors = {"401": NOT_AUTHENTICATED, "403": FORBIDDEN}
        if changes:
            errors["400"] = INVALID
        if "{" in self.path or paginated:
            errors["404"] = NOT_FOUND
        for code, answer in errors.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(answer, code, direction=direction)
        return dict(sorted(responses.items()))

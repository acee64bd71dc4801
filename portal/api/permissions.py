"""Deny by default: every person-facing API view names the token scope each of its methods needs.

A view declares `required_scopes = {"GET": ("read",), "POST": ("submit",)}` (any one of the scopes
listed will do); a method it does not name, or a view that names none, is refused. A personal token
must carry one of the scopes. A browser session carries no scopes: it may do what the person may,
but a privileged person's session (officer, checker, auditor, admin) only after it passed the second
factor. What the person may then do is still decided by `*/permissions.py` inside the view.
"""

from rest_framework.permissions import BasePermission

from portal import permissions
from portal.accounts import passed_second_factor
from portal.models import PersonalToken, TokenScope

READ = {"GET": (TokenScope.READ,)}


def scopes_needed(view, method):
    """The scopes that let `method` through on `view` (empty: nobody)."""
    declared = getattr(view, "required_scopes", None) or {}
    if method in ("HEAD", "OPTIONS"):
        method = "GET"
    return tuple(declared.get(method, ()))


class RequiredScope(BasePermission):
    message = "This operation is not open to you."

    def has_permission(self, request, view):
        needed = scopes_needed(view, request.method)
        user = request.user
        if not needed or user is None or not user.is_authenticated:
            return False
        if isinstance(request.auth, PersonalToken):
            if set(needed) & set(request.auth.scopes):
                return True
            names = " or ".join(f'"{TokenScope(s).value}"' for s in needed)
            self.message = (
                f"This token cannot do this: it needs the {names} scope. Create a token that has it."
            )
            return False
        if permissions.is_privileged(user) and not passed_second_factor(request._request):
            self.message = (
                "Sign in with your second factor before using the API as an officer, output checker, "
                "auditor or admin."
            )
            return False
        return True

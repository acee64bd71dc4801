"""Small helpers shared by the portal's views."""

from functools import wraps

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme

from portal.services import ServiceError


def paginate(request, queryset, per_page=25):
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def domain_errors_as_messages(view):
    """Turn a refused action into a flash message and a redirect back, never a server error."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except (ServiceError, ValidationError) as exc:
            messages.error(request, _message_of(exc))
        except PermissionDenied as exc:
            if request.method != "POST":
                raise
            messages.error(request, str(exc) or "You are not allowed to do that.")
        return redirect(safe_next(request))

    return wrapper


def safe_next(request, default="dashboard"):
    """Where to go back to: the form's `next` or the referring page, if it is on this site."""
    for candidate in (request.POST.get("next"), request.GET.get("next"), request.headers.get("referer")):
        if candidate and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return candidate
    return default


def _message_of(exc):
    if isinstance(exc, ValidationError):
        if hasattr(exc, "message_dict"):
            return " ".join(m for msgs in exc.message_dict.values() for m in msgs)
        return " ".join(exc.messages)
    return str(exc)


def add_form_errors(form, exc):
    """Put a service's ValidationError onto the form it came from."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)

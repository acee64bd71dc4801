"""Small helpers shared by the portal's views."""

from functools import wraps

from django.core.paginator import Paginator
from django.utils.http import url_has_allowed_host_and_scheme

from portal.errors import is_refusal, refused_on_page


def paginate(request, queryset, per_page=25):
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


def domain_errors_as_messages(view):
    """Turn a refused action into a flash message and a redirect back, never a server error: the same
    answer RefusalMiddleware gives (portal/errors.py), given inside the view."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except Exception as exc:
            if not is_refusal(exc, request):
                raise
            return refused_on_page(request, exc)

    return wrapper


def safe_next(request, default="dashboard"):
    """Where to go back to: the form's `next` or the referring page, if it is on this site."""
    for candidate in (request.POST.get("next"), request.GET.get("next"), request.headers.get("referer")):
        if candidate and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return candidate
    return default


def add_form_errors(form, exc):
    """Put a service's ValidationError onto the form it came from."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)

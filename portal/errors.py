"""One vocabulary for refusals: a rule of the portal said no.

Every domain refusal (`ServiceError`, `ReviewError`, `TransitionError`, `OutputError`, `CombineError`,
`DispatchError`, `PolicyError`, ...) is a `Refusal`: a message for the person who asked, an HTTP status
and a stable `code` for machines. The crate library's `CrateRefused` stays free of the portal and is
registered as a refusal by the crates app. Two handlers turn any uncaught refusal into an answer:

- pages: `RefusalMiddleware` (a form's POST: the message as a flash message and back to the page it
  came from; anything else: `templates/refused.html` with the status);
- the API: `api_exception_handler` (DRF's EXCEPTION_HANDLER) answers every error, refusals and DRF's
  own, as `application/problem+json` (RFC 9457: type, title, status, detail, instance), with `code`
  and, for a request that does not validate, `errors` (the messages of each field) as extension members.

This module imports nothing of Django at import time that a lower package could not use: the crates
library and the SDC engine may subclass `Refusal`.
"""

from abc import ABCMeta
from http import HTTPStatus

PROBLEM_JSON = "application/problem+json"


class Refusal(Exception, metaclass=ABCMeta):  # noqa: B024  (ABCMeta only so foreign roots can register)
    """A rule said no. `message` is for the person who asked; `status` the HTTP status of the answer;
    `code` a stable identifier machines may branch on."""

    status = HTTPStatus.BAD_REQUEST
    code = "refused"

    def __init__(self, message="", *, code=None, status=None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status


def status_of(exc):
    return int(getattr(exc, "status", HTTPStatus.BAD_REQUEST))


def message_of(exc):
    """The sentence for the person: a refusal's message, or a Django ValidationError's messages."""
    if hasattr(exc, "message_dict"):
        return " ".join(m for msgs in exc.message_dict.values() for m in msgs)
    if hasattr(exc, "messages"):
        return " ".join(exc.messages)
    return str(getattr(exc, "message", "") or exc)


def problem(status, detail, *, code=None, instance=None, **extra):
    """An RFC 9457 problem document (as a dict)."""
    status = int(status)
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if code:
        body["code"] = code
    body.update(extra)
    return body


# --- The API: one DRF exception handler -----------------------------------------------------------


def _summary(fields):
    return "; ".join(
        f"{name}: {' '.join(map(str, messages if isinstance(messages, list) else [messages]))}"
        for name, messages in fields.items()
    )


def api_exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every error of the API as application/problem+json."""
    from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
    from django.core.exceptions import ValidationError as DjangoValidationError
    from rest_framework import exceptions
    from rest_framework.response import Response
    from rest_framework.views import exception_handler, set_rollback

    request = context.get("request")
    instance = request.path if request is not None else None
    extra = {}
    if isinstance(exc, Refusal):
        set_rollback()
        status, detail, code = status_of(exc), message_of(exc), getattr(exc, "code", None)
        if getattr(exc, "where", None):
            extra["where"] = exc.where
        response = Response(status=status)
    else:
        if isinstance(exc, DjangoValidationError):
            exc = exceptions.ValidationError(
                exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
            )
        elif isinstance(exc, DjangoPermissionDenied):
            exc = exceptions.PermissionDenied(str(exc) or None)
        response = exception_handler(exc, context)
        if response is None:
            return None  # not an API error: a server error, left to Django
        status, data = response.status_code, response.data
        if isinstance(exc, exceptions.ValidationError):
            fields = data if isinstance(data, dict) else {"non_field_errors": data}
            if set(fields) == {"detail"}:
                only = fields["detail"]
                detail = " ".join(map(str, only if isinstance(only, list) else [only]))
            else:
                detail = f"The request does not validate ({_summary(fields)})."
                extra = {"errors": fields}
            code = "invalid"
        else:
            detail = data.get("detail", "") if isinstance(data, dict) else data
            code = getattr(detail, "code", None)
            detail = str(detail)
    response.data = problem(status, detail, code=code, instance=instance, **extra)
    response.content_type = PROBLEM_JSON
    return response


def problem_json_for_errors(result, generator, request, public):
    """drf-spectacular postprocessing hook: the schema says errors come as application/problem+json."""
    for path in result.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses") if isinstance(operation, dict) else None
            for status, answer in (responses or {}).items():
                content = answer.get("content") if isinstance(answer, dict) else None
                if str(status)[:1] in "45" and content and "application/json" in content:
                    content[PROBLEM_JSON] = content.pop("application/json")
    return result


# --- Pages: one answer, given by one middleware ------------------------------------------------------


def refused_on_page(request, exc):
    """The page's answer to a refusal (or to a Django ValidationError or PermissionDenied): a form's
    POST gets the message as a flash message and goes back where it came from; anything else gets
    templates/refused.html with the status."""
    from django.contrib import messages
    from django.core.exceptions import PermissionDenied
    from django.shortcuts import redirect, render

    from portal.views.helpers import safe_next

    text = message_of(exc) or "You are not allowed to do that."
    if request.method == "POST":
        messages.error(request, text)
        return redirect(safe_next(request))
    status = HTTPStatus.FORBIDDEN if isinstance(exc, PermissionDenied) else status_of(exc)
    return render(
        request, "refused.html", {"message": text, "title": HTTPStatus(status).phrase}, status=status
    )


def is_refusal(exc, request):
    """Whether the page handler answers `exc`: any refusal or invalid input; a PermissionDenied only on a
    form's POST (a page one may not see stays Django's 403)."""
    from django.core.exceptions import PermissionDenied, ValidationError

    if isinstance(exc, Refusal | ValidationError):
        return True
    return isinstance(exc, PermissionDenied) and request.method == "POST"


class RefusalMiddleware:
    """An uncaught refusal on a page is answered by `refused_on_page`, never as a server error. The API
    (under /api/) answers through `api_exception_handler` instead. A PermissionDenied is not turned into
    a flash message here: a page or form one may not use answers 403 (templates/403.html keeps the
    message); only views that opt in with `domain_errors_as_messages` send a refused POST back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exc):
        from django.core.exceptions import PermissionDenied

        if request.path.startswith("/api/") or isinstance(exc, PermissionDenied):
            return None
        if not is_refusal(exc, request):
            return None
        return refused_on_page(request, exc)

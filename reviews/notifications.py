"""Who hears about what. Every notification is listed in the portal; e-mail follows each person's choices.

E-mails are sent by a django-q2 task after the transaction commits; the Notification row is the outbox.
"""

import unicodedata

from django.conf import settings
from django.db import transaction

from crates import explain
from portal.permissions import checkers_of, officers_of  # noqa: F401  (who hears about what)
from reviews.models import Notification

Kind = Notification.Kind


def wants_email(user, kind):
    prefs = getattr(getattr(user, "profile", None), "notification_preferences", None) or {}
    return bool(prefs.get(kind, True))


def one_line(text, limit=200):
    """Text fit for an e-mail subject: any line break, tab or other control character becomes a space.

    Titles come from crates and forms, so they may hold newlines, which an e-mail header cannot carry.
    """
    text = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in str(text or ""))
    return " ".join(text.split())[:limit]


def notify(users, kind, subject, body="", url=""):
    """Create one notification per distinct active user and queue the e-mails they asked for."""
    subject = one_line(subject)
    created = []
    seen = set()
    for user in users:
        if user is None or user.pk in seen or not user.is_active:
            continue
        seen.add(user.pk)
        email = bool(wants_email(user, kind) and user.email)
        notification = Notification.objects.create(
            recipient=user, kind=kind, subject=subject, body=body, url=url, email_wanted=email
        )
        created.append(notification)
        if email:
            transaction.on_commit(lambda pk=notification.pk: _enqueue_email(pk))
    return created


def _enqueue_email(notification_id):
    from django_q.tasks import async_task

    async_task(
        "reviews.tasks.send_notification_email", notification_id, task_name=f"notify-{notification_id}"
    )


def _researchers(job):
    return [job.request.submitter, job.request.project.lead]


def job_url(job):
    return f"{settings.PORTAL_BASE_URL.rstrip('/')}{job.get_absolute_url()}"


def review_needed(job):
    notify(
        officers_of(job.tre),
        Kind.REVIEW,
        f"New request to review at {job.tre}: {job.request.title}",
        f"{job.request.submitter.email} submitted version {job.version.number} for {job.request.project.identifier}.",
        job_url(job),
    )


def decision_made(job, subject, rationale=""):
    notify(_researchers(job), Kind.DECISION, subject, rationale, job_url(job))


def message_posted(message):
    job = message.job
    if message.author_id in {u.pk for u in _researchers(job)} or message.author_id in set(
        job.request.project.memberships.values_list("person_id", flat=True)
    ):
        recipients = officers_of(job.tre)
    else:
        recipients = _researchers(job)
    recipients = [u for u in recipients if u.pk != message.author_id]
    notify(
        recipients,
        Kind.MESSAGE,
        f"New message on {job.request.title} at {job.tre}",
        message.body,
        job_url(job),
    )


def job_suspended(job, reasons):
    notify(
        [*_researchers(job), *officers_of(job.tre)],
        Kind.SUSPENSION,
        f"Suspended at {job.tre}: {job.request.title}",
        "\n".join(reasons),
        job_url(job),
    )


def job_resumed(job):
    notify(
        [*_researchers(job), *officers_of(job.tre)],
        Kind.SUSPENSION,
        f"Resumed at {job.tre}: {job.request.title}",
        "The reason for the suspension was resolved.",
        job_url(job),
    )


def job_failed(job):
    """The researchers hear at once, in the portal and by e-mail, what failed and what to do."""
    why = explain.failure(job)
    body = f"{why.what}\n\nWhat to do: {why.next}"
    if why.detail:
        body += f"\n\nThe message from {job.tre}: {why.detail}"
    notify(_researchers(job), Kind.DECISION, f"Failed at {job.tre}: {job.request.title}", body, job_url(job))

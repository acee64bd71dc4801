"""Background work for reviews (django-q2). Tasks take ids, claim their row first, and are idempotent."""

import logging

from django.core.mail import send_mail
from django.utils import timezone

from reviews import notifications, services
from reviews.models import Notification

log = logging.getLogger(__name__)


def send_notification_email(notification_id):
    # Claim the outbox row; a retry or a second worker finds it already claimed and stops.
    claimed = Notification.objects.filter(pk=notification_id, emailed_at__isnull=True).update(
        emailed_at=timezone.now()
    )
    if not claimed:
        return "already sent"
    notification = Notification.objects.select_related("recipient").get(pk=notification_id)
    body = notification.body
    if notification.url:
        body = f"{body}\n\n{notification.url}".strip()
    try:
        send_mail(notifications.one_line(notification.subject), body, None, [notification.recipient.email])
    except Exception:
        # Release the claim so the retry can send it.
        Notification.objects.filter(pk=notification_id).update(emailed_at=None)
        raise
    return "sent"


def resend_lost_emails(now=None):
    """Every few minutes: queue again the e-mails still unsent well after their notification was made.

    The Redis broker keeps no receipt of a task handed to a worker, so a worker killed before sending
    (or a web process killed between the commit and the enqueue) loses the e-mail's task; the outbox row
    keeps it wanted. A failed send releases its claim and is found here too. The send claims its row
    first, so a task that is merely slow and a redo never both send.
    """
    from datetime import timedelta

    from django.conf import settings

    from reviews.notifications import _enqueue_email

    now = now or timezone.now()
    waited = timedelta(
        seconds=int(getattr(settings, "PORTAL_EMAIL_RETRY_SECONDS", settings.Q_CLUSTER["retry"]))
    )
    lost = list(
        Notification.objects.filter(email_wanted=True, emailed_at__isnull=True, created_at__lt=now - waited)
        .order_by("pk")
        .values_list("pk", flat=True)[:500]
    )
    for pk in lost:
        _enqueue_email(pk)
    if lost:
        log.warning("E-mails overdue, queued again: notifications %s", lost)
    return lost


def sweep_suspensions():
    suspended, resumed = services.sweep_suspensions()
    log.info("Suspended %d jobs, resumed %d", len(suspended), len(resumed))
    return {"suspended": len(suspended), "resumed": len(resumed)}


def check_outputs(upload_id):
    from reviews import outputs

    job = outputs.check_outputs(upload_id)
    return job.status if job is not None else "skipped"

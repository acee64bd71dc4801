"""Background work for reviews (django-q2). Tasks take ids, claim their row first, and are idempotent."""

import logging

from django.core.mail import send_mail
from django.utils import timezone

from reviews import services
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
        send_mail(notification.subject, body, None, [notification.recipient.email])
    except Exception:
        # Release the claim so the retry can send it.
        Notification.objects.filter(pk=notification_id).update(emailed_at=None)
        raise
    return "sent"


def sweep_suspensions():
    suspended, resumed = services.sweep_suspensions()
    log.info("Suspended %d jobs, resumed %d", len(suspended), len(resumed))
    return {"suspended": len(suspended), "resumed": len(resumed)}


def check_outputs(upload_id):
    from reviews import outputs

    job = outputs.check_outputs(upload_id)
    return job.status if job is not None else "skipped"

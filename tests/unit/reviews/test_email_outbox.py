"""The notification e-mail outbox: an e-mail a worker lost is queued again, never sent twice."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from reviews import notifications, tasks
from reviews.models import Notification

pytestmark = pytest.mark.django_db


def _age(notification, seconds):
    Notification.objects.filter(pk=notification.pk).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_the_outbox_records_who_wants_an_email(alice, bob):
    bob.profile.notification_preferences = {"message": False}
    bob.profile.save()
    wanted, unwanted = notifications.notify([alice, bob], "message", "A message")
    assert (wanted.email_wanted, unwanted.email_wanted) == (True, False)


def test_a_lost_email_is_queued_again_and_sent_once(alice, bob, settings, django_capture_on_commit_callbacks):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": True}
    settings.PORTAL_EMAIL_RETRY_SECONDS = 600
    # Made outside the on-commit hook: as if the worker holding its task had been killed.
    lost = Notification.objects.create(recipient=alice, kind="message", subject="Lost", email_wanted=True)
    recent = Notification.objects.create(recipient=alice, kind="message", subject="Recent", email_wanted=True)
    unwanted = Notification.objects.create(recipient=bob, kind="message", subject="Not wanted")
    for notification in (lost, unwanted):
        _age(notification, 3600)
    _age(recent, 60)

    assert tasks.resend_lost_emails() == [lost.pk]
    assert [m.subject for m in mail.outbox] == ["Lost"]
    assert tasks.resend_lost_emails() == []
    assert tasks.send_notification_email(lost.pk) == "already sent"
    assert len(mail.outbox) == 1


def test_a_failed_send_is_released_for_the_next_sweep(alice, monkeypatch, settings):
    settings.PORTAL_EMAIL_RETRY_SECONDS = 0
    notification = Notification.objects.create(
        recipient=alice, kind="decision", subject="Hi", email_wanted=True
    )

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(tasks, "send_mail", refuse)
    with pytest.raises(ConnectionRefusedError):
        tasks.send_notification_email(notification.pk)
    notification.refresh_from_db()
    assert notification.emailed_at is None
    _age(notification, 5)
    monkeypatch.undo()
    assert tasks.resend_lost_emails() == [notification.pk]

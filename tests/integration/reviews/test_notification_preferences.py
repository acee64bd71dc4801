"""A person chooses which notifications also come by e-mail: saved and audited together."""

import pytest
from django.urls import reverse

from portal.audit import AuditEvent
from reviews.models import Notification

pytestmark = pytest.mark.django_db


def test_saving_email_choices_stores_them_and_audits_the_change(client, alice):
    client.force_login(alice)
    kinds = Notification.Kind.values
    response = client.post(reverse("notification_list"), {"email": [kinds[0]]})
    assert response.status_code == 302
    alice.profile.refresh_from_db()
    assert alice.profile.notification_preferences == {k: k == kinds[0] for k in kinds}
    event = AuditEvent.objects.get(verb="profile.notifications_changed")
    assert event.after == alice.profile.notification_preferences
    page = client.get(reverse("notification_list"))
    assert page.status_code == 200 and "Saved your e-mail choices." in page.text

"""Findings 9 and 10: exports never carry spreadsheet formulas; a hostile title never loses a notification."""

import csv
import io

import pytest
from django.core import mail
from django.urls import reverse

from portal import audit
from reviews.models import Notification

pytestmark = pytest.mark.django_db

FORMULAS = ['=HYPERLINK("https://evil.example","click")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def test_the_audit_csv_export_neutralises_formulas(client, audrey):
    for text in FORMULAS:
        audit.record("thing.happened", by=None, object_type="thing", object_label=text, message=text)
    client.force_login(audrey)
    body = b"".join(client.get(reverse("audit_export", args=["csv"])).streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    labels = [r["object_label"] for r in rows if r["verb"] == "thing.happened"]
    assert labels == ["'" + text for text in FORMULAS]
    for row in rows:
        for value in row.values():
            assert not value or value[0] not in "=+-@\t\r", row


def test_the_data_use_register_csv_uses_the_same_writer(client, bob, olivia, tre_a):
    from tests.unit.transparency.test_dur import make_project

    make_project(bob, olivia, tre_a, lay_summary="=cmd|' /C calc'!A0")
    body = client.get(reverse("public_dur_download", args=["csv"])).content.decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert "'=cmd|' /C calc'!A0" in rows[1]


def test_a_newline_in_a_request_title_does_not_lose_the_officers_email(
    client, registry, alice, olivia, crate_zip, django_capture_on_commit_callbacks
):
    project = registry["project"]
    client.force_login(alice)
    hostile = "Counts by age\r\nBcc: everyone@example.org\nSubject: forged"
    with django_capture_on_commit_callbacks(execute=True), crate_zip.open("rb") as handle:
        response = client.post(
            "/api/v1/requests/",
            {
                "project": project.identifier,
                "tres": [project.approvals.get().tre.slug],
                "title": hostile,
                "crate": handle,
            },
        )
    assert response.status_code in (201, 202), response.content
    notice = Notification.objects.get(recipient=olivia, kind="review")
    assert "\n" not in notice.subject and "\r" not in notice.subject
    assert "Counts by age Bcc: everyone@example.org Subject: forged" in notice.subject
    sent = [m for m in mail.outbox if olivia.email in m.to]
    assert len(sent) == 1
    assert sent[0].subject == notice.subject
    assert sent[0].bcc == [] and sent[0].to == [olivia.email]
    assert Notification.objects.get(pk=notice.pk).emailed_at is not None

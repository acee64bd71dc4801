"""Finding 11: the audit chain is anchored to digests published outside the database.

A daily schedule writes the digest as a file in its own storage and the public page lists it;
`verify_audit` compares the chain with every published file, so removing the newest events or
rewriting history and re-hashing the whole chain is caught; and the database refuses UPDATE and DELETE
on audit rows on SQLite as on PostgreSQL.
"""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django_q.models import Schedule

from portal import audit
from portal.audit import AuditChainHead, AuditEvent
from tests.audit_helpers import ensure_append_only, raw_sql
from transparency import digests as public
from transparency import tasks as transparency_tasks

pytestmark = pytest.mark.django_db


def _chain(n):
    return [audit.record("thing.happened", by=None, object_type="thing", object_id=str(i)) for i in range(n)]


def _published_files():
    storage = audit.digest_storage()
    _, names = storage.listdir("")
    files = {}
    for name in names:
        with storage.open(name) as handle:
            files[name] = json.loads(handle.read())
    return files


def test_a_schedule_publishes_the_digest_as_a_file_and_the_page_lists_it(client):
    schedule = Schedule.objects.get(name="Publish audit digest")
    assert schedule.func == "transparency.tasks.publish_audit_digest"
    _chain(3)
    head = audit.head_digest()

    transparency_tasks.publish_audit_digest()  # what the schedule runs

    (name, body), *others = _published_files().items()
    assert not others
    assert (body["count"], body["hash"], body["algorithm"]) == (3, head["hash"], "sha256")
    page = client.get(reverse("public_audit")).content.decode()
    assert head["hash"] in page
    listed = client.get(reverse("public_audit_digests")).json()["digests"]
    assert [(d["count"], d["hash"]) for d in listed] == [(3, head["hash"])]
    # Published once: a second run the same day changes nothing, not even the file.
    _chain(2)
    transparency_tasks.publish_audit_digest()
    assert _published_files() == {name: body}


def _verify():
    call_command("verify_audit", stdout=io.StringIO())


def test_verify_audit_passes_an_intact_chain_against_its_digests(capsys):
    _chain(3)
    public.publish_audit_digest()
    _chain(2)
    call_command("verify_audit")
    assert "matches the 1 digest(s) published outside the database" in capsys.readouterr().out


def test_verify_audit_catches_a_full_rehash():
    _chain(5)
    public.publish_audit_digest()
    # An insider edits event 2 and re-seals every later event and the head: the chain verifies again.
    events = list(AuditEvent.objects.order_by("id"))
    previous = events[0].hash
    for index, event in enumerate(events[1:]):
        if index == 0:
            event.message = "a quietly rewritten entry"
        event.prev_hash = previous
        event.hash = event.compute_hash()
        raw_sql(
            "UPDATE portal_auditevent SET message = %s, prev_hash = %s, hash = %s WHERE id = %s",
            [event.message, event.prev_hash, event.hash, event.pk],
        )
        previous = event.hash
    AuditChainHead.objects.filter(singleton=1).update(last_hash=previous)
    assert audit.verify_chain() is None

    with pytest.raises(CommandError, match="re-hashed"):
        _verify()


def test_verify_audit_catches_truncation_of_the_newest_events():
    events = _chain(4)
    public.publish_audit_digest()
    raw_sql("DELETE FROM portal_auditevent WHERE id >= %s", [events[2].pk])
    kept = list(AuditEvent.objects.order_by("id"))
    AuditChainHead.objects.filter(singleton=1).update(last_hash=kept[-1].hash, count=len(kept))
    assert audit.verify_chain() is None  # the head was moved back too

    with pytest.raises(CommandError, match="newest events were removed"):
        _verify()


def test_no_new_digest_vouches_for_a_chain_that_contradicts_a_published_one():
    events = _chain(3)
    public.publish_audit_digest()
    raw_sql("DELETE FROM portal_auditevent WHERE id >= %s", [events[1].pk])
    kept = list(AuditEvent.objects.order_by("id"))
    AuditChainHead.objects.filter(singleton=1).update(last_hash=kept[-1].hash, count=len(kept))
    from datetime import timedelta

    from django.utils import timezone

    with pytest.raises(public.AuditChainBroken):
        public.publish_audit_digest(today=timezone.localdate() + timedelta(days=1))


def test_the_database_refuses_updates_and_deletes_on_this_database_too():
    ensure_append_only()
    event = _chain(1)[0]
    for sql in (
        "UPDATE portal_auditevent SET message = 'x' WHERE id = %s",
        "DELETE FROM portal_auditevent WHERE id = %s",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk, message="").exists()

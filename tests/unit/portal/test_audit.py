import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from portal import audit
from portal.audit import AuditChainHead, AuditEvent
from tests.audit_helpers import ensure_append_only, raw_sql

pytestmark = pytest.mark.django_db


def _chain(n=5):
    return [
        audit.record(f"thing.happened.{i}", by=None, object_type="thing", object_id=str(i)) for i in range(n)
    ]


def _raw_sql(sql, params=()):
    """Tamper with the table as an attacker with database access would, past the append-only triggers."""
    raw_sql(sql, params)


def test_chain_links_each_event_to_the_one_before():
    events = _chain(3)
    assert events[0].prev_hash == audit.GENESIS_HASH
    assert events[1].prev_hash == events[0].hash
    assert events[2].prev_hash == events[1].hash
    assert audit.verify_chain() is None
    head = AuditChainHead.objects.get()
    assert (head.last_hash, head.count) == (events[-1].hash, 3)


def test_events_carry_actor_and_scope_as_text(alice, tre_a):
    event = audit.record("x.y", by=alice, obj=tre_a, tre=tre_a, project="PRJ-1", after={"a": 1})
    assert event.actor_kind == "user"
    assert event.actor_id == str(alice.pk)
    assert event.actor_label == alice.email
    assert (event.object_type, event.object_id, event.tre_slug) == ("portal.tre", str(tre_a.pk), tre_a.slug)
    assert event.project_identifier == "PRJ-1"


def test_deleting_the_actor_leaves_the_trail_alone(alice):
    audit.record("x.y", by=alice, object_type="thing")
    alice.delete()
    assert AuditEvent.objects.get(verb="x.y").actor_label == "alice@example.org"
    assert audit.verify_chain() is None


def test_models_refuse_updates_and_deletes():
    event = _chain(1)[0]
    event.verb = "rewritten"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(verb="rewritten")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()


def test_the_database_refuses_raw_updates_and_deletes():
    """On SQLite as on PostgreSQL: a trigger aborts UPDATE and DELETE on audit rows (migrations 0002, 0011)."""
    from django.db import DatabaseError

    ensure_append_only()  # a transactional test's flush may have dropped them in this test database
    event = _chain(1)[0]
    for sql in (
        "UPDATE portal_auditevent SET verb = 'x' WHERE id = %s",
        "DELETE FROM portal_auditevent WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as c,
        ):
            c.execute(sql, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).verb == event.verb
    assert audit.verify_chain() is None


def test_editing_a_row_is_caught():
    events = _chain(5)
    _raw_sql("UPDATE portal_auditevent SET message = 'edited' WHERE id = %s", [events[2].pk])
    problem = audit.verify_chain()
    assert problem.event_id == events[2].pk
    assert "edited" in problem.reason


def test_deleting_a_row_is_caught():
    events = _chain(5)
    _raw_sql("DELETE FROM portal_auditevent WHERE id = %s", [events[2].pk])
    problem = audit.verify_chain()
    assert problem.event_id == events[3].pk
    assert "deleted" in problem.reason


def test_deleting_the_newest_rows_is_caught():
    events = _chain(5)
    _raw_sql("DELETE FROM portal_auditevent WHERE id >= %s", [events[3].pk])
    problem = audit.verify_chain()
    assert problem.event_id is None
    assert "3 events but the head records 5" in problem.reason


def test_reordering_rows_is_caught():
    events = _chain(4)
    first, second = events[1], events[2]
    # Swap the content of two rows (ids stay in place), as a reorder would.
    _raw_sql(
        "UPDATE portal_auditevent SET verb = %s, hash = %s, prev_hash = %s WHERE id = %s",
        ["tmp", "f" * 64, first.prev_hash, first.pk],
    )
    _raw_sql(
        "UPDATE portal_auditevent SET verb = %s, hash = %s, prev_hash = %s WHERE id = %s",
        [first.verb, first.hash, first.prev_hash, second.pk],
    )
    _raw_sql(
        "UPDATE portal_auditevent SET verb = %s, hash = %s, prev_hash = %s WHERE id = %s",
        [second.verb, second.hash, second.prev_hash, first.pk],
    )
    problem = audit.verify_chain()
    assert problem is not None
    assert problem.event_id == first.pk


def test_verify_audit_command_exit_codes(capsys):
    events = _chain(3)
    call_command("verify_audit")
    assert "intact: 3 events" in capsys.readouterr().out
    _raw_sql("UPDATE portal_auditevent SET actor_label = 'someone else' WHERE id = %s", [events[1].pk])
    with pytest.raises(CommandError) as excinfo:
        call_command("verify_audit")
    assert excinfo.value.returncode == 1
    assert f"event #{events[1].pk}" in str(excinfo.value)


def test_an_empty_trail_is_intact():
    assert audit.verify_chain() is None
    assert audit.head_digest() == {"hash": audit.GENESIS_HASH, "count": 0}


def test_record_rolls_back_with_the_change_it_describes():
    with pytest.raises(RuntimeError), transaction.atomic():
        audit.record("x.y", by=None, object_type="thing")
        raise RuntimeError("the change failed")
    assert AuditEvent.objects.count() == 0
    assert audit.verify_chain() is None


def test_the_stored_hash_is_the_hash_of_the_stored_content(alice):
    """The stored event is what was hashed, awkward text and JSON included."""
    awkward = [
        {"message": 'quotes " and \\ backslashes, "prev_hash":"' + "a" * 64 + '"'},
        {"message": "Ünïcødé — 日本語 🙂", "after": {"nested": {"list": [1, 2.5, None, True]}, "z": "ß"}},
        {"before": {"status": "queued"}, "after": {"status": "claimed", "fencing_token": 3}},
    ]
    events = [
        audit.record("x.y", by=alice, object_type="thing", object_id=str(n), **fields)
        for n, fields in enumerate(awkward)
    ]
    for event in events:
        stored = AuditEvent.objects.get(pk=event.pk)
        assert stored.hash == event.hash == stored.compute_hash()
        assert stored.prev_hash == event.prev_hash
        assert (stored.message, stored.before, stored.after) == (event.message, event.before, event.after)
    assert audit.verify_chain() is None


def test_an_append_locks_the_head_inserts_and_moves_the_head_on_every_database(django_assert_num_queries):
    audit.record("x.y", by=None, object_type="thing")  # the head row exists from here on
    with django_assert_num_queries(3) as counted:
        audit.record("x.z", by=None, object_type="thing")
    lock, insert, move = (query["sql"] for query in counted.captured_queries)
    assert "audit" in lock and lock.startswith("SELECT")
    if connection.features.has_select_for_update:
        assert "FOR UPDATE" in lock
    assert insert.startswith("INSERT") and move.startswith("UPDATE")
    assert audit.verify_chain() is None

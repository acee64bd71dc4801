"""The daily audit digest: published once a day, never for a broken chain, and checkable by anyone."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from lxml import html

from portal import audit
from portal.audit import AuditChainHead, AuditEvent
from tests.audit_helpers import raw_sql
from transparency import digests
from transparency import tasks as transparency_tasks

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def _chain(n):
    return [audit.record("thing.happened", by=None, object_type="thing", object_id=str(i)) for i in range(n)]


def _raw_sql(sql, params=()):
    """Tamper with the table as an attacker with database access would, past the append-only triggers."""
    raw_sql(sql, params)


def _rewrite_history_and_recompute_hashes(position, message):
    """Edit the event at `position` (1-based) and re-seal every later event, so the chain verifies again."""
    events = list(AuditEvent.objects.order_by("id"))
    previous = events[position - 2].hash if position > 1 else audit.GENESIS_HASH
    for index, event in enumerate(events[position - 1 :]):
        if index == 0:
            event.message = message
        event.prev_hash = previous
        event.hash = event.compute_hash()
        _raw_sql(
            "UPDATE portal_auditevent SET message = %s, prev_hash = %s, hash = %s WHERE id = %s",
            [event.message, event.prev_hash, event.hash, event.pk],
        )
        previous = event.hash
    AuditChainHead.objects.filter(singleton=1).update(last_hash=previous)


def test_the_digest_publishes_the_head_as_it_stood_and_joins_the_chain():
    _chain(3)
    head = audit.head_digest()

    event = digests.publish_audit_digest()

    today = timezone.localdate().isoformat()
    assert event.verb == "audit.digest_published"
    assert (event.object_type, event.object_id) == ("audit", today)
    assert event.after == {"hash": head["hash"], "count": 3, "date": today}
    assert event.actor_kind == AuditEvent.ActorKind.SYSTEM
    # The digest event itself follows the published head, so the digest is part of the chain.
    assert event.prev_hash == head["hash"]
    assert audit.verify_chain() is None


def test_the_digest_is_published_once_a_day():
    _chain(2)
    first = digests.publish_audit_digest()
    _chain(2)
    again = digests.publish_audit_digest()
    assert again.pk == first.pk
    assert AuditEvent.objects.filter(verb=digests.DIGEST_VERB).count() == 1

    tomorrow = digests.publish_audit_digest(today=timezone.localdate() + timedelta(days=1))
    assert tomorrow.pk != first.pk
    assert tomorrow.after["count"] == 5  # two, the first digest, and two more


def test_the_task_publishes_and_returns_the_digest():
    _chain(1)
    result = transparency_tasks.publish_audit_digest()
    assert result["count"] == 1
    assert result == AuditEvent.objects.get(verb=digests.DIGEST_VERB).after


def test_no_digest_vouches_for_a_broken_chain():
    events = _chain(3)
    _raw_sql("UPDATE portal_auditevent SET message = 'edited' WHERE id = %s", [events[1].pk])
    with pytest.raises(digests.AuditChainBroken, match="content does not match its hash"):
        digests.publish_audit_digest()
    assert not AuditEvent.objects.filter(verb=digests.DIGEST_VERB).exists()


def test_a_saved_digest_matches_the_record_as_it_is():
    _chain(4)
    digest = digests.publish_audit_digest().after
    _chain(3)  # the record grows; the saved digest still checks out
    assert digests.check_digest(digest["count"], digest["hash"]).result == "match"
    assert digests.check_digest(digest["count"], "0" * 64).result == "mismatch"
    assert digests.check_digest(999, digest["hash"]).result == "missing"


def test_rewriting_history_with_fresh_hashes_is_caught_by_a_saved_digest():
    _chain(5)
    digest = digests.publish_audit_digest().after
    _rewrite_history_and_recompute_hashes(2, "a quietly rewritten entry")
    # The chain is self-consistent again, so only a digest saved outside the portal can tell.
    assert audit.verify_chain() is None
    assert digests.check_digest(digest["count"], digest["hash"]).result == "mismatch"


def test_deleting_the_newest_entries_is_caught_by_a_saved_digest():
    events = _chain(4)
    digest = digests.publish_audit_digest().after
    _raw_sql("DELETE FROM portal_auditevent WHERE id >= %s", [events[2].pk])
    assert digests.check_digest(digest["count"], digest["hash"]).result == "missing"


def test_the_page_explains_the_check_and_lists_the_digests(client):
    _chain(2)
    digest = digests.publish_audit_digest().after
    page = client.get(reverse("public_audit"))
    assert page.status_code == 200
    text = page.content.decode()
    tree = html.fromstring(text)
    assert tree.xpath("//h1")[0].text_content() == "How we check the record"
    assert digest["hash"] in text
    cells = [td.text_content() for td in tree.xpath("//table//td")]
    assert str(digest["count"]) in cells and digest["hash"] in cells
    assert tree.xpath("//form[@method='get']//label[@for='id_hash']")
    assert "verify_audit" in text


@pytest.mark.parametrize(
    ("hash_of", "expected"),
    [("saved", "It matches."), ("other", "It does not match"), ("missing", "That entry is missing")],
)
def test_the_page_answers_a_check(client, hash_of, expected):
    _chain(2)
    digest = digests.publish_audit_digest().after
    count = 999 if hash_of == "missing" else digest["count"]
    fingerprint = digest["hash"] if hash_of != "other" else "a" * 64
    # Pasted with capitals and spaces, as people do.
    pasted = " ".join([fingerprint[:32].upper(), fingerprint[32:]])
    page = client.get(reverse("public_audit"), {"count": count, "hash": pasted})
    assert expected in page.content.decode()


def test_a_malformed_fingerprint_is_explained(client):
    page = client.get(reverse("public_audit"), {"count": 1, "hash": "not-a-hash"})
    text = page.content.decode()
    assert "There is a problem" in text
    assert "Enter the 64-character fingerprint exactly as published." in text
    assert html.fromstring(text).xpath("//title")[0].text_content().startswith("Error:")


def test_the_digests_are_downloadable_as_json(client):
    _chain(1)
    first = digests.publish_audit_digest().after
    second = digests.publish_audit_digest(today=timezone.localdate() + timedelta(days=1)).after
    document = client.get(reverse("public_audit_digests")).json()
    assert document["algorithm"] == "sha256"
    assert [(d["date"], d["count"], d["hash"]) for d in document["digests"]] == [
        (first["date"], first["count"], first["hash"]),
        (second["date"], second["count"], second["hash"]),
    ]


def test_a_new_digest_shows_at_once_on_cached_pages(client, django_capture_on_commit_callbacks):
    _chain(1)
    assert "No digest has been published yet" in client.get(reverse("public_audit")).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        digest = digests.publish_audit_digest().after
    assert digest["hash"] in client.get(reverse("public_audit")).content.decode()

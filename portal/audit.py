"""The tamper-evident audit trail.

Rows carry ids and text, never foreign keys, so deleting anything else never touches the
trail. Each row stores the hash of the row before it and its own hash over its content,
so editing, deleting or reordering rows breaks the chain (see `verify_chain`). Appends are
serialised by locking the single `AuditChainHead` row, which also remembers the newest
hash and the row count, so deleting the newest rows is caught too.
"""

import hashlib
import json
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

GENESIS_HASH = "0" * 64
# What an event says, in the order of its columns; its hash covers these and the previous hash.
CONTENT_FIELDS = (
    "created_at",
    "actor_kind",
    "actor_id",
    "actor_label",
    "verb",
    "object_type",
    "object_id",
    "object_label",
    "tre_slug",
    "project_identifier",
    "before",
    "after",
    "message",
)


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("Audit events are append-only.")

    def delete(self):
        raise PermissionError("Audit events are append-only.")


class AuditEvent(models.Model):
    class ActorKind(models.TextChoices):
        USER = "user", "Person"
        AGENT = "agent", "TRE agent"
        SYSTEM = "system", "Portal"
        PUBLIC = "public", "Member of the public"

    created_at = models.DateTimeField(db_index=True)
    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices)
    actor_id = models.CharField(max_length=64, blank=True, db_index=True)
    actor_label = models.CharField(max_length=300, blank=True)
    verb = models.CharField(max_length=80, db_index=True)
    object_type = models.CharField(max_length=80, db_index=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    object_label = models.CharField(max_length=300, blank=True)
    # Scope columns used by filters (which TRE or project an event concerns).
    tre_slug = models.CharField(max_length=50, blank=True, db_index=True)
    project_identifier = models.CharField(max_length=50, blank=True, db_index=True)
    before = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    message = models.TextField(blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]
        permissions = [("export_auditevent", "Export the audit trail")]

    def __str__(self):
        return f"#{self.pk} {self.verb} {self.object_type}:{self.object_id} by {self.actor_label}"

    def save(self, *args, **kwargs):
        if self.pk is not None or not kwargs.pop("_append", False):
            raise PermissionError("Audit events are append-only; use portal.audit.record().")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only.")

    def content(self):
        """The fields the hash covers, in a canonical JSON form."""
        content = {name: getattr(self, name) for name in CONTENT_FIELDS}
        content["created_at"] = self.created_at.isoformat()
        content["prev_hash"] = self.prev_hash
        return content

    def canonical(self):
        """The content as the hash reads it: JSON with sorted keys, no spaces, ASCII only."""
        return json.dumps(self.content(), sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)

    def compute_hash(self):
        return hashlib.sha256(self.canonical().encode()).hexdigest()


class AuditChainHead(models.Model):
    """One row: the newest hash and the number of events, locked while appending."""

    singleton = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    count = models.PositiveBigIntegerField(default=0)

    def __str__(self):
        return f"audit head ({self.count} events)"


@dataclass(frozen=True)
class Actor:
    kind: str
    id: str
    label: str

    @classmethod
    def of(cls, who):
        """An Actor for a user, an agent (anything with `audit_actor()`), None (the portal) or an Actor."""
        if isinstance(who, Actor):
            return who
        if who is None:
            return SYSTEM
        if hasattr(who, "audit_actor"):
            return who.audit_actor()
        if getattr(who, "is_authenticated", False):
            return cls(AuditEvent.ActorKind.USER, str(who.pk), who.email or who.get_username())
        raise TypeError(f"Cannot audit an action by {who!r}")


SYSTEM = Actor(AuditEvent.ActorKind.SYSTEM, "", "Five Safes Portal")
PUBLIC = Actor(AuditEvent.ActorKind.PUBLIC, "", "Member of the public")


def _json_safe(value):
    return json.loads(json.dumps(value or {}, cls=DjangoJSONEncoder))


def record(
    verb,
    *,
    by,
    obj=None,
    object_type="",
    object_id="",
    object_label="",
    before=None,
    after=None,
    message="",
    tre="",
    project="",
):
    """Append one event to the chain, inside the caller's transaction.

    The one way an event is written: lock the chain's head, link the event to the hash before it,
    insert it and move the head, with the ORM, the same on every database."""
    actor = Actor.of(by)
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
        object_label = object_label or str(obj)[:300]
    with transaction.atomic(savepoint=False):
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(singleton=1)
        event = AuditEvent(
            created_at=timezone.now(),
            actor_kind=actor.kind,
            actor_id=actor.id,
            actor_label=actor.label[:300],
            verb=verb,
            object_type=object_type,
            object_id=str(object_id),
            object_label=object_label[:300],
            tre_slug=getattr(tre, "slug", tre) or "",
            project_identifier=getattr(project, "identifier", project) or "",
            before=_json_safe(before),
            after=_json_safe(after),
            message=message,
            prev_hash=head.last_hash,
        )
        event.hash = event.compute_hash()
        event.save(_append=True)
        head.last_hash = event.hash
        head.count += 1
        head.save(update_fields=["last_hash", "count"])
    return event


@dataclass(frozen=True)
class ChainProblem:
    event_id: int | None
    reason: str

    def __str__(self):
        where = f"event #{self.event_id}" if self.event_id is not None else "the chain head"
        return f"{where}: {self.reason}"


def verify_chain(batch_size=2000):
    """Walk the chain in id order; return the first problem found, or None if intact."""
    expected_prev = GENESIS_HASH
    seen = 0
    queryset = AuditEvent.objects.order_by("id")
    for event in queryset.iterator(chunk_size=batch_size):
        if event.prev_hash != expected_prev:
            return ChainProblem(
                event.pk,
                "its previous-hash does not match the event before it (a row was deleted, inserted or reordered)",
            )
        if event.compute_hash() != event.hash:
            return ChainProblem(event.pk, "its content does not match its hash (the row was edited)")
        expected_prev = event.hash
        seen += 1
    head = AuditChainHead.objects.filter(singleton=1).first()
    head_hash, head_count = (head.last_hash, head.count) if head else (GENESIS_HASH, 0)
    if head_hash != expected_prev or head_count != seen:
        return ChainProblem(
            None,
            f"the chain ends at {seen} events but the head records {head_count} (newest events were removed)",
        )
    return None


def head_digest():
    """The published digest: newest hash and count."""
    head = AuditChainHead.objects.filter(singleton=1).first()
    return {"hash": head.last_hash if head else GENESIS_HASH, "count": head.count if head else 0}


# --- Digests published outside the database ------------------------------------------------------
# The daily digest (transparency.digests) is written as a file to its own storage
# (settings.STORAGES["audit_digests"]: a bucket or a folder), so whoever can rewrite the database cannot
# rewrite what vouches for it; verify_against_published compares the chain with every such file.

DIGEST_STORAGE = "audit_digests"
_DIGEST_FILE = "audit-digest-{date}.json"


@dataclass(frozen=True)
class PublishedDigest:
    date: str  # ISO date
    count: int
    hash: str
    published_at: str  # ISO date-time


def digest_storage():
    return storages[DIGEST_STORAGE]


def write_digest_file(*, day, count, hash_, published_at):
    """Publish a digest as a JSON file, once: an existing file is never replaced. Returns its name."""
    storage = digest_storage()
    name = _DIGEST_FILE.format(date=day)
    if storage.exists(name):
        return name
    body = {"algorithm": "sha256", "date": day, "count": count, "hash": hash_, "published_at": published_at}
    storage.save(name, ContentFile((json.dumps(body, indent=2, sort_keys=True) + "\n").encode()))
    return name


def published_digests():
    """The digests published outside the database, by count (an empty list when none are)."""
    storage = digest_storage()
    try:
        _, names = storage.listdir("")
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        if not (name.startswith("audit-digest-") and name.endswith(".json")):
            continue
        with storage.open(name, "rb") as handle:
            data = json.loads(handle.read())
        found.append(PublishedDigest(data["date"], int(data["count"]), data["hash"], data["published_at"]))
    return sorted(found, key=lambda d: (d.count, d.date))


def verify_against_published(digests=None):
    """Compare the chain with every digest published outside the database; the first problem, or None.

    Catches what the chain cannot show by itself: newest events removed (with the head moved back), and
    the chain rewritten and re-hashed, because event number `count` no longer has the published hash.
    """
    for digest in published_digests() if digests is None else digests:
        row = list(
            AuditEvent.objects.order_by("id").values_list("id", "hash")[digest.count - 1 : digest.count]
        )
        if not row:
            return ChainProblem(
                None,
                f"the digest published for {digest.date} vouches for {digest.count} events, but the chain "
                "has fewer (newest events were removed)",
            )
        event_id, hash_ = row[0]
        if hash_ != digest.hash:
            return ChainProblem(
                event_id,
                f"its hash is not the one the digest published for {digest.date} gives (the chain was "
                "rewritten and re-hashed)",
            )
    return None

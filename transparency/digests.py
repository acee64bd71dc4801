"""The daily audit digest: the audit chain's head published once a day, and the check of a copy."""

import logging
from dataclasses import dataclass
from datetime import date, datetime

from django import forms
from django.core.paginator import Paginator
from django.db import transaction
from django.utils import timezone

from portal import audit
from portal.audit import AuditChainHead, AuditEvent
from transparency.page_cache import invalidate_public_pages

log = logging.getLogger(__name__)

# --- The daily audit digest ----------------------------------------------------------------

DIGEST_VERB = "audit.digest_published"


class AuditChainBroken(RuntimeError):
    """The audit chain failed verification, so no digest may vouch for it."""


@dataclass(frozen=True)
class Digest:
    date: date
    hash: str
    count: int
    published_at: datetime


@dataclass(frozen=True)
class DigestCheck:
    count: int
    hash: str
    result: str  # "match", "mismatch" or "missing"


def publish_audit_digest(today=None):
    """Publish today's digest of the audit chain's head, once per day; returns its event.

    The chain is verified first, so a digest never vouches for a broken chain (the missing digest
    is then the public signal, and the raised error the operators'). The digest is the head as it
    stands under the append lock, so the digest event's own previous-hash equals the published hash.
    """
    today = today or timezone.localdate()
    day = today.isoformat()
    existing = AuditEvent.objects.filter(verb=DIGEST_VERB, object_type="audit", object_id=day).first()
    if existing is not None:
        _write_file(existing)  # a run that died before writing the file writes it now
        return existing
    # Never vouch for a broken chain, nor for one that contradicts a digest published before.
    problem = audit.verify_chain() or audit.verify_against_published()
    if problem is not None:
        log.error("Audit digest for %s not published: %s", day, problem)
        raise AuditChainBroken(str(problem))
    with transaction.atomic():
        AuditChainHead.objects.select_for_update().get_or_create(singleton=1)
        # Checked again under the lock, so two workers publish one digest.
        existing = AuditEvent.objects.filter(verb=DIGEST_VERB, object_type="audit", object_id=day).first()
        if existing is not None:
            _write_file(existing)
            return existing
        digest = audit.head_digest()
        event = audit.record(
            DIGEST_VERB,
            by=audit.SYSTEM,
            object_type="audit",
            object_id=day,
            object_label=f"Audit digest for {day}",
            after={"hash": digest["hash"], "count": digest["count"], "date": day},
            message="Daily digest of the audit chain's head, published on the public pages.",
        )
    # Written outside the database once the event is in, and never rewritten (portal.audit).
    _write_file(event)
    transaction.on_commit(invalidate_public_pages)
    return event


def _write_file(event):
    name = audit.write_digest_file(
        day=event.after["date"],
        count=int(event.after["count"]),
        hash_=event.after["hash"],
        published_at=event.created_at.isoformat(),
    )
    log.info("Audit digest for %s published as %s", event.after["date"], name)
    return name


def _digest(event):
    return Digest(
        date=date.fromisoformat(event.after["date"]),
        hash=event.after["hash"],
        count=int(event.after["count"]),
        published_at=event.created_at,
    )


def digest_page(page=None, per_page=30):
    events = AuditEvent.objects.filter(verb=DIGEST_VERB).order_by("-id").only("created_at", "after")
    page = Paginator(events, per_page).get_page(page)
    page.object_list = [_digest(e) for e in page.object_list]
    return page


def all_digests():
    events = AuditEvent.objects.filter(verb=DIGEST_VERB).order_by("id").only("created_at", "after")
    return [_digest(e) for e in events.iterator()]


def latest_digest():
    event = AuditEvent.objects.filter(verb=DIGEST_VERB).order_by("-id").only("created_at", "after").first()
    return _digest(event) if event else None


def check_digest(count, hash_):
    """Is event number `count` of the chain still the one a digest published as `hash_`?"""
    stored = list(AuditEvent.objects.order_by("id").values_list("hash", flat=True)[count - 1 : count])
    if not stored:
        return DigestCheck(count, hash_, "missing")
    return DigestCheck(count, hash_, "match" if stored[0] == hash_ else "mismatch")


class DigestCheckForm(forms.Form):
    count = forms.IntegerField(
        label="Number of entries",
        min_value=1,
        help_text="The “entries” number from the digest you saved.",
    )
    hash = forms.RegexField(
        label="Fingerprint (hash)",
        regex=r"^[0-9a-f]{64}$",
        help_text="The 64 characters from the digest you saved (0 to 9 and a to f).",
        error_messages={"invalid": "Enter the 64-character fingerprint exactly as published."},
    )

    def clean_hash(self):
        return self.cleaned_data["hash"].strip().lower()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.is_bound:  # accept a pasted fingerprint with spaces or capitals
            data = self.data.copy()
            data["hash"] = "".join(str(data.get("hash", "")).split()).lower()
            self.data = data

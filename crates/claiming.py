"""Claiming: how a queued job is leased to an agent, the request every agent makes over and over.

A claim locks the oldest queued job of the agent's TRE (skipping jobs other claimers hold), moves it
to "claimed", gives its lease a new fencing token and appends the `job.claimed` audit event, all in
one transaction. Two ways, with the same result (tests hold them equal):

* **PostgreSQL: one statement** (`_claim_in_one_statement`). Locking, moving, leasing and auditing
  are data-modifying CTEs of a single prepared statement, so a claim is one round trip and the audit
  chain's head is locked only while PostgreSQL runs it and commits, never while Python waits for its
  turn. The event's canonical form is cut by Python around the values only the database knows (the
  job, its title, its project, the fencing token, the previous hash) and completed in SQL, quoting
  text with `portal_json_quote()`, which writes what `json.dumps` writes; so the hash is the one
  `AuditEvent.compute_hash()` verifies.
* **Elsewhere (SQLite): statements in a transaction** (`_claim_in_steps`): read and lock the job,
  write the lease, then `crates.transitions.transition`, which writes the status and the event.

The move itself is the state machine's (queued → claimed, by the agent of the job's TRE, audited as
its event); the statement only makes it for such jobs.
"""

import functools
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction
from django.utils import timezone

from crates.models import Job, JobLease, Request, RequestVersion
from crates.transitions import AGENT, TRANSITIONS, transition
from portal import audit, sqlrows
from portal.models import TRE, ApprovedWorkflow, Decision, Project, WorkflowApproval
from portal.sqlrows import Columns, convert, prepared_cursor, split

S = Job.Status
CLAIM = TRANSITIONS[(S.QUEUED, S.CLAIMED)]
if AGENT not in CLAIM.actors:  # the statement makes the move for agents without asking the table
    raise ImproperlyConfigured("The job state machine no longer lets agents claim queued jobs.")


@dataclass(frozen=True)
class Claim:
    """A job just leased to an agent, and whether its workflow is on the TRE's approved list."""

    lease: JobLease
    job: Job
    workflow_approved: bool
    #: The TRE's approved service settings for the workflow (WorkflowApproval.service_settings).
    workflow_settings: dict = field(default_factory=dict)


def claim_one(agent, *, lease_seconds):
    """Lease the oldest queued job of the agent's TRE to it now; None when there is none."""
    db = transaction.get_connection()  # the connection itself: django.db.connection is a slower proxy
    if db.vendor == "postgresql":
        return _claim_in_one_statement(db, agent, lease_seconds)
    return _claim_in_steps(db, agent, lease_seconds)


def _fresh_lease(agent, now, lease_seconds):
    """A claim's lease fields, but for the fencing token and attempt count (each one more)."""
    return {
        "agent_id": agent.pk,  # attribute names, as the lease's columns are written
        "claimed_at": now,
        "expires_at": now + timedelta(seconds=lease_seconds),
        "heartbeat_at": now,
        "started_at": None,
        "finished_at": None,
        "cancel_requested_at": None,
        "cancel_reason": "",
        "message": "",
    }


# What a claim answers with: the job, its request, project, TRE, version, workflow and lease.
_JOB = Columns(Job, "m", ["id", "request", "version", "tre", "workflow", "status", "status_changed_at"])
_REQUEST = Columns(Request, "r", ["id", "title", "project"])
_PROJECT = Columns(Project, "p", ["id", "identifier"])
_TRE = Columns(TRE, "t", ["id", "slug", "name"])
_VERSION = Columns(RequestVersion, "v", ["id", "external_identifier"])
_WORKFLOW = Columns(
    ApprovedWorkflow, "w", ["id", "name", "workflow_id", "version", "sha256", "language", "executor"]
)
_LEASE = Columns(JobLease, "l", [f.name for f in JobLease._meta.concrete_fields])
_PARTS = (_JOB, _REQUEST, _PROJECT, _TRE, _VERSION, _WORKFLOW, _LEASE)
_LEASE_WRITTEN = tuple(f.name for f in JobLease._meta.concrete_fields if f.name not in ("id", "job"))


def _sql(db):
    """Helpers for writing the statements: quoted table and column names of the models."""
    quote = db.ops.quote_name

    def table(model):
        return quote(model._meta.db_table)

    def column(model, name):
        return quote(model._meta.get_field(name).column)

    return table, column


def _answer_sql(db):
    """The SELECT list and joins of a claim's answer (the job row is `m`, its lease `l`)."""
    table, column = _sql(db)
    approval = (
        f"FROM {table(WorkflowApproval)} a "
        f"WHERE a.{column(WorkflowApproval, 'workflow')} = {_JOB.column(db, 'workflow')} "
        f"AND a.{column(WorkflowApproval, 'tre')} = {_JOB.column(db, 'tre')} "
        f"AND a.{column(WorkflowApproval, 'status')} = %(approved)s"
    )
    # The TRE's approval of the workflow: its service settings, never NULL when there is one.
    select = (
        f"{', '.join(part.sql(db) for part in _PARTS)}, "
        f"(SELECT a.{column(WorkflowApproval, 'service_settings')} {approval} "
        f"ORDER BY a.{column(WorkflowApproval, 'id')} DESC LIMIT 1)"
    )
    joins = f"""
        JOIN {table(Request)} r ON {_REQUEST.column(db, "id")} = {_JOB.column(db, "request")}
        JOIN {table(Project)} p ON {_PROJECT.column(db, "id")} = {_REQUEST.column(db, "project")}
        JOIN {table(TRE)} t ON {_TRE.column(db, "id")} = {_JOB.column(db, "tre")}
        JOIN {table(RequestVersion)} v ON {_VERSION.column(db, "id")} = {_JOB.column(db, "version")}
        LEFT JOIN {table(ApprovedWorkflow)} w ON {_WORKFLOW.column(db, "id")} = {_JOB.column(db, "workflow")}
    """
    return select, joins


def _next_queued_sql(db, lock):
    table, column = _sql(db)
    return f"""
        SELECT q.{column(Job, "id")} FROM {table(Job)} q
        WHERE q.{column(Job, "tre")} = %(tre)s AND q.{column(Job, "status")} = '{S.QUEUED.value}'
        ORDER BY q.{column(Job, "status_changed_at")}, q.{column(Job, "id")}
        LIMIT 1 {lock}
    """  # noqa: S608 (names from the models; values are parameters)


def _read(db, row):
    """A claim's answer row as a Claim (the lease may be None: a job never claimed before)."""
    job, request, project, tre, version, workflow, lease, (settings, *_) = (
        part.build(db, values) if part is not None else values
        for part, values in zip((*_PARTS, None), split(row, *_PARTS), strict=True)
    )
    request.project = project
    job.request, job.tre, job.version = request, tre, version
    job.workflow = workflow if workflow.pk is not None else None
    if lease.pk is not None:
        lease.job = job
    approved = settings is not None
    settings = convert(db, WorkflowApproval._meta.get_field("service_settings"), settings)
    return Claim(lease if lease.pk is not None else None, job, approved, settings or {})


# --- Elsewhere: statements in a transaction ------------------------------------------------------


def _compact(statement):
    """The statement without its layout: psycopg caches the parsing of statements up to 4 kB."""
    return re.sub(r"\s*\n\s*", " ", statement).strip()


@functools.cache
def _read_statement(alias):
    """Lock the TRE's oldest queued job (where the database has row locks) and read the answer."""
    db = connections[alias]
    lock = db.ops.for_update_sql(skip_locked=True) if db.features.has_select_for_update_skip_locked else ""
    select, joins = _answer_sql(db)
    table, column = _sql(db)
    return _compact(f"""
        SELECT {select}
        FROM {table(Job)} m {joins}
        LEFT JOIN {table(JobLease)} l ON {_LEASE.column(db, "job")} = {_JOB.column(db, "id")}
        WHERE {_JOB.column(db, "id")} = ({_next_queued_sql(db, lock)})
    """)  # noqa: S608 (names from the models; values are parameters)


def _claim_in_steps(db, agent, lease_seconds):
    with transaction.atomic(using=db.alias):
        now = timezone.now()
        if not db.features.has_select_for_update_skip_locked:
            # Without row locks (SQLite) the first statement must write: that takes the database's
            # write lock before anything is read, so two claimers never read the same queued job.
            agent.last_seen_at = now
            sqlrows.update_fields(db, agent, ["last_seen_at"])
        with prepared_cursor(db) as cursor:
            cursor.execute(_read_statement(db.alias), {"tre": agent.tre_id, "approved": Decision.APPROVED})
            row = cursor.fetchone()
        if row is None:
            return None
        found = _read(db, row)
        lease = found.lease or JobLease(job=found.job)
        for name, value in _fresh_lease(agent, now, lease_seconds).items():
            setattr(lease, name, value)
        lease.fencing_token += 1
        lease.attempts += 1
        if lease.pk is None:
            sqlrows.insert(db, lease)
        else:
            sqlrows.update_fields(db, lease, _LEASE_WRITTEN)
        lease.agent = agent
        extra = {"fencing_token": lease.fencing_token, "attempt": lease.attempts}
        transition(found.job, S.CLAIMED, by=agent, extra=extra, locked=True)
        return Claim(lease, found.job, found.workflow_approved, found.workflow_settings)


# --- PostgreSQL: one statement ------------------------------------------------------------------

# The values of the claim's audit event that only the database knows, each written in the
# canonical form by an SQL expression over the CTEs `c` (the claimed job) and `previous` (the head).
_SLOTS = {
    "object_id": "'\"' || c.id || '\"'",  # digits, and hexadecimal digits below, need no escaping
    "object_label": "portal_json_quote(c.label)",
    "project_identifier": "portal_json_quote(c.identifier)",
    "fencing_token": "c.fencing_token::text",
    "attempt": "c.attempts::text",
    "prev_hash": "'\"' || previous.last_hash || '\"'",
}


def _event(actor, tre_slug, now, placeholders):
    """The claim's audit event as Python would write it, with `placeholders` for the slots."""
    return audit.AuditEvent(
        created_at=now,
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_label=actor.label[:300],
        verb=CLAIM.event,
        object_type=Job._meta.label_lower,
        object_id=placeholders["object_id"],
        object_label=placeholders["object_label"],
        tre_slug=tre_slug,
        project_identifier=placeholders["project_identifier"],
        before={"status": S.QUEUED},
        after={
            "status": S.CLAIMED,
            "fencing_token": placeholders["fencing_token"],
            "attempt": placeholders["attempt"],
        },
        message="",
        prev_hash=placeholders["prev_hash"],
    )


@functools.cache
def _slot_order():
    """The order of the slots in the canonical form: fixed by its sorted keys."""
    placeholders = {name: secrets.token_hex(16) for name in _SLOTS}
    return audit.canonical_pieces(_event(audit.SYSTEM, "", timezone.now(), placeholders), placeholders)[1]


@functools.cache
def _one_statement(alias):
    db = connections[alias]
    table, column = _sql(db)
    select, joins = _answer_sql(db)
    order = _slot_order()
    canonical = (
        " || ".join(part for n, name in enumerate(order) for part in (f"%(piece{n})s", _SLOTS[name]))
        + f" || %(piece{len(order)})s"
    )
    fresh = ", ".join(
        f"{column(JobLease, name)} = EXCLUDED.{column(JobLease, name)}" for name in _FRESH_FIELDS
    )
    event_columns = ", ".join(column(audit.AuditEvent, name) for name in audit.CONTENT_FIELDS)
    event_values = ", ".join(_EVENT_FROM_SQL.get(name, f"%({name})s") for name in audit.CONTENT_FIELDS)
    job_label = f"left('Job ' || m.{column(Job, 'id')} || ' (' || r.{column(Request, 'title')} || ' at ' || t.{column(TRE, 'slug')} || ')', 300)"
    head, event = table(audit.AuditChainHead), table(audit.AuditEvent)
    return _compact(f"""
        WITH next AS ({_next_queued_sql(db, "FOR UPDATE SKIP LOCKED")}),
        moved AS (
            UPDATE {table(Job)} AS j
            SET {column(Job, "status")} = '{S.CLAIMED.value}', {column(Job, "status_changed_at")} = %(now)s
            FROM next WHERE j.{column(Job, "id")} = next.{column(Job, "id")}
            RETURNING {", ".join(f"j.{column(Job, name)}" for name in _JOB_FIELDS)}
        ),
        l AS (
            INSERT INTO {table(JobLease)} AS held
                ({column(JobLease, "job")}, {column(JobLease, "fencing_token")}, {column(JobLease, "attempts")},
                 {", ".join(column(JobLease, name) for name in _FRESH_FIELDS)})
            SELECT m.{column(Job, "id")}, 1, 1, {", ".join(f"%({name})s" for name in _FRESH_FIELDS)} FROM moved m
            ON CONFLICT ({column(JobLease, "job")}) DO UPDATE SET
                {column(JobLease, "fencing_token")} = held.{column(JobLease, "fencing_token")} + 1,
                {column(JobLease, "attempts")} = held.{column(JobLease, "attempts")} + 1,
                {fresh}
            RETURNING held.*
        ),
        c AS (
            SELECT m.{column(Job, "id")} AS id, l.{column(JobLease, "fencing_token")} AS fencing_token,
                   l.{column(JobLease, "attempts")} AS attempts, p.{column(Project, "identifier")} AS identifier,
                   {job_label} AS label
            FROM moved m
            JOIN l ON l.{column(JobLease, "job")} = m.{column(Job, "id")}
            JOIN {table(Request)} r ON r.{column(Request, "id")} = m.{column(Job, "request")}
            JOIN {table(Project)} p ON p.{column(Project, "id")} = r.{column(Request, "project")}
            JOIN {table(TRE)} t ON t.{column(TRE, "id")} = m.{column(Job, "tre")}
        ),
        previous AS (
            SELECT last_hash, count FROM {head} WHERE singleton = 1 AND EXISTS(SELECT 1 FROM c) FOR UPDATE
        ),
        link AS (
            UPDATE {head} AS head
            SET last_hash = encode(sha256(convert_to({canonical}, 'UTF8')), 'hex'), count = previous.count + 1
            FROM previous, c
            WHERE head.singleton = 1
            RETURNING previous.last_hash AS prev_hash, head.last_hash AS hash
        ),
        e AS (
            INSERT INTO {event} ({event_columns}, prev_hash, hash)
            SELECT {event_values}, link.prev_hash, link.hash
            FROM c LEFT JOIN link ON true
            RETURNING id
        )
        SELECT {select}, e.id
        FROM moved m JOIN l ON {_LEASE.column(db, "job")} = {_JOB.column(db, "id")} {joins}, e
    """)  # noqa: S608 (names from the models; values are parameters)


_JOB_FIELDS = ("id", "request", "version", "tre", "workflow", "status", "status_changed_at")
_FRESH_FIELDS = (
    "agent_id",
    "claimed_at",
    "expires_at",
    "heartbeat_at",
    "started_at",
    "finished_at",
    "cancel_requested_at",
    "cancel_reason",
    "message",
)
# The claim event's fields written by SQL from the claimed job `c`; the others are parameters.
_EVENT_FROM_SQL = {
    "object_id": "c.id::text",
    "object_label": "c.label",
    "project_identifier": "c.identifier",
    "before": "%(before)s::jsonb",
    "after": f"jsonb_build_object('status', '{S.CLAIMED.value}', 'fencing_token', c.fencing_token, "
    "'attempt', c.attempts)",
    "message": "''",
}
_EVENT_FROM_PYTHON = tuple(name for name in audit.CONTENT_FIELDS if name not in _EVENT_FROM_SQL)


def _claim_in_one_statement(db, agent, lease_seconds):
    now = timezone.now()
    placeholders = {name: secrets.token_hex(16) for name in _SLOTS}
    event = _event(audit.Actor.of(agent), agent.tre.slug, now, placeholders)
    pieces, order = audit.canonical_pieces(event, placeholders)
    if order != _slot_order():
        raise RuntimeError("The claim's audit event has changed shape; its statement no longer fits it.")
    params = {
        "tre": agent.tre_id,
        "approved": Decision.APPROVED,
        "now": now,
        **_fresh_lease(agent, now, lease_seconds),
        **{f"piece{n}": piece for n, piece in enumerate(pieces)},
        **{name: getattr(event, name) for name in _EVENT_FROM_PYTHON},
        "before": json.dumps(event.before),
    }
    # The chain's head exists: the job was queued by audited transitions. (Were it missing, the event's
    # hash would be NULL and the whole statement refused, writing nothing.)
    with prepared_cursor(db) as cursor:
        cursor.execute(_one_statement(db.alias), params)
        row = cursor.fetchone()
    if row is None:
        return None
    claim = _read(db, row)
    claim.lease.agent = agent
    return claim

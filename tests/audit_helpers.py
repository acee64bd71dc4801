"""Tampering with the audit table as someone with database access would: past the append-only triggers."""

import importlib
from contextlib import contextmanager

from django.db import connection

_SQLITE = importlib.import_module("portal.migrations.0013_audit_append_only_sqlite_and_digest_schedule")


@contextmanager
def triggers_off(using=connection):
    """The append-only triggers switched off (PostgreSQL) or dropped (SQLite) for the block, then back."""
    with using.cursor() as cursor:
        if using.vendor == "postgresql":
            cursor.execute("ALTER TABLE portal_auditevent DISABLE TRIGGER portal_auditevent_append_only")
        elif using.vendor == "sqlite":
            for statement in _SQLITE.SQLITE_DROP:
                cursor.execute(statement)
    try:
        yield
    finally:
        with using.cursor() as cursor:
            if using.vendor == "postgresql":
                cursor.execute("ALTER TABLE portal_auditevent ENABLE TRIGGER portal_auditevent_append_only")
            elif using.vendor == "sqlite":
                for statement in _SQLITE.SQLITE_APPEND_ONLY:
                    cursor.execute(statement)


def raw_sql(sql, params=()):
    """Run `sql` on the audit table past its triggers, bypassing the model."""
    with triggers_off(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def ensure_append_only(using=connection):
    """Make the SQLite triggers if a transactional test's flush dropped them (no-op elsewhere)."""
    if using.vendor == "sqlite":
        with using.cursor() as cursor:
            for statement in _SQLITE.SQLITE_APPEND_ONLY:
                cursor.execute(statement)


def drop_sqlite_triggers(using=connection):
    if using.vendor == "sqlite":
        with using.cursor() as cursor:
            for statement in _SQLITE.SQLITE_DROP:
                cursor.execute(statement)

"""portal.sqlrows: hand-written statements read and write model rows as the ORM does."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from crates.models import Agent
from portal import sqlrows
from portal.models import TRE
from portal.sqlrows import Columns

pytestmark = pytest.mark.django_db


def test_rows_are_read_back_as_the_orm_reads_them(tre_a, olivia):
    agent = Agent.objects.create(
        tre=tre_a, name="reader", token_prefix="fsa_x", token_hash="a" * 64, created_by=olivia
    )
    Agent.objects.filter(pk=agent.pk).update(last_seen_at=timezone.now() - timedelta(minutes=5))
    agents = Columns(Agent, "a", ["id", "name", "last_seen_at", "tre"])
    tres = Columns(TRE, "t", ["id", "slug", "paused"])
    db = transaction.get_connection()
    statement = (
        f"SELECT {agents.sql(db)}, {tres.sql(db)} FROM {agents.table} a "  # noqa: S608 (names from the models)
        f"JOIN {tres.table} t ON {tres.column(db, 'id')} = {agents.column(db, 'tre')} WHERE a.id = %s"
    )
    with db.cursor() as cursor:
        cursor.execute(statement, [agent.pk])
        agent_values, tre_values, rest = sqlrows.split(cursor.fetchone(), agents, tres)
    built, tre = agents.build(db, agent_values), tres.build(db, tre_values)
    orm = Agent.objects.get(pk=agent.pk)
    assert rest == ()
    assert (built.pk, built.name, built.tre_id, built.last_seen_at) == (
        orm.pk,
        orm.name,
        orm.tre_id,
        orm.last_seen_at,
    )
    assert built.last_seen_at.tzinfo is not None  # aware, on SQLite too
    assert (tre.slug, tre.paused) == ("tre-a", False)
    assert built.get_deferred_fields() >= {"token_hash", "created_at"}


def test_columns_refuse_what_is_not_a_column():
    with pytest.raises(ValueError, match="Only concrete fields"):
        Columns(TRE, "t", ["id", "agents"])


def test_insert_and_update_write_one_row_each(tre_a, olivia):
    db = transaction.get_connection()
    agent = Agent(tre=tre_a, name="writer", token_prefix="fsa_y", token_hash="b" * 64, created_by=olivia)
    agent.created_at = timezone.now()
    sqlrows.insert(db, agent)
    assert Agent.objects.get(pk=agent.pk).name == "writer"
    agent.name, agent.version = "renamed", "agent 2.0"
    assert sqlrows.update_fields(db, agent, ["name"]) == 1
    stored = Agent.objects.get(pk=agent.pk)
    assert (stored.name, stored.version) == ("renamed", "")


def test_the_prepared_cursor_is_djangos_own_while_queries_are_counted(django_assert_num_queries):
    with django_assert_num_queries(1) as counted, sqlrows.prepared_cursor(connection) as cursor:
        cursor.execute("SELECT %s", [1])
        assert cursor.fetchone()[0] == 1
    assert "SELECT" in counted.captured_queries[0]["sql"]

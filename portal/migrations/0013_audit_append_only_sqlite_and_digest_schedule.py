from django.db import migrations
from django.utils import timezone

# SQLite has no procedural triggers, but a trigger may abort the statement: UPDATE and DELETE on audit
# rows fail on SQLite as they do on PostgreSQL (0002), so what /public/audit/ says holds on both.
SQLITE_APPEND_ONLY = [
    """CREATE TRIGGER IF NOT EXISTS portal_auditevent_no_update BEFORE UPDATE ON portal_auditevent
       BEGIN SELECT RAISE(ABORT, 'portal_auditevent is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS portal_auditevent_no_delete BEFORE DELETE ON portal_auditevent
       BEGIN SELECT RAISE(ABORT, 'portal_auditevent is append-only'); END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS portal_auditevent_no_update",
    "DROP TRIGGER IF EXISTS portal_auditevent_no_delete",
]


def add_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_APPEND_ONLY:
            schema_editor.execute(statement)


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_DROP:
            schema_editor.execute(statement)


def hourly(apps, schema_editor):
    # Once a day, at the first run of the day: a cluster that is not up at 23:55 still publishes.
    apps.get_model("django_q", "Schedule").objects.filter(name="Publish audit digest").update(
        schedule_type="H", next_run=timezone.now()
    )


def daily(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="Publish audit digest").update(
        schedule_type="D"
    )


class Migration(migrations.Migration):
    dependencies = [("portal", "0012_workflow_output_schemas"), ("transparency", "0001_digest_schedule_func")]

    operations = [
        migrations.RunPython(add_triggers, drop_triggers),
        migrations.RunPython(hourly, daily),
    ]

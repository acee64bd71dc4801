from django.db import migrations

OLD = "portal.transparency_tasks.publish_audit_digest"
NEW = "transparency.tasks.publish_audit_digest"


def forwards(apps, schema_editor):
    # The daily digest task moved with the transparency app (docs/adr/0005-layers.md).
    apps.get_model("django_q", "Schedule").objects.filter(func=OLD).update(func=NEW)


def backwards(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(func=NEW).update(func=OLD)


class Migration(migrations.Migration):
    dependencies = [("portal", "0004_digest_schedule")]

    operations = [migrations.RunPython(forwards, backwards)]

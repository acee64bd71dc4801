import datetime

from django.db import migrations
from django.utils import timezone


def add(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    # Just before midnight, so each day's digest covers that day's events.
    today = timezone.localdate()
    next_run = timezone.make_aware(datetime.datetime.combine(today, datetime.time(23, 55)))
    Schedule.objects.update_or_create(
        name="Publish audit digest",
        defaults={
            "func": "portal.transparency_tasks.publish_audit_digest",
            "schedule_type": "D",
            "repeats": -1,
            "next_run": next_run,
        },
    )


def remove(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="Publish audit digest").delete()


class Migration(migrations.Migration):
    dependencies = [("portal", "0003_publicquestion")]

    operations = [migrations.RunPython(add, remove)]

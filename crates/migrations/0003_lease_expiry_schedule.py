from django.db import migrations


def add(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.update_or_create(
        name="Expire agent leases",
        defaults={"func": "crates.dispatch_tasks.expire_leases", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def remove(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="Expire agent leases").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("crates", "0002_agents_leases_results"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(add, remove)]

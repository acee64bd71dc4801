from importlib import import_module

from django.db import migrations

# portal_json_quote() served the hand-written claim and audit statements, retired in favour of the
# ORM (docs/adr/0006-retire-hand-written-sql.md). Going back re-creates it as 0007 made it.
created_by = import_module("portal.migrations.0007_json_quote_function")


class Migration(migrations.Migration):
    dependencies = [("portal", "0009_workflow_inputs")]

    operations = [migrations.RunPython(created_by.drop_function, created_by.create_function)]

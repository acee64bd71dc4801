"""Personal tokens carry scopes. Tokens made before scopes existed keep only `read` and `submit` until
renewed: a privileged scope is granted only right after a second-factor check (finding 4)."""

from django.db import migrations, models

import portal.models

EXISTING_SCOPES = ["read", "submit"]


def existing_tokens_read_and_submit(apps, schema_editor):
    PersonalToken = apps.get_model("portal", "PersonalToken")
    PersonalToken.objects.all().update(scopes=EXISTING_SCOPES)


class Migration(migrations.Migration):
    dependencies = [("portal", "0007_json_quote_function")]

    operations = [
        migrations.AddField(
            model_name="personaltoken",
            name="scopes",
            field=models.JSONField(
                default=portal.models.default_token_scopes,
                help_text="What the token may be used for (TokenScope values); privileged scopes expire "
                "within 30 days and are granted only right after a second-factor check.",
            ),
        ),
        migrations.RunPython(existing_tokens_read_and_submit, migrations.RunPython.noop),
    ]

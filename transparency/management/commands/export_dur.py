"""Write the HDR UK Data Use Register: one entry per approved project, in the upload template's columns."""

from django.core.management.base import BaseCommand

from transparency import dur


class Command(BaseCommand):
    help = (
        "Export the Data Use Register as CSV (the HDR UK template's 31 columns, in order) or JSON "
        "(the Gateway's field names). Projects whose entries lack a required field are left out and "
        "named on stderr."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["csv", "json"], default="csv", help="Output format.")
        parser.add_argument("--output", "-o", metavar="PATH", help="Write to this file instead of stdout.")

    def handle(self, *args, **options):
        text, skipped = dur.export(options["format"])
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8", newline="") as out:
                out.write(text)
        else:
            self.stdout.write(text, ending="")
        for identifier, problems in skipped:
            self.stderr.write(f"{identifier} left out: {'; '.join(problems)}")

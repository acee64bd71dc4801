from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from reviews.statediagram import document

TARGET = Path(settings.BASE_DIR) / "docs" / "job-states.md"


class Command(BaseCommand):
    help = "Print the job state diagram, write it to docs/job-states.md, or check that file is current."

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--write", action="store_true", help="Rewrite docs/job-states.md")
        group.add_argument("--check", action="store_true", help="Exit 1 if docs/job-states.md is out of date")

    def handle(self, *args, write=False, check=False, **options):
        text = document()
        if write:
            TARGET.write_text(text)
            self.stdout.write(f"Wrote {TARGET}")
        elif check:
            if not TARGET.exists() or TARGET.read_text() != text:
                raise CommandError(
                    "docs/job-states.md differs from crates/transitions.py; run manage.py statediagram --write",
                    returncode=1,
                )
            self.stdout.write("docs/job-states.md is current.")
        else:
            self.stdout.write(text)

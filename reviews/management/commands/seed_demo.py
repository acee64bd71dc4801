from django.core.management.base import BaseCommand

from reviews import demo


class Command(BaseCommand):
    help = "Create the demo federation (idempotent): TREs, datasets, people, projects, agreements."

    def handle(self, *args, **options):
        demo.seed(stdout=self.stdout)

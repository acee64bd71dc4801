from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from crates import services
from crates.models import Job


class Command(BaseCommand):
    help = "Write the crate of one request's job at a TRE, as it stands, to a BagIt ZIP."

    def add_arguments(self, parser):
        parser.add_argument("request_id", type=int)
        parser.add_argument("--tre", required=True, help="The TRE's slug")
        parser.add_argument("--out", required=True, type=Path, help="Where to write the ZIP")

    def handle(self, request_id, tre, out, **options):
        job = (
            Job.objects.select_related("version", "tre").filter(request_id=request_id, tre__slug=tre).first()
        )
        if job is None:
            raise CommandError(f"Request {request_id} has no job at a TRE called {tre!r}.")
        if not job.version.crate:
            raise CommandError(
                f"The crate of request {request_id} version {job.version.number} was not kept."
            )
        path = services.export_job_crate(job, out)
        self.stdout.write(f"Wrote {path} (SHA-256 {services.job_crate_sha256(path)}).")

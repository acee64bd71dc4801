"""`manage.py sdc_check PATH... [--tre SLUG] [--json]`: automatic disclosure checks on output files.

Exit status: 0 when every file passes, 1 when any file fails or needs review, 2 when a path cannot be
read or the TRE is unknown or cannot be read.
"""

import json

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from portal.models import TRE
from reviews.sdc.policy import DEFAULT_POLICY, DisclosurePolicy, PolicyError
from reviews.sdc.report import Report, check_paths
from reviews.sdc.verdicts import Verdict

EXIT_PASS, EXIT_FLAGGED, EXIT_UNREADABLE = 0, 1, 2


def exit_status(report: Report) -> int:
    if report.unreadable:
        return EXIT_UNREADABLE
    return EXIT_PASS if report.verdict is Verdict.PASS else EXIT_FLAGGED


class Command(BaseCommand):
    help = (
        "Check output files and folders for statistical disclosure (count tables, magnitude tables with "
        "contributions, model summaries, ACRO results.json). Exits 0 if all pass, 1 if any fail or need "
        "review, 2 if a path cannot be read."
    )
    # Reads files and at most one TRE row; the project's system checks have no bearing on that.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH", help="Output files or folders to check.")
        parser.add_argument(
            "--tre", metavar="SLUG", help="Use this TRE's disclosure policy (default: portal defaults)."
        )
        parser.add_argument("--json", dest="as_json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args, paths, tre, as_json, **options):
        policy = self._policy(tre)
        report = check_paths(paths, policy)
        if as_json:
            self.stdout.write(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        else:
            self.stdout.write(report.to_text(), ending="")
        status = exit_status(report)
        if status != EXIT_PASS:
            raise SystemExit(status)

    def _policy(self, slug: str | None) -> DisclosurePolicy:
        if slug is None:
            return DEFAULT_POLICY
        try:
            record = TRE.objects.get(slug=slug)
        except DatabaseError as error:
            raise CommandError(
                f"Cannot read TRE {slug!r} from the database: {error}", returncode=EXIT_UNREADABLE
            ) from None
        except TRE.DoesNotExist:
            known = ", ".join(TRE.objects.order_by("slug").values_list("slug", flat=True)) or "none"
            raise CommandError(
                f"No TRE with slug {slug!r}. Known TREs: {known}.", returncode=EXIT_UNREADABLE
            ) from None
        try:
            return DisclosurePolicy.from_record(record)
        except PolicyError as error:
            raise CommandError(
                f"TRE {slug!r} has an invalid disclosure policy: {error}", returncode=EXIT_UNREADABLE
            ) from None

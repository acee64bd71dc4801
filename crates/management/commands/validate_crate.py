"""``manage.py validate_crate PATH [--json]``: check a Five Safes crate from the command line.

Exit status: 0 valid (no REQUIRED check failed), 1 invalid, 2 unreadable (refused before validation).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from crates.fivesafes import CrateRefused, Issue, Report, validate_path

VALID, INVALID, UNREADABLE = 0, 1, 2


class Command(BaseCommand):
    # A pure library call: no database, URLs or settings to check first.
    requires_system_checks: list[str] = []
    help = (
        "Validate a Five Safes RO-Crate (a ZIP, a BagIt folder, a crate folder or ro-crate-metadata.json). "
        "Exit status 0 = valid, 1 = invalid, 2 = unreadable."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="crate ZIP, bag folder, crate folder or metadata file")
        parser.add_argument("--json", action="store_true", help="print the report as one JSON document")

    def handle(self, *args: Any, **options: Any) -> None:
        path, as_json = options["path"], options["json"]
        try:
            report = validate_path(path)
        except CrateRefused as refusal:
            if as_json:
                self._print_json(
                    {"path": path, "readable": False, "valid": False, "refusal": refusal.to_dict()}
                )
            else:
                where = f" ({refusal.where})" if refusal.where else ""
                self.stderr.write(f"UNREADABLE  {path}\n  {refusal.code}: {refusal.message}{where}")
            sys.exit(UNREADABLE)
        if as_json:
            self._print_json({"path": path, "readable": True, **report.to_dict()})
        else:
            self._print_text(path, report)
        if not report.valid:
            sys.exit(INVALID)

    def _print_json(self, data: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(data, indent=2, ensure_ascii=False))

    def _print_text(self, path: str, report: Report) -> None:
        verdict = "VALID" if report.valid else "INVALID"
        details = [f"profile {report.profile}" if report.profile else "no Five Safes profile declared"]
        if report.external_identifier:
            details.append(report.external_identifier)
        self.stdout.write(f"{verdict}  {path}  ({', '.join(details)})")
        for title, issues in (
            ("Errors (REQUIRED)", report.errors),
            ("Warnings (RECOMMENDED)", report.warnings),
            ("Notes (OPTIONAL)", report.infos),
        ):
            if issues:
                self.stdout.write(f"\n{title}: {len(issues)}")
                for issue in issues:
                    self.stdout.write(_describe(issue))
        if not report.issues:
            self.stdout.write("No issues.")


def _describe(issue: Issue) -> str:
    where = f"  [{issue.entity}]" if issue.entity else ""
    return f"  - {issue.check}{where}\n      {issue.message}"

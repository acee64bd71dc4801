"""``manage.py validate_crate PATH [--json]``: check a Five Safes crate from the command line.

Exit status: 0 valid (no REQUIRED check failed), 1 invalid, 2 unreadable (refused before validation).
The same check runs without Django as ``python -m crates.fivesafes.validate`` (much faster to start);
both call :func:`crates.fivesafes.validate.run`.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from crates.fivesafes import validate

VALID, INVALID, UNREADABLE = validate.VALID, validate.INVALID, validate.UNREADABLE


class Command(BaseCommand):
    # A pure library call: no database, URLs or settings to check first.
    requires_system_checks: list[str] = []
    help = validate.DESCRIPTION

    def add_arguments(self, parser: CommandParser) -> None:
        validate.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        status = validate.run(
            options["path"], as_json=options["json"], stdout=self.stdout, stderr=self.stderr
        )
        if status != VALID:
            sys.exit(status)

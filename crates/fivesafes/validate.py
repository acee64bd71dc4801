"""``python -m crates.fivesafes.validate PATH [--json] [--verbose]``: check a Five Safes crate, no Django.

The same check, output and exit status as ``manage.py validate_crate`` (which calls :func:`run`), but
started without Django or a database, so it answers in the time the check takes:
0 valid (no REQUIRED check failed), 1 invalid, 2 unreadable (refused before validation).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from .errors import CrateRefused
from .loader import validate_path
from .validator import Issue, Report

__all__ = ["INVALID", "UNREADABLE", "VALID", "main", "run"]

VALID, INVALID, UNREADABLE = 0, 1, 2

DESCRIPTION = (
    "Validate a Five Safes RO-Crate (a ZIP, a BagIt folder, a crate folder or ro-crate-metadata.json). "
    "Exit status 0 = valid, 1 = invalid, 2 = unreadable."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="crate ZIP, bag folder, crate folder or metadata file")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON document")


def run(
    path: str, *, as_json: bool = False, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Check the crate at ``path``, print the report, return the exit status."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        report = validate_path(path)
    except CrateRefused as refusal:
        if as_json:
            _print_json(
                stdout, {"path": path, "readable": False, "valid": False, "refusal": refusal.to_dict()}
            )
        else:
            where = f" ({refusal.where})" if refusal.where else ""
            stderr.write(f"UNREADABLE  {path}\n  {refusal.code}: {refusal.message}{where}\n")
        return UNREADABLE
    if as_json:
        _print_json(stdout, {"path": path, "readable": True, **report.to_dict()})
    else:
        _print_text(stdout, path, report)
    return VALID if report.valid else INVALID


def _print_json(out: TextIO, data: dict[str, Any]) -> None:
    out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _print_text(out: TextIO, path: str, report: Report) -> None:
    verdict = "VALID" if report.valid else "INVALID"
    details = [f"profile {report.profile}" if report.profile else "no Five Safes profile declared"]
    if report.external_identifier:
        details.append(report.external_identifier)
    out.write(f"{verdict}  {path}  ({', '.join(details)})\n")
    for title, issues in (
        ("Errors (REQUIRED)", report.errors),
        ("Warnings (RECOMMENDED)", report.warnings),
        ("Notes (OPTIONAL)", report.infos),
    ):
        if issues:
            out.write(f"\n{title}: {len(issues)}\n")
            for issue in issues:
                out.write(_describe(issue) + "\n")
    if not report.issues:
        out.write("No issues.\n")


def _describe(issue: Issue) -> str:
    where = f"  [{issue.entity}]" if issue.entity else ""
    return f"  - {issue.check}{where}\n      {issue.message}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crates.fivesafes.validate", description=DESCRIPTION)
    add_arguments(parser)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the bagit library's progress (one line per file)"
    )
    options = parser.parse_args(argv)
    logging.basicConfig(format="%(levelname)s %(name)s %(message)s", level=logging.WARNING)
    if options.verbose:
        logging.getLogger("bagit").setLevel(logging.INFO)
    return run(options.path, as_json=options.json)


if __name__ == "__main__":
    sys.exit(main())

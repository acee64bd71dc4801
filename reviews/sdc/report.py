"""Checking files and folders of outputs, and reporting the verdicts as JSON or text.

`check_paths` walks folders (recursively, in sorted order, not following symbolic links to folders)
and checks every file once. A folder holding ACRO's `results.json` has the files it lists judged by
ACRO's verdicts; its bookkeeping (results.json, config.json, checksums/) is listed as skipped rather
than judged, and any other file is checked by the portal's own checks.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reviews.sdc.acro import CHECKSUMS_DIR, CONFIG_NAME, RESULTS_NAME, AcroResults, listed_path, read_results
from reviews.sdc.checks import check_file
from reviews.sdc.policy import DEFAULT_POLICY, DisclosurePolicy
from reviews.sdc.verdicts import FileResult, Flag, Verdict, worst


@dataclass(frozen=True)
class Unreadable:
    """A path that could not be read at all (missing, unlistable or not a regular file)."""

    path: str
    message: str


@dataclass(frozen=True)
class Skipped:
    """A file that is not an output (ACRO's bookkeeping), with the reason it was not judged."""

    path: str
    reason: str


@dataclass(frozen=True)
class Report:
    """The verdicts on every file reached from the paths checked, under one policy.

    `verdict` is the worst file verdict; any unreadable path makes it at least `review`, since what
    could not be read was not checked.
    """

    policy: DisclosurePolicy
    files: tuple[FileResult, ...] = ()
    unreadable: tuple[Unreadable, ...] = ()
    skipped: tuple[Skipped, ...] = ()

    @property
    def verdict(self) -> Verdict:
        floor = [Verdict.REVIEW] if self.unreadable else []
        return worst([*(result.verdict for result in self.files), *floor])

    def counts(self) -> dict[str, int]:
        tally = Counter(result.verdict for result in self.files)
        return {"files": len(self.files), **{str(verdict): tally[verdict] for verdict in Verdict}}

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": str(self.verdict),
            "policy": {**self.policy.as_dict(), "version": self.policy.version},
            "counts": self.counts(),
            "files": [result.to_dict() for result in self.files],
            "unreadable": [dataclasses.asdict(entry) for entry in self.unreadable],
            "skipped": [dataclasses.asdict(entry) for entry in self.skipped],
        }

    def to_text(self) -> str:
        counts = self.counts()
        tally = ", ".join(
            f"{counts[str(verdict)]} {verdict}" for verdict in (Verdict.FAIL, Verdict.REVIEW, Verdict.PASS)
        )
        lines = [
            f"Disclosure check: {self.verdict.upper()} ({counts['files']} file(s): {tally})",
            f"Policy {self.policy.version}: {self.policy.describe()}",
        ]
        for result in self.files:
            lines.append("")
            described = ", ".join(part for part in (result.kind, result.shape) if part)
            lines.append(
                f"{result.verdict.upper():<7} {result.path}  ({described}; checked by {result.source})"
            )
            lines.extend(f"    {_describe_flag(flag)}" for flag in result.all_flags)
            if result.justification:
                lines.append(f"    justification: {result.justification}")
            lines.extend(f"    comment: {comment}" for comment in result.comments)
            lines.extend(f"    note: {note}" for note in result.notes)
        if self.unreadable:
            lines.append("")
            lines.extend(f"UNREADABLE {entry.path}: {entry.message}" for entry in self.unreadable)
        if self.skipped:
            lines.append("")
            lines.extend(f"skipped {entry.path}: {entry.reason}" for entry in self.skipped)
        if not self.files and not self.unreadable:
            lines.append("")
            lines.append("No files found.")
        return "\n".join(lines) + "\n"


def _describe_flag(flag: Flag) -> str:
    if flag.row is None and flag.column is None:
        where = "file"
    else:
        where = f"row {' / '.join(flag.row or ())}, column {flag.column}"
        if flag.value is not None:
            where += f" = {flag.value}"
    if flag.line is not None:
        where += f" (line {flag.line})"
    return f"{where}: {flag.rule} ({flag.verdict}) {flag.message}"


def check_paths(paths: Iterable[str | os.PathLike[str]], policy: DisclosurePolicy = DEFAULT_POLICY) -> Report:
    """Check files and folders of outputs under `policy`. Never raises for unreadable paths or bad
    content: they are reported as `unreadable` or as files with a `review` verdict."""
    walker = _Walker(policy)
    for given in paths:
        walker.add(Path(given), os.fspath(given))
    return Report(policy, tuple(walker.files), tuple(walker.unreadable), tuple(walker.skipped))


@dataclass
class _AcroFolder:
    """A folder's ACRO results, with each listed file that exists keyed by its resolved path."""

    results: AcroResults
    listed: dict[Path, tuple[str, FileResult]] = field(default_factory=dict)
    absent: list[tuple[str, FileResult]] = field(default_factory=list)
    reported: bool = False


class _Walker:
    def __init__(self, policy: DisclosurePolicy) -> None:
        self.policy = policy
        self.files: list[FileResult] = []
        self.unreadable: list[Unreadable] = []
        self.skipped: list[Skipped] = []
        self.seen: set[Path] = set()
        self.acro_folders: dict[Path, _AcroFolder | None] = {}

    def add(self, path: Path, shown: str) -> None:
        if path.is_dir():
            self._walk(path, shown)
        elif path.is_file():
            self._add_file(path, shown, explicit=True)
        elif path.exists() or path.is_symlink():
            self.unreadable.append(Unreadable(shown, "Not a regular file or folder (or a broken link)."))
        else:
            self.unreadable.append(Unreadable(shown, "No such file or folder."))

    def _walk(self, root: Path, shown: str) -> None:
        def unlistable(error: OSError) -> None:
            where = os.path.join(shown, os.path.relpath(error.filename, root)) if error.filename else shown
            self.unreadable.append(
                Unreadable(os.path.normpath(where), f"Cannot list the folder: {error.strerror}.")
            )

        for folder, subfolders, names in os.walk(root, onerror=unlistable):
            subfolders.sort()
            shown_folder = os.path.normpath(os.path.join(shown, os.path.relpath(folder, root)))
            for name in subfolders:
                if os.path.islink(os.path.join(folder, name)):
                    # Following links could loop or leave the outputs; what is not followed is not checked.
                    message = "A link to a folder: links are not followed, so its contents were not checked."
                    self.unreadable.append(Unreadable(os.path.join(shown_folder, name), message))
            self._acro_folder(Path(folder), shown_folder, report_extras=True)
            for name in sorted(names):
                self._add_file(Path(folder, name), os.path.join(shown_folder, name), explicit=False)

    def _acro_folder(self, folder: Path, shown_folder: str, *, report_extras: bool) -> _AcroFolder | None:
        """The folder's ACRO results (read once). With `report_extras`, results.json's own problems and
        the files it lists but the folder lacks are reported (once)."""
        key = folder.resolve()
        if key not in self.acro_folders:
            self.acro_folders[key] = self._read_acro(folder, shown_folder)
        found = self.acro_folders[key]
        if found is not None and report_extras and not found.reported:
            found.reported = True
            problems = found.results.problems_result()
            if problems is not None:
                self.files.append(problems)
            self.files.extend(dataclasses.replace(result, path=shown) for shown, result in found.absent)
        return found

    def _read_acro(self, folder: Path, shown_folder: str) -> _AcroFolder | None:
        results_path = folder / RESULTS_NAME
        if not results_path.is_file():
            return None
        shown_results = os.path.join(shown_folder, RESULTS_NAME)
        try:
            results = read_results(results_path, self.policy, display=shown_results)
        except OSError as error:
            self.unreadable.append(
                Unreadable(shown_results, f"Cannot read ACRO's results: {error.strerror}.")
            )
            return None
        found = _AcroFolder(results)
        for name, result in results.files.items():
            path = listed_path(folder, name)
            if path is not None and path.is_file():
                found.listed[path.resolve()] = (name, result)
            else:
                found.absent.append((os.path.join(shown_folder, name), result))
        return found

    def _add_file(self, path: Path, shown: str, *, explicit: bool) -> None:
        key = path.resolve()
        if key in self.seen:
            return
        self.seen.add(key)
        shown_folder = os.path.dirname(shown)
        if explicit:
            # A file given on its own is judged by the results.json beside it, as it would be in its folder.
            is_results = path.name == RESULTS_NAME
            acro = self._acro_folder(path.parent, shown_folder, report_extras=is_results)
        else:
            acro = self.acro_folders.get(path.parent.resolve())

        if acro is not None and path.name == RESULTS_NAME:
            # A results.json with problems is reported as a file of its own, with those problems.
            if not acro.results.problems:
                self.skipped.append(Skipped(shown, "ACRO's results, used to judge the files it lists."))
            if explicit:
                for listed, (name, _) in acro.listed.items():
                    self._add_file(listed, os.path.join(shown_folder, name), explicit=False)
            return
        if acro is not None and path.name == CONFIG_NAME:
            self.skipped.append(Skipped(shown, "ACRO's risk appetite, compared with the policy."))
            return
        if path.parent.name == CHECKSUMS_DIR and (path.parent.parent / RESULTS_NAME).is_file():
            self.skipped.append(
                Skipped(
                    shown, "ACRO's checksum record; the files results.json lists are verified against it."
                )
            )
            return
        listed = self._listed(key)
        if listed is not None:
            self.files.append(dataclasses.replace(listed, path=shown))
            return
        try:
            self.files.append(check_file(path, self.policy, display=shown))
        except OSError as error:
            self.unreadable.append(Unreadable(shown, f"Cannot read the file: {error.strerror}."))

    def _listed(self, key: Path) -> FileResult | None:
        for found in self.acro_folders.values():
            if found is not None and key in found.listed:
                return found.listed[key][1]
        return None

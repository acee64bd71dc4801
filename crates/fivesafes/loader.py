"""Reading crates from disk: strict JSON parsing and one entry point for every packaging.

:func:`validate_path` accepts what people actually hand over: a crate ZIP, an unzipped bag, a plain
crate directory, or the metadata file itself. Problems that stop us from reading the metadata safely
raise :class:`~crates.fivesafes.errors.CrateRefused`; packaging faults of a readable crate (a bad
checksum, a missing External-Identifier...) become REQUIRED issues in the report, beside the
profile's own findings, so a sender sees everything at once.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .bag import METADATA, verify_bag
from .errors import CrateRefused
from .jsonld import MAX_DEPTH
from .safezip import Limits, extract_bag
from .validator import Issue, Report, Severity, sort_issues, validate_metadata

__all__ = ["load_metadata", "parse_metadata", "validate_path"]

_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET_RE = re.compile(r"[\[\]{}]")
# Refusals after which the metadata cannot be read safely (or at all): reported as refusals, not issues.
_FATAL_BAG_CODES = frozenset({"bag.symlink", "bag.special_file", "bag.metadata_missing"})


class _DuplicateKey(ValueError):
    def __init__(self, key: str, entity: str | None) -> None:
        super().__init__(key)
        self.key = key
        self.entity = entity


def parse_metadata(
    data: bytes, *, where: str = "ro-crate-metadata.json", max_depth: int = MAX_DEPTH
) -> dict[str, Any]:
    """Parse metadata bytes as strict JSON: UTF-8 without BOM, no repeated keys, no NaN, bounded depth.

    Numbers must fit a double (``1e400`` would become infinity, which JSON cannot write back) and strings
    must not hold NUL characters (which text columns, PostgreSQL's JSON among them, cannot store).

    Returns the top-level object; raises :class:`CrateRefused` (``metadata.*``) naming ``where``.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        raise CrateRefused(
            "metadata.encoding",
            "The metadata file starts with a byte-order mark; save it as UTF-8 without one.",
            where,
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CrateRefused(
            "metadata.encoding",
            f"The metadata file is not valid UTF-8 (bad byte at position {exc.start}).",
            where,
        ) from exc
    if _too_deep(text, max_depth):
        raise CrateRefused(
            "metadata.too_deep",
            f"The metadata nests lists and objects more than {max_depth} levels deep.",
            where,
        )
    try:
        document = json.loads(
            text, object_pairs_hook=_unique_keys, parse_constant=_no_constant, parse_float=_finite_float
        )
    except _DuplicateKey as exc:
        inside = f" in the entity {exc.entity!r}" if exc.entity else ""
        raise CrateRefused(
            "metadata.duplicate_key",
            f"The key {exc.key!r} appears twice in one JSON object{inside}; each key may appear only once.",
            where,
        ) from exc
    except json.JSONDecodeError as exc:
        raise CrateRefused(
            "metadata.syntax",
            f"The metadata file is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
            where,
        ) from exc
    except ValueError as exc:  # NaN/Infinity, or an integer too long to convert
        raise CrateRefused("metadata.syntax", f"The metadata file is not valid JSON: {exc}.", where) from exc
    if not isinstance(document, dict):
        raise CrateRefused("metadata.not_object", "The metadata file must hold one JSON object.", where)
    try:
        # A "\ud800" escape parses into a lone surrogate that can never be written back as UTF-8.
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CrateRefused(
            "metadata.encoding", "The metadata contains an invalid \\u escape (a lone surrogate).", where
        ) from exc
    # Strict JSON has no raw control characters in strings, so a NUL can only come from this escape.
    if "\\u0000" in text and _holds_nul(document):
        raise CrateRefused(
            "metadata.encoding",
            "The metadata contains a NUL character (\\u0000), which is not allowed.",
            where,
        )
    return document


def load_metadata(source: str | Path | bytes, *, limits: Limits | None = None) -> dict[str, Any]:
    """Read and parse a metadata file (a path, or its bytes) within ``limits.max_metadata_bytes``."""
    limits = limits or Limits()
    if isinstance(source, bytes):
        if len(source) > limits.max_metadata_bytes:
            raise _too_large("ro-crate-metadata.json", limits)
        return parse_metadata(source)
    path = Path(source)
    if path.is_symlink() or not path.is_file():
        raise CrateRefused(
            "metadata.missing", "The metadata file does not exist or is not a regular file.", path.name
        )
    try:
        with path.open("rb") as handle:
            data = handle.read(limits.max_metadata_bytes + 1)
    except OSError as exc:
        raise CrateRefused("metadata.unreadable", "The metadata file could not be read.", path.name) from exc
    if len(data) > limits.max_metadata_bytes:
        raise _too_large(path.name, limits)
    return parse_metadata(data, where=path.name)


def validate_path(path: str | Path, limits: Limits | None = None) -> Report:
    """Validate a crate ZIP, a bag directory, a crate directory or a metadata file.

    Raises :class:`CrateRefused` when the input cannot be read safely; otherwise returns a report with
    packaging issues (identified by their refusal codes) followed by the profile's findings.
    """
    limits = limits or Limits()
    path = Path(path)
    if not path.exists():
        raise CrateRefused("input.not_found", "Nothing exists at the given path.", str(path))
    if path.is_dir():
        return _validate_directory(path, limits)
    if path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
        with tempfile.TemporaryDirectory(prefix="crate-") as scratch:
            return _validate_directory(extract_bag(path, scratch, limits), limits, zipped=True)
    return _with_packaging(load_metadata(path, limits=limits), [])


def _validate_directory(path: Path, limits: Limits, *, zipped: bool = False) -> Report:
    """A bag, a payload folder without bagit.txt, or a plain crate folder (a ZIP must hold a bag)."""
    if (path / "bagit.txt").is_file():
        return _validate_bag(path, limits)
    not_a_bag = Issue(
        "bag.not_a_bag",
        Severity.REQUIRED,
        "The crate is not a BagIt bag: the folder has no bagit.txt.",
        "bagit.txt",
    )
    if (path / METADATA).is_file():
        return _with_packaging(load_metadata(path / METADATA, limits=limits), [not_a_bag])
    if (path / "ro-crate-metadata.json").is_file():
        packaging = [not_a_bag] if zipped else []
        return _with_packaging(load_metadata(path / "ro-crate-metadata.json", limits=limits), packaging)
    raise CrateRefused(
        "input.no_metadata",
        "The folder holds neither ro-crate-metadata.json nor a BagIt bag with data/ro-crate-metadata.json.",
        path.name,
    )


def _validate_bag(bag_dir: Path, limits: Limits) -> Report:
    packaging: list[Issue] = []
    external_identifier = None
    try:
        info = verify_bag(bag_dir)
    except CrateRefused as refusal:
        if refusal.code in _FATAL_BAG_CODES:
            raise
        packaging.append(Issue(refusal.code, Severity.REQUIRED, refusal.message, refusal.where))
    else:
        external_identifier = info.external_identifier
        if not info.has_tagmanifest:
            packaging.append(
                Issue(
                    "bag.tagmanifest_missing",
                    Severity.RECOMMENDED,
                    "The bag should include a SHA-512 tag manifest, tagmanifest-sha512.txt.",
                    "tagmanifest-sha512.txt",
                )
            )
    report = _with_packaging(load_metadata(bag_dir / METADATA, limits=limits), packaging)
    report.external_identifier = external_identifier
    return report


def _with_packaging(document: Mapping[str, Any], packaging: list[Issue]) -> Report:
    report = validate_metadata(document)
    report.issues = sort_issues([*packaging, *report.issues])
    return report


def _too_deep(text: str, limit: int) -> bool:
    # Count brackets outside strings: linear, and safe from the recursion the json module would do.
    depth = 0
    for match in _BRACKET_RE.finditer(_STRING_RE.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            entity = result.get("@id") if isinstance(result.get("@id"), str) else None
            entity = entity or next((v for k, v in pairs if k == "@id" and isinstance(v, str)), None)
            raise _DuplicateKey(key, entity)
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is too large")
    return value


def _holds_nul(document: Any) -> bool:
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            pending.extend(value)
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


def _too_large(where: str, limits: Limits) -> CrateRefused:
    return CrateRefused(
        "metadata.too_large", f"The metadata file is larger than {limits.max_metadata_bytes:,} bytes.", where
    )

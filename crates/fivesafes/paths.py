"""Turning a name taken from a crate into a path inside the unpacked bag's ``data/`` folder, or refusing it.

A crate is written by someone else (a researcher, a TRE agent), so every name it gives for a file (the
``@id`` of an output in a run's ``result``, an entry in ``hasPart``) is hostile until proved otherwise.
This module is the one place the portal turns such a name into a path: intake, disclosure checks,
write-back, release and deletion all call :func:`resolve` (or :func:`remove`), never ``data / name``.

A name is accepted only if it is a plain relative name that stays inside ``data/`` once resolved:

- not absolute (``/etc``, ``C:``, ``//host``), no ``..`` or ``.`` parts, no empty parts;
- no backslashes, NUL or other control characters, none of ``" * : < > ? |`` (the ZIP rules of
  :func:`~crates.fivesafes.safezip.is_plain_name`, also after NFKC normalisation, so FULLWIDTH FULL STOP
  cannot spell ``..``);
- no percent-encoded dot, slash, backslash, NUL or percent (``%2e%2e``, ``%2f``...), so a reader that
  decodes the name cannot be steered elsewhere either;
- no Windows device names (``CON``, ``NUL.txt``, ``COM1``...);
- no symbolic link on the way, and the resolved path is inside ``data/``.

Everything else raises :class:`~crates.fivesafes.errors.CrateRefused` with code ``path.unsafe`` and the
name as ``where``.
"""

from __future__ import annotations

import json
import re
import shutil
import unicodedata
from pathlib import Path
from typing import Any

from .errors import CrateRefused
from .safezip import is_plain_name

__all__ = [
    "check_data_entities",
    "check_declared_results",
    "check_name",
    "declared_results",
    "remove",
    "resolve",
]

_ENCODED = re.compile(r"%(?:2e|2f|5c|00|25)", re.IGNORECASE)
_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CLOCK$", "CONIN$", "CONOUT$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in "0123456789"}
)
_MAX_NAME_CHARS = 4096
# A URI scheme of two or more letters (one letter is a Windows drive, which is a path).
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")
_FILE_TYPES = frozenset({"File", "Dataset", "MediaObject"})


def _shown(name: object) -> str:
    """The name as it can be shown safely (control characters escaped, long names cut)."""
    text = name if isinstance(name, str) else repr(name)
    if not text:
        return "(an empty name)"
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return text if len(text) <= 200 else text[:200] + "…"


def _refuse(name: object, why: str) -> CrateRefused:
    return CrateRefused(
        "path.unsafe",
        f"The crate names a file the portal will not open: {why}. File names must be plain relative names "
        "inside the crate's data folder.",
        _shown(name),
    )


def _is_device(part: str) -> bool:
    stem = unicodedata.normalize("NFKC", part).rstrip(" .").split(".", 1)[0].rstrip(" ")
    return stem.upper() in _DEVICES


def check_name(name: object) -> tuple[str, ...]:
    """The parts of a crate file name that passed every rule above; raises ``path.unsafe`` otherwise.

    A trailing ``/`` (how RO-Crate names folders) is allowed and dropped.
    """
    if not isinstance(name, str) or not name or len(name) > _MAX_NAME_CHARS:
        raise _refuse(name, "it is empty, not text or too long")
    if "\x00" in name or any(unicodedata.category(c) == "Cc" for c in name):
        raise _refuse(name, "it contains control characters")
    if "\\" in name:
        raise _refuse(name, "it contains a backslash")
    if _ENCODED.search(name):
        raise _refuse(name, "it percent-encodes a dot, slash, backslash, NUL or percent sign")
    if name.startswith("/") or (len(name) >= 2 and name[1] == ":"):
        raise _refuse(name, "it is an absolute path")
    parts = tuple(name[:-1].split("/") if name.endswith("/") else name.split("/"))
    for part in parts:
        if part in ("", ".", ".."):
            raise _refuse(name, "it has an empty, '.' or '..' part")
        if not is_plain_name(part):
            raise _refuse(name, f"the part {_shown(part)!r} is not a plain file name")
        if _is_device(part):
            raise _refuse(name, f"{_shown(part)!r} is a device name on some systems")
    return parts


def resolve(data_dir: str | Path, name: object) -> Path:
    """The path `name` (from a crate) stands for inside ``data_dir``; raises ``path.unsafe`` otherwise.

    The path need not exist. No part of it may be a symbolic link, and it must resolve inside ``data_dir``.
    """
    parts = check_name(name)
    root = Path(data_dir).resolve(strict=True)
    current = root
    for part in parts:
        current = current / part
        if current.is_symlink():
            raise _refuse(name, "it goes through a symbolic link")
    if not current.resolve().is_relative_to(root):
        raise _refuse(name, "it resolves outside the crate")
    return current


def remove(data_dir: str | Path, name: object) -> bool:
    """Delete the file or folder `name` stands for inside ``data_dir``; False when nothing is there.

    Refuses (``path.unsafe``) whatever :func:`resolve` refuses, and never follows a link.
    """
    target = resolve(data_dir, name)
    if target.is_dir():
        shutil.rmtree(target)  # rmtree removes links inside without following them
        return True
    if target.exists():
        target.unlink()
        return True
    return False


def _is_local_reference(identifier: str) -> bool:
    """Whether an ``@id`` names a file in the crate rather than a web resource or a contextual entity."""
    return "://" not in identifier and not identifier.startswith("#")


def declared_results(metadata: dict[str, Any]) -> list[str]:
    """The names every run (CreateAction) in the crate declares as its results, as written.

    Web resources (``https://...``) and contextual entities (``#...``) are left out; anything else is
    a name for :func:`resolve`, which may still refuse it. Folder names keep no trailing slash.
    """
    graph = metadata.get("@graph", []) if isinstance(metadata, dict) else []
    graph = graph if isinstance(graph, list) else []  # a malformed graph is the validator's to refuse
    runs = [e for e in graph if isinstance(e, dict) and "CreateAction" in json.dumps(e.get("@type"))]
    names = []
    for run in runs:
        results = run.get("result") or []
        for ref in results if isinstance(results, list) else [results]:
            ident = ref.get("@id") if isinstance(ref, dict) else ref
            if isinstance(ident, str) and _is_local_reference(ident):
                names.append(ident[:-1] if ident.endswith("/") else ident)
            elif ident is not None and not isinstance(ident, str):
                raise _refuse(ident, "a result is not named by text")
    return names


def check_declared_results(data_dir: str | Path, metadata: dict[str, Any]) -> dict[str, Path]:
    """Every declared result mapped to its path inside ``data_dir``; refuses the crate at the first
    name that is unsafe (``path.unsafe``, naming it)."""
    return {name: resolve(data_dir, name) for name in declared_results(metadata)}


def _types(entity: dict[str, Any]) -> set[str]:
    value = entity.get("@type")
    values = value if isinstance(value, list) else [value]
    return {v.rsplit("/", 1)[-1].rsplit("#", 1)[-1] for v in values if isinstance(v, str)}


def check_data_entities(metadata: dict[str, Any]) -> list[str]:
    """Intake: every file or folder entity named by a path (not a web address, ``#id`` or the root
    ``./``) must have a name :func:`check_name` accepts; returns the names, raises at the first unsafe one.

    ``file:`` addresses point at the sender's disk, never into the crate, so they are refused too.
    """
    graph = metadata.get("@graph", []) if isinstance(metadata, dict) else []
    graph = graph if isinstance(graph, list) else []  # a malformed graph is the validator's to refuse
    names = []
    for entity in graph:
        if not isinstance(entity, dict) or not _types(entity) & _FILE_TYPES:
            continue
        ident = entity.get("@id")
        if not isinstance(ident, str) or ident in ("./", ".") or ident.startswith("#"):
            continue
        if ident.lower().startswith("file:"):
            raise _refuse(ident, "it points at a file outside the crate")
        if _SCHEME.match(ident):
            continue
        check_name(ident)
        names.append(ident)
    return names

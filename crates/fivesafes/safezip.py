"""Unpacking a Five Safes crate ZIP without trusting it.

A crate arrives as a ZIP holding exactly one BagIt directory. :func:`extract_bag` checks every entry
before writing anything (names, types, flags, declared sizes), then streams each entry to disk in
chunks while counting the bytes actually produced, so a ZIP whose headers lie is stopped as soon as it
exceeds a limit rather than after filling the disk. Each reason to refuse has its own
:class:`~crates.fivesafes.errors.CrateRefused` code.
"""

from __future__ import annotations

import shutil
import stat
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import CrateRefused

__all__ = ["Limits", "extract_bag", "is_plain_name"]

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

_CHUNK = 1 * MiB
# Compression ratios are only meaningful for entries of some size: a small file of zeros compresses
# a thousandfold and harms nobody.
_RATIO_GRACE_BYTES = 1 * MiB
_METADATA_NAME = ("data", "ro-crate-metadata.json")
# Characters the EPUB OCF ZIP container guidance (which the 5s-crate spec follows) bans from file names:
# they are path syntax or reserved on some system, or invisible.
_FORBIDDEN_CHARS = frozenset(chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))) | frozenset('"*:<>?\\|')
_MAX_NAME_BYTES = 255


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what an uploaded crate may cost to unpack.

    ``max_ratio`` bounds uncompressed/compressed bytes, per entry and for the whole archive, once more
    than 1 MiB has been produced; ``max_depth`` bounds the number of path components of an entry;
    ``max_metadata_bytes`` bounds ``data/ro-crate-metadata.json``, which is parsed in memory.
    """

    max_compressed_bytes: int = 2 * GiB
    max_uncompressed_bytes: int = 8 * GiB
    max_files: int = 20_000
    max_ratio: float = 100.0
    max_metadata_bytes: int = 10 * MiB
    max_depth: int = 32

    def __post_init__(self) -> None:
        for name in (
            "max_compressed_bytes",
            "max_uncompressed_bytes",
            "max_files",
            "max_metadata_bytes",
            "max_depth",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"Limits.{name} must be positive")
        if self.max_ratio < 1:
            raise ValueError("Limits.max_ratio must be at least 1")


@dataclass(frozen=True, slots=True)
class _Entry:
    info: zipfile.ZipInfo
    parts: tuple[str, ...]
    is_dir: bool


def extract_bag(zip_path: str | Path, dest_dir: str | Path, limits: Limits | None = None) -> Path:
    """Extract a crate ZIP into ``dest_dir`` and return the one bag directory it holds.

    ``dest_dir`` is created if needed and must be empty. On refusal nothing extracted is left behind.
    Raises :class:`CrateRefused`; checks only the ZIP container (BagIt is :func:`bag.verify_bag`'s job).
    """
    limits = limits or Limits()
    zip_path = Path(zip_path)
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise ValueError(f"{dest} must be an empty directory")
    try:
        archive_size = zip_path.stat().st_size
    except OSError as exc:
        raise CrateRefused("zip.unreadable", "The crate file could not be read.", zip_path.name) from exc
    if archive_size > limits.max_compressed_bytes:
        raise CrateRefused(
            "zip.too_large",
            f"The crate ZIP is {archive_size:,} bytes; at most {limits.max_compressed_bytes:,} are accepted.",
            zip_path.name,
        )
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise CrateRefused(
            "zip.not_a_zip", "The crate is not a readable ZIP archive.", zip_path.name
        ) from exc
    with archive:
        entries = _inspect(archive, limits)
        top = entries[0].parts[0]
        try:
            _extract(archive, entries, dest, limits, archive_size)
        except BaseException:
            shutil.rmtree(dest / top, ignore_errors=True)
            raise
    return dest / top


def _inspect(archive: zipfile.ZipFile, limits: Limits) -> list[_Entry]:
    """Check every entry's name, type and declared size; return them in archive order."""
    infos = archive.infolist()
    if not infos:
        raise CrateRefused("zip.empty", "The crate ZIP is empty; it must hold one BagIt directory.")
    if len(infos) > limits.max_files:
        raise CrateRefused(
            "zip.too_many_files",
            f"The crate ZIP has {len(infos):,} entries; at most {limits.max_files:,} are accepted.",
        )
    entries: list[_Entry] = []
    files: dict[str, str] = {}  # folded path -> name, for files
    folders: dict[str, str] = {}  # folded path -> name, for directories (explicit or implied)
    declared_total = 0
    for info in infos:
        entry = _entry(info, limits)
        entries.append(entry)
        if entry.info.flag_bits & 0x1:
            raise CrateRefused("zip.encrypted", "Encrypted ZIP entries are not accepted.", info.filename)
        declared_total += info.file_size
        _check_collisions(entry, files, folders)
        if entry.parts[1:] == _METADATA_NAME and info.file_size > limits.max_metadata_bytes:
            raise _metadata_too_large(info.filename, limits)
    if declared_total > limits.max_uncompressed_bytes:
        raise _too_big(limits)
    tops = {entry.parts[0] for entry in entries}
    if len(tops) > 1:
        shown = ", ".join(sorted(tops)[:5])
        raise CrateRefused(
            "zip.multiple_top_level",
            f"The crate ZIP must hold a single top-level folder (the bag), but has {len(tops)}: {shown}.",
        )
    for entry in entries:
        if len(entry.parts) == 1 and not entry.is_dir:
            raise CrateRefused(
                "zip.top_level_file",
                "The crate ZIP must hold a single folder (the bag) and no loose files at its top level.",
                entry.info.filename,
            )
    return entries


def _entry(info: zipfile.ZipInfo, limits: Limits) -> _Entry:
    name = info.filename
    if name.startswith(("/", "\\")) or (len(name) >= 2 and name[1] == ":" and name[0].isalpha()):
        raise CrateRefused("zip.absolute_path", "ZIP entries must not have absolute paths.", name)
    is_dir = name.endswith("/")
    parts = tuple(name.rstrip("/").split("/")) if name.rstrip("/") else ()
    if ".." in parts:
        raise CrateRefused(
            "zip.path_traversal", "ZIP entries must not climb out of the archive with '..'.", name
        )
    if not parts or any(not is_plain_name(part) for part in parts):
        raise CrateRefused(
            "zip.unsafe_name",
            "ZIP entry names must be plain relative paths: no empty parts, no names ending in '.', at most "
            '255 bytes per name, and none of " * : < > ? \\ | or control characters.',
            name,
        )
    if len(parts) > limits.max_depth:
        raise CrateRefused(
            "zip.path_too_deep", f"ZIP entries may be at most {limits.max_depth} folders deep.", name
        )
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        raise CrateRefused("zip.symlink", "Symbolic links are not accepted in a crate.", name)
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR) or (kind == stat.S_IFDIR and not is_dir):
        raise CrateRefused(
            "zip.special_file",
            "Only regular files and folders are accepted in a crate (no devices, pipes...).",
            name,
        )
    if kind == stat.S_IFREG and is_dir:
        raise CrateRefused("zip.special_file", "A ZIP entry is marked both as a file and a folder.", name)
    return _Entry(info, parts, is_dir)


def is_plain_name(part: str) -> bool:
    """Whether one path component is acceptable in a crate ZIP (EPUB OCF file-name rules)."""
    return (
        bool(part)
        and not part.endswith(".")
        and not set(part) & _FORBIDDEN_CHARS
        and len(part.encode("utf-8", "surrogatepass")) <= _MAX_NAME_BYTES
    )


def _fold(parts: tuple[str, ...]) -> str:
    # Case-insensitive, normalisation-insensitive file systems (macOS, Windows) would merge these names.
    return "/".join(unicodedata.normalize("NFC", part).casefold() for part in parts)


def _check_collisions(entry: _Entry, files: dict[str, str], folders: dict[str, str]) -> None:
    name = "/".join(entry.parts)
    for depth in range(1, len(entry.parts) + (1 if entry.is_dir else 0)):
        folder = entry.parts[:depth]
        folded, spelled = _fold(folder), "/".join(folder)
        if folded in files:
            raise CrateRefused("zip.path_conflict", "A ZIP entry is both a file and a folder.", spelled)
        known = folders.setdefault(folded, spelled)
        if known != spelled:
            raise CrateRefused(
                "zip.case_collision",
                f"The names {known!r} and {spelled!r} differ only by letter case or Unicode form.",
                spelled,
            )
    if entry.is_dir:
        return
    folded = _fold(entry.parts)
    if folded in folders:
        raise CrateRefused("zip.path_conflict", "A ZIP entry is both a file and a folder.", name)
    if folded in files:
        if files[folded] == name:
            raise CrateRefused("zip.duplicate_name", "The ZIP lists the same file twice.", name)
        raise CrateRefused(
            "zip.case_collision",
            f"The names {files[folded]!r} and {name!r} differ only by letter case or Unicode form.",
            name,
        )
    files[folded] = name


def _extract(
    archive: zipfile.ZipFile, entries: list[_Entry], dest: Path, limits: Limits, archive_size: int
) -> None:
    total = 0
    root = dest.resolve()
    # Every folder under the (empty) destination is made here and files are created exclusively, so no
    # link can lie on an entry's way: checking the joined path is enough, without resolving each one.
    made = {root}
    for entry in entries:
        target = root.joinpath(*entry.parts)
        # Names were checked above; this guards the invariant rather than the input.
        if ".." in entry.parts or not target.is_relative_to(root):
            raise CrateRefused(
                "zip.path_traversal", "A ZIP entry would be written outside the crate.", entry.info.filename
            )
        folder = target if entry.is_dir else target.parent
        if folder not in made:
            folder.mkdir(parents=True, exist_ok=True)
            made.add(folder)
        if entry.is_dir:
            continue
        is_metadata = entry.parts[1:] == _METADATA_NAME
        written = 0
        try:
            with archive.open(entry.info) as source, target.open("xb") as sink:
                while chunk := source.read(_CHUNK):
                    written += len(chunk)
                    total += len(chunk)
                    _check_progress(entry, written, total, is_metadata, limits, archive_size)
                    sink.write(chunk)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
            # Bad CRC, truncated data, unsupported compression or a header that lies about the size.
            raise CrateRefused(
                "zip.corrupt", "A ZIP entry is damaged or uses an unsupported format.", entry.info.filename
            ) from exc
        except OSError as exc:
            raise CrateRefused(
                "zip.corrupt", "A ZIP entry could not be unpacked.", entry.info.filename
            ) from exc


def _check_progress(
    entry: _Entry, written: int, total: int, is_metadata: bool, limits: Limits, archive_size: int
) -> None:
    name = entry.info.filename
    if is_metadata and written > limits.max_metadata_bytes:
        raise _metadata_too_large(name, limits)
    if total > limits.max_uncompressed_bytes:
        raise _too_big(limits)
    if written > _RATIO_GRACE_BYTES and written > limits.max_ratio * max(entry.info.compress_size, 1):
        raise _ratio(name, limits)
    if total > _RATIO_GRACE_BYTES and total > limits.max_ratio * max(archive_size, 1):
        raise _ratio(name, limits)


def _too_big(limits: Limits) -> CrateRefused:
    return CrateRefused(
        "zip.uncompressed_too_large",
        f"The crate unpacks to more than {limits.max_uncompressed_bytes:,} bytes.",
    )


def _ratio(name: str, limits: Limits) -> CrateRefused:
    return CrateRefused(
        "zip.ratio",
        f"The crate expands more than {limits.max_ratio:g} times its compressed size, like a ZIP bomb.",
        name,
    )


def _metadata_too_large(name: str, limits: Limits) -> CrateRefused:
    return CrateRefused(
        "zip.metadata_too_large",
        f"ro-crate-metadata.json is larger than {limits.max_metadata_bytes:,} bytes.",
        name,
    )

"""Unpacking a Five Safes crate ZIP without trusting it.

A crate arrives as a ZIP holding exactly one BagIt directory. :func:`extract_bag` checks every entry
before writing anything (names, types, flags, declared sizes), then streams each entry to disk in
chunks while counting the bytes actually produced, so a ZIP whose headers lie is stopped as soon as it
exceeds a limit rather than after filling the disk. Each reason to refuse has its own
:class:`~crates.fivesafes.errors.CrateRefused` code.
"""

from __future__ import annotations

import lzma
import shutil
import stat
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
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
# A local file header: signature, flags, method, CRC, compressed and uncompressed sizes, name and extra lengths.
_LOCAL_HEADER = struct.Struct("<4s2xHH4xIIIHH")
_ZIP64_MARKER = 0xFFFFFFFF


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
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise ValueError(f"{dest} must be an empty directory")
    archive, archive_size = _open_archive(Path(zip_path), limits)
    with archive:
        entries = _inspect(archive, limits)
        top = entries[0].parts[0]
        try:
            _extract(archive, entries, dest, limits, archive_size)
        except BaseException:
            shutil.rmtree(dest / top, ignore_errors=True)
            raise
    return dest / top


def _open_archive(zip_path: Path, limits: Limits) -> tuple[zipfile.ZipFile, int]:
    """Open the crate ZIP within ``limits.max_compressed_bytes``; return it and its size in bytes."""
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
    return archive, archive_size


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
    _check_layout(archive, entries)
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
    if "\x00" in info.orig_filename:
        # zipfile cuts a name at its first NUL; other readers do not, so the entry has two names.
        raise CrateRefused(
            "zip.unsafe_name",
            "ZIP entry names must not contain control characters (this one has a NUL).",
            info.orig_filename.replace("\x00", "\\x00"),
        )
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
    """Whether one path component is acceptable in a crate ZIP (EPUB OCF file-name rules).

    The rules hold for the name as written and as a system applying compatibility normalisation (NFKC)
    would see it, where FULLWIDTH FULL STOP, ONE DOT LEADER or FULLWIDTH SOLIDUS spell '..' and '/'.
    """
    if not part or len(part.encode("utf-8", "surrogatepass")) > _MAX_NAME_BYTES:
        return False
    return all(
        not form.endswith(".") and "/" not in form and not set(form) & _FORBIDDEN_CHARS
        for form in (part, unicodedata.normalize("NFKC", part))
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


def _check_layout(archive: zipfile.ZipFile, entries: list[_Entry]) -> None:
    """Each entry's local header agrees with the central directory, and no entry's data overlaps another's.

    Readers that stream a ZIP trust the local headers and readers that seek trust the central directory:
    where the two disagree, or entries share bytes (as in overlapping ZIP bombs), a crate would not be
    the same crate to every reader.
    """
    ordered = sorted(entries, key=lambda entry: entry.info.header_offset)
    ends = [entry.info.header_offset for entry in ordered[1:]] + [archive.start_dir]
    fp = archive.fp
    for entry, end in zip(ordered, ends, strict=True):
        info, name = entry.info, entry.info.filename
        try:
            fp.seek(info.header_offset)  # type: ignore[union-attr]
            header = fp.read(_LOCAL_HEADER.size)  # type: ignore[union-attr]
            signature, flags, _method, crc, compressed, size, name_length, extra_length = (
                _LOCAL_HEADER.unpack(header)
            )
            local_name = fp.read(name_length)  # type: ignore[union-attr]
            central_name = info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")
        except (OSError, ValueError, struct.error) as exc:
            raise CrateRefused("zip.corrupt", "A ZIP entry's local header cannot be read.", name) from exc
        if signature != b"PK\x03\x04" or local_name != central_name:
            raise CrateRefused(
                "zip.corrupt", "A ZIP entry's local header does not match the central directory.", name
            )
        sizes = ((compressed, info.compress_size), (size, info.file_size))
        if not flags & 0x8 and (
            crc != info.CRC or any(local not in (central, _ZIP64_MARKER) for local, central in sizes)
        ):
            raise CrateRefused(
                "zip.corrupt",
                "A ZIP entry's local header gives another size or checksum than the central directory.",
                name,
            )
        data_end = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length + info.compress_size
        if data_end > end:
            raise CrateRefused(
                "zip.overlap",
                "ZIP entries overlap (one entry's data runs into another's), as in some ZIP bombs.",
                name,
            )


def _extract(
    archive: zipfile.ZipFile, entries: list[_Entry], dest: Path, limits: Limits, archive_size: int
) -> None:
    progress = _Progress(limits, archive_size)
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
        try:
            with target.open("xb") as sink:
                for chunk in _chunks(archive, entry, progress):
                    sink.write(chunk)
        except OSError as exc:
            raise CrateRefused(
                "zip.corrupt", "A ZIP entry could not be unpacked.", entry.info.filename
            ) from exc


@dataclass(slots=True)
class _Progress:
    """The bytes an archive has produced so far, against the limits on its uncompressed size and ratio."""

    limits: Limits
    archive_size: int
    total: int = 0

    def add(self, entry: _Entry, written: int, added: int) -> None:
        """Count ``added`` more bytes of ``entry``, which has produced ``written`` in all; refuse past a limit."""
        self.total += added
        limits, name = self.limits, entry.info.filename
        if entry.parts[1:] == _METADATA_NAME and written > limits.max_metadata_bytes:
            raise _metadata_too_large(name, limits)
        if self.total > limits.max_uncompressed_bytes:
            raise _too_big(limits)
        if written > _RATIO_GRACE_BYTES and written > limits.max_ratio * max(entry.info.compress_size, 1):
            raise _ratio(name, limits)
        if self.total > _RATIO_GRACE_BYTES and self.total > limits.max_ratio * max(self.archive_size, 1):
            raise _ratio(name, limits)


def _chunks(archive: zipfile.ZipFile, entry: _Entry, progress: _Progress) -> Iterator[bytes]:
    """Stream a file entry's data in chunks of at most 1 MiB, counting the bytes actually produced.

    Raises :class:`CrateRefused` as soon as a limit is passed, and when the data are damaged, fail their
    CRC-32, use an unsupported format or do not have the size the headers give.
    """
    written = 0
    try:
        with archive.open(entry.info) as source:
            while chunk := source.read(_CHUNK):
                written += len(chunk)
                progress.add(entry, written, len(chunk))
                yield chunk
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        NotImplementedError,
        RuntimeError,
        zlib.error,
        lzma.LZMAError,
    ) as exc:
        # Bad CRC, truncated or damaged data, unsupported compression or a header that lies about the size.
        raise CrateRefused(
            "zip.corrupt", "A ZIP entry is damaged or uses an unsupported format.", entry.info.filename
        ) from exc
    except OSError as exc:
        raise CrateRefused("zip.corrupt", "A ZIP entry could not be unpacked.", entry.info.filename) from exc


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

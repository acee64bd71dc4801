"""ZIP archives in and out of the TRE: safe extraction and reproducible writing.

:func:`safe_extract` is for anything received (workflow crates, request crates): it refuses absolute
paths, ``..``, symbolic links, duplicate names and archives over the size or member limits, and never
writes outside the destination. :func:`write_zip` writes a directory with sorted entries, fixed
timestamps and fixed permissions, so the same files always give the same bytes (and the same sha256).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

__all__ = ["ArchiveError", "safe_extract", "sha256_file", "write_zip"]

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a ZIP entry can carry
_CHUNK = 1 << 20


class ArchiveError(ValueError):
    """An archive is unsafe or too large to extract."""


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_zip(source: Path, dest: Path, *, root: str | None = None) -> str:
    """Zip the contents of ``source`` into ``dest`` (under the top-level folder ``root``, if given).

    Regular files and directories only; symbolic links and special files are refused. The archive is
    written to a temporary name and renamed, so ``dest`` is either complete or absent. Returns the
    sha256 of the archive.
    """
    source = Path(source)
    dest = Path(dest)
    partial = dest.with_name(dest.name + ".partial")
    entries = sorted(path for path in source.rglob("*"))
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            if root is not None:
                archive.writestr(_entry(f"{root}/", directory=True), b"")
            for path in entries:
                relative = path.relative_to(source).as_posix()
                name = f"{root}/{relative}" if root is not None else relative
                mode = path.lstat().st_mode
                if stat.S_ISDIR(mode):
                    archive.writestr(_entry(f"{name}/", directory=True), b"")
                elif stat.S_ISREG(mode):
                    with path.open("rb") as src, archive.open(_entry(name), "w") as dst:
                        shutil.copyfileobj(src, dst, _CHUNK)
                else:
                    raise ArchiveError(f"{relative}: only regular files and directories can be archived")
        partial.replace(dest)
    finally:
        partial.unlink(missing_ok=True)
    return sha256_file(dest)


def _entry(name: str, *, directory: bool = False) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.create_system = 3  # Unix, so that the permission bits below are honoured
    if directory:
        info.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10  # 0x10: MS-DOS directory flag
    else:
        info.external_attr = (stat.S_IFREG | 0o644) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
    return info


def safe_extract(
    archive_path: Path, dest: Path, *, max_bytes: int = 1 << 30, max_members: int = 10_000
) -> list[Path]:
    """Extract ``archive_path`` into the (new or empty) directory ``dest``; return the files written.

    Raises :class:`ArchiveError`, having written nothing, if any member is unsafe or the archive
    declares more than ``max_bytes`` uncompressed or more than ``max_members`` entries; the byte count
    is enforced again while extracting, since declared sizes can lie.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise ArchiveError(f"{dest} is not empty")
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"{Path(archive_path).name} is not a readable ZIP archive ({exc})") from None
    with archive:
        members = archive.infolist()
        if len(members) > max_members:
            raise ArchiveError(f"the archive has {len(members)} entries, over the limit of {max_members}")
        if sum(member.file_size for member in members) > max_bytes:
            raise ArchiveError(f"the archive expands to more than {max_bytes} bytes")
        seen: set[tuple[str, ...]] = set()
        for member in members:
            parts = _member_parts(member)
            if parts in seen:
                raise ArchiveError(f"the archive contains {member.filename!r} twice")
            seen.add(parts)
        written: list[Path] = []
        remaining = max_bytes
        for member in members:
            target = dest.joinpath(*_member_parts(member))
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, target.open("xb") as dst:
                while chunk := src.read(_CHUNK):
                    remaining -= len(chunk)
                    if remaining < 0:
                        dst.close()
                        shutil.rmtree(dest)
                        dest.mkdir()
                        raise ArchiveError(f"the archive expands to more than {max_bytes} bytes")
                    dst.write(chunk)
            os.chmod(target, 0o644)
            written.append(target)
    return written


def _member_parts(member: zipfile.ZipInfo) -> tuple[str, ...]:
    name = member.filename
    if "\\" in name or "\x00" in name:
        raise ArchiveError(f"unsafe entry name {name!r}")
    path = PurePosixPath(name)
    if path.is_absolute() or any(part in ("..", ".", "") for part in name.rstrip("/").split("/")):
        raise ArchiveError(f"unsafe entry path {name!r}")
    if stat.S_ISLNK(member.external_attr >> 16):
        raise ArchiveError(f"symbolic link entry {name!r}")
    if len(path.parts) > 32:
        raise ArchiveError(f"entry path {name!r} is too deep")
    return path.parts

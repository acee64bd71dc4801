"""Verifying a crate's BagIt bag straight from its ZIP, without unpacking the payload.

:func:`verify_zip_bag` reaches the verdict of :func:`~crates.fivesafes.safezip.extract_bag` followed by
:func:`~crates.fivesafes.bag.verify_bag`, with the same refusal codes, but writes no payload to disk:

- the archive gets every check of ``extract_bag`` (names, types, flags, declared sizes, local headers),
  and every entry is inflated through its CRC-32 check while the bytes actually produced are counted
  against the limits on size and compression ratio, in archive order as ``extract_bag`` does;
- the tag files bagit reads (``bagit.txt``, ``bag-info.txt``, ``fetch.txt``, ``manifest-*.txt``,
  ``tagmanifest-*.txt``) are the only files written, to a small temporary folder, where ``bagit.Bag``
  parses the declaration, bag-info and manifests and the checks of ``verify_bag`` that need no payload
  run unchanged;
- what ``Bag.validate`` checks against the payload on disk is checked against the archive: each payload
  entry is hashed (SHA-512 and any other manifest algorithm) as it streams out in 1 MiB chunks, and the
  Payload-Oxum, the completeness of the manifests and every checksum are compared as bagit compares
  them, faults reported in the same order.

A refusal of the bag found in its tag files is raised only once the whole archive has streamed, since
``extract_bag`` would have refused a damaged archive first.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import tempfile
import unicodedata
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import bagit

from .bag import (
    _EXTERNAL_ID_RE,
    METADATA,
    TAGMANIFEST,
    _bagit_refusal,
    _read_tag_files,
)
from .errors import CrateRefused
from .safezip import Limits, _chunks, _Entry, _inspect, _open_archive, _Progress

__all__ = ["ZipBag", "verify_zip_bag"]

# The files at the top of a bag that bagit.Bag reads when it loads a bag.
_BAGIT_READS = re.compile(r"^(bagit\.txt|bag-info\.txt|package-info\.txt|fetch\.txt|(tag)?manifest-.+\.txt)$")
_HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ZipBag:
    """What :func:`verify_zip_bag` established about a crate ZIP that passed.

    The fields of :class:`~crates.fivesafes.bag.BagInfo` but its path (nothing is unpacked), and
    ``metadata``: the bytes of ``data/ro-crate-metadata.json``, within ``Limits.max_metadata_bytes``.
    """

    external_identifier: str
    uuid: uuid.UUID
    bagit_version: tuple[int, int]
    algorithms: tuple[str, ...]
    payload_files: int
    payload_bytes: int
    has_tagmanifest: bool
    metadata: bytes = field(repr=False)
    info: dict[str, str | list[str]] = field(default_factory=dict)


@dataclass(slots=True)
class _Streamed:
    """What streaming the archive found: the size of every file (by path in the bag) and the digests asked for."""

    sizes: dict[str, int] = field(default_factory=dict)
    digests: dict[str, dict[str, str]] = field(default_factory=dict)
    metadata: bytes = b""


def verify_zip_bag(zip_path: str | Path, limits: Limits | None = None) -> ZipBag:
    """Check a crate ZIP and the BagIt bag in it, every checksum included, without unpacking its payload.

    Raises :class:`CrateRefused` with the code ``extract_bag`` and ``verify_bag`` would give the crate.
    Memory stays flat whatever the payload's size: entries are read in 1 MiB chunks.
    """
    limits = limits or Limits()
    archive, archive_size = _open_archive(Path(zip_path), limits)
    with archive, tempfile.TemporaryDirectory(prefix="crate-tags-") as scratch:
        entries = _inspect(archive, limits)
        bag_dir = Path(scratch) / entries[0].parts[0]
        bag_dir.mkdir()
        tag_sizes = _read_bagit_files(archive, entries, bag_dir, limits, archive_size)
        files = {_relative(entry) for entry in entries if not entry.is_dir}
        payload = sorted(name for name in files if name.startswith("data/"))
        bag: bagit.Bag | None = None
        pending: CrateRefused | None = None
        try:
            bag, external_id = _read_tag_files(bag_dir)
            if METADATA not in files:
                raise CrateRefused(
                    "bag.metadata_missing", "The bag's payload has no data/ro-crate-metadata.json.", METADATA
                )
        except CrateRefused as refusal:
            pending = refusal
        wanted = _wanted_digests(bag, payload) if pending is None else {}
        streamed = _stream(archive, entries, tag_sizes, wanted, limits, archive_size)
        if pending is not None:
            raise pending
        assert bag is not None
        try:
            _validate(bag, bag_dir, files, payload, streamed)
        except bagit.BagError as exc:
            raise _bagit_refusal(exc, bag_dir) from exc
        version = tuple(bag.version_info)
        return ZipBag(
            external_identifier=external_id,
            uuid=uuid.UUID(_EXTERNAL_ID_RE.match(external_id).group(1)),  # type: ignore[union-attr]
            bagit_version=(version[0], version[1]),
            algorithms=tuple(sorted(bag.algorithms)),
            payload_files=len(payload),
            payload_bytes=sum(streamed.sizes[name] for name in payload),
            has_tagmanifest=(bag_dir / TAGMANIFEST).is_file(),
            metadata=streamed.metadata,
            info=dict(bag.info),
        )


def _relative(entry: _Entry) -> str:
    """The entry's path inside the bag."""
    return "/".join(entry.parts[1:])


def _read_bagit_files(
    archive: zipfile.ZipFile, entries: list[_Entry], bag_dir: Path, limits: Limits, archive_size: int
) -> dict[str, int]:
    """Write the tag files bagit reads into ``bag_dir`` (folders of those names too); return their sizes.

    If one cannot be read, every entry before it is streamed in archive order first, so the refusal is
    the one ``extract_bag`` meets first.
    """
    sizes: dict[str, int] = {}
    progress = _Progress(limits, archive_size)
    for position, entry in enumerate(entries):
        if len(entry.parts) < 2 or not _BAGIT_READS.match(entry.parts[1]):
            continue
        target = bag_dir / entry.parts[1]
        if entry.is_dir or len(entry.parts) > 2:
            target.mkdir(exist_ok=True)
            continue
        size = 0
        try:
            with target.open("xb") as sink:
                for chunk in _chunks(archive, entry, progress):
                    size += len(chunk)
                    sink.write(chunk)
        except CrateRefused:
            _replay(archive, entries[: position + 1], limits, archive_size)
            raise
        except OSError as exc:
            raise CrateRefused(
                "zip.corrupt", "A ZIP entry could not be unpacked.", entry.info.filename
            ) from exc
        sizes[_relative(entry)] = size
    return sizes


def _replay(archive: zipfile.ZipFile, entries: list[_Entry], limits: Limits, archive_size: int) -> None:
    """Stream ``entries`` in order through extract_bag's checks, raising its first refusal."""
    progress = _Progress(limits, archive_size)
    for entry in entries:
        if not entry.is_dir:
            for _ in _chunks(archive, entry, progress):
                pass


def _wanted_digests(bag: bagit.Bag, payload: list[str]) -> dict[str, list[str]]:
    """The algorithms bagit would hash each file with, by the file's path in the bag.

    bagit finds a manifest path's file through the Unicode-normalised names of the payload, looked up
    with the path as the manifest spells it.
    """
    on_disk = {unicodedata.normalize("NFC", name): name for name in payload}
    wanted: dict[str, list[str]] = {}
    for key, hashes in bag.entries.items():
        algorithms = wanted.setdefault(on_disk.get(key, key), [])
        algorithms.extend(alg for alg in hashes if alg in bag.algorithms and alg not in algorithms)
    return wanted


def _stream(
    archive: zipfile.ZipFile,
    entries: list[_Entry],
    tag_sizes: dict[str, int],
    wanted: dict[str, list[str]],
    limits: Limits,
    archive_size: int,
) -> _Streamed:
    """Inflate every file entry in archive order through extract_bag's checks, hashing those ``wanted``.

    The tag files already read count their size at their place in the archive, as if read again.
    """
    progress = _Progress(limits, archive_size)
    streamed = _Streamed()
    for entry in entries:
        if entry.is_dir:
            continue
        name = _relative(entry)
        if name in tag_sizes:
            size = tag_sizes[name]
            if size:
                progress.add(entry, size, size)
            streamed.sizes[name] = size
            continue
        algorithms = wanted.get(name, [])
        hashers = [hashlib.new(algorithm) for algorithm in algorithms]
        keep = name == METADATA
        kept: list[bytes] = []
        size = 0
        for chunk in _chunks(archive, entry, progress):
            size += len(chunk)
            for hasher in hashers:
                hasher.update(chunk)
            if keep:
                kept.append(chunk)
        streamed.sizes[name] = size
        if hashers:
            streamed.digests[name] = {
                algorithm: _hexdigest(hasher) for algorithm, hasher in zip(algorithms, hashers, strict=True)
            }
        if keep:
            streamed.metadata = b"".join(kept)
    return streamed


def _hexdigest(hasher: hashlib._Hash) -> str:
    try:
        return hasher.hexdigest()
    except TypeError as exc:  # the SHAKE algorithms have no fixed length, so no manifest can use them
        raise bagit.BagError(f"{hasher.name} checksums cannot be checked") from exc


def _validate(
    bag: bagit.Bag, bag_dir: Path, files: set[str], payload: list[str], streamed: _Streamed
) -> None:
    """``Bag.validate``, with the payload's files, sizes and digests taken from the archive.

    Raises the ``bagit.BagError`` bagit would raise for the unpacked bag.
    """
    # The structure: the data folder and the SHA-512 manifest exist, or the checks before would have refused.
    with (bag_dir / "bagit.txt").open("rb") as declaration:
        if declaration.read(4).startswith(codecs.BOM_UTF8):
            raise bagit.BagValidationError("bagit.txt must not contain a byte-order mark")
    bag.validate_fetch()
    _validate_oxum(bag, payload, streamed)
    _validate_completeness(bag, files, payload)
    _validate_entries(bag, bag_dir, payload, streamed)


def _validate_oxum(bag: bagit.Bag, payload: list[str], streamed: _Streamed) -> None:
    oxum = bag.info.get("Payload-Oxum")
    if oxum is None:
        return
    if isinstance(oxum, list):  # bagit uses the first
        oxum = oxum[0]
    byte_count, _, file_count = oxum.partition(".")
    if not (byte_count.isdecimal() and file_count.isdecimal()):
        raise bagit.BagError(f"Malformed Payload-Oxum value: {oxum}")
    found_bytes = sum(streamed.sizes[name] for name in payload)
    if (int(file_count), int(byte_count)) != (len(payload), found_bytes):
        raise bagit.BagValidationError(
            f"Payload-Oxum validation failed. Expected {int(file_count)} files and {int(byte_count)} bytes "
            f"but found {len(payload)} files and {found_bytes} bytes"
        )


def _validate_completeness(bag: bagit.Bag, files: set[str], payload: list[str]) -> None:
    """Every manifest line has a file and every payload file a manifest line, compared as bagit compares them."""
    on_disk = {unicodedata.normalize("NFC", name): name for name in payload}
    listed = {unicodedata.normalize("NFC", key): key for key in bag.entries}
    in_manifests = {unicodedata.normalize("NFC", key) for key in bag.entries if key.startswith("data/")}
    # Tag files a tag manifest lists must exist; unlisted tag files are allowed.
    in_manifests.update(key for key in bag.entries if not key.startswith("data/") and key not in files)
    errors: list[bagit.ManifestErrorDetail] = [
        bagit.FileMissing(listed.get(name, name)) for name in sorted(in_manifests - on_disk.keys())
    ]
    errors += [bagit.UnexpectedFile(on_disk[name]) for name in sorted(on_disk.keys() - in_manifests)]
    if errors:
        raise bagit.BagValidationError("Bag is incomplete", errors)


def _validate_entries(bag: bagit.Bag, bag_dir: Path, payload: list[str], streamed: _Streamed) -> None:
    """Compare every manifest checksum with the file's, in bagit's order."""
    on_disk = {unicodedata.normalize("NFC", name): name for name in payload}
    errors: list[bagit.ChecksumMismatch] = []
    for key, hashes in bag.entries.items():
        name = on_disk.get(key, key)
        algorithms = [alg for alg in hashes if alg in bag.algorithms]
        if name in streamed.digests:
            computed = streamed.digests[name]
        elif not name.startswith("data/") and (bag_dir / name).is_file():
            computed = _file_digests(bag_dir / name, algorithms)
        else:  # as bagit finds it when it cannot open the file
            computed = {alg: f"Could not read {name}" for alg in algorithms}
        for alg in algorithms:
            if hashes[alg].lower() != computed[alg]:
                errors.append(bagit.ChecksumMismatch(key, alg, hashes[alg].lower(), computed[alg]))
    if errors:
        raise bagit.BagValidationError("Bag validation failed", errors)


def _file_digests(path: Path, algorithms: list[str]) -> dict[str, str]:
    hashers = [hashlib.new(algorithm) for algorithm in algorithms]
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            for hasher in hashers:
                hasher.update(chunk)
    return {algorithm: _hexdigest(hasher) for algorithm, hasher in zip(algorithms, hashers, strict=True)}

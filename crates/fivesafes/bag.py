"""BagIt for Five Safes crates: verify a received bag, write and refresh our own.

The 5s-crate profile wants BagIt 1.0 or later, a SHA-512 payload manifest (``manifest-sha512.txt``),
preferably a SHA-512 tag manifest, and ``External-Identifier: urn:uuid:<uuid>`` in ``bag-info.txt``.
Reading and fixity checking use the ``bagit`` library. Writing is done here: ``bagit.make_bag`` and
``Bag.save`` change the process's working directory (unsafe in a threaded server) and ``make_bag``
declares BagIt 0.97.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import bagit

from .errors import CrateRefused

# bagit logs a line per file at INFO (10,000 lines for a 10,000-file crate): quiet unless someone has
# chosen its level (``python -m crates.fivesafes.validate --verbose``, or a logging configuration).
_BAGIT_LOG = logging.getLogger("bagit")
if _BAGIT_LOG.level == logging.NOTSET:
    _BAGIT_LOG.setLevel(logging.WARNING)

__all__ = ["BagInfo", "create_bag", "regenerate_manifests", "verify_bag"]

MANIFEST = "manifest-sha512.txt"
TAGMANIFEST = "tagmanifest-sha512.txt"
METADATA = "data/ro-crate-metadata.json"
SOFTWARE_AGENT = "Five Safes Portal (crates.fivesafes)"

_EXTERNAL_ID_RE = re.compile(
    r"^urn:uuid:([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)
_MANIFEST_RE = re.compile(r"^(tag)?manifest-([A-Za-z0-9]+)\.txt$")
_HASH_CHUNK = 1024 * 1024
_EXAMPLE_ID = "urn:uuid:9796155a-fe44-4614-89b8-71945f718ffb"


@dataclass(frozen=True, slots=True)
class BagInfo:
    """What :func:`verify_bag` established about a bag that passed.

    ``algorithms`` are the checksum algorithms of its manifests, sorted; ``has_tagmanifest`` is False
    when ``tagmanifest-sha512.txt`` is absent (allowed, but not advised).
    """

    path: Path
    external_identifier: str
    uuid: uuid.UUID
    bagit_version: tuple[int, int]
    algorithms: tuple[str, ...]
    payload_files: int
    payload_bytes: int
    has_tagmanifest: bool
    info: dict[str, str | list[str]] = field(default_factory=dict)


def verify_bag(bag_dir: str | Path) -> BagInfo:
    """Check a bag's structure, identifier and every checksum; raise :class:`CrateRefused` at the first fault.

    Nothing in the bag may be a symbolic link or special file, and ``fetch.txt`` must not ask for files
    to be downloaded: a crate must arrive complete.
    """
    bag_dir = Path(bag_dir)
    if not bag_dir.is_dir():
        raise CrateRefused("bag.not_a_bag", "The crate is not a folder.", bag_dir.name)
    payload_files, payload_bytes = _scan(bag_dir)
    bag, external_id = _read_tag_files(bag_dir)
    version = tuple(bag.version_info)
    if not (bag_dir / METADATA).is_file():
        raise CrateRefused(
            "bag.metadata_missing", "The bag's payload has no data/ro-crate-metadata.json.", METADATA
        )
    try:
        bag.validate(processes=1)
    except bagit.BagError as exc:
        raise _bagit_refusal(exc, bag_dir) from exc
    return BagInfo(
        path=bag_dir,
        external_identifier=external_id,
        uuid=uuid.UUID(_EXTERNAL_ID_RE.match(external_id).group(1)),  # type: ignore[union-attr]
        bagit_version=(version[0], version[1]),
        algorithms=tuple(sorted(bag.algorithms)),
        payload_files=payload_files,
        payload_bytes=payload_bytes,
        has_tagmanifest=(bag_dir / TAGMANIFEST).is_file(),
        info=dict(bag.info),
    )


def _read_tag_files(bag_dir: Path) -> tuple[bagit.Bag, str]:
    """Load the bag's declaration, bag-info.txt and manifests with bagit; return it and its External-Identifier.

    Checks what needs no payload: the BagIt version, the SHA-512 manifest, no files to fetch, the identifier.
    """
    if not (bag_dir / "bagit.txt").is_file():
        raise CrateRefused(
            "bag.not_a_bag", "The crate folder has no bagit.txt, so it is not a BagIt bag.", "bagit.txt"
        )
    try:
        bag = bagit.Bag(str(bag_dir))
    except bagit.BagError as exc:
        raise CrateRefused(
            "bag.unreadable", f"The bag's tag files cannot be read: {_within(exc, bag_dir)}.", "bagit.txt"
        ) from exc
    except (OSError, UnicodeError) as exc:
        raise CrateRefused("bag.unreadable", "The bag's tag files cannot be read.", "bagit.txt") from exc
    except ValueError as exc:  # e.g. a manifest path with a NUL byte, which no file can have
        raise CrateRefused(
            "bag.unreadable",
            f"The bag's manifests list a path no file can have ({_within(exc, bag_dir)}).",
            MANIFEST,
        ) from exc
    version = tuple(bag.version_info)
    if version < (1, 0):
        raise CrateRefused(
            "bag.version",
            f"The bag declares BagIt {'.'.join(map(str, version))}; Five Safes crates need BagIt 1.0 "
            "or later.",
            "bagit.txt",
        )
    if not (bag_dir / MANIFEST).is_file():
        raise CrateRefused(
            "bag.manifest_missing", "The bag needs a SHA-512 payload manifest, manifest-sha512.txt.", MANIFEST
        )
    if (bag_dir / "fetch.txt").is_file() and (bag_dir / "fetch.txt").stat().st_size > 0:
        raise CrateRefused(
            "bag.fetch",
            "The bag lists files to download (fetch.txt); crates must include all their files.",
            "fetch.txt",
        )
    return bag, _external_identifier(bag.info)


def _scan(bag_dir: Path) -> tuple[int, int]:
    """Refuse links and special files anywhere in the bag; return the payload's file count and bytes.

    One pass of ``os.scandir``, whose entries know their type without a ``stat`` per file.
    """
    files = size = 0
    pending = [(str(bag_dir), "")]
    while pending:
        folder, prefix = pending.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    relative = prefix + entry.name
                    if entry.is_symlink():
                        raise CrateRefused(
                            "bag.symlink", "Symbolic links are not accepted in a crate.", relative
                        )
                    if entry.is_dir(follow_symlinks=False):
                        pending.append((entry.path, relative + "/"))
                    elif entry.is_file(follow_symlinks=False):
                        if relative.startswith("data/"):
                            files += 1
                            size += entry.stat(follow_symlinks=False).st_size
                    else:
                        raise CrateRefused(
                            "bag.special_file", "Only regular files and folders are accepted.", relative
                        )
        except OSError as exc:
            raise CrateRefused(
                "bag.unreadable", "The bag's folders cannot be read.", prefix.rstrip("/") or None
            ) from exc
    return files, size


def _external_identifier(info: dict[str, str | list[str]]) -> str:
    value = info.get("External-Identifier")
    if value is None:
        raise CrateRefused(
            "bag.external_identifier_missing",
            f"bag-info.txt needs an External-Identifier such as {_EXAMPLE_ID}.",
            "bag-info.txt",
        )
    if isinstance(value, list):
        raise CrateRefused(
            "bag.external_identifier_multiple",
            "bag-info.txt must give exactly one External-Identifier.",
            "bag-info.txt",
        )
    if not _EXTERNAL_ID_RE.match(value):
        raise CrateRefused(
            "bag.external_identifier_invalid",
            f"The External-Identifier {value!r} must be a UUID URN such as {_EXAMPLE_ID}.",
            "bag-info.txt",
        )
    return value


def _within(exc: BaseException | str, root: Path | str | None) -> str:
    """bagit's message with the server's own folder for the bag taken out: paths read from the bag."""
    text = str(exc)
    if root is not None:
        for folder in {str(root), os.path.realpath(root)}:
            text = text.replace(folder + os.sep, "").replace(folder, "the bag")
    return text


def _bagit_refusal(exc: bagit.BagError, root: Path | str | None = None) -> CrateRefused:
    """The refusal for a fault bagit found while validating the bag in `root`."""
    if isinstance(exc, bagit.BagValidationError):
        return _validation_refusal(exc, root)
    return CrateRefused("bag.invalid", f"The bag is not valid: {_within(exc, root)}.")


def _validation_refusal(exc: bagit.BagValidationError, root: Path | str | None = None) -> CrateRefused:
    details = list(exc.details or [])
    for detail in details:
        if isinstance(detail, bagit.ChecksumMismatch):
            payload = detail.path.startswith("data" + os.sep) or detail.path.startswith("data/")
            return CrateRefused(
                "bag.checksum_mismatch" if payload else "bag.tag_checksum_mismatch",
                f"The {detail.algorithm} checksum of {detail.path} does not match the bag's manifest: "
                "the file was changed or damaged after the bag was made.",
                detail.path,
            )
    for detail in details:
        if isinstance(detail, bagit.FileMissing):
            return CrateRefused(
                "bag.file_missing", f"{detail.path} is listed in the bag's manifest but missing.", detail.path
            )
        if isinstance(detail, bagit.UnexpectedFile):
            return CrateRefused(
                "bag.unexpected_file", f"{detail.path} is in the bag but not in its manifest.", detail.path
            )
    message = _within(exc.message if hasattr(exc, "message") else exc, root)
    if "Payload-Oxum" in message:
        return CrateRefused(
            "bag.oxum_mismatch",
            "The file count or size in bag-info.txt (Payload-Oxum) is wrong.",
            "bag-info.txt",
        )
    return CrateRefused("bag.invalid", f"The bag is not valid: {message}.")


# -- writing --------------------------------------------------------------------------------------------
def create_bag(bag_dir: str | Path, external_identifier: str | None = None) -> str:
    """Turn ``bag_dir`` (whose payload is already in ``bag_dir/data``) into a BagIt 1.0 bag.

    Writes ``bagit.txt``, ``bag-info.txt`` (External-Identifier, Bagging-Date, Bag-Software-Agent,
    Payload-Oxum) and SHA-512 manifests; returns the External-Identifier (a fresh ``urn:uuid:`` unless
    one is given).
    """
    bag_dir = Path(bag_dir)
    if not (bag_dir / "data").is_dir():
        raise ValueError(f"{bag_dir}/data must hold the payload")
    external_identifier = external_identifier or f"urn:uuid:{uuid.uuid4()}"
    if not _EXTERNAL_ID_RE.match(external_identifier):
        raise ValueError(f"External-Identifier must be a urn:uuid: URN, not {external_identifier!r}")
    _atomic_write(bag_dir / "bagit.txt", "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    info = [
        ("External-Identifier", external_identifier),
        ("Bagging-Date", date.today().isoformat()),
        ("Bag-Software-Agent", SOFTWARE_AGENT),
    ]
    _atomic_write(bag_dir / "bag-info.txt", "".join(f"{key}: {value}\n" for key, value in info))
    regenerate_manifests(bag_dir)
    return external_identifier


def regenerate_manifests(bag_dir: str | Path) -> None:
    """Recompute the payload manifests, Payload-Oxum and then the tag manifests, in that order.

    SHA-512 is always written; other algorithms already present are refreshed too, and manifests for
    algorithms this Python cannot compute are deleted (a stale manifest is worse than none).
    """
    bag_dir = Path(bag_dir)
    if not (bag_dir / "bag-info.txt").is_file():
        raise ValueError(f"{bag_dir} is not a bag: bag-info.txt is missing")
    algorithms = {"sha512"}
    for path in bag_dir.iterdir():
        match = _MANIFEST_RE.match(path.name)
        if match:
            algorithm = match.group(2).lower()
            if algorithm in bagit.CHECKSUM_ALGOS and algorithm in hashlib.algorithms_available:
                algorithms.add(algorithm)
            else:
                path.unlink()
    ordered = sorted(algorithms)
    payload = sorted(_payload_files(bag_dir))
    lines: dict[str, list[str]] = {algorithm: [] for algorithm in ordered}
    total_bytes = 0
    for relative in payload:
        digests, size = _digests(bag_dir / relative, ordered)
        total_bytes += size
        for algorithm in ordered:
            lines[algorithm].append(f"{digests[algorithm]}  {_encode_path(relative)}\n")
    for algorithm in ordered:
        _atomic_write(bag_dir / f"manifest-{algorithm}.txt", "".join(lines[algorithm]))
    _set_oxum(bag_dir / "bag-info.txt", f"{total_bytes}.{len(payload)}")
    tag_files = sorted(_tag_files(bag_dir))
    for algorithm in ordered:
        tag_lines = [
            f"{_digests(bag_dir / name, [algorithm])[0][algorithm]}  {_encode_path(name)}\n"
            for name in tag_files
        ]
        _atomic_write(bag_dir / f"tagmanifest-{algorithm}.txt", "".join(tag_lines))


def _payload_files(bag_dir: Path) -> Iterator[str]:
    data = bag_dir / "data"
    for root, dirs, files in os.walk(data):
        dirs.sort()
        for name in files:
            path = Path(root, name)
            if path.is_symlink() or not path.is_file():
                raise ValueError(f"{path} is not a regular file; bags hold regular files only")
            yield path.relative_to(bag_dir).as_posix()


def _tag_files(bag_dir: Path) -> Iterator[str]:
    for root, dirs, files in os.walk(bag_dir):
        if Path(root) == bag_dir:
            dirs[:] = [d for d in dirs if d != "data"]
        for name in files:
            relative = Path(root, name).relative_to(bag_dir).as_posix()
            if not relative.startswith("tagmanifest-"):
                yield relative


def _digests(path: Path, algorithms: list[str]) -> tuple[dict[str, str], int]:
    hashers = {algorithm: hashlib.new(algorithm) for algorithm in algorithms}
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            size += len(chunk)
            for hasher in hashers.values():
                hasher.update(chunk)
    return {algorithm: hasher.hexdigest() for algorithm, hasher in hashers.items()}, size


def _encode_path(path: str) -> str:
    # Encode line breaks as bagit-python does (and decodes); it leaves "%" as is, so must we, or the
    # library that verifies our bags would look for the wrong file.
    return path.replace("\r", "%0D").replace("\n", "%0A")


def _set_oxum(bag_info: Path, oxum: str) -> None:
    lines = bag_info.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if not line.lower().startswith("payload-oxum:")]
    # Tag values may continue on indented lines; a dropped Payload-Oxum never does.
    if kept and not kept[-1].endswith("\n"):
        kept[-1] += "\n"
    kept.append(f"Payload-Oxum: {oxum}\n")
    _atomic_write(bag_info, "".join(kept))


def _atomic_write(path: Path, text: str) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

"""A generated corpus of bad crate ZIPs, each with the refusal intake must give it.

:func:`cases` lists every case: an ``id``, a ``category``, the refusal code or validator check id that
must be reported (``expect``) and, where one applies, the entry, file or entity the refusal must name
(``names``). :meth:`Case.data` builds the ZIP on demand. Cases are a few KB; bombs are compact by design
(2 MB for the one with 20,000 entries, a few hundred KB for the others) and expand only when unpacked.

Every case starts from a valid crate and breaks one thing: packaging cases start from the request crate
of :mod:`tests.cratekit` (naming the cast and registry of ``tests/conftest.py``), profile cases from the
community validator's reference result crate, which records every review phase. Generation is
deterministic: fixed ZIP timestamps, and every random choice drawn from ``random.Random`` seeded with
:data:`SEED` and the case id, so the same case is the same bytes on every run and machine.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import io
import json
import random
import stat
import struct
import unicodedata
import uuid
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tests import cratekit

SEED = 20260415
KiB = 1024
MiB = 1024 * KiB
DATE = (2025, 1, 1, 0, 0, 0)

# The registry of tests/conftest.py, so that the unbroken request crate is accepted there.
ORCID = "0000-0002-1825-0097"
PROJECT_IDENTIFIER = "PRJ-2026-0100"
WORKFLOW_ID = "https://workflowhub.example.org/workflows/289"

BAG = "crate"
BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
INPUT = b"sequence data for the workflow\n"
METADATA = "ro-crate-metadata.json"
METADATA_ENTRY = f"{BAG}/data/{METADATA}"
# The portal's limits (portal.settings.PORTAL_CRATE_LIMITS), which the limit cases go just past.
MAX_FILES = 20_000
MAX_METADATA_BYTES = 10 * MiB
MAX_DEPTH = 32
RESULT_FIXTURE = "validator-valid-five-safes-crate-result"

P = "five-safes-crate-0.4_"

# Entities of the reference result crate.
ROOT = "./"
DESCRIPTOR = "ro-crate-metadata.json"
RUN = "#query-37252371-c937-43bd-a0a7-3680b48c0538"
CHECK = "#check-f33fe90c-0c22-4c72-b299-de509028410e"
VALIDATE = "#validate-1146f640-819e-4c86-b029-b763a0040896"
DOWNLOAD = "#download-8b51bf57-6b29-44da-b24b-638c8df91639"
SIGNOFF = "#signoff-3b741265-cfef-49ea-8138-a2fa149bf2f0"
DISCLOSURE = "#disclosure-b16c1f0a-ae7f-4582-9b28-7d9df3313e27"
WORKFLOW = "https://workflowhub.eu/workflows/289?version=1"
DOWNLOADED = "workflow/289/"
PROJECT = "#project-be6ffb55-4f5a-4c14-b60e-47e0951090c70"
PERSON = "https://orcid.org/0000-0001-9842-9718"
MANCHESTER = "https://ror.org/027m9bs27"
COMPLETED = "http://schema.org/CompletedActionStatus"

Doc = dict[str, Any]


# -- cases -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One bad crate: what it is, and the refusal it must meet.

    ``expect`` is a refusal code (``zip.symlink``, ``bag.checksum_mismatch``, ``metadata.syntax``...)
    or a validator check id (``five-safes-crate-0.4_1.1``, ``ro-crate.graph``...); ``names`` is text the
    refusal's message or location must contain (the entry, file or entity at fault), or ``None``.
    """

    id: str
    category: str
    expect: str
    names: str | None
    build: Callable[[], bytes] = field(repr=False, compare=False)

    def data(self) -> bytes:
        """The crate ZIP's bytes (built once per process)."""
        return _built(self.id)


_BY_ID: dict[str, Case] = {}


@functools.cache
def _built(case_id: str) -> bytes:
    return _BY_ID[case_id].build()


def rng(case_id: str) -> random.Random:
    """The random source of one case: the same numbers whatever else is generated."""
    return random.Random(f"{SEED}:{case_id}")


@functools.cache
def cases() -> tuple[Case, ...]:
    """Every case of the corpus, in a stable order; ids are unique."""
    generated = [
        *traversal_cases(),
        *bomb_cases(),
        *link_cases(),
        *flag_and_format_cases(),
        *collision_cases(),
        *layout_cases(),
        *bag_cases(),
        *broken_zip_cases(),
        *metadata_syntax_cases(),
        *metadata_type_cases(),
        *profile_cases(),
    ]
    seen: set[str] = set()
    for case in generated:
        if case.id in seen:
            raise AssertionError(f"duplicate case id {case.id}")
        seen.add(case.id)
        _BY_ID[case.id] = case
    return tuple(generated)


# -- ZIP writing -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One ZIP entry: a name ending in ``/`` is a folder; ``zeros`` more zero bytes follow ``data``."""

    name: str
    data: bytes = b""
    mode: int | None = None
    method: int = zipfile.ZIP_DEFLATED
    zeros: int = 0
    create_system: int = 3


def write_zip(entries: Iterable[Entry], *, comment: bytes = b"") -> bytes:
    """A ZIP of ``entries`` in order, with fixed timestamps; repeated names are written as given."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the repeated names some cases need
        with zipfile.ZipFile(buffer, "w") as archive:
            for entry in entries:
                is_dir = entry.name.endswith("/")
                info = zipfile.ZipInfo(entry.name, DATE)
                info.create_system = entry.create_system
                mode = entry.mode
                if mode is None:
                    mode = stat.S_IFDIR | 0o755 if is_dir else stat.S_IFREG | 0o644
                info.external_attr = (mode << 16) | (0x10 if is_dir else 0)
                info.compress_type = zipfile.ZIP_STORED if is_dir else entry.method
                if entry.zeros:
                    with archive.open(info, "w", force_zip64=entry.zeros > 2**31) as sink:
                        sink.write(entry.data)
                        left = entry.zeros
                        block = bytes(MiB)
                        while left:
                            sink.write(block[: min(left, MiB)])
                            left -= min(left, MiB)
                else:
                    archive.writestr(info, entry.data)
            archive.comment = comment
    return buffer.getvalue()


# Offsets of header fields: (struct format, offset in the local header, offset in the central header).
_FIELDS = {
    "flags": ("<H", 6, 8),
    "method": ("<H", 8, 10),
    "crc": ("<I", 14, 16),
    "compressed": ("<I", 18, 20),
    "size": ("<I", 22, 24),
    "name_length": ("<H", 26, 28),
    "extra_length": ("<H", 28, 30),
    "offset": ("<I", None, 42),
}


@dataclass(frozen=True)
class Record:
    """Where one entry's headers are: its central record and local header offsets, and its raw name."""

    central: int
    local: int
    name: bytes


def records(data: bytes) -> list[Record]:
    """The central directory of a (non-ZIP64) archive, read by hand so that lying headers can be patched."""
    end = data.rindex(b"PK\x05\x06")
    count, _size, start = struct.unpack_from("<HII", data, end + 10)
    found, position = [], start
    for _ in range(count):
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, position + 28)
        local = struct.unpack_from("<I", data, position + 42)[0]
        found.append(Record(position, local, data[position + 46 : position + 46 + name_length]))
        position += 46 + name_length + extra_length + comment_length
    return found


def patch(
    data: bytes,
    name: str | None,
    field_name: str,
    value: int | Callable[[int], int],
    *,
    local: bool = True,
    central: bool = True,
) -> bytes:
    """Rewrite one header field of the entry ``name`` (every entry when ``None``)."""
    fmt, local_at, central_at = _FIELDS[field_name]
    out = bytearray(data)
    for record in records(data):
        if name is not None and record.name != name.encode():
            continue
        targets = []
        if local and local_at is not None:
            targets.append(record.local + local_at)
        if central:
            targets.append(record.central + central_at)
        for at in targets:
            old = struct.unpack_from(fmt, out, at)[0]
            struct.pack_into(fmt, out, at, value(old) if callable(value) else value)
    return bytes(out)


def rename_raw(data: bytes, old: str, new: bytes) -> bytes:
    """Replace an entry's name, in both headers, by raw bytes of the same length (e.g. with a NUL)."""
    encoded = old.encode()
    if len(encoded) != len(new):
        raise ValueError("raw renames keep the length")
    out = bytearray(data)
    for record in records(data):
        if record.name == encoded:
            for at in (record.local + 30, record.central + 46):
                out[at : at + len(new)] = new
    return bytes(out)


# -- bags --------------------------------------------------------------------------------------------------
Payload = dict[str, "bytes | int"]  # path under data/ -> content, or a number of zero bytes


def _sha512(content: bytes | int) -> str:
    if isinstance(content, bytes):
        return hashlib.sha512(content).hexdigest()
    return _zeros_sha512(content)


@functools.cache
def _zeros_sha512(count: int) -> str:
    digest, block, left = hashlib.sha512(), bytes(MiB), count
    while left:
        digest.update(block[: min(left, MiB)])
        left -= min(left, MiB)
    return digest.hexdigest()


def _size(content: bytes | int) -> int:
    return len(content) if isinstance(content, bytes) else content


def external_identifier(case_id: str = "") -> str:
    return f"urn:uuid:{uuid.UUID(int=rng('bag' + case_id).getrandbits(128), version=4)}"


def bag_info(payload: Payload, identifier: str | None = None) -> str:
    oxum = f"{sum(_size(c) for c in payload.values())}.{len(payload)}"
    identifier = identifier or external_identifier()
    return f"External-Identifier: {identifier}\nBagging-Date: 2025-01-01\nPayload-Oxum: {oxum}\n"


def bag_files(
    payload: Payload, *, info: str | None = None, bagit: bytes = BAGIT_TXT
) -> dict[str, bytes | int]:
    """A BagIt 1.0 bag of ``payload`` with SHA-512 manifests, as {path in the bag: content}."""
    files: dict[str, bytes | int] = {"bagit.txt": bagit}
    files["bag-info.txt"] = (info if info is not None else bag_info(payload)).encode()
    files["manifest-sha512.txt"] = "".join(
        f"{_sha512(content)}  data/{path}\n" for path, content in sorted(payload.items())
    ).encode()
    files.update({f"data/{path}": content for path, content in payload.items()})
    return reseal(files)


def reseal(files: dict[str, bytes | int]) -> dict[str, bytes | int]:
    """Recompute the tag manifest over the tag files as they now are."""
    tags = sorted(p for p in files if "/" not in p and not p.startswith("tagmanifest-"))
    out = {p: c for p, c in files.items() if p != "tagmanifest-sha512.txt"}
    out["tagmanifest-sha512.txt"] = "".join(f"{_sha512(files[p])}  {p}\n" for p in tags).encode()
    return out


def pack(files: dict[str, bytes | int], *, bag: str = BAG, method: int = zipfile.ZIP_DEFLATED) -> list[Entry]:
    """ZIP entries for a bag's files, tag files first, under one top-level folder."""
    order = sorted(files, key=lambda p: ("/" in p, p))
    return [
        Entry(f"{bag}/{p}", files[p], method=method)
        if isinstance(files[p], bytes)
        else Entry(f"{bag}/{p}", zeros=files[p], method=method)  # type: ignore[arg-type]
        for p in order
    ]


@functools.cache
def _request_text() -> str:
    doc = cratekit.request_metadata(
        orcid=ORCID, project_identifier=PROJECT_IDENTIFIER, workflow_id=WORKFLOW_ID
    )
    return json.dumps(doc, indent=1)


@functools.cache
def _result_text() -> str:
    return json.dumps(cratekit.fixture_metadata(RESULT_FIXTURE), indent=1)


def request_doc() -> Doc:
    """The request crate's metadata, naming the test registry's researcher, project and workflow."""
    return json.loads(_request_text())


def result_doc() -> Doc:
    """The community validator's reference result crate: every review phase recorded, valid."""
    return json.loads(_result_text())


def payload(metadata: bytes | None = None, **extra: bytes | int) -> Payload:
    return {
        METADATA: _request_text().encode() if metadata is None else metadata,
        "input1.txt": INPUT,
        **extra,
    }


def crate(metadata: bytes | None = None, **extra: bytes | int) -> bytes:
    """A valid bag ZIP (request crate unless ``metadata`` is given, plus ``extra`` payload files)."""
    return write_zip(pack(bag_files(payload(metadata, **extra))))


def base_entries(**extra: bytes | int) -> list[Entry]:
    return pack(bag_files(payload(**extra)))


def valid_request_crate() -> bytes:
    """The unbroken request crate every packaging case starts from (accepted by intake)."""
    return crate()


def valid_result_crate() -> bytes:
    """The unbroken result crate every profile case starts from (valid against the profile)."""
    return crate(_result_text().encode())


def _case(case_id: str, category: str, expect: str, names: str | None, build: Callable[[], bytes]) -> Case:
    return Case(case_id, category, expect, names, build)


# -- 1. names that climb out, are absolute, or hide path syntax ------------------------------------------------
def traversal_cases() -> list[Case]:
    out = []

    def extra(case_id: str, expect: str, name: str) -> None:
        out.append(
            _case(
                case_id,
                "path-traversal",
                expect,
                name,
                lambda: write_zip([*base_entries(), Entry(name, b"x")]),
            )
        )

    dot_dot = {
        "dotdot-top": "../evil.txt",
        "dotdot-in-bag": f"{BAG}/../evil.txt",
        "dotdot-from-data": f"{BAG}/data/../../evil.txt",
        "dotdot-to-etc": f"{BAG}/data/../../../../../../etc/cron.d/evil",
        "dotdot-last": f"{BAG}/data/..",
        "dotdot-folder": f"{BAG}/../outside/",
        "dotdot-after-folder": f"{BAG}/data/sub/../../../evil.txt",
        "dotdot-before-bag": f"../{BAG}/data/evil.txt",
        "dotdot-only": "..",
        "dotdot-deep": f"{BAG}/" + "a/" * 5 + "../" * 7 + "evil.txt",
    }
    for key, name in dot_dot.items():
        extra(f"traversal-{key}", "zip.path_traversal", name)
    backslash = {
        "backslash-dotdot": "..\\evil.txt",
        "backslash-in-bag": f"{BAG}\\..\\..\\evil.txt",
        "backslash-from-data": f"{BAG}/data/..\\..\\evil.txt",
        "backslash-mixed": f"{BAG}/data/..\\/evil.txt",
        "backslash-name": f"{BAG}/data/a\\b.txt",
    }
    for key, name in backslash.items():
        extra(f"traversal-{key}", "zip.unsafe_name", name)
    absolute = {
        "absolute-etc": "/etc/passwd",
        "absolute-etc-cron": "/etc/cron.d/evil",
        "absolute-bag": f"/{BAG}/data/evil.txt",
        "absolute-double-slash": "//server/share/evil.txt",
        "absolute-unc": "\\\\server\\share\\evil.txt",
        "absolute-backslash-root": "\\evil.txt",
        "drive-c-slash": "C:/Windows/System32/evil.dll",
        "drive-c-backslash": "C:\\Windows\\evil.dll",
        "drive-relative": "c:evil.txt",
        "drive-z-bag": f"Z:/{BAG}/data/evil.txt",
    }
    for key, name in absolute.items():
        extra(f"traversal-{key}", "zip.absolute_path", name)
    # Names that become '..', '.' or '/' once a system applies compatibility normalisation (NFKC).
    lookalikes = {
        "two-dot-leader": f"{BAG}/data/\u2025/evil.txt",
        "one-dot-leaders": f"{BAG}/data/\u2024\u2024/evil.txt",
        "fullwidth-stops": f"{BAG}/data/\uff0e\uff0e/evil.txt",
        "small-full-stops": f"{BAG}/data/\ufe52\ufe52/evil.txt",
        "mixed-stops": f"{BAG}/data/.\uff0e/evil.txt",
        "fullwidth-solidus": f"{BAG}/data/\uff0e\uff0e\uff0fevil.txt",
        "fullwidth-backslash": f"{BAG}/data/\uff0e\uff0e\uff3cevil.txt",
        "trailing-fullwidth-stop": f"{BAG}/data/evil\uff0e",
    }
    for key, name in lookalikes.items():
        extra(f"traversal-lookalike-{key}", "zip.unsafe_name", name)
    plain_unsafe = {
        "empty-part": f"{BAG}//data/evil.txt",
        "dot-part": f"{BAG}/./data/evil.txt",
        "trailing-dot": f"{BAG}/data/evil.",
        "colon": f"{BAG}/data/a:b.txt",
        "control-char": f"{BAG}/data/bell\x07.txt",
        "newline": f"{BAG}/data/line\nbreak.txt",
        "escape-sequence": f"{BAG}/data/\x1b[31mred.txt",
        "c1-control": f"{BAG}/data/\x85next.txt",
        "pipe": f"{BAG}/data/a|b.txt",
        "question-mark": f"{BAG}/data/what?.txt",
        "name-too-long": f"{BAG}/data/" + "n" * 256,
        "multibyte-name-too-long": f"{BAG}/data/" + "\u00e9" * 128,
    }
    for key, name in plain_unsafe.items():
        extra(f"traversal-unsafe-{key}", "zip.unsafe_name", name)
    extra("traversal-too-deep", "zip.path_too_deep", f"{BAG}/data/" + "d/" * (MAX_DEPTH - 1) + "evil.txt")
    extra("traversal-very-deep", "zip.path_too_deep", f"{BAG}/data/" + "d/" * 1000 + "evil.txt")

    # A NUL ends the name for some readers (Python's zipfile among them) but not for others.
    def nul(case_id: str, placeholder: str) -> None:
        at = placeholder.index("Z")

        def build() -> bytes:
            data = write_zip([*base_entries(), Entry(placeholder, b"x")])
            raw = placeholder.encode()
            return rename_raw(data, placeholder, raw[:at] + b"\x00" + raw[at + 1 :])

        names = placeholder[:at] or None  # what the refusal names: the name up to the NUL
        out.append(_case(case_id, "path-traversal", "zip.unsafe_name", names, build))

    nul("traversal-nul-hides-suffix", f"{BAG}/data/input1.txtZ.exe")
    nul("traversal-nul-hides-dotdot", f"{BAG}/data/safe.txtZ../../../evil.txt")
    nul("traversal-nul-in-middle", f"{BAG}/data/newZfile.txt")
    nul("traversal-nul-first", f"Z{BAG}/data/hidden.txt")
    return out


# -- 2. bombs: ratios, lying sizes, nested archives, too many entries -------------------------------------------
def _stored_zip_of_zeros(count: int, depth: int = 1) -> bytes:
    inner = write_zip([Entry("zeros.bin", zeros=count, method=zipfile.ZIP_STORED)])
    for level in range(1, depth):
        inner = write_zip([Entry(f"level{level}.zip", inner, method=zipfile.ZIP_STORED)])
    return inner


def bomb_cases() -> list[Case]:
    out = []

    def bomb(case_id: str, expect: str, names: str | None, build: Callable[[], bytes]) -> None:
        out.append(_case(case_id, "zip-bomb", expect, names, build))

    for size in (8 * MiB, 64 * MiB, 256 * MiB):
        bomb(
            f"bomb-zeros-{size // MiB}mib",
            "zip.ratio",
            f"{BAG}/data/zeros.bin",
            lambda size=size: crate(**{"zeros.bin": size}),
        )
    bomb(
        "bomb-metadata-padded",
        "zip.metadata_too_large",
        METADATA_ENTRY,
        lambda: crate(b"{" + b" " * (MAX_METADATA_BYTES + 1) + b"}"),
    )
    bomb(
        "bomb-metadata-long-string",
        "zip.metadata_too_large",
        METADATA_ENTRY,
        lambda: crate(_request_text()[:-2].encode() + b',"x": "' + b"a" * (MAX_METADATA_BYTES + 1) + b'"}'),
    )
    bomb(
        "bomb-metadata-many-numbers",
        "zip.metadata_too_large",
        METADATA_ENTRY,
        lambda: crate(b"[" + b"0," * (MAX_METADATA_BYTES // 2 + 1) + b"0]"),
    )
    # Many files under 1 MiB each: no single entry trips the per-entry ratio, the archive as a whole does.
    bomb(
        "bomb-many-small-zero-files",
        "zip.ratio",
        None,
        lambda: crate(**{f"part{i:03}.bin": 1000 * KiB for i in range(120)}),
    )
    # 42.zip style: archives of zeros inside archives; every level but the outer one is stored.
    for depth in (1, 2, 3):
        bomb(
            f"bomb-nested-zip-depth-{depth}",
            "zip.ratio",
            f"{BAG}/data/inner.zip",
            lambda depth=depth: crate(**{"inner.zip": _stored_zip_of_zeros(4 * MiB, depth)}),
        )

    # Declared sizes that lie.
    def understated(entry: str, size: int) -> Callable[[], bytes]:
        return lambda: patch(
            crate(**{"payload.bin": bytes(rng(entry).randbytes(64 * KiB))}), entry, "size", size
        )

    bomb(
        "bomb-size-understated",
        "zip.corrupt",
        f"{BAG}/data/payload.bin",
        understated(f"{BAG}/data/payload.bin", 10),
    )
    bomb(
        "bomb-size-understated-central-only",
        "zip.corrupt",
        f"{BAG}/data/input1.txt",
        lambda: patch(crate(), f"{BAG}/data/input1.txt", "size", 3, local=False),
    )
    bomb(
        "bomb-size-understated-local-only",
        "zip.corrupt",
        f"{BAG}/data/input1.txt",
        lambda: patch(crate(), f"{BAG}/data/input1.txt", "size", 3, central=False),
    )
    bomb(
        "bomb-metadata-size-understated",
        "zip.corrupt",
        METADATA_ENTRY,
        lambda: patch(crate(b"{" + b" " * (MAX_METADATA_BYTES + 1) + b"}"), METADATA_ENTRY, "size", 1000),
    )
    bomb(
        "bomb-declared-4gib-three-times",
        "zip.uncompressed_too_large",
        None,
        lambda: functools.reduce(
            lambda data, name: patch(data, name, "size", 0xFFFFFFF0),
            [f"{BAG}/bagit.txt", f"{BAG}/bag-info.txt", f"{BAG}/data/input1.txt"],
            crate(),
        ),
    )
    bomb(
        "bomb-metadata-declared-huge",
        "zip.metadata_too_large",
        METADATA_ENTRY,
        lambda: patch(crate(), METADATA_ENTRY, "size", 0xFFFFFFF0),
    )

    def zip64_declared(name: str, size: int) -> Callable[[], bytes]:
        def build() -> bytes:
            entries = base_entries()
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as archive:
                for entry in entries:
                    info = zipfile.ZipInfo(entry.name, DATE)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    archive.writestr(info, entry.data)
                archive.getinfo(name).file_size = size  # written into the central ZIP64 extra field
            return buffer.getvalue()

        return build

    bomb(
        "bomb-zip64-declares-a-terabyte",
        "zip.uncompressed_too_large",
        None,
        zip64_declared(f"{BAG}/data/input1.txt", 2**40),
    )
    bomb(
        "bomb-zip64-declares-max",
        "zip.uncompressed_too_large",
        None,
        zip64_declared(f"{BAG}/data/input1.txt", 2**64 - 2),
    )
    bomb(
        "bomb-zip64-metadata-declared-huge",
        "zip.metadata_too_large",
        METADATA_ENTRY,
        zip64_declared(METADATA_ENTRY, 2**33),
    )

    # More entries than the portal unpacks.
    bomb(
        "bomb-too-many-files",
        "zip.too_many_files",
        f"{MAX_FILES:,}",
        lambda: write_zip(
            [
                *base_entries(),
                *(Entry(f"{BAG}/data/f/{i}", method=zipfile.ZIP_STORED) for i in range(MAX_FILES)),
            ]
        ),
    )
    bomb(
        "bomb-too-many-folders",
        "zip.too_many_files",
        f"{MAX_FILES:,}",
        lambda: write_zip([*base_entries(), *(Entry(f"{BAG}/data/d{i}/") for i in range(MAX_FILES))]),
    )

    # Overlapping entries: two names for the same bytes, or one entry's data holding the next entry.
    def shared_local_header() -> bytes:
        data = crate()
        target = next(r for r in records(data) if r.name == METADATA_ENTRY.encode())
        return patch(data, f"{BAG}/data/input1.txt", "offset", target.local, local=False)

    bomb("bomb-overlap-shared-header", "zip.corrupt", f"{BAG}/data/input1.txt", shared_local_header)
    bomb("bomb-overlap-quoted", "zip.overlap", f"{BAG}/data/a.bin", _quoted_overlap)
    return out


def _quoted_overlap() -> bytes:
    """Stored entries a.bin then b.bin, where a.bin's data runs on over b.bin's header and data.

    The bag's manifest lists what a reader that follows each header would extract, so the only fault is
    the overlap itself.
    """
    first, second = b"A" * 100, b"B" * 100
    names = (f"{BAG}/data/a.bin", f"{BAG}/data/b.bin")

    def build(a_content: bytes) -> bytes:
        files = bag_files(payload(**{"a.bin": a_content, "b.bin": second}))
        entries = [e for e in pack(files, method=zipfile.ZIP_STORED) if e.name not in names]
        entries += [
            Entry(names[0], first, method=zipfile.ZIP_STORED),
            Entry(names[1], second, method=zipfile.ZIP_STORED),
        ]
        return write_zip(entries)

    draft = build(first)
    a, b = (next(r for r in records(draft) if r.name == n.encode()) for n in names)
    quoted = first + draft[b.local : b.local + 30 + len(names[1]) + len(second)]
    data = build(quoted)
    crc = zlib.crc32(quoted)
    for name_field, value in (("compressed", len(quoted)), ("size", len(quoted)), ("crc", crc)):
        data = patch(data, names[0], name_field, value)
    return data


# -- 3. links and special files ------------------------------------------------------------------------------
def link_cases() -> list[Case]:
    out = []

    def special(case_id: str, expect: str, entry: Entry, *, replace: str | None = None) -> None:
        def build() -> bytes:
            entries = [e for e in base_entries() if e.name != replace]
            return write_zip([*entries, entry])

        out.append(_case(case_id, "links-and-devices", expect, entry.name, build))

    link = stat.S_IFLNK | 0o777
    special("link-to-etc-passwd", "zip.symlink", Entry(f"{BAG}/data/link", b"/etc/passwd", mode=link))
    special("link-to-parent", "zip.symlink", Entry(f"{BAG}/data/up", b"../..", mode=link))
    special("link-folder", "zip.symlink", Entry(f"{BAG}/data/linked/", b"", mode=link))
    special(
        "link-replaces-metadata",
        "zip.symlink",
        Entry(METADATA_ENTRY, b"../../../etc/passwd", mode=link),
        replace=METADATA_ENTRY,
    )
    special(
        "link-replaces-bagit",
        "zip.symlink",
        Entry(f"{BAG}/bagit.txt", b"/proc/self/environ", mode=link),
        replace=f"{BAG}/bagit.txt",
    )
    special(
        "link-replaces-manifest",
        "zip.symlink",
        Entry(f"{BAG}/manifest-sha512.txt", b"/dev/zero", mode=link),
        replace=f"{BAG}/manifest-sha512.txt",
    )
    special(
        "link-dos-host",
        "zip.symlink",
        Entry(f"{BAG}/data/doslink", b"/etc/shadow", mode=link, create_system=0),
    )
    special("device-char", "zip.special_file", Entry(f"{BAG}/data/zero", b"", mode=stat.S_IFCHR | 0o666))
    special("device-block", "zip.special_file", Entry(f"{BAG}/data/disk", b"", mode=stat.S_IFBLK | 0o660))
    special("fifo", "zip.special_file", Entry(f"{BAG}/data/pipe", b"", mode=stat.S_IFIFO | 0o644))
    special("socket", "zip.special_file", Entry(f"{BAG}/data/sock", b"", mode=stat.S_IFSOCK | 0o755))
    special(
        "folder-mode-on-file",
        "zip.special_file",
        Entry(f"{BAG}/data/notdir", b"x", mode=stat.S_IFDIR | 0o755),
    )
    special(
        "file-mode-on-folder", "zip.special_file", Entry(f"{BAG}/data/sub/", b"", mode=stat.S_IFREG | 0o644)
    )
    special("unknown-file-type", "zip.special_file", Entry(f"{BAG}/data/odd", b"x", mode=0o170000 | 0o644))
    return out


# -- 4. flags, methods, checksums --------------------------------------------------------------------------------
def flag_and_format_cases() -> list[Case]:
    out = []

    def case(case_id: str, expect: str, names: str | None, build: Callable[[], bytes]) -> None:
        out.append(_case(case_id, "zip-format", expect, names, build))

    def set_bits(bits: int) -> Callable[[int], int]:
        return lambda value: value | bits

    for key, name in (
        ("metadata", METADATA_ENTRY),
        ("bagit", f"{BAG}/bagit.txt"),
        ("input", f"{BAG}/data/input1.txt"),
    ):
        case(
            f"encrypted-{key}",
            "zip.encrypted",
            name,
            lambda name=name: patch(crate(), name, "flags", set_bits(1)),
        )
    case(
        "encrypted-strong",
        "zip.encrypted",
        METADATA_ENTRY,
        lambda: patch(crate(), METADATA_ENTRY, "flags", set_bits(0x41)),
    )
    case(
        "encrypted-every-entry",
        "zip.encrypted",
        f"{BAG}/bag-info.txt",
        lambda: patch(crate(), None, "flags", set_bits(1)),
    )
    for method in (1, 6, 9, 97, 98, 99):
        case(
            f"method-{method}-unsupported",
            "zip.corrupt",
            METADATA_ENTRY,
            lambda method=method: patch(crate(), METADATA_ENTRY, "method", method),
        )
    case(
        "crc-wrong-central",
        "zip.corrupt",
        f"{BAG}/data/input1.txt",
        lambda: patch(crate(), f"{BAG}/data/input1.txt", "crc", lambda v: v ^ 1, local=False),
    )
    case(
        "crc-wrong-both",
        "zip.corrupt",
        METADATA_ENTRY,
        lambda: patch(crate(), METADATA_ENTRY, "crc", lambda v: v ^ 0xFFFF),
    )

    def flipped_stored_byte() -> bytes:
        data = write_zip(pack(bag_files(payload()), method=zipfile.ZIP_STORED))
        at = data.index(INPUT)
        return data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1 :]

    case("stored-data-damaged", "zip.corrupt", f"{BAG}/data/input1.txt", flipped_stored_byte)

    def deflate_damaged() -> bytes:
        data = crate()
        record = next(r for r in records(data) if r.name == METADATA_ENTRY.encode())
        start = record.local + 30 + len(record.name)
        middle = start + 40
        return data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 8]) + data[middle + 8 :]

    case("deflate-stream-damaged", "zip.corrupt", METADATA_ENTRY, deflate_damaged)

    def stream_damaged(method: int) -> Callable[[], bytes]:
        def build() -> bytes:
            data = write_zip(pack(bag_files(payload()), method=method))
            record = next(r for r in records(data) if r.name == METADATA_ENTRY.encode())
            middle = record.local + 30 + len(record.name) + 60
            return data[:middle] + bytes(b ^ 0x5A for b in data[middle : middle + 16]) + data[middle + 16 :]

        return build

    case("lzma-stream-damaged", "zip.corrupt", METADATA_ENTRY, stream_damaged(zipfile.ZIP_LZMA))
    case("bzip2-stream-damaged", "zip.corrupt", METADATA_ENTRY, stream_damaged(zipfile.ZIP_BZIP2))
    case(
        "compressed-size-overstated",
        "zip.overlap",
        f"{BAG}/data/input1.txt",
        lambda: patch(crate(), f"{BAG}/data/input1.txt", "compressed", 0x7FFFFFFF),
    )

    def local_name_differs() -> bytes:
        data = crate()
        record = next(r for r in records(data) if r.name == f"{BAG}/data/input1.txt".encode())
        at = record.local + 30 + len(record.name) - 5  # "input1.txt" -> "input2.txt" in the local header only
        out_ = bytearray(data)
        out_[at] = ord("2")
        return bytes(out_)

    case("local-name-differs", "zip.corrupt", f"{BAG}/data/input1.txt", local_name_differs)
    return out


# -- 5. repeated names and names that collide on other systems ----------------------------------------------------
def collision_cases() -> list[Case]:
    out = []

    def case(
        case_id: str, expect: str, names: str, extra: list[Entry], *, base: list[Entry] | None = None
    ) -> None:
        out.append(
            _case(
                case_id,
                "duplicates-and-collisions",
                expect,
                names,
                lambda: write_zip([*(base_entries() if base is None else base), *extra]),
            )
        )

    case(
        "duplicate-input",
        "zip.duplicate_name",
        f"{BAG}/data/input1.txt",
        [Entry(f"{BAG}/data/input1.txt", b"other")],
    )
    case(
        "duplicate-metadata-second-differs",
        "zip.duplicate_name",
        METADATA_ENTRY,
        [Entry(METADATA_ENTRY, b'{"@graph": []}')],
    )
    case(
        "duplicate-bagit",
        "zip.duplicate_name",
        f"{BAG}/bagit.txt",
        [Entry(f"{BAG}/bagit.txt", b"BagIt-Version: 0.97\n")],
    )
    case(
        "duplicate-manifest",
        "zip.duplicate_name",
        f"{BAG}/manifest-sha512.txt",
        [Entry(f"{BAG}/manifest-sha512.txt", b"")],
    )
    case("case-file", "zip.case_collision", f"{BAG}/data/INPUT1.txt", [Entry(f"{BAG}/data/INPUT1.txt", b"x")])
    case("case-folder", "zip.case_collision", f"{BAG}/Data", [Entry(f"{BAG}/Data/other.txt", b"x")])
    case("case-bag-folder", "zip.case_collision", "CRATE", [Entry("CRATE/bagit.txt", BAGIT_TXT)])
    case(
        "case-metadata",
        "zip.case_collision",
        f"{BAG}/data/RO-CRATE-METADATA.JSON",
        [Entry(f"{BAG}/data/RO-CRATE-METADATA.JSON", b"{}")],
    )
    nfc, nfd = unicodedata.normalize("NFC", "caf\u00e9.txt"), unicodedata.normalize("NFD", "caf\u00e9.txt")
    case(
        "unicode-nfc-nfd",
        "zip.case_collision",
        f"{BAG}/data/{nfd}",
        [Entry(f"{BAG}/data/{nfc}", b"1"), Entry(f"{BAG}/data/{nfd}", b"2")],
    )
    pairs = {
        "kelvin-sign": ("key.txt", "\u212aey.txt"),
        "sharp-s": ("strasse.txt", "stra\u00dfe.txt"),
        "ligature": ("file.txt", "\ufb01le.txt"),
        "final-sigma": ("\u03c3.txt", "\u03c2.txt"),
        "micro-sign": ("\u03bc.txt", "\u00b5.txt"),
    }
    for key, (first, second) in pairs.items():
        case(
            f"casefold-{key}",
            "zip.case_collision",
            f"{BAG}/data/{second}",
            [Entry(f"{BAG}/data/{first}", b"1"), Entry(f"{BAG}/data/{second}", b"2")],
        )
    case(
        "file-then-folder",
        "zip.path_conflict",
        f"{BAG}/data/input1.txt",
        [Entry(f"{BAG}/data/input1.txt/inner.txt", b"x")],
    )
    case(
        "folder-entry-over-file",
        "zip.path_conflict",
        f"{BAG}/data/input1.txt",
        [Entry(f"{BAG}/data/input1.txt/")],
    )
    case(
        "folder-then-file",
        "zip.path_conflict",
        f"{BAG}/data/sub",
        [Entry(f"{BAG}/data/sub/inner.txt", b"x"), Entry(f"{BAG}/data/sub", b"y")],
    )
    return out


# -- 6. what the archive holds: one bag, and nothing beside it ------------------------------------------------------
def layout_cases() -> list[Case]:
    out = []

    def case(case_id: str, expect: str, names: str | None, build: Callable[[], bytes]) -> None:
        out.append(_case(case_id, "archive-layout", expect, names, build))

    files = bag_files(payload())
    case(
        "two-bags",
        "zip.multiple_top_level",
        "other",
        lambda: write_zip([*pack(files), *pack(files, bag="other")]),
    )
    case(
        "bag-and-readme",
        "zip.multiple_top_level",
        "README.txt",
        lambda: write_zip([*pack(files), Entry("README.txt", b"hi")]),
    )
    case(
        "macos-resource-forks",
        "zip.multiple_top_level",
        "__MACOSX",
        lambda: write_zip([*pack(files), Entry(f"__MACOSX/{BAG}/._bagit.txt", b"\x00\x05\x16\x07")]),
    )
    case(
        "loose-metadata-only",
        "zip.top_level_file",
        METADATA,
        lambda: write_zip([Entry(METADATA, _request_text().encode())]),
    )
    case("zip-in-zip", "zip.top_level_file", "crate.zip", lambda: write_zip([Entry("crate.zip", crate())]))
    case("empty-archive", "zip.empty", None, lambda: write_zip([]))
    case("only-folder-entry", "bag.not_a_bag", "bagit.txt", lambda: write_zip([Entry(f"{BAG}/")]))
    case(
        "payload-without-bag-folder",
        "bag.not_a_bag",
        "bagit.txt",
        lambda: write_zip(
            [Entry(f"data/{METADATA}", _request_text().encode()), Entry("data/input1.txt", INPUT)]
        ),
    )
    case(
        "bag-one-folder-down",
        "bag.not_a_bag",
        "bagit.txt",
        lambda: write_zip([Entry(f"outer/{e.name}", e.data) for e in pack(files)]),
    )
    case(
        "crate-folder-without-bagit",
        "bag.not_a_bag",
        "bagit.txt",
        lambda: write_zip([e for e in pack(files) if not e.name.endswith("/bagit.txt")]),
    )
    return out


# -- 7. BagIt: manifests, checksums, identifiers ------------------------------------------------------------------
def bag_cases() -> list[Case]:
    out = []

    def case(
        case_id: str,
        expect: str,
        names: str | None,
        edit: Callable[[dict[str, Any]], None],
        *,
        seal: bool = True,
        oxum: bool = True,
    ) -> None:
        def build() -> bytes:
            files = dict(bag_files(payload()))
            edit(files)
            if oxum:
                _refresh_oxum(files)
            return write_zip(pack(reseal(files) if seal else files))

        out.append(_case(case_id, "bagit", expect, names, build))

    def set_file(path: str, content: bytes | None) -> Callable[[dict[str, Any]], None]:
        def edit(files: dict[str, Any]) -> None:
            if content is None:
                files.pop(path, None)
            else:
                files[path] = content

        return edit

    def text_edit(path: str, change: Callable[[str], str]) -> Callable[[dict[str, Any]], None]:
        def edit(files: dict[str, Any]) -> None:
            files[path] = change(files[path].decode()).encode()

        return edit

    def chain(*edits: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        def edit(files: dict[str, Any]) -> None:
            for step in edits:
                step(files)

        return edit

    manifest = "manifest-sha512.txt"

    def line_for(path: str, change: Callable[[str], str]) -> Callable[[dict[str, Any]], None]:
        def each(text: str) -> str:
            return "".join(
                change(line) if line.endswith(f"  {path}\n") else line for line in text.splitlines(True)
            )

        return text_edit(manifest, each)

    def flip_digit(line: str) -> str:
        digest, rest = line.split("  ", 1)
        return f"{'0' if digest[0] != '0' else '1'}{digest[1:]}  {rest}"

    # Manifests.
    case("manifest-missing", "bag.manifest_missing", manifest, set_file(manifest, None))
    case(
        "manifest-md5-only",
        "bag.manifest_missing",
        manifest,
        chain(
            set_file(manifest, None),
            set_file("manifest-md5.txt", f"{_md5(INPUT)}  data/input1.txt\n".encode()),
        ),
    )
    case(
        "manifest-sha256-only",
        "bag.manifest_missing",
        manifest,
        chain(
            set_file(manifest, None),
            set_file(
                "manifest-sha256.txt", f"{hashlib.sha256(INPUT).hexdigest()}  data/input1.txt\n".encode()
            ),
        ),
    )
    case(
        "checksum-wrong-metadata",
        "bag.checksum_mismatch",
        f"data/{METADATA}",
        line_for(f"data/{METADATA}", flip_digit),
    )
    case(
        "checksum-wrong-input",
        "bag.checksum_mismatch",
        "data/input1.txt",
        line_for("data/input1.txt", flip_digit),
    )
    case(
        "checksum-truncated",
        "bag.checksum_mismatch",
        "data/input1.txt",
        line_for("data/input1.txt", lambda line: line[:64] + line[128:]),
    )
    case(
        "checksum-is-sha256",
        "bag.checksum_mismatch",
        "data/input1.txt",
        line_for("data/input1.txt", lambda line: f"{hashlib.sha256(INPUT).hexdigest()}  data/input1.txt\n"),
    )
    case(
        "checksum-of-other-file",
        "bag.checksum_mismatch",
        "data/input1.txt",
        line_for(
            "data/input1.txt", lambda line: f"{hashlib.sha512(b'other').hexdigest()}  data/input1.txt\n"
        ),
    )
    case(
        "payload-changed-after-bagging",
        "bag.checksum_mismatch",
        "data/input1.txt",
        set_file("data/input1.txt", INPUT.upper()),
    )
    case(
        "metadata-changed-after-bagging",
        "bag.checksum_mismatch",
        f"data/{METADATA}",
        set_file(f"data/{METADATA}", _request_text().replace("Execute query", "Exploit query").encode()),
    )
    case(
        "manifest-line-missing",
        "bag.unexpected_file",
        "data/input1.txt",
        line_for("data/input1.txt", lambda line: ""),
    )
    case(
        "payload-file-unlisted",
        "bag.unexpected_file",
        "data/extra.txt",
        set_file("data/extra.txt", b"extra\n"),
    )
    case(
        "manifest-lists-absent-file",
        "bag.file_missing",
        "data/ghost.txt",
        text_edit(manifest, lambda t: t + f"{hashlib.sha512(b'').hexdigest()}  data/ghost.txt\n"),
    )
    case(
        "manifest-path-case-differs",
        "bag.file_missing",
        "data/INPUT1.txt",
        line_for("data/input1.txt", lambda line: line.replace("data/input1.txt", "data/INPUT1.txt")),
    )
    case(
        "manifest-path-dotdot",
        "bag.unreadable",
        "../bagit.txt",
        text_edit(manifest, lambda t: t + f"{'0' * 128}  ../bagit.txt\n"),
    )
    case(
        "manifest-path-absolute",
        "bag.unreadable",
        "/etc/passwd",
        text_edit(manifest, lambda t: t + f"{'0' * 128}  /etc/passwd\n"),
    )
    case(
        "manifest-path-nul",
        "bag.unreadable",
        "manifest",
        text_edit(manifest, lambda t: t + f"{'0' * 128}  data/gh\x00ost.txt\n"),
    )
    case(
        "manifest-line-repeated",
        "bag.unreadable",
        "data/input1.txt",
        text_edit(manifest, lambda t: t + next(line for line in t.splitlines(True) if "input1" in line)),
    )
    case(
        "manifest-edited-after-sealing",
        "bag.tag_checksum_mismatch",
        manifest,
        text_edit(manifest, lambda t: t + "no-separator\n"),
        seal=False,
    )
    case("manifest-emptied", "bag.unexpected_file", "data/", set_file(manifest, b""))
    # Tag files.
    case(
        "tagmanifest-wrong",
        "bag.tag_checksum_mismatch",
        "bag-info.txt",
        text_edit("bag-info.txt", lambda t: t + "Contact-Name: Mallory\n"),
        seal=False,
    )
    case(
        "tagmanifest-lists-absent-file",
        "bag.file_missing",
        "extra-tag.txt",
        lambda files: files.update(
            {
                "tagmanifest-sha512.txt": files["tagmanifest-sha512.txt"]
                + f"{'0' * 128}  extra-tag.txt\n".encode()
            }
        ),
        seal=False,
    )
    case(
        "fetch-file",
        "bag.fetch",
        "fetch.txt",
        set_file("fetch.txt", b"https://evil.example/x 10 data/x.bin\n"),
    )
    case("bagit-missing", "bag.not_a_bag", "bagit.txt", set_file("bagit.txt", None))
    case(
        "bagit-version-0.97",
        "bag.version",
        "bagit.txt",
        set_file("bagit.txt", BAGIT_TXT.replace(b"1.0", b"0.97")),
    )
    case("bagit-garbage", "bag.unreadable", "bagit.txt", set_file("bagit.txt", b"hello\n"))
    case("bagit-no-encoding", "bag.unreadable", "bagit.txt", set_file("bagit.txt", b"BagIt-Version: 1.0\n"))
    case(
        "bagit-version-not-numbers",
        "bag.unreadable",
        "bagit.txt",
        set_file("bagit.txt", BAGIT_TXT.replace(b"1.0", b"x.y")),
    )
    case(
        "bagit-unknown-encoding",
        "bag.unreadable",
        "bagit.txt",
        set_file("bagit.txt", BAGIT_TXT.replace(b"UTF-8", b"x-no-such-encoding")),
    )
    case(
        "bagit-utf16-encoding",
        "bag.unreadable",
        "bagit.txt",
        set_file("bagit.txt", BAGIT_TXT.replace(b"UTF-8", b"UTF-16")),
    )
    case(
        "bag-info-not-utf8",
        "bag.unreadable",
        None,
        lambda files: files.update(
            {"bag-info.txt": files["bag-info.txt"] + b"Source-Organization: \xff\xfe\n"}
        ),
    )
    case(
        "oxum-wrong-count",
        "bag.oxum_mismatch",
        "bag-info.txt",
        text_edit("bag-info.txt", lambda t: t.replace(".2\n", ".3\n")),
        oxum=False,
    )
    case(
        "oxum-wrong-bytes",
        "bag.oxum_mismatch",
        "bag-info.txt",
        text_edit("bag-info.txt", lambda t: t.replace("Payload-Oxum: ", "Payload-Oxum: 1")),
        oxum=False,
    )
    case(
        "oxum-malformed",
        "bag.invalid",
        "Payload-Oxum",
        text_edit("bag-info.txt", lambda t: t.replace("Payload-Oxum: ", "Payload-Oxum: abc")),
        oxum=False,
    )
    # The External-Identifier.
    good = external_identifier()

    def identifier(value: str | None) -> Callable[[dict[str, Any]], None]:
        def change(text: str) -> str:
            kept = "".join(
                line for line in text.splitlines(True) if not line.startswith("External-Identifier:")
            )
            return kept if value is None else f"External-Identifier: {value}\n{kept}"

        return text_edit("bag-info.txt", change)

    case("identifier-missing", "bag.external_identifier_missing", "bag-info.txt", identifier(None))
    case(
        "bag-info-missing", "bag.external_identifier_missing", "bag-info.txt", set_file("bag-info.txt", None)
    )
    bad_identifiers = {
        "not-a-uuid": "urn:uuid:not-a-uuid",
        "isbn": "urn:isbn:9780141036144",
        "bare-uuid": good.removeprefix("urn:uuid:"),
        "upper-case-scheme": good.replace("urn:uuid:", "URN:UUID:"),
        "braces": good.replace("urn:uuid:", "urn:uuid:{") + "}",
        "trailing-text": good + " (copy)",
        "short-uuid": good[:-1],
        "http": "https://example.org/crates/1",
        "empty": "",
    }
    for key, value in bad_identifiers.items():
        case(f"identifier-{key}", "bag.external_identifier_invalid", "bag-info.txt", identifier(value))
    case(
        "identifier-twice",
        "bag.external_identifier_multiple",
        "bag-info.txt",
        text_edit("bag-info.txt", lambda t: t + f"External-Identifier: {external_identifier('second')}\n"),
    )
    case(
        "identifier-continued-on-next-line",
        "bag.external_identifier_invalid",
        "bag-info.txt",
        text_edit(
            "bag-info.txt",
            lambda t: t.replace(f"External-Identifier: {good}", f"External-Identifier: {good}\n  continued"),
        ),
    )
    # The payload.
    case(
        "metadata-missing",
        "bag.metadata_missing",
        f"data/{METADATA}",
        lambda files: _drop_payload(files, METADATA),
    )
    case(
        "metadata-at-bag-root",
        "bag.metadata_missing",
        f"data/{METADATA}",
        lambda files: (_drop_payload(files, METADATA), files.update({METADATA: _request_text().encode()})),
    )
    case(
        "metadata-is-a-folder",
        "bag.metadata_missing",
        f"data/{METADATA}",
        lambda files: (_drop_payload(files, METADATA), _add_payload(files, f"{METADATA}/inner.json", b"{}")),
    )
    case(
        "no-payload-at-all",
        "bag.metadata_missing",
        f"data/{METADATA}",
        lambda files: [_drop_payload(files, p) for p in ("input1.txt", METADATA)],
    )
    return out


def _md5(content: bytes) -> str:
    """MD5, as a BagIt manifest may use it (not for security)."""
    return hashlib.md5(content, usedforsecurity=False).hexdigest()


def _refresh_oxum(files: dict[str, Any]) -> None:
    """Make Payload-Oxum match the payload as edited, so that only the fault a case is about remains."""
    info = files.get("bag-info.txt")
    if not isinstance(info, bytes) or b"Payload-Oxum: " not in info:
        return
    data = [c for p, c in files.items() if p.startswith("data/")]
    oxum = f"Payload-Oxum: {sum(_size(c) for c in data)}.{len(data)}".encode()
    lines = [oxum if line.startswith(b"Payload-Oxum: ") else line for line in info.split(b"\n")]
    files["bag-info.txt"] = b"\n".join(lines)


def _drop_payload(files: dict[str, Any], path: str) -> None:
    """Remove a payload file and re-make the manifests as if it had never been there."""
    rest = {p[5:]: c for p, c in files.items() if p.startswith("data/") and p != f"data/{path}"}
    fresh = bag_files(rest)
    for key in [p for p in files if p.startswith("data/")]:
        del files[key]
    files.update(fresh)


def _add_payload(files: dict[str, Any], path: str, content: bytes) -> None:
    rest = {p[5:]: c for p, c in files.items() if p.startswith("data/")}
    rest[path] = content
    files.update(bag_files(rest))


# -- 8. not a ZIP, or a damaged one --------------------------------------------------------------------------
def broken_zip_cases() -> list[Case]:
    out = []

    def case(case_id: str, expect: str, build: Callable[[], bytes]) -> None:
        out.append(_case(case_id, "broken-archive", expect, None, build))

    not_zips = {
        "zero-bytes": b"",
        "text": b"This is not a crate.\n",
        "json": _request_text().encode(),
        "pdf": b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n",
        "png": b"\x89PNG\r\n\x1a\n" + bytes(64),
        "gzip": b"\x1f\x8b\x08\x00" + bytes(60),
        "tar": f"{BAG}/bagit.txt".encode().ljust(100, b"\x00") + b"0000644\x00" + bytes(400),
        "seven-zip": b"7z\xbc\xaf\x27\x1c" + bytes(58),
        "rar": b"Rar!\x1a\x07\x01\x00" + bytes(56),
        "pk-only": b"PK",
        "local-header-only": b"PK\x03\x04" + bytes(26),
        "html-error-page": b"<!doctype html><title>502 Bad Gateway</title>",
    }
    for key, content in not_zips.items():
        case(f"not-a-zip-{key}", "zip.not_a_zip", lambda content=content: content)
    case("random-bytes", "zip.not_a_zip", lambda: rng("random-bytes").randbytes(4096))
    case("empty-archive-with-comment", "zip.empty", lambda: write_zip([], comment=b"nothing to see here"))

    # Truncations: at fixed points and at seeded random ones, always losing the end of the archive.
    for cut in (1, 21, 22, 100):
        case(f"truncated-last-{cut}-bytes", "zip.not_a_zip", lambda cut=cut: crate()[:-cut])
    for fraction in (0.1, 0.25, 0.5, 0.75, 0.9, 0.99):
        case(
            f"truncated-at-{int(fraction * 100)}-percent",
            "zip.not_a_zip",
            lambda f=fraction: _cut(crate(), f),
        )
    for index in range(8):
        case_id = f"truncated-random-{index}"
        case(
            case_id, "zip.not_a_zip", lambda case_id=case_id: _cut(crate(), rng(case_id).uniform(0.02, 0.98))
        )
    case("first-half-twice", "zip.not_a_zip", lambda: _cut(crate(), 0.5) * 2)

    # End-of-archive records that lie.
    def end_record(change: Callable[[bytearray, int], None]) -> Callable[[], bytes]:
        def build() -> bytes:
            data = bytearray(crate())
            change(data, data.rindex(b"PK\x05\x06"))
            return bytes(data)

        return build

    # zipfile places the central directory just before the end record whatever its offset says, then
    # shifts every entry's offset by the difference: the entries cannot be found.
    case(
        "central-directory-offset-beyond-end",
        "zip.corrupt",
        end_record(lambda d, at: struct.pack_into("<I", d, at + 16, 0x7FFFFFF0)),
    )
    case(
        "central-directory-size-too-large",
        "zip.not_a_zip",
        end_record(
            lambda d, at: struct.pack_into("<I", d, at + 12, struct.unpack_from("<I", d, at + 12)[0] + 4096)
        ),
    )
    case(
        "central-directory-offset-shifted",
        "zip.corrupt",
        end_record(
            lambda d, at: struct.pack_into("<I", d, at + 16, struct.unpack_from("<I", d, at + 16)[0] + 7)
        ),
    )
    # A comment that ends with a second end record: readers take the last one, which lists nothing.
    fake_end = b"PK\x05\x06" + bytes(18)
    case(
        "comment-hides-empty-end-record", "zip.empty", lambda: _with_comment(crate(), b"garbage " + fake_end)
    )
    case(
        "comment-hides-end-record-beyond-file",
        "zip.not_a_zip",
        lambda: _with_comment(
            crate(), b"x" * 100 + b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 1, 1, 46, 0x7FFFFF00, 0)
        ),
    )

    # ZIP64 records.
    def zip64_end(disk: int, offset_delta: int) -> Callable[[], bytes]:
        def build() -> bytes:
            data = crate()
            end = data.rindex(b"PK\x05\x06")
            count, size, start = struct.unpack_from("<HII", data, end + 10)
            record = struct.pack(
                "<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, start + offset_delta
            )
            locator = struct.pack("<4sIQI", b"PK\x06\x07", disk, end, 1 if disk == 0 else 2)
            classic = bytearray(data[end:])
            struct.pack_into("<HHII", classic, 8, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
            return data[:end] + record + locator + bytes(classic)

        return build

    # As with the classic end record, a wrong offset shifts every entry rather than the directory.
    case("zip64-end-record-wrong-offset", "zip.corrupt", zip64_end(0, 1000))
    case("zip64-spans-two-disks", "zip.not_a_zip", zip64_end(1, 0))

    def zip64_extra_truncated() -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for entry in base_entries():
                archive.writestr(zipfile.ZipInfo(entry.name, DATE), entry.data)
            archive.getinfo(f"{BAG}/data/input1.txt").file_size = 2**33
        data = bytearray(buffer.getvalue())
        record = next(r for r in records(bytes(data)) if r.name == f"{BAG}/data/input1.txt".encode())
        extra_at = record.central + 46 + len(record.name)
        struct.pack_into("<H", data, extra_at + 2, 4)  # the ZIP64 field claims 4 bytes: too few for a size
        return bytes(data)

    case("zip64-extra-truncated", "zip.not_a_zip", zip64_extra_truncated)
    return out


def _cut(data: bytes, fraction: float) -> bytes:
    return data[: max(1, int(len(data) * fraction))]


def _with_comment(data: bytes, comment: bytes) -> bytes:
    end = data.rindex(b"PK\x05\x06")
    head = bytearray(data[: end + 22])
    struct.pack_into("<H", head, end + 20, len(comment))
    return bytes(head) + comment


# -- 9. the metadata file: not JSON, not UTF-8, repeated keys, nesting, numbers -------------------------------------
def metadata_syntax_cases() -> list[Case]:
    out = []
    where = METADATA

    def case(case_id: str, expect: str, content: Callable[[], bytes], names: str | None = where) -> None:
        out.append(_case(case_id, "metadata-syntax", expect, names, lambda: crate(content())))

    text = _request_text
    not_json = {
        "empty": b"",
        "whitespace": b" \n\t ",
        "plain-text": b"ro-crate metadata\n",
        "xml": b'<?xml version="1.0"?><crate/>',
        "yaml": b"'@context': https://w3id.org/ro/crate/1.2/context\n",
        "single-quotes": b"{'@graph': []}",
        "trailing-comma": b'{"@graph": [],}',
        "comment": b'// crate\n{"@graph": []}',
        "trailing-garbage": b'{"@graph": []} trailing',
        "two-documents": b'{"@graph": []}{"@graph": []}',
        "leading-zero": b'{"n": 01}',
        "bare-fraction": b'{"n": .5}',
        "unterminated-string": b'{"@graph": "unterminated}',
        "raw-tab-in-string": b'{"name": "a\tb"}',
        "raw-newline-in-string": b'{"name": "a\nb"}',
        "bad-escape": b'{"name": "\\x41"}',
        "short-unicode-escape": b'{"name": "\\u12"}',
        "nul-bytes": bytes(16),
        "unquoted-key": b"{graph: []}",
        "missing-colon": b'{"@graph" []}',
        "python-literals": b'{"ok": True, "none": None}',
    }
    for key, content in not_json.items():
        case(f"json-{key}", "metadata.syntax", lambda content=content: content)
    case("json-truncated-half", "metadata.syntax", lambda: text().encode()[: len(text()) // 2])
    case("json-truncated-last-brace", "metadata.syntax", lambda: text().encode().rstrip()[:-1])
    for key, literal in (("nan", b"NaN"), ("infinity", b"Infinity"), ("minus-infinity", b"-Infinity")):
        case(f"number-{key}", "metadata.syntax", lambda literal=literal: _with_value(literal))
    for key, literal in (
        ("overflow-1e400", b"1e400"),
        ("overflow-negative", b"-1.5e999"),
        ("overflow-long-exponent", b"1E+99999999999"),
        ("integer-5000-digits", b"9" * 5000),
    ):
        case(f"number-{key}", "metadata.syntax", lambda literal=literal: _with_value(literal))
    for key, top in (
        ("list", b"[]"),
        ("string", b'"crate"'),
        ("number", b"42"),
        ("null", b"null"),
        ("true", b"true"),
        ("list-of-object", b"[{}]"),
    ):
        case(f"top-level-{key}", "metadata.not_object", lambda top=top: top)

    # Encodings.
    def utf16(bom: bytes, codec: str) -> Callable[[], bytes]:
        return lambda: bom + text().encode(codec)

    encodings: dict[str, Callable[[], bytes]] = {
        "utf8-bom": lambda: b"\xef\xbb\xbf" + text().encode(),
        "utf16-le-bom": utf16(b"\xff\xfe", "utf-16-le"),
        "utf16-be-bom": utf16(b"\xfe\xff", "utf-16-be"),
        "utf32-le-bom": utf16(b"\xff\xfe\x00\x00", "utf-32-le"),
        "latin1": lambda: text().replace("Stian Soiland-Reyes", "Ren\u00e9e").encode("latin-1"),
        "overlong-slash": lambda: _with_string(b"\xc0\xaf"),
        "encoded-surrogate": lambda: _with_string(b"\xed\xa0\x80"),
        "beyond-unicode": lambda: _with_string(b"\xf4\x90\x80\x80"),
        "truncated-sequence": lambda: _with_string(b"\xe2\x82"),
        "invalid-byte-ff": lambda: _with_string(b"\xff"),
        "lone-continuation": lambda: _with_string(b"\x80"),
        "lone-surrogate-escape": lambda: _with_string(b"\\ud800"),
        "low-surrogate-escape": lambda: _with_string(b"\\udc00"),
        "reversed-surrogates": lambda: _with_string(b"\\udc00\\ud800"),
        "nul-escape-in-value": lambda: _with_string(b"before\\u0000after"),
        "nul-escape-in-key": lambda: text()[:-2].encode() + b', "na\\u0000me": "x"}',
    }
    for key, content in encodings.items():
        case(f"encoding-{key}", "metadata.encoding", content)
    case("encoding-utf16-without-bom", "metadata.syntax", lambda: text().encode("utf-16-le"))

    # Repeated keys, at the top and inside entities.
    duplicates = {
        "context": (None, "@context", "https://w3id.org/ro/crate/1.1/context"),
        "graph": (None, "@graph", []),
        "root-main-entity": (ROOT, "mainEntity", {"@id": "https://evil.example/workflow"}),
        "root-id": (ROOT, "@id", "#other"),
        "root-type": (ROOT, "@type", "CreativeWork"),
        "run-name": ("#query-37252371-c937-43bd-a0a7-3680b48c0538", "name", "Something else entirely"),
        "run-agent": (
            "#query-37252371-c937-43bd-a0a7-3680b48c0538",
            "agent",
            {"@id": "https://orcid.org/0000-0000-0000-0000"},
        ),
        "descriptor-about": (DESCRIPTOR, "about", {"@id": "#elsewhere"}),
        "person-member-of": (f"https://orcid.org/{ORCID}", "memberOf", []),
        "project-name": (PROJECT, "name", "Another project"),
    }
    for key, (entity_id, name, value) in duplicates.items():
        case(
            f"duplicate-key-{key}",
            "metadata.duplicate_key",
            lambda entity_id=entity_id, name=name, value=value: _duplicate_key(
                request_doc(), entity_id, name, value
            ),
            name,
        )
    case(
        "duplicate-key-escaped-spelling",
        "metadata.duplicate_key",
        lambda: _duplicate_key(request_doc(), ROOT, "name", "Escaped", spelling='"\\u006eame"'),
        "name",
    )
    case(
        "duplicate-key-inside-reference",
        "metadata.duplicate_key",
        lambda: (
            text().replace('"mainEntity": {', '"mainEntity": {"@id": "https://evil.example/x",', 1).encode()
        ),
        "@id",
    )
    case(
        "duplicate-key-in-inline-context",
        "metadata.duplicate_key",
        lambda: (
            text()
            .replace(
                '"@context": "https://w3id.org/ro/crate/1.2/context"',
                '"@context": ["https://w3id.org/ro/crate/1.2/context", {"@vocab": "http://schema.org/", "@vocab": "https://evil.example/"}]',
                1,
            )
            .encode()
        ),
        "@vocab",
    )

    # Nesting.
    depth = {
        "lists-10k": lambda: b"[" * 10_000 + b"]" * 10_000,
        "objects-10k": lambda: b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        "lists-100k-unclosed": lambda: b"[" * 100_000,
        "lists-65": lambda: b"[" * 65 + b"]" * 65,
        "in-entity": lambda: text()[:-2].encode() + b', "deep": ' + b"[" * 100 + b"]" * 100 + b"}",
        "in-context": lambda: (
            text()
            .replace(
                '"@context": "https://w3id.org/ro/crate/1.2/context"',
                '"@context": ' + "[" * 80 + '"https://w3id.org/ro/crate/1.2/context"' + "]" * 80,
                1,
            )
            .encode()
        ),
        "in-graph-entity": lambda: _with_value(b'{"@value": ' * 70 + b"1" + b"}" * 70),
    }
    for key, content in depth.items():
        case(f"nesting-{key}", "metadata.too_deep", content)
    return out


def _with_value(literal: bytes) -> bytes:
    """The request metadata with ``literal`` as the value of the root's ``description``."""
    text = _request_text()
    marker = '"description": "example 5-Safe RO-Crate request metadata for testing"'
    if marker not in text:
        raise AssertionError("the request crate changed: update the corpus")
    return text.replace(marker, '"description": ' + literal.decode("latin-1"), 1).encode("latin-1")


def _with_string(raw: bytes) -> bytes:
    """The request metadata whose root name holds ``raw`` bytes inside a JSON string."""
    text = _request_text().encode()
    marker = b'"name": "5-Safe RO-Crate Request"'
    if marker not in text:
        raise AssertionError("the request crate changed: update the corpus")
    return text.replace(marker, b'"name": "5-Safe ' + raw + b' Request"', 1)


def _duplicate_key(
    doc: Doc, entity_id: str | None, key: str, value: Any, *, spelling: str | None = None
) -> bytes:
    marker = "__corpus_duplicate_key__"
    target = doc if entity_id is None else next(e for e in doc["@graph"] if e.get("@id") == entity_id)
    target[marker] = value
    return json.dumps(doc, indent=1).replace(json.dumps(marker), spelling or json.dumps(key), 1).encode()


# -- 10. wrong JSON types at every key the validator reads --------------------------------------------------------
WRONG_VALUES: dict[str, Any] = {
    "number": 42,
    "true": True,
    "null": None,
    "empty-list": [],
    "blank-object": {},
    "numbers": [1, 2],
    "string": "https://example.org/not-a-reference",
}

# (entity, key) -> {kind of wrong value: expected check}; a kind left out does not break a REQUIRED rule.
_TYPE_TABLE: dict[tuple[str | None, str], dict[str, str]] = {
    (None, "@context"): dict.fromkeys(
        ("number", "true", "null", "empty-list", "blank-object", "numbers", "string"), P + "11.1"
    ),
    (None, "@graph"): {
        "number": "ro-crate.graph",
        "true": "ro-crate.graph",
        "null": "ro-crate.graph",
        "blank-object": "ro-crate.graph",
        "string": "ro-crate.graph",
        "empty-list": "ro-crate.descriptor",
        "numbers": "ro-crate.entity",
    },
    (ROOT, "@id"): dict.fromkeys(
        ("number", "true", "null", "empty-list", "blank-object", "numbers"), "ro-crate.entity"
    ),
    (ROOT, "@type"): {
        "number": "ro-crate.entity",
        "true": "ro-crate.entity",
        "blank-object": "ro-crate.entity",
        "numbers": "ro-crate.entity",
        "null": "ro-crate.root",
        "empty-list": "ro-crate.root",
        "string": "ro-crate.root",
    },
    (ROOT, "mainEntity"): dict.fromkeys(WRONG_VALUES, P + "22.1"),
    (ROOT, "sourceOrganization"): {
        "number": P + "17.2",
        "true": P + "17.2",
        "blank-object": P + "17.2",
        "numbers": P + "17.2",
        "string": P + "17.2",
        "null": P + "17.1",
        "empty-list": P + "17.1",
    },
    (ROOT, "mentions"): dict.fromkeys(WRONG_VALUES, P + "25.1"),
    (DESCRIPTOR, "about"): {
        "number": "ro-crate.root",
        "true": "ro-crate.root",
        "blank-object": "ro-crate.root",
        "numbers": "ro-crate.root",
        "string": "ro-crate.root",
        "null": "ro-crate.descriptor",
        "empty-list": "ro-crate.descriptor",
    },
    (DESCRIPTOR, "conformsTo"): dict.fromkeys(WRONG_VALUES, P + "12.1"),
    (RUN, "name"): dict.fromkeys(
        ("number", "true", "null", "empty-list", "blank-object", "numbers"), P + "1.1"
    ),
    (RUN, "actionStatus"): dict.fromkeys(WRONG_VALUES, P + "2.1"),
    (RUN, "agent"): dict.fromkeys(
        ("number", "true", "null", "empty-list", "blank-object", "numbers", "string"), P + "18.1"
    ),
    (RUN, "instrument"): {
        "number": P + "24.0",
        "true": P + "24.0",
        "blank-object": P + "24.0",
        "numbers": P + "24.0",
        "string": P + "24.0",
        "null": P + "24.1",
        "empty-list": P + "24.1",
    },
    (RUN, "object"): dict.fromkeys(("number", "true", "blank-object", "numbers", "string"), P + "24.0"),
    (RUN, "endTime"): dict.fromkeys(("number", "true", "blank-object", "numbers", "string"), P + "19.1"),
    (RUN, "startTime"): dict.fromkeys(("number", "true", "blank-object", "numbers", "string"), P + "19.2"),
    (PERSON, "memberOf"): dict.fromkeys(("number", "true", "blank-object", "numbers", "string"), P + "15.1"),
    (PERSON, "affiliation"): dict.fromkeys(
        ("number", "true", "blank-object", "numbers", "string"), P + "18.3"
    ),
    (PROJECT, "funding"): dict.fromkeys(("number", "true", "blank-object", "numbers", "string"), P + "16.1"),
    (PROJECT, "member"): dict.fromkeys(("number", "true", "blank-object", "numbers", "string"), P + "16.2"),
    (WORKFLOW, "conformsTo"): {
        "number": P + "23.2",
        "true": P + "23.2",
        "blank-object": P + "23.2",
        "string": P + "23.2",
        "numbers": P + "23.1",
        "null": P + "23.1",
        "empty-list": P + "23.1",
    },
    (CHECK, "name"): dict.fromkeys(("number", "true", "blank-object", "numbers"), P + "3.2"),
    (CHECK, "actionStatus"): dict.fromkeys(
        ("number", "true", "blank-object", "numbers", "string"), P + "4.1"
    ),
    (VALIDATE, "name"): dict.fromkeys(("number", "true", "blank-object", "numbers"), P + "5.2"),
    (VALIDATE, "actionStatus"): dict.fromkeys(WRONG_VALUES, P + "6.2"),
    (DOWNLOAD, "name"): dict.fromkeys(
        ("number", "true", "null", "empty-list", "blank-object", "numbers"), P + "7.1"
    ),
    (DOWNLOAD, "actionStatus"): dict.fromkeys(
        ("number", "true", "blank-object", "numbers", "string"), P + "8.1"
    ),
    (DOWNLOADED, "sameAs"): dict.fromkeys(WRONG_VALUES, P + "9.0"),
    (DOWNLOADED, "distribution"): dict.fromkeys(WRONG_VALUES, P + "10.0"),
    (SIGNOFF, "name"): dict.fromkeys(
        ("number", "true", "null", "empty-list", "blank-object", "numbers"), P + "20.1"
    ),
    (SIGNOFF, "actionStatus"): dict.fromkeys(
        ("number", "true", "blank-object", "numbers", "string"), P + "21.1"
    ),
    (DISCLOSURE, "name"): dict.fromkeys(
        ("number", "true", "null", "empty-list", "blank-object", "numbers"), P + "26.2"
    ),
    (DISCLOSURE, "actionStatus"): dict.fromkeys(
        ("number", "true", "blank-object", "numbers", "string"), P + "27.1"
    ),
}

_SHORT_NAMES = {
    None: "document",
    ROOT: "root",
    DESCRIPTOR: "descriptor",
    RUN: "run",
    PERSON: "agent",
    PROJECT: "project",
    WORKFLOW: "workflow",
    CHECK: "check-value",
    VALIDATE: "validation-check",
    DOWNLOAD: "download",
    DOWNLOADED: "downloaded-workflow",
    SIGNOFF: "sign-off",
    DISCLOSURE: "disclosure",
}

# The entity each check reports its finding on (the label the refusal must name).
_REPORTED_ON = {
    "11.1": DESCRIPTOR,
    "12.1": DESCRIPTOR,
    "14.0": PERSON,
    "15.1": PERSON,
    "16.1": PROJECT,
    "16.2": PROJECT,
    "17.1": ROOT,
    "17.2": ROOT,
    "22.1": ROOT,
    "22.2": ROOT,
    "25.1": ROOT,
    "1.1": RUN,
    "2.1": RUN,
    "18.1": RUN,
    "18.2": RUN,
    "18.3": RUN,
    "24.0": RUN,
    "24.1": RUN,
    "23.1": WORKFLOW,
    "23.2": WORKFLOW,
    "3.1": CHECK,
    "3.2": CHECK,
    "4.1": CHECK,
    "5.1": VALIDATE,
    "5.2": VALIDATE,
    "6.2": VALIDATE,
    "7.1": DOWNLOAD,
    "8.1": DOWNLOAD,
    "9.0": DOWNLOADED,
    "10.0": DOWNLOADED,
    "20.1": SIGNOFF,
    "20.2": SIGNOFF,
    "21.1": SIGNOFF,
    "26.1": DISCLOSURE,
    "26.2": DISCLOSURE,
    "27.1": DISCLOSURE,
}


def _names_for(expect: str, fallback: str | None) -> str | None:
    if expect.startswith(P):
        return _REPORTED_ON.get(expect.removeprefix(P), fallback)
    if expect in ("ro-crate.root", "ro-crate.descriptor"):
        return DESCRIPTOR
    return fallback


def entity(doc: Doc, identifier: str) -> dict[str, Any]:
    return next(e for e in doc["@graph"] if e.get("@id") == identifier)


def _metadata_case(
    case_id: str,
    category: str,
    expect: str,
    names: str | None,
    edit: Callable[[Doc], None],
    *,
    base: Callable[[], Doc] = result_doc,
) -> Case:
    def build() -> bytes:
        doc = base()
        edit(doc)
        return crate(json.dumps(doc, indent=1).encode())

    return _case(case_id, category, expect, names, build)


def metadata_type_cases() -> list[Case]:
    out = []
    for (entity_id, key), kinds in _TYPE_TABLE.items():
        for kind, expect in kinds.items():
            if expect is None:
                continue
            value = WRONG_VALUES[kind]

            def edit(doc: Doc, entity_id: str | None = entity_id, key: str = key, value: Any = value) -> None:
                target = doc if entity_id is None else entity(doc, entity_id)
                target[key] = copy.deepcopy(value)

            case_id = f"type-{_SHORT_NAMES[entity_id]}-{key.lstrip('@').lower()}-{kind}"
            names = _names_for(expect, None if expect.startswith("ro-crate") else entity_id)
            out.append(_metadata_case(case_id, "metadata-wrong-type", expect, names, edit))
    return out


# -- 11. one REQUIRED rule of the profile broken at a time ------------------------------------------------------------
def _set(identifier: str, key: str, value: Any) -> Callable[[Doc], None]:
    return lambda doc: entity(doc, identifier).__setitem__(key, copy.deepcopy(value))


def _drop(identifier: str, key: str) -> Callable[[Doc], None]:
    return lambda doc: entity(doc, identifier).pop(key)


def _unmention(identifier: str) -> Callable[[Doc], None]:
    return lambda doc: entity(doc, ROOT)["mentions"].remove({"@id": identifier})


def _add(*entities: dict[str, Any], mention: bool = False) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        doc["@graph"].extend(copy.deepcopy(list(entities)))
        if mention:
            root = entity(doc, ROOT)
            mentions = root["mentions"] if isinstance(root["mentions"], list) else [root["mentions"]]
            root["mentions"] = mentions + [{"@id": e["@id"]} for e in entities]

    return edit


def _chain(*edits: Callable[[Doc], None]) -> Callable[[Doc], None]:
    def edit(doc: Doc) -> None:
        for step in edits:
            step(doc)

    return edit


def _assess(identifier: str, step: str, **props: Any) -> dict[str, Any]:
    return {
        "@id": identifier,
        "@type": "AssessAction",
        "additionalType": {"@id": f"https://w3id.org/shp#{step}"},
        **props,
    }


def profile_cases() -> list[Case]:
    out: list[Case] = []

    def case(
        key: str,
        check: str,
        edit: Callable[[Doc], None],
        *,
        base: Callable[[], Doc] = result_doc,
        names: str | None = None,
    ) -> None:
        expect = check if "crate." in check else P + check
        out.append(
            _metadata_case(
                f"profile-{key}",
                "profile-required",
                expect,
                names or _names_for(expect, None),
                edit,
                base=base,
            )
        )

    second_run = {
        "@id": "#second-run",
        "@type": "CreateAction",
        "name": "Another requested run of the workflow",
        "actionStatus": "http://schema.org/PotentialActionStatus",
        "agent": {"@id": PERSON},
        "instrument": {"@id": WORKFLOW},
    }
    case("run-name-too-short", "1.1", _set(RUN, "name", "Run query"))
    case("run-name-missing", "1.1", _drop(RUN, "name"))
    case(
        "second-run-unnamed",
        "1.1",
        _add({k: v for k, v in second_run.items() if k != "name"}, mention=True),
        names="#second-run",
    )
    case("run-status-missing", "2.1", _drop(RUN, "actionStatus"))
    case("run-status-as-reference", "2.1", _set(RUN, "actionStatus", {"@id": COMPLETED}))
    case("run-status-https", "2.1", _set(RUN, "actionStatus", "https://schema.org/CompletedActionStatus"))
    case("run-status-short", "2.1", _set(RUN, "actionStatus", "CompletedActionStatus"))
    case("check-not-assess-action", "3.1", _set(CHECK, "@type", "Action"))
    case("check-name-number", "3.2", _set(CHECK, "name", 7))
    case("check-status-unknown", "4.1", _set(CHECK, "actionStatus", "done"))
    case("validation-check-not-assess-action", "5.1", _set(VALIDATE, "@type", "CheckAction"))
    case(
        "validation-check-name-tagged",
        "5.2",
        _set(VALIDATE, "name", {"@value": "Validation: approved", "@language": "en"}),
    )
    case("validation-check-status-missing", "6.2", _drop(VALIDATE, "actionStatus"))
    case("validation-check-status-unknown", "6.2", _set(VALIDATE, "actionStatus", "approved"))
    case("download-name-missing", "7.1", _drop(DOWNLOAD, "name"))
    case("download-two-names", "7.1", _set(DOWNLOAD, "name", ["Downloaded workflow", "Fetched workflow"]))
    case("download-status-unknown", "8.1", _set(DOWNLOAD, "actionStatus", "http://schema.org/Done"))
    case("downloaded-workflow-not-same-as", "9.0", _drop(DOWNLOADED, "sameAs"))
    case(
        "downloaded-workflow-same-as-other",
        "9.0",
        _set(DOWNLOADED, "sameAs", {"@id": "https://workflowhub.eu/workflows/1"}),
    )
    case(
        "downloaded-workflow-other-distribution",
        "10.0",
        _set(DOWNLOADED, "distribution", {"@id": "https://evil.example/w.zip"}),
    )
    case("context-1.1", "11.1", lambda doc: doc.update({"@context": "https://w3id.org/ro/crate/1.1/context"}))
    case("context-missing", "11.1", lambda doc: doc.pop("@context"))
    case("context-http", "11.1", lambda doc: doc.update({"@context": "http://w3id.org/ro/crate/1.2/context"}))
    case("context-2.0", "11.1", lambda doc: doc.update({"@context": "https://w3id.org/ro/crate/2.0/context"}))
    case(
        "descriptor-conforms-1.1",
        "12.1",
        _set(DESCRIPTOR, "conformsTo", {"@id": "https://w3id.org/ro/crate/1.1"}),
    )
    case("descriptor-conforms-missing", "12.1", _drop(DESCRIPTOR, "conformsTo"))
    for key, identifier in (
        ("sign-off", SIGNOFF),
        ("check-value", CHECK),
        ("validation-check", VALIDATE),
        ("disclosure", DISCLOSURE),
    ):
        case(f"{key}-unmentioned", "13.1", _unmention(identifier), names=identifier)
    case(
        "agent-in-another-project",
        "14.0",
        _chain(
            _add({"@id": "#project-other", "@type": "Project", "name": "Another project"}),
            _set(PERSON, "memberOf", {"@id": "#project-other"}),
        ),
    )
    case(
        "agent-member-of-organization",
        "15.1",
        _set(PERSON, "memberOf", [{"@id": PROJECT}, {"@id": MANCHESTER}]),
    )
    case("project-funding-organization", "16.1", _set(PROJECT, "funding", {"@id": MANCHESTER}))
    case(
        "project-member-undescribed",
        "16.2",
        _set(PROJECT, "member", [{"@id": MANCHESTER}, {"@id": "https://ror.org/00000none"}]),
    )
    case("root-source-organization-missing", "17.1", _drop(ROOT, "sourceOrganization"))
    case(
        "root-source-organization-organization", "17.2", _set(ROOT, "sourceOrganization", {"@id": MANCHESTER})
    )
    case("run-agent-missing", "18.1", _drop(RUN, "agent"))
    case(
        "run-agent-blank-node",
        "18.1",
        _chain(_set(PERSON, "@id", "_:requester"), _set(RUN, "agent", {"@id": "_:requester"})),
    )
    case("run-agent-organization", "18.2", _set(RUN, "agent", {"@id": MANCHESTER}))
    case(
        "run-agent-software",
        "18.2",
        _set(RUN, "agent", {"@id": "https://tre72.example.com/#crate-validator"}),
    )
    case("agent-affiliation-project", "18.3", _set(PERSON, "affiliation", {"@id": PROJECT}))
    case("end-time-date-only", "19.1", _set(RUN, "endTime", "2023-04-19"), names=RUN)
    case("end-time-no-zone", "19.1", _set(SIGNOFF, "endTime", "2023-04-19T17:15:12"), names=SIGNOFF)
    case("start-time-no-zone", "19.2", _set(CHECK, "startTime", "2023-04-18T12:11:00"), names=CHECK)
    case("start-time-words", "19.2", _set(DISCLOSURE, "startTime", "yesterday afternoon"), names=DISCLOSURE)
    case("sign-off-name-missing", "20.1", _drop(SIGNOFF, "name"))
    case("sign-off-not-assess-action", "20.2", _set(SIGNOFF, "@type", "ReviewAction"))
    case("sign-off-status-unknown", "21.1", _set(SIGNOFF, "actionStatus", "approved"))
    case("main-entity-missing", "22.1", _drop(ROOT, "mainEntity"))
    case("main-entity-twice", "22.1", _set(ROOT, "mainEntity", [{"@id": WORKFLOW}, {"@id": DOWNLOADED}]))
    case("main-entity-not-dataset", "22.2", _set(WORKFLOW, "@type", "SoftwareSourceCode"))
    case(
        "main-entity-undescribed",
        "22.2",
        _chain(
            _set(ROOT, "mainEntity", {"@id": "https://workflowhub.eu/workflows/999"}),
            _set(RUN, "instrument", {"@id": "https://workflowhub.eu/workflows/999"}),
        ),
    )
    case("workflow-conforms-to-missing", "23.1", _drop(WORKFLOW, "conformsTo"))
    case(
        "workflow-conforms-to-ro-crate",
        "23.2",
        _set(WORKFLOW, "conformsTo", {"@id": "https://w3id.org/ro/crate/1.2"}),
    )
    case(
        "run-instrument-other",
        "24.0",
        _set(RUN, "instrument", {"@id": "https://workflowhub.eu/workflows/1?version=2"}),
    )
    case(
        "run-input-undescribed",
        "24.0",
        _set(RUN, "object", [{"@id": "input1.txt"}, {"@id": "#not-described"}]),
    )
    case("run-instrument-missing", "24.1", _drop(RUN, "instrument"))
    case("root-does-not-mention-run", "25.1", _unmention(RUN))
    case("disclosure-not-assess-action", "26.1", _set(DISCLOSURE, "@type", "Action"))
    case("disclosure-name-too-short", "26.2", _set(DISCLOSURE, "name", "Approved"))
    case("disclosure-status-unknown", "27.1", _set(DISCLOSURE, "actionStatus", "released"))
    # RO-Crate essentials and the 5s-crate MUSTs the community profile leaves out.
    case(
        "duplicate-entity",
        "ro-crate.duplicate_id",
        lambda doc: doc["@graph"].append(copy.deepcopy(entity(doc, RUN))),
        names=RUN,
    )
    case(
        "embedded-project",
        "ro-crate.flattened",
        lambda doc: entity(doc, ROOT).__setitem__("sourceOrganization", copy.deepcopy(entity(doc, PROJECT))),
        names=PROJECT,
    )
    case(
        "entity-without-id",
        "ro-crate.entity",
        lambda doc: doc["@graph"].append({"@type": "Thing", "name": "anonymous"}),
    )
    case(
        "graph-item-not-object", "ro-crate.entity", lambda doc: doc["@graph"].append(["not", "an", "entity"])
    )
    case("top-level-extra-key", "ro-crate.graph", lambda doc: doc.update({"@id": "./"}))
    case(
        "descriptor-missing", "ro-crate.descriptor", lambda doc: doc["@graph"].remove(entity(doc, DESCRIPTOR))
    )
    case("root-not-dataset", "ro-crate.root", _set(ROOT, "@type", "CreativeWork"))
    case(
        "two-roots",
        "ro-crate.root",
        _chain(
            _add({"@id": "second/", "@type": "Dataset", "name": "Second root"}),
            _set(DESCRIPTOR, "about", [{"@id": "./"}, {"@id": "second/"}]),
        ),
    )
    case(
        "context-term-defined-by-itself",
        "ro-crate.context_invalid",
        lambda doc: doc.update(
            {
                "@context": [
                    "https://w3id.org/ro/crate/1.2/context",
                    {"a": {"@id": "b:x"}, "b": {"@id": "a:y"}},
                ]
            }
        ),
    )
    case(
        "context-entry-number",
        "ro-crate.context_invalid",
        lambda doc: doc.update({"@context": ["https://w3id.org/ro/crate/1.2/context", 42]}),
    )
    case(
        "nesting-beyond-reader",
        "ro-crate.nesting",
        lambda doc: entity(doc, RUN).__setitem__(
            "description", functools.reduce(lambda inner, _: {"name": inner}, range(40), "deep")
        ),
    )
    case(
        "root-id-not-dot-slash",
        "5s-crate.root_id",
        _chain(_set(ROOT, "@id", "crate/"), _set(DESCRIPTOR, "about", {"@id": "crate/"})),
        names="crate/",
    )
    for key, target in (
        ("parent-fetch", "../fetch.txt"),
        ("etc-passwd", "../../../etc/passwd"),
        ("file-url", "file:///etc/passwd"),
        ("absolute-path", "/etc/shadow"),
        ("through-data", "data/../../secret.txt"),
    ):
        case(
            f"outside-reference-{key}",
            "5s-crate.outside_reference",
            lambda doc, target=target: entity(doc, ROOT)["hasPart"].append({"@id": target}),
            names=target,
        )
    # The request crate as the portal receives it: review steps a sender wrote are checked before they are stripped.
    request_run = "#query-37252371-c937-43bd-a0a7-3680b48c0538"
    case(
        "request-forged-sign-off-status",
        "21.1",
        _add(
            _assess("#forged-signoff", "SignOff", name="Signed off by nobody", actionStatus="approved"),
            mention=True,
        ),
        base=request_doc,
        names="#forged-signoff",
    )
    case(
        "request-forged-check-unmentioned",
        "13.1",
        _add(_assess("#forged-check", "CheckValue", name="Checked", actionStatus=COMPLETED)),
        base=request_doc,
        names="#forged-check",
    )
    case(
        "request-forged-disclosure-short-name",
        "26.2",
        _add(
            _assess("#forged-disclosure", "DisclosureCheck", name="Released", actionStatus=COMPLETED),
            mention=True,
        ),
        base=request_doc,
        names="#forged-disclosure",
    )
    case(
        "request-run-name-short",
        "1.1",
        _set(request_run, "name", "Run it"),
        base=request_doc,
        names=request_run,
    )
    case(
        "request-agent-unaffiliated-org",
        "18.3",
        _set(f"https://orcid.org/{ORCID}", "affiliation", {"@id": "https://ror.org/nowhere"}),
        base=request_doc,
        names=request_run,
    )
    return out

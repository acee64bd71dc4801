"""Verifying a bag straight from its ZIP: the verdict of extract_bag + verify_bag, without unpacking."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

import tests.unit.crates.test_safezip as safezip_tests
from crates.fivesafes import CrateRefused, Limits, create_bag, extract_bag, pack_bag, verify_bag
from crates.fivesafes.bag import regenerate_manifests
from crates.fivesafes.loader import load_metadata
from crates.fivesafes.zipbag import ZipBag, verify_zip_bag
from tests.reference_data import CRATE_FIXTURES
from tests.unit.crates.test_bag import IDENTIFIER, drop_oxum, retag

MiB = 1024 * 1024
METADATA = b'{"@graph": []}\n'
COHORT = b"region\nnorth\n"


# -- the two paths ---------------------------------------------------------------------------------------
def unpacked_verdict(zip_path: Path, scratch: Path, limits: Limits | None = None) -> tuple[str, object]:
    """What extract_bag, verify_bag and load_metadata make of a crate: ("refused", code) or its facts."""
    try:
        bag_dir = extract_bag(zip_path, scratch, limits)
        info = verify_bag(bag_dir)
        metadata_file = bag_dir / "data" / "ro-crate-metadata.json"
        metadata = metadata_file.read_bytes()
        doc = load_metadata(metadata_file, limits=limits)
    except CrateRefused as refusal:
        return "refused", refusal.code
    facts = (
        info.external_identifier,
        info.uuid,
        info.bagit_version,
        info.algorithms,
        info.payload_files,
        info.payload_bytes,
        info.has_tagmanifest,
        info.info,
    )
    return "accepted", (facts, metadata, doc)


def zip_verdict(zip_path: Path, limits: Limits | None = None) -> tuple[str, object]:
    try:
        bag = verify_zip_bag(zip_path, limits)
        doc = load_metadata(bag.metadata, limits=limits)
    except CrateRefused as refusal:
        return "refused", refusal.code
    facts = (
        bag.external_identifier,
        bag.uuid,
        bag.bagit_version,
        bag.algorithms,
        bag.payload_files,
        bag.payload_bytes,
        bag.has_tagmanifest,
        bag.info,
    )
    return "accepted", (facts, bag.metadata, doc)


def assert_same_verdict(zip_path: Path, scratch: Path, limits: Limits | None = None) -> tuple[str, object]:
    expected = unpacked_verdict(zip_path, scratch, limits)
    assert zip_verdict(zip_path, limits) == expected
    return expected


def refusal(zip_path: Path, limits: Limits | None = None) -> CrateRefused:
    with pytest.raises(CrateRefused) as caught:
        verify_zip_bag(zip_path, limits)
    return caught.value


def zip_folder(folder: Path, zip_path: Path) -> Path:
    """``folder`` as the single top-level folder of a ZIP, whatever it holds (pack_bag wants a bag)."""
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(folder, folder.name + "/")
        for path in sorted(folder.rglob("*")):
            archive.write(path, path.relative_to(folder.parent).as_posix() + ("/" if path.is_dir() else ""))
    return zip_path


# -- equivalence: every crate ZIP of the safezip tests ---------------------------------------------------
def _parametrized(test: Callable[..., None]) -> list:
    (mark,) = [mark for mark in test.pytestmark if mark.name == "parametrize"]  # type: ignore[attr-defined]
    return mark.args[1]


SAFEZIP_CASES = _parametrized(safezip_tests.test_unsafe_archives_are_refused)
BAG = safezip_tests.BAG


def _with_manifests(entries: list) -> list:
    """``entries`` made into a complete bag (a valid one when nothing else is wrong with them)."""
    lines = "".join(
        f"{hashlib.sha512(data).hexdigest()}  {name.split('/', 1)[1]}\n"
        for name, data in entries
        if isinstance(name, str) and name.startswith("bag/data/") and not name.endswith("/")
    )
    info = f"External-Identifier: {IDENTIFIER}\n".encode()
    return [*entries, ("bag/bag-info.txt", info), ("bag/manifest-sha512.txt", lines.encode())]


@pytest.mark.parametrize(
    "entries", [case.values[1] for case in SAFEZIP_CASES], ids=[case.id for case in SAFEZIP_CASES]
)
def test_the_unsafe_archives_of_the_safezip_tests(tmp_path: Path, entries: list) -> None:
    zip_path = safezip_tests.make_zip(tmp_path / "crate.zip", entries)
    verdict, code = assert_same_verdict(zip_path, tmp_path / "out")
    assert verdict == "refused" and str(code).startswith("zip.")


@pytest.mark.parametrize(
    ("name", "entries", "limits"),
    [
        ("well-formed", [("bag/", b""), *BAG], None),
        ("complete bag", _with_manifests([("bag/", b""), *BAG]), None),
        ("too many files", BAG, Limits(max_files=2)),
        ("too deep", [*BAG, ("bag/data/a/b/c/d.txt", b"x")], Limits(max_depth=4)),
        ("archive too large", BAG, Limits(max_compressed_bytes=100)),
        ("declared too large", [*BAG, ("bag/data/big.bin", os.urandom(2 * MiB))], Limits(max_uncompressed_bytes=MiB)),
        ("metadata too large", [*BAG[:1], ("bag/data/ro-crate-metadata.json", b"{" + b" " * 100 + b"}")], Limits(max_metadata_bytes=50)),
        ("zip bomb", [*BAG, ("bag/data/zeros.bin", bytes(8 * MiB))], None),
        ("small zeros", _with_manifests([*BAG, ("bag/data/zeros.bin", bytes(MiB // 2))]), None),
    ],
)  # fmt: skip
def test_the_limits_of_the_safezip_tests(
    tmp_path: Path, name: str, entries: list, limits: Limits | None
) -> None:
    zip_path = safezip_tests.make_zip(tmp_path / "crate.zip", entries)
    assert_same_verdict(zip_path, tmp_path / "out", limits)


def test_an_understated_size_and_a_damaged_entry(tmp_path: Path) -> None:
    lying = safezip_tests.make_zip(
        tmp_path / "lying.zip", _with_manifests([*BAG, ("bag/data/payload.bin", os.urandom(64 * 1024))])
    )
    safezip_tests._patch_sizes(lying, b"bag/data/payload.bin", 10)
    assert assert_same_verdict(lying, tmp_path / "out-1") == ("refused", "zip.corrupt")
    damaged = safezip_tests.make_zip(
        tmp_path / "damaged.zip",
        _with_manifests([*BAG, ("bag/data/text.txt", b"a" * 1000)]),
        zipfile.ZIP_STORED,
    )
    damaged.write_bytes(damaged.read_bytes().replace(b"a" * 1000, b"b" * 1000))
    assert assert_same_verdict(damaged, tmp_path / "out-2") == ("refused", "zip.corrupt")


def test_encrypted_entries(tmp_path: Path) -> None:
    zip_path = safezip_tests.make_zip(tmp_path / "crate.zip", _with_manifests(BAG))
    data = bytearray(zip_path.read_bytes())
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (start := data.find(signature, start)) != -1:
            data[start + flag_offset] |= 1
            start += 4
    zip_path.write_bytes(bytes(data))
    assert assert_same_verdict(zip_path, tmp_path / "out") == ("refused", "zip.encrypted")


@pytest.mark.parametrize(
    ("manifest_first", "code"),
    [(False, "zip.ratio"), (True, "zip.corrupt")],
    ids=["bomb-first", "damage-first"],
)
def test_the_first_fault_in_archive_order_is_reported(
    tmp_path: Path, manifest_first: bool, code: str
) -> None:
    """A damaged tag file and a bomb in the payload: extract_bag meets whichever comes first."""
    manifest = ("bag/manifest-sha512.txt", b"a" * 1000, zipfile.ZIP_STORED)
    bomb = ("bag/data/zeros.bin", bytes(8 * MiB), zipfile.ZIP_DEFLATED)
    zip_path = tmp_path / "crate.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name, data, method in (
            BAG[0] + (zipfile.ZIP_DEFLATED,),
            *((manifest, bomb) if manifest_first else (bomb, manifest)),
        ):
            archive.writestr(name, data, compress_type=method)
    zip_path.write_bytes(zip_path.read_bytes().replace(b"a" * 1000, b"b" * 1000))
    assert assert_same_verdict(zip_path, tmp_path / "out") == ("refused", code)


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04 truncated", None])
def test_not_a_zip(tmp_path: Path, content: bytes | None) -> None:
    zip_path = tmp_path / "crate.zip"
    if content is not None:
        zip_path.write_bytes(content)
    code = "zip.unreadable" if content is None else "zip.not_a_zip"
    assert assert_same_verdict(zip_path, tmp_path / "out") == ("refused", code)


# -- equivalence: every bag of the bag tests, zipped -----------------------------------------------------
def _append(path: str, text: str) -> Callable[[Path], None]:
    def edit(bag: Path) -> None:
        with (bag / path).open("a", encoding="utf-8") as handle:
            handle.write(text)

    return edit


def _identifier(line: str) -> Callable[[Path], None]:
    def edit(bag: Path) -> None:
        info = bag / "bag-info.txt"
        info.write_text(re.sub(r"External-Identifier: .*\n", line, info.read_text(encoding="utf-8")), "utf-8")

    return edit


def _sealed(*edits: Callable[[Path], None]) -> Callable[[Path], None]:
    """The edits, then the Payload-Oxum dropped and the tag manifest refreshed, as a careful forger would."""

    def edit(bag: Path) -> None:
        for step in edits:
            step(bag)
        drop_oxum(bag)
        retag(bag)

    return edit


def _write(path: str, content: bytes) -> Callable[[Path], None]:
    return lambda bag: (bag / path).write_bytes(content)


def _unlink(path: str) -> Callable[[Path], None]:
    return lambda bag: (bag / path).unlink()


def _other_algorithm(bag: Path) -> None:
    (bag / "manifest-md5.txt").write_text("stale  data/ro-crate-metadata.json\n", encoding="utf-8")
    regenerate_manifests(bag)


def _wrong_md5(bag: Path) -> None:
    _other_algorithm(bag)
    manifest = bag / "manifest-md5.txt"
    manifest.write_text(re.sub(r"^[0-9a-f]{32}", "0" * 32, manifest.read_text(), flags=re.M), "utf-8")
    retag(bag)


BAG_EDITS: dict[str, Callable[[Path], None]] = {
    "valid": lambda bag: None,
    "changed payload file": _write("data/inputs/cohort.csv", b"region\nsouth\n"),
    "changed tag file": _append("bag-info.txt", "Contact-Name: Mallory\n"),
    "file of another size": _write("data/extra.txt", b"smuggled"),
    "missing payload file": _sealed(_unlink("data/inputs/cohort.csv")),
    "unlisted payload file": _sealed(_write("data/extra.txt", b"smuggled")),
    "no sha512 manifest": lambda bag: (bag / "manifest-sha512.txt").rename(bag / "manifest-sha256.txt"),
    "no identifier": _identifier(""),
    "identifier not a urn": _identifier("External-Identifier: request-12389\n"),
    "identifier not a uuid": _identifier("External-Identifier: urn:uuid:not-a-uuid\n"),
    "identifier twice": _identifier(f"External-Identifier: {IDENTIFIER}\nExternal-Identifier: {IDENTIFIER}\n"),
    "bagit 0.97": _write("bagit.txt", b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n"),
    "unreadable declaration": _write("bagit.txt", b"this is not a tag file\n"),
    "declaration with a byte-order mark": _sealed(
        _write("bagit.txt", b"\xef\xbb\xbfBagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    ),
    "no declaration": _unlink("bagit.txt"),
    "files to fetch": _write("fetch.txt", b"https://example.org/big.bin 10 data/big.bin\n"),
    "empty fetch.txt": _write("fetch.txt", b""),
    "no metadata": lambda bag: (_unlink("data/ro-crate-metadata.json")(bag), regenerate_manifests(bag)),
    "another algorithm": _other_algorithm,
    "wrong checksum of another algorithm": _wrong_md5,
    "no tag manifest": _unlink("tagmanifest-sha512.txt"),
    "tag manifest listing an absent file": _append("tagmanifest-sha512.txt", f"{'0' * 128}  extra-tag.txt\n"),
    "other tag file": lambda bag: (_write("extra-tag.txt", b"note\n")(bag), regenerate_manifests(bag)),
    "other tag file changed": lambda bag: (
        _write("extra-tag.txt", b"note\n")(bag),
        regenerate_manifests(bag),
        _write("extra-tag.txt", b"changed\n")(bag),
    ),
    "manifest line repeated": _sealed(
        lambda bag: _append("manifest-sha512.txt", (bag / "manifest-sha512.txt").read_text().splitlines(True)[0])(bag)
    ),
    "manifest path climbing out": _sealed(_append("manifest-sha512.txt", f"{'0' * 128}  ../bagit.txt\n")),
    "manifest path absolute": _sealed(_append("manifest-sha512.txt", f"{'0' * 128}  /etc/passwd\n")),
    "empty folder in the payload": lambda bag: (bag / "data" / "empty").mkdir(),
}  # fmt: skip


def make_bag(root: Path) -> Path:
    bag_dir = root / "request-12389"
    (bag_dir / "data" / "inputs").mkdir(parents=True)
    (bag_dir / "data" / "ro-crate-metadata.json").write_bytes(METADATA)
    (bag_dir / "data" / "inputs" / "cohort.csv").write_bytes(COHORT)
    create_bag(bag_dir, IDENTIFIER)
    return bag_dir


@pytest.mark.parametrize("edit", BAG_EDITS.values(), ids=BAG_EDITS.keys())
def test_the_bags_of_the_bag_tests(tmp_path: Path, edit: Callable[[Path], None]) -> None:
    bag_dir = make_bag(tmp_path / "source")
    edit(bag_dir)
    assert_same_verdict(zip_folder(bag_dir, tmp_path / "crate.zip"), tmp_path / "out")


def test_the_bag_tests_cover_both_verdicts(tmp_path: Path) -> None:
    verdicts = {}
    for number, (name, edit) in enumerate(BAG_EDITS.items()):
        bag_dir = make_bag(tmp_path / f"source-{number}")
        edit(bag_dir)
        verdicts[name] = zip_verdict(zip_folder(bag_dir, tmp_path / f"crate-{number}.zip"))
    assert verdicts["valid"][0] == verdicts["another algorithm"][0] == "accepted"
    assert verdicts["wrong checksum of another algorithm"] == ("refused", "bag.checksum_mismatch")
    assert verdicts["declaration with a byte-order mark"] == ("refused", "bag.invalid")
    assert verdicts["other tag file changed"] == ("refused", "bag.tag_checksum_mismatch")
    assert len({code for verdict, code in verdicts.values() if verdict == "refused"}) >= 12


# -- equivalence: the example crates and the intake tests' crates ----------------------------------------
FIXTURES = CRATE_FIXTURES


@pytest.mark.parametrize("name", sorted(path.name for path in FIXTURES.iterdir() if path.is_dir()))
def test_the_example_crates(tmp_path: Path, name: str) -> None:
    source = FIXTURES / name
    if (source / "bagit.txt").is_file():
        zip_path = pack_bag(source, tmp_path / "crate.zip")
    else:
        zip_path = zip_folder(source, tmp_path / "crate.zip")
    assert_same_verdict(zip_path, tmp_path / "out")


@pytest.mark.parametrize(
    "entries",
    [
        {"crate/bagit.txt": b"x", "../evil.txt": b"x"},
        {"crate/bagit.txt": b"x", "other/bagit.txt": b"x"},
        {"crate/data/ro-crate-metadata.json": b"{}"},
    ],
)
def test_the_refusals_of_the_intake_tests(tmp_path: Path, entries: dict[str, bytes]) -> None:
    zip_path = safezip_tests.make_zip(tmp_path / "bad.zip", list(entries.items()), zipfile.ZIP_STORED)
    assert assert_same_verdict(zip_path, tmp_path / "out")[0] == "refused"


def test_the_crates_of_the_intake_tests(tmp_path: Path) -> None:
    from tests import cratekit

    metadata = cratekit.request_metadata(
        orcid="0000-0002-1825-0097",
        project_identifier="PRJ-2026-0100",
        workflow_id="https://workflowhub.example.org/workflows/289",
    )
    zip_path = cratekit.make_crate_zip(tmp_path / "crate.zip", metadata, cratekit.input_files())
    verdict, (facts, _, doc) = assert_same_verdict(zip_path, tmp_path / "out")  # type: ignore[misc]
    assert verdict == "accepted" and doc == metadata


# -- equivalence: the bad-crate corpus -------------------------------------------------------------------
try:
    from tests.security import corpus
except ImportError:  # pragma: no cover - the corpus is optional
    corpus = None  # type: ignore[assignment]

CORPUS = corpus.cases() if corpus is not None else ()


@pytest.mark.skipif(corpus is None, reason="tests/security/corpus.py is not there")
@pytest.mark.parametrize("case", CORPUS, ids=lambda case: case.id)
def test_the_bad_crate_corpus(tmp_path: Path, case) -> None:
    zip_path = tmp_path / "crate.zip"
    zip_path.write_bytes(case.data())
    assert_same_verdict(zip_path, tmp_path / "out")


# -- specific cases --------------------------------------------------------------------------------------
@pytest.fixture
def bag_dir(tmp_path: Path) -> Path:
    return make_bag(tmp_path / "source")


def zipped(bag_dir: Path) -> Path:
    return zip_folder(bag_dir, bag_dir.parent / "crate.zip")


def test_a_valid_bag(bag_dir: Path) -> None:
    bag = verify_zip_bag(zipped(bag_dir))
    assert isinstance(bag, ZipBag)
    assert bag.external_identifier == IDENTIFIER
    assert (bag.payload_files, bag.payload_bytes) == (2, len(METADATA) + len(COHORT))
    assert bag.metadata == METADATA
    assert bag.algorithms == ("sha512",) and bag.has_tagmanifest and bag.bagit_version == (1, 0)
    assert load_metadata(bag.metadata) == {"@graph": []}


def test_a_payload_file_whose_bytes_differ_from_the_manifest(bag_dir: Path) -> None:
    (bag_dir / "data" / "inputs" / "cohort.csv").write_bytes(b"region\nsouth\n")  # same size
    refused = refusal(zipped(bag_dir))
    assert (refused.code, refused.where) == ("bag.checksum_mismatch", "data/inputs/cohort.csv")


def test_a_missing_payload_file(bag_dir: Path) -> None:
    _sealed(_unlink("data/inputs/cohort.csv"))(bag_dir)
    refused = refusal(zipped(bag_dir))
    assert (refused.code, refused.where) == ("bag.file_missing", "data/inputs/cohort.csv")


def test_an_extra_payload_file(bag_dir: Path) -> None:
    _sealed(_write("data/extra.txt", b"smuggled"))(bag_dir)
    refused = refusal(zipped(bag_dir))
    assert (refused.code, refused.where) == ("bag.unexpected_file", "data/extra.txt")


@pytest.mark.parametrize("oxum", ["28.3", "29.2", "1028.2"])
def test_a_wrong_payload_oxum(bag_dir: Path, oxum: str) -> None:
    info = bag_dir / "bag-info.txt"
    info.write_text(re.sub(r"Payload-Oxum: .*", f"Payload-Oxum: {oxum}", info.read_text()), encoding="utf-8")
    retag(bag_dir)
    assert refusal(zipped(bag_dir)).code == "bag.oxum_mismatch"


@pytest.mark.parametrize("oxum", ["28", "abc.2", "28."])
def test_a_malformed_payload_oxum(bag_dir: Path, oxum: str) -> None:
    info = bag_dir / "bag-info.txt"
    info.write_text(re.sub(r"Payload-Oxum: .*", f"Payload-Oxum: {oxum}", info.read_text()), encoding="utf-8")
    retag(bag_dir)
    assert refusal(zipped(bag_dir)).code == "bag.invalid"


def test_a_tag_manifest_mismatch(bag_dir: Path) -> None:
    manifest = bag_dir / "manifest-sha512.txt"
    manifest.write_text(manifest.read_text() + "# a comment, which bagit skips\n")  # not resealed
    refused = refusal(zipped(bag_dir))
    assert (refused.code, refused.where) == ("bag.tag_checksum_mismatch", "manifest-sha512.txt")


@pytest.mark.parametrize("path", ["../bagit.txt", "/etc/passwd", "data/../../escape.txt", "~/secrets"])
def test_a_manifest_with_an_unsafe_path(bag_dir: Path, path: str) -> None:
    _sealed(_append("manifest-sha512.txt", f"{'0' * 128}  {path}\n"))(bag_dir)
    assert refusal(zipped(bag_dir)).code == "bag.unreadable"


def test_a_manifest_path_with_a_nul(bag_dir: Path) -> None:
    _sealed(_append("manifest-sha512.txt", f"{'0' * 128}  data/gh\x00ost.txt\n"))(bag_dir)
    refused = refusal(zipped(bag_dir))
    assert (refused.code, refused.where) == ("bag.unreadable", "manifest-sha512.txt")


def test_a_bomb_whose_declared_size_lies(bag_dir: Path) -> None:
    (bag_dir / "data" / "zeros.bin").write_bytes(bytes(64 * MiB))
    regenerate_manifests(bag_dir)
    zip_path = zipped(bag_dir)
    safezip_tests._patch_sizes(zip_path, b"request-12389/data/zeros.bin", 1000)
    assert zipfile.ZipFile(zip_path).getinfo("request-12389/data/zeros.bin").file_size == 1000
    refused = refusal(zip_path)
    assert (refused.code, refused.where) == ("zip.corrupt", "request-12389/data/zeros.bin")


def test_a_bomb_is_stopped_while_streaming(bag_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (bag_dir / "data" / "zeros.bin").write_bytes(bytes(256 * MiB))
    regenerate_manifests(bag_dir)
    zip_path = zipped(bag_dir)
    produced: list[int] = []
    original = zipfile.ZipExtFile.read

    def counting_read(self: zipfile.ZipExtFile, n: int = -1) -> bytes:
        chunk = original(self, n)
        produced.append(len(chunk))
        return chunk

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting_read)
    refused = refusal(zip_path)
    assert (refused.code, refused.where) == ("zip.ratio", "request-12389/data/zeros.bin")
    assert sum(produced) < 256 * MiB // 2, "the bomb was inflated in full"


def test_the_payload_streams_in_chunks_and_is_not_written(
    bag_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (bag_dir / "data" / "random.bin").write_bytes(os.urandom(3 * MiB))
    regenerate_manifests(bag_dir)
    zip_path = zipped(bag_dir)
    reads: list[int] = []
    written: list[str] = []
    original_read = zipfile.ZipExtFile.read
    original_open = Path.open

    def counting_read(self: zipfile.ZipExtFile, n: int = -1) -> bytes:
        reads.append(n)
        return original_read(self, n)

    def recording_open(self: Path, mode: str = "r", *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if "w" in mode or "x" in mode or "a" in mode:
            written.append(self.name)
        return original_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting_read)
    monkeypatch.setattr(Path, "open", recording_open)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    bag = verify_zip_bag(zip_path)
    assert bag.payload_files == 3
    assert reads and all(0 < n <= MiB for n in reads)
    assert sorted(written) == ["bag-info.txt", "bagit.txt", "manifest-sha512.txt", "tagmanifest-sha512.txt"]
    assert not any(scratch.iterdir()), "the tag files were left behind"

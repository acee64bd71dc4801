"""Unpacking crate ZIPs: every refusal, built from a hostile archive made in the test."""

from __future__ import annotations

import os
import stat
import struct
import unicodedata
import warnings
import zipfile
from pathlib import Path

import pytest

from crates.fivesafes import CrateRefused, Limits, extract_bag

MiB = 1024 * 1024


def make_zip(
    path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]], compression: int = zipfile.ZIP_DEFLATED
) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names some tests need
        with zipfile.ZipFile(path, "w", compression=compression) as archive:
            for name, data in entries:
                archive.writestr(name, data)
    return path


def with_mode(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


BAG = [
    ("bag/bagit.txt", b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"),
    ("bag/data/ro-crate-metadata.json", b"{}"),
    ("bag/data/input.txt", b"hello"),
]


def refusal(
    tmp_path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]], limits: Limits | None = None
) -> CrateRefused:
    archive = make_zip(tmp_path / "crate.zip", entries)
    with pytest.raises(CrateRefused) as caught:
        extract_bag(archive, tmp_path / "out", limits)
    assert not any((tmp_path / "out").iterdir()), "nothing may be left behind after a refusal"
    return caught.value


def test_a_well_formed_crate_is_extracted(tmp_path: Path) -> None:
    bag = extract_bag(make_zip(tmp_path / "crate.zip", [("bag/", b""), *BAG]), tmp_path / "out")
    assert bag == tmp_path / "out" / "bag"
    assert (bag / "data" / "input.txt").read_bytes() == b"hello"
    assert sorted(p.relative_to(bag).as_posix() for p in bag.rglob("*")) == [
        "bagit.txt",
        "data",
        "data/input.txt",
        "data/ro-crate-metadata.json",
    ]


def test_the_destination_must_be_empty(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "left-over").write_text("x")
    with pytest.raises(ValueError, match="empty"):
        extract_bag(make_zip(tmp_path / "crate.zip", BAG), tmp_path / "out")


@pytest.mark.parametrize(
    ("code", "entries"),
    [
        pytest.param("zip.path_traversal", [*BAG, ("bag/../escape.txt", b"x")], id="dot-dot"),
        pytest.param("zip.path_traversal", [*BAG, ("bag/data/../../escape.txt", b"x")], id="deep-dot-dot"),
        pytest.param("zip.absolute_path", [*BAG, ("/etc/cron.d/evil", b"x")], id="posix-absolute"),
        pytest.param("zip.absolute_path", [*BAG, ("C:/Windows/evil.dll", b"x")], id="drive-letter"),
        pytest.param("zip.absolute_path", [*BAG, ("\\\\server\\share\\evil", b"x")], id="unc-path"),
        pytest.param("zip.unsafe_name", [*BAG, ("bag/data/a\\b.txt", b"x")], id="backslash"),
        pytest.param("zip.unsafe_name", [*BAG, ("bag/data/a:b.txt", b"x")], id="colon"),
        pytest.param("zip.unsafe_name", [*BAG, ("bag/data/bell\x07.txt", b"x")], id="control-character"),
        pytest.param("zip.unsafe_name", [*BAG, ("bag//data/x.txt", b"x")], id="empty-part"),
        pytest.param("zip.unsafe_name", [*BAG, ("bag/./data/x.txt", b"x")], id="dot-part"),
        pytest.param("zip.unsafe_name", [*BAG, ("bag/data/" + "n" * 256, b"x")], id="name-too-long"),
        pytest.param(
            "zip.symlink",
            [*BAG, (with_mode("bag/data/link", stat.S_IFLNK | 0o777), b"/etc/passwd")],
            id="symlink",
        ),
        pytest.param(
            "zip.special_file", [*BAG, (with_mode("bag/data/pipe", stat.S_IFIFO | 0o644), b"")], id="fifo"
        ),
        pytest.param(
            "zip.special_file", [*BAG, (with_mode("bag/data/dev", stat.S_IFCHR | 0o644), b"")], id="device"
        ),
        pytest.param(
            "zip.special_file",
            [*BAG, (with_mode("bag/data/dir-without-slash", stat.S_IFDIR | 0o755), b"")],
            id="dir-mode-file",
        ),
        pytest.param("zip.duplicate_name", [*BAG, ("bag/data/input.txt", b"again")], id="duplicate"),
        pytest.param("zip.case_collision", [*BAG, ("bag/data/INPUT.txt", b"x")], id="letter-case"),
        pytest.param(
            "zip.case_collision",
            [
                *BAG,
                ("bag/data/" + unicodedata.normalize("NFC", "café.txt"), b"x"),
                ("bag/data/" + unicodedata.normalize("NFD", "café.txt"), b"y"),
            ],
            id="unicode-form",
        ),
        pytest.param("zip.case_collision", [*BAG, ("bag/DATA/other.txt", b"x")], id="folder-case"),
        pytest.param("zip.path_conflict", [*BAG, ("bag/data/input.txt/inner", b"x")], id="file-and-folder"),
        pytest.param("zip.multiple_top_level", [*BAG, ("other/readme.txt", b"x")], id="two-folders"),
        pytest.param("zip.multiple_top_level", [*BAG, ("readme.txt", b"x")], id="folder-and-file"),
        pytest.param("zip.top_level_file", [("ro-crate-metadata.json", b"{}")], id="loose-file"),
        pytest.param("zip.empty", [], id="empty"),
    ],
)
def test_unsafe_archives_are_refused(tmp_path: Path, code: str, entries: list) -> None:
    assert refusal(tmp_path, entries).code == code


def test_refusals_name_the_entry(tmp_path: Path) -> None:
    refused = refusal(tmp_path, [*BAG, ("bag/../escape.txt", b"x")])
    assert refused.where == "bag/../escape.txt"
    assert "'..'" in refused.message


def test_too_many_files(tmp_path: Path) -> None:
    assert refusal(tmp_path, BAG, Limits(max_files=2)).code == "zip.too_many_files"


def test_paths_too_deep(tmp_path: Path) -> None:
    assert (
        refusal(tmp_path, [*BAG, ("bag/data/a/b/c/d.txt", b"x")], Limits(max_depth=4)).code
        == "zip.path_too_deep"
    )


def test_archive_too_large(tmp_path: Path) -> None:
    assert refusal(tmp_path, BAG, Limits(max_compressed_bytes=100)).code == "zip.too_large"


def test_declared_size_too_large_is_refused_before_writing(tmp_path: Path) -> None:
    entries = [*BAG, ("bag/data/big.bin", os.urandom(2 * MiB))]
    assert refusal(tmp_path, entries, Limits(max_uncompressed_bytes=MiB)).code == "zip.uncompressed_too_large"


def test_metadata_over_its_limit(tmp_path: Path) -> None:
    entries = [*BAG[:1], ("bag/data/ro-crate-metadata.json", b"{" + b" " * 100 + b"}")]
    assert refusal(tmp_path, entries, Limits(max_metadata_bytes=50)).code == "zip.metadata_too_large"


def test_a_zip_bomb_is_stopped_while_streaming(tmp_path: Path) -> None:
    entries = [*BAG, ("bag/data/zeros.bin", bytes(8 * MiB))]
    assert refusal(tmp_path, entries).code == "zip.ratio"
    assert not (tmp_path / "out" / "bag").exists()


def test_small_files_may_compress_well(tmp_path: Path) -> None:
    bag = extract_bag(
        make_zip(tmp_path / "crate.zip", [*BAG, ("bag/data/zeros.bin", bytes(MiB // 2))]), tmp_path / "out"
    )
    assert (bag / "data" / "zeros.bin").stat().st_size == MiB // 2


# (signature, offset of the uncompressed size, offset of the name length, offset of the name)
_LOCAL_HEADER = (b"PK\x03\x04", 22, 26, 30)
_CENTRAL_HEADER = (b"PK\x01\x02", 24, 28, 46)


def _patch_sizes(archive: Path, name: bytes, uncompressed: int) -> None:
    """Rewrite the uncompressed size of ``name`` in its local and central headers (a lying ZIP)."""
    data = bytearray(archive.read_bytes())
    for signature, size_at, name_length_at, name_at in (_LOCAL_HEADER, _CENTRAL_HEADER):
        start = 0
        while (start := data.find(signature, start)) != -1:
            length = struct.unpack_from("<H", data, start + name_length_at)[0]
            if data[start + name_at : start + name_at + length] == name:
                struct.pack_into("<I", data, start + size_at, uncompressed)
            start += 4
    archive.write_bytes(bytes(data))


def test_a_header_understating_the_size_is_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "crate.zip", [*BAG, ("bag/data/payload.bin", os.urandom(64 * 1024))])
    _patch_sizes(archive, b"bag/data/payload.bin", 10)
    with pytest.raises(CrateRefused) as caught:
        extract_bag(archive, tmp_path / "out")
    assert caught.value.code == "zip.corrupt"
    assert not any((tmp_path / "out").iterdir())


def test_encrypted_entries_are_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "crate.zip", BAG)
    data = bytearray(archive.read_bytes())
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (start := data.find(signature, start)) != -1:
            struct.pack_into(
                "<H", data, start + flag_offset, struct.unpack_from("<H", data, start + flag_offset)[0] | 1
            )
            start += 4
    archive.write_bytes(bytes(data))
    with pytest.raises(CrateRefused) as caught:
        extract_bag(archive, tmp_path / "out")
    assert caught.value.code == "zip.encrypted"


def test_damaged_data_is_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "crate.zip", [*BAG, ("bag/data/text.txt", b"a" * 1000)], zipfile.ZIP_STORED)
    data = archive.read_bytes()
    archive.write_bytes(data.replace(b"a" * 1000, b"b" * 1000))
    with pytest.raises(CrateRefused) as caught:
        extract_bag(archive, tmp_path / "out")
    assert caught.value.code == "zip.corrupt"


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04 truncated"])
def test_not_a_zip(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "crate.zip").write_bytes(content)
    with pytest.raises(CrateRefused) as caught:
        extract_bag(tmp_path / "crate.zip", tmp_path / "out")
    assert caught.value.code == "zip.not_a_zip"


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(CrateRefused) as caught:
        extract_bag(tmp_path / "absent.zip", tmp_path / "out")
    assert caught.value.code == "zip.unreadable"


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_files"):
        Limits(max_files=0)
    with pytest.raises(ValueError, match="max_ratio"):
        Limits(max_ratio=0.5)


def test_refusals_are_json_ready() -> None:
    refused = CrateRefused("zip.symlink", "Symbolic links are not accepted in a crate.", "bag/data/link")
    assert refused.to_dict() == {"code": "zip.symlink", "message": refused.message, "where": "bag/data/link"}
    assert "zip.symlink" in str(refused)


def test_extraction_streams_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    original = zipfile.ZipExtFile.read

    def counting_read(self: zipfile.ZipExtFile, n: int = -1) -> bytes:
        reads.append(n)
        return original(self, n)

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting_read)
    extract_bag(
        make_zip(tmp_path / "crate.zip", [*BAG, ("bag/data/random.bin", os.urandom(3 * MiB))]),
        tmp_path / "out",
    )
    assert reads and all(0 < n <= MiB for n in reads)

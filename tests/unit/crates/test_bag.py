"""BagIt: verifying received bags (every refusal) and writing our own."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest

from crates.fivesafes import CrateRefused, create_bag, regenerate_manifests, verify_bag

IDENTIFIER = "urn:uuid:9796155a-fe44-4614-89b8-71945f718ffb"


@pytest.fixture
def bag(tmp_path: Path) -> Path:
    bag_dir = tmp_path / "request-12389"
    (bag_dir / "data" / "inputs").mkdir(parents=True)
    (bag_dir / "data" / "ro-crate-metadata.json").write_text('{"@graph": []}\n', encoding="utf-8")
    (bag_dir / "data" / "inputs" / "cohort.csv").write_text("region\nnorth\n", encoding="utf-8")
    create_bag(bag_dir, IDENTIFIER)
    return bag_dir


def refused(bag_dir: Path) -> CrateRefused:
    with pytest.raises(CrateRefused) as caught:
        verify_bag(bag_dir)
    return caught.value


def retag(bag_dir: Path) -> None:
    """Refresh only the tag manifest, as someone tampering with a bag carefully would."""
    lines = []
    for name in sorted(os.listdir(bag_dir)):
        if (bag_dir / name).is_file() and not name.startswith("tagmanifest-"):
            lines.append(f"{hashlib.sha512((bag_dir / name).read_bytes()).hexdigest()}  {name}\n")
    (bag_dir / "tagmanifest-sha512.txt").write_text("".join(lines), encoding="utf-8")


def drop_oxum(bag_dir: Path) -> None:
    info = bag_dir / "bag-info.txt"
    info.write_text(re.sub(r"Payload-Oxum: .*\n", "", info.read_text(encoding="utf-8")), encoding="utf-8")


def test_a_bag_we_make_verifies(bag: Path) -> None:
    info = verify_bag(bag)
    assert info.external_identifier == IDENTIFIER
    assert str(info.uuid) == IDENTIFIER.removeprefix("urn:uuid:")
    assert info.bagit_version == (1, 0)
    assert info.algorithms == ("sha512",)
    assert (info.payload_files, info.payload_bytes) == (2, len('{"@graph": []}\n') + len("region\nnorth\n"))
    assert info.has_tagmanifest
    assert (bag / "bagit.txt").read_text() == "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
    assert "Payload-Oxum: 28.2" in (bag / "bag-info.txt").read_text()


def test_a_fresh_identifier_is_a_uuid_urn(tmp_path: Path) -> None:
    (tmp_path / "b" / "data").mkdir(parents=True)
    (tmp_path / "b" / "data" / "ro-crate-metadata.json").write_text("{}")
    identifier = create_bag(tmp_path / "b")
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", identifier)
    assert verify_bag(tmp_path / "b").external_identifier == identifier


def test_create_bag_rejects_other_identifiers(tmp_path: Path) -> None:
    (tmp_path / "b" / "data").mkdir(parents=True)
    with pytest.raises(ValueError, match="urn:uuid"):
        create_bag(tmp_path / "b", "request-12389")


def test_a_changed_payload_file(bag: Path) -> None:
    (bag / "data" / "inputs" / "cohort.csv").write_text("region\nsouth\n", encoding="utf-8")
    refusal = refused(bag)
    assert (refusal.code, refusal.where) == ("bag.checksum_mismatch", "data/inputs/cohort.csv")


def test_a_changed_tag_file(bag: Path) -> None:
    with (bag / "bag-info.txt").open("a", encoding="utf-8") as info:
        info.write("Contact-Name: Mallory\n")
    assert refused(bag).code == "bag.tag_checksum_mismatch"


def test_a_payload_file_of_a_different_size(bag: Path) -> None:
    (bag / "data" / "extra.txt").write_text("smuggled", encoding="utf-8")
    assert refused(bag).code == "bag.oxum_mismatch"


def test_a_missing_payload_file(bag: Path) -> None:
    (bag / "data" / "inputs" / "cohort.csv").unlink()
    drop_oxum(bag)
    retag(bag)
    refusal = refused(bag)
    assert (refusal.code, refusal.where) == ("bag.file_missing", "data/inputs/cohort.csv")


def test_an_unlisted_payload_file(bag: Path) -> None:
    (bag / "data" / "extra.txt").write_text("smuggled", encoding="utf-8")
    drop_oxum(bag)
    retag(bag)
    refusal = refused(bag)
    assert (refusal.code, refusal.where) == ("bag.unexpected_file", "data/extra.txt")


def test_the_sha512_manifest_is_required(bag: Path) -> None:
    (bag / "manifest-sha512.txt").rename(bag / "manifest-sha256.txt")
    assert refused(bag).code == "bag.manifest_missing"


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("", "bag.external_identifier_missing"),
        ("External-Identifier: request-12389\n", "bag.external_identifier_invalid"),
        ("External-Identifier: urn:uuid:not-a-uuid\n", "bag.external_identifier_invalid"),
        (
            f"External-Identifier: {IDENTIFIER}\nExternal-Identifier: {IDENTIFIER}\n",
            "bag.external_identifier_multiple",
        ),
    ],
)
def test_the_external_identifier(bag: Path, line: str, code: str) -> None:
    info = bag / "bag-info.txt"
    info.write_text(
        re.sub(r"External-Identifier: .*\n", line, info.read_text(encoding="utf-8")), encoding="utf-8"
    )
    refusal = refused(bag)
    assert (refusal.code, refusal.where) == (code, "bag-info.txt")


def test_bagit_before_1_0(bag: Path) -> None:
    (bag / "bagit.txt").write_text(
        "BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n", encoding="utf-8"
    )
    assert refused(bag).code == "bag.version"


def test_an_unreadable_declaration(bag: Path) -> None:
    (bag / "bagit.txt").write_text("this is not a tag file\n", encoding="utf-8")
    refusal = refused(bag)
    assert (refusal.code, refusal.where) == ("bag.unreadable", "bagit.txt")


def test_not_a_bag(bag: Path) -> None:
    (bag / "bagit.txt").unlink()
    assert refused(bag).code == "bag.not_a_bag"
    assert refused(bag / "data" / "ro-crate-metadata.json").code == "bag.not_a_bag"


def test_files_to_fetch(bag: Path) -> None:
    (bag / "fetch.txt").write_text("https://example.org/big.bin 10 data/big.bin\n", encoding="utf-8")
    assert refused(bag).code == "bag.fetch"


def test_symbolic_links(bag: Path) -> None:
    (bag / "data" / "passwd").symlink_to("/etc/passwd")
    refusal = refused(bag)
    assert (refusal.code, refusal.where) == ("bag.symlink", "data/passwd")


def test_special_files(bag: Path) -> None:
    os.mkfifo(bag / "data" / "pipe")
    assert refused(bag).code == "bag.special_file"


def test_the_metadata_file_is_required(bag: Path) -> None:
    (bag / "data" / "ro-crate-metadata.json").unlink()
    regenerate_manifests(bag)
    assert refused(bag).code == "bag.metadata_missing"


def test_regenerating_after_a_change(bag: Path) -> None:
    (bag / "data" / "ro-crate-metadata.json").write_text('{"@graph": [{"@id": "./"}]}\n', encoding="utf-8")
    (bag / "data" / "outputs").mkdir()
    (bag / "data" / "outputs" / "counts.csv").write_text("n\n12\n", encoding="utf-8")
    regenerate_manifests(bag)
    info = verify_bag(bag)
    assert info.payload_files == 3
    assert f"Payload-Oxum: {info.payload_bytes}.3" in (bag / "bag-info.txt").read_text()
    assert (bag / "bag-info.txt").read_text().count("Payload-Oxum") == 1
    assert f"External-Identifier: {IDENTIFIER}" in (bag / "bag-info.txt").read_text()


def test_regenerating_keeps_other_algorithms_and_drops_unknown_ones(bag: Path) -> None:
    (bag / "manifest-md5.txt").write_text("stale  data/ro-crate-metadata.json\n", encoding="utf-8")
    (bag / "manifest-nosuchhash.txt").write_text("stale  data/ro-crate-metadata.json\n", encoding="utf-8")
    regenerate_manifests(bag)
    assert not (bag / "manifest-nosuchhash.txt").exists()
    assert (bag / "tagmanifest-md5.txt").is_file()
    assert verify_bag(bag).algorithms == ("md5", "sha512")


def test_regenerating_writes_payload_before_tag_manifest(bag: Path) -> None:
    (bag / "data" / "inputs" / "cohort.csv").write_text("region\nwest\n", encoding="utf-8")
    regenerate_manifests(bag)
    tag_lines = dict(
        reversed(line.split("  ", 1)) for line in (bag / "tagmanifest-sha512.txt").read_text().splitlines()
    )
    payload_manifest = (bag / "manifest-sha512.txt").read_bytes()
    assert tag_lines["manifest-sha512.txt"] == hashlib.sha512(payload_manifest).hexdigest()


def test_regenerating_needs_a_bag(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bag-info.txt"):
        regenerate_manifests(tmp_path)


def test_refusals_name_paths_in_the_bag_never_the_servers_own_folders(tmp_path):
    bag = tmp_path / "server-side-scratch" / "bag"
    (bag / "data").mkdir(parents=True)
    (bag / "data" / "ro-crate-metadata.json").write_text("{}")
    create_bag(bag)
    (bag / "manifest-sha512.txt").write_text("a" * 128 + "  ../../etc/passwd\n")
    with pytest.raises(CrateRefused) as refused:
        verify_bag(bag)
    assert refused.value.code == "bag.unreadable"
    assert '"manifest-sha512.txt"' in refused.value.message
    assert "server-side-scratch" not in refused.value.message and str(tmp_path) not in refused.value.message

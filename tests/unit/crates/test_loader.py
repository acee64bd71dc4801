"""Reading metadata strictly, and validating whatever form a crate comes in."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from crates.fivesafes import (
    CrateRefused,
    Limits,
    Severity,
    create_bag,
    load_metadata,
    pack_bag,
    parse_metadata,
    validate_path,
)
from tests.unit.crates.conftest import RESULT_FIXTURE, metadata_path


def refusal_code(data: bytes, **kwargs: Any) -> str:
    with pytest.raises(CrateRefused) as caught:
        parse_metadata(data, **kwargs)
    return caught.value.code


def test_strict_json_is_parsed() -> None:
    assert parse_metadata(b'{"@graph": [{"@id": "./", "name": "caf\\u00e9 \xc3\xa9"}]}') == {
        "@graph": [{"@id": "./", "name": "café é"}]
    }


def test_duplicate_keys_are_refused_with_the_key_and_entity() -> None:
    with pytest.raises(CrateRefused) as caught:
        parse_metadata(b'{"@graph": [{"@id": "#run", "actionStatus": "a", "actionStatus": "b"}]}')
    assert caught.value.code == "metadata.duplicate_key"
    assert "'actionStatus'" in caught.value.message and "'#run'" in caught.value.message
    assert caught.value.where == "ro-crate-metadata.json"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        pytest.param(b'{"name": "caf\xe9"}', "metadata.encoding", id="latin-1"),
        pytest.param(b'\xef\xbb\xbf{"name": "x"}', "metadata.encoding", id="byte-order-mark"),
        pytest.param(b'{"name": "\\ud800"}', "metadata.encoding", id="lone-surrogate"),
        pytest.param(b'{"name": NaN}', "metadata.syntax", id="nan"),
        pytest.param(b'{"n": ' + b"9" * 5000 + b"}", "metadata.syntax", id="huge-integer"),
        pytest.param(b'{"name": "x",}', "metadata.syntax", id="trailing-comma"),
        pytest.param(b"[]", "metadata.not_object", id="array"),
        pytest.param(b'"x"', "metadata.not_object", id="string"),
        pytest.param(b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}", "metadata.too_deep", id="deep"),
        pytest.param(b'{"a": ' + b"[" * 100_000, "metadata.too_deep", id="hostile-depth"),
    ],
)
def test_malformed_json_is_refused(data: bytes, code: str) -> None:
    assert refusal_code(data) == code


def test_syntax_errors_say_where() -> None:
    with pytest.raises(CrateRefused) as caught:
        parse_metadata(b'{\n  "@graph": [\n    {"@id": "./" "name": "x"}\n  ]\n}')
    assert "line 3" in caught.value.message


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    assert parse_metadata(b'{"name": "' + b"[{" * 500 + b'\\" ]"}')["name"].startswith("[{[{")


def test_depth_is_configurable() -> None:
    assert refusal_code(b'{"a": [[[]]]}', max_depth=3) == "metadata.too_deep"
    assert parse_metadata(b'{"a": [[]]}', max_depth=3) == {"a": [[]]}


def test_load_metadata_limits_size(tmp_path: Path) -> None:
    path = tmp_path / "ro-crate-metadata.json"
    path.write_text('{"name": "' + "x" * 100 + '"}', encoding="utf-8")
    with pytest.raises(CrateRefused) as caught:
        load_metadata(path, limits=Limits(max_metadata_bytes=50))
    assert caught.value.code == "metadata.too_large"
    with pytest.raises(CrateRefused):
        load_metadata(path.read_bytes(), limits=Limits(max_metadata_bytes=50))
    assert load_metadata(path)["name"] == "x" * 100


def test_load_metadata_refuses_links_and_absence(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text("{}", encoding="utf-8")
    (tmp_path / "ro-crate-metadata.json").symlink_to(target)
    for path in (tmp_path / "ro-crate-metadata.json", tmp_path / "absent.json"):
        with pytest.raises(CrateRefused) as caught:
            load_metadata(path)
        assert caught.value.code == "metadata.missing"


@pytest.fixture
def result_bag(tmp_path: Path, fixture_crates: dict[str, Path]) -> Path:
    bag_dir = tmp_path / "result"
    (bag_dir / "data").mkdir(parents=True)
    shutil.copy(metadata_path(fixture_crates[RESULT_FIXTURE]), bag_dir / "data" / "ro-crate-metadata.json")
    create_bag(bag_dir, "urn:uuid:07b81e0f-7ac4-5428-9940-878b241e2397")
    return bag_dir


def test_every_form_of_a_valid_crate_is_accepted(tmp_path: Path, result_bag: Path) -> None:
    forms = {
        "zip": pack_bag(result_bag, tmp_path / "result.zip"),
        "zip-without-suffix": pack_bag(result_bag, tmp_path / "result.upload"),
        "bag": result_bag,
        "crate folder": result_bag / "data",
        "metadata file": result_bag / "data" / "ro-crate-metadata.json",
    }
    for form, path in forms.items():
        report = validate_path(path)
        assert report.valid, (form, report.errors)
        assert report.issues == [] or form in ("crate folder", "metadata file") and not report.errors
    assert validate_path(forms["zip"]).external_identifier == "urn:uuid:07b81e0f-7ac4-5428-9940-878b241e2397"
    assert validate_path(forms["metadata file"]).external_identifier is None


def test_packaging_faults_join_the_profile_findings(result_bag: Path) -> None:
    metadata = result_bag / "data" / "ro-crate-metadata.json"
    text = metadata.read_text(encoding="utf-8")
    # Same length, so the Payload-Oxum still matches and the checksum is what gives it away.
    metadata.write_text(
        text.replace('"https://w3id.org/ro/crate/1.2"', '"https://w3id.org/ro/crate/1.1"'), "utf-8"
    )
    report = validate_path(result_bag)
    assert not report.valid
    assert report.failed_checks(Severity.REQUIRED) == {"bag.checksum_mismatch", "five-safes-crate-0.4_12.1"}
    assert report.errors[0].check == "bag.checksum_mismatch"
    assert report.errors[0].entity == "data/ro-crate-metadata.json"
    assert report.external_identifier is None


def test_a_bag_without_tag_manifest_is_valid_with_a_warning(result_bag: Path) -> None:
    (result_bag / "tagmanifest-sha512.txt").unlink()
    report = validate_path(result_bag)
    assert report.valid
    assert [issue.check for issue in report.warnings] == ["bag.tagmanifest_missing"]


def test_a_payload_folder_without_bagit_txt(result_bag: Path) -> None:
    (result_bag / "bagit.txt").unlink()
    report = validate_path(result_bag)
    assert report.failed_checks() == {"bag.not_a_bag"}


def test_a_zip_must_hold_a_bag(tmp_path: Path, result_bag: Path) -> None:
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as archive:
        archive.write(result_bag / "data" / "ro-crate-metadata.json", "crate/ro-crate-metadata.json")
    report = validate_path(tmp_path / "plain.zip")
    assert report.failed_checks() == {"bag.not_a_bag"}
    (result_bag / "bagit.txt").unlink()
    report = validate_path(pack_bag_without_declaration(result_bag, tmp_path / "payload.zip"))
    assert report.failed_checks() == {"bag.not_a_bag"}


def pack_bag_without_declaration(bag_dir: Path, archive_path: Path) -> Path:
    with zipfile.ZipFile(archive_path, "w") as archive:
        for path in sorted(bag_dir.rglob("*")):
            archive.write(path, f"{bag_dir.name}/{path.relative_to(bag_dir).as_posix()}")
    return archive_path


def test_unreadable_inputs_are_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.zip").write_bytes(b"not a zip")
    (tmp_path / "empty").mkdir()
    for path, code in (
        (tmp_path / "nothing-here", "input.not_found"),
        (tmp_path / "empty", "input.no_metadata"),
        (tmp_path / "notes.zip", "zip.not_a_zip"),
    ):
        with pytest.raises(CrateRefused) as caught:
            validate_path(path)
        assert caught.value.code == code


def test_a_bag_whose_metadata_is_a_link_is_refused(result_bag: Path, tmp_path: Path) -> None:
    metadata = result_bag / "data" / "ro-crate-metadata.json"
    shutil.move(metadata, tmp_path / "outside.json")
    metadata.symlink_to(tmp_path / "outside.json")
    with pytest.raises(CrateRefused) as caught:
        validate_path(result_bag)
    assert caught.value.code == "bag.symlink"


def test_an_unsafe_zip_is_refused_not_reported(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("result/../../etc/passwd", "x")
    with pytest.raises(CrateRefused) as caught:
        validate_path(archive)
    assert caught.value.code == "zip.path_traversal"

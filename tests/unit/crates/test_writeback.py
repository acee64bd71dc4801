"""Recording review steps in received crates, and re-sealing the bag."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from crates.fivesafes import (
    Organization,
    Person,
    Software,
    add_check_action,
    add_disclosure_check,
    add_download_action,
    add_publishing_action,
    add_signoff_action,
    add_validation_action,
    build_request_crate,
    extract_bag,
    load_metadata,
    pack_bag,
    record_execution,
    strip_assess_actions,
    validate_metadata,
    validate_path,
    verify_bag,
    write_metadata,
)
from crates.fivesafes.vocab import RFC3339_RE
from tests.unit.crates import cases
from tests.unit.crates.conftest import (
    AGREEMENT,
    CAM,
    CC_BY,
    CHRIS,
    NOON,
    OLIVIA,
    PORTAL,
    TRE_A,
    TRE_AGENT,
    request_spec,
    review_request,
    run_and_release,
)

STATUSES = {"http://schema.org/CompletedActionStatus", "http://schema.org/FailedActionStatus"}


def by_id(doc: dict[str, Any], identifier: str) -> dict[str, Any]:
    return next(e for e in doc["@graph"] if e["@id"] == identifier)


def mentions(doc: dict[str, Any]) -> list[str]:
    return [ref["@id"] for ref in by_id(doc, "./")["mentions"]]


@pytest.fixture
def request_bag(tmp_path: Path) -> Path:
    built = build_request_crate(request_spec(tmp_path / "inputs"), tmp_path / "request.zip")
    return extract_bag(built.path, tmp_path / "received")


@pytest.fixture
def request_doc(request_bag: Path) -> dict[str, Any]:
    return load_metadata(request_bag / "data" / "ro-crate-metadata.json")


# -- intake ---------------------------------------------------------------------------------------------
def test_client_review_steps_are_stripped_with_every_reference(result_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(result_doc)
    cases.entity(doc, cases.RUN)["object"].append({"@id": cases.SIGNOFF})
    removed = strip_assess_actions(doc)
    assert {e["@id"] for e in removed} == {
        cases.CHECK,
        cases.VALIDATE,
        cases.SIGNOFF,
        cases.DISCLOSURE,
        "#bagit-ce785c0b-c988-4043-8cbd-1489dcebc14f",  # an UpdateAction marked as a review step
    }
    assert mentions(doc) == [cases.RUN, cases.DOWNLOAD]
    assert cases.entity(doc, cases.RUN)["object"] == [{"@id": "input1.txt"}, {"@id": "#enableFastMode"}]
    assert validate_metadata(doc).valid


def test_stripping_finds_steps_however_they_are_written(result_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(result_doc)
    cases.entity(doc, cases.CHECK)["@type"] = "schema:AssessAction"
    cases.entity(doc, cases.SIGNOFF)["@type"] = "Action"  # still carries the SignOff additionalType
    by_id(doc, "./")["mentions"] = [
        {"@id": "./" + ref["@id"]} if ref["@id"].startswith("#") else ref
        for ref in by_id(doc, "./")["mentions"]
    ]
    strip_assess_actions(doc)
    assert mentions(doc) == ["./" + cases.RUN, "./" + cases.DOWNLOAD]


def test_stripping_a_crate_without_steps_changes_nothing(request_doc: dict[str, Any]) -> None:
    before = copy.deepcopy(request_doc)
    assert strip_assess_actions(request_doc) == []
    assert request_doc == before


def test_write_back_needs_a_crate() -> None:
    with pytest.raises(ValueError, match="@graph"):
        strip_assess_actions({"@context": "x"})
    with pytest.raises(ValueError, match="root data entity"):
        add_check_action({"@graph": [{"@id": "./"}]}, agent=PORTAL, ok=True)


# -- each phase -----------------------------------------------------------------------------------------
def test_the_check_step(request_doc: dict[str, Any]) -> None:
    action = add_check_action(
        request_doc, agent=PORTAL, ok=False, detail="data/inputs/cohort.csv differs", started=NOON
    )
    assert action["@type"] == "AssessAction"
    assert action["additionalType"] == {"@id": "https://w3id.org/shp#CheckValue"}
    assert action["name"] == "BagIt checksum of Crate: FAILED"
    assert action["description"] == "data/inputs/cohort.csv differs"
    assert action["actionStatus"] == "http://schema.org/FailedActionStatus"
    assert action["object"] == {"@id": "./"}
    assert action["instrument"] == {"@id": "https://www.iana.org/assignments/named-information#sha-512"}
    assert action["startTime"] == "2025-05-01T12:00:00+00:00" and RFC3339_RE.match(action["endTime"])
    assert action["@id"] in mentions(request_doc)
    software = by_id(request_doc, PORTAL.id)
    assert software["@type"] == "SoftwareApplication" and software["provider"] == {"@id": PORTAL.provider.id}
    assert by_id(request_doc, PORTAL.provider.id)["@type"] == "Organization"
    assert (
        by_id(request_doc, "https://www.iana.org/assignments/named-information#sha-512")["@type"]
        == "DefinedTerm"
    )


def test_the_validation_step_names_the_crates_profile(request_doc: dict[str, Any]) -> None:
    action = add_validation_action(request_doc, agent=PORTAL, valid=True)
    assert action["instrument"] == {"@id": "https://w3id.org/5s-crate/0.4"}
    assert action["actionStatus"] == "http://schema.org/CompletedActionStatus"
    assert by_id(request_doc, "https://w3id.org/5s-crate/0.4")["@type"] == "Profile"
    by_id(request_doc, "./")["conformsTo"] = {"@id": "https://w3id.org/5s-crate/0.5-DRAFT"}
    assert add_validation_action(request_doc, agent=PORTAL, valid=False)["instrument"] == {
        "@id": "https://w3id.org/5s-crate/0.5-DRAFT"
    }


def test_the_sign_off_step(request_doc: dict[str, Any]) -> None:
    action = add_signoff_action(
        request_doc, officer=OLIVIA, agreement=AGREEMENT, approved=False, message="Dataset not covered."
    )
    root = by_id(request_doc, "./")
    assert action["additionalType"] == {"@id": "https://w3id.org/shp#SignOff"}
    assert action["name"].endswith(": rejected") and action["description"] == "Dataset not covered."
    assert action["actionStatus"] == "http://schema.org/FailedActionStatus"
    assert action["object"] == [{"@id": "./"}, root["mainEntity"], root["sourceOrganization"]]
    assert action["instrument"] == {"@id": AGREEMENT.id}
    assert action["agent"] == {"@id": OLIVIA.id}
    assert by_id(request_doc, AGREEMENT.id) == {
        "@id": AGREEMENT.id,
        "@type": "CreativeWork",
        "name": AGREEMENT.name,
    }
    assert by_id(request_doc, OLIVIA.id)["affiliation"] == {"@id": TRE_A.id}


def test_the_disclosure_step_has_every_checker(request_doc: dict[str, Any]) -> None:
    action = add_disclosure_check(
        request_doc, approved=True, checkers=[CAM, CHRIS], checked=["outputs/counts.csv"]
    )
    assert action["agent"] == [{"@id": CAM.id}, {"@id": CHRIS.id}]
    assert action["object"] == [{"@id": "./"}, {"@id": "outputs/counts.csv"}]
    assert len(action["name"]) >= 10
    with pytest.raises(ValueError, match="checker"):
        add_disclosure_check(request_doc, approved=True, checkers=[])


def test_retrieval_and_execution(request_bag: Path, request_doc: dict[str, Any]) -> None:
    download = add_download_action(request_doc, agent=TRE_AGENT, ok=True, unpacked_to="workflow")
    unpacked = by_id(request_doc, "workflow/")
    workflow = by_id(request_doc, "./")["mainEntity"]["@id"]
    assert (
        download["object"]
        == unpacked["distribution"]
        == {"@id": by_id(request_doc, workflow)["distribution"]["@id"]}
    )
    assert unpacked["sameAs"] == {"@id": workflow}
    run = record_execution(
        request_doc,
        status="http://schema.org/CompletedActionStatus",
        started=NOON,
        ended=NOON + timedelta(hours=1),
        results=[
            {"@id": "outputs/counts.csv", "@type": "File"},
            {"@id": "urn:uuid:07b81e0f-7ac4-5428-9940-878b241e2397", "@type": "DigitalDocument"},
        ],
    )
    assert run["endTime"] == "2025-05-01T13:00:00+00:00"
    assert run["result"] == [
        {"@id": "outputs/counts.csv"},
        {"@id": "urn:uuid:07b81e0f-7ac4-5428-9940-878b241e2397"},
    ]
    parts = [ref["@id"] for ref in by_id(request_doc, "./")["hasPart"]]
    assert "outputs/counts.csv" in parts and "urn:uuid:07b81e0f-7ac4-5428-9940-878b241e2397" not in parts
    with pytest.raises(ValueError, match="status"):
        record_execution(request_doc, status="done")


def test_publishing_does_the_housekeeping(request_doc: dict[str, Any]) -> None:
    review_request(request_doc)
    record_execution(
        request_doc,
        status="http://schema.org/CompletedActionStatus",
        results=[{"@id": "outputs/a.csv", "@type": "File"}],
    )
    by_id(request_doc, "./")["hasPart"] = [
        ref for ref in by_id(request_doc, "./")["hasPart"] if ref["@id"] != "outputs/a.csv"
    ]
    stray = add_check_action(request_doc, agent=PORTAL, ok=True)
    by_id(request_doc, "./")["mentions"].remove({"@id": stray["@id"]})
    action = add_publishing_action(request_doc, agent=PORTAL, publisher=TRE_A, license=CC_BY, published=NOON)
    root = by_id(request_doc, "./")
    assert (root["datePublished"], root["publisher"], root["license"]) == (
        "2025-05-01T12:00:00+00:00",
        {"@id": TRE_A.id},
        {"@id": CC_BY.id},
    )
    assert stray["@id"] in mentions(request_doc)
    assert {"@id": "outputs/a.csv"} in root["hasPart"]
    assert action["@type"] == "UpdateAction" and "endTime" not in action
    assert action["additionalType"] == {"@id": "https://w3id.org/shp#GenerateCheckValue"}
    assert action["actionStatus"] == "http://schema.org/CompletedActionStatus"
    report = validate_metadata(request_doc)
    assert report.valid
    # This crate skipped workflow retrieval and disclosure, and nothing else is missing.
    assert {issue.check for issue in report.warnings} == {
        "five-safes-crate-0.4_45.0",
        "five-safes-crate-0.4_60.0",
    }


def test_withholding_outputs(request_bag: Path, request_doc: dict[str, Any]) -> None:
    review_request(request_doc)
    run_and_release(request_bag, request_doc, approved=False)
    write_metadata(request_bag, request_doc)
    assert not (request_bag / "data" / "outputs" / "counts.csv").exists()
    run = next(e for e in request_doc["@graph"] if e["@type"] == "CreateAction")
    assert "result" not in run
    assert all(ref["@id"] != "outputs/counts.csv" for ref in by_id(request_doc, "./")["hasPart"])
    disclosure = next(
        e
        for e in request_doc["@graph"]
        if e.get("additionalType") == {"@id": "https://w3id.org/shp#DisclosureCheck"}
    )
    assert disclosure["actionStatus"] == "http://schema.org/FailedActionStatus"
    assert validate_path(request_bag).valid


def test_existing_entities_are_extended_not_overwritten(request_doc: dict[str, Any]) -> None:
    manchester = "https://ror.org/027m9bs27"
    officer = Person(OLIVIA.id, "Olivia Officer", Organization(manchester, "Univ. of Manchester"))
    add_signoff_action(request_doc, officer=officer, agreement=AGREEMENT, approved=True)
    add_signoff_action(request_doc, officer=officer, agreement=AGREEMENT, approved=True)
    assert [e for e in request_doc["@graph"] if e["@id"] == manchester] == [
        {"@id": manchester, "@type": "Organization", "name": "The University of Manchester"}
    ]
    assert len([e for e in request_doc["@graph"] if e["@id"] == OLIVIA.id]) == 1


def test_each_step_gets_a_fresh_id(request_doc: dict[str, Any]) -> None:
    ids = {add_check_action(request_doc, agent=PORTAL, ok=True)["@id"] for _ in range(3)}
    assert len(ids) == 3 and all(i.startswith("#check-") for i in ids)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Person("_:someone", "Someone"),
        lambda: Person("https://orcid.org/0000-0002-1825-0097", " "),
        lambda: Software("", "Validator", Organization("https://portal.example.org/", "Federation")),
    ],
)
def test_agents_need_an_iri_and_a_name(make: Any) -> None:
    with pytest.raises(ValueError):
        make()


def test_times_need_a_time_zone(request_doc: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="timezone"):
        add_check_action(request_doc, agent=PORTAL, ok=True, started=datetime(2025, 5, 1, 12, 0))
    action = add_check_action(
        request_doc,
        agent=PORTAL,
        ok=True,
        started=datetime(2025, 5, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))),
    )
    assert action["startTime"] == "2025-05-01T13:00:00+01:00"


def test_statuses_are_plain_strings(request_bag: Path, request_doc: dict[str, Any]) -> None:
    review_request(request_doc)
    run_and_release(request_bag, request_doc)
    for entity in request_doc["@graph"]:
        if "actionStatus" in entity:
            assert isinstance(entity["actionStatus"], str)
        for key in ("startTime", "endTime"):
            if key in entity:
                assert RFC3339_RE.match(entity[key])
    assert {e["actionStatus"] for e in request_doc["@graph"] if "actionStatus" in e} <= STATUSES


# -- files ----------------------------------------------------------------------------------------------
def test_write_metadata_reseals_the_bag(request_bag: Path, request_doc: dict[str, Any]) -> None:
    review_request(request_doc)
    target = write_metadata(request_bag, request_doc)
    assert json.loads(target.read_text(encoding="utf-8")) == request_doc
    info = verify_bag(request_bag)
    assert info.has_tagmanifest and info.external_identifier.startswith("urn:uuid:")
    assert not list(request_bag.rglob("*.tmp"))


def test_pack_bag_round_trips(tmp_path: Path, request_bag: Path, request_doc: dict[str, Any]) -> None:
    run_and_release(request_bag, request_doc)
    write_metadata(request_bag, request_doc)
    (request_bag / "data" / "outputs" / "empty").mkdir()
    write_metadata(request_bag, request_doc)
    archive = pack_bag(request_bag, tmp_path / "out" / "result.zip")
    unpacked = extract_bag(archive, tmp_path / "again")
    assert unpacked.name == request_bag.name
    assert (unpacked / "data" / "outputs" / "empty").is_dir()
    assert verify_bag(unpacked).external_identifier == verify_bag(request_bag).external_identifier
    assert load_metadata(unpacked / "data" / "ro-crate-metadata.json") == request_doc


def test_pack_bag_refuses_what_a_crate_zip_may_not_hold(tmp_path: Path, request_bag: Path) -> None:
    (request_bag / "data" / "link").symlink_to("/etc/passwd")
    with pytest.raises(ValueError, match="regular file"):
        pack_bag(request_bag, tmp_path / "x.zip")
    (request_bag / "data" / "link").unlink()
    (request_bag / "data" / "what?.txt").write_text("x")
    with pytest.raises(ValueError, match="may not contain"):
        pack_bag(request_bag, tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()

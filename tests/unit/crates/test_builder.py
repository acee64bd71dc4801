"""Building request crates from a researcher's request."""

from __future__ import annotations

import dataclasses
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from crates.fivesafes import (
    InputFile,
    InputParameter,
    Severity,
    TargetTre,
    build_request_crate,
    extract_bag,
    load_metadata,
    requested_datasets,
    target_tres,
    validate_path,
    verify_bag,
)
from tests.unit.crates.conftest import P, request_spec

WORKFLOW = "https://workflowhub.eu/workflows/289?version=1"


@pytest.fixture
def built(tmp_path: Path) -> tuple[Any, dict[str, Any], Path]:
    result = build_request_crate(request_spec(tmp_path / "inputs"), tmp_path / "out" / "request.zip")
    bag = extract_bag(result.path, tmp_path / "unpacked")
    return result, load_metadata(bag / "data" / "ro-crate-metadata.json"), bag


def entities(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["@id"]: e for e in doc["@graph"]}


def test_a_built_request_is_a_valid_five_safes_crate(built: tuple[Any, dict[str, Any], Path]) -> None:
    result, _, bag = built
    report = validate_path(result.path)
    assert report.valid
    assert report.external_identifier == result.external_identifier
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", result.external_identifier)
    # A fresh request has no review steps yet; nothing else is missing.
    assert {issue.check.removeprefix(P) for issue in report.warnings} == {
        "37.0",
        "38.0",
        "45.0",
        "50.0",
        "60.0",
    }
    assert result.report.valid
    with zipfile.ZipFile(result.path) as archive:
        assert {name.split("/")[0] for name in archive.namelist()} == {bag.name}
    assert verify_bag(bag).bagit_version == (1, 0)


def test_the_workflow_keeps_its_exact_id(built: tuple[Any, dict[str, Any], Path]) -> None:
    _, doc, _ = built
    graph = entities(doc)
    root = graph["./"]
    assert root["mainEntity"] == {"@id": WORKFLOW}
    workflow = graph[WORKFLOW]
    assert workflow["@type"] == "Dataset"
    assert workflow["conformsTo"] == {"@id": "https://w3id.org/workflowhub/workflow-ro-crate/1.0"}
    assert workflow["version"] == "1"
    assert WORKFLOW + "/" not in graph
    assert doc["@context"] == "https://w3id.org/ro/crate/1.2/context"


def test_the_request_names_people_project_and_inputs(built: tuple[Any, dict[str, Any], Path]) -> None:
    result, doc, bag = built
    graph = entities(doc)
    run = graph[result.run_id]
    assert run["@type"] == "CreateAction"
    assert run["actionStatus"] == "http://schema.org/PotentialActionStatus"
    assert run["instrument"] == {"@id": WORKFLOW}
    person = graph[run["agent"]["@id"]]
    assert person["@id"] == "https://orcid.org/0000-0001-9842-9718"
    assert (
        person["memberOf"]
        == graph["./"]["sourceOrganization"]
        == {"@id": "https://portal.example.org/projects/81"}
    )
    assert graph["https://portal.example.org/projects/81"]["member"] == person["affiliation"]
    inputs = {graph[ref["@id"]]["name"]: graph[ref["@id"]] for ref in run["object"]}
    assert inputs["min-count"]["value"] == 10 and inputs["by-year"]["value"] is True
    assert inputs["regions"]["@id"] == "inputs/cohort.csv"
    assert (bag / "data" / "inputs" / "cohort.csv").read_text() == "region\nnorth\nsouth\n"
    for value in inputs.values():
        parameter = graph[value["exampleOfWork"]["@id"]]
        assert parameter["@type"] == "FormalParameter" and parameter["name"] == value["name"]
    # With the RO-Crate 1.2 context, FormalParameter is the IRI the profile expects.
    assert P + "61.0" not in validate_path(result.path).failed_checks(Severity.RECOMMENDED)


def test_datasets_and_tres_read_back(built: tuple[Any, dict[str, Any], Path]) -> None:
    _, doc, _ = built
    assert requested_datasets(doc) == ["https://tre-a.example.org/datasets/cancer-registry", "hes-apc-2024"]
    assert target_tres(doc) == [TargetTre("TRE A", "https://tre-a.example.org/")]


def test_a_local_project_identifier(tmp_path: Path) -> None:
    spec = dataclasses.replace(
        request_spec(tmp_path / "inputs"), project_identifier="TRE72-81", person_orcid=None
    )
    result = build_request_crate(
        spec, tmp_path / "request.zip", external_identifier="urn:uuid:9796155a-fe44-4614-89b8-71945f718ffb"
    )
    assert result.external_identifier == "urn:uuid:9796155a-fe44-4614-89b8-71945f718ffb"
    doc = load_metadata(extract_bag(result.path, tmp_path / "x") / "data" / "ro-crate-metadata.json")
    graph = entities(doc)
    project = graph[graph["./"]["sourceOrganization"]["@id"]]
    assert project["@id"].startswith("#project-") and project["identifier"] == "TRE72-81"
    assert graph[graph[result.run_id]["agent"]["@id"]]["@id"].startswith("#person-")
    assert validate_path(result.path).valid


def test_similar_parameter_names_stay_distinct(tmp_path: Path) -> None:
    spec = dataclasses.replace(
        request_spec(tmp_path / "inputs"),
        parameters=[InputParameter("min count", 5), InputParameter("min-count", 10)],
        affiliation_id="https://tre-a.example.org/",  # the researcher works at the TRE they ask
    )
    result = build_request_crate(spec, tmp_path / "request.zip")
    doc = load_metadata(extract_bag(result.path, tmp_path / "x") / "data" / "ro-crate-metadata.json")
    graph = entities(doc)
    named = {
        graph[graph[ref["@id"]]["exampleOfWork"]["@id"]]["name"]: graph[ref["@id"]]["value"]
        for ref in graph[result.run_id]["object"]
        if "value" in graph[ref["@id"]]
    }
    assert named == {"min count": 5, "min-count": 10}
    assert graph["https://tre-a.example.org/"]["name"] == "The University of Manchester"
    assert validate_path(result.path).valid


def test_a_minimal_request(tmp_path: Path) -> None:
    spec = dataclasses.replace(
        request_spec(tmp_path / "inputs"), parameters=(), input_files=(), datasets=(), target_tres=()
    )
    report = validate_path(build_request_crate(spec, tmp_path / "request.zip").path)
    assert report.valid
    assert P + "57.1" in report.failed_checks(Severity.RECOMMENDED)  # no inputs: worth a warning only


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"title": " "}, "title"),
        ({"person_orcid": "0000-0002-1825-0097"}, "orcid"),
        ({"workflow_id": "workflowhub 289"}, "workflow_id"),
        ({"parameters": [InputParameter("x", 1), InputParameter("x", 2)]}, "repeated: x"),
        ({"parameters": [InputParameter("regions", 1)]}, "repeated: regions"),
        ({"input_files": [InputFile(Path("/nonexistent/file.csv"))]}, "does not exist"),
        ({"target_tres": [TargetTre("TRE A", "tre-a")]}, "TRE"),
        ({"datasets": [""]}, "dataset"),
        ({"datasets": ["hes-apc-2024", "hes-apc-2024"]}, "once"),
    ],
)
def test_a_request_is_checked_when_described(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(request_spec(tmp_path / "inputs"), **changes)


def test_reading_conventions_needs_a_graph() -> None:
    with pytest.raises(ValueError, match="@graph"):
        requested_datasets({"@context": "x"})

"""Fixtures for the Five Safes crate library: reference data, crate factories, the oracle.

``tests/data`` holds the example crates and the community validator's check list, and
``tests/oracle_runner.py`` runs the community SHACL profile offline. The oracle is slow to start, so every crate it judges is made up front and judged in one
session-wide run (split across CPUs).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crates.fivesafes import (
    Agreement,
    InputFile,
    InputParameter,
    License,
    Organization,
    Person,
    RequestSpec,
    Software,
    TargetTre,
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
    withhold_outputs,
    write_metadata,
)
from tests.reference_data import CHECKS_TSV, DATA, oracle_command
from tests.unit.crates import cases

REPO = Path(__file__).resolve().parents[3]
FIXTURE_SET = "fixtures/5s-crate"
RESULT_FIXTURE = "validator-valid-five-safes-crate-result"
P = "five-safes-crate-0.4_"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The reference data in the repository (tests/data: fixtures/, oracles/, reference/)."""
    return DATA


@pytest.fixture(scope="session")
def fixture_crates(reference_dir: Path) -> dict[str, Path]:
    """Every example crate folder, by name."""
    return {path.name: path for path in sorted((reference_dir / FIXTURE_SET).iterdir()) if path.is_dir()}


def metadata_path(crate_dir: Path) -> Path:
    direct = crate_dir / "ro-crate-metadata.json"
    return direct if direct.is_file() else crate_dir / "data" / "ro-crate-metadata.json"


@pytest.fixture(scope="session")
def result_doc(fixture_crates: dict[str, Path]) -> dict[str, Any]:
    """The community validator's reference result crate: every phase recorded, valid at RECOMMENDED."""
    return json.loads(metadata_path(fixture_crates[RESULT_FIXTURE]).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def tsv() -> dict[str, dict[str, str]]:
    """The community validator's checks by id (columns check_id, severity, requirement_name, check_name)."""
    lines = CHECKS_TSV.read_text(encoding="utf-8").splitlines()
    rows = csv.DictReader([line for line in lines if not line.startswith("#")], delimiter="\t")
    return {row["check_id"]: row for row in rows}


# -- people and crates used across tests -------------------------------------------------------------------
FEDERATION = Organization("https://portal.example.org/", "Example Five Safes federation")
TRE_A = Organization("https://tre-a.example.org/", "TRE A")
PORTAL = Software("https://portal.example.org/#crate-validator", "Five Safes Portal validator", FEDERATION)
TRE_AGENT = Software("https://tre-a.example.org/#agent", "TRE A agent", TRE_A)
OLIVIA = Person("https://orcid.org/0000-0002-1825-0097", "Olivia Officer", TRE_A)
CAM = Person("https://orcid.org/0000-0003-1415-9265", "Cam Checker", TRE_A)
CHRIS = Person("https://orcid.org/0000-0001-5109-3700", "Chris Checker", TRE_A)
AGREEMENT = Agreement("https://portal.example.org/agreements/81", "Data access agreement 81 with TRE A")
CC_BY = License(
    "https://spdx.org/licenses/CC-BY-4.0", "Creative Commons Attribution 4.0 International", "CC-BY-4.0"
)
NOON = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def request_spec(directory: Path) -> RequestSpec:
    """Alice's request: two parameters, one input file, two datasets, one TRE."""
    directory.mkdir(parents=True, exist_ok=True)
    cohort = directory / "cohort.csv"
    cohort.write_text("region\nnorth\nsouth\n", encoding="utf-8")
    return RequestSpec(
        title="Cancer incidence by region",
        description="Counts of new cancer diagnoses per region and year.",
        project_identifier="https://portal.example.org/projects/81",
        project_name="Investigation of cancer (project 81)",
        person_name="Alice Researcher",
        person_orcid="https://orcid.org/0000-0001-9842-9718",
        affiliation_name="The University of Manchester",
        affiliation_id="https://ror.org/027m9bs27",
        workflow_id="https://workflowhub.eu/workflows/289?version=1",
        workflow_version="1",
        workflow_name="Cancer incidence counts",
        workflow_distribution="https://workflowhub.eu/workflows/289/ro_crate?version=1",
        parameters=[InputParameter("min-count", 10), InputParameter("by-year", True)],
        input_files=[InputFile(cohort, "regions")],
        datasets=["https://tre-a.example.org/datasets/cancer-registry", "hes-apc-2024"],
        target_tres=[TargetTre("TRE A", TRE_A.id)],
    )


def review_request(doc: dict[str, Any]) -> None:
    """The portal's part: strip client steps, then Check, Validation and Sign-off."""
    strip_assess_actions(doc)
    add_check_action(doc, agent=PORTAL, ok=True, started=NOON, ended=NOON)
    add_validation_action(doc, agent=PORTAL, valid=True, started=NOON, ended=NOON)
    add_signoff_action(
        doc,
        officer=OLIVIA,
        agreement=AGREEMENT,
        approved=True,
        message="Within the agreement.",
        started=NOON,
        ended=NOON,
    )


def run_and_release(bag_dir: Path, doc: dict[str, Any], *, approved: bool = True) -> None:
    """The TRE agent's part (retrieval, execution) and the portal's (disclosure, publishing)."""
    add_download_action(doc, agent=TRE_AGENT, ok=True, unpacked_to="workflow/", started=NOON, ended=NOON)
    (bag_dir / "data" / "workflow").mkdir()
    (bag_dir / "data" / "workflow" / "ro-crate-metadata.json").write_text("{}\n", encoding="utf-8")
    (bag_dir / "data" / "outputs").mkdir()
    (bag_dir / "data" / "outputs" / "counts.csv").write_text(
        "region,n\nnorth,12\nsouth,15\n", encoding="utf-8"
    )
    record_execution(
        doc,
        status="http://schema.org/CompletedActionStatus",
        started=NOON,
        ended=NOON,
        results=[
            {"@id": "outputs/counts.csv", "@type": "File", "name": "Counts", "encodingFormat": "text/csv"}
        ],
    )
    add_disclosure_check(
        doc, approved=approved, checkers=[CAM, CHRIS], message="Counts above 10.", started=NOON, ended=NOON
    )
    if not approved:
        for removed in withhold_outputs(doc):
            (bag_dir / "data" / removed["@id"]).unlink()
    add_publishing_action(doc, agent=PORTAL, publisher=TRE_A, license=CC_BY, published=NOON)


# -- the oracle ---------------------------------------------------------------------------------------------
@dataclass
class Judged:
    """One crate as judged by the oracle: ``issues`` from the profile, ``base_issues`` from RO-Crate's."""

    path: Path
    verdict: str
    issues: list[dict[str, Any]] = field(default_factory=list)
    base_issues: list[dict[str, Any]] = field(default_factory=list)
    unresolved_urls: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class Corpus:
    """The crates the oracle judged, by name, at REQUIRED (``required``) and RECOMMENDED (``recommended``)."""

    paths: dict[str, Path]
    required: dict[str, Judged]
    recommended: dict[str, Judged]


def _oracle(paths: list[Path], severity: str) -> subprocess.Popen[bytes]:
    # --empty-unknown-contexts lets one example crate that names http://schema.org as a context run;
    # the agreement tests check that no crate relies on it for a context it does not itself name.
    command = oracle_command("--json", "--empty-unknown-contexts", "--severity", severity, *paths)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _collect(process: subprocess.Popen[bytes], paths: list[Path]) -> dict[Path, Judged]:
    out, err = process.communicate()
    if process.returncode not in (0, 1, 2) or not out.strip():
        pytest.fail(
            f"5s-oracle failed ({process.returncode}): {err.decode(errors='replace')[-2000:]}", pytrace=False
        )
    report = json.loads(out)
    judged = {}
    for path, crate in zip(paths, report["crates"], strict=True):
        judged[path] = Judged(
            path=path,
            verdict=crate["verdict"],
            issues=crate.get("issues", []),
            base_issues=crate.get("base_issues", []),
            unresolved_urls=crate.get("unresolved_urls", []),
            error=crate.get("error"),
        )
    return judged


def run_oracle(
    required: list[Path], recommended: list[Path]
) -> tuple[dict[Path, Judged], dict[Path, Judged]]:
    """Judge ``required`` at REQUIRED and ``recommended`` at RECOMMENDED, in parallel processes."""
    workers = max(1, min(len(os.sched_getaffinity(0)), 4, len(required) // 12 or 1))
    chunks = [required[i::workers] for i in range(workers)]
    jobs = [(chunk, _oracle(chunk, "required")) for chunk in chunks if chunk]
    if recommended:
        jobs.append((recommended, _oracle(recommended, "recommended")))
    results = [_collect(process, chunk) for chunk, process in jobs]
    at_required: dict[Path, Judged] = {}
    for result in results[: len(results) - (1 if recommended else 0)]:
        at_required.update(result)
    return at_required, (results[-1] if recommended else {})


def _write_doc(directory: Path, doc: dict[str, Any]) -> Path:
    directory.mkdir(parents=True)
    (directory / "ro-crate-metadata.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return directory


def _reviewed_copy(source_zip: Path, work: Path, edit: Callable[[Path, dict[str, Any]], None]) -> Path:
    bag_dir = extract_bag(source_zip, work)
    doc = load_metadata(bag_dir / "data" / "ro-crate-metadata.json")
    edit(bag_dir, doc)
    write_metadata(bag_dir, doc)
    return bag_dir


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory, fixture_crates: dict[str, Path]) -> Corpus:
    """Every crate the agreement tests compare, judged once by the oracle."""
    root = tmp_path_factory.mktemp("oracle-corpus")
    base = json.loads(metadata_path(fixture_crates[RESULT_FIXTURE]).read_text(encoding="utf-8"))
    paths: dict[str, Path] = {f"fixture:{name}": path for name, path in fixture_crates.items()}
    for case in cases.ALL_CASES:
        paths[f"case:{case.name}"] = _write_doc(root / "cases" / case.name, case.apply(base))

    request_zip = build_request_crate(request_spec(root / "inputs"), root / "built" / "request.zip").path
    paths["built:request"] = request_zip
    reviewed = _reviewed_copy(request_zip, root / "reviewed", lambda _bag, doc: review_request(doc))
    paths["writeback:reviewed-request"] = reviewed

    def release(approved: bool) -> Callable[[Path, dict[str, Any]], None]:
        def edit(bag_dir: Path, doc: dict[str, Any]) -> None:
            review_request(doc)
            run_and_release(bag_dir, doc, approved=approved)

        return edit

    released = _reviewed_copy(request_zip, root / "released", release(True))
    paths["writeback:released-result"] = pack_bag(released, root / "released.zip")
    paths["writeback:withheld-result"] = _reviewed_copy(request_zip, root / "withheld", release(False))

    recommended = [
        "fixture:" + RESULT_FIXTURE,
        "built:request",
        "writeback:reviewed-request",
        "writeback:released-result",
    ]
    by_path_required, by_path_recommended = run_oracle(
        list(paths.values()), [paths[name] for name in recommended]
    )
    names = {path: name for name, path in paths.items()}
    return Corpus(
        paths=paths,
        required={names[path]: judged for path, judged in by_path_required.items()},
        recommended={names[path]: judged for path, judged in by_path_recommended.items()},
    )

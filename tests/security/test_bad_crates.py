"""Every crate of the bad-crate corpus is refused, clearly, by the library and through the portal.

Each case is fed (a) to the intake steps of :func:`crates.services.validate_version` without a database
(unpack, BagIt, metadata, profile) and to :func:`crates.fivesafes.validate_path`, and (b) to the
researcher's upload form and to the REST API, where validation runs as it does in the worker. Whatever the
case, the portal must not fail (no 5xx, no exception), must say what is wrong, and must keep nothing of the
crate but the record of its refusal.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.core.files import File
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from crates import services
from crates.fivesafes import CHECKS, CrateRefused, Report, Severity, validate_metadata, validate_path
from crates.fivesafes.bag import verify_bag
from crates.fivesafes.loader import load_metadata
from crates.models import CrateRefusal, Job, Request, RequestVersion
from portal import services as portal_services
from tests.reference_data import CHECKS_TSV
from tests.security import corpus

CASES = corpus.cases()
REFUSAL_CODE = re.compile(r"^(zip|bag|metadata)\.[a-z0-9_]+$")


# -- the corpus itself -------------------------------------------------------------------------------------
def test_the_corpus_has_at_least_300_distinct_cases() -> None:
    assert len(CASES) >= 300
    assert len({case.id for case in CASES}) == len(CASES)
    digests = {hashlib.sha256(case.data()).hexdigest() for case in CASES}
    assert len(digests) == len(CASES), "two cases build the same bytes"
    categories = {case.category for case in CASES}
    assert {
        "path-traversal",
        "zip-bomb",
        "links-and-devices",
        "zip-format",
        "duplicates-and-collisions",
        "archive-layout",
        "bagit",
        "broken-archive",
        "metadata-syntax",
        "metadata-wrong-type",
        "profile-required",
    } <= categories


def test_generation_is_deterministic() -> None:
    for case in CASES:
        assert case.build() == case.data(), f"{case.id} is not the same twice"


def test_cases_are_small_and_bombs_compact() -> None:
    for case in CASES:
        limit = 3 * corpus.MiB if case.category == "zip-bomb" else 16 * corpus.KiB
        assert len(case.data()) <= limit, f"{case.id} is {len(case.data()):,} bytes"


def test_the_limit_cases_use_the_portals_limits() -> None:
    limits = services.crate_limits()
    assert (limits.max_files, limits.max_metadata_bytes, limits.max_depth) == (
        corpus.MAX_FILES,
        corpus.MAX_METADATA_BYTES,
        corpus.MAX_DEPTH,
    )


def test_every_expectation_is_a_known_code() -> None:
    for case in CASES:
        assert case.expect in CHECKS or REFUSAL_CODE.match(case.expect), case
        if case.expect in CHECKS:
            assert CHECKS[case.expect].severity is Severity.REQUIRED, (
                f"{case.id} expects advice, not a refusal"
            )


def test_every_required_check_of_the_community_profile_is_broken_by_a_case() -> None:
    """Each REQUIRED check id of the community validator is expected by some case.

    Ids the validator does not report itself are the node shapes (``<n>.0``) around property checks, and
    ``6.1``, which it reports as ``6.2``: those count as covered by a case expecting a check of the same
    requirement number.
    """
    lines = CHECKS_TSV.read_text(encoding="utf-8").splitlines()
    rows = csv.DictReader([line for line in lines if not line.startswith("#")], delimiter="\t")
    required = [row["check_id"] for row in rows if row["severity"] == "REQUIRED"]
    assert len(required) > 40
    expected = {case.expect for case in CASES}
    requirement = {check.rsplit(".", 1)[0] for check in expected}
    missing = [
        check
        for check in required
        if check not in expected and (check in CHECKS or check.rsplit(".", 1)[0] not in requirement)
    ]
    assert not missing


# -- (a) the library ---------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What intake made of a crate: a refusal, or a validation report."""

    refusal: CrateRefused | None = None
    report: Report | None = None
    findings: list[tuple[str, str, str]] = field(default_factory=list)  # (code, message, location)

    @property
    def codes(self) -> set[str]:
        return {code for code, _, _ in self.findings}

    @property
    def refused(self) -> bool:
        return self.refusal is not None or (self.report is not None and not self.report.valid)


def _outcome(refusal: CrateRefused | None = None, report: Report | None = None) -> Outcome:
    if refusal is not None:
        return Outcome(refusal=refusal, findings=[(refusal.code, refusal.message, refusal.where or "")])
    assert report is not None
    findings = [
        (i.check, i.message, i.entity or "") for i in report.issues if i.severity is Severity.REQUIRED
    ]
    return Outcome(report=report, findings=findings)


def intake(zip_path: Path) -> Outcome:
    """The intake steps of ``services.validate_version``, on a crate file instead of a stored version."""
    try:
        with zip_path.open("rb") as handle, services.unpacked(File(handle, name=zip_path.name)) as bag_dir:
            verify_bag(bag_dir)
            doc = load_metadata(bag_dir / "data" / "ro-crate-metadata.json", limits=services.crate_limits())
    except CrateRefused as refusal:
        return _outcome(refusal=refusal)
    return _outcome(report=validate_metadata(doc))


def _assert_names_the_problem(case: corpus.Case, outcome: Outcome) -> None:
    assert case.expect in outcome.codes, f"{case.id}: expected {case.expect}, got {outcome.findings[:5]}"
    matching = [(message, where) for code, message, where in outcome.findings if code == case.expect]
    assert all(len(message.strip()) > 10 for message, _ in matching)
    if case.names:
        assert any(case.names in message or case.names in where for message, where in matching), (
            f"{case.id}: no finding names {case.names!r}: {matching[:3]}"
        )


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory everything unpacked goes to, checked empty after each case."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_library_intake_refuses_and_names_the_problem(
    case: corpus.Case, tmp_path: Path, scratch: Path
) -> None:
    zip_path = tmp_path / "crate.zip"
    zip_path.write_bytes(case.data())
    outcome = intake(zip_path)
    assert outcome.refused
    _assert_names_the_problem(case, outcome)
    assert not any(scratch.iterdir()), "intake left files behind"
    # The library's own entry point (the validate_crate command, the TRE agent) refuses it too.
    try:
        report = validate_path(zip_path, services.crate_limits())
    except CrateRefused as refusal:
        assert refusal.message.strip()
    else:
        assert not report.valid
    assert not any(scratch.iterdir())


@pytest.mark.parametrize("build", [corpus.valid_request_crate, corpus.valid_result_crate])
def test_the_crates_the_cases_start_from_are_accepted(build, tmp_path: Path, scratch: Path) -> None:
    zip_path = tmp_path / "crate.zip"
    zip_path.write_bytes(build())
    outcome = intake(zip_path)
    assert not outcome.refused, outcome.findings
    assert validate_path(zip_path, services.crate_limits()).valid


# -- (b) the portal ----------------------------------------------------------------------------------------
@dataclass
class Portal:
    form: Client
    api: Client
    project: object
    tre: object
    scratch: Path
    media: Path
    capture: object

    def stray_files(self) -> list[Path]:
        return [p for folder in (self.scratch, self.media) for p in folder.rglob("*") if p.is_file()]


@pytest.fixture
def portal(
    client, alice, tre_a, registry, settings, tmp_path, monkeypatch, django_capture_on_commit_callbacks
) -> Portal:
    folder = tmp_path / "uploads"
    folder.mkdir()
    # Every upload spools to a temporary file there, and unpacking happens there too: all must go.
    settings.FILE_UPLOAD_TEMP_DIR = str(folder)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    client.force_login(alice)
    _, secret = portal_services.create_token(alice, "security tests", by=alice, days=1)
    api = Client(headers={"authorization": f"Bearer {secret}"})
    return Portal(
        form=client,
        api=api,
        project=registry["project"],
        tre=tre_a,
        scratch=folder,
        media=Path(settings.MEDIA_ROOT),
        capture=django_capture_on_commit_callbacks,
    )


def _submit_form(portal: Portal, title: str, data: bytes):
    with portal.capture(execute=True):
        return portal.form.post(
            reverse("request_create"),
            {
                "project": portal.project.pk,
                "tres": [portal.tre.pk],
                "title": title,
                "crate": SimpleUploadedFile("crate.zip", data, content_type="application/zip"),
            },
        )


def _submit_api(portal: Portal, title: str, data: bytes):
    with portal.capture(execute=True):
        return portal.api.post(
            reverse("api_request_list"),
            {
                "project": portal.project.identifier,
                "tres": [portal.tre.slug],
                "title": title,
                "crate": SimpleUploadedFile("crate.zip", data, content_type="application/zip"),
            },
        )


def _reported(report: dict) -> set[str]:
    codes = {error["check"] for error in report.get("errors", [])}
    if report.get("refusal"):
        codes.add(report["refusal"]["code"])
    return codes


def _assert_refused_and_forgotten(case: corpus.Case, version: RequestVersion) -> None:
    version.refresh_from_db()
    report = version.validation_report or {}
    assert version.status == RequestVersion.Status.INVALID, (case.id, version.status, report)
    assert case.expect in _reported(report), (case.id, report)
    assert not version.crate, "the refused crate was kept"
    assert version.metadata is None
    if report.get("refusal"):
        refusal = CrateRefusal.objects.get(request=version.request)
        assert (refusal.code, refusal.message) == (report["refusal"]["code"], report["refusal"]["message"])
        assert refusal.message.strip()


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_the_portal_refuses_without_failing_and_keeps_nothing(case: corpus.Case, portal: Portal) -> None:
    data = case.data()

    response = _submit_form(portal, f"Form {case.id}", data)
    assert response.status_code < 500
    if response.status_code == 200:  # refused by the form itself, before anything was stored
        page = response.content.decode()
        assert "nhsuk-error-message" in page or "nhsuk-error-summary" in page
        assert not Request.objects.filter(title=f"Form {case.id}").exists()
    else:
        assert response.status_code == 302
        request = Request.objects.get(title=f"Form {case.id}")
        assert response.url == request.get_absolute_url()
        version = request.versions.get()
        _assert_refused_and_forgotten(case, version)
        detail = portal.form.get(request.get_absolute_url())
        assert detail.status_code == 200
        page = detail.content.decode()
        assert "not accepted" in page
        assert escape(case.expect) in page
        report = version.validation_report
        if report.get("refusal"):
            assert "The crate was refused" in page
            assert escape(report["refusal"]["message"]) in page

    response = _submit_api(portal, f"API {case.id}", data)
    assert response.status_code in (201, 400), (response.status_code, response.content[:500])
    if response.status_code == 400:
        assert response.json()
        assert not Request.objects.filter(title=f"API {case.id}").exists()
    else:
        created = response.json()["id"]
        detail = portal.api.get(reverse("api_request_detail", args=[created]))
        assert detail.status_code == 200
        body = detail.json()
        assert body["status"] == "invalid"
        assert case.expect in _reported(body["versions"][-1]["validation_report"])
        assert body["jobs"] == []
        _assert_refused_and_forgotten(case, RequestVersion.objects.get(request_id=created))

    assert not RequestVersion.objects.filter(status=RequestVersion.Status.VALID).exists()
    assert not RequestVersion.objects.exclude(crate="").exists()
    assert not Job.objects.exists()
    assert not portal.stray_files(), portal.stray_files()[:5]


@pytest.mark.django_db
def test_the_portal_accepts_the_unbroken_request_crate(portal: Portal) -> None:
    """The assertions above can fail: the crate the packaging cases start from becomes a job."""
    response = _submit_form(portal, "Unbroken", corpus.valid_request_crate())
    assert response.status_code == 302
    version = Request.objects.get(title="Unbroken").versions.get()
    assert version.status == RequestVersion.Status.VALID, version.validation_report
    assert Job.objects.filter(version=version).exists()
    assert version.crate
    assert not [p for p in portal.scratch.rglob("*") if p.is_file()]


def _descriptor_about_root_and_more(doc: dict) -> None:
    corpus.entity(doc, "ro-crate-metadata.json")["about"] = [{"@id": "./"}, {"@id": corpus.MANCHESTER}]


def _root_is_also_a_review_step(doc: dict) -> None:
    root = corpus.entity(doc, "./")
    root["@type"] = ["Dataset", "AssessAction"]
    root["mentions"].append({"@id": "./"})


@pytest.mark.django_db
@pytest.mark.parametrize("edit", [_descriptor_about_root_and_more, _root_is_also_a_review_step])
def test_a_valid_crate_review_steps_cannot_be_written_into_is_refused(edit, portal: Portal) -> None:
    """Shapes the profile accepts but the portal cannot record its Check and Validation steps in."""
    doc = corpus.request_doc()
    edit(doc)
    assert validate_metadata(doc).valid
    data = corpus.crate(json.dumps(doc).encode())
    response = _submit_form(portal, "Unrecordable", data)
    assert response.status_code == 302
    version = Request.objects.get(title="Unrecordable").versions.get()
    version.refresh_from_db()
    assert version.status == RequestVersion.Status.INVALID
    refusal = CrateRefusal.objects.get(request=version.request)
    assert refusal.code == "metadata.unrecordable"
    assert "root data entity" in refusal.message
    assert not version.crate
    assert not Job.objects.exists()
    assert not portal.stray_files()

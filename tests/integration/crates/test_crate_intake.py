"""Crate intake end to end: upload, background validation, write-back, jobs, refusals, resubmission."""

import json
import zipfile

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crates.models import CrateRefusal, Job, Request, RequestVersion
from portal.audit import AuditEvent
from reviews.models import Notification
from tests import cratekit

pytestmark = pytest.mark.django_db

CHECK_VALUE = "https://w3id.org/shp#CheckValue"
VALIDATION = "https://w3id.org/shp#ValidationCheck"


def _upload(path):
    return SimpleUploadedFile(path.name, path.read_bytes(), content_type="application/zip")


def _submit(client, user, zip_path, tre, project, capture, title="Protein MD at TRE A"):
    client.force_login(user)
    with capture(execute=True):
        response = client.post(
            reverse("request_create"),
            {"project": project.pk, "tres": [tre.pk], "title": title, "crate": _upload(zip_path)},
        )
    return response


def _actions(metadata, additional_type):
    return [
        e
        for e in metadata["@graph"]
        if "AssessAction" in json.dumps(e.get("@type"))
        and additional_type in json.dumps(e.get("additionalType"))
    ]


def test_valid_crate_becomes_a_job_per_tre_with_check_and_validation_written_back(
    client, alice, olivia, tre_a, registry, crate_zip, django_capture_on_commit_callbacks
):
    response = _submit(
        client, alice, crate_zip, tre_a, registry["project"], django_capture_on_commit_callbacks
    )
    request = Request.objects.get()
    assert response.url == request.get_absolute_url()
    version = request.versions.get()
    assert version.status == RequestVersion.Status.VALID, version.validation_report
    assert version.external_identifier.startswith("urn:uuid:")
    assert version.validation_report["errors"] == []
    job = Job.objects.get(request=request)
    assert (job.tre, job.status, job.workflow) == (tre_a, Job.Status.AWAITING_REVIEW, registry["workflow"])
    assert list(job.datasets.all()) == [registry["dataset"]]
    check, validation = _actions(job.metadata, CHECK_VALUE), _actions(job.metadata, VALIDATION)
    assert len(check) == 1 and len(validation) == 1
    assert check[0]["actionStatus"] == "http://schema.org/CompletedActionStatus"
    findings = {f["check"]: f for f in version.crosscheck["findings"] if f["ok"]}
    assert {"people", "project", "datasets", "workflow"} <= set(findings)
    assert Notification.objects.filter(recipient=olivia, kind="review").exists()
    page = client.get(request.get_absolute_url()).content.decode()
    assert "meets every required rule" in page
    assert "Matches" in page


def test_client_supplied_assess_actions_are_stripped_and_recorded(
    client, alice, tre_a, registry, tmp_path, django_capture_on_commit_callbacks
):
    dataset = registry["dataset"]
    metadata = cratekit.request_metadata(
        orcid="0000-0002-1825-0097",
        project_identifier=registry["project"].identifier,
        workflow_id=registry["workflow"].workflow_id,
        datasets=[(dataset.identifier, dataset.name)],
    )
    forged = {
        "@id": "#forged-signoff",
        "@type": "AssessAction",
        "additionalType": {"@id": "https://w3id.org/shp#SignOff"},
        "name": "Signed off by nobody",
        "actionStatus": "http://schema.org/CompletedActionStatus",
    }
    metadata["@graph"].append(forged)
    root = next(e for e in metadata["@graph"] if e["@id"] == "./")
    root["mentions"] = [root["mentions"], {"@id": "#forged-signoff"}]
    zip_path = cratekit.make_crate_zip(tmp_path / "forged.zip", metadata, cratekit.input_files())
    _submit(client, alice, zip_path, tre_a, registry["project"], django_capture_on_commit_callbacks)
    version = RequestVersion.objects.get()
    assert [a["@id"] for a in version.stripped_actions] == ["#forged-signoff"]
    job = Job.objects.get()
    assert "#forged-signoff" not in json.dumps(job.metadata)
    assert AuditEvent.objects.filter(verb="crate.assess_actions_stripped").exists()


def test_profile_invalid_crate_keeps_only_the_report(
    client, alice, tre_a, registry, tmp_path, django_capture_on_commit_callbacks
):
    metadata = cratekit.request_metadata(
        orcid="0000-0002-1825-0097",
        project_identifier=registry["project"].identifier,
        workflow_id=registry["workflow"].workflow_id,
    )
    root = next(e for e in metadata["@graph"] if e["@id"] == "./")
    del root["mainEntity"]
    zip_path = cratekit.make_crate_zip(tmp_path / "invalid.zip", metadata, cratekit.input_files())
    _submit(client, alice, zip_path, tre_a, registry["project"], django_capture_on_commit_callbacks)
    version = RequestVersion.objects.get()
    assert version.status == RequestVersion.Status.INVALID
    assert version.validation_report["errors"]
    assert any("mainEntity" in e["message"] for e in version.validation_report["errors"])
    assert not version.crate
    assert not default_storage.listdir(f"crates/{version.request_id}")[1]
    assert not Job.objects.exists()
    page = client.get(version.request.get_absolute_url()).content.decode()
    assert "required rule" in page


@pytest.mark.parametrize(
    ("entries", "code"),
    [
        ({"crate/bagit.txt": b"x", "../evil.txt": b"x"}, "zip."),
        ({"crate/bagit.txt": b"x", "other/bagit.txt": b"x"}, "zip."),
        ({"crate/data/ro-crate-metadata.json": b"{}"}, "bag."),
    ],
)
def test_packaging_refusals_keep_only_the_refusal_record(
    client, alice, tre_a, registry, tmp_path, django_capture_on_commit_callbacks, entries, code
):
    zip_path = tmp_path / "bad.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    response = _submit(
        client, alice, zip_path, tre_a, registry["project"], django_capture_on_commit_callbacks
    )
    assert response.status_code == 302
    version = RequestVersion.objects.get()
    assert version.status == RequestVersion.Status.INVALID
    refusal = CrateRefusal.objects.get()
    assert refusal.code.startswith(code)
    assert version.validation_report["refusal"]["code"] == refusal.code
    assert not version.crate
    page = client.get(version.request.get_absolute_url()).content.decode()
    assert "The crate was refused" in page


def test_oversized_upload_is_refused_before_storage(client, alice, tre_a, registry, crate_zip, settings):
    settings.PORTAL_CRATE_LIMITS = {**settings.PORTAL_CRATE_LIMITS, "max_compressed_bytes": 100}
    client.force_login(alice)
    response = client.post(
        reverse("request_create"),
        {
            "project": registry["project"].pk,
            "tres": [tre_a.pk],
            "title": "Too big",
            "crate": _upload(crate_zip),
        },
    )
    assert "the limit is 100" in response.content.decode()
    assert not Request.objects.exists()


def test_only_approved_members_submit_to_approved_tres(client, bob, tre_b, registry, crate_zip, admin_user):
    client.force_login(bob)
    response = client.post(
        reverse("request_create"),
        {
            "project": registry["project"].pk,
            "tres": [tre_b.pk],
            "title": "Elsewhere",
            "crate": _upload(crate_zip),
        },
    )
    assert response.status_code == 200
    assert not Request.objects.exists()


def test_htmx_polling_gets_just_the_status_fragment(
    client, alice, tre_a, registry, crate_zip, django_capture_on_commit_callbacks
):
    _submit(client, alice, crate_zip, tre_a, registry["project"], django_capture_on_commit_callbacks)
    request = Request.objects.get()
    fragment = client.get(request.get_absolute_url(), headers={"HX-Request": "true"})
    body = fragment.content.decode()
    assert body.lstrip().startswith('<div id="version-status"')
    assert "<html" not in body
    assert fragment["Vary"] and "HX-Request" in fragment["Vary"]
    # Checked now: the jobs at each TRE and the summary exist, so the poll asks for the whole page once.
    assert request.versions.get().is_final and fragment["HX-Refresh"] == "true"


def test_a_poll_while_the_crate_is_being_checked_does_not_reload_the_page(
    client, alice, tre_a, registry, crate_zip
):
    client.force_login(alice)
    client.post(
        reverse("request_create"),
        {
            "project": registry["project"].pk,
            "tres": [tre_a.pk],
            "title": "Still checking",
            "crate": _upload(crate_zip),
        },
    )
    request = Request.objects.get()
    assert not request.versions.get().is_final  # validation runs on commit, which this test never reaches
    fragment = client.get(request.get_absolute_url(), headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "HX-Refresh" not in fragment
    assert 'hx-trigger="every 2s"' in fragment.content.decode()


def test_a_version_still_being_checked_asks_htmx_to_poll(client, alice, tre_a, registry, crate_zip):
    client.force_login(alice)
    client.post(
        reverse("request_create"),
        {
            "project": registry["project"].pk,
            "tres": [tre_a.pk],
            "title": "Polling",
            "crate": _upload(crate_zip),
        },
    )
    request = Request.objects.get()
    assert request.versions.get().status == RequestVersion.Status.RECEIVED
    assert 'hx-trigger="every 2s"' in client.get(request.get_absolute_url()).content.decode()


def test_api_submission_and_status(
    client, alice, tre_a, registry, crate_zip, django_capture_on_commit_callbacks
):
    from portal import services

    _, secret = services.create_token(alice, "api", by=alice, days=1)
    headers = {"authorization": f"Bearer {secret}"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("api_request_list"),
            {
                "project": registry["project"].identifier,
                "tres": [tre_a.slug],
                "title": "Via the API",
                "crate": _upload(crate_zip),
            },
            headers=headers,
        )
    assert response.status_code == 201, response.content
    detail = client.get(reverse("api_request_detail", args=[response.json()["id"]]), headers=headers).json()
    assert detail["status"] == "awaiting_review"
    assert detail["versions"][0]["status"] == "valid"
    assert detail["jobs"][0]["tre"] == tre_a.slug


def test_api_refusal_names_the_problem(
    client, alice, tre_a, registry, tmp_path, django_capture_on_commit_callbacks
):
    from portal import services

    _, secret = services.create_token(alice, "api", by=alice, days=1)
    response = client.post(
        reverse("api_request_list"),
        {
            "project": registry["project"].identifier,
            "tres": ["tre-b"],
            "title": "x",
            "crate": SimpleUploadedFile("c.zip", b"PK"),
        },
        headers={"authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 400


def test_api_refuses_a_nul_in_a_tre_or_project_name(client, alice, registry, crate_zip):
    from portal import services

    _, secret = services.create_token(alice, "api", by=alice, days=1)
    for field, value in (("tres", ["tre-a\x00"]), ("project", "PRJ\x00")):
        data = {
            "project": registry["project"].identifier,
            "tres": ["tre-a"],
            "title": "x",
            "crate": _upload(crate_zip),
        }
        data[field] = value
        response = client.post(
            reverse("api_request_list"), data, headers={"authorization": f"Bearer {secret}"}
        )
        assert response.status_code == 400, response.content
        assert field in response.json()["errors"]
    assert not Request.objects.exists()


def test_export_crate_writes_the_jobs_crate(
    client, alice, tre_a, registry, crate_zip, tmp_path, django_capture_on_commit_callbacks
):
    from django.core.management import call_command

    from crates.fivesafes.bag import verify_bag
    from crates.fivesafes.safezip import extract_bag

    _submit(client, alice, crate_zip, tre_a, registry["project"], django_capture_on_commit_callbacks)
    request = Request.objects.get()
    out = tmp_path / "export.zip"
    call_command("export_crate", str(request.pk), "--tre", tre_a.slug, "--out", str(out))
    bag = extract_bag(out, tmp_path / "unpacked")
    info = verify_bag(bag)
    assert info.external_identifier == request.versions.get().external_identifier
    exported = json.loads((bag / "data" / "ro-crate-metadata.json").read_text())
    assert exported == Job.objects.get().metadata


def test_researcher_builds_a_request_from_the_form(
    client, alice, tre_a, registry, django_capture_on_commit_callbacks
):
    client.force_login(alice)
    page = client.get(reverse("request_build")).content.decode()
    assert registry["workflow"].name in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("request_build"),
            {
                "project": registry["project"].pk,
                "tres": [tre_a.pk],
                "title": "Built in the portal",
                "workflow": registry["workflow"].pk,
                "datasets": [registry["dataset"].pk],
                "parameters": "min_age=18\nfast_mode=true",
                "inputs": [SimpleUploadedFile("codes.txt", b"E11\nE12\n")],
            },
        )
    assert response.status_code == 302, response.content.decode()[:3000]
    version = RequestVersion.objects.get()
    assert version.status == "valid", version.validation_report
    summary = version.summary
    assert summary["workflow"]["version"] == "1"
    assert {i["name"]: i.get("value") for i in summary["inputs"]}["min_age"] == "18"
    assert [d["id"] for d in summary["datasets"]] == [registry["dataset"].identifier]
    assert all(f["ok"] for f in version.crosscheck["findings"]), version.crosscheck
    assert Job.objects.get().status == "awaiting_review"


def test_builder_needs_an_orcid(client, alice, tre_a, registry):
    alice.profile.orcid = ""
    alice.profile.save()
    client.force_login(alice)
    response = client.post(
        reverse("request_build"),
        {
            "project": registry["project"].pk,
            "tres": [tre_a.pk],
            "title": "x",
            "workflow": registry["workflow"].pk,
        },
    )
    assert "Add your ORCID iD" in response.content.decode()
    assert not Request.objects.exists()


def test_builder_refuses_malformed_parameters(client, alice, tre_a, registry):
    client.force_login(alice)
    response = client.post(
        reverse("request_build"),
        {
            "project": registry["project"].pk,
            "tres": [tre_a.pk],
            "title": "x",
            "workflow": registry["workflow"].pk,
            "parameters": "no equals sign here",
        },
    )
    assert "Line 1 is not name=value" in response.content.decode()

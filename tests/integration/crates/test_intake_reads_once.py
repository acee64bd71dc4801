"""Intake reads each byte of a crate once: hashed as it arrives, moved into storage, checked where it lies."""

import hashlib
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.test import RequestFactory
from django.urls import reverse

from crates import services
from crates.models import Request, RequestVersion
from tests import cratekit

pytestmark = pytest.mark.django_db


def _big_crate(tmp_path, registry):
    """A valid crate whose ZIP is larger than the in-memory upload limit (incompressible payload)."""
    dataset = registry["dataset"]
    metadata = cratekit.request_metadata(
        orcid="0000-0002-1825-0097",
        project_identifier=registry["project"].identifier,
        workflow_id=registry["workflow"].workflow_id,
        datasets=[(dataset.identifier, dataset.name)],
    )
    files = {"input1.txt": os.urandom(settings.FILE_UPLOAD_MAX_MEMORY_SIZE + 512 * 1024)}
    zip_path = cratekit.make_crate_zip(tmp_path / "big.zip", metadata, files)
    assert zip_path.stat().st_size > settings.FILE_UPLOAD_MAX_MEMORY_SIZE
    return zip_path


@pytest.mark.parametrize("size", ["small", "large"])
def test_an_upload_is_hashed_as_it_arrives(tmp_path, registry, crate_zip, size):
    zip_path = crate_zip if size == "small" else _big_crate(tmp_path, registry)
    with zip_path.open("rb") as handle:
        request = RequestFactory().post("/", {"crate": handle})
    upload = request.FILES["crate"]
    request.close()
    assert upload.sha256 == hashlib.sha256(zip_path.read_bytes()).hexdigest()
    assert upload.size == zip_path.stat().st_size
    assert hasattr(upload, "temporary_file_path") is (size == "large")
    upload.close()


def test_a_large_crate_submitted_over_http_is_stored_and_checked_in_place(
    client, alice, tre_a, registry, tmp_path, django_capture_on_commit_callbacks
):
    zip_path = _big_crate(tmp_path, registry)
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True), zip_path.open("rb") as handle:
        response = client.post(
            reverse("request_create"),
            {"project": registry["project"].pk, "tres": [tre_a.pk], "title": "Big", "crate": handle},
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    version = Request.objects.get().versions.get()
    assert version.status == RequestVersion.Status.VALID, version.validation_report
    content = zip_path.read_bytes()
    assert (version.sha256, version.size) == (hashlib.sha256(content).hexdigest(), len(content))
    with default_storage.open(version.crate.name, "rb") as stored:
        assert stored.read() == content
    # Checked where it is stored: the storage's own file, not a copy.
    with services.stored_path(version.crate) as path:
        assert path == Path(version.crate.path)
    # Uploaded files stored with the permissions file storage gives them.
    assert (os.stat(version.crate.path).st_mode & 0o777) == (settings.FILE_UPLOAD_PERMISSIONS or 0o644)


def test_a_crate_in_remote_storage_is_copied_once_and_the_copy_removed(tmp_path, crate_zip):
    """Storage without local paths (object stores): one temporary copy, gone afterwards."""
    from django.core.files import File

    with crate_zip.open("rb") as handle:
        field_like = File(handle, name=crate_zip.name)
        with services.stored_path(field_like) as path:
            assert path != crate_zip and path.read_bytes() == crate_zip.read_bytes()
            copy = path
    assert not copy.exists()

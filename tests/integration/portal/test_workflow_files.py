"""Officers read the workflow they approve: its files as a tree with a highlighted viewer, a download of
the crate, and what changed since the previously approved version."""

import hashlib
import shutil

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from agent.demo_workflows import AGE_SEX_TABLE, pack_workflow_crate
from portal import services
from portal.forms import WorkflowForm

pytestmark = pytest.mark.django_db

WORKFLOW_ID = "https://portal.example.org/workflows/age-sex"


def register(folder, version, by):
    packed = pack_workflow_crate(folder, folder.parent / f"v{version}.zip")
    form = WorkflowForm(
        {
            "name": "Persons by age band and sex",
            "workflow_id": WORKFLOW_ID,
            "version": version,
            "sha256": packed.sha256,
            "language": "cwl",
            "executor": "cwl",
        },
        {"crate": SimpleUploadedFile(packed.path.name, packed.path.read_bytes())},
    )
    assert form.is_valid(), form.errors
    return services.save_record(form, by=by, verb_prefix="workflow"), packed


@pytest.fixture
def versions(tmp_path, olivia, tre_a):
    first_dir = shutil.copytree(AGE_SEX_TABLE, tmp_path / "v1")
    first, _ = register(first_dir, "1", olivia)
    services.decide_workflow(
        services.request_workflow_approval(first, tre_a, by=olivia), "approved", by=olivia
    )
    second_dir = shutil.copytree(AGE_SEX_TABLE, tmp_path / "v2")
    script = second_dir / "count_by_age_sex.py"
    script.write_text(script.read_text() + "\n# Second version: also counts persons with no sex recorded.\n")
    (second_dir / "README.md").write_text("# Age and sex\n")
    second, packed = register(second_dir, "2", olivia)
    return first, second, packed


def test_the_files_page_shows_the_tree_and_the_main_workflow_highlighted(client, olivia, versions):
    first, second, _ = versions
    client.force_login(olivia)
    detail = client.get(reverse("workflow_detail", args=[second.pk])).content.decode()
    assert reverse("workflow_files", args=[second.pk]) in detail
    assert "reference_year (whole number, optional, default 2025)" in detail
    page = client.get(reverse("workflow_files", args=[second.pk])).content.decode()
    for name in ("age_sex_table.cwl", "count_by_age_sex.cwl", "count_by_age_sex.py", "README.md"):
        assert f">{name}</a>" in page
    assert 'aria-current="page">age_sex_table.cwl<' in page
    assert 'class="highlight"' in page and '<span class="linenos">' in page
    assert "reference_year" in page
    page = client.get(
        reverse("workflow_files", args=[second.pk]), {"path": "count_by_age_sex.py"}
    ).content.decode()
    assert '<span class="kn">import</span>' in page  # Python, highlighted as Python


def test_a_path_not_in_the_crate_is_not_found(client, olivia, versions):
    _, second, _ = versions
    client.force_login(olivia)
    for path in ("../portal.sqlite3", "/etc/passwd", "missing.cwl"):
        assert client.get(reverse("workflow_files", args=[second.pk]), {"path": path}).status_code == 404


def test_the_crate_downloads_as_approved(client, olivia, versions):
    _, second, packed = versions
    client.force_login(olivia)
    response = client.get(reverse("workflow_crate", args=[second.pk]))
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert hashlib.sha256(body).hexdigest() == packed.sha256 == response["X-Content-SHA256"]
    assert response["Content-Disposition"].startswith('attachment; filename="persons-by-age-band-and-sex-2')


def test_the_changes_since_the_previously_approved_version(client, olivia, versions):
    first, second, _ = versions
    client.force_login(olivia)
    page = client.get(reverse("workflow_diff", args=[second.pk])).content.decode()
    assert "Compared with version 1" in page
    assert "count_by_age_sex.py</a>: changed" in page
    assert "README.md</a>: added" in page
    assert "age_sex_table.cwl</a>" not in page  # unchanged files are not listed
    assert "Second version: also counts persons with no sex recorded." in page
    assert '<span class="gi">' in page  # the added lines, highlighted as a diff
    page = client.get(reverse("workflow_diff", args=[first.pk])).content.decode()
    assert "No earlier version of this workflow was approved" in page

"""Finding 1: a TRE agent's results crate cannot make the portal read or delete files outside the crate.

The agent uploads over HTTP as a hostile agent would: a results crate whose run declares names outside
the crate, or that holds a symbolic link. The whole crate is refused with 422 naming the entry, and
nothing is copied in as an output or deleted.
"""

import json
import stat
import zipfile

import pytest
from django.core.files.storage import default_storage

from agent.archive import safe_extract
from crates.fivesafes import writeback
from crates.models import Job, RequestVersion, ResultUpload
from reviews.models import OutputFile
from tests.dispatch_helpers import issue, queued_job, results_crate
from tests.integration.crates.test_agent_api import running, upload

pytestmark = pytest.mark.django_db

S = Job.Status


@pytest.fixture
def job(registry, alice, olivia, crate_zip, django_capture_on_commit_callbacks):
    return queued_job(registry, alice, olivia, crate_zip, django_capture_on_commit_callbacks)


@pytest.fixture
def agent(tre_a, olivia):
    return issue(tre_a, olivia)


@pytest.fixture
def secret_file(tmp_path):
    """A file on the portal's host the agent must never reach (the portal's .env, say)."""
    path = tmp_path / "host" / ".env"
    path.parent.mkdir()
    path.write_text("DJANGO_SECRET_KEY=do-not-leak\n")
    return path


def _declaring(job, tmp_path, names):
    """A results crate made by the reference agent, then edited to declare `names` as results too."""
    good = results_crate(job, tmp_path / "good.zip")
    safe_extract(good, tmp_path / "edit")
    bag = next((tmp_path / "edit").iterdir())
    doc = json.loads((bag / "data" / "ro-crate-metadata.json").read_text())
    run = next(e for e in doc["@graph"] if "CreateAction" in json.dumps(e.get("@type")))
    run["result"] = [*run["result"], *({"@id": n} for n in names)]
    doc["@graph"].extend({"@id": n, "@type": "File", "name": "stolen"} for n in names)
    writeback.write_metadata(bag, doc)
    return writeback.pack_bag(bag, tmp_path / "hostile.zip").read_bytes()


def _nothing_taken(job, secret_file):
    assert not ResultUpload.objects.filter(status="verified").exists()
    assert ResultUpload.objects.get().status == "rejected"
    assert not OutputFile.objects.exists()
    assert secret_file.read_text() == "DJANGO_SECRET_KEY=do-not-leak\n"
    assert not default_storage.exists("results") or not default_storage.listdir("results")[1]
    job.refresh_from_db()
    assert job.status == S.RUNNING


@pytest.mark.parametrize(
    "name",
    [
        "../../../../etc/hostname",
        "outputs/../../../../../etc/hostname",
        "SECRET",  # replaced by the absolute path of the secret file
        "outputs/..%2f..%2f..%2fetc%2fhostname",
        "outputs\\..\\..\\..\\etc\\hostname",
        "file:/etc/hostname",
        "outputs/NUL",
    ],
)
def test_a_results_crate_naming_anything_outside_is_refused_whole(
    client, job, agent, tmp_path, secret_file, name
):
    _, secret = agent
    token = running(client, secret, job.pk)
    if name == "SECRET":
        name = str(secret_file)
    data = _declaring(job, tmp_path, [name])

    response = upload(client, secret, job.pk, token, data)

    assert response.status_code == 422, response.content
    assert response.json()["code"] == "unsafe_path"
    assert name in response.json()["detail"]  # the refusal names the entry
    _nothing_taken(job, secret_file)


def test_a_results_crate_holding_a_symbolic_link_is_refused(client, job, agent, tmp_path, secret_file):
    _, secret = agent
    token = running(client, secret, job.pk)
    good = results_crate(job, tmp_path / "good.zip")
    hostile = tmp_path / "link.zip"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(hostile, "w") as target:
        for info in source.infolist():
            target.writestr(info, source.read(info))
        top = source.namelist()[0].split("/")[0]
        link = zipfile.ZipInfo(f"{top}/data/outputs/hostname")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        target.writestr(link, str(secret_file))

    response = upload(client, secret, job.pk, token, hostile.read_bytes())

    assert response.status_code == 422, response.content
    assert "outputs/hostname" in response.json()["detail"]
    _nothing_taken(job, secret_file)


def test_a_legitimate_results_crate_is_still_taken(client, job, agent, tmp_path):
    _, secret = agent
    token = running(client, secret, job.pk)
    response = upload(client, secret, job.pk, token, _declaring(job, tmp_path, []))
    assert response.status_code == 201, response.content


def test_a_request_crate_naming_a_file_outside_is_invalid_at_intake(
    client, registry, alice, tmp_path, django_capture_on_commit_callbacks
):
    from tests import cratekit

    metadata = cratekit.request_metadata(
        orcid="0000-0002-1825-0097",
        project_identifier=registry["project"].identifier,
        workflow_id=registry["workflow"].workflow_id,
        datasets=[(registry["dataset"].identifier, registry["dataset"].name)],
    )
    root = next(e for e in metadata["@graph"] if e.get("@id") == "./")
    root["hasPart"] = [*root.get("hasPart", []), {"@id": "../../../etc/passwd"}]
    metadata["@graph"].append({"@id": "../../../etc/passwd", "@type": "File", "name": "passwd"})
    crate = cratekit.make_crate_zip(tmp_path / "request.zip", metadata, cratekit.input_files())
    client.force_login(alice)
    project = registry["project"]
    with django_capture_on_commit_callbacks(execute=True), crate.open("rb") as handle:
        response = client.post(
            "/api/v1/requests/",
            {
                "project": project.identifier,
                "tres": [project.approvals.get().tre.slug],
                "title": "Reads the host",
                "crate": handle,
            },
        )
    assert response.status_code in (201, 202), response.content
    version = RequestVersion.objects.get()
    assert version.status == "invalid"
    assert "../../../etc/passwd" in json.dumps(version.validation_report)

"""Projects choose which released outputs their public page shows; the public can download them."""

import pytest
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crates.models import Job
from portal.audit import AuditEvent
from reviews import outputs
from reviews.models import PublicOutput
from tests import builders
from transparency import dur

pytestmark = pytest.mark.django_db

S = Job.Status
TABLE = b"age_band,female,male\n18-39,120,131\n40-64,210,198\n"


@pytest.fixture
def release(new_job, tmp_path, cam, chris, django_capture_on_commit_callbacks):
    """Release `names` (safe tables) from a new job; returns the released OutputFiles by name."""

    def make(*names):
        job = new_job(S.QUEUED)
        (tmp_path / str(job.pk)).mkdir()
        upload = builders.return_results(job, {n: TABLE for n in names}, tmp_path=tmp_path / str(job.pk))
        outputs.check_outputs(upload.pk)
        released = {}
        for output in job.outputs.all():
            outputs.vote(output, "approve", by=cam)
            outputs.vote(output, "approve", by=chris)
            outputs.release(output, by=cam)
            output.refresh_from_db()
            released[output.name] = output
        return released

    return make


def test_the_lead_publishes_a_released_output_and_the_public_downloads_it(client, release, bob):
    output = release("by_age.csv")["by_age.csv"]
    project = output.job.request.project
    page = reverse("public_project_detail", args=[project.identifier])
    assert "Age and sex of the cohort" not in client.get(page).content.decode()

    outputs.publish_output(output, title="Age and sex of the cohort", summary="Counts by age band.", by=bob)

    cache.clear()
    shown = client.get(page).content.decode()
    assert "Age and sex of the cohort" in shown and "Counts by age band." in shown
    url = reverse("public_output_download", args=[output.pk, "by_age.csv"])
    assert url in shown
    download = client.get(url)
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == TABLE
    assert 'attachment; filename="by_age.csv"' in download["Content-Disposition"]
    assert AuditEvent.objects.filter(verb="outputs.published", object_id=str(output.pk)).exists()
    entry = dur.dur_entry(project)
    assert entry["non_gateway_outputs"][0].endswith(url)


def test_only_the_lead_publishes_and_only_released_files(release, new_job, tmp_path, alice, bob, cam):
    output = release("by_age.csv")["by_age.csv"]
    with pytest.raises(PermissionDenied, match="lead"):
        outputs.publish_output(output, title="Mine", by=alice)
    with pytest.raises(PermissionDenied):
        outputs.publish_output(output, title="Mine", by=cam)
    with pytest.raises(ValidationError):
        outputs.publish_output(output, title="  ", by=bob)
    job = new_job(S.QUEUED)
    (tmp_path / "pending").mkdir()
    upload = builders.return_results(job, {"raw.csv": TABLE}, tmp_path=tmp_path / "pending")
    outputs.check_outputs(upload.pk)
    pending = job.outputs.get()
    with pytest.raises(PermissionDenied, match="Only a released output"):
        outputs.publish_output(pending, title="Too soon", by=bob)
    assert not PublicOutput.objects.exists()


def test_taking_an_output_off_the_public_page(client, release, bob):
    output = release("by_age.csv")["by_age.csv"]
    outputs.publish_output(output, title="Cohort table", by=bob)
    url = reverse("public_output_download", args=[output.pk, "by_age.csv"])
    download = client.get(url)
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == TABLE
    outputs.unpublish_output(output, by=bob)
    assert client.get(url).status_code == 404
    cache.clear()
    page = client.get(reverse("public_project_detail", args=[output.job.request.project.identifier]))
    assert "Cohort table" not in page.content.decode()
    assert AuditEvent.objects.filter(verb="outputs.unpublished").count() == 1


def test_download_needs_the_published_name_and_a_published_file(client, release, bob):
    files = release("by_age.csv", "other.csv")
    outputs.publish_output(files["by_age.csv"], title="Cohort table", by=bob)
    assert (
        client.get(reverse("public_output_download", args=[files["by_age.csv"].pk, "x.csv"])).status_code
        == 404
    )
    other = reverse("public_output_download", args=[files["other.csv"].pk, "other.csv"])
    assert client.get(other).status_code == 404


def test_the_lead_publishes_from_the_outputs_page(client, release, bob, alice):
    output = release("by_age.csv")["by_age.csv"]
    url = reverse("job_outputs", args=[output.job_id])
    client.force_login(alice)
    assert "Show on the project's public page" not in client.get(url).content.decode()
    client.force_login(bob)
    assert "Show on the project's public page" in client.get(url).content.decode()
    client.post(reverse("output_publish", args=[output.pk]), {"title": "Counts by age", "summary": ""})
    assert PublicOutput.objects.get().title == "Counts by age"
    assert "Shown on the project's public page" in client.get(url).content.decode()
    client.post(reverse("output_unpublish", args=[output.pk]))
    assert not PublicOutput.objects.exists()


def test_public_pages_read_published_outputs_in_constant_queries(client, release, bob):
    first = release("a.csv")["a.csv"]
    project = first.job.request.project
    outputs.publish_output(first, title="Table A", by=bob)
    urls = [
        reverse("public_project_detail", args=[project.identifier]),
        reverse("public_dur_download", args=["json"]),
    ]

    def counts():
        found = []
        for url in urls:
            cache.clear()
            with CaptureQueriesContext(connection) as captured:
                assert client.get(url).status_code == 200
            found.append(len(captured))
        return found

    counts()  # warm per-process caches
    small = counts()
    for name, output in release("b.csv", "c.csv", "d.csv").items():
        outputs.publish_output(output, title=f"Table {name}", by=bob)
    assert counts() == small
    cache.clear()
    links = client.get(urls[1]).json()["data_uses"][0]["non_gateway_outputs"]
    assert len(links) == 4 and all("/public/outputs/" in link for link in links)

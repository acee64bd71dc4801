"""Edit and resubmit: the builder opens filled from the last version, the new crate is the next version,
officers see the researcher's message and what changed (files by checksum), and the step decisions
whose inputs did not change carry over while the others are decided again, with the reasons shown."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crates.models import Job, RequestVersion
from portal import workflow_inputs
from reviews import services as review_services
from reviews.models import CarryOver, Step, StepDecision

pytestmark = pytest.mark.django_db

DECLARED = [
    {"name": "min_age", "type": "int", "required": True},
    {"name": "codes", "type": "File", "required": True},
]


@pytest.fixture
def first_version(client, alice, olivia, tre_a, registry, django_capture_on_commit_callbacks):
    """Version 1 built in the portal; olivia approved People, Project and Data, asked for changes in Settings."""
    workflow = registry["workflow"]
    workflow.inputs = workflow_inputs.parse(json.dumps(DECLARED))
    workflow.save()
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("request_build"),
            {
                "project": registry["project"].pk,
                "tres": [tre_a.pk],
                "title": "Recovery by age",
                "description": "First go",
                "workflow": workflow.pk,
                "datasets": [registry["dataset"].pk],
                "input_min_age": "18",
                "input_codes": SimpleUploadedFile("codes.txt", b"E11\n"),
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    job = Job.objects.get()
    review_services.start_review(job, by=olivia)
    for step in (Step.SAFE_PEOPLE, Step.SAFE_PROJECT, Step.SAFE_DATA):
        review_services.decide_step(job, step, "approve", "Checked by hand.", by=olivia)
    review_services.decide_step(job, Step.SAFE_SETTINGS, "changes", "Use adults from 21.", by=olivia)
    job.refresh_from_db()
    assert job.status == "changes_requested"
    return job


def resubmit(client, req, capture, **fields):
    """Post the edit form as the browser sends it: the prefilled values, with `fields` changed."""
    version = req.versions.get(number=1)
    data = {
        "title": req.title,
        "description": req.description,
        "workflow": version.crosscheck["workflow_pk"],
        "datasets": list(req.jobs.get().datasets.values_list("pk", flat=True)),
        "message": "Minimum age is now 21 as asked.",
        **fields,
    }
    with capture(execute=True):
        return client.post(reverse("request_edit", args=[req.pk]), data)


def test_the_builder_opens_filled_from_the_last_version(client, alice, first_version):
    req = first_version.request
    page = client.get(req.get_absolute_url()).content.decode()
    assert reverse("request_edit", args=[req.pk]) in page
    page = client.get(reverse("request_edit", args=[req.pk])).content.decode()
    assert 'name="input_min_age"' in page and 'value="18"' in page
    assert 'value="Recovery by age"' in page
    assert "Leave empty to keep codes.txt from the last version." in page
    assert "What you changed" in page


def test_resubmitting_carries_over_untouched_approvals_and_resets_the_step_that_asked(
    client, alice, olivia, first_version, django_capture_on_commit_callbacks
):
    req = first_version.request
    response = resubmit(client, req, django_capture_on_commit_callbacks, input_min_age="21")
    assert response.status_code == 302, response.content.decode()[:3000]
    version = req.versions.get(number=2)
    assert version.status == RequestVersion.Status.VALID, version.validation_report
    assert version.message == "Minimum age is now 21 as asked."
    inputs = {i["name"]: i for i in version.summary["inputs"]}
    assert inputs["min_age"]["value"] == "21"
    v1_codes = {i["name"]: i for i in req.versions.get(number=1).summary["inputs"]}["codes"]
    assert inputs["codes"]["checksum"] == v1_codes["checksum"]  # the file was kept as it was

    job = Job.objects.get()
    assert job.status == "awaiting_review" and job.version == version
    carried = {d.step: d for d in StepDecision.objects.filter(job=job, version=version)}
    assert set(carried) == {Step.SAFE_PEOPLE, Step.SAFE_PROJECT, Step.SAFE_DATA}
    assert all(d.carried_from.version.number == 1 and d.decided_by == olivia for d in carried.values())
    plan = {s["step"]: s for s in CarryOver.objects.get(job=job, version=version).steps}
    assert not plan[Step.SAFE_SETTINGS]["carried"]
    assert plan[Step.SAFE_SETTINGS]["reason"] == "This step asked for the changes, so it is decided again."

    client.force_login(olivia)
    page = client.get(job.get_absolute_url()).content.decode()
    assert "Minimum age is now 21 as asked." in page
    assert "Input min_age changed from &#x27;18&#x27; to &#x27;21&#x27;" in page
    assert "Carried over" in page and "To decide again" in page
    assert "the people named did not change" in page
    # Only Safe Settings (and the sign-off) are left to decide.
    review_services.start_review(job, by=olivia)
    page = client.get(job.get_absolute_url()).content.decode()
    assert page.count("Record decision") == 2


def test_a_changed_file_is_found_by_its_checksum_and_resets_safe_settings(
    client, alice, olivia, first_version, django_capture_on_commit_callbacks
):
    req = first_version.request
    # Same file name and same other inputs: only the content differs.
    resubmit(
        client,
        req,
        django_capture_on_commit_callbacks,
        input_min_age="18",
        input_codes=SimpleUploadedFile("codes.txt", b"E11\nE12\n"),
    )
    job = Job.objects.get()
    plan = {s["step"]: s for s in CarryOver.objects.get(job=job).steps}
    client.force_login(olivia)
    page = client.get(job.get_absolute_url()).content.decode()
    assert "Input codes: the file codes.txt has different contents (checksum sha512:" in page
    assert plan[Step.SAFE_PEOPLE]["carried"] and plan[Step.SAFE_DATA]["carried"]
    assert not plan[Step.SAFE_SETTINGS]["carried"]


def test_a_step_whose_inputs_changed_is_decided_again_and_the_page_says_why(
    client, alice, olivia, tre_a, first_version, registry, django_capture_on_commit_callbacks
):
    from tests import factories

    other = factories.DatasetFactory(tre=tre_a, name="Second dataset")
    req = first_version.request
    resubmit(
        client,
        req,
        django_capture_on_commit_callbacks,
        input_min_age="21",
        datasets=[registry["dataset"].pk, other.pk],
    )
    job = Job.objects.get()
    plan = {s["step"]: s for s in CarryOver.objects.get(job=job).steps}
    assert not plan[Step.SAFE_DATA]["carried"]
    assert plan[Step.SAFE_DATA]["reason"].startswith("What it rests on changed (the datasets requested): ")
    assert f"Dataset added: {other.identifier}" in plan[Step.SAFE_DATA]["reason"]
    assert plan[Step.SAFE_PEOPLE]["carried"] and plan[Step.SAFE_PROJECT]["carried"]


def test_only_members_edit_and_only_after_changes_were_asked_for(client, bob, olivia, first_version):
    client.force_login(olivia)
    assert client.get(reverse("request_edit", args=[first_version.request.pk])).status_code == 403


def test_the_builder_does_not_open_while_no_tre_asks_for_changes(client, alice, new_job):
    job = new_job()
    client.force_login(alice)
    response = client.get(reverse("request_edit", args=[job.request_id]))
    assert response.status_code == 302 and response.url == job.request.get_absolute_url()
    page = client.get(response.url).content.decode()
    assert "No TRE has asked for changes, so there is nothing to resubmit." in page


def test_a_workflow_without_declared_inputs_keeps_its_parameters_and_files(
    client, alice, olivia, tre_a, registry, django_capture_on_commit_callbacks
):
    client.force_login(alice)
    fields = {
        "project": registry["project"].pk,
        "tres": [tre_a.pk],
        "title": "Free-form",
        "workflow": registry["workflow"].pk,
        "datasets": [registry["dataset"].pk],
    }
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("request_build"),
            {**fields, "parameters": "min_age=18", "inputs": [SimpleUploadedFile("codes.txt", b"E11\n")]},
        )
    job = Job.objects.get()
    review_services.start_review(job, by=olivia)
    review_services.decide_step(job, Step.SAFE_PEOPLE, "changes", "Name your co-author.", by=olivia)
    req = job.request
    page = client.get(reverse("request_edit", args=[req.pk])).content.decode()
    assert "min_age=18" in page
    assert "Kept from the last version unless you add a file for the same input: codes.txt." in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("request_edit", args=[req.pk]),
            {**fields, "parameters": "min_age=18", "message": "Co-author named."},
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    before, after = ({i["name"]: i for i in req.versions.get(number=n).summary["inputs"]} for n in (1, 2))
    assert after["codes"]["checksum"] == before["codes"]["checksum"]
    assert after["min_age"]["value"] == "18"
    plan = {s["step"]: s["carried"] for s in CarryOver.objects.get(job=job).steps}
    assert plan == {"safe_people": False, "safe_project": False, "safe_data": False, "safe_settings": False}

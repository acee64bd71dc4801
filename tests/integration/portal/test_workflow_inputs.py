"""Typed workflow inputs: declared from the CWL (or by hand) when a workflow is registered, rendered as
fields by the request builder, and checked at submission by the form, the API and crate intake."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from agent.demo_workflows import AGE_SEX_TABLE, pack_workflow_crate
from crates import services
from crates.models import Request, RequestVersion
from portal import workflow_inputs
from portal.forms import WorkflowForm

pytestmark = pytest.mark.django_db

DECLARED = [
    {"name": "min_age", "type": "int", "required": True, "description": "Youngest age included"},
    {"name": "sex", "type": "string", "required": False, "allowed": ["F", "M"], "default": None},
    {"name": "fast", "type": "boolean", "required": False, "default": False},
    {"name": "codes", "type": "File", "required": True, "description": "Diagnosis codes, one a line"},
]


@pytest.fixture
def declared(registry):
    workflow = registry["workflow"]
    workflow.inputs = workflow_inputs.parse(json.dumps(DECLARED))
    workflow.save()
    return workflow


def build(client, registry, tre_a, **extra):
    data = {
        "project": registry["project"].pk,
        "tres": [tre_a.pk],
        "title": "Typed inputs",
        "workflow": registry["workflow"].pk,
        "datasets": [registry["dataset"].pk],
        **extra,
    }
    return client.post(reverse("request_build"), data)


def test_registering_a_cwl_workflow_reads_its_inputs_leaving_out_the_tres_dataset(tmp_path):
    packed = pack_workflow_crate(AGE_SEX_TABLE, tmp_path / "age-sex.zip")
    form = WorkflowForm(
        {
            "name": "Persons by age band and sex",
            "workflow_id": "https://portal.example.org/workflows/age-sex",
            "version": "1",
            "sha256": packed.sha256,
            "language": "cwl",
            "executor": "cwl",
        },
        {"crate": SimpleUploadedFile("age-sex.zip", packed.path.read_bytes())},
    )
    assert form.is_valid(), form.errors
    workflow = form.save()
    assert workflow.inputs == [
        {
            "name": "reference_year",
            "type": "int",
            "required": False,
            "default": 2025,
            "allowed": [],
            "description": "Age is computed as reference_year minus year of birth",
        }
    ]


def test_inputs_given_at_registration_are_checked():
    form = WorkflowForm({"declared_inputs": '[{"name": "n", "type": "integer"}]'})
    assert not form.is_valid()
    assert "the type must be one of" in str(form.errors["declared_inputs"])


def test_cwl_types_optional_enums_and_lists():
    declared = workflow_inputs.from_cwl(
        """
cwlVersion: v1.2
class: Workflow
inputs:
  - id: threshold
    type: double?
  - id: region
    type: {type: enum, symbols: [north, south]}
    doc: Where
  - id: dataset
    type: File
outputs: []
steps: []
"""
    )
    assert [(d["name"], d["type"], d["required"], d["allowed"]) for d in declared] == [
        ("threshold", "float", False, []),
        ("region", "string", True, ["north", "south"]),
    ]


def test_the_builder_renders_the_declared_inputs_as_fields(client, alice, declared):
    client.force_login(alice)
    page = client.get(reverse("request_build"), {"workflow": declared.pk}).content.decode()
    assert 'name="input_min_age"' in page and 'inputmode="numeric"' in page
    assert 'name="input_codes"' in page and 'type="file"' in page
    assert '<option value="F">F</option>' in page
    assert "Youngest age included" in page
    # Free name=value parameters are for workflows that declare nothing.
    assert 'name="parameters"' not in page


def test_the_builder_refuses_missing_and_wrong_inputs_with_clear_messages(
    client, alice, tre_a, registry, declared
):
    client.force_login(alice)
    page = build(client, registry, tre_a).content.decode()
    assert "min_age is required (whole number)." in page
    assert "codes is required: attach the file." in page
    page = build(
        client,
        registry,
        tre_a,
        input_min_age="eighteen",
        input_sex="X",
        input_codes=SimpleUploadedFile("codes.txt", b"E11\n"),
    ).content.decode()
    assert "min_age must be a whole number; &#x27;eighteen&#x27; is not." in page
    assert "Select a valid choice." in page or "sex must be one of F, M" in page
    assert not Request.objects.exists()


def test_the_builder_submits_typed_values(
    client, alice, tre_a, registry, declared, django_capture_on_commit_callbacks
):
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = build(
            client,
            registry,
            tre_a,
            input_min_age=" 18 ",
            input_fast="true",
            input_codes=SimpleUploadedFile("codes.txt", b"E11\nE12\n"),
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    version = RequestVersion.objects.get()
    assert version.status == "valid", version.validation_report
    inputs = {i["name"]: i for i in version.summary["inputs"]}
    assert inputs["min_age"]["value"] == "18" and inputs["fast"]["value"] == "True"
    assert inputs["codes"]["checksum"].startswith("sha512:")
    assert "sex" not in inputs  # optional and not given: the workflow's default applies


def test_the_api_refuses_missing_wrong_and_unknown_inputs(client, alice, tre_a, registry, declared):
    client.force_login(alice)
    url = reverse("api_request_build")
    body = {
        "project": registry["project"].identifier,
        "tres": [tre_a.slug],
        "title": "By API",
        "workflow": declared.pk,
        "datasets": [registry["dataset"].identifier],
    }
    response = client.post(url, {**body, "inputs": {"min_age": "old"}}, content_type="application/json")
    assert response.status_code == 400
    errors = response.json()["errors"]["inputs"]
    assert errors["min_age"] == ["min_age must be a whole number; 'old' is not."]
    assert errors["codes"] == ["codes is required: attach the file."]
    response = client.post(
        url, {**body, "inputs": {"min_age": 18, "colour": "red"}}, content_type="application/json"
    )
    assert response.status_code == 400
    assert (
        "has no input called 'colour'; it takes codes, fast, min_age, sex."
        in response.json()["errors"]["inputs"]["colour"][0]
    )
    assert not Request.objects.exists()


def test_the_api_builds_and_submits_with_a_file_input(
    client, alice, tre_a, registry, declared, django_capture_on_commit_callbacks
):
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("api_request_build"),
            {
                "project": registry["project"].identifier,
                "tres": [tre_a.slug],
                "title": "By API",
                "workflow": declared.pk,
                "inputs": json.dumps({"min_age": 21, "sex": "F"}),
                "input_codes": SimpleUploadedFile("codes.txt", b"E11\n"),
            },
        )
    assert response.status_code == 201, response.content.decode()[:2000]
    version = RequestVersion.objects.get()
    assert version.status == "valid", version.validation_report
    assert {i["name"]: i.get("value") for i in version.summary["inputs"]} == {
        "min_age": "21",
        "sex": "F",
        "codes": None,
    }


def test_an_uploaded_crate_with_inputs_its_workflow_does_not_take_is_not_accepted(
    registry, alice, tre_a, crate_zip, django_capture_on_commit_callbacks
):
    workflow = registry["workflow"]
    workflow.inputs = workflow_inputs.parse('[{"name": "min_age", "type": "int"}]')
    workflow.save()
    upload = SimpleUploadedFile(crate_zip.name, crate_zip.read_bytes(), content_type="application/zip")
    with django_capture_on_commit_callbacks(execute=True):
        request = services.submit_request(
            by=alice, project=registry["project"], tres=[tre_a], title="Hand-made", upload=upload
        )
    version = request.versions.get()
    assert version.status == "invalid"
    message = version.validation_report["refusal"]["message"]
    assert message.startswith(f"The inputs do not fit {workflow}:")
    assert "min_age is required (whole number)." in message
    assert "has no input called '--fast-mode'" in message
    assert not request.jobs.exists()

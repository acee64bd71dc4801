"""Approving a DataSHIELD or Bitfount workflow fixes what it may use at the TRE (Safe Settings)."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from portal import service_settings, services
from portal.audit import AuditEvent
from portal.models import Decision
from tests import factories

DATASHIELD = {"profile": "default", "functions": "meanDS\nlengthDS, tableDS\n\nmeanDS"}
BITFOUNT = {
    "pods": "acme/hospital-pod\n acme/gp-pod ",
    "task": {"algorithm": "bitfount.SqlQuery", "protocol": "bitfount.ResultsOnly"},
    "project_id": "proj-1",
}


def test_datashield_settings_are_normalised():
    assert service_settings.clean("datashield", DATASHIELD) == {
        "profile": "default",
        "functions": ["lengthDS", "meanDS", "tableDS"],
    }


def test_bitfount_settings_are_normalised():
    assert service_settings.clean("bitfount", BITFOUNT) == {
        "pods": ["acme/gp-pod", "acme/hospital-pod"],
        "task": {"algorithm": "bitfount.SqlQuery", "protocol": "bitfount.ResultsOnly"},
        "project_id": "proj-1",
    }


@pytest.mark.parametrize(
    ("executor", "data", "field"),
    [
        ("datashield", {"functions": ["meanDS"]}, "profile"),
        ("datashield", {"profile": "default", "functions": ""}, "functions"),
        ("datashield", {"profile": "default", "functions": ["dsBase::meanDS"]}, "functions"),
        ("datashield", {"profile": "default", "functions": ["meanDS(D$AGE)"]}, "functions"),
        ("datashield", {"profile": "../etc", "functions": ["meanDS"]}, "profile"),
        ("bitfount", {**BITFOUNT, "pods": "no-owner"}, "pods"),
        ("bitfount", {**BITFOUNT, "pods": []}, "pods"),
        (
            "bitfount",
            {**BITFOUNT, "task": {"algorithm": "", "protocol": "bitfount.ResultsOnly"}},
            "algorithm",
        ),
        ("bitfount", {**BITFOUNT, "task": {"algorithm": "bitfount.SqlQuery", "protocol": "x y"}}, "protocol"),
        ("bitfount", {**BITFOUNT, "task": "bitfount.SqlQuery"}, "algorithm"),
        ("bitfount", {**BITFOUNT, "project_id": "a b"}, "project_id"),
    ],
)
def test_incomplete_or_malformed_settings_are_refused_by_field(executor, data, field):
    with pytest.raises(ValidationError) as refused:
        service_settings.clean(executor, data)
    assert field in refused.value.message_dict


def test_other_executors_take_no_settings():
    assert service_settings.clean("cwl", {"profile": "x"}) == {}
    assert service_settings.describe("cwl", {}) == ""


def test_descriptions_name_the_service_profile_and_pods():
    ds = service_settings.describe("datashield", service_settings.clean("datashield", DATASHIELD))
    assert ds == "DataSHIELD profile default; approved functions: lengthDS, meanDS, tableDS."
    bf = service_settings.describe("bitfount", service_settings.clean("bitfount", BITFOUNT))
    assert "acme/gp-pod, acme/hospital-pod" in bf and "bitfount.SqlQuery" in bf and "proj-1" in bf


@pytest.mark.django_db
def test_approving_a_datashield_workflow_needs_its_settings_and_audits_them(tre_a, olivia):
    workflow = factories.WorkflowFactory(executor="datashield", language="r")
    approval = services.request_workflow_approval(workflow, tre_a, by=olivia)
    with pytest.raises(ValidationError):
        services.decide_workflow(approval, Decision.APPROVED, by=olivia)
    approval.refresh_from_db()
    assert approval.status == Decision.PENDING and approval.service_settings == {}

    services.decide_workflow(approval, Decision.APPROVED, by=olivia, settings=DATASHIELD)
    approval.refresh_from_db()
    assert approval.status == Decision.APPROVED
    assert approval.service_settings["functions"] == ["lengthDS", "meanDS", "tableDS"]
    event = AuditEvent.objects.get(verb="workflow.approved")
    assert event.after["service_settings"] == approval.service_settings


@pytest.mark.django_db
def test_refusing_needs_no_settings(tre_a, olivia):
    workflow = factories.WorkflowFactory(executor="bitfount")
    approval = services.request_workflow_approval(workflow, tre_a, by=olivia)
    services.decide_workflow(approval, Decision.REFUSED, "Pods not registered", by=olivia)
    approval.refresh_from_db()
    assert approval.status == Decision.REFUSED and approval.service_settings == {}


@pytest.mark.django_db
def test_officer_approves_a_bitfount_workflow_with_its_pods_in_the_browser(client, tre_a, olivia):
    workflow = factories.WorkflowFactory(executor="bitfount")
    approval = services.request_workflow_approval(workflow, tre_a, by=olivia)
    client.force_login(olivia)
    page = client.get(reverse("workflow_detail", args=[workflow.pk])).content.decode()
    assert 'name="service_pods"' in page and 'name="service_algorithm"' in page

    missing = client.post(
        reverse("workflow_decide", args=[approval.pk]), {"decision": "approved"}, follow=True
    )
    assert "owner/pod" in missing.content.decode()
    approval.refresh_from_db()
    assert approval.status == Decision.PENDING

    client.post(
        reverse("workflow_decide", args=[approval.pk]),
        {
            "decision": "approved",
            "service_pods": "acme/hospital-pod",
            "service_algorithm": "bitfount.SqlQuery",
            "service_protocol": "bitfount.ResultsOnly",
        },
    )
    approval.refresh_from_db()
    assert approval.status == Decision.APPROVED
    assert approval.service_settings["pods"] == ["acme/hospital-pod"]
    shown = client.get(reverse("workflow_detail", args=[workflow.pk])).content.decode()
    assert "Bitfount pods: acme/hospital-pod" in shown


@pytest.mark.django_db
def test_officer_approves_a_cwl_workflow_with_its_container_digest_in_the_browser(client, tre_a, olivia):
    digest = "sha256:" + "ab" * 32
    workflow = factories.WorkflowFactory(executor="cwl")
    approval = services.request_workflow_approval(workflow, tre_a, by=olivia)
    client.force_login(olivia)
    page = client.get(reverse("workflow_detail", args=[workflow.pk])).content.decode()
    assert 'name="service_containers"' in page

    bad = client.post(
        reverse("workflow_decide", args=[approval.pk]),
        {"decision": "approved", "service_containers": "alpine:latest"},
        follow=True,
    )
    assert "Not valid container image digests" in bad.content.decode()
    approval.refresh_from_db()
    assert approval.status == Decision.PENDING

    client.post(
        reverse("workflow_decide", args=[approval.pk]),
        {"decision": "approved", "service_containers": f"{digest}\n"},
    )
    approval.refresh_from_db()
    assert approval.status == Decision.APPROVED
    assert approval.service_settings == {"containers": [digest]}
    shown = client.get(reverse("workflow_detail", args=[workflow.pk])).content.decode()
    assert f"Container images it may run (by digest): {digest}" in shown


def test_a_cwl_approval_without_containers_records_none():
    assert service_settings.clean("cwl", {"containers": ""}) == {}
    assert service_settings.clean("cwl", None) == {}
    assert service_settings.describe("cwl", {}) == ""

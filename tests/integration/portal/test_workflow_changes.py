"""Finding 8: any officer could change a workflow pending approval at another TRE. Now a workflow awaiting
a decision at a TRE is changed only by that TRE's officers, and a change after any approval is a new
version that needs approval again (the approved one stays as it was)."""

import pytest
from django.urls import reverse

from portal import services
from portal.audit import AuditEvent
from portal.models import ApprovedWorkflow
from tests import factories

pytestmark = pytest.mark.django_db


def _form(workflow, **changes):
    data = {
        "name": workflow.name,
        "workflow_id": workflow.workflow_id,
        "version": workflow.version,
        "sha256": workflow.sha256,
        "language": workflow.language,
        "executor": workflow.executor,
        "description": workflow.description,
    }
    data.update(changes)
    return data


@pytest.fixture
def pending_at_a(tre_a, olivia):
    workflow = factories.WorkflowFactory(name="Cohort counts")
    services.request_workflow_approval(workflow, tre_a, by=olivia)
    return workflow


def test_an_officer_of_another_tre_cannot_change_a_workflow_pending_here(client, oscar, pending_at_a):
    client.force_login(oscar)
    assert client.get(reverse("workflow_edit", args=[pending_at_a.pk])).status_code == 403
    answer = client.post(
        reverse("workflow_edit", args=[pending_at_a.pk]), _form(pending_at_a, sha256="b" * 64)
    )
    assert answer.status_code == 403
    pending_at_a.refresh_from_db()
    assert pending_at_a.sha256 == "a" * 64
    assert not AuditEvent.objects.filter(verb="workflow.updated").exists()


def test_the_tres_own_officer_changes_it_while_pending(client, olivia, pending_at_a):
    client.force_login(olivia)
    answer = client.post(
        reverse("workflow_edit", args=[pending_at_a.pk]), _form(pending_at_a, sha256="b" * 64)
    )
    assert answer.status_code == 302
    pending_at_a.refresh_from_db()
    assert pending_at_a.sha256 == "b" * 64
    assert pending_at_a.approvals.get().status == "pending"


def test_a_change_after_approval_is_a_new_version_that_needs_approval_again(client, olivia, workflow, tre_a):
    client.force_login(olivia)
    page = client.get(reverse("workflow_edit", args=[workflow.pk])).content.decode()
    assert "needs approval again" in page
    same = client.post(reverse("workflow_edit", args=[workflow.pk]), _form(workflow, sha256="c" * 64))
    assert same.status_code == 200
    assert "give the changed workflow a new version" in same.content.decode()
    answer = client.post(
        reverse("workflow_edit", args=[workflow.pk]), _form(workflow, version="2", sha256="c" * 64)
    )
    assert answer.status_code == 302
    new = ApprovedWorkflow.objects.get(workflow_id=workflow.workflow_id, version="2")
    assert answer.url == reverse("workflow_detail", args=[new.pk])
    assert new.sha256 == "c" * 64
    assert list(new.approvals.values_list("tre__slug", "status")) == [(tre_a.slug, "pending")]
    workflow.refresh_from_db()
    assert (workflow.version, workflow.sha256) == ("1", "a" * 64)
    assert workflow.approvals.get().status == "approved"
    event = AuditEvent.objects.get(verb="workflow.new_version")
    assert event.before["version"] == "1" and event.after["version"] == "2"


def test_a_workflow_pending_at_two_tres_needs_an_officer_of_both(client, olivia, oscar, pending_at_a, tre_b):
    services.request_workflow_approval(pending_at_a, tre_b, by=oscar)
    client.force_login(olivia)
    answer = client.post(
        reverse("workflow_edit", args=[pending_at_a.pk]), _form(pending_at_a, sha256="d" * 64)
    )
    assert answer.status_code == 403
    pending_at_a.refresh_from_db()
    assert pending_at_a.sha256 == "a" * 64

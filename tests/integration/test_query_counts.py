"""List pages make the same number of queries however much data there is."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from guardian.shortcuts import assign_perm

from portal import audit
from tests import factories
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db


def _grow(n, *, viewer, tre):
    """Add n of everything that list pages show, visible to `viewer`."""
    for _ in range(n):
        project = factories.ProjectFactory()
        assign_perm("portal.view_project", viewer, project)
        membership = factories.MembershipFactory(project=project, status="active")
        project.approvals.create(tre=tre)
        membership.approvals.create(tre=tre)
        agreement = factories.AgreementFactory(project=project, tre=tre)
        agreement.datasets.add(factories.DatasetFactory(tre=tre))
        workflow = factories.WorkflowFactory()
        workflow.approvals.create(tre=tre)
        factories.OrganisationFactory()
        factories.AccreditationFactory(person=membership.person, verified_by=None, verified_at=None)
        audit.record("test.event", by=None, object_type="thing")


def _queries(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured)


LIST_PAGES = [
    ("project_list", (), "audrey"),
    ("project_directory", (), "alice"),
    ("agreement_list", (), "olivia"),
    ("workflow_list", (), "olivia"),
    ("organisation_list", (), "olivia"),
    ("tre_list", (), "olivia"),
    ("tre_detail", ("tre-a",), "olivia"),
    ("approvals_queue", ("tre-a",), "olivia"),
    ("audit_list", (), "audrey"),
    ("dashboard", (), "olivia"),
    ("api_project_list", (), "audrey"),
]


@pytest.mark.parametrize(("name", "args", "who"), LIST_PAGES)
def test_query_count_is_constant(client, request, name, args, who, tre_a, olivia, audrey, alice):
    viewer = request.getfixturevalue(who)
    sign_in(client, viewer)  # the real sign-in: the API serves privileged people after the second factor
    url = reverse(name, args=args)
    _grow(3, viewer=viewer, tre=tre_a)
    client.get(url)  # warm the per-process caches (content types) first
    small = _queries(client, url)
    _grow(12, viewer=viewer, tre=tre_a)
    large = _queries(client, url)
    assert large == small, f"{name}: {small} queries with 3 of each, {large} with 15"

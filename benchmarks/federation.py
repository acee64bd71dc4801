"""A small federation built through the portal's services, as the tests build theirs (tests/conftest.py).

alice researcher, bob project lead, olivia officer of TRE A, cam and chris output checkers of TRE A,
audrey auditor, admin federation admin; one project approved at TRE A with an agreement in force,
and one approved CWL workflow. Needs Django set up (``benchmarks.common.setup_django``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TOTP_SECRET = "JBSWY3DPEHPK3PXP"  # noqa: S105 - the tests' fixed secret, for scratch users


@dataclass
class Federation:
    tre: Any
    admin: Any
    alice: Any
    bob: Any
    olivia: Any
    cam: Any
    chris: Any
    audrey: Any
    project: Any
    workflow: Any
    dataset: Any


def _person(username: str, *role_names: str, mfa: bool = False):
    from allauth.mfa.totp.internal.auth import TOTP
    from django.contrib.auth.models import Group

    from tests import factories

    user = factories.UserFactory(username=username)
    for role in role_names:
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
    if mfa:
        TOTP.activate(user, TOTP_SECRET)
    return user


def build() -> Federation:
    from portal import roles, services
    from portal.forms import ProjectForm
    from tests import factories

    tre = factories.TREFactory(name="TRE A", slug="tre-a")
    admin = _person("admin", roles.FEDERATION_ADMIN, mfa=True)
    admin.is_superuser = admin.is_staff = True
    admin.save()
    alice = _person("alice", roles.RESEARCHER)
    factories.AccreditationFactory(person=alice)
    alice.profile.orcid = "0000-0002-1825-0097"
    alice.profile.display_name = "Alice Researcher"
    alice.profile.save()
    bob = _person("bob", roles.RESEARCHER, roles.PROJECT_LEAD)
    factories.AccreditationFactory(person=bob)
    olivia = _person("olivia", mfa=True)
    services.grant_role(olivia, roles.GOVERNANCE_OFFICER, by=admin, tre=tre)
    cam = _person("cam", mfa=True)
    services.grant_role(cam, roles.OUTPUT_CHECKER, by=admin, tre=tre)
    chris = _person("chris", mfa=True)
    services.grant_role(chris, roles.OUTPUT_CHECKER, by=admin, tre=tre)
    audrey = _person("audrey", roles.AUDITOR, mfa=True)

    sponsor = factories.OrganisationFactory(name="Sponsoring University")
    form = ProjectForm(
        {
            "identifier": "PRJ-2026-0100",
            "title": "Outcomes after COVID-19",
            "lay_summary": "Who recovered, and how fast.",
            "public_benefit": "Better planning.",
            "technical_summary": "Cox models.",
            "sponsor": sponsor.pk,
        }
    )
    if not form.is_valid():
        raise RuntimeError(f"the benchmark's project form is invalid: {form.errors}")
    project = services.create_project(form, by=bob)
    membership = services.invite_member(project, alice, "researcher", by=bob)
    services.accept_invitation(membership, by=alice)
    approval = services.request_project_approval(project, tre, by=bob)
    dataset = factories.DatasetFactory(tre=tre)
    agreement = factories.AgreementFactory(project=project, tre=tre, created_by=olivia)
    agreement.datasets.add(dataset)
    services.change_agreement_status(agreement, "activate", by=olivia)
    services.decide_project(approval, "approved", by=olivia)
    for person in (alice, bob):
        for membership_approval in project.memberships.get(person=person).approvals.all():
            services.decide_membership(membership_approval, "approved", by=olivia)
    project.refresh_from_db()

    workflow = factories.WorkflowFactory(
        name="Protein MD setup", workflow_id="https://workflowhub.example.org/workflows/289", version="1"
    )
    workflow_approval = services.request_workflow_approval(workflow, tre, by=olivia)
    services.decide_workflow(workflow_approval, "approved", by=olivia)
    return Federation(tre, admin, alice, bob, olivia, cam, chris, audrey, project, workflow, dataset)

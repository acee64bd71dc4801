from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from portal import roles, services
from portal.audit import AuditEvent
from portal.models import (
    DataAccessAgreement,
    Decision,
    Membership,
    MembershipApproval,
    PersonalToken,
    Project,
)
from tests import factories

pytestmark = pytest.mark.django_db


def verbs():
    return list(AuditEvent.objects.values_list("verb", flat=True))


def test_project_flow_reaches_active_membership_and_audits_every_step(project, alice, tre_a):
    membership = project.memberships.get(person=alice)
    assert membership.status == Membership.Status.ACTIVE
    assert membership.approvals.get(tre=tre_a).status == Decision.APPROVED
    assert project.status == Project.Status.ACTIVE
    for verb in (
        "project.created",
        "membership.invited",
        "membership.accepted",
        "project.approval_requested",
        "project.approved",
        "membership.approved",
        "agreement.activated",
    ):
        assert verb in verbs()


def test_officer_of_another_tre_cannot_decide(project, oscar, tre_a):
    approval = project.memberships.get(role="lead").approvals.get(tre=tre_a)
    with pytest.raises(PermissionDenied):
        services.decide_membership(approval, Decision.REFUSED, "no", by=oscar)


def test_nobody_decides_on_their_own_project(bob, tre_a, admin_user):
    services.grant_role(bob, roles.GOVERNANCE_OFFICER, by=admin_user, tre=tre_a)
    from guardian.shortcuts import assign_perm

    project = factories.ProjectFactory(lead=bob)
    assign_perm("portal.manage_project", bob, project)
    approval = services.request_project_approval(project, tre_a, by=bob)
    with pytest.raises(PermissionDenied, match="another officer"):
        services.decide_project(approval, Decision.APPROVED, by=bob)


def test_refusal_needs_a_rationale_and_changes_nothing_without_one(bob, tre_a, olivia):
    from guardian.shortcuts import assign_perm

    project = factories.ProjectFactory(lead=bob)
    assign_perm("portal.manage_project", bob, project)
    approval = services.request_project_approval(project, tre_a, by=bob)
    before = AuditEvent.objects.count()
    with pytest.raises(ValidationError):
        services.decide_project(approval, Decision.REFUSED, "  ", by=olivia)
    approval.refresh_from_db()
    assert approval.status == Decision.PENDING
    assert AuditEvent.objects.count() == before
    services.decide_project(approval, Decision.REFUSED, "No ethics approval yet.", by=olivia)
    approval.refresh_from_db()
    assert (approval.status, approval.decided_by, approval.rationale) == (
        "refused",
        olivia,
        "No ethics approval yet.",
    )


def test_the_same_decision_twice_is_harmless_and_a_different_one_is_refused(bob, tre_a, olivia):
    from guardian.shortcuts import assign_perm

    project = factories.ProjectFactory(lead=bob)
    assign_perm("portal.manage_project", bob, project)
    approval = services.request_project_approval(project, tre_a, by=bob)
    factories.make_dur_ready(project, tre_a, olivia)
    services.decide_project(approval, Decision.APPROVED, by=olivia)
    count = AuditEvent.objects.count()
    services.decide_project(approval, Decision.APPROVED, by=olivia)
    assert AuditEvent.objects.count() == count
    with pytest.raises(services.ServiceError, match="already decided"):
        services.decide_project(approval, Decision.REFUSED, "changed my mind", by=olivia)


def test_member_without_valid_accreditation_cannot_be_approved(project, tre_a, olivia):
    newcomer = factories.UserFactory(username="newcomer")
    from django.contrib.auth.models import Group

    newcomer.groups.add(Group.objects.get_or_create(name=roles.RESEARCHER)[0])
    membership = services.apply_to_project(project, by=newcomer, justification="I analyse data.")
    approval = membership.approvals.get(tre=tre_a)
    with pytest.raises(services.ServiceError, match="no verified accreditation"):
        services.decide_membership(approval, Decision.APPROVED, by=olivia)
    factories.AccreditationFactory(person=newcomer, verified_at=None, verified_by=None)
    with pytest.raises(services.ServiceError):
        services.decide_membership(approval, Decision.APPROVED, by=olivia)


def test_duplicate_membership_is_refused(project, alice, bob):
    with pytest.raises(ValidationError):
        services.apply_to_project(project, by=alice, justification="again")
    with pytest.raises(ValidationError):
        services.invite_member(project, alice, "researcher", by=bob)
    assert project.memberships.filter(person=alice).count() == 1


def test_only_the_lead_invites(project, alice):
    other = factories.UserFactory(username="other")
    with pytest.raises(PermissionDenied):
        services.invite_member(project, other, "researcher", by=alice)


def test_lapse_sweep_lapses_expired_accreditations_and_records_it(project, alice):
    alice.accreditations.update(valid_until=timezone.localdate() - timedelta(days=1))
    lapsed = services.lapse_expired_memberships()
    assert [m.person for m in lapsed] == [alice]
    membership = project.memberships.get(person=alice)
    assert membership.status == Membership.Status.LAPSED
    assert "No verified accreditation" in membership.lapsed_reason
    event = AuditEvent.objects.get(verb="membership.lapsed")
    assert event.actor_kind == "system"
    assert event.project_identifier == project.identifier
    # Running the sweep again changes nothing more.
    assert services.lapse_expired_memberships() == []


def test_lapse_sweep_respects_membership_end_date(project, alice):
    project.memberships.filter(person=alice).update(valid_until=timezone.localdate() - timedelta(days=1))
    services.lapse_expired_memberships()
    assert project.memberships.get(person=alice).status == Membership.Status.LAPSED


def test_reinstating_a_lapsed_member_needs_a_valid_accreditation(project, alice, olivia):
    alice.accreditations.update(valid_until=timezone.localdate() - timedelta(days=1))
    services.lapse_expired_memberships()
    membership = project.memberships.get(person=alice)
    with pytest.raises(services.ServiceError, match="still has no verified accreditation"):
        services.reinstate_membership(membership, by=olivia)
    factories.AccreditationFactory(person=alice)
    services.reinstate_membership(membership, by=olivia)
    membership.refresh_from_db()
    assert membership.status == Membership.Status.ACTIVE


def test_lapse_task_runs_through_django_q(project, alice):
    from portal.tasks import lapse_expired_memberships

    alice.accreditations.update(valid_until=timezone.localdate() - timedelta(days=1))
    assert lapse_expired_memberships() == 1


def test_daily_schedule_is_installed():
    from django_q.models import Schedule

    schedule = Schedule.objects.get(func="portal.tasks.lapse_expired_memberships")
    assert schedule.schedule_type == Schedule.DAILY


def test_agreement_moves(project, olivia, tre_a):
    agreement = project.agreements.get()
    assert agreement.is_in_force()
    with pytest.raises(ValidationError):
        services.change_agreement_status(agreement, "suspend", by=olivia)
    services.change_agreement_status(agreement, "suspend", by=olivia, reason="Audit pending")
    agreement.refresh_from_db()
    assert agreement.status == DataAccessAgreement.Status.SUSPENDED
    assert not agreement.is_in_force()
    services.change_agreement_status(agreement, "terminate", by=olivia, reason="Project ended")
    with pytest.raises(services.ServiceError, match="cannot be active"):
        services.change_agreement_status(agreement, "activate", by=olivia)


def test_agreement_cannot_cover_another_tres_data(project, olivia, tre_a, tre_b):
    agreement = factories.AgreementFactory(project=project, tre=tre_a, created_by=olivia)
    agreement.datasets.add(factories.DatasetFactory(tre=tre_b))
    with pytest.raises(services.ServiceError, match="held by its TRE"):
        services.change_agreement_status(agreement, "activate", by=olivia)


def test_pause_and_resume_tre(tre_a, olivia, alice):
    with pytest.raises(PermissionDenied):
        services.pause_tre(tre_a, by=alice, reason="x")
    with pytest.raises(services.ServiceError):
        services.pause_tre(tre_a, by=olivia, reason="")
    services.pause_tre(tre_a, by=olivia, reason="Maintenance")
    tre_a.refresh_from_db()
    assert tre_a.paused and tre_a.paused_reason == "Maintenance"
    services.resume_tre(tre_a, by=olivia)
    tre_a.refresh_from_db()
    assert not tre_a.paused
    assert ["tre.paused", "tre.resumed"] == [v for v in verbs() if v.startswith("tre.")]


def test_workflow_approval_respects_allowed_executors(tre_a, olivia):
    tre_a.allowed_executors = ["sql-aggregate"]
    tre_a.save()
    workflow = factories.WorkflowFactory(executor="cwl")
    approval = services.request_workflow_approval(workflow, tre_a, by=olivia)
    with pytest.raises(services.ServiceError, match="does not allow"):
        services.decide_workflow(approval, Decision.APPROVED, by=olivia)


def test_tokens_store_only_a_hash_and_can_be_revoked(alice):
    token, secret = services.create_token(alice, "laptop", by=alice, days=30)
    assert secret.startswith("fsp_")
    assert secret not in token.key_hash
    assert token.key_hash == PersonalToken.hash_key(secret)
    assert PersonalToken.objects.usable().filter(pk=token.pk).exists()
    services.revoke_token(token, by=alice)
    assert not PersonalToken.objects.usable().filter(pk=token.pk).exists()
    with pytest.raises(ValidationError):
        services.create_token(alice, "forever", by=alice, days=10_000)


def test_verifying_ones_own_accreditation_is_refused(olivia):
    accreditation = factories.AccreditationFactory(person=olivia, verified_by=None, verified_at=None)
    with pytest.raises(PermissionDenied):
        services.verify_accreditation(accreditation, by=olivia)


def test_membership_approval_is_unique_per_tre(project, alice, tre_a):
    from django.db import IntegrityError, transaction

    membership = project.memberships.get(person=alice)
    with pytest.raises(IntegrityError), transaction.atomic():
        MembershipApproval.objects.create(membership=membership, tre=tre_a)


def test_decided_approvals_need_who_and_when_in_the_database(project, tre_a):
    from django.db import IntegrityError, transaction

    approval = project.approvals.get(tre=tre_a)
    with pytest.raises(IntegrityError), transaction.atomic():
        type(approval).objects.filter(pk=approval.pk).update(decided_by=None)


def test_approval_needs_a_complete_data_use_register_entry(bob, tre_a, olivia):
    from guardian.shortcuts import assign_perm

    project = factories.ProjectFactory(lead=bob)
    assign_perm("portal.manage_project", bob, project)
    approval = services.request_project_approval(project, tre_a, by=bob)
    with pytest.raises(ValidationError, match="Data Use Register"):
        services.decide_project(approval, Decision.APPROVED, by=olivia)
    approval.refresh_from_db()
    assert approval.status == Decision.PENDING
    factories.make_dur_ready(project, tre_a, olivia)
    services.decide_project(approval, Decision.APPROVED, by=olivia)
    approval.refresh_from_db()
    assert approval.status == Decision.APPROVED

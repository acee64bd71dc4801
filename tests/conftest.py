"""The named cast and a small federation, shared by all tests.

alice researcher, bob project lead, olivia officer of TRE A, oscar officer of TRE B,
cam output checker, audrey auditor, pat PPIE member, admin federation admin.
"""

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.contrib.auth.models import Group

from portal import roles, services
from tests import factories


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media"},
        },
        "audit_digests": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "audit-digests"},
        },
    }


def _person(username, *role_names, mfa=False):
    user = factories.UserFactory(username=username)
    for role in role_names:
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
    if mfa:
        TOTP.activate(user, "JBSWY3DPEHPK3PXP")
    return user


@pytest.fixture
def tre_a(db):
    return factories.TREFactory(name="TRE A", slug="tre-a")


@pytest.fixture
def tre_b(db):
    return factories.TREFactory(name="TRE B", slug="tre-b")


@pytest.fixture
def admin_user(db):
    user = _person("admin", roles.FEDERATION_ADMIN, mfa=True)
    user.is_superuser = user.is_staff = True
    user.save()
    return user


@pytest.fixture
def alice(db):
    user = _person("alice", roles.RESEARCHER)
    factories.AccreditationFactory(person=user)
    return user


@pytest.fixture
def bob(db):
    user = _person("bob", roles.RESEARCHER, roles.PROJECT_LEAD)
    factories.AccreditationFactory(person=user)
    return user


@pytest.fixture
def olivia(tre_a, admin_user):
    user = _person("olivia", mfa=True)
    services.grant_role(user, roles.GOVERNANCE_OFFICER, by=admin_user, tre=tre_a)
    return user


@pytest.fixture
def oscar(tre_b, admin_user):
    user = _person("oscar", mfa=True)
    services.grant_role(user, roles.GOVERNANCE_OFFICER, by=admin_user, tre=tre_b)
    return user


@pytest.fixture
def cam(tre_a, admin_user):
    user = _person("cam", mfa=True)
    services.grant_role(user, roles.OUTPUT_CHECKER, by=admin_user, tre=tre_a)
    return user


@pytest.fixture
def audrey(db):
    return _person("audrey", roles.AUDITOR, mfa=True)


@pytest.fixture
def pat(db):
    return _person("pat", roles.PPIE)


@pytest.fixture
def project(bob, alice, tre_a, olivia):
    """PRJ approved at TRE A with bob as lead and alice an approved member, and an agreement in force."""
    from portal.forms import ProjectForm

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
    assert form.is_valid(), form.errors
    project = services.create_project(form, by=bob)
    membership = services.invite_member(project, alice, "researcher", by=bob)
    services.accept_invitation(membership, by=alice)
    approval = services.request_project_approval(project, tre_a, by=bob)
    # The agreement comes first: the Data Use Register entry names its datasets at approval.
    dataset = factories.DatasetFactory(tre=tre_a)
    agreement = factories.AgreementFactory(project=project, tre=tre_a, created_by=olivia)
    agreement.datasets.add(dataset)
    services.change_agreement_status(agreement, "activate", by=olivia)
    services.decide_project(approval, "approved", by=olivia)
    for membership_approval in project.memberships.get(person=alice).approvals.all():
        services.decide_membership(membership_approval, "approved", by=olivia)
    for membership_approval in project.memberships.get(person=bob).approvals.all():
        services.decide_membership(membership_approval, "approved", by=olivia)
    project.refresh_from_db()
    return project


def has_totp(user):
    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


@pytest.fixture
def workflow(tre_a, olivia):
    """A CWL workflow on TRE A's approved list."""
    workflow = factories.WorkflowFactory(
        name="Protein MD setup", workflow_id="https://workflowhub.example.org/workflows/289", version="1"
    )
    approval = services.request_workflow_approval(workflow, tre_a, by=olivia)
    services.decide_workflow(approval, "approved", by=olivia)
    return workflow


@pytest.fixture
def registry(project, alice, workflow, tre_a):
    """alice has an ORCID, the project is approved at TRE A with an agreement, the workflow is approved."""
    alice.profile.orcid = "0000-0002-1825-0097"
    alice.profile.display_name = "Alice Researcher"
    alice.profile.save()
    return {"project": project, "workflow": workflow, "dataset": project.agreements.get().datasets.get()}


@pytest.fixture
def crate_zip(tmp_path, registry):
    """A valid request crate ZIP naming alice, the project, the approved workflow and the dataset."""
    from tests import cratekit

    dataset = registry["dataset"]
    metadata = cratekit.request_metadata(
        orcid="0000-0002-1825-0097",
        project_identifier=registry["project"].identifier,
        workflow_id=registry["workflow"].workflow_id,
        datasets=[(dataset.identifier, dataset.name)],
    )
    return cratekit.make_crate_zip(tmp_path / "request.zip", metadata, cratekit.input_files())


@pytest.fixture
def new_job(registry, alice, olivia, tre_a, crate_zip, django_capture_on_commit_callbacks):
    """A factory: a fresh job at TRE A, moved to any state through the real transitions."""
    from tests import builders

    def make(state="awaiting_review", title="A request"):
        request = builders.submit(
            researcher=alice,
            project=registry["project"],
            tres=[tre_a],
            crate_zip=crate_zip,
            capture=django_capture_on_commit_callbacks,
            title=title,
        )
        job = request.jobs.get()
        return builders.walk(job, state, officer=olivia, researcher=alice)

    return make


@pytest.fixture
def chris(tre_a, admin_user):
    user = _person("chris", mfa=True)
    services.grant_role(user, roles.OUTPUT_CHECKER, by=admin_user, tre=tre_a)
    return user


@pytest.fixture
def two_tre_request(
    registry, alice, olivia, oscar, tre_a, tre_b, tmp_path, django_capture_on_commit_callbacks, admin_user
):
    """A request for the project at TRE A and TRE B, both jobs awaiting review."""
    from tests import builders, cratekit

    project = registry["project"]
    approval = services.request_project_approval(project, tre_b, by=project.lead)
    dataset_b = factories.DatasetFactory(tre=tre_b)
    agreement = factories.AgreementFactory(project=project, tre=tre_b, created_by=oscar)
    agreement.datasets.add(dataset_b)
    services.change_agreement_status(agreement, "activate", by=oscar)
    services.decide_project(approval, "approved", by=oscar)
    for membership in project.memberships.all():
        for membership_approval in membership.approvals.filter(tre=tre_b):
            services.decide_membership(membership_approval, "approved", by=oscar)
    workflow_approval = services.request_workflow_approval(registry["workflow"], tre_b, by=oscar)
    services.decide_workflow(workflow_approval, "approved", by=oscar)
    metadata = cratekit.request_metadata(
        orcid="0000-0002-1825-0097",
        project_identifier=project.identifier,
        workflow_id=registry["workflow"].workflow_id,
        datasets=[
            (registry["dataset"].identifier, registry["dataset"].name),
            (dataset_b.identifier, dataset_b.name),
        ],
    )
    zip_path = cratekit.make_crate_zip(tmp_path / "two-tres.zip", metadata, cratekit.input_files())
    return builders.submit(
        researcher=alice,
        project=project,
        tres=[tre_a, tre_b],
        crate_zip=zip_path,
        capture=django_capture_on_commit_callbacks,
    )


# --- People tied to the project who must not act as its members ---------------------------------
# penny applied and waits for TRE A; rex was approved until the lead removed him; lena was approved
# until her accreditation ran out and the nightly sweep lapsed her membership.


def _approved_member(username, project, bob, olivia):
    user = _person(username, roles.RESEARCHER)
    factories.AccreditationFactory(person=user)
    membership = services.invite_member(project, user, "researcher", by=bob)
    services.accept_invitation(membership, by=user)
    for approval in membership.approvals.all():
        services.decide_membership(approval, "approved", by=olivia)
    membership.refresh_from_db()
    assert membership.status == "active"
    return user, membership


@pytest.fixture
def penny(project):
    user = _person("penny", roles.RESEARCHER)
    factories.AccreditationFactory(person=user)
    services.apply_to_project(project, by=user, justification="I would like to help.")
    return user


@pytest.fixture
def rex(project, bob, olivia):
    user, membership = _approved_member("rex", project, bob, olivia)
    services.withdraw_membership(membership, by=bob)
    return user


@pytest.fixture
def lena(project, bob, olivia):
    from datetime import timedelta

    from django.utils import timezone

    user, membership = _approved_member("lena", project, bob, olivia)
    yesterday = timezone.localdate() - timedelta(days=1)
    user.accreditations.update(valid_from=yesterday - timedelta(days=365), valid_until=yesterday)
    assert membership in services.lapse_expired_memberships()
    return user


TEST_PASSWORD = "correct horse battery staple"  # noqa: S105  (tests.factories.UserFactory's password)


def sign_in(client, user, password=TEST_PASSWORD):
    """Sign in through the portal's real sign-in: the password, then the TOTP code when the user has one."""
    import time

    from allauth.account.models import EmailAddress
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
    from django.core.cache import cache
    from django.urls import reverse

    EmailAddress.objects.get_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )
    response = client.post(reverse("account_login"), {"login": user.email, "password": password})
    assert response.status_code == 302, response.content.decode()[:2000]
    if has_totp(user):
        assert response.url == reverse("mfa_authenticate")
        cache.clear()  # allauth refuses a code used once in its window; test users share one secret
        code = format_hotp_value(hotp_value("JBSWY3DPEHPK3PXP", int(time.time()) // 30))
        response = client.post(reverse("mfa_authenticate"), {"code": code})
        assert response.status_code == 302, response.content.decode()[:2000]
    return client


@pytest.fixture(autouse=True)
def _audit_flushable(request):
    """Transactional tests end with a flush, which on SQLite DELETEs every row: the append-only triggers
    (portal migration 0011) are dropped for that flush. They are made again when the next transactional
    test starts (pytest-django runs those after the others), and by `ensure_append_only` where a test needs them."""
    marker = request.node.get_closest_marker("django_db")
    transactional = (marker is not None and marker.kwargs.get("transaction")) or any(
        name in request.fixturenames for name in ("transactional_db", "live_server")
    )
    if not transactional:
        yield
        return
    from tests.audit_helpers import drop_sqlite_triggers, ensure_append_only

    request.getfixturevalue("transactional_db")
    ensure_append_only()
    yield
    drop_sqlite_triggers()

"""One happy path per page, the POST actions, and bad input refused with nothing saved."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from portal.audit import AuditEvent
from portal.models import (
    TRE,
    Accreditation,
    ApprovedWorkflow,
    DataAccessAgreement,
    Dataset,
    Membership,
    Organisation,
    PersonalToken,
    Project,
    ProjectApproval,
)
from tests import factories

pytestmark = pytest.mark.django_db

PDF_BYTES = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def login(client, user):
    client.force_login(user)
    return client


# --- Organisations and TREs --------------------------------------------------------------


def test_officer_adds_an_organisation_with_a_ror_id(client, olivia):
    login(client, olivia)
    response = client.post(
        reverse("organisation_create"), {"name": "University of Oxford", "ror_id": "052gg0110", "website": ""}
    )
    assert response.status_code == 302
    organisation = Organisation.objects.get(name="University of Oxford")
    assert organisation.ror_id == "https://ror.org/052gg0110"
    assert AuditEvent.objects.filter(verb="organisation.created", object_id=str(organisation.pk)).exists()


@pytest.mark.parametrize(
    ("ror", "message"),
    [
        ("052gg0111", "check digits do not match"),
        ("not-a-ror", "Enter a ROR id"),
        ("152gg0110", "Enter a ROR id"),
    ],
)
def test_malformed_ror_ids_are_refused_and_nothing_is_saved(client, olivia, ror, message):
    login(client, olivia)
    response = client.post(reverse("organisation_create"), {"name": "Bad Org", "ror_id": ror})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Organisation.objects.filter(name="Bad Org").exists()


def test_officer_changes_tre_policy_and_it_is_audited(client, olivia, tre_a):
    login(client, olivia)
    response = client.post(
        reverse("tre_edit", args=[tre_a.slug]),
        {
            "name": tre_a.name,
            "min_cell_count": 20,
            "dominance_n": 2,
            "dominance_k": "0.9",
            "p_ratio": "0.1",
            "rounding_base": 5,
            "required_output_checkers": 2,
            "on_disagreement": "ask_another",
            "ppie_review": "required",
            "allowed_executors": ["cwl"],
        },
    )
    assert response.status_code == 302
    tre_a.refresh_from_db()
    assert (tre_a.min_cell_count, tre_a.rounding_base, tre_a.allowed_executors) == (20, 5, ["cwl"])
    assert tre_a.on_disagreement == "ask_another"
    assert tre_a.ppie_review == "required"
    event = AuditEvent.objects.get(verb="tre.updated")
    assert event.before["min_cell_count"] == 10 and event.after["min_cell_count"] == 20
    assert (event.before["ppie_review"], event.after["ppie_review"]) == ("advisory", "required")


def test_tre_policy_refuses_out_of_range_values(client, olivia, tre_a):
    login(client, olivia)
    response = client.post(
        reverse("tre_edit", args=[tre_a.slug]),
        {
            "name": tre_a.name,
            "min_cell_count": 0,
            "dominance_n": 2,
            "dominance_k": "1.5",
            "p_ratio": "0.1",
            "rounding_base": 0,
            "required_output_checkers": 9,
        },
    )
    assert response.status_code == 200
    tre_a.refresh_from_db()
    assert tre_a.min_cell_count == 10


def test_pause_and_resume_from_the_tre_page(client, olivia, tre_a):
    login(client, olivia)
    response = client.post(reverse("tre_pause", args=[tre_a.slug]), {"reason": "Storage upgrade"})
    assert response.status_code == 302
    assert TRE.objects.get(pk=tre_a.pk).paused
    page = client.get(reverse("tre_detail", args=[tre_a.slug])).content.decode()
    assert "Storage upgrade" in page
    client.post(reverse("tre_resume", args=[tre_a.slug]))
    assert not TRE.objects.get(pk=tre_a.pk).paused


def test_pausing_without_reason_is_refused_with_a_message(client, olivia, tre_a):
    login(client, olivia)
    response = client.post(reverse("tre_pause", args=[tre_a.slug]), {"reason": ""}, follow=True)
    assert "Say why the TRE is paused" in response.content.decode()
    assert not TRE.objects.get(pk=tre_a.pk).paused


def test_officer_adds_a_dataset_and_duplicates_are_refused(client, olivia, tre_a):
    login(client, olivia)
    data = {"identifier": "https://a.example.org/d/1", "name": "GP data", "sensitivity": "pseudonymised"}
    assert client.post(reverse("dataset_create", args=[tre_a.slug]), data).status_code == 302
    response = client.post(reverse("dataset_create", args=[tre_a.slug]), {**data, "name": "Again"})
    assert "already has a dataset with that identifier" in response.content.decode()
    assert Dataset.objects.filter(tre=tre_a).count() == 1


# --- Projects and memberships ------------------------------------------------------------


PROJECT_DATA = {
    "identifier": "PRJ-2026-0200",
    "title": "Air quality and asthma",
    "lay_summary": "Do inhaler prescriptions rise after smoggy days?",
    "public_benefit": "Better alerts.",
    "technical_summary": "Case-crossover.",
}


def test_researcher_starts_a_project_and_becomes_its_lead(client, alice):
    login(client, alice)
    response = client.post(reverse("project_create"), PROJECT_DATA)
    project = Project.objects.get(identifier="PRJ-2026-0200")
    assert response.url == project.get_absolute_url()
    assert project.lead == alice
    assert project.memberships.get().role == Membership.Role.LEAD
    assert client.get(project.get_absolute_url()).status_code == 200


def test_project_dates_must_not_end_before_they_start(client, alice):
    login(client, alice)
    today = timezone.localdate()
    response = client.post(
        reverse("project_create"),
        {**PROJECT_DATA, "start_date": today, "end_date": today - timedelta(days=1)},
    )
    assert "on or after the start date" in response.content.decode()
    assert not Project.objects.exists()


def test_lead_asks_a_tre_and_the_officer_approves_from_the_queue(client, alice, olivia, tre_a):
    login(client, alice)
    client.post(reverse("project_create"), PROJECT_DATA)
    project = Project.objects.get()
    client.post(reverse("project_request_approval", args=[project.pk]), {"tre": tre_a.pk})
    approval = project.approvals.get()
    login(client, olivia)
    queue = client.get(reverse("approvals_queue", args=[tre_a.slug])).content.decode()
    assert project.identifier in queue
    # Without a sponsor and an agreement the register entry is incomplete: the approval is refused.
    response = client.post(
        reverse("project_decide", args=[approval.pk]), {"decision": "approved", "rationale": ""}, follow=True
    )
    assert "Data Use Register" in response.content.decode()
    approval.refresh_from_db()
    assert approval.status == "pending"
    factories.make_dur_ready(project, tre_a, olivia)
    client.post(reverse("project_decide", args=[approval.pk]), {"decision": "approved", "rationale": ""})
    approval.refresh_from_db()
    assert approval.status == "approved"


def test_refusal_without_rationale_is_refused_by_the_view(client, alice, olivia, tre_a):
    login(client, alice)
    client.post(reverse("project_create"), PROJECT_DATA)
    project = Project.objects.get()
    client.post(reverse("project_request_approval", args=[project.pk]), {"tre": tre_a.pk})
    approval = project.approvals.get()
    login(client, olivia)
    response = client.post(
        reverse("project_decide", args=[approval.pk]), {"decision": "refused", "rationale": ""}, follow=True
    )
    assert "Give the reason for refusing" in response.content.decode()
    approval.refresh_from_db()
    assert approval.status == "pending"


def test_researcher_applies_and_cannot_apply_twice(client, project, admin_user):
    newcomer = factories.UserFactory(username="newcomer")
    from django.contrib.auth.models import Group

    newcomer.groups.add(Group.objects.get_or_create(name="researcher")[0])
    login(client, newcomer)
    assert client.get(reverse("project_directory")).status_code == 200
    url = reverse("project_apply", args=[project.pk])
    assert client.post(url, {"justification": "I run the survival models."}).status_code == 302
    response = client.post(url, {"justification": "again"})
    assert "already applied" in response.content.decode()
    assert Membership.objects.filter(project=project, person=newcomer).count() == 1


def test_lead_invites_and_the_invitee_accepts(client, project, bob):
    carol = factories.UserFactory(username="carol")
    login(client, bob)
    client.post(reverse("project_invite", args=[project.pk]), {"email": carol.email, "role": "analyst"})
    membership = Membership.objects.get(person=carol)
    assert membership.status == Membership.Status.INVITED
    login(client, carol)
    assert "invited" in client.get(reverse("dashboard")).content.decode()
    client.post(reverse("membership_accept", args=[membership.pk]))
    membership.refresh_from_db()
    assert membership.status == Membership.Status.PENDING
    assert membership.approvals.count() == project.approvals.count()


def test_inviting_someone_unknown_says_so(client, project, bob):
    login(client, bob)
    response = client.post(
        reverse("project_invite", args=[project.pk]),
        {"email": "nobody@example.org", "role": "analyst"},
        follow=True,
    )
    assert "Nobody with this e-mail address" in response.content.decode()


def test_officer_decides_a_membership_from_the_project_page(client, project, olivia, tre_a):
    newcomer = factories.UserFactory(username="newcomer")
    factories.AccreditationFactory(person=newcomer)
    membership = factories.MembershipFactory(project=project, person=newcomer)
    approval = membership.approvals.create(tre=tre_a)
    login(client, olivia)
    assert "Approve newcomer@example.org" in client.get(project.get_absolute_url()).content.decode()
    client.post(reverse("membership_decide", args=[approval.pk]), {"decision": "approved"})
    membership.refresh_from_db()
    assert membership.status == Membership.Status.ACTIVE


def test_member_leaves_a_project(client, project, alice):
    login(client, alice)
    membership = project.memberships.get(person=alice)
    client.post(reverse("membership_withdraw", args=[membership.pk]))
    membership.refresh_from_db()
    assert membership.status == Membership.Status.WITHDRAWN
    assert client.get(project.get_absolute_url()).status_code == 403


# --- Accreditations ------------------------------------------------------------------------


def _accreditation_data(**overrides):
    today = timezone.localdate()
    data = {
        "kind": "safe_researcher",
        "issuer": "UK Statistics Authority",
        "valid_from": today - timedelta(days=10),
        "valid_until": today + timedelta(days=300),
    }
    return {**data, **overrides}


def test_researcher_uploads_evidence_and_an_officer_verifies_it(client, alice, olivia):
    login(client, alice)
    upload = SimpleUploadedFile("cert.pdf", PDF_BYTES, content_type="application/pdf")
    response = client.post(reverse("accreditation_create"), {**_accreditation_data(), "evidence": upload})
    assert response.status_code == 302
    accreditation = Accreditation.objects.filter(person=alice, verified_at__isnull=True).get()
    login(client, olivia)
    download = client.get(reverse("accreditation_evidence", args=[accreditation.pk]))
    assert b"".join(download.streaming_content).startswith(b"%PDF")
    client.post(reverse("accreditation_verify", args=[accreditation.pk]))
    accreditation.refresh_from_db()
    assert accreditation.verified_by == olivia


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("cert.exe", b"MZ\x90\x00", "Upload a"),
        ("cert.pdf", b"not really a pdf", "not a PDF file"),
        ("cert.png", b"%PDF-1.4", "not a PNG file"),
    ],
)
def test_wrong_evidence_types_are_refused(client, alice, name, content, message):
    login(client, alice)
    before = Accreditation.objects.count()
    upload = SimpleUploadedFile(name, content)
    response = client.post(reverse("accreditation_create"), {**_accreditation_data(), "evidence": upload})
    assert message in response.content.decode()
    assert Accreditation.objects.count() == before


def test_oversized_evidence_is_refused(client, alice, settings):
    settings.PORTAL_EVIDENCE_MAX_BYTES = 1024
    login(client, alice)
    before = Accreditation.objects.count()
    upload = SimpleUploadedFile("cert.pdf", PDF_BYTES + b"0" * 2048)
    response = client.post(reverse("accreditation_create"), {**_accreditation_data(), "evidence": upload})
    assert "the limit is 1.0" in response.content.decode()
    assert Accreditation.objects.count() == before


def test_accreditation_dates_must_be_in_order(client, alice):
    login(client, alice)
    today = timezone.localdate()
    before = Accreditation.objects.count()
    response = client.post(
        reverse("accreditation_create"),
        _accreditation_data(valid_from=today, valid_until=today - timedelta(days=1)),
    )
    assert "on or after the start date" in response.content.decode()
    assert Accreditation.objects.count() == before


def test_evidence_is_not_served_to_other_researchers(client, alice, bob):
    accreditation = factories.AccreditationFactory(
        person=alice, evidence=SimpleUploadedFile("cert.pdf", PDF_BYTES)
    )
    login(client, bob)
    assert client.get(reverse("accreditation_evidence", args=[accreditation.pk])).status_code == 404


# --- Profile -----------------------------------------------------------------------------


def test_profile_accepts_a_valid_orcid_and_refuses_a_bad_checksum(client, alice):
    login(client, alice)
    response = client.post(reverse("profile_edit"), {"display_name": "Alice", "orcid": "0000-0002-1825-0098"})
    assert "check digit does not match" in response.content.decode()
    client.post(
        reverse("profile_edit"), {"display_name": "Alice", "orcid": "https://orcid.org/0000-0002-1825-0097"}
    )
    alice.profile.refresh_from_db()
    assert alice.profile.orcid == "0000-0002-1825-0097"


def test_two_people_cannot_share_an_orcid(client, alice, bob):
    bob.profile.orcid = "0000-0002-1825-0097"
    bob.profile.save()
    login(client, alice)
    response = client.post(reverse("profile_edit"), {"orcid": "0000-0002-1825-0097"})
    assert "already registered" in response.content.decode()


# --- Agreements and workflows ----------------------------------------------------------------


def test_officer_draws_up_and_brings_an_agreement_into_force(client, project, olivia, tre_a):
    dataset = factories.DatasetFactory(tre=tre_a)
    today = timezone.localdate()
    login(client, olivia)
    response = client.post(
        reverse("agreement_create"),
        {
            "project": project.pk,
            "tre": tre_a.pk,
            "reference": "DAA-NEW-1",
            "datasets": [dataset.pk],
            "valid_from": today,
            "valid_until": today + timedelta(days=30),
            "disclosure_overrides": '{"min_cell_count": 20}',
        },
    )
    agreement = DataAccessAgreement.objects.get(reference="DAA-NEW-1")
    assert response.url == agreement.get_absolute_url()
    client.post(reverse("agreement_status", args=[agreement.pk, "activate"]))
    agreement.refresh_from_db()
    assert agreement.status == "active" and agreement.approved_by == olivia
    pdf = client.get(reverse("agreement_pdf", args=[agreement.pk]))
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ('{"cell_minimum": 5}', "is not a policy field"),
        ('{"min_cell_count": "five"}', "must be a int"),
        ("[1]", "JSON object"),
    ],
)
def test_agreement_overrides_are_checked(client, project, olivia, tre_a, overrides, message):
    today = timezone.localdate()
    login(client, olivia)
    response = client.post(
        reverse("agreement_create"),
        {
            "project": project.pk,
            "tre": tre_a.pk,
            "reference": "DAA-BAD",
            "valid_from": today,
            "valid_until": today + timedelta(days=1),
            "disclosure_overrides": overrides,
        },
    )
    assert message in response.content.decode()
    assert not DataAccessAgreement.objects.filter(reference="DAA-BAD").exists()


def test_officer_registers_a_workflow_with_a_matching_checksum(client, olivia, tre_a):
    import hashlib

    crate = b"PK\x05\x06" + b"\x00" * 18
    login(client, olivia)
    data = {
        "name": "Cohort counts",
        "workflow_id": "https://workflowhub.example.org/workflows/1",
        "version": "1",
        "language": "cwl",
        "executor": "cwl",
    }
    bad = client.post(
        reverse("workflow_create"),
        {**data, "sha256": "0" * 64, "crate": SimpleUploadedFile("wf.zip", crate)},
    )
    assert "SHA-256 is " + hashlib.sha256(crate).hexdigest() in bad.content.decode()
    assert not ApprovedWorkflow.objects.exists()
    good = client.post(
        reverse("workflow_create"),
        {**data, "sha256": hashlib.sha256(crate).hexdigest(), "crate": SimpleUploadedFile("wf.zip", crate)},
    )
    workflow = ApprovedWorkflow.objects.get()
    assert good.url == reverse("workflow_detail", args=[workflow.pk])
    client.post(reverse("workflow_request_approval", args=[workflow.pk]), {"tre": tre_a.pk})
    approval = workflow.approvals.get()
    client.post(reverse("workflow_decide", args=[approval.pk]), {"decision": "approved"})
    approval.refresh_from_db()
    assert approval.status == "approved"
    edit = client.get(reverse("workflow_edit", args=[workflow.pk]), follow=True)
    assert "registers your change as a new version" in edit.content.decode()


# --- Tokens and audit ------------------------------------------------------------------------


def test_token_is_shown_once_and_works_against_the_api(client, alice):
    login(client, alice)
    page = client.post(reverse("token_list"), {"name": "scripts", "days": 30}).content.decode()
    token = PersonalToken.objects.get(user=alice)
    secret = page.split('id="new-token">')[1].split("<")[0]
    assert secret.startswith("fsp_") and token.key_hash == PersonalToken.hash_key(secret)
    assert secret not in client.get(reverse("token_list")).content.decode()
    client.logout()
    me = client.get(reverse("api_me"), headers={"authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and me.json()["email"] == alice.email


def test_auditor_filters_and_exports(client, audrey, project, tre_a):
    login(client, audrey)
    page = client.get(reverse("audit_list"), {"verb": "membership.", "project": project.identifier})
    # Events read as sentences; the codes stay in the exports.
    assert "Approved a member at this TRE" in page.content.decode()
    assert "membership.approved" not in page.content.decode()
    assert "Put a data-access agreement in force" not in page.content.decode()
    csv_body = b"".join(
        client.get(reverse("audit_export", args=["csv"]), {"tre": tre_a.slug}).streaming_content
    )
    header, *rows = csv_body.decode().strip().splitlines()
    assert header.startswith("id,created_at,actor_kind")
    assert rows and all(tre_a.slug in row for row in rows)
    import json

    events = json.loads(b"".join(client.get(reverse("audit_export", args=["json"])).streaming_content))
    assert [e["prev_hash"] for e in events[1:]] == [e["hash"] for e in events[:-1]]
    assert AuditEvent.objects.filter(verb="audit.exported").count() == 2
    assert "intact" in client.get(reverse("audit_verify")).content.decode()


def test_home_page_for_anonymous_people(client):
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert "Sign in" in response.content.decode()


def test_dashboard_shows_officer_work(client, olivia, project, tre_a):
    login(client, olivia)
    page = client.get(reverse("dashboard")).content.decode()
    assert tre_a.name in page
    assert "Projects awaiting approval" in page


def test_htmx_is_available_for_partial_updates(client, alice):
    login(client, alice)
    page = client.get(reverse("dashboard")).content.decode()
    assert "htmx" in page
    assert "<script>" not in page  # CSP: no inline script


def test_list_pages_render_empty(client, audrey):
    login(client, audrey)
    for name in (
        "organisation_list",
        "tre_list",
        "workflow_list",
        "project_list",
        "agreement_list",
        "audit_list",
    ):
        assert client.get(reverse(name)).status_code == 200


def test_the_tre_list_counts_datasets_and_approved_projects(client, olivia, tre_a, tre_b):
    factories.DatasetFactory.create_batch(3, tre=tre_a)
    factories.DatasetFactory(tre=tre_b)
    for status in ("approved", "approved", "refused"):
        project = factories.ProjectFactory()
        ProjectApproval.objects.create(
            project=project,
            tre=tre_a,
            status=status,
            decided_by=olivia,
            decided_at=timezone.now(),
            rationale="" if status == "approved" else "No agreement",
        )
    client.force_login(olivia)
    tres = {t.slug: t for t in client.get(reverse("tre_list")).context["tres"]}
    assert (tres["tre-a"].dataset_count, tres["tre-a"].project_count) == (3, 2)
    assert (tres["tre-b"].dataset_count, tres["tre-b"].project_count) == (1, 0)

"""The Five Safes review, in the browser and through the services: evidence, decisions, sign-off, suspension."""

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crates.models import Job
from portal import audit
from portal import services as portal_services
from portal.audit import AuditEvent
from reviews import services
from reviews.models import Notification, StepDecision
from tests import builders, factories

pytestmark = pytest.mark.django_db

S = Job.Status
SIGN_OFF = "https://w3id.org/shp#SignOff"


def _signoffs(metadata):
    return [e for e in metadata["@graph"] if SIGN_OFF in json.dumps(e.get("additionalType"))]


def test_officer_reviews_in_the_browser_to_sign_off(client, new_job, olivia, alice):
    job = new_job()
    client.force_login(olivia)
    page = client.get(job.get_absolute_url()).content.decode()
    assert "Start the review" in page
    client.post(reverse("job_start_review", args=[job.pk]))
    page = client.get(job.get_absolute_url()).content.decode()
    assert "is an approved member at TRE A" in page  # Safe People evidence
    assert "Agreement in force" in page  # Safe Project evidence
    for step in ("safe_people", "safe_project", "safe_data", "safe_settings"):
        response = client.post(reverse("job_decide", args=[job.pk, step]), {"outcome": "approve"})
        assert response.status_code == 302
    client.post(
        reverse("job_decide", args=[job.pk, "sign_off"]), {"outcome": "approve", "rationale": "All met."}
    )
    job.refresh_from_db()
    assert job.status == S.QUEUED
    signoff = _signoffs(job.metadata)
    assert len(signoff) == 1
    assert signoff[0]["actionStatus"] == "http://schema.org/CompletedActionStatus"
    verbs = list(
        AuditEvent.objects.filter(object_id=str(job.pk), object_type="crates.job").values_list(
            "verb", flat=True
        )
    )
    assert verbs[-3:] == ["review.step.approve", "review.signed_off", "job.queued"]
    assert Notification.objects.filter(
        recipient=alice, kind="decision", subject__contains="approved"
    ).exists()


def test_evidence_is_frozen_with_the_decision(new_job, olivia, alice):
    job = new_job(S.IN_REVIEW)
    services.decide_step(job, "safe_people", "approve", by=olivia)
    # Afterwards alice's accreditation lapses: the decision keeps what olivia saw.
    alice.accreditations.update(valid_until=timezone.localdate() - timedelta(days=1))
    decision = StepDecision.objects.get(job=job, step="safe_people")
    assert all(f["ok"] for f in decision.evidence)
    from reviews.evidence import evidence_for

    assert not all(f["ok"] for f in evidence_for(job, "safe_people"))


def test_safe_settings_evidence_names_the_service_the_job_will_use(new_job):
    from portal.models import ApprovedWorkflow, WorkflowApproval
    from reviews.evidence import evidence_for

    job = new_job(S.IN_REVIEW)
    ApprovedWorkflow.objects.filter(pk=job.workflow_id).update(executor="datashield")
    approval = WorkflowApproval.objects.filter(workflow_id=job.workflow_id, tre=job.tre)
    job.refresh_from_db()

    missing = {f["check"]: f for f in evidence_for(job, "safe_settings")}["service"]
    assert not missing["ok"] and "the agent will refuse the job" in missing["message"]

    approval.update(service_settings={"profile": "census", "functions": ["meanDS", "tableDS"]})
    found = {f["check"]: f for f in evidence_for(job, "safe_settings")}["service"]
    assert found["ok"]
    assert found["message"] == "At TRE A: DataSHIELD profile census; approved functions: meanDS, tableDS."


def test_sign_off_needs_the_four_steps(new_job, olivia):
    job = new_job(S.IN_REVIEW)
    services.decide_step(job, "safe_people", "approve", by=olivia)
    with pytest.raises(services.ReviewError, match="Approve Safe Project, Safe Data, Safe Settings"):
        services.decide_step(job, "sign_off", "approve", by=olivia)
    job.refresh_from_db()
    assert job.status == S.IN_REVIEW


def test_rejection_writes_a_failed_signoff_and_tells_the_researcher(new_job, olivia, alice):
    job = new_job(S.IN_REVIEW)
    mail.outbox.clear()
    services.decide_step(
        job, "safe_data", "reject", "The crate asks for data outside the agreement.", by=olivia
    )
    job.refresh_from_db()
    assert job.status == S.REJECTED
    signoff = _signoffs(job.metadata)
    assert signoff and signoff[0]["actionStatus"] == "http://schema.org/FailedActionStatus"
    note = Notification.objects.get(recipient=alice, kind="decision")
    assert "outside the agreement" in note.body


def test_decisions_without_rationale_wrong_state_or_wrong_person_change_nothing(
    new_job, olivia, oscar, alice, bob
):
    job = new_job()
    with pytest.raises(services.ReviewError, match="not in review"):
        services.decide_step(job, "safe_people", "approve", by=olivia)
    services.start_review(job, by=olivia)
    with pytest.raises(Exception, match="reason"):
        services.decide_step(job, "safe_people", "changes", "", by=olivia)
    with pytest.raises(Exception, match="Only governance officers of TRE A"):
        services.decide_step(job, "safe_people", "approve", by=oscar)
    with pytest.raises(Exception, match="another officer"):
        services.decide_step(job, "safe_people", "approve", by=alice)
    assert not StepDecision.objects.exists()
    job.refresh_from_db()
    assert job.status == S.IN_REVIEW


def test_an_officer_who_is_a_project_member_cannot_decide(new_job, bob, tre_a, admin_user):
    portal_services.grant_role(bob, "governance_officer", by=admin_user, tre=tre_a)
    job = new_job()
    with pytest.raises(Exception, match="another officer"):
        services.start_review(job, by=bob)


def test_double_submission_of_a_decision_is_harmless(client, new_job, olivia):
    job = new_job(S.IN_REVIEW)
    client.force_login(olivia)
    for _ in range(2):
        client.post(reverse("job_decide", args=[job.pk, "safe_people"]), {"outcome": "approve"})
    assert StepDecision.objects.filter(job=job).count() == 1
    response = client.post(
        reverse("job_decide", args=[job.pk, "safe_people"]),
        {"outcome": "reject", "rationale": "x"},
        follow=True,
    )
    assert "already decided" in response.content.decode()


def test_changes_requested_then_resubmission_returns_to_review(
    client, new_job, olivia, alice, crate_zip, django_capture_on_commit_callbacks
):
    job = new_job(S.CHANGES_REQUESTED)
    client.force_login(alice)
    from django.core.files.uploadedfile import SimpleUploadedFile

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("request_resubmit", args=[job.request_id]),
            {"crate": SimpleUploadedFile("v2.zip", crate_zip.read_bytes()), "message": "Named the dataset."},
        )
    job.refresh_from_db()
    assert job.status == S.AWAITING_REVIEW
    assert job.version.number == 2
    # Decisions on version 1 do not carry over to version 2.
    assert services.decisions_for(job) == {}
    assert AuditEvent.objects.filter(verb="request.resubmitted", object_id=str(job.pk)).exists()


def test_two_tres_review_independently(
    client, registry, alice, olivia, oscar, tre_a, tre_b, tmp_path, django_capture_on_commit_callbacks
):
    # The project is approved at TRE B too, with its own agreement and dataset.
    project = registry["project"]
    approval = portal_services.request_project_approval(project, tre_b, by=project.lead)
    portal_services.decide_project(approval, "approved", by=oscar)
    for membership_approval in project.memberships.all():
        for a in membership_approval.approvals.filter(tre=tre_b):
            portal_services.decide_membership(a, "approved", by=oscar)
    dataset_b = factories.DatasetFactory(tre=tre_b)
    agreement = factories.AgreementFactory(project=project, tre=tre_b, created_by=oscar)
    agreement.datasets.add(dataset_b)
    portal_services.change_agreement_status(agreement, "activate", by=oscar)
    wf_approval = portal_services.request_workflow_approval(registry["workflow"], tre_b, by=oscar)
    portal_services.decide_workflow(wf_approval, "approved", by=oscar)
    from tests import cratekit

    metadata = cratekit.request_metadata(
        orcid="0000-0002-1825-0097",
        project_identifier=project.identifier,
        workflow_id=registry["workflow"].workflow_id,
        datasets=[
            (registry["dataset"].identifier, registry["dataset"].name),
            (dataset_b.identifier, dataset_b.name),
        ],
    )
    zip_path = cratekit.make_crate_zip(tmp_path / "two.zip", metadata, cratekit.input_files())
    request = builders.submit(
        researcher=alice,
        project=project,
        tres=[tre_a, tre_b],
        crate_zip=zip_path,
        capture=django_capture_on_commit_callbacks,
    )
    job_a, job_b = request.jobs.get(tre=tre_a), request.jobs.get(tre=tre_b)
    builders.approve_all_steps(job_a, olivia)
    services.start_review(job_b, by=oscar)
    services.decide_step(job_b, "safe_settings", "reject", "Executor not allowed here.", by=oscar)
    job_a.refresh_from_db()
    job_b.refresh_from_db()
    assert (job_a.status, job_b.status) == (S.QUEUED, S.REJECTED)
    assert request.status_summary() == "mixed"
    # Each TRE's crate carries only its own sign-off.
    assert [s["actionStatus"] for s in _signoffs(job_a.metadata)] == [
        "http://schema.org/CompletedActionStatus"
    ]
    assert [s["actionStatus"] for s in _signoffs(job_b.metadata)] == ["http://schema.org/FailedActionStatus"]
    # The audit trail tells the same story.
    assert AuditEvent.objects.filter(verb="review.signed_off", tre_slug=tre_a.slug).count() == 1
    assert AuditEvent.objects.filter(verb="review.rejected", tre_slug=tre_b.slug).count() == 1
    assert audit.verify_chain() is None


def test_suspension_when_the_agreement_lapses_and_resumption(new_job, olivia, registry, client, alice):
    job = new_job(S.QUEUED)
    agreement = registry["project"].agreements.get()
    portal_services.change_agreement_status(agreement, "suspend", by=olivia, reason="Annual review overdue")
    suspended, _ = services.sweep_suspensions()
    job.refresh_from_db()
    assert [j.pk for j in suspended] == [job.pk]
    assert job.status == S.SUSPENDED and "No data-access agreement" in job.suspended_reason
    client.force_login(alice)
    assert "No data-access agreement" in client.get(reverse("suspended_jobs")).content.decode()
    portal_services.change_agreement_status(agreement, "activate", by=olivia)
    _, resumed = services.sweep_suspensions()
    job.refresh_from_db()
    assert [j.pk for j in resumed] == [job.pk] and job.status == S.QUEUED
    assert AuditEvent.objects.filter(verb="job.suspended").count() == 1
    assert AuditEvent.objects.filter(verb="job.resumed").count() == 1


def test_suspension_when_the_tre_pauses_or_accreditation_expires(new_job, olivia, alice, tre_a):
    job = new_job()
    portal_services.pause_tre(tre_a, by=olivia, reason="Maintenance")
    services.sweep_suspensions()
    job.refresh_from_db()
    assert job.status == S.SUSPENDED and "paused" in job.suspended_reason
    portal_services.resume_tre(tre_a, by=olivia)
    alice.accreditations.update(valid_until=timezone.localdate() - timedelta(days=1))
    services.sweep_suspensions()
    job.refresh_from_db()
    assert job.status == S.SUSPENDED  # still blocked: now by the accreditation
    factories.AccreditationFactory(person=alice)
    services.sweep_suspensions()
    job.refresh_from_db()
    assert job.status == S.AWAITING_REVIEW


def test_messages_reach_the_other_side_and_email_follows_preferences(new_job, olivia, alice):
    job = new_job()
    mail.outbox.clear()
    alice.profile.notification_preferences = {"message": False}
    alice.profile.save()
    services.post_message(job, "Which cohort definition did you use?", by=olivia)
    note = Notification.objects.get(recipient=alice, kind="message")
    assert "cohort definition" in note.body
    assert note.emailed_at is None and not mail.outbox


def test_emails_are_sent_once_by_the_task(new_job, olivia, alice, django_capture_on_commit_callbacks):
    job = new_job()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.post_message(job, "Please add the code list.", by=olivia)
    # The submitter and the project lead hear of it, once each.
    assert sorted(m.to[0] for m in mail.outbox) == ["alice@example.org", "bob@example.org"]
    from reviews.tasks import send_notification_email

    note = Notification.objects.get(recipient=alice, kind="message")
    assert send_notification_email(note.pk) == "already sent"
    assert len(mail.outbox) == 2


def test_decision_certificate_pdf(client, new_job, olivia):
    job = new_job(S.QUEUED)
    client.force_login(olivia)
    response = client.get(reverse("job_certificate", args=[job.pk]))
    assert response["Content-Type"] == "application/pdf" and response.content.startswith(b"%PDF")


def test_researcher_sees_the_timeline_and_messages(client, new_job, olivia, alice):
    job = new_job(S.CHANGES_REQUESTED)
    services.post_message(job, "See the note on Safe Data.", by=olivia)
    client.force_login(alice)
    page = client.get(job.get_absolute_url()).content.decode()
    assert "Name the dataset." in page
    assert "See the note on Safe Data." in page
    # The timeline says what happened in words, not as event codes.
    assert "asked for changes" in page and "review.changes_requested" not in page


def test_queue_page_query_count_is_the_same_at_10_and_1000_jobs(client, new_job, olivia, tre_a):
    job = new_job()
    client.force_login(olivia)
    url = reverse("review_queue", args=[tre_a.slug])

    def grow(n):
        # Many jobs at TRE A need many requests (one job per request and TRE).
        from crates.models import Request

        requests = Request.objects.bulk_create(
            Request(project=job.request.project, submitter=job.request.submitter, title=f"r{i}")
            for i in range(n)
        )
        Job.objects.bulk_create(Job(request=r, version=job.version, tre=tre_a, metadata={}) for r in requests)

    grow(9)
    client.get(url)
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200
    grow(990)
    with CaptureQueriesContext(connection) as large:
        assert client.get(url).status_code == 200
    assert Job.objects.filter(tre=tre_a).count() == 1000
    assert len(large) == len(small)


def test_safe_data_leaves_another_tres_datasets_to_that_tre(two_tre_request):
    from reviews.evidence import evidence_for

    for job in two_tre_request.jobs.select_related("tre"):
        findings = evidence_for(job, "safe_data")
        assert all(f["ok"] for f in findings), findings
        others = [f for f in findings if f["check"] == "elsewhere"]
        assert len(others) == 1 and "another TRE of this request" in others[0]["message"]
        assert job.tre.name not in others[0]["message"]


def test_safe_data_flags_a_dataset_no_target_tre_holds(new_job):
    from reviews.evidence import evidence_for

    job = new_job(S.IN_REVIEW)
    summary = dict(job.version.summary)
    summary["datasets"] = [
        *summary["datasets"],
        {"id": "https://example.org/datasets/nowhere", "name": "Nowhere"},
    ]
    type(job.version).objects.filter(pk=job.version_id).update(summary=summary)
    job.refresh_from_db()
    held = [f for f in evidence_for(job, "safe_data") if f["check"] == "held"]
    assert [f["ok"] for f in held] == [False]
    assert "Nowhere is not held by TRE A or any other TRE of this request" in held[0]["message"]

"""Finding 2: a membership in any state acted as a member. Only an approved member with a valid
accreditation (at the job's TRE) acts as one; an applicant (penny), a removed member (rex) and a lapsed
member (lena) see at most their own application. Every attack goes through HTTP."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from crates.models import Job, RequestVersion
from reviews import outputs
from reviews.models import OutputFile
from tests import builders, factories
from tests.dispatch_helpers import bearer

pytestmark = pytest.mark.django_db

S = Job.Status
OUTSIDERS = ["penny", "rex", "lena"]


@pytest.fixture
def outsiders(penny, rex, lena):
    return {"penny": penny, "rex": rex, "lena": lena}


@pytest.fixture
def returned(new_job, tmp_path):
    job = new_job(S.QUEUED)
    upload = builders.return_results(job, {"t.csv": b"a,b\nx,20\ny,30\n"}, tmp_path=tmp_path)
    outputs.check_outputs(upload.pk)
    job.refresh_from_db()
    return job


def _token(user):
    from portal import services

    return bearer(services.create_token(user, "attack", by=user)[1])


@pytest.mark.parametrize("who", OUTSIDERS)
def test_outsiders_see_none_of_the_projects_requests_jobs_crates_or_agreements(
    client, outsiders, who, new_job
):
    job = new_job(S.IN_REVIEW)
    agreement = job.request.project.agreements.get()
    client.force_login(outsiders[who])
    for url in (
        reverse("request_detail", args=[job.request_id]),
        reverse("job_detail", args=[job.pk]),
        reverse("job_crate", args=[job.pk]),
        reverse("job_certificate", args=[job.pk]),
        reverse("agreement_detail", args=[agreement.pk]),
        reverse("agreement_pdf", args=[agreement.pk]),
    ):
        assert client.get(url).status_code == 403, url
    listing = client.get(reverse("request_list")).content.decode()
    assert job.request.title not in listing
    assert agreement.reference not in client.get(reverse("agreement_list")).content.decode()
    api = _token(outsiders[who])
    assert client.get(f"/api/v1/jobs/{job.pk}/", headers=api).status_code == 404
    assert client.get(f"/api/v1/requests/{job.request_id}/", headers=api).status_code == 404
    assert client.get("/api/v1/requests/", headers=api).json()["count"] == 0


@pytest.mark.parametrize("who", OUTSIDERS)
def test_outsiders_cannot_cancel_a_job(client, outsiders, who, new_job):
    job = new_job(S.QUEUED)
    client.force_login(outsiders[who])
    client.post(reverse("job_cancel", args=[job.pk]), {"reason": "Because I can."})
    api = _token(outsiders[who])
    answer = client.post(f"/api/v1/jobs/{job.pk}/cancel/", {"reason": "Because I can."}, headers=api)
    assert answer.status_code in (403, 404)
    job.refresh_from_db()
    assert job.status == S.QUEUED


@pytest.mark.parametrize("who", OUTSIDERS)
def test_outsiders_cannot_withdraw_or_describe_outputs(client, outsiders, who, returned):
    output = returned.outputs.get()
    client.force_login(outsiders[who])
    assert client.post(reverse("output_withdraw", args=[output.pk])).status_code in (302, 403)
    api = _token(outsiders[who])
    answer = client.post(
        f"/api/v1/outputs/{output.pk}/describe/",
        {"context": "mine now"},
        headers=api,
        content_type="application/json",
    )
    assert answer.status_code in (403, 404)
    output.refresh_from_db()
    assert output.status != OutputFile.Status.WITHDRAWN
    assert output.researcher_context == ""


@pytest.mark.parametrize("who", OUTSIDERS)
def test_outsiders_cannot_submit_to_the_project(client, outsiders, who, registry, crate_zip, tre_a):
    api = _token(outsiders[who])
    with crate_zip.open("rb") as crate:
        answer = client.post(
            "/api/v1/requests/",
            {"project": registry["project"].identifier, "tres": tre_a.slug, "title": "Mine", "crate": crate},
            headers=api,
        )
    assert answer.status_code == 403, answer.content
    assert "approved member" in answer.json()["detail"]


def test_an_applicant_sees_only_their_own_application_on_the_project_page(client, penny, alice, project):
    client.force_login(penny)
    page = client.get(reverse("project_detail", args=[project.pk])).content.decode()
    assert penny.email in page
    assert alice.email not in page
    assert project.agreements.get().reference not in page
    detail = client.get(f"/api/v1/projects/{project.identifier}/", headers=_token(penny)).json()
    assert [m["person"] for m in detail["memberships"]] == [penny.email]


def test_a_member_whose_accreditation_ran_out_today_stops_acting_before_the_nightly_sweep(
    client, alice, new_job
):
    job = new_job(S.QUEUED)
    yesterday = timezone.localdate() - timedelta(days=1)
    alice.accreditations.update(valid_from=yesterday - timedelta(days=365), valid_until=yesterday)
    assert job.request.project.memberships.get(person=alice).status == "active"  # not swept yet
    client.force_login(alice)
    assert client.get(reverse("job_detail", args=[job.pk])).status_code == 403
    client.post(reverse("job_cancel", args=[job.pk]), {"reason": "Stop."})
    job.refresh_from_db()
    assert job.status == S.QUEUED


def test_a_member_approved_only_at_another_tre_does_not_act_on_this_tres_job(
    client, project, bob, olivia, tre_a, tre_b, new_job
):
    from portal import services

    carl = factories.UserFactory(username="carl")
    carl.groups.add(*bob.groups.filter(name="researcher"))
    factories.AccreditationFactory(person=carl)
    membership = services.invite_member(project, carl, "researcher", by=bob)
    services.accept_invitation(membership, by=carl)
    services.request_project_approval(project, tre_b, by=bob)
    approval_a = membership.approvals.get(tre=tre_a)
    services.decide_membership(approval_a, "refused", "Not at TRE A.", by=olivia)
    from portal.models import Decision, MembershipApproval

    # Approved at TRE B only (decided directly: TRE B's officer is not in this test's cast).
    MembershipApproval.objects.filter(membership=membership, tre=tre_b).update(
        status=Decision.APPROVED, decided_by=olivia, decided_at=timezone.now()
    )
    membership.status = "active"
    membership.save(update_fields=["status"])
    job = new_job(S.QUEUED)
    client.force_login(carl)
    assert client.get(reverse("job_detail", args=[job.pk])).status_code == 403
    client.post(reverse("job_cancel", args=[job.pk]), {"reason": "Stop."})
    job.refresh_from_db()
    assert job.status == S.QUEUED


def test_a_member_cannot_put_a_version_into_another_members_request(
    client, project, bob, olivia, new_job, crate_zip
):
    """Only the request's submitter (alice) or the project's lead (bob) send a new version."""
    from portal import services

    carl = factories.UserFactory(username="carl")
    carl.groups.add(*bob.groups.filter(name="researcher"))
    factories.AccreditationFactory(person=carl)
    membership = services.invite_member(project, carl, "researcher", by=bob)
    services.accept_invitation(membership, by=carl)
    for approval in membership.approvals.all():
        services.decide_membership(approval, "approved", by=olivia)
    job = new_job(S.CHANGES_REQUESTED)
    before = job.request.versions.count()
    with crate_zip.open("rb") as crate:
        answer = client.post(
            f"/api/v1/requests/{job.request_id}/versions/",
            {"crate": crate, "message": "Mine now."},
            headers=_token(carl),
        )
    assert answer.status_code == 403, answer.content
    client.force_login(carl)
    with crate_zip.open("rb") as crate:
        client.post(reverse("request_resubmit", args=[job.request_id]), {"crate": crate, "message": "Mine."})
    assert RequestVersion.objects.filter(request=job.request).count() == before
    # The lead still may.
    with crate_zip.open("rb") as crate:
        answer = client.post(
            f"/api/v1/requests/{job.request_id}/versions/",
            {"crate": crate, "message": "From the lead."},
            headers=_token(bob),
        )
    assert answer.status_code == 201, answer.content

"""Safe Outputs: automated checks when results arrive, independent blinded checkers, release, publication."""

import hashlib
import io
import json
import zipfile

import pytest
from django.core.exceptions import PermissionDenied

from crates.models import Job
from portal.audit import AuditEvent
from reviews import outputs
from reviews.models import OutputFile
from reviews.permissions import can_download_output
from tests import builders

pytestmark = pytest.mark.django_db

S = Job.Status
SAFE = b"age_band,female,male\n18-39,120,131\n40-64,210,198\n65+,95,88\n"
UNSAFE = b"age_band,female,male\n18-39,120,3\n40-64,210,198\n"


@pytest.fixture
def returned(new_job, tmp_path, django_capture_on_commit_callbacks):
    """A job whose agent returned two tables: one safe, one with a small cell."""
    job = new_job(S.QUEUED)
    upload = builders.return_results(job, {"by_age.csv": SAFE, "small.csv": UNSAFE}, tmp_path=tmp_path)
    outputs.check_outputs(upload.pk)
    job.refresh_from_db()
    return job


def test_results_are_checked_automatically_and_opened_for_checking(returned):
    assert returned.status == S.OUTPUT_REVIEW
    files = {o.name: o for o in returned.outputs.all()}
    assert set(files) == {"by_age.csv", "small.csv"}
    assert files["by_age.csv"].sdc_verdict == "pass"
    assert files["small.csv"].sdc_verdict == "fail"
    flagged = files["small.csv"].sdc["flags"]
    assert any(f["rule"] == "threshold" and f["value"] == "3" for f in flagged)
    assert files["small.csv"].policy_version == outputs.policy_for(returned).version


def test_checks_are_idempotent(returned):
    upload = returned.result_uploads.get()
    assert outputs.check_outputs(upload.pk) is None
    assert returned.outputs.count() == 2


def _vote_all(job, name, decision, *checkers, comment="See the small cell."):
    output = job.outputs.get(path__endswith=name)
    for checker in checkers:
        # Approving a file the checks did not pass needs a reason too (finding 12).
        reason = "" if decision == "approve" and output.sdc_verdict == "pass" else comment
        outputs.vote(output, decision, reason, by=checker)
    output.refresh_from_db()
    return output


def test_two_independent_approvals_then_release_file_by_file(returned, cam, chris, alice):
    safe = returned.outputs.get(path__endswith="by_age.csv")
    outputs.vote(safe, "approve", by=cam)
    safe.refresh_from_db()
    assert safe.status == OutputFile.Status.PENDING  # one of two
    # Blinded: chris cannot see cam's vote until he has voted too.
    assert outputs.votes_visible_to(safe, chris) == []
    outputs.vote(safe, "approve", by=chris)
    safe.refresh_from_db()
    assert safe.status == OutputFile.Status.APPROVED
    assert len(outputs.votes_visible_to(safe, chris)) == 2
    # Nothing is downloadable by the researcher before release.
    assert not can_download_output(alice, safe)
    outputs.release(safe, by=cam)
    safe.refresh_from_db()
    assert safe.status == OutputFile.Status.RELEASED and can_download_output(alice, safe)
    returned.refresh_from_db()
    assert returned.status == S.OUTPUT_REVIEW  # the other file is still being checked
    _vote_all(returned, "small.csv", "reject", cam, chris)
    returned.refresh_from_db()
    assert returned.status == S.RELEASED
    publication = returned.publication
    assert publication.approved
    with publication.stored.open("rb") as handle, zipfile.ZipFile(io.BytesIO(handle.read())) as archive:
        names = archive.namelist()
    assert any(n.endswith("outputs/by_age.csv") for n in names)
    assert not any(n.endswith("small.csv") for n in names)
    disclosure = [
        e for e in returned.metadata["@graph"] if "DisclosureCheck" in json.dumps(e.get("additionalType"))
    ]
    assert disclosure and disclosure[0]["actionStatus"] == "http://schema.org/CompletedActionStatus"


def test_changes_requested_and_the_researcher_responds(returned, cam, chris, alice):
    _vote_all(returned, "by_age.csv", "approve", cam, chris)
    small = _vote_all(returned, "small.csv", "changes", cam, chris, comment="Suppress or merge the 3.")
    returned.refresh_from_db()
    assert small.status == OutputFile.Status.CHANGES and returned.status == S.OUTPUT_CHANGES_REQUESTED
    outputs.respond(small, context="Counts by age band and sex.", justification="Merged the bands.", by=alice)
    small.refresh_from_db()
    returned.refresh_from_db()
    assert (small.status, small.round, returned.status) == (OutputFile.Status.PENDING, 2, S.OUTPUT_REVIEW)
    # A new round: the checkers vote again.
    _vote_all(returned, "small.csv", "approve", cam, chris)
    small.refresh_from_db()
    assert small.status == OutputFile.Status.APPROVED


def test_everything_rejected_is_withheld_and_returns_no_outputs(returned, cam, chris):
    _vote_all(returned, "by_age.csv", "reject", cam, chris, comment="Not in the agreement's output kinds.")
    _vote_all(returned, "small.csv", "reject", cam, chris)
    returned.refresh_from_db()
    assert returned.status == S.WITHHELD
    assert not returned.publication.approved
    with (
        returned.publication.stored.open("rb") as handle,
        zipfile.ZipFile(io.BytesIO(handle.read())) as archive,
    ):
        assert not any("outputs/" in n and n.endswith(".csv") for n in archive.namelist())


def test_checkers_must_be_independent_and_of_that_tre(returned, alice, oscar, cam, bob, tre_a, admin_user):
    from portal import roles, services

    output = returned.outputs.first()
    with pytest.raises(PermissionDenied):
        outputs.vote(output, "approve", by=oscar)
    services.grant_role(bob, roles.OUTPUT_CHECKER, by=admin_user, tre=tre_a)
    with pytest.raises(PermissionDenied, match="belong to this project"):
        outputs.vote(output, "approve", by=bob)


def test_votes_need_a_comment_unless_approving_and_are_cast_once(returned, cam):
    from django.core.exceptions import ValidationError

    output = returned.outputs.first()
    with pytest.raises(ValidationError):
        outputs.vote(output, "reject", "", by=cam)
    outputs.vote(output, "approve", by=cam)
    outputs.vote(output, "approve", by=cam)  # the same vote twice is harmless
    assert output.votes.count() == 1
    with pytest.raises(outputs.OutputError, match="already voted"):
        outputs.vote(output, "reject", "changed my mind", by=cam)


def test_only_approved_files_can_be_released(returned, cam):
    with pytest.raises(outputs.OutputError, match="Only an approved file"):
        outputs.release(returned.outputs.first(), by=cam)


def test_withdrawing_every_file_withholds(returned, alice):
    for output in returned.outputs.all():
        outputs.withdraw(output, by=alice)
    returned.refresh_from_db()
    assert returned.status == S.WITHHELD
    assert AuditEvent.objects.filter(verb="outputs.file_withdrawn").count() == 2


def test_agreement_overrides_tighten_the_policy(new_job, tmp_path, registry):
    agreement = registry["project"].agreements.get()
    agreement.disclosure_overrides = {"min_cell_count": 150}
    agreement.save()
    job = new_job(S.QUEUED)
    upload = builders.return_results(job, {"by_age.csv": SAFE}, tmp_path=tmp_path)
    outputs.check_outputs(upload.pk)
    output = job.outputs.get()
    assert output.sdc_verdict == "fail" and output.policy["min_cell_count"] == 150


def _release_everything(job, cam, chris):
    for output in job.outputs.all():
        outputs.vote(output, "approve", "Checked by hand.", by=cam)
        outputs.vote(output, "approve", "Checked by hand.", by=chris)
        outputs.release(output, by=cam)
    job.refresh_from_db()


@pytest.mark.oracle
def test_published_crates_pass_the_community_profile(returned, new_job, cam, chris, tmp_path):
    from tests import oracle

    _release_everything(returned, cam, chris)
    assert returned.status == S.RELEASED
    withheld = new_job(S.QUEUED, title="Withheld")
    upload = builders.return_results(withheld, {"small.csv": UNSAFE}, tmp_path=tmp_path)
    outputs.check_outputs(upload.pk)
    for output in withheld.outputs.all():
        outputs.vote(output, "reject", "Small cell.", by=cam)
        outputs.vote(output, "reject", "Small cell.", by=chris)
    withheld.refresh_from_db()
    assert withheld.status == S.WITHHELD
    paths = []
    for job in (returned, withheld):
        path = tmp_path / f"published-{job.pk}.zip"
        with job.publication.stored.open("rb") as source:
            path.write_bytes(source.read())
        paths.append(path)
    # The released crate meets every recommendation; the withheld one carries no outputs, so it
    # cannot meet "a completed run SHOULD have a result", but it meets every requirement.
    assert oracle.judge(paths[:1], severity="recommended") == {str(paths[0]): []}
    assert oracle.judge(paths, severity="required") == {str(p): [] for p in paths}


def test_pages_for_checkers_and_researchers(client, returned, cam, chris, alice):
    client.force_login(cam)
    page = client.get(f"/jobs/{returned.pk}/outputs/").content.decode()
    assert "small.csv" in page and "Record my vote" in page
    small = returned.outputs.get(path__endswith="small.csv")
    viewer = client.get(f"/outputs/{small.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert "portal-flag--fail" in viewer and "<html" not in viewer
    client.post(f"/outputs/{small.pk}/vote/", {"decision": "approve", "comment": "A known test row."})
    assert small.votes.count() == 1
    # The researcher sees flags and status, but neither content nor download before release.
    client.force_login(alice)
    assert client.get(f"/outputs/{small.pk}/download/").status_code == 403
    viewer = client.get(f"/outputs/{small.pk}/").content.decode()
    assert "The content is shown once the file is released" in viewer
    safe = returned.outputs.get(path__endswith="by_age.csv")
    outputs.vote(safe, "approve", by=cam)
    outputs.vote(safe, "approve", by=chris)
    outputs.release(safe, by=chris)
    response = client.get(f"/outputs/{safe.pk}/download/")
    assert b"".join(response.streaming_content) == SAFE
    assert AuditEvent.objects.filter(verb="outputs.file_downloaded", actor_label=alice.email).count() == 1
    pdf = client.get(f"/jobs/{returned.pk}/outputs/certificate.pdf")
    assert pdf.content.startswith(b"%PDF")


def test_no_output_is_reachable_before_release_by_anyone_outside(client, returned, pat, oscar, audrey, bob):
    output = returned.outputs.first()
    for user in (pat, oscar, audrey, bob):
        client.force_login(user)
        response = client.get(f"/outputs/{output.pk}/download/")
        assert response.status_code in (403, 404), user


def test_api_parity_for_checkers_and_researchers(client, returned, cam, chris, alice):
    import time

    from portal import permissions, services

    def headers(user):
        scopes = permissions.token_scopes_for(user)  # made right after a second-factor check
        secret = services.create_token(
            user, "api", by=user, days=1, scopes=scopes, second_factor_at=time.time()
        )[1]
        return {"authorization": f"Bearer {secret}"}

    researcher, checker_1, checker_2 = headers(alice), headers(cam), headers(chris)
    listing = client.get(f"/api/v1/jobs/{returned.pk}/outputs/", headers=researcher).json()
    safe = next(o for o in listing if o["name"] == "by_age.csv")
    assert safe["download"] is None
    client.post(
        f"/api/v1/outputs/{safe['id']}/describe/",
        {"context": "Counts by band.", "justification": ""},
        headers=researcher,
        content_type="application/json",
    )
    for checker in (checker_1, checker_2):
        response = client.post(
            f"/api/v1/outputs/{safe['id']}/votes/",
            {"decision": "approve"},
            headers=checker,
            content_type="application/json",
        )
        assert response.status_code == 200, response.content
    released = client.post(f"/api/v1/outputs/{safe['id']}/release/", headers=checker_1).json()
    assert released["status"] == "released"
    listing = client.get(f"/api/v1/jobs/{returned.pk}/outputs/", headers=researcher).json()
    link = next(o for o in listing if o["name"] == "by_age.csv")["download"]
    assert link.endswith(f"/api/v1/outputs/{safe['id']}/download/")
    # The link works with the same token: the file, not a sign-in page.
    downloaded = client.get(link, headers=researcher)
    assert downloaded.status_code == 200
    assert hashlib.sha256(b"".join(downloaded.streaming_content)).hexdigest() == safe["sha256"]
    refused = client.post(
        f"/api/v1/outputs/{safe['id']}/votes/",
        {"decision": "approve"},
        headers=researcher,
        content_type="application/json",
    )
    assert refused.status_code == 403

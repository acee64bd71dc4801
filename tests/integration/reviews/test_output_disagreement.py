"""Issue 16, part 5: the TRE's policy settles a disagreement between output checkers, and the outputs
page, the API and the certificate say how each file was settled."""

import pytest

from crates.models import Job
from portal.audit import AuditEvent
from reviews import outputs
from reviews.models import OutputFile
from tests import builders

pytestmark = pytest.mark.django_db

S = Job.Status
F = OutputFile.Status
TABLE = b"age_band,female,male\n18-39,120,131\n40-64,210,198\n"


@pytest.fixture
def third_checker(tre_a, admin_user):
    from portal import roles
    from portal import services as portal_services
    from tests.conftest import _person

    kim = _person("kim", mfa=True)
    portal_services.grant_role(kim, roles.OUTPUT_CHECKER, by=admin_user, tre=tre_a)
    return kim


def _output(new_job, tmp_path):
    job = new_job(S.QUEUED)
    upload = builders.return_results(job, {"by_age.csv": TABLE}, tmp_path=tmp_path)
    outputs.check_outputs(upload.pk)
    return job.outputs.get()


def _refreshed(output):
    output.refresh_from_db()
    return output


@pytest.mark.parametrize(
    ("votes", "status", "settlement"),
    [
        (["approve", "approve"], F.APPROVED, "unanimous"),
        (["approve", "reject"], F.REJECTED, "cautious"),
        (["approve", "changes"], F.CHANGES, "cautious"),
        (["changes", "reject"], F.REJECTED, "cautious"),
    ],
)
def test_on_disagreement_reject_takes_the_most_cautious_decision(
    new_job, tmp_path, tre_a, cam, chris, votes, status, settlement
):
    assert tre_a.on_disagreement == "reject"  # the default
    output = _output(new_job, tmp_path)
    for checker, decision in zip((cam, chris), votes, strict=True):
        outputs.vote(output, decision, "" if decision == "approve" else "A reason.", by=checker)
    output = _refreshed(output)
    assert (output.status, output.settlement) == (status, settlement)


def test_asking_one_more_checker_lets_the_majority_decide(
    client, new_job, tmp_path, tre_a, cam, chris, third_checker
):
    tre_a.on_disagreement = "ask_another"
    tre_a.save()
    output = _output(new_job, tmp_path)
    outputs.vote(output, "approve", by=cam)
    outputs.vote(output, "reject", "The male 40-64 cell is close to a known count.", by=chris)
    output = _refreshed(output)
    assert output.status == F.PENDING and output.settlement == ""
    assert outputs.votes_needed(output) == 3
    assert AuditEvent.objects.filter(verb="outputs.disagreement").count() == 1
    client.force_login(third_checker)
    page = client.get(f"/jobs/{output.job_id}/outputs/").content.decode()
    assert "The checkers disagree." in page and "Record my vote" in page and "2 of 3 votes" in page
    outputs.vote(output, "approve", by=third_checker)
    output = _refreshed(output)
    assert (output.status, output.settlement) == (F.APPROVED, "majority")
    page = client.get(f"/jobs/{output.job_id}/outputs/").content.decode()
    assert "one more checker was asked and the majority decided" in page
    pdf = client.get(f"/jobs/{output.job_id}/outputs/certificate.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    import time

    from portal import permissions, services

    token = services.create_token(
        cam, "api", by=cam, days=1, scopes=permissions.token_scopes_for(cam), second_factor_at=time.time()
    )[1]
    listing = client.get(
        f"/api/v1/jobs/{output.job_id}/outputs/", headers={"authorization": f"Bearer {token}"}
    ).json()
    assert listing[0]["settlement"] == "majority"


def test_no_majority_after_one_more_checker_keeps_the_most_cautious(
    new_job, tmp_path, tre_a, cam, chris, third_checker
):
    tre_a.on_disagreement = "ask_another"
    tre_a.save()
    output = _output(new_job, tmp_path)
    outputs.vote(output, "approve", by=cam)
    outputs.vote(output, "reject", "Too close.", by=chris)
    outputs.vote(output, "changes", "Round the cells.", by=third_checker)
    output = _refreshed(output)
    assert (output.status, output.settlement) == (F.REJECTED, "no_majority")


def test_settle_is_a_table():
    settle = outputs.settle
    assert settle(["approve"], 2, "reject") is None
    assert settle(["approve", "approve"], 2, "ask_another") == (F.APPROVED, "unanimous")
    assert settle(["approve", "reject"], 2, "ask_another") is None
    assert settle(["approve", "reject", "reject"], 2, "ask_another") == (F.REJECTED, "majority")
    assert settle(["reject", "approve", "approve"], 2, "ask_another") == (F.APPROVED, "majority")

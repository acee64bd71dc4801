"""Federated results: released tables from several TREs combined, re-checked and released again."""

import pytest
from django.core.exceptions import PermissionDenied

from crates.models import Job
from portal import roles
from portal import services as portal_services
from reviews import federation, outputs
from reviews.models import CombinedRelease
from reviews.permissions import can_download_combined
from tests import builders

pytestmark = pytest.mark.django_db

S = Job.Status
TABLE_A = b"age_band,female,male\n18-39,120,131\n40-64,210,198\n"
TABLE_B = b"age_band,female,male\n18-39,95,104\n40-64,60,12\n"


@pytest.fixture
def checkers_b(tre_b, admin_user):
    from tests.conftest import _person

    dana, erin = _person("dana", mfa=True), _person("erin", mfa=True)
    for user in (dana, erin):
        portal_services.grant_role(user, roles.OUTPUT_CHECKER, by=admin_user, tre=tre_b)
    return dana, erin


def _run_and_release(job, officer, checkers, table, tmp_path, name="by_age.csv"):
    builders.approve_all_steps(job, officer)
    upload = builders.return_results(job, {name: table}, tmp_path=tmp_path)
    outputs.check_outputs(upload.pk)
    for output in job.outputs.all():
        for checker in checkers:
            outputs.vote(output, "approve", by=checker)
        outputs.release(output, by=checkers[0])
    job.refresh_from_db()
    assert job.status == S.RELEASED
    return job


@pytest.fixture
def released_at_both(two_tre_request, olivia, oscar, cam, chris, checkers_b, tre_a, tre_b, tmp_path):
    job_a = two_tre_request.jobs.get(tre=tre_a)
    job_b = two_tre_request.jobs.get(tre=tre_b)
    _run_and_release(job_a, olivia, [cam, chris], TABLE_A, tmp_path)
    _run_and_release(job_b, oscar, list(checkers_b), TABLE_B, tmp_path)
    return two_tre_request


def test_released_tables_with_one_schema_combine_and_are_rechecked(released_at_both, alice, cam):
    assert list(federation.combinable(released_at_both)) == ["by_age.csv"]
    release = federation.combine(released_at_both, "by_age.csv", by=alice)
    assert release.table["rows"] == [["18-39", "215", "235"], ["40-64", "270", "210"]]
    assert release.status == CombinedRelease.Status.PENDING
    # 210 (combined) - 198 (TRE A's released cell) = 12 is not small; 270 - 210 = 60 neither; but
    # subtracting TRE B's 12 from 210 leaves 198, fine: no differencing risk here.
    assert release.differencing == []
    assert release.sdc_verdict == "pass"
    assert not can_download_combined(alice, release)
    federation.decide(release, True, by=cam)
    release.refresh_from_db()
    assert release.status == CombinedRelease.Status.RELEASED and can_download_combined(alice, release)


def test_differencing_against_an_earlier_combination_is_flagged(released_at_both, alice, cam):
    first = federation.combine(released_at_both, "by_age.csv", by=alice)
    federation.decide(first, True, by=cam)
    # A second combination identical to the first recovers nothing; make one cell differ by a small count.
    first.table["rows"][0][1] = "210"  # as if an earlier release had 210 where the new one has 215
    CombinedRelease.objects.filter(pk=first.pk).update(table=first.table)
    second = federation.combine(released_at_both, "by_age.csv", by=alice)
    assert any(r["value"] == "5" for r in second.differencing)
    assert second.sdc_verdict == "review"
    with pytest.raises(Exception, match="differencing"):
        federation.decide(second, True, by=cam)
    federation.decide(second, True, "The earlier table was an interim count of the same people.", by=cam)


def test_mismatched_schemas_are_refused(
    two_tre_request, olivia, oscar, cam, chris, checkers_b, tre_a, tre_b, tmp_path, alice
):
    _run_and_release(two_tre_request.jobs.get(tre=tre_a), olivia, [cam, chris], TABLE_A, tmp_path)
    other = b"age_band,female,male,unknown\n18-39,95,104,11\n40-64,60,12,10\n"
    _run_and_release(two_tre_request.jobs.get(tre=tre_b), oscar, list(checkers_b), other, tmp_path)
    with pytest.raises(federation.CombineError, match="schemas differ"):
        federation.combine(two_tre_request, "by_age.csv", by=alice)


def test_only_members_and_checkers_combine_and_only_checkers_decide(released_at_both, pat, alice):
    with pytest.raises(PermissionDenied):
        federation.combine(released_at_both, "by_age.csv", by=pat)
    release = federation.combine(released_at_both, "by_age.csv", by=alice)
    with pytest.raises(PermissionDenied):
        federation.decide(release, True, by=alice)


def test_combined_pages(client, released_at_both, alice, cam):
    client.force_login(alice)
    page = client.get(f"/requests/{released_at_both.pk}/combined/").content.decode()
    assert "by_age.csv" in page
    response = client.post(f"/requests/{released_at_both.pk}/combined/", {"name": "by_age.csv"})
    release = CombinedRelease.objects.get()
    assert response.url == f"/combined/{release.pk}/"
    assert client.get(f"/combined/{release.pk}/download/").status_code == 403
    client.force_login(cam)
    client.post(f"/combined/{release.pk}/", {"decision": "release"})
    client.force_login(alice)
    download = client.get(f"/combined/{release.pk}/download/")
    assert b"".join(download.streaming_content).startswith(b"age_band,female,male\n18-39,215,235")

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


def test_different_row_label_columns_are_refused(
    two_tre_request, olivia, oscar, cam, chris, checkers_b, tre_a, tre_b, tmp_path, alice
):
    _run_and_release(two_tre_request.jobs.get(tre=tre_a), olivia, [cam, chris], TABLE_A, tmp_path)
    other = b"region,female,male\nNorth,95,104\nSouth,60,12\n"
    _run_and_release(two_tre_request.jobs.get(tre=tre_b), oscar, list(checkers_b), other, tmp_path)
    with pytest.raises(federation.CombineError, match="schemas differ"):
        federation.combine(two_tre_request, "by_age.csv", by=alice)


def test_long_tables_combine_by_label_tuple_whatever_the_order_and_categories(
    two_tre_request, olivia, oscar, cam, chris, checkers_b, tre_a, tre_b, tmp_path, alice
):
    # TRE A: age_band, sex, persons; TRE B: sex first, a band TRE A lacks, and one TRE A has missing.
    table_a = b"age_band,sex,persons\n0-9,female,214\n0-9,male,194\n0-9,other,0\n90+,female,40\n90+,male,31\n"
    table_b = (
        b"sex,age_band,persons\nmale,0-9,100\nfemale,0-9,120\nother,0-9,0\nfemale,100+,12\nmale,100+,0\n"
    )
    _run_and_release(two_tre_request.jobs.get(tre=tre_a), olivia, [cam, chris], table_a, tmp_path, "t.csv")
    _run_and_release(two_tre_request.jobs.get(tre=tre_b), oscar, list(checkers_b), table_b, tmp_path, "t.csv")
    release = federation.combine(two_tre_request, "t.csv", by=alice)
    assert release.table["header"] == ["age_band", "sex", "persons"]
    assert release.table["rows"] == [
        ["0-9", "female", "334"],
        ["0-9", "male", "294"],
        ["0-9", "other", "0"],
        ["90+", "female", "40"],
        ["90+", "male", "31"],
        ["100+", "female", "12"],
        ["100+", "male", "0"],
    ]
    assert release.sdc_verdict == "pass", release.sdc
    assert any("contributes nothing" in note for note in release.sdc["notes"])
    assert release.differencing == []


def test_the_combined_table_is_rounded_and_checked_under_the_strictest_policy(
    two_tre_request, olivia, oscar, cam, chris, checkers_b, tre_a, tre_b, tmp_path, alice
):
    tre_b.rounding_base, tre_b.min_cell_count = 5, 20
    tre_b.save()
    table_a = b"age_band,female,male\n18-39,120,131\n40-64,210,198\n"
    table_b = b"age_band,female,male\n18-39,95,105\n40-64,60,20\n"
    _run_and_release(two_tre_request.jobs.get(tre=tre_a), olivia, [cam, chris], table_a, tmp_path)
    _run_and_release(two_tre_request.jobs.get(tre=tre_b), oscar, list(checkers_b), table_b, tmp_path)
    release = federation.combine(two_tre_request, "by_age.csv", by=alice)
    assert release.table["rows"] == [
        ["18-39", "215", "235"],
        ["40-64", "270", "220"],
    ]  # 236 -> 235, 218 -> 220
    assert release.policy["min_cell_count"] == 20 and release.policy["rounding_base"] == 5
    assert release.sdc_verdict == "pass"
    # 220 combined minus TRE A's 198 leaves 22: not under 20; 235 - 131 = 104. Nothing small.
    assert release.differencing == []


def test_differencing_against_each_tre_is_flagged(
    two_tre_request, olivia, oscar, cam, chris, checkers_b, tre_a, tre_b, tmp_path, alice
):
    table_a = b"age_band,female,male\n18-39,120,131\n"
    table_b = b"age_band,female,male,other\n18-39,5,104,4\n"
    _run_and_release(two_tre_request.jobs.get(tre=tre_a), olivia, [cam, chris], table_a, tmp_path)
    job_b = two_tre_request.jobs.get(tre=tre_b)
    builders.approve_all_steps(job_b, oscar)
    upload = builders.return_results(job_b, {"by_age.csv": table_b}, tmp_path=tmp_path)
    outputs.check_outputs(upload.pk)
    output = job_b.outputs.get()
    for checker in checkers_b:
        outputs.vote(output, "approve", "Accepted after discussion with the TRE.", by=checker)  # as they may
    outputs.release(output, by=checkers_b[0])
    release = federation.combine(two_tre_request, "by_age.csv", by=alice)
    assert release.table["rows"] == [["18-39", "125", "235", "4"]]
    assert release.sdc_verdict == "fail"  # the combined 4 is still under the threshold
    # 125 combined minus TRE A's released 120 gives TRE B's 5 back.
    assert [(r["row"], r["column"], r["value"]) for r in release.differencing] == [("18-39", "female", "5")]


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


def test_the_api_combines_shows_and_decides_as_the_pages_do(client, released_at_both, alice, cam, pat):
    import time

    from portal import permissions, services

    def headers(user):
        scopes = permissions.token_scopes_for(user)  # made right after a second-factor check
        secret = services.create_token(
            user, "api", by=user, days=1, scopes=scopes, second_factor_at=time.time()
        )[1]
        return {"authorization": f"Bearer {secret}"}

    url = f"/api/v1/requests/{released_at_both.pk}/combined/"
    listing = client.get(url, headers=headers(alice)).json()
    assert listing == {"combinable": ["by_age.csv"], "releases": []}
    made = client.post(url, {"name": "by_age.csv"}, headers=headers(alice), content_type="application/json")
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["sdc_verdict"] == "pass" and body["table"] is None  # not yet released to the researcher
    assert [s["tre"] for s in body["sources"]] == ["tre-a", "tre-b"]
    refused = client.post(
        url, {"name": "nothing.csv"}, headers=headers(alice), content_type="application/json"
    )
    assert refused.status_code == 400 and "No two TREs" in refused.json()["detail"]
    detail = f"/api/v1/combined/{body['id']}/"
    assert client.get(detail, headers=headers(cam)).json()["table"]["rows"][0] == ["18-39", "215", "235"]
    denied = client.post(
        detail + "decision/", {"release": True}, headers=headers(alice), content_type="application/json"
    )
    assert denied.status_code == 403
    decided = client.post(
        detail + "decision/", {"release": True}, headers=headers(cam), content_type="application/json"
    )
    assert decided.json()["status"] == "released"
    assert client.get(detail, headers=headers(alice)).json()["table"]["header"] == [
        "age_band",
        "female",
        "male",
    ]

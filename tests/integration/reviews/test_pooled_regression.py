"""A pooled DataSHIELD regression round at the portal: each TRE's released glmDS2 answer (X'WX, score,
deviance, counts), pooled into the next coefficients; with the disclosure checks on what is pooled."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from django.core.exceptions import PermissionDenied

from reviews import federation, outputs
from reviews.pooling import beta_text
from tests import builders
from tests.integration.reviews.test_federation import checkers_b  # noqa: F401 - a fixture
from tests.unit.agent import opal_server
from tests.unit.agent.opal_server import glm_ds2
from tests.unit.agent.test_datashield_pooling import make_rows

pytestmark = pytest.mark.django_db

FORMULA = "SBP~AGE+BMI+SEX"


def answer(rows, beta, *, formula=FORMULA):
    """The call-01-glmDS2.json a TRE's agent writes, computed by the dsBase stand-in on the TRE's rows."""
    call = f"glmDS2('{formula}', 'gaussian', '{beta_text(beta)}', NULL, NULL, 'D')"
    result = glm_ds2(
        formula, "gaussian", beta_text(beta), None, None, "D", session=SimpleNamespace(symbols={"D": rows})
    )
    return json.dumps({"index": 1, "call": call, "status": "completed", "result": result}).encode()


def _run_and_release(job, officer, checkers, document, tmp_path, name):
    """Run the job's review, return its answer and release it: aggregates, so checkers approve with a reason."""
    builders.approve_all_steps(job, officer)
    upload = builders.return_results(job, {name: document}, tmp_path=tmp_path)
    outputs.check_outputs(upload.pk)
    for output in job.outputs.all():
        for checker in checkers:
            outputs.vote(
                output, "approve", "X'WX, score and counts only: no row, no per-TRE estimate.", by=checker
            )
        outputs.release(output, by=checkers[0])
    return job


def release_round(request, beta, rows_a, rows_b, people, tmp_path, **kwargs):
    olivia, oscar, cam, chris, checkers = people
    job_a = request.jobs.get(tre__slug=people_tre(request, 0))
    job_b = request.jobs.get(tre__slug=people_tre(request, 1))
    _run_and_release(
        job_a, olivia, [cam, chris], answer(rows_a, beta, **kwargs), tmp_path, "call-01-glmDS2.json"
    )
    _run_and_release(job_b, oscar, list(checkers), answer(rows_b, beta), tmp_path, "call-01-glmDS2.json")


def people_tre(request, index):
    return sorted(job.tre.slug for job in request.jobs.all())[index]


@pytest.fixture
def people(olivia, oscar, cam, chris, checkers_b):  # noqa: F811
    return olivia, oscar, cam, chris, checkers_b


def test_the_released_answers_of_two_tres_pool_into_the_least_squares_fit(
    two_tre_request, people, alice, tmp_path
):
    rows_a, rows_b = make_rows(1, 140), make_rows(2, 90)
    release_round(two_tre_request, [0.0] * 4, rows_a, rows_b, people, tmp_path)

    pooled = federation.glm_round(two_tre_request, by=alice)

    x, y = [], []
    for rows in (rows_a, rows_b):
        for i in range(len(rows["SBP"])):
            values = [rows[c][i] for c in ("AGE", "BMI", "SEX", "SBP")]
            if None not in values:
                x.append([1.0, *values[:3]])
                y.append(values[3])
    expected, *_ = np.linalg.lstsq(np.array(x), np.array(y), rcond=None)
    # one Newton step from zero is the least-squares fit, from the TREs' totals alone
    assert np.allclose(pooled["coefficients_next"], expected, rtol=0, atol=1e-6)
    assert pooled["coefficients_sent"] == [0.0] * 4 and not pooled["converged"]
    assert pooled["n_valid"] == len(y) and sorted(pooled["per_tre_n"].values()) == [88, 138]
    assert pooled["next_call"].startswith("glmDS2('SBP~AGE+BMI+SEX', 'gaussian', '")
    assert (
        pooled["next_call"].endswith("', NULL, NULL, 'D')") and "+" not in pooled["next_call"].split("'")[5]
    )


def test_a_saturated_model_at_one_tre_is_not_pooled(two_tre_request, people, alice, tmp_path, monkeypatch):
    # a TRE whose Opal has a laxer nfilter.glm than dsBase's default answers; the portal still refuses
    monkeypatch.setattr(opal_server, "NFILTER_GLM", 0.5)
    small = make_rows(3, 10)
    release_round(two_tre_request, [0.0] * 4, make_rows(1, 140), small, people, tmp_path)
    with pytest.raises(federation.CombineError, match="saturated model"):
        federation.glm_round(two_tre_request, by=alice)


def test_answers_to_different_calls_are_not_pooled(two_tre_request, people, alice, tmp_path):
    release_round(
        two_tre_request,
        [0.0] * 4,
        make_rows(1, 140),
        make_rows(2, 90),
        people,
        tmp_path,
        formula="SBP~AGE+BMI+HYP",
    )
    with pytest.raises(federation.CombineError, match="different regression calls"):
        federation.glm_round(two_tre_request, by=alice)


def test_only_the_project_and_checkers_pool_and_nothing_released_means_nothing_to_pool(
    two_tre_request, people, alice, pat, tmp_path
):
    with pytest.raises(federation.CombineError, match="No TRE has released a regression answer"):
        federation.glm_round(two_tre_request, by=alice)
    release_round(two_tre_request, [0.0] * 4, make_rows(1, 140), make_rows(2, 90), people, tmp_path)
    with pytest.raises(PermissionDenied):
        federation.glm_round(two_tre_request, by=pat)


def _token(user):
    import time

    from portal import permissions, services

    scopes = permissions.token_scopes_for(user)  # made right after a second-factor check
    secret = services.create_token(user, "api", by=user, days=1, scopes=scopes, second_factor_at=time.time())[
        1
    ]
    return {"authorization": f"Bearer {secret}"}


def test_the_api_pools_a_round_as_the_function_does_and_refuses_whom_it_refuses(
    client, two_tre_request, people, alice, pat, tmp_path
):
    url = f"/api/v1/requests/{two_tre_request.pk}/regression/"
    nothing = client.get(url, headers=_token(alice))
    assert nothing.status_code == 400 and "No TRE has released" in nothing.json()["detail"]
    release_round(two_tre_request, [0.0] * 4, make_rows(1, 140), make_rows(2, 90), people, tmp_path)

    body = client.get(url, headers=_token(alice)).json()
    assert body == federation.glm_round(two_tre_request, by=alice)
    again = client.get(url, {"previous_deviance": body["deviance"]}, headers=_token(alice)).json()
    assert again["converged"] is True  # the same answers again: the deviance did not move

    assert client.get(url, {"previous_deviance": "a lot"}, headers=_token(alice)).status_code == 400
    assert client.get(url, headers=_token(pat)).status_code in (403, 404)
    assert client.get(url).status_code in (401, 403)

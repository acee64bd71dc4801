"""Pooled DataSHIELD regressions and summaries across three TREs, end to end.

Each TRE is an Opal-shaped server (opal_server.py) holding its own rows; each round of a regression is a
real job at each TRE's agent (the ``datashield`` executor over HTTP) whose ``glmDS2`` answer holds only
X'WX, the score, the deviance and counts. The portal's pooling (reviews.pooling) combines the answers;
the coefficients must match a fit on the pooled raw rows (numpy) to 1e-6.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from agent.executors import execute
from agent.executors.base import ExecutionStatus
from reviews.pooling import (
    GlmAnswer,
    PoolingError,
    beta_text,
    check_glm_answers,
    pooled_glm,
    pooled_summary,
    read_glm_answer,
)
from tests.unit.agent.conftest import REPO
from tests.unit.agent.opal_server import OpalServer
from tests.unit.agent.test_datashield import TOKEN, ds_config, ds_job

APPROVED = ["glmDS2", "meanDS", "varDS"]
SIZES = {"tre-a": 140, "tre-b": 90, "tre-c": 170}


def make_rows(seed: int, n: int) -> dict[str, list]:
    """Synthetic rows of one TRE: age, BMI, sex (0/1), systolic blood pressure and a binary outcome."""
    rng = random.Random(seed)
    rows = {"AGE": [], "BMI": [], "SEX": [], "SBP": [], "HYP": []}
    for _ in range(n):
        age = rng.uniform(25, 80)
        bmi = rng.gauss(27, 4)
        sex = rng.randint(0, 1)
        sbp = 95 + 0.6 * age + 0.9 * bmi + 4 * sex + rng.gauss(0, 9)
        logit = -9 + 0.08 * age + 0.15 * bmi + 0.4 * sex
        hyp = 1 if rng.random() < 1 / (1 + math.exp(-logit)) else 0
        for key, value in zip(rows, (round(age, 1), round(bmi, 1), sex, round(sbp, 1), hyp), strict=True):
            rows[key].append(value)
    # a few missing values: the TREs use complete cases, as glm does
    rows["BMI"][3] = None
    rows["SBP"][7] = None
    return rows


@pytest.fixture
def tres(tmp_path):
    """Three TREs: an Opal server and an agent configuration each."""
    servers = {}
    try:
        for seed, (name, size) in enumerate(SIZES.items(), start=1):
            server = OpalServer(
                token=TOKEN,
                tables={"STUDY.HEALTH": make_rows(seed, size)},
                profiles={"default": APPROVED},
            )
            server.__enter__()
            directory = tmp_path / name
            directory.mkdir()
            servers[name] = (server, ds_config(directory, server.url))
        yield servers
    finally:
        for server, _ in servers.values():
            server.__exit__(None, None, None)


def run_call(name, server, config, call, job_id):
    """One job at one TRE's agent; the answer is the ``result`` in its call output (what a checker releases)."""
    job = ds_job(
        config,
        [call],
        assignments={"D": "STUDY.HEALTH"},
        service={"profile": "default", "functions": APPROVED},
        job_id=job_id,
    )
    result = execute(job, config)
    assert result.status is ExecutionStatus.COMPLETED, result.reason
    [output] = [o for o in result.outputs if o.path.startswith("call-01-")]
    document = json.loads((job.directory.outputs / output.path).read_text())
    assert document["status"] == "completed", document
    return document["result"]


def pooled_fit(tres, formula, family, n_params):
    rounds = []

    def run_round(beta):
        rounds.append(beta)
        call = f"glmDS2('{formula}', '{family}', '{beta_text(beta)}', NULL, NULL, 'D')"
        return [
            read_glm_answer(name, run_call(name, server, config, call, f"glm-{len(rounds)}"))
            for name, (server, config) in tres.items()
        ]

    return pooled_glm(run_round, n_params=n_params, family=family), rounds


def pooled_raw(columns, response):
    """The pooled raw rows (complete cases) as a design matrix with an intercept, and the response."""
    x, y = [], []
    for seed, size in enumerate(SIZES.values(), start=1):
        rows = make_rows(seed, size)
        for i in range(size):
            values = [rows[c][i] for c in columns]
            if None in values or rows[response][i] is None:
                continue
            x.append([1.0, *map(float, values)])
            y.append(float(rows[response][i]))
    return np.array(x), np.array(y)


def test_a_gaussian_regression_pooled_across_three_tres_matches_least_squares_on_the_pooled_rows(tres):
    fit, rounds = pooled_fit(tres, "SBP ~ AGE + BMI + SEX", "gaussian", 4)

    x, y = pooled_raw(["AGE", "BMI", "SEX"], "SBP")
    expected, *_ = np.linalg.lstsq(x, y, rcond=None)
    assert fit.converged
    assert len(rounds) == 3  # at zero; at least squares (one Newton step); the deviance confirms it
    assert np.allclose(fit.coefficients, expected, rtol=0, atol=1e-6)
    residuals = y - x @ expected
    dispersion = residuals @ residuals / (len(y) - 4)
    standard_errors = np.sqrt(np.diag(np.linalg.inv(x.T @ x)) * dispersion)
    assert np.allclose(fit.standard_errors, standard_errors, rtol=1e-8, atol=0)
    assert fit.n_valid == len(y)
    assert fit.per_tre_n == {name: size - 2 for name, size in SIZES.items()}


def test_a_binomial_regression_pooled_across_three_tres_matches_the_pooled_maximum_likelihood_fit(tres):
    fit, rounds = pooled_fit(tres, "HYP ~ AGE + BMI + SEX", "binomial", 4)

    x, y = pooled_raw(["AGE", "BMI", "SEX"], "HYP")
    # the reference: Newton-Raphson on the pooled raw rows with numpy, to machine precision
    beta = np.zeros(4)
    for _ in range(50):
        mu = 1 / (1 + np.exp(-(x @ beta)))
        step = np.linalg.solve(x.T @ (x * (mu * (1 - mu))[:, None]), x.T @ (y - mu))
        beta += step
        if np.max(np.abs(step)) < 1e-14:
            break
    assert fit.converged and 3 <= len(rounds) <= 12
    assert np.allclose(fit.coefficients, beta, rtol=0, atol=1e-6)
    # the fit is the maximum-likelihood estimate: the score of the pooled rows is zero there
    mu = 1 / (1 + np.exp(-(x @ np.array(fit.coefficients))))
    assert np.max(np.abs(x.T @ (y - mu))) < 1e-6
    info = x.T @ (x * (mu * (1 - mu))[:, None])
    assert np.allclose(fit.standard_errors, np.sqrt(np.diag(np.linalg.inv(info))), rtol=1e-6, atol=0)


def test_only_aggregates_leave_each_tre(tres):
    server, config = tres["tre-a"]
    answer = run_call(
        "tre-a", server, config, "glmDS2('SBP~AGE', 'gaussian', '0.0,0.0', NULL, NULL, 'D')", "j"
    )
    assert set(answer) == {
        "family", "info.matrix", "score.vect", "numsubs", "dev", "Nvalid", "Nmissing", "Ntotal",
        "disclosure.risk", "errorMessage2",
    }  # fmt: skip
    assert len(answer["info.matrix"]) == 2 and len(answer["score.vect"]) == 2  # p x p and p, not n
    [request] = [r for r in server.requests if r.path.endswith("/aggregate")]
    assert request.body.decode() == "glmDS2('SBP~AGE', 'gaussian', '0.0,0.0', NULL, NULL, 'D')"


def test_pooled_mean_and_variance_match_the_pooled_values(tres):
    answers = {
        name: run_call(name, server, config, "varDS(D$SBP)", "v") for name, (server, config) in tres.items()
    }
    means = {
        name: run_call(name, server, config, "meanDS(D$SBP)", "m") for name, (server, config) in tres.items()
    }
    values = [
        v
        for seed, size in enumerate(SIZES.values(), 1)
        for v in make_rows(seed, size)["SBP"]
        if v is not None
    ]

    summary = pooled_summary(answers)
    assert summary.n_valid == len(values) and summary.n_missing == 3
    assert summary.mean == pytest.approx(float(np.mean(values)), abs=1e-9)
    assert summary.variance == pytest.approx(float(np.var(values, ddof=1)), rel=1e-9)
    from_means = pooled_summary(means)
    assert from_means.mean == pytest.approx(summary.mean, abs=1e-9) and from_means.variance is None


def answer(tre="tre-a", n=100, p=2, risk=False):
    return GlmAnswer(tre, tuple(tuple(1.0 if i == j else 0.0 for j in range(p)) for i in range(p)),
                     (0.0,) * p, 1.0, n, disclosure_risk=risk)  # fmt: skip


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ([answer(), answer("tre-b", n=2)], "tre-b has 2 usable rows, under the minimum of 3"),
        ([answer(), answer("tre-b", n=5)], "2 coefficients for 5 usable rows at tre-b"),
        ([answer(), answer("tre-b", risk=True)], "tre-b flagged a disclosure risk"),
        ([answer(), answer("tre-b", p=3)], "tre-b answered for 3 coefficients, not 2"),
        ([answer(), answer()], "tre-a answered twice"),
        ([], "no answers"),
    ],
)
def test_answers_that_must_not_be_pooled_are_refused_with_a_reason(answers, message):
    with pytest.raises(PoolingError, match=message):
        check_glm_answers(answers, n_params=2)


def test_a_saturated_model_at_one_tre_stops_the_pooled_fit_before_anything_is_combined():
    def run_round(beta):
        return [answer("tre-a", n=300, p=4), answer("tre-b", n=9, p=4)]

    with pytest.raises(PoolingError, match="saturated"):
        pooled_glm(run_round, n_params=4, family="gaussian")


def test_collinear_variables_give_a_plain_reason_not_a_crash():
    singular = GlmAnswer("tre-a", ((1.0, 1.0), (1.0, 1.0)), (1.0, 1.0), 1.0, 100)
    with pytest.raises(PoolingError, match="singular"):
        pooled_glm(lambda beta: [singular], n_params=2, family="gaussian")


def test_a_tre_answer_that_is_not_a_regression_answer_is_refused():
    with pytest.raises(PoolingError, match="no information matrix"):
        read_glm_answer("tre-a", {"EstimatedMean": 3})
    with pytest.raises(PoolingError, match="not square"):
        read_glm_answer("tre-a", {"info.matrix": [[1, 0]], "score.vect": [1, 2], "dev": 1, "Nvalid": 9})
    with pytest.raises(PoolingError, match="usable deviance"):
        read_glm_answer("tre-a", {"info.matrix": [[1]], "score.vect": [1], "dev": "NaN", "Nvalid": 9})


def test_the_tre_refuses_a_formula_that_is_more_than_variable_names(tres, tmp_path: Path):
    server, config = tres["tre-a"]
    job = ds_job(
        config,
        ["glmDS2('SBP~log(AGE)', 'gaussian', '0,0', NULL, NULL, 'D')"],
        assignments={"D": "STUDY.HEALTH"},
        service={"profile": "default", "functions": APPROVED},
        job_id="bad",
    )
    result = execute(job, config)
    assert result.status is ExecutionStatus.FAILED
    assert "is not 'response ~ term + term" in result.reason
    assert not [r for r in server.requests if "/session" in r.path]  # nothing reached Opal


def test_the_shipped_workflow_request_is_the_first_round_of_a_logistic_model(tres):
    request = json.loads((REPO / "workflows" / "datashield-glm" / "datashield-glm.json").read_text())
    server, config = tres["tre-b"]
    [call] = request["calls"]
    assert request["assignments"] == {"D": "STUDY.HEALTH"}
    first = read_glm_answer("tre-b", run_call("tre-b", server, config, call, "shipped"))
    assert len(first.score) == 4 and first.n_valid == SIZES["tre-b"] - 1  # one missing BMI

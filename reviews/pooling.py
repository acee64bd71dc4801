"""Pooling DataSHIELD answers from several TREs: ``ds.glm``-style regressions and pooled summaries.

Each TRE's agent returns only non-disclosive aggregates, computed by dsBase on the TRE's Opal:

* for a regression, one ``glmDS2`` answer per TRE and round: the information matrix ``X'WX``, the score
  vector ``X'W(z - eta)`` (so that ``beta + (sum of X'WX)^-1 (sum of scores)`` is the next iterate), the
  deviance and the counts ``Nvalid``/``Nmissing``/``Ntotal``, all at the coefficients the portal sent;
* for a pooled summary, ``meanDS``/``varDS`` answers: a mean (or sum and sum of squares) and the counts.

The portal combines them as DataSHIELD's client (``ds.glm``, ``ds.mean``, ``ds.var`` with
``type="combine"``) does. One round of a regression is one job at every TRE; :func:`pooled_glm` repeats
rounds until the pooled deviance converges (``|dev - dev_old| / (|dev| + 0.1) < epsilon``). A gaussian
model takes three rounds: at zero (one Newton step from there is the least-squares solution), at the
least-squares coefficients, and one whose unchanged deviance confirms them; a binomial one typically
takes six to eight.

The disclosure checks apply to what is pooled, before anything is combined (:func:`check_glm_answers`):
a TRE that flagged a disclosure risk, or whose valid count is under ``min_valid`` (nfilter.subset), or
whose model is saturated (more parameters than ``nfilter_glm`` times its valid count: dsBase's
``nfilter.glm`` rule), is refused with a plain reason; answers whose shapes disagree are refused too.

Pure Python (no Django, no numpy): the numbers are few (a p x p matrix per TRE).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from portal.errors import Refusal

__all__ = [
    "FAMILIES",
    "GlmAnswer",
    "GlmFit",
    "GlmStep",
    "PoolingError",
    "PooledSummary",
    "beta_text",
    "check_glm_answers",
    "glm_step",
    "pooled_glm",
    "pooled_summary",
    "read_glm_answer",
]

FAMILIES = ("gaussian", "binomial", "poisson")
#: dsBase's defaults (``datashield.privacyLevel`` settings on the Opal server).
NFILTER_GLM = 0.33
NFILTER_SUBSET = 3
EPSILON = 1e-10
MAX_ITERATIONS = 20


class PoolingError(Refusal):
    """The answers cannot be pooled; the message says why in plain words (safe to show researchers)."""


@dataclass(frozen=True)
class GlmAnswer:
    """One TRE's ``glmDS2`` answer for one round."""

    tre: str
    info: tuple[tuple[float, ...], ...]
    score: tuple[float, ...]
    deviance: float
    n_valid: int
    n_missing: int = 0
    n_total: int = 0
    disclosure_risk: bool = False


@dataclass(frozen=True)
class GlmStep:
    """The pooled result of one round: the next coefficients and the pooled deviance at the sent ones."""

    beta_next: tuple[float, ...]
    deviance: float
    info: tuple[tuple[float, ...], ...]
    n_valid: int


@dataclass(frozen=True)
class GlmFit:
    """A pooled regression: coefficients in the formula's column order, with standard errors."""

    family: str
    coefficients: tuple[float, ...]
    standard_errors: tuple[float, ...]
    deviance: float
    dispersion: float
    n_valid: int
    iterations: int
    converged: bool
    per_tre_n: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "coefficients": list(self.coefficients),
            "standard_errors": list(self.standard_errors),
            "deviance": self.deviance,
            "dispersion": self.dispersion,
            "n_valid": self.n_valid,
            "iterations": self.iterations,
            "converged": self.converged,
            "per_tre_n": dict(self.per_tre_n),
        }


@dataclass(frozen=True)
class PooledSummary:
    """A pooled mean (and variance when the TREs returned sums of squares) of one variable."""

    n_valid: int
    n_missing: int
    mean: float
    variance: float | None
    per_tre_n: Mapping[str, int]


# --------------------------------------------------------------------------- reading answers
def _first(value: Any) -> Any:
    """jsonlite writes a length-one vector as a scalar (auto_unbox) or, without it, as a one-item list."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def _number(value: Any, what: str, tre: str) -> float:
    value = _first(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PoolingError(f"The answer from {tre} has no usable {what}.")
    return float(value)


def read_glm_answer(tre: str, result: Mapping[str, Any]) -> GlmAnswer:
    """A TRE's ``glmDS2`` result (the ``result`` of its ``call-NN-glmDS2.json`` output) as a :class:`GlmAnswer`.

    The information matrix is read as jsonlite writes an R matrix (a list of rows); the score vector
    either as a list of numbers or as a one-column matrix.
    """
    if not isinstance(result, Mapping):
        raise PoolingError(f"The answer from {tre} is not a regression answer.")
    raw_info = result.get("info.matrix")
    raw_score = result.get("score.vect")
    if not isinstance(raw_info, list) or not raw_info or not isinstance(raw_score, list):
        raise PoolingError(f"The answer from {tre} has no information matrix and score vector.")
    score = tuple(_number(item, "score vector", tre) for item in raw_score)
    info = []
    for row in raw_info:
        if not isinstance(row, list) or len(row) != len(score):
            raise PoolingError(
                f"The information matrix from {tre} is not square with the score vector's size."
            )
        info.append(tuple(_number(item, "information matrix", tre) for item in row))
    if len(info) != len(score):
        raise PoolingError(f"The information matrix from {tre} is not square with the score vector's size.")
    risk = _first(result.get("disclosure.risk", 0))
    return GlmAnswer(
        tre=tre,
        info=tuple(info),
        score=score,
        deviance=_number(result.get("dev"), "deviance", tre),
        n_valid=int(_number(result.get("Nvalid"), "count of valid rows", tre)),
        n_missing=int(_number(result.get("Nmissing", 0), "count of missing rows", tre)),
        n_total=int(_number(result.get("Ntotal", 0), "count of rows", tre)),
        disclosure_risk=bool(risk) and risk not in ("0", 0),
    )


# --------------------------------------------------------------------------- disclosure checks
def check_glm_answers(
    answers: Sequence[GlmAnswer],
    *,
    n_params: int,
    nfilter_glm: float = NFILTER_GLM,
    min_valid: int = NFILTER_SUBSET,
) -> None:
    """Refuse (``PoolingError``) answers that must not be pooled; see the module docstring."""
    if len(answers) < 1:
        raise PoolingError("There are no answers to pool.")
    seen = set()
    for answer in answers:
        if answer.tre in seen:
            raise PoolingError(f"{answer.tre} answered twice in one round.")
        seen.add(answer.tre)
        if answer.disclosure_risk:
            raise PoolingError(f"{answer.tre} flagged a disclosure risk in its answer; nothing is pooled.")
        if len(answer.score) != n_params:
            raise PoolingError(
                f"{answer.tre} answered for {len(answer.score)} coefficients, not {n_params}: "
                "the TREs' variables differ (for example a category missing at one TRE)."
            )
        if answer.n_valid < min_valid:
            raise PoolingError(
                f"{answer.tre} has {answer.n_valid} usable rows, under the minimum of {min_valid}; nothing is pooled."
            )
        if n_params > nfilter_glm * answer.n_valid:
            raise PoolingError(
                f"The model has {n_params} coefficients for {answer.n_valid} usable rows at {answer.tre}: "
                f"more than {nfilter_glm:g} per row, a saturated model that could reveal individual values."
            )


# --------------------------------------------------------------------------- linear algebra
def _inverse(matrix: Sequence[Sequence[float]]) -> list[list[float]]:
    """Gauss-Jordan inverse with partial pivoting; a (near) singular matrix is a ``PoolingError``."""
    size = len(matrix)
    work = [
        [float(v) for v in row] + [1.0 if i == j else 0.0 for j in range(size)]
        for i, row in enumerate(matrix)
    ]
    scale = max((abs(v) for row in matrix for v in row), default=0.0)
    for column in range(size):
        pivot = max(range(column, size), key=lambda r: abs(work[r][column]))
        if abs(work[pivot][column]) <= scale * 1e-13:
            raise PoolingError(
                "The pooled information matrix is singular: some variables are constant or duplicate others."
            )
        work[column], work[pivot] = work[pivot], work[column]
        factor = work[column][column]
        work[column] = [v / factor for v in work[column]]
        for row in range(size):
            if row != column and work[row][column] != 0.0:
                multiple = work[row][column]
                work[row] = [a - multiple * b for a, b in zip(work[row], work[column], strict=True)]
    return [row[size:] for row in work]


def glm_step(answers: Sequence[GlmAnswer], beta: Sequence[float], *, n_params: int | None = None) -> GlmStep:
    """Pool one round's answers (already checked) into the next coefficients, as ``ds.glm`` does."""
    size = len(beta) if n_params is None else n_params
    info = [[sum(a.info[i][j] for a in answers) for j in range(size)] for i in range(size)]
    score = [sum(a.score[i] for a in answers) for i in range(size)]
    inverse = _inverse(info)
    update = [sum(inverse[i][j] * score[j] for j in range(size)) for i in range(size)]
    return GlmStep(
        beta_next=tuple(b + u for b, u in zip(beta, update, strict=True)),
        deviance=sum(a.deviance for a in answers),
        info=tuple(tuple(row) for row in info),
        n_valid=sum(a.n_valid for a in answers),
    )


def beta_text(beta: Sequence[float]) -> str:
    """The coefficients as the comma-separated text ``glmDS2`` takes (no ``+``, which calls may not hold)."""
    return ",".join(repr(float(value)).replace("e+", "e") for value in beta)


def pooled_glm(
    run_round: Callable[[tuple[float, ...]], Sequence[GlmAnswer]],
    *,
    n_params: int,
    family: str,
    epsilon: float = EPSILON,
    max_iterations: int = MAX_ITERATIONS,
    nfilter_glm: float = NFILTER_GLM,
    min_valid: int = NFILTER_SUBSET,
) -> GlmFit:
    """Fit a regression across TREs: ``run_round(beta)`` asks every TRE for its ``glmDS2`` answer at ``beta``.

    Starts at zero, as ``ds.glm`` does, and stops when the pooled deviance converges. Every round's
    answers are checked before they are pooled. Standard errors are ``sqrt(diag((X'WX)^-1) * dispersion)``,
    the dispersion being ``deviance / (n - p)`` for gaussian models and 1 otherwise.
    """
    if family not in FAMILIES:
        raise PoolingError(f"The family {family!r} is not one the portal pools ({', '.join(FAMILIES)}).")
    if n_params < 1:
        raise PoolingError("A model needs at least one coefficient.")
    beta = tuple(0.0 for _ in range(n_params))
    previous = math.inf
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        answers = list(run_round(beta))
        check_glm_answers(answers, n_params=n_params, nfilter_glm=nfilter_glm, min_valid=min_valid)
        counts = {answer.tre: answer.n_valid for answer in answers}
        step = glm_step(answers, beta, n_params=n_params)
        converged = abs(step.deviance - previous) / (abs(step.deviance) + 0.1) < epsilon
        if converged:
            break
        previous = step.deviance
        beta = step.beta_next
    dispersion = 1.0
    if family == "gaussian":
        residual_df = step.n_valid - n_params
        if residual_df <= 0:
            raise PoolingError("The pooled model has no residual degrees of freedom.")
        dispersion = step.deviance / residual_df
    covariance = _inverse(step.info)
    return GlmFit(
        family=family,
        coefficients=step.beta_next,
        standard_errors=tuple(math.sqrt(max(covariance[i][i] * dispersion, 0.0)) for i in range(n_params)),
        deviance=step.deviance,
        dispersion=dispersion,
        n_valid=step.n_valid,
        iterations=iterations,
        converged=converged,
        per_tre_n=counts,
    )


# --------------------------------------------------------------------------- pooled summaries
def pooled_summary(
    answers: Mapping[str, Mapping[str, Any]], *, min_valid: int = NFILTER_SUBSET
) -> PooledSummary:
    """Pool per-TRE ``meanDS`` or ``varDS`` results (``{tre: result}``) into one mean, and variance.

    ``meanDS`` gives ``EstimatedMean`` and ``Nvalid``; ``varDS`` gives ``Sum``, ``SumOfSquares`` and
    ``Nvalid``. With sums of squares from every TRE the pooled variance is the sample variance of the
    pooled values, ``(SS - n * mean^2) / (n - 1)``, as ``ds.var(type="combine")`` computes it.
    """
    if not answers:
        raise PoolingError("There are no answers to pool.")
    n_total = n_missing = 0
    weighted = 0.0
    squares: float | None = 0.0
    counts = {}
    for tre, result in answers.items():
        if not isinstance(result, Mapping):
            raise PoolingError(f"The answer from {tre} is not a summary.")
        n_valid = int(_number(result.get("Nvalid"), "count of valid values", tre))
        if n_valid < min_valid:
            raise PoolingError(
                f"{tre} has {n_valid} valid values, under the minimum of {min_valid}; nothing is pooled."
            )
        if "Sum" in result:
            total = _number(result.get("Sum"), "sum", tre)
        else:
            total = _number(result.get("EstimatedMean"), "mean", tre) * n_valid
        if squares is not None and "SumOfSquares" in result:
            squares += _number(result.get("SumOfSquares"), "sum of squares", tre)
        else:
            squares = None
        weighted += total
        n_total += n_valid
        n_missing += int(_number(result.get("Nmissing", 0), "count of missing values", tre))
        counts[tre] = n_valid
    mean = weighted / n_total
    variance = None
    if squares is not None and n_total > 1:
        variance = (squares - n_total * mean * mean) / (n_total - 1)
    return PooledSummary(n_valid=n_total, n_missing=n_missing, mean=mean, variance=variance, per_tre_n=counts)

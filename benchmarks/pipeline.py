"""Benchmark of the portal's own work on one request, from submission to released outputs.

A request crate goes through every step with the real service functions, in the order a request
takes (the route ``tests/builders.py`` walks): submission, the validation task, the review of the four
Safes, sign-off, the agent's claim and its download of the crate, the upload of the results crate
and the completion report, the automatic disclosure checks, two checkers' votes on each output and
the release. The agent's own work (running the workflow, writing the results crate) happens between
the timed steps and is not counted. Each step is timed, round after round on fresh requests, and
compared with a baseline: copying the bytes of the request crate and of the results crate, file to
file. Reported: median per step, the median total, and the total over the baseline.

Run by ``python -m benchmarks`` (``--only pipeline``); ``measure`` returns the measurements, ``goals``
and ``render`` read them.
"""

from __future__ import annotations

import hashlib
import io
import random
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import Goal, MiB, database_child, per_database, progress, ratio, size_text

NAME = "pipeline"

STAGES = (
    ("submit", "submission: the crate stored and hashed, the request, its version and their audit events"),
    ("validation", "the validation task: unpacking, BagIt, the profile, registry cross-checks, the job"),
    ("review", "starting the review and deciding the four Safes, with their evidence"),
    ("sign-off", "sign-off: evidence, write-back into the crate, approved and queued"),
    ("claim", "the agent's claim (lease, fencing token) and its report that the job runs"),
    ("download", "the job's crate exported for the agent"),
    ("upload", "the results crate received, verified and stored, and the agent's completion report"),
    ("disclosure checks", "the automatic disclosure checks task: unpacking, checks per output"),
    ("votes", "two output checkers' votes on each output"),
    ("release", "releasing each output; the published results crate"),
)

# Two tables the disclosure checks pass (no small cells), as a workflow's outputs.
TABLES = {
    "by_age.csv": b"age_band,female,male\n18-39,120,131\n40-64,210,198\n65+,95,88\n",
    "by_region.csv": b"region,patients\nNorth,1520\nMidlands,1733\nSouth,2210\n",
}


@dataclass(frozen=True)
class Plan:
    warm_up: int  # requests walked first, untimed
    rounds: int  # requests timed
    input_files: int
    input_bytes: int  # each


FULL = Plan(warm_up=1, rounds=10, input_files=8, input_bytes=1 * MiB)
QUICK = Plan(warm_up=0, rounds=1, input_files=2, input_bytes=64 * 1024)


class Stopwatch:
    """Seconds (and, when counting, queries) per stage of one round."""

    def __init__(self, *, count_queries: bool = False) -> None:
        self.seconds: dict[str, float] = {}
        self.queries: dict[str, int] = {}
        self.count_queries = count_queries

    @contextmanager
    def stage(self, name: str):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        capture = CaptureQueriesContext(connection) if self.count_queries else nullcontext()
        with capture as captured:
            started = time.perf_counter()
            yield
            self.seconds[name] = time.perf_counter() - started
        if captured is not None:
            self.queries[name] = len(captured)


def request_crate(fed, folder: Path, plan: Plan) -> Path:
    """A valid request crate naming the federation's researcher, project, workflow and dataset."""
    from tests import cratekit

    metadata = cratekit.request_metadata(
        orcid=fed.alice.profile.orcid,
        project_identifier=fed.project.identifier,
        workflow_id=fed.workflow.workflow_id,
        datasets=[(fed.dataset.identifier, fed.dataset.name)],
    )
    rng = random.Random(5)
    files = {f"inputs/input-{n}.bin": rng.randbytes(plan.input_bytes) for n in range(plan.input_files)}
    return cratekit.make_crate_zip(folder / "request.zip", metadata, files)


def results_crate(job, folder: Path) -> Path:
    """The results crate the reference agent writes for ``job``: the agent's work, not timed."""
    from tests.builders import completed_results_crate

    return completed_results_crate(job, TABLES, folder)


def one_request(fed, agent, crate: Path, folder: Path, number: int, watch: Stopwatch) -> dict[str, int]:
    """Walk one request from submission to release; returns the sizes of the crates it moved."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from crates import dispatch
    from crates import services as crate_services
    from crates import tasks as crate_tasks
    from crates.models import Job
    from reviews import outputs
    from reviews import services as review_services
    from reviews import tasks as review_tasks
    from reviews.models import CHECK_STEPS, Step

    upload = SimpleUploadedFile(crate.name, crate.read_bytes(), content_type="application/zip")
    with watch.stage("submit"):
        request = crate_services.submit_request(
            by=fed.alice, project=fed.project, tres=[fed.tre], title=f"Pipeline {number}", upload=upload
        )
    version = request.versions.get()
    with watch.stage("validation"):
        crate_tasks.validate_version(version.pk)
    version.refresh_from_db()
    if version.status != "valid":
        raise RuntimeError(f"the benchmark's crate is not valid: {version.validation_report}")
    job = request.jobs.get()
    with watch.stage("review"):
        review_services.start_review(job, by=fed.olivia)
        for step in CHECK_STEPS:
            review_services.decide_step(job, step, "approve", "Checked by hand.", by=fed.olivia)
    with watch.stage("sign-off"):
        review_services.decide_step(job, Step.SIGN_OFF, "approve", "All five safes met.", by=fed.olivia)
    with watch.stage("claim"):
        claim = dispatch.claim_next(agent)
        token = claim.lease.fencing_token
        dispatch.report_status(agent, claim.job.pk, fencing_token=token, status="running")
    if claim.job.pk != job.pk:
        raise RuntimeError("the agent claimed another job")
    with watch.stage("download"):
        downloaded, _ = dispatch.export_crate_for(agent, job.pk, fencing_token=token, dest_dir=folder)
    job.refresh_from_db()
    results = results_crate(job, folder)
    body = results.read_bytes()
    with watch.stage("upload"):
        received, _ = dispatch.receive_results(
            agent,
            job.pk,
            fencing_token=token,
            idempotency_key=f"results-{job.pk}",
            declared_sha256=hashlib.sha256(body).hexdigest(),
            stream=io.BytesIO(body),
            length=len(body),
        )
        dispatch.report_status(agent, job.pk, fencing_token=token, status="completed")
    with watch.stage("disclosure checks"):
        review_tasks.check_outputs(received.pk)
    files = list(job.outputs.all())
    with watch.stage("votes"):
        for output in files:
            for checker in (fed.cam, fed.chris):
                outputs.vote(output, "approve", "Benchmark: checked by hand.", by=checker)
    with watch.stage("release"):
        for output in files:
            outputs.release(output, by=fed.cam)
    job.refresh_from_db()
    if job.status != Job.Status.RELEASED:
        raise RuntimeError(f"the request ended {job.status}, not released")
    return {
        "request_crate": crate.stat().st_size,
        "results_crate": len(body),
        "job_crate": downloaded.stat().st_size,
    }


def copy_baseline(crate: Path, results: Path, folder: Path) -> float:
    """Seconds to copy the request crate's and the results crate's bytes once each, file to file."""
    started = time.perf_counter()
    shutil.copyfile(crate, folder / "request-copy.zip")
    shutil.copyfile(results, folder / "results-copy.zip")
    return time.perf_counter() - started


def measure_here(quick: bool) -> dict[str, Any]:
    from django.conf import settings

    from benchmarks import federation
    from crates import dispatch

    plan = QUICK if quick else FULL
    progress(NAME, "building the federation")
    fed = federation.build()
    agent, _ = dispatch.issue_agent(fed.tre, "benchmark agent", by=fed.olivia)
    rounds: list[dict[str, float]] = []
    baseline: list[float] = []
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as temporary:
        folder = Path(temporary)
        crate = request_crate(fed, folder, plan)
        copies = Path(settings.MEDIA_ROOT) / "baseline"
        copies.mkdir(parents=True, exist_ok=True)
        # Warm-up requests first (imports, caches), then the timed ones, then one whose queries are counted.
        total = plan.warm_up + plan.rounds + 1
        for number in range(total):
            timed = plan.warm_up <= number < plan.warm_up + plan.rounds
            what = "warm-up" if number < plan.warm_up else ("timed" if timed else "counting queries")
            progress(NAME, f"request {number + 1}/{total} ({what})")
            scratch = folder / f"round-{number}"
            scratch.mkdir()
            watch = Stopwatch(count_queries=number == total - 1)
            sizes = one_request(fed, agent, crate, scratch, number, watch)
            if timed:
                rounds.append(watch.seconds)
                baseline.append(copy_baseline(crate, next(scratch.glob("results-*.zip")), copies))
            elif watch.count_queries:
                queries = watch.queries
    return {"plan": plan.__dict__, "rounds": rounds, "baseline": baseline, "queries": queries, "sizes": sizes}


def measure(quick: bool = False, database_url: str = "") -> dict[str, Any]:
    return {"quick": quick, "databases": per_database("benchmarks.pipeline", NAME, quick, database_url)}


# -- goals and report -----------------------------------------------------------------------------------------
def _figures(run: dict[str, Any]) -> dict[str, float]:
    totals = [sum(stages.values()) for stages in run["rounds"]]
    return {"total": statistics.median(totals), "baseline": statistics.median(run["baseline"])}


DATABASE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def goals(result: dict[str, Any]) -> list[Goal]:
    found = []
    for database, run in result["databases"].items():
        figures = _figures(run)
        found.append(
            Goal(
                NAME,
                f"pipeline on {DATABASE_NAMES.get(database, database)}: the portal's time for one request "
                "from submission to release, over the time to copy its crates' bytes",
                f"{figures['total']:.2f} s against {figures['baseline'] * 1000:.1f} ms: "
                f"{ratio(figures['total'] / figures['baseline'])}",
                None,
            )
        )
    return found


def render(result: dict[str, Any]) -> str:
    runs = result["databases"]
    names = [run["database"] for run in runs.values()]
    lines = []
    if result["quick"]:
        lines += [
            "> Quick run: a small crate and one timed request. These numbers only show the benchmark works.",
            "",
        ]
    lines += [
        "| step | what the portal does | " + " | ".join(f"{name}: ms (queries)" for name in names) + " |",
        "|---|---|" + "---:|" * len(names),
    ]
    for key, what in STAGES:
        cells = [
            f"{statistics.median(r[key] for r in run['rounds']) * 1000:,.1f} ({run['queries'][key]})"
            for run in runs.values()
        ]
        lines.append(f"| {key} | {what} | " + " | ".join(cells) + " |")
    figures = [_figures(run) for run in runs.values()]
    lines += [
        "| **total** (median of the rounds' totals) | | "
        + " | ".join(
            f"**{f['total'] * 1000:,.0f}** ({sum(run['queries'].values())})"
            for f, run in zip(figures, runs.values(), strict=True)
        )
        + " |",
        "| baseline: copying the two crates' bytes | | "
        + " | ".join(f"{f['baseline'] * 1000:,.2f}" for f in figures)
        + " |",
        "| **total / baseline** | | "
        + " | ".join(f"**{ratio(f['total'] / f['baseline'])}**" for f in figures)
        + " |",
        "",
    ]
    first = next(iter(runs.values()))
    plan, sizes = first["plan"], first["sizes"]
    for run in runs.values():
        steps = sorted(
            ((statistics.median(r[key] for r in run["rounds"]), key) for key, _ in STAGES), reverse=True
        )
        total = _figures(run)["total"]
        lines.append(
            f"- On {run['database']}, the three slowest steps take "
            + ", ".join(f"{seconds / total:.0%} ({key})" for seconds, key in steps[:3])
            + " of the total."
        )
    lines += [
        "",
        f"How it is measured: each database is built in a fresh process and given the federation of "
        "`benchmarks/federation.py` through the services. The request crate holds the request metadata "
        f"(naming the federation's researcher, project, workflow and dataset) and {plan['input_files']} "
        f"input files of {size_text(plan['input_bytes'])} of random bytes, zipped: "
        f"{size_text(sizes['request_crate'])}; the crate exported for the agent is "
        f"{size_text(sizes['job_crate'])} and the results crate, written by the reference agent's "
        f"`write_result_crate` with two tables, {size_text(sizes['results_crate'])}. Each request is "
        "walked by the real service functions in the order above, as its researcher, officer, agent and "
        "two checkers; the background tasks (validation, disclosure checks) are called as the worker "
        "calls them, and enqueueing them and the notification e-mails on the django-q2 ORM broker is part "
        "of the step that does it. Not counted: the agent's workflow run and the writing of its results "
        "crate, and the time a request waits for people. "
        + f"Timed: {plan['rounds']} request{'s' if plan['rounds'] > 1 else ''} (medians shown)"
        + (
            f", after {plan['warm_up']} untimed warm-up request{'s' if plan['warm_up'] > 1 else ''}"
            if plan["warm_up"]
            else ""
        )
        + "; then one "
        "more whose queries are counted. The baseline, measured after each timed request, copies the "
        "request crate and the results crate file to file (`shutil.copyfile`) into the media folder.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return database_child(NAME, measure_here, argv)


if __name__ == "__main__":
    sys.exit(main())

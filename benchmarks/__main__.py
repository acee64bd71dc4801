"""Run every benchmark and write docs/performance.md: ``python -m benchmarks``.

Each benchmark runs in a fresh interpreter, one after the other, and hands back its measurements as
JSON; the document is then written from ``benchmarks/performance-template.md``: the run's date,
machine and load, a table of the goals with met or not met computed from the measurements, and each
benchmark's method, medians and ratios beside the findings written by hand.

    python -m benchmarks                      # everything, full size: writes docs/performance.md
    python -m benchmarks --quick              # small sizes, to check that everything runs (stdout)
    python -m benchmarks --only pages --only pipeline --output /tmp/performance.md

The dispatch benchmark, and the PostgreSQL runs of the list pages and the pipeline, need a
PostgreSQL server on which databases can be created: ``--database-url`` (default: ``DATABASE_URL``
when it names PostgreSQL). Exit status: 0 when every goal is met, 1 when one is not, 2 when a
benchmark could not run (nothing is written then).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import (
    REPO,
    BenchmarkError,
    Goal,
    goal_table,
    is_postgres,
    load_average,
    machine_facts,
    progress,
    verdict,
)

DOC = REPO / "docs" / "performance.md"
TEMPLATE = Path(__file__).with_name("performance-template.md")


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    module: str
    measure: str  # (quick, [database_url]) -> results
    goals: str  # results -> [Goal]
    render: str  # results -> Markdown
    needs_postgres: bool = False
    takes_database: bool = False

    def function(self, which: str) -> Callable[..., Any]:
        return getattr(importlib.import_module(self.module), getattr(self, which))


BENCHMARKS = (
    Benchmark(
        "validation",
        "validator against the oracle",
        "benchmarks.crates",
        "measure_validation",
        "validation_goals",
        "render_validation",
    ),
    Benchmark(
        "ingest",
        "ingest against sha512sum",
        "benchmarks.crates",
        "measure_ingest",
        "ingest_goals",
        "render_ingest",
    ),
    Benchmark(
        "dispatch",
        "claims against a bare endpoint; sign-off to claim",
        "benchmarks.dispatch",
        "measure",
        "goals",
        "render",
        needs_postgres=True,
        takes_database=True,
    ),
    Benchmark(
        "pages",
        "list pages at two database sizes",
        "benchmarks.pages",
        "measure",
        "goals",
        "render",
        takes_database=True,
    ),
    Benchmark(
        "pipeline",
        "pipeline overhead",
        "benchmarks.pipeline",
        "measure",
        "goals",
        "render",
        takes_database=True,
    ),
)
BY_NAME = {benchmark.name: benchmark for benchmark in BENCHMARKS}


# -- measuring ------------------------------------------------------------------------------------------------
def measure_child(name: str, quick: bool, database_url: str, out: Path) -> int:
    """In a child process: run one benchmark and write its results, timing and load as JSON."""
    benchmark = BY_NAME[name]
    load_before, started = load_average(), time.perf_counter()
    arguments = {"database_url": database_url} if benchmark.takes_database else {}
    try:
        results = benchmark.function("measure")(quick=quick, **arguments)
    except BenchmarkError as error:
        progress(name, f"cannot run: {error}")
        return 2
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    record = {
        "results": results,
        "seconds": time.perf_counter() - started,
        # this process and its children (not the PostgreSQL server's processes)
        "cpu_seconds": sum(u.ru_utime + u.ru_stime for u in usage),
        "load_before": load_before,
        "load_after": load_average(),
    }
    out.write_text(json.dumps(record), encoding="utf-8")
    return 0


def run_benchmark(benchmark: Benchmark, quick: bool, database_url: str) -> dict[str, Any] | None:
    with tempfile.TemporaryDirectory(prefix="benchmarks-") as folder:
        out = Path(folder) / "results.json"
        command = [sys.executable, "-m", "benchmarks", "--measure", benchmark.name, "--json", str(out)]
        command += ["--database-url", database_url] + (["--quick"] if quick else [])
        returncode = subprocess.call(command, cwd=REPO)
        if returncode != 0 or not out.exists():
            progress(benchmark.name, f"failed (exit status {returncode})")
            return None
        return json.loads(out.read_text(encoding="utf-8"))


# -- the document ---------------------------------------------------------------------------------------------
def all_goals(records: dict[str, dict[str, Any]]) -> list[Goal]:
    return [
        goal
        for benchmark in BENCHMARKS
        if benchmark.name in records
        for goal in benchmark.function("goals")(records[benchmark.name]["results"])
    ]


def _load(values: Sequence[float]) -> str:
    return " / ".join(f"{value:.2f}" for value in values)


def render_run(run: dict[str, Any], records: dict[str, dict[str, Any]]) -> str:
    started = datetime.fromisoformat(run["started"])
    lines = [
        "## This run",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC",
        f"- command: `{run['command']}`"
        + (" (quick run: small sizes, to check the benchmarks work)" if run["quick"] else ""),
        *(f"- {name}: {value}" for name, value in run["machine"]),
        f"- load average (1, 5 and 15 minutes): {_load(run['load_before'])} at the start, "
        f"{_load(run['load_after'])} at the end, on {run['cores']} cores; each benchmark's are in the table "
        "below. The benchmarks keep one or two processes busy at a time: a higher load is other work on the "
        "machine, which lengthens wall-clock times. That is why every comparison is made side by side, "
        "within one benchmark of this run.",
        f"- run time: {run['seconds'] / 60:.1f} minutes",
        "",
        "| benchmark | what it compares | run time | CPU time | load at start | load at end |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for benchmark in BENCHMARKS:
        record = records.get(benchmark.name)
        if record is None:
            lines.append(f"| {benchmark.name} | {benchmark.title} | not run | | | |")
            continue
        lines.append(
            f"| {benchmark.name} | {benchmark.title} | {record['seconds']:.0f} s | {record['cpu_seconds']:.0f} s "
            f"| {_load(record['load_before'])} | {_load(record['load_after'])} |"
        )
    lines += [
        "",
        "Run time is wall-clock time; CPU time is that of the benchmark's own processes (user and system; "
        "the PostgreSQL server's processes are not included).",
    ]
    return "\n".join(lines)


def render_goals(run: dict[str, Any], goals: list[Goal]) -> str:
    lines = []
    if run["quick"]:
        lines += [
            "> Quick run: small sizes and few repetitions. The goals are set for the full run; met or not "
            "met here only shows that the benchmarks and their report work.",
            "",
        ]
    lines += ["| benchmark | goal | measured | |", "|---|---|---|---|"]
    lines += [f"| {goal.benchmark} | {goal.goal} | {goal.measured} | {verdict(goal.met)} |" for goal in goals]
    met = sum(goal.met is True for goal in goals)
    targets = sum(goal.met is not None for goal in goals)
    lines += [
        "",
        f"{met} of the {targets} goals with a target are met; rows marked 'reported' have no target.",
    ]
    return "\n".join(lines)


def render_section(benchmark: Benchmark, record: dict[str, Any] | None) -> str:
    if record is None:
        return "_Not measured in this run (it was run with `--only`)._"
    results = record["results"]
    return (
        "\n".join(goal_table(benchmark.function("goals")(results)))
        + "\n\n"
        + benchmark.function("render")(results)
    )


def render_document(run: dict[str, Any], records: dict[str, dict[str, Any]]) -> str:
    parts = {
        "run": render_run(run, records),
        "goals": render_goals(run, all_goals(records)),
        **{
            benchmark.name: render_section(benchmark, records.get(benchmark.name)) for benchmark in BENCHMARKS
        },
    }
    text = TEMPLATE.read_text(encoding="utf-8")
    for name, part in parts.items():
        placeholder = "{{ " + name + " }}"
        if placeholder not in text:
            raise RuntimeError(f"{TEMPLATE.name} lacks {placeholder}")
        text = text.replace(placeholder, part.strip("\n"))
    if "{{ " in text:
        raise RuntimeError(f"{TEMPLATE.name} has a placeholder no benchmark fills")
    return text


# -- command line ---------------------------------------------------------------------------------------------
def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes and few repetitions: a smoke test")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only this benchmark (repeatable, or comma-separated): {', '.join(BY_NAME)}",
    )
    parser.add_argument(
        "--output",
        metavar="PATH",
        help=f"where to write the document, '-' for standard output (default: {DOC.relative_to(REPO)} for a "
        "full run of every benchmark, standard output otherwise)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "") if is_postgres(os.environ.get("DATABASE_URL", "")) else "",
        help="a PostgreSQL server where scratch databases may be created (default: DATABASE_URL if PostgreSQL)",
    )
    parser.add_argument(
        "--save-results", metavar="PATH", type=Path, help="also keep the measurements as JSON"
    )
    parser.add_argument(
        "--from-results",
        metavar="PATH",
        type=Path,
        help="write the document from measurements kept by --save-results",
    )
    parser.add_argument("--measure", choices=list(BY_NAME), help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    names = [name.strip() for value in args.only or [] for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(BY_NAME))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BY_NAME)}")
    args.selected = [b for b in BENCHMARKS if b.name in names] if names else list(BENCHMARKS)
    partial = args.quick or len(args.selected) < len(BENCHMARKS)
    if args.output is None:
        args.output = "-" if partial and args.from_results is None else str(DOC)
    if args.output != "-" and Path(args.output).resolve() == DOC and partial and args.from_results is None:
        parser.error(
            f"{DOC.relative_to(REPO)} records full runs of every benchmark; write a quick or partial run "
            "elsewhere (--output PATH, or - for standard output)"
        )
    if args.database_url and not is_postgres(args.database_url):
        parser.error("--database-url must name a PostgreSQL server (postgres://...)")
    needs = [b.name for b in args.selected if b.needs_postgres]
    if needs and not args.database_url and args.measure is None and args.from_results is None:
        parser.error(
            f"{', '.join(needs)} needs PostgreSQL: pass --database-url postgres://USER@HOST:PORT/DB "
            "(or set DATABASE_URL), or leave it out with --only"
        )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.measure:
        return measure_child(args.measure, args.quick, args.database_url, args.json)

    if args.from_results:
        saved = json.loads(args.from_results.read_text(encoding="utf-8"))
        run, records = (
            saved["run"],
            {name: saved["records"][name] for name in saved["records"] if name in BY_NAME},
        )
        partial = run["quick"] or len(records) < len(BENCHMARKS)
        if partial and args.output != "-" and Path(args.output).resolve() == DOC:
            progress("benchmarks", f"{args.from_results} holds a quick or partial run; not writing {DOC}")
            return 2
    else:
        command = "python -m benchmarks" + "".join(
            f" {shlex.quote(a)}" for a in (argv if argv is not None else sys.argv[1:]) if "://" not in a
        )
        run = {
            "started": datetime.now(UTC).isoformat(),
            "command": command.replace("--database-url", "--database-url URL"),
            "quick": args.quick,
            "machine": machine_facts(args.database_url),
            "cores": len(os.sched_getaffinity(0)),
            "load_before": load_average(),
        }
        started = time.perf_counter()
        records, failed = {}, []
        for benchmark in args.selected:
            progress("benchmarks", f"{benchmark.name}: {benchmark.title}")
            record = run_benchmark(benchmark, args.quick, args.database_url)
            if record is None:
                failed.append(benchmark.name)
            else:
                records[benchmark.name] = record
        run["seconds"] = time.perf_counter() - started
        run["load_after"] = load_average()
        if args.save_results:
            args.save_results.write_text(json.dumps({"run": run, "records": records}), encoding="utf-8")
        if failed:
            progress("benchmarks", f"could not run: {', '.join(failed)}; nothing written")
            return 2

    document = render_document(run, records)
    if args.output == "-":
        sys.stdout.write(document)
    else:
        Path(args.output).write_text(document, encoding="utf-8")
        progress("benchmarks", f"wrote {args.output}")
    goals = all_goals(records)
    for goal in goals:
        progress("benchmarks", f"{verdict(goal.met).strip('*')}: {goal.goal}: {goal.measured}")
    progress("benchmarks", f"run time {run['seconds'] / 60:.1f} minutes")
    return 1 if any(goal.met is False for goal in goals) else 0


if __name__ == "__main__":
    sys.exit(main())

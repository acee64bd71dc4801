"""What the benchmarks share: paths, goals, statistics, the machine's facts and scratch databases."""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # the benchmarks import the portal from the repository root

# The reference data the tests use (tests/data, sources in tests/data/NOTICE) and the community validator.
DATA = REPO / "tests" / "data"
FIXTURES = DATA / "fixtures" / "5s-crate"
ORACLE = REPO / "tests" / "oracle_runner.py"
REQUEST_METADATA = FIXTURES / "validator-valid-five-safes-crate-request" / "ro-crate-metadata.json"

MB = 10**6
MiB = 2**20
GiB = 2**30


class BenchmarkError(Exception):
    """A benchmark cannot run here (a tool, a file or a database is missing)."""


def progress(name: str, message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} [{name}] {message}", file=sys.stderr, flush=True)


# -- goals --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Goal:
    """One goal, what was measured against it and whether it was met (None: reported, no target)."""

    benchmark: str
    goal: str
    measured: str
    met: bool | None


def verdict(met: bool | None) -> str:
    if met is None:
        return "reported"
    return "**met**" if met else "**not met**"


def goal_table(goals: Iterable[Goal]) -> list[str]:
    lines = ["| goal | measured | |", "|---|---|---|"]
    lines += [f"| {goal.goal} | {goal.measured} | {verdict(goal.met)} |" for goal in goals]
    return lines


# -- numbers ------------------------------------------------------------------------------------------------
def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def time_calls(call: Callable[[], object], runs: int, *, warm_up: int = 1) -> list[float]:
    """Seconds of each of ``runs`` calls, after ``warm_up`` untimed ones."""
    for _ in range(warm_up):
        call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def ms(seconds: float, digits: int = 1) -> str:
    return f"{seconds * 1000:,.{digits}f}"


def ratio(value: float) -> str:
    return f"{value:,.2f}×" if value < 10 else f"{value:,.0f}×"


def size_text(size: float) -> str:
    """Bytes in binary units: 64 KiB, 8 MiB, 1.00 GiB."""
    if size >= GiB:
        return f"{size / GiB:.2f} GiB"
    if size >= MiB:
        return f"{size / MiB:.3g} MiB"
    return f"{size / 1024:.3g} KiB"


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


# -- the machine --------------------------------------------------------------------------------------------
def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def postgres_version(url: str) -> str:
    import psycopg

    with psycopg.connect(admin_url(url), autocommit=True) as connection:
        return connection.execute("SELECT version()").fetchone()[0].split(" on ")[0]


def machine_facts(database_url: str = "") -> list[tuple[str, str]]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    sha512sum = subprocess.run(["sha512sum", "--version"], capture_output=True, text=True, check=False)
    databases = f"SQLite {sqlite3.sqlite_version}"
    if database_url:
        try:
            databases += f"; {postgres_version(database_url)}"
        except Exception as exc:  # noqa: BLE001 - the facts are informative; the benchmarks report failures
            databases += f"; PostgreSQL unreachable ({type(exc).__name__})"
    return [
        ("CPU", f"{cpu}, {len(os.sched_getaffinity(0))} cores available to the run (nproc)"),
        ("memory", f"{memory / GiB:.0f} GiB"),
        ("system", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("databases", databases),
        (
            "packages",
            ", ".join(
                f"{name} {_version(name)}"
                for name in ("Django", "djangorestframework", "gunicorn", "psycopg", "bagit", "roc-validator")
            ),
        ),
        ("sha512sum", sha512sum.stdout.splitlines()[0] if sha512sum.stdout else "not found"),
    ]


# -- databases ----------------------------------------------------------------------------------------------
def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


def admin_url(url: str) -> str:
    """The same server's maintenance database, from which scratch databases are created and dropped."""
    return urlparse(url)._replace(path="/postgres").geturl()


def scratch_postgres(url: str, prefix: str) -> tuple[str, Callable[[], None]]:
    """Create an empty database beside the one named in ``url``; returns (its URL, drop())."""
    import psycopg

    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(admin_url(url), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin_url(url), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlparse(url)._replace(path=f"/{name}").geturl(), drop


def portal_environment(database_url: str, data_dir: Path) -> dict[str, str]:
    """Environment for a portal process of its own: scratch database and files, production settings."""
    return {
        "PORTAL_ENV_FILE": "",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_DEBUG": "0",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "DATABASE_URL": database_url,
        "DJANGO_MEDIA_ROOT": str(data_dir / "media"),
        "PORTAL_DATA_DIR": str(data_dir),
        "LOG_LEVEL": "WARNING",
    }


def setup_django(database_url: str, data_dir: Path, *, settings: str = "benchmarks.settings") -> None:
    """Configure Django in this process for a scratch database (SQLite when the URL is empty), migrated."""
    data_dir.mkdir(parents=True, exist_ok=True)
    url = database_url or f"sqlite:///{data_dir / 'portal.sqlite3'}"
    os.environ.update(portal_environment(url, data_dir))
    os.environ["DJANGO_SETTINGS_MODULE"] = settings
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def database_label() -> str:
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            return f"PostgreSQL {cursor.fetchone()[0].split()[0]}"
    return f"SQLite {sqlite3.sqlite_version}"


def which_all(tools: Sequence[str]) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


# -- one child process per database -------------------------------------------------------------------------
def per_database(module: str, name: str, quick: bool, database_url: str) -> dict[str, Any]:
    """Run ``module``'s in-process benchmark in a fresh interpreter on SQLite, then on PostgreSQL when
    ``database_url`` names a server; returns the results by database."""
    databases = [("sqlite", "")] + ([("postgresql", database_url)] if database_url else [])
    results: dict[str, Any] = {}
    for label, url in databases:
        progress(name, f"on {'PostgreSQL' if url else 'SQLite'}, in a fresh process")
        with tempfile.TemporaryDirectory(prefix=f"{name}-result-") as folder:
            out = Path(folder) / "result.json"
            command = [sys.executable, "-m", module, "--json", str(out), "--database-url", url]
            subprocess.run([*command, *(["--quick"] if quick else [])], check=True, cwd=REPO)
            results[label] = json.loads(out.read_text(encoding="utf-8"))
    return results


def database_child(
    name: str, measure_here: Callable[[bool], dict[str, Any]], argv: Sequence[str] | None
) -> int:
    """The child side of ``per_database``: a scratch database, Django set up on it, the measurement."""
    parser = argparse.ArgumentParser(description=f"One database's run of the {name} benchmark.")
    parser.add_argument("--json", required=True, type=Path, help="where to write the results")
    parser.add_argument("--database-url", default="", help="a PostgreSQL server (default: SQLite)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.database_url and not is_postgres(args.database_url):
        parser.error("--database-url must name a PostgreSQL server")
    with tempfile.TemporaryDirectory(prefix=f"{name}-bench-") as folder:
        url, drop = scratch_postgres(args.database_url, f"{name}_bench") if args.database_url else ("", None)
        try:
            progress(name, "migrating a scratch database")
            setup_django(url, Path(folder))
            result = measure_here(args.quick)
            result["database"] = database_label()
        finally:
            if "django" in sys.modules:
                from django.db import connections

                connections.close_all()
            if drop is not None:
                drop()
    args.json.write_text(json.dumps(result), encoding="utf-8")
    return 0

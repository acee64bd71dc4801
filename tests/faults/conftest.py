"""Fault tests: the portal's real processes on PostgreSQL and Redis, killed with SIGKILL mid-work.

Each test gets its own PostgreSQL database (a copy of one migrated once per session), its own media
and scratch directories, its own django-q2 queue on Redis, and starts what it needs as subprocesses:
the web server (gunicorn), django-q2 clusters (`manage.py qcluster`) and reference agents
(`python -m agent`), the agents talking to the portal through a `FaultProxy`. The test process reads
the database with plain SQL and never through Django.

Services: FAULTS_DATABASE_URL names the PostgreSQL database to migrate and copy (scripts/test-faults
creates one); without it a database is created on postgres://postgres@127.0.0.1:5432 and dropped at
the end. FAULTS_REDIS_URL (default redis://127.0.0.1:6379/13) names a Redis database set aside for
them; each test uses its own queue in it and deletes its keys afterwards. When either service cannot be
reached, every test here errors with a message saying which: these tests never pass without them.
"""

import hashlib
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
import requests

from agent.synthetic import generate, write_sqlite
from crates.demo_agents import COHORT_COUNT
from tests.faults.proxy import FaultProxy

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
GUNICORN = Path(PYTHON).with_name("gunicorn")
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
# Leases lapse within seconds, so that a killed agent's job is queued again within a test.
LEASE_SECONDS = 6
RETURNED = ("outputs_returned", "output_review")

EXECUTION_TABLES = """
CREATE TABLE IF NOT EXISTS faults_execution (
    id bigserial PRIMARY KEY,
    task_id text NOT NULL,
    name text NOT NULL,
    func text NOT NULL,
    pid integer NOT NULL,
    pgid integer NOT NULL,
    phase text NOT NULL,
    success boolean,
    result text,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS faults_marker (
    key text PRIMARY KEY,
    runs integer NOT NULL,
    pgid integer NOT NULL
);
"""


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "faults: kills the portal's real processes; needs PostgreSQL and Redis (scripts/test-faults)",
    )


def _with_database(url, name):
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _database_of(url):
    return urlsplit(url).path.lstrip("/")


def _admin(url):
    return psycopg.connect(_with_database(url, "postgres"), autocommit=True)


@pytest.fixture(scope="session")
def services(tmp_path_factory):
    """The migrated template database and the Redis URL, or a clear error saying what is missing."""
    given = os.environ.get("FAULTS_DATABASE_URL")
    url = given or _with_database(DEFAULT_ADMIN_URL, f"faults_{os.getpid()}_{uuid.uuid4().hex[:6]}")
    if not url.startswith(("postgres://", "postgresql://")):
        pytest.fail(f"FAULTS_DATABASE_URL must name a PostgreSQL database, not {url!r}.", pytrace=False)
    redis_url = os.environ.get("FAULTS_REDIS_URL") or DEFAULT_REDIS_URL
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"The fault tests need Redis ({redis_url}): {exc}. Start it, or set FAULTS_REDIS_URL.",
            pytrace=False,
        )
    try:
        with _admin(url) as admin:
            if not given:
                admin.execute(f'CREATE DATABASE "{_database_of(url)}"')
    except psycopg.Error as exc:
        pytest.fail(
            f"The fault tests need PostgreSQL ({_with_database(url, 'postgres')}): {exc}. Start it, or set "
            "FAULTS_DATABASE_URL, or run scripts/test-faults.",
            pytrace=False,
        )
    try:
        env = {**_base_env(), "DATABASE_URL": url, "PORTAL_DATA_DIR": str(tmp_path_factory.mktemp("migrate"))}
        migrate = subprocess.run(
            [PYTHON, "manage.py", "migrate", "--no-input", "-v0"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert migrate.returncode == 0, migrate.stderr
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(EXECUTION_TABLES)
        yield {"template": url, "redis": redis_url}
    finally:
        if not given:
            with _admin(url) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{_database_of(url)}" WITH (FORCE)')


def _base_env():
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "Q_", "PORTAL_", "FAULTS_", "PYTEST_")) and key != "DATABASE_URL"
    }
    env.update(
        PORTAL_ENV_FILE="",
        DJANGO_SETTINGS_MODULE="tests.faults.settings",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(REPO),
    )
    return env


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _tail(path, lines=40):
    if not path or not Path(path).exists():
        return ""
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class Process:
    """A subprocess in its own process group, logging to a file; SIGKILL takes the whole group."""

    def __init__(self, name, args, *, env, log):
        self.name, self.log = name, log
        self.offset = log.stat().st_size if log.exists() else 0
        with log.open("ab") as handle:
            self.popen = subprocess.Popen(
                args, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def kill(self):
        """SIGKILL the process and everything it started: no handler runs, nothing is flushed."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(timeout=30)

    def stop(self, timeout=30):
        """SIGTERM, as an operator stops it; SIGKILL if it does not stop in time. Returns the exit code."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        return self.popen.returncode

    def text(self):
        """What this process logged (a restart appends to the same file)."""
        with self.log.open("rb") as handle:
            handle.seek(self.offset)
            return handle.read().decode(errors="replace")


class Agent(Process):
    def __init__(self, name, *, portal_url, token_file, config, env, log):
        args = [PYTHON, "-m", "agent", "--portal", portal_url, "--token-file", str(token_file)]
        args += ["--config", str(config), "--claim-wait", "0.5"]
        super().__init__(name, args, env=env, log=log)

    def events(self):
        events = []
        for line in self.text().splitlines():
            try:
                events.append(json.loads(line).get("event"))
            except ValueError:
                continue
        return events


class Stack:
    """One test's portal: its database, directories, processes and the proxy in front of the web server."""

    def __init__(self, services, root, number):
        self.root = root
        self.template = services["template"]
        self.database = f"{_database_of(self.template)}_{os.getpid()}_t{number}"
        self.url = _with_database(self.template, self.database)
        self.redis_url = services["redis"]
        self.queue = f"faults-{os.getpid()}-{number}-{uuid.uuid4().hex[:6]}"
        self.media = root / "media"
        self.logs = root / "logs"
        for path in (self.media, self.logs):
            path.mkdir()
        self.port = _free_port()
        self.web = None
        self.clusters = {}
        self.agents = []
        self.proxy = FaultProxy(self.port)
        with _admin(self.template) as admin:
            admin.execute(f'CREATE DATABASE "{self.database}" TEMPLATE "{_database_of(self.template)}"')
        self.db = psycopg.connect(self.url, autocommit=True)
        self.tokens = {}
        self.jobs = []
        self.lease_seconds = LEASE_SECONDS
        # How long a returned result waits for its disclosure checks before the sweep hands them out
        # again: the portal's default unless a test is about lost checks.
        self.output_check_retry_seconds = 720

    # --- processes ------------------------------------------------------------------------------

    def env(self, scratch=None, **extra):
        env = _base_env()
        env.update(
            DATABASE_URL=self.url,
            REDIS_URL=self.redis_url,
            Q_CLUSTER_NAME=self.queue,
            DJANGO_MEDIA_ROOT=str(self.media),
            PORTAL_DATA_DIR=str(self.root / "data"),
            FAULTS_LEASE_SECONDS=str(self.lease_seconds),
            FAULTS_OUTPUT_CHECK_RETRY_SECONDS=str(self.output_check_retry_seconds),
        )
        if scratch is not None:
            scratch.mkdir(parents=True, exist_ok=True)
            env["TMPDIR"] = str(scratch)
        env.update(extra)
        return env

    @property
    def web_scratch(self):
        return self.root / "scratch" / "web"

    def start_web(self):
        assert GUNICORN.exists(), f"{GUNICORN} is missing: install requirements.txt (scripts/setup)"
        args = [str(GUNICORN), "portal.wsgi:application", "--bind", f"127.0.0.1:{self.port}"]
        args += ["--workers", "2", "--worker-class", "gthread", "--threads", "4", "--keep-alive", "30"]
        args += ["--timeout", "120", "--access-logfile", "-"]
        self.web = Process("web", args, env=self.env(self.web_scratch), log=self.logs / "web.log")
        self.wait_for(self._web_answers, "the web server to answer", timeout=60)
        return self.web

    def _web_answers(self):
        if not self.web.alive():
            raise AssertionError(f"the web server exited:\n{_tail(self.web.log)}")
        try:
            answer = requests.get(f"http://127.0.0.1:{self.port}/api/v1/agent/reconcile/", timeout=5)
        except (requests.ConnectionError, requests.Timeout):
            return False  # not listening yet, or its workers are still loading the portal
        return answer.status_code == 401

    def kill_web(self):
        self.web.kill()

    def server_errors(self):
        """Answers of 500 and above, and errors Django logged, in the web server's log."""
        log = self.logs / "web.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        return [line for line in lines if re.search(r'HTTP/1\.[01]" 5\d\d |Internal Server Error', line)]

    def cluster_scratch(self, name):
        return self.root / "scratch" / name

    def start_cluster(self, name="q1", workers=2):
        log = self.logs / f"{name}.log"
        cluster = Process(
            name,
            [PYTHON, "manage.py", "qcluster"],
            env=self.env(self.cluster_scratch(name), Q_WORKERS=str(workers)),
            log=log,
        )
        self.clusters[name] = cluster
        self.wait_for(
            lambda: "running." in cluster.text() or not cluster.alive(),
            f"the cluster {name} to start",
            timeout=60,
        )
        assert cluster.alive(), _tail(log)
        return cluster

    def workers_of(self, name):
        """{worker process name: pid} of a cluster, from its log."""
        found = re.findall(r"(Process-\w+) ready for work at (\d+)", self.clusters[name].text())
        return dict((proc, int(pid)) for proc, pid in found)

    def worker_running(self, name, task_name):
        """The pid of the cluster's worker that took the task named `task_name`, if one has."""
        match = re.search(rf"(Process-\w+) processing {re.escape(task_name)} ", self.clusters[name].text())
        return self.workers_of(name).get(match.group(1)) if match else None

    def agent_config(self, name):
        work = self.root / "agents" / name
        work.mkdir(parents=True, exist_ok=True)
        dataset = self.root / "omop.sqlite"
        if not dataset.exists():
            write_sqlite(generate(300, 7), dataset)
        config = work / "agent.toml"
        config.write_text(
            f"""
[tre]
slug = "tre-a"
name = "TRE A"
url = "https://tre-a.example.org/"

[agent]
work_dir = "{work / "work"}"

[limits]
timeout_seconds = 120
cpu_seconds = 120
memory_bytes = "2 GiB"
max_output_file_bytes = "10 MiB"

[datasets.omop]
sqlite_path = "{dataset}"

[[workflows]]
id = "{COHORT_COUNT.workflow_id}"
version = "1"
executor = "sql-aggregate"
[workflows.options]
dataset = "omop"
"""
        )
        token_file = work / "agent.token"
        token_file.write_text(self.tokens[name] + "\n")
        token_file.chmod(0o600)
        return config, token_file, work / "work"

    def start_agent(self, name):
        config, token_file, work = self.agent_config(name)
        agent = Agent(
            name,
            portal_url=self.proxy.url,
            token_file=token_file,
            config=config,
            env=self.env(self.root / "scratch" / name),
            log=self.logs / f"{name}.log",
        )
        agent.work = work
        self.agents.append(agent)
        return agent

    def helper(self, *args, sync=False, timeout=300):
        """Run `python -m tests.faults.helper ARGS` against this stack; returns its standard output."""
        env = self.env(self.root / "scratch" / "helper", **({"Q_SYNC": "1"} if sync else {}))
        done = subprocess.run(
            [PYTHON, "-m", "tests.faults.helper", *map(str, args)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"helper {args} failed:\n{done.stderr[-4000:]}"
        return done.stdout

    def seed(self, jobs=1, agents=("agent-1",)):
        out = self.root / "seed.json"
        self.helper("seed", "--jobs", jobs, "--agents", ",".join(agents), "--out", out, sync=True)
        seeded = json.loads(out.read_text())
        self.tokens.update(seeded["tokens"])
        self.jobs = seeded["jobs"]
        return self.jobs

    def enqueue(self, func, *args, times=1):
        """Hand a task to the clusters through the broker, as the portal (or its schedule) does."""
        return self.helper("enqueue", func, *args, "--times", times).split()

    def verify_audit(self):
        done = subprocess.run(
            [PYTHON, "manage.py", "verify_audit"],
            cwd=REPO,
            env=self.env(self.root / "scratch" / "helper"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def close(self):
        for process in [*self.agents, *self.clusters.values(), *([self.web] if self.web else [])]:
            if process.alive():
                process.kill()
        self.proxy.close()
        self.db.close()
        with _admin(self.template) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        broker = redis.Redis.from_url(self.redis_url)
        keys = list(broker.scan_iter(f"django_q:{self.queue}:*"))
        if keys:
            broker.delete(*keys)

    # --- the database, read with plain SQL -----------------------------------------------------

    def rows(self, sql, *params):
        return self.db.execute(sql, params).fetchall()

    def value(self, sql, *params):
        row = self.db.execute(sql, params).fetchone()
        return row[0] if row else None

    def status(self, job):
        return self.value("SELECT status FROM crates_job WHERE id = %s", job)

    def lease(self, job):
        row = self.db.execute(
            "SELECT fencing_token, attempts, agent_id, expires_at, finished_at FROM crates_joblease "
            "WHERE job_id = %s",
            (job,),
        ).fetchone()
        return (
            dict(zip(("fencing_token", "attempts", "agent", "expires_at", "finished_at"), row, strict=True))
            if row
            else None
        )

    def agent_id(self, name):
        return self.value("SELECT id FROM crates_agent WHERE name = %s", name)

    def uploads(self, job=None):
        sql = (
            "SELECT id, job_id, agent_id, status, fencing_token, idempotency_key, sha256, size, file "
            "FROM crates_resultupload"
        )
        rows = (
            self.rows(sql + " WHERE job_id = %s ORDER BY id", job) if job else self.rows(sql + " ORDER BY id")
        )
        keys = ("id", "job", "agent", "status", "fencing_token", "key", "sha256", "size", "file")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def verbs(self, job):
        """The audit verbs recorded about a job, in order."""
        return [
            verb
            for (verb,) in self.rows(
                "SELECT verb FROM portal_auditevent WHERE object_type = 'crates.job' AND object_id = %s "
                "ORDER BY id",
                str(job),
            )
        ]

    def executions(self, func=None, name=None):
        """How often each task started and finished in a worker: {task id: (started, finished)}."""
        rows = self.rows(
            "SELECT task_id, count(*) FILTER (WHERE phase = 'started'), "
            "count(*) FILTER (WHERE phase = 'finished') FROM faults_execution "
            "WHERE (%s::text IS NULL OR func = %s) AND (%s::text IS NULL OR name = %s) GROUP BY task_id",
            func,
            func,
            name,
            name,
        )
        return {task: (started, finished) for task, started, finished in rows}

    # --- what must hold whatever was killed ----------------------------------------------------

    def media_files(self, folder):
        base = self.media / folder
        return sorted(p.relative_to(self.media).as_posix() for p in base.rglob("*") if p.is_file())

    def assert_nothing_partial(self):
        """No half-done state is visible: every row that names a stored file names a whole one, no
        upload is left receiving, and each job has as many verified results as its state says."""
        problems = []
        for upload in self.uploads():
            if upload["status"] == "verified":
                path = self.media / upload["file"]
                if not upload["file"] or not path.is_file():
                    problems.append(f"verified upload {upload['id']} names a missing file {upload['file']!r}")
                elif (path.stat().st_size, sha256_of(path)) != (upload["size"], upload["sha256"]):
                    problems.append(f"verified upload {upload['id']}'s file is not the verified crate")
            elif upload["status"] == "rejected":
                if upload["file"]:
                    problems.append(f"rejected upload {upload['id']} kept a file")
            else:
                problems.append(f"upload {upload['id']} is visible while {upload['status']}")
        for output, stored, size, sha256 in self.rows(
            "SELECT id, stored, size, sha256 FROM reviews_outputfile"
        ):
            path = self.media / stored
            if not path.is_file() or (path.stat().st_size, sha256_of(path)) != (size, sha256):
                problems.append(f"output file {output} names a missing or partial file {stored!r}")
        for job, status, verified, returned in self.rows(
            "SELECT j.id, j.status, "
            "(SELECT count(*) FROM crates_resultupload u WHERE u.job_id = j.id AND u.status = 'verified'), "
            "(SELECT count(*) FROM portal_auditevent a WHERE a.object_type = 'crates.job' "
            " AND a.object_id = j.id::text AND a.verb = 'job.outputs_returned') FROM crates_job j"
        ):
            after_return = status in ("outputs_returned", "output_review", "withheld", "released")
            if verified != (1 if after_return else 0) or returned != verified:
                problems.append(
                    f"job {job} is {status} with {verified} verified result(s), {returned} returned"
                )
        for job, status in self.rows(
            "SELECT j.id, j.status FROM crates_job j JOIN crates_joblease l ON l.job_id = j.id "
            "WHERE j.status IN ('claimed', 'running') AND (l.finished_at IS NOT NULL OR l.agent_id IS NULL)"
        ):
            problems.append(f"job {job} is {status} under an ended lease")
        for job, count in self.rows(
            "SELECT j.id, count(o.id) FROM crates_job j JOIN reviews_outputfile o ON o.job_id = j.id "
            "WHERE j.status NOT IN ('output_review', 'output_changes_requested', 'withheld', 'released') "
            "GROUP BY j.id"
        ):
            problems.append(f"job {job} shows {count} output file(s) before its outputs were checked")
        assert not problems, "\n".join(problems)

    def wait_for(self, predicate, what, timeout=90, logs=()):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.1)
        tails = "\n".join(
            f"--- {process.name} ---\n{_tail(process.log)}"
            for process in [*logs, *([self.web] if self.web else []), *self.clusters.values(), *self.agents]
        )
        raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{tails}")


_numbers = itertools.count(1)


@pytest.fixture
def stack(services, tmp_path):
    built = Stack(services, tmp_path, next(_numbers))
    try:
        yield built
    finally:
        built.close()

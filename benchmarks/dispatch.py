"""On-demand benchmark of dispatch to TRE agents; never part of the test suite.

1. **Claim throughput.** 20 agents of one TRE claim queued jobs through ``POST /api/v1/agent/claim/``
   as fast as they can, against the same 20 clients calling a bare DRF endpoint that returns a constant,
   on the same gunicorn server and PostgreSQL database. Goal: claims at least half as many per second
   as the bare endpoint answers, and no job claimed twice (every claimed job has fencing token 1, every
   claim has its audit event, the audit chain verifies).
2. **Sign-off to claim.** The same 20 agents long-poll an empty queue; an officer signs off a job
   (the real ``decide_step(..., "sign_off", "approve")``); the time from the start of the sign-off to
   the moment an agent's claim answer arrives is measured, round after round. Goal: median under 1 s.

Run from the repository root with the virtual environment, against a PostgreSQL server on which the
user may create databases (a scratch database is created, migrated and dropped)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/dispatch.py
    ... benchmarks/dispatch.py --quick     # a shorter run: checks that the benchmark works
    ... benchmarks/dispatch.py --write     # then rewrite the measured part of docs/performance.md

The results are printed as Markdown; the exit status is 1 when a goal is missed. The server is
gunicorn (gthread workers) with persistent database connections, as in production; the load comes
from processes on the same machine, each agent a thread with its own keep-alive connection.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import closing
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FIVE_SAFES_SHARED", ROOT.parent / "shared")).resolve()
REQUEST_METADATA = SHARED / "fixtures" / "5s-crate" / "validator-valid-five-safes-crate-request"
CLAIM = "/api/v1/agent/claim/"
CONSTANT = "/bench/constant/"
DOC = ROOT / "docs" / "performance.md"

# Filled in by wsgi_application() in the gunicorn workers: the portal's URLs plus the constant endpoint.
urlpatterns: list = []


def install_constant_endpoint():
    """Serve the portal's URLs plus one more: a bare DRF view returning a constant."""
    from django.conf import settings
    from django.urls import include, path
    from rest_framework.permissions import AllowAny
    from rest_framework.response import Response
    from rest_framework.views import APIView

    class Constant(APIView):
        authentication_classes: list = []
        permission_classes = [AllowAny]

        def post(self, request):
            return Response({"ok": True})

    urlpatterns[:] = [path(CONSTANT.strip("/") + "/", Constant.as_view()), path("", include("portal.urls"))]
    settings.ROOT_URLCONF = __name__


def wsgi_application():
    """The portal's WSGI application with the constant endpoint, for gunicorn."""
    import django

    django.setup()
    from django.core.wsgi import get_wsgi_application

    install_constant_endpoint()
    return get_wsgi_application()


# --- Load ----------------------------------------------------------------------------------------


class Agent:
    """One agent: a keep-alive HTTP/1.1 connection and its token."""

    def __init__(self, port, token):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}

    def post(self, path, body):
        self.connection.request("POST", path, body=body, headers=self.headers)
        response = self.connection.getresponse()
        return response.status, response.read()


def _hammer(port, tokens, path, start_at, seconds, results):
    """Each token's thread posts to `path` until the time is up (or the queue is empty)."""

    def run(token):
        agent = Agent(port, token)
        body = json.dumps({"wait_seconds": 0})
        done, claimed, errors = 0, [], 0
        while time.time() < start_at:
            time.sleep(0.001)
        deadline = start_at + seconds
        while time.time() < deadline:
            status, data = agent.post(path, body)
            if status == 200:
                done += 1
                if path == CLAIM:
                    claimed.append(json.loads(data)["id"])
            elif status == 204:
                break
            else:
                errors += 1
        results.put((done, claimed, errors, time.time()))

    threads = [threading.Thread(target=run, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def load(port, tokens, path, seconds, processes):
    """Run the agents spread over `processes` processes; return (answers/second, claimed ids, errors)."""
    results = multiprocessing.Queue()
    start_at = time.time() + 1.5
    groups = [tokens[i::processes] for i in range(processes)]
    workers = [
        multiprocessing.Process(target=_hammer, args=(port, group, path, start_at, seconds, results))
        for group in groups
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get() for _ in tokens]
    for worker in workers:
        worker.join()
    answered = sum(done for done, _, _, _ in outcomes)
    elapsed = max(end for _, _, _, end in outcomes) - start_at
    ids = [job for _, claimed, _, _ in outcomes for job in claimed]
    return answered / elapsed, ids, sum(errors for _, _, errors, _ in outcomes)


class Waits:
    """Samples what the server's database sessions are doing, to say where claims spend their time."""

    def __init__(self, url):
        self.url, self.samples, self.stop = url, {}, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as connection:
            while not self.stop.is_set():
                rows = connection.execute(
                    "SELECT wait_event_type, query FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'"
                ).fetchall()
                for wait, query in rows:
                    if wait == "Lock" and "portal_auditchainhead" in query:
                        key = "waiting for the audit chain's head row"
                    elif wait == "Lock":
                        key = "waiting for another row lock"
                    else:
                        key = "working (or waiting for I/O)"
                    self.samples[key] = self.samples.get(key, 0) + 1
                time.sleep(0.005)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def shares(self):
        total = sum(self.samples.values()) or 1
        return {key: count / total for key, count in sorted(self.samples.items(), key=lambda kv: -kv[1])}


# --- Fixtures (in this process, through Django) ----------------------------------------------------


def federation(agents):
    """A TRE with an officer, a project, an approved workflow and `agents` agents; returns (tre, officer,
    workflow, project, researcher, tokens)."""
    from django.contrib.auth import get_user_model

    from crates import dispatch
    from portal import roles, services
    from portal.models import TRE, ApprovedWorkflow, Organisation, Project

    User = get_user_model()
    admin = User.objects.create_superuser("bench-admin", "admin@bench.example.org", secrets.token_urlsafe())
    officer = User.objects.create_user("bench-officer", "officer@bench.example.org", secrets.token_urlsafe())
    researcher = User.objects.create_user("bench-researcher", "r@bench.example.org", secrets.token_urlsafe())
    organisation = Organisation.objects.create(name="Benchmark Organisation")
    tre = TRE.objects.create(organisation=organisation, name="Benchmark TRE", slug="bench")
    services.grant_role(officer, roles.GOVERNANCE_OFFICER, by=admin, tre=tre)
    project = Project.objects.create(
        identifier="PRJ-BENCH-0001",
        title="Benchmark",
        lay_summary="-",
        public_benefit="-",
        technical_summary="-",
        lead=researcher,
    )
    workflow = ApprovedWorkflow.objects.create(
        name="Benchmark workflow",
        workflow_id="https://workflowhub.eu/workflows/289",
        version="1",
        sha256="0" * 64,
        language="cwl",
        executor="cwl",
    )
    approval = services.request_workflow_approval(workflow, tre, by=officer)
    services.decide_workflow(approval, "approved", by=officer)
    tokens = [dispatch.issue_agent(tre, f"agent-{n:02d}", by=officer)[1] for n in range(agents)]
    return tre, officer, workflow, project, researcher, tokens


def jobs(count, status, tre, workflow, project, researcher):
    """`count` jobs as intake opens them, inserted in bulk, in `status` (queued for the throughput
    run, which measures claiming; awaiting review for the latency run, which walks the review)."""
    from django.utils import timezone

    from crates.models import Job, Request, RequestVersion

    metadata = json.loads((REQUEST_METADATA / "ro-crate-metadata.json").read_text())
    now = timezone.now()
    requests = Request.objects.bulk_create(
        [Request(project=project, submitter=researcher, title=f"Benchmark {n}") for n in range(count)]
    )
    Request.tres.through.objects.bulk_create(
        [Request.tres.through(request_id=r.pk, tre_id=tre.pk) for r in requests]
    )
    versions = RequestVersion.objects.bulk_create(
        [
            RequestVersion(
                request=r,
                number=1,
                crate="crates/benchmark.zip",
                sha256="0" * 64,
                size=1,
                external_identifier="urn:uuid:00000000-0000-4000-8000-000000000001",
                status=RequestVersion.Status.VALID,
                metadata=metadata,
                summary={},
                created_by=researcher,
                validated_at=now,
            )
            for r in requests
        ]
    )
    return Job.objects.bulk_create(
        [
            Job(request=r, version=v, tre=tre, status=status, metadata=metadata, workflow=workflow)
            for r, v in zip(requests, versions, strict=True)
        ]
    )


def check_no_double_claims(ids):
    from crates.models import Job, JobLease
    from portal.audit import AuditEvent, verify_chain

    problems = []
    if len(ids) != len(set(ids)):
        problems.append(f"{len(ids) - len(set(ids))} job(s) were handed to two agents")
    if Job.objects.filter(status="claimed").count() != len(ids):
        problems.append("the number of claimed jobs differs from the number of claims answered")
    if JobLease.objects.exclude(fencing_token=1).exists():
        problems.append("some job was claimed more than once (fencing token above 1)")
    if AuditEvent.objects.filter(verb="job.claimed").count() != len(ids):
        problems.append("claims and their audit events differ")
    if (problem := verify_chain()) is not None:
        problems.append(f"the audit chain does not verify: {problem}")
    return problems


# --- Sign-off to claim ---------------------------------------------------------------------------


def latency(port, tokens, rounds, fixture):
    """Median, p90 and maximum seconds from the start of a sign-off to an agent's claim answer."""
    from django.db import connections

    from reviews import services as reviews
    from reviews.models import CHECK_STEPS, Step

    tre, officer, workflow, project, researcher = fixture
    ready = []
    for job in jobs(rounds, "awaiting_review", tre, workflow, project, researcher):
        reviews.start_review(job, by=officer)
        for step in CHECK_STEPS:
            reviews.decide_step(job, step, "approve", by=officer)
        ready.append(job)

    arrived, stop = {}, threading.Event()

    def poll(token):
        agent = Agent(port, token)
        body = json.dumps({"wait_seconds": 5})
        while not stop.is_set():
            status, data = agent.post(CLAIM, body)
            if status == 200:
                arrived[json.loads(data)["id"]] = time.monotonic()

    pollers = [threading.Thread(target=poll, args=(token,), daemon=True) for token in tokens]
    for poller in pollers:
        poller.start()
    time.sleep(2)
    delays = []
    for n, job in enumerate(ready):
        # Sign-offs at different moments of the agents' polling cycle.
        time.sleep(0.3 + (n % 7) * 0.11)
        started = time.monotonic()
        reviews.decide_step(job, Step.SIGN_OFF, "approve", "Benchmark.", by=officer)
        deadline = started + 10
        while job.pk not in arrived and time.monotonic() < deadline:
            time.sleep(0.002)
        delays.append(arrived.get(job.pk, float("inf")) - started)
    stop.set()
    connections.close_all()
    delays.sort()
    return statistics.median(delays), delays[int(0.9 * (len(delays) - 1))], delays[-1]


# --- What one request costs ---------------------------------------------------------------------


def costs(token, fixture, count=100):
    """One request at a time, in this process: wall time, Python CPU and the PostgreSQL backend's CPU
    per request, for a claim and for the constant endpoint (milliseconds)."""
    import psutil
    from django.db import connection
    from django.test import Client

    install_constant_endpoint()
    jobs(count + 1, "queued", *fixture)
    client = Client(HTTP_HOST="127.0.0.1")
    connection.ensure_connection()
    backend = psutil.Process(connection.connection.info.backend_pid)

    def measure(path, headers):
        client.post(path, {"wait_seconds": 0}, content_type="application/json", **headers)
        wall, python, before = time.perf_counter(), time.process_time(), sum(backend.cpu_times()[:2])
        for _ in range(count):
            client.post(path, {"wait_seconds": 0}, content_type="application/json", **headers)
        database = sum(backend.cpu_times()[:2]) - before
        return tuple(
            value * 1000 / count
            for value in (time.perf_counter() - wall, time.process_time() - python, database)
        )

    return measure(CLAIM, {"HTTP_AUTHORIZATION": f"Bearer {token}"}), measure(CONSTANT, {})


# --- Orchestration -------------------------------------------------------------------------------


def free_port():
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(env, port, workers, threads):
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "benchmarks.dispatch:wsgi_application()",
            "--chdir",
            str(ROOT),
            "--bind",
            f"127.0.0.1:{port}",
            "--worker-class",
            "gthread",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--timeout",
            "60",
            "--log-level",
            "warning",
        ],
        env=env,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with closing(http.client.HTTPConnection("127.0.0.1", port, timeout=2)) as probe:
                probe.request("POST", CONSTANT, body="{}", headers={"Content-Type": "application/json"})
                if probe.getresponse().status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not start")


def scratch_database(url):
    """Create a scratch database beside the one named in `url`; returns (its URL, drop())."""
    import psycopg

    parsed = urlparse(url)
    name = f"dispatch_bench_{os.getpid()}"
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return parsed._replace(path=f"/{name}").geturl(), drop


def report(args, results, machine, waits, cost):
    claims, constant, ratio, problems, errors, median, p90, worst = results
    ok_ratio, ok_latency = ratio >= 0.5 and not problems, median < 1.0
    mark = {True: "met", False: "**missed**"}
    lines = [
        "## Dispatch",
        "",
        f"Measured by `benchmarks/dispatch.py` ({'quick run' if args.quick else 'full run'}; {machine}).",
        "",
        "| measure | result | goal | |",
        "|---|---|---|---|",
        f"| claims per second through the API, {args.agents} agents | {claims:.0f} | | |",
        f"| bare DRF endpoint returning a constant, same clients | {constant:.0f} answers/s | | |",
        f"| claims / constant | {ratio:.2f} | at least 0.5 | {mark[ratio >= 0.5]} |",
        f"| jobs claimed twice | {'none' if not problems else '; '.join(problems)} | none | {mark[not problems]} |",
        f"| sign-off to claim, median of {args.rounds} | {median * 1000:.0f} ms | under 1 s | {mark[ok_latency]} |",
        f"| sign-off to claim, 90th percentile / worst | {p90 * 1000:.0f} ms / {worst * 1000:.0f} ms | | |",
        *(
            f"| one {what}, on its own | {wall:.1f} ms: {python:.1f} ms Python CPU, {database:.1f} ms "
            "PostgreSQL CPU | | |"
            for what, (wall, python, database) in zip(("claim", "constant answer"), cost, strict=True)
        ),
        "",
        "How it is measured: the server is gunicorn with "
        f"{args.workers} gthread workers of {args.threads} threads and persistent connections to "
        "PostgreSQL, all on this machine; the clients are "
        f"{args.processes} processes sharing the {args.agents} agents, one keep-alive connection each. "
        f"Each endpoint is driven for {args.seconds} s after a warm-up. Queued jobs are inserted in bulk "
        "(the claim path is what is measured); every claim runs the real service: the row lock "
        "(`SELECT ... FOR UPDATE SKIP LOCKED`), the lease with its fencing token, the transition and its "
        "hash-chained audit event. Afterwards every claimed job must have fencing token 1 and one "
        "`job.claimed` event, and the audit chain must verify. For the latency, the agents long-poll "
        "(the portal re-checks the queue every `PORTAL_AGENT_CLAIM_POLL_SECONDS`, 0.25 s by default); each "
        "round times the officer's sign-off call (evidence, write-back, the approved and queued "
        "transitions) until an agent's claim answer arrives; the agents' long polls last 5 s each."
        + (f" {errors} request(s) failed during the runs." if errors else ""),
        "",
        "The cost of one request on its own is measured in the benchmark's process through Django's test "
        "client (the same middleware and views, no HTTP), with the process's CPU time and that of its "
        "PostgreSQL backend. "
        "Where the claims' database sessions were, sampled every 5 ms during the throughput run: "
        + "; ".join(f"{share:.0%} {what}" for what, share in waits.items())
        + ".",
        "",
    ]
    return "\n".join(lines), ok_ratio and ok_latency


BEGIN, END = "<!-- dispatch benchmark: begin -->", "<!-- dispatch benchmark: end -->"


def write_section(markdown):
    """Replace the measured part of the Dispatch section of docs/performance.md; keep the rest."""
    measured = markdown.split("\n", 2)[2].strip("\n")
    block = f"{BEGIN}\n{measured}\n{END}"
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + f"\n\n## Dispatch\n\n{block}\n"
    DOC.write_text(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=5000, help="queued jobs for the throughput run")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="5 s per endpoint and 10 rounds")
    parser.add_argument("--write", action="store_true", help="record the results in docs/performance.md")
    args = parser.parse_args()
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit(
            "Set DATABASE_URL (or --database-url) to a PostgreSQL server where databases can be created."
        )
    if args.quick:
        args.seconds, args.rounds, args.jobs = 5, 10, 2000
    sys.path.insert(0, str(ROOT))

    url, drop = scratch_database(args.database_url)
    media = tempfile.mkdtemp(prefix="dispatch-bench-")
    env = {
        **os.environ,
        "PORTAL_ENV_FILE": "",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_DEBUG": "0",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": url,
        "DATABASE_CONN_MAX_AGE": "600",
        "DJANGO_MEDIA_ROOT": media,
        "PORTAL_DATA_DIR": media,
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    server = None
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection, connections

        call_command("migrate", verbosity=0)
        tre, officer, workflow, project, researcher, tokens = federation(args.agents)
        expected = args.jobs
        jobs(expected, "queued", tre, workflow, project, researcher)
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            postgres = cursor.fetchone()[0].split(" on ")[0]
        connections.close_all()
        port = free_port()
        server = start_server(env, port, args.workers, args.threads)

        print("warming up", file=sys.stderr)
        load(port, tokens, CONSTANT, 2, args.processes)
        print(f"constant endpoint, {args.seconds} s", file=sys.stderr)
        constant, _, errors_constant = load(port, tokens, CONSTANT, args.seconds, args.processes)
        print(f"claims, {args.seconds} s", file=sys.stderr)
        with Waits(url) as waits:
            claims, ids, errors_claims = load(port, tokens, CLAIM, args.seconds, args.processes)
        if len(ids) >= expected:
            print("warning: the queue ran dry; raise the job count", file=sys.stderr)
        problems = check_no_double_claims(ids)
        from crates.models import Job

        Job.objects.filter(status="queued").delete()
        print(f"sign-off to claim, {args.rounds} rounds", file=sys.stderr)
        median, p90, worst = latency(port, tokens, args.rounds, (tre, officer, workflow, project, researcher))
        print("cost of one request", file=sys.stderr)
        claim_cost, constant_cost = costs(tokens[0], (tre, workflow, project, researcher))
        machine = (
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, Python {platform.python_version()}, "
            f"{postgres}"
        )
        markdown, ok = report(
            args,
            (
                claims,
                constant,
                claims / constant,
                problems,
                errors_constant + errors_claims,
                median,
                p90,
                worst,
            ),
            machine,
            waits.shares(),
            (claim_cost, constant_cost),
        )
        print(markdown)
        if args.write:
            write_section(markdown)
        return 0 if ok else 1
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()  # long polls still open: no need to wait them out
                server.wait()
        from django.db import connections

        connections.close_all()
        drop()


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark of dispatch to TRE agents: claim throughput against a bare endpoint, and sign-off to claim.

1. **Claim throughput.** 20 agents of one TRE claim queued jobs through ``POST /api/v1/agent/claim/``
   as fast as they can, against the same 20 clients calling a bare DRF endpoint that returns a constant,
   on the same gunicorn server and PostgreSQL database. Reported, with no target (ADR 0005): claims per
   second against the bare endpoint's answers. Goal: no job claimed twice (every claimed job has
   fencing token 1, every claim has its audit event, the audit chain verifies).
2. **Sign-off to claim.** The same 20 agents long-poll an empty queue; an officer signs off a job
   (the real ``decide_step(..., "sign_off", "approve")``); the time from the start of the sign-off to
   the moment an agent's claim answer arrives is measured, round after round. Goal: median under 1 s.

Run by ``python -m benchmarks`` (``--only dispatch``) against a PostgreSQL server on which the user may
create databases (``--database-url`` or ``DATABASE_URL``; a scratch database is created, migrated and
dropped). ``measure`` returns the measurements; ``goals`` and ``render`` read them. The server is
gunicorn (gthread workers) with persistent database connections, as in production; the load comes
from processes on the same machine, each agent a thread with its own keep-alive connection.
"""

from __future__ import annotations

import gc
import http.client
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import (
    REPO,
    REQUEST_METADATA,
    BenchmarkError,
    Goal,
    is_postgres,
    portal_environment,
    progress,
    ratio,
    scratch_postgres,
)

CLAIM = "/api/v1/agent/claim/"
CONSTANT = "/bench/constant/"
AGENT_CONSTANT = "/bench/agent-constant/"  # the same, behind the agent API's token authentication
LATENCY_GOAL = 1.0  # seconds, median from sign-off to claim


@dataclass(frozen=True)
class Plan:
    agents: int = 20
    seconds: float = 15  # each endpoint is driven this long
    warm_up: float = 2
    rounds: int = 40  # sign-offs timed
    jobs: int = 12000  # queued for the throughput run: more than the claims of one run
    costs: int = 500  # requests timed one at a time (CPU times are counted in 10 ms ticks)
    workers: int = 4
    threads: int = 6
    processes: int = 4
    start_delay: float = 1.5  # for the client processes to start before the load does
    settle: float = 2.0  # for the agents' long polls to start before the first sign-off
    long_poll: int = 5  # seconds each agent's claim waits for a job


FULL = Plan()
QUICK = Plan(
    seconds=1,
    warm_up=0.3,
    rounds=3,
    jobs=300,
    costs=10,
    workers=2,
    threads=4,
    processes=2,
    start_delay=0.5,
    settle=1.0,
    long_poll=2,
)


# Filled in by wsgi_application() in the gunicorn workers: the portal's URLs plus the constant endpoint.
urlpatterns: list = []


def install_constant_endpoint():
    """Serve the portal's URLs plus one more: a bare DRF view returning a constant."""
    from django.conf import settings
    from django.urls import include, path
    from rest_framework.permissions import AllowAny
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from crates.agent_api import AgentAPIView

    class Constant(APIView):
        authentication_classes: list = []
        permission_classes = [AllowAny]

        def post(self, request):
            return Response({"ok": True})

    class AgentConstant(AgentAPIView):
        def post(self, request):
            return Response({"ok": True})

    urlpatterns[:] = [
        path(CONSTANT.strip("/") + "/", Constant.as_view()),
        path(AGENT_CONSTANT.strip("/") + "/", AgentConstant.as_view()),
        path("", include("portal.urls")),
    ]
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


@dataclass(frozen=True)
class Load:
    per_second: float  # answers per second
    cpu_ms: float  # the machine's busy CPU time per answer: clients, gunicorn and PostgreSQL together
    ids: list  # the jobs claimed
    errors: int


def busy_seconds():
    """CPU time the whole machine has spent working since boot: in programs and in the kernel, not
    idle, waiting for I/O or taken by the hypervisor (steal); guest time is inside user time."""
    import psutil

    times = psutil.cpu_times()
    return sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))


def load(port, tokens, path, seconds, processes, start_delay=1.5):
    """Run the agents spread over `processes` processes, all starting `start_delay` seconds from now."""
    results = multiprocessing.Queue()
    start_at = time.time() + start_delay
    groups = [tokens[i::processes] for i in range(processes)]
    workers = [
        multiprocessing.Process(target=_hammer, args=(port, group, path, start_at, seconds, results))
        for group in groups
    ]
    for worker in workers:
        worker.start()
    time.sleep(max(0.0, start_at - time.time()))
    busy = busy_seconds()
    outcomes = [results.get() for _ in tokens]
    busy = busy_seconds() - busy
    for worker in workers:
        worker.join()
    answered = sum(done for done, _, _, _ in outcomes)
    elapsed = max(end for _, _, _, end in outcomes) - start_at
    return Load(
        per_second=answered / elapsed,
        cpu_ms=busy * 1000 / max(answered, 1),
        ids=[job for _, claimed, _, _ in outcomes for job in claimed],
        errors=sum(errors for _, _, errors, _ in outcomes),
    )


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
                    "SELECT a.wait_event_type, a.wait_event, "
                    "EXISTS(SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE l.pid = a.pid AND c.relname = 'portal_auditchainhead') "
                    "FROM pg_stat_activity a "
                    "WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.state = 'active'"
                ).fetchall()
                for kind, event, holds_head in rows:
                    if kind == "Lock" and holds_head:
                        key = "waiting for the audit chain's head row"
                    elif kind == "Lock":
                        key = "waiting for another row lock"
                    elif kind in ("IO", "LWLock") and event and event.startswith("WAL"):
                        key = "writing or flushing the write-ahead log"
                    elif kind is None:
                        key = "working"
                    else:
                        key = f"waiting ({kind}: {event})"
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

    metadata = json.loads(REQUEST_METADATA.read_text())
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


def latency(port, tokens, rounds, fixture, settle=2.0, long_poll=5):
    """Seconds from the start of each sign-off to an agent's claim answer, sorted (inf: none in 10 s).

    The agents stop once the rounds are over, after their last long poll: none is left to claim the
    jobs of what is measured next."""
    from django.db import connections

    from reviews import services as reviews
    from reviews.models import CHECK_STEPS, Step

    tre, officer, workflow, project, researcher = fixture
    ready = []
    for job in jobs(rounds, "awaiting_review", tre, workflow, project, researcher):
        reviews.start_review(job, by=officer)
        for step in CHECK_STEPS:
            reviews.decide_step(job, step, "approve", "Checked by hand.", by=officer)
        ready.append(job)

    arrived, stop = {}, threading.Event()

    def poll(token):
        agent = Agent(port, token)
        body = json.dumps({"wait_seconds": long_poll})
        while not stop.is_set():
            status, data = agent.post(CLAIM, body)
            if status == 200:
                arrived[json.loads(data)["id"]] = time.monotonic()
        agent.connection.close()  # no idle keep-alive connection holds the server when it stops

    pollers = [threading.Thread(target=poll, args=(token,)) for token in tokens]
    for poller in pollers:
        poller.start()
    time.sleep(settle)  # every agent is long-polling before the first sign-off
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
    for poller in pollers:
        poller.join()
    connections.close_all()
    return sorted(delays)


# --- What one request costs ---------------------------------------------------------------------


def costs(token, fixture, count=100):
    """One request at a time, in this process: wall time, Python CPU and the PostgreSQL backend's CPU
    per request (milliseconds), for a claim, the constant endpoint and the authenticated one."""
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
        # What the benchmark has built so far (thousands of jobs) is left out of the garbage collector's
        # full passes, which would otherwise land in one measurement or another and dwarf a request.
        gc.collect()
        gc.freeze()
        try:
            wall, python, before = time.perf_counter(), time.process_time(), sum(backend.cpu_times()[:2])
            for _ in range(count):
                client.post(path, {"wait_seconds": 0}, content_type="application/json", **headers)
            database = sum(backend.cpu_times()[:2]) - before
        finally:
            gc.unfreeze()
        return tuple(
            value * 1000 / count
            for value in (time.perf_counter() - wall, time.process_time() - python, database)
        )

    agent = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    return {
        "claim": measure(CLAIM, agent),
        "constant": measure(CONSTANT, {}),
        "agent_constant": measure(AGENT_CONSTANT, agent),
    }


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
            str(REPO),
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
        start_new_session=True,  # its own process group, so that the workers can be stopped with it
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
    raise BenchmarkError("gunicorn did not start")


def measure(quick: bool = False, database_url: str = "") -> dict[str, Any]:
    """Drive the claim endpoint and the constant one, then time sign-offs to claims."""
    plan = QUICK if quick else FULL
    database_url = database_url or os.environ.get("DATABASE_URL", "")
    if not is_postgres(database_url):
        raise BenchmarkError(
            "the dispatch benchmark needs PostgreSQL: pass --database-url (or set DATABASE_URL) to a server "
            "where databases can be created"
        )
    url, drop = scratch_postgres(database_url, "dispatch_bench")
    media = Path(tempfile.mkdtemp(prefix="dispatch-bench-"))
    env = {**os.environ, **portal_environment(url, media), "DATABASE_CONN_MAX_AGE": "600"}
    env["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    # WhiteNoise warns in every worker that there is no collectstatic folder; no static file is served here.
    env["PYTHONWARNINGS"] = "ignore:No directory at"
    os.environ.update(env)
    server = None
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection, connections

        progress("dispatch", "migrating a scratch database")
        call_command("migrate", verbosity=0)
        tre, officer, workflow, project, researcher, tokens = federation(plan.agents)
        jobs(plan.jobs, "queued", tre, workflow, project, researcher)
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            postgres = cursor.fetchone()[0].split(" on ")[0]
        connections.close_all()
        port = free_port()
        server = start_server(env, port, plan.workers, plan.threads)

        progress("dispatch", "warming up")
        load(port, tokens, CONSTANT, plan.warm_up, plan.processes, plan.start_delay)
        progress("dispatch", f"constant endpoint, {plan.seconds:g} s")
        constant = load(port, tokens, CONSTANT, plan.seconds, plan.processes, plan.start_delay)
        progress("dispatch", f"constant endpoint behind agent authentication, {plan.seconds:g} s")
        agent_constant = load(port, tokens, AGENT_CONSTANT, plan.seconds, plan.processes, plan.start_delay)
        progress("dispatch", f"claims, {plan.seconds:g} s")
        with Waits(url) as waits:
            claims = load(port, tokens, CLAIM, plan.seconds, plan.processes, plan.start_delay)
        ids = claims.ids
        problems = check_no_double_claims(ids)
        from crates.models import Job

        Job.objects.filter(status="queued").delete()
        progress("dispatch", f"sign-off to claim, {plan.rounds} rounds")
        delays = latency(
            port,
            tokens,
            plan.rounds,
            (tre, officer, workflow, project, researcher),
            plan.settle,
            plan.long_poll,
        )
        progress("dispatch", "cost of one request")
        cost = costs(tokens[0], (tre, workflow, project, researcher), plan.costs)
        return {
            "quick": quick,
            "plan": plan.__dict__,
            "postgres": postgres,
            "cores": os.cpu_count(),
            "claims_per_second": claims.per_second,
            "constant_per_second": constant.per_second,
            "agent_constant_per_second": agent_constant.per_second,
            "cpu_ms": {
                "claim": claims.cpu_ms,
                "constant": constant.cpu_ms,
                "agent_constant": agent_constant.cpu_ms,
            },
            "claims": len(ids),
            "queue_ran_dry": len(ids) >= plan.jobs,
            "problems": problems,
            "errors": constant.errors + agent_constant.errors + claims.errors,
            "delays": delays,
            "cost": {name: list(values) for name, values in cost.items()},
            "waits": waits.shares(),
        }
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)  # the workers too, before their database goes
                server.wait()
        from django.db import connections

        connections.close_all()
        drop()
        shutil.rmtree(media, ignore_errors=True)


def _latency(result: dict[str, Any]) -> tuple[float, float, float]:
    delays = sorted(result["delays"])
    return statistics.median(delays), delays[int(0.9 * (len(delays) - 1))], delays[-1]


def goals(result: dict[str, Any]) -> list[Goal]:
    plan = result["plan"]
    share = result["claims_per_second"] / result["constant_per_second"]
    median, p90, worst = _latency(result)
    problems = result["problems"]
    return [
        Goal(
            "dispatch",
            f"claims per second through the agent API, {plan['agents']} agents, against a bare DRF endpoint "
            "returning a constant on the same server and database (no target: docs/adr/0005)",
            f"{share:.2f} ({result['claims_per_second']:,.0f} claims/s against "
            f"{result['constant_per_second']:,.0f} answers/s)",
            None,
        ),
        Goal(
            "dispatch",
            "no job claimed twice",
            f"none in {result['claims']:,} claims" if not problems else "; ".join(problems),
            not problems,
        ),
        Goal(
            "dispatch",
            f"sign-off to claim, median under {LATENCY_GOAL:g} s",
            f"{median * 1000:,.0f} ms (90th percentile {p90 * 1000:,.0f} ms, worst {worst * 1000:,.0f} ms; "
            f"{len(result['delays'])} rounds)",
            median < LATENCY_GOAL,
        ),
    ]


def render(result: dict[str, Any]) -> str:
    plan = result["plan"]
    median, p90, worst = _latency(result)
    cost, cpu = result["cost"], result["cpu_ms"]
    claim, constant, agent_constant = cost["claim"], cost["constant"], cost["agent_constant"]
    lines = []
    if result["quick"]:
        lines += [
            f"> Quick run: {plan['seconds']:g} s per endpoint and {plan['rounds']} sign-offs. These numbers "
            "only show the benchmark works.",
            "",
        ]
    lines += [
        f"On {result['postgres']}.",
        "",
        "| measure | result |",
        "|---|---|",
        f"| claims per second through the API, {plan['agents']} agents | {result['claims_per_second']:,.0f} |",
        f"| bare DRF endpoint returning a constant, same clients | {result['constant_per_second']:,.0f} "
        "answers/s |",
        f"| claims / constant | {result['claims_per_second'] / result['constant_per_second']:.2f} |",
        f"| the constant endpoint behind the agent API's token authentication, same clients | "
        f"{result['agent_constant_per_second']:,.0f} answers/s (claims / it: "
        f"{result['claims_per_second'] / result['agent_constant_per_second']:.2f}) |",
        f"| sign-off to claim: median, 90th percentile, worst of {len(result['delays'])} | "
        f"{median * 1000:,.0f} ms, {p90 * 1000:,.0f} ms, {worst * 1000:,.0f} ms |",
        f"| one claim, on its own | {claim[0]:.1f} ms: {claim[1]:.1f} ms Python CPU, {claim[2]:.1f} ms "
        "PostgreSQL CPU |",
        f"| one constant answer, on its own | {constant[0]:.1f} ms: {constant[1]:.1f} ms Python CPU, "
        f"{constant[2]:.1f} ms PostgreSQL CPU |",
        f"| one authenticated constant answer, on its own | {agent_constant[0]:.1f} ms: "
        f"{agent_constant[1]:.1f} ms Python CPU, {agent_constant[2]:.2f} ms PostgreSQL CPU |",
        f"| CPU cost of a claim against a constant answer (Python + PostgreSQL) "
        f"| {ratio((claim[1] + claim[2]) / max(constant[1] + constant[2], 1e-9))} |",
        f"| the machine's CPU per answer under load (clients, gunicorn, PostgreSQL): constant, "
        f"authenticated constant, claim | {cpu['constant']:.2f} ms, {cpu['agent_constant']:.2f} ms, "
        f"{cpu['claim']:.2f} ms |",
        "",
        "How it is measured: the server is gunicorn with "
        f"{plan['workers']} gthread workers of {plan['threads']} threads and persistent connections to "
        "PostgreSQL, all on this machine; the clients are "
        f"{plan['processes']} processes sharing the {plan['agents']} agents, one keep-alive connection each. "
        f"Each endpoint is driven for {plan['seconds']:g} s after a warm-up, the constant endpoint first. "
        f"{plan['jobs']:,} queued jobs are inserted in bulk (the claim path is what is measured); every claim "
        "runs the real service, `crates.claiming.claim_one`: in one transaction the ORM locks the oldest "
        "queued job (`select_for_update(skip_locked=True)`), takes the lease with its next fencing token, "
        "and `transition()` moves the job and appends the hash-chained `job.claimed` event "
        "(`audit.record()`), the same code as on SQLite. Afterwards every claimed job must "
        "have fencing token 1 and one `job.claimed` event, and the audit chain must verify. For the "
        "latency, the agents long-poll (the portal re-checks the queue every "
        "`PORTAL_AGENT_CLAIM_POLL_SECONDS`, 0.25 s by default); each round times the officer's sign-off "
        "call (evidence, write-back, the approved and queued transitions) until an agent's claim answer "
        f"arrives; the agents' long polls last {plan['long_poll']} s each."
        + (f" {result['errors']} request(s) failed during the runs." if result["errors"] else "")
        + (" The queue ran dry during the claims: raise the job count." if result["queue_ran_dry"] else ""),
        "",
        f"The cost of one request on its own is the mean of {plan['costs']} requests made one at a time in "
        "the benchmark's process through Django's test client (the same middleware and views, no HTTP), "
        "with the process's CPU time and that of its PostgreSQL backend (what the benchmark built before "
        "is frozen out of the garbage collector's passes). The machine's CPU per answer is "
        "the CPU time all its cores spent working during a run (from the operating system's counters) "
        "divided by the answers. A claim does everything a constant answer does (the same clients, server "
        "and middleware), runs its statements in PostgreSQL, and has its own Python work on top. Where the "
        "claims' database "
        "sessions were, sampled every 5 ms during the throughput run: "
        + "; ".join(f"{share:.0%} {what}" for what, share in result["waits"].items())
        + ".",
    ]
    return "\n".join(lines)

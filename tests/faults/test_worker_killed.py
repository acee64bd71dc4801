"""SIGKILL of django-q2 workers while they run the disclosure checks of a returned results crate.

With the Redis broker a task handed to a worker is gone from Redis: a worker killed mid-task, or a
whole cluster killed with tasks it had fetched, loses them, and nothing in django-q2 runs them again.
The checks are redone by the portal's every-minute sweep, which hands out again the checks of results
that have waited too long; a redo that races the original records nothing twice, because the check
claims the job's row before it records anything.
"""

import os
import signal

import pytest
import redis
import requests

pytestmark = pytest.mark.faults

CHECK = "reviews.tasks.check_outputs"
# The sweep hands out again the checks of results that have waited this long.
RETRY_SECONDS = 3
# Results crates whose disclosure checks take a few seconds: 8 tables of 25,000 rows each.
FILES, ROWS = 8, 25_000


def _return_results(stack, job, token):
    """Act as the agent over HTTP: claim, run, upload a large results crate, report completion."""
    base = f"http://127.0.0.1:{stack.port}/api/v1/agent"
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        claim = session.post(f"{base}/claim/", json={"wait_seconds": 1}, timeout=30)
        assert claim.status_code == 200 and claim.json()["id"] == job, claim.text
        fencing = claim.json()["fencing_token"]
        report = {"fencing_token": fencing, "status": "running"}
        assert session.post(f"{base}/jobs/{job}/status/", json=report, timeout=30).ok
        crate = stack.root / f"results-{job}.zip"
        sha256 = stack.helper(
            "results-crate", "--job", job, "--dest", crate, "--files", FILES, "--rows", ROWS
        ).strip()
        upload = session.put(
            f"{base}/jobs/{job}/results/",
            data=crate.read_bytes(),
            headers={
                "Content-Type": "application/zip",
                "Fencing-Token": str(fencing),
                "Idempotency-Key": f"results-{job}",
                "X-Content-SHA256": sha256,
            },
            timeout=120,
        )
        assert upload.status_code == 201, upload.text
        report["status"] = "completed"
        assert session.post(f"{base}/jobs/{job}/status/", json=report, timeout=30).ok
    return upload.json()["id"]


def _checks_of(stack, upload):
    """Each execution of the check of `upload`: (started, finished, succeeded, result)."""
    return stack.rows(
        "SELECT s.task_id, f.success, f.result FROM faults_execution s "
        "LEFT JOIN faults_execution f ON f.task_id = s.task_id AND f.phase = 'finished' "
        "WHERE s.phase = 'started' AND s.func = %s AND s.name = %s ORDER BY s.id",
        CHECK,
        f"check-outputs-{upload}",
    )


def _checked_once(stack, job, upload):
    """The job's outputs were recorded once, whole: one file row per output, one audit of the check."""
    paths = [p for (p,) in stack.rows("SELECT path FROM reviews_outputfile WHERE job_id = %s", job)]
    assert sorted(paths) == [f"outputs/table_{n:02d}.csv" for n in range(FILES)]
    assert stack.value("SELECT count(DISTINCT upload_id) FROM reviews_outputfile WHERE job_id = %s", job) == 1
    verbs = stack.verbs(job)
    assert verbs.count("outputs.checking") == 1
    assert verbs.count("outputs.checked") == 1
    # One notification per output checker (cam and chris), not one per run of the check.
    notified = stack.value(
        "SELECT count(*) FROM reviews_notification n, crates_job j JOIN crates_request r ON r.id = j.request_id "
        "WHERE j.id = %s AND n.subject LIKE 'Outputs to check at %%: ' || r.title",
        job,
    )
    assert notified == 2


def _mid_check(stack, cluster, upload):
    """Wait until a worker of `cluster` is inside the check of `upload` (its scratch copy unpacked)."""
    pid = stack.wait_for(
        lambda: stack.worker_running(cluster, f"check-outputs-{upload}"), "a worker to take the check"
    )
    stack.wait_for(
        lambda: list(stack.cluster_scratch(cluster).glob("outputs-*/bag")), "the worker to unpack the results"
    )
    return pid


def test_a_worker_killed_mid_check_loses_the_task_and_the_sweep_redoes_it_once(stack):
    stack.output_check_retry_seconds = RETRY_SECONDS
    (job,) = stack.seed(jobs=1)
    stack.start_web()
    stack.start_cluster("q1", workers=2)
    upload = _return_results(stack, job, stack.tokens["agent-1"])
    worker = _mid_check(stack, "q1", upload)
    os.kill(worker, signal.SIGKILL)

    stack.wait_for(
        lambda: "reincarnated worker" in stack.clusters["q1"].text(), "the cluster to replace the worker"
    )
    # The check died half-way: nothing of it is visible, and the broker does not hand it out again.
    assert stack.status(job) == "outputs_returned"
    assert stack.value("SELECT count(*) FROM reviews_outputfile") == 0
    assert "outputs.checked" not in stack.verbs(job)
    stack.assert_nothing_partial()
    [(_, succeeded, _)] = _checks_of(stack, upload)
    assert succeeded is None  # started, never finished

    # Two sweeps at once (as when the sweep runs while a slow check still works): each hands the
    # check out again, and the two redone checks race.
    stack.wait_for(
        lambda: stack.value(
            "SELECT now() - status_changed_at > make_interval(secs => %s) FROM crates_job WHERE id = %s",
            RETRY_SECONDS,
            job,
        ),
        "the check to be overdue",
    )
    stack.enqueue("crates.dispatch_tasks.expire_leases", times=2)
    stack.wait_for(lambda: stack.status(job) == "output_review", "the redone check")
    stack.wait_for(
        lambda: (
            len(redone := _checks_of(stack, upload)[1:]) >= 2
            and all(succeeded is not None for _, succeeded, _ in redone)
        ),
        "both redone checks to finish",
    )

    # Each redone check ran to its end without error; the first to claim the job recorded the checks,
    # the other (and any the cluster's own schedule added meanwhile) found them done.
    redone = _checks_of(stack, upload)[1:]
    assert len(redone) >= 2
    assert all(succeeded for _, succeeded, _ in redone)
    results = sorted(result for _, _, result in redone)
    assert results == ["output_review"] + ["skipped"] * (len(redone) - 1)
    _checked_once(stack, job, upload)
    stack.assert_nothing_partial()
    assert stack.server_errors() == []
    stack.verify_audit()


def test_a_cluster_killed_with_checks_in_hand_has_them_redone_by_its_schedule_after_a_restart(stack):
    stack.output_check_retry_seconds = RETRY_SECONDS
    jobs = stack.seed(jobs=2)
    stack.start_web()
    uploads = [_return_results(stack, job, stack.tokens["agent-1"]) for job in jobs]
    broker = redis.Redis.from_url(stack.redis_url)
    queue = f"django_q:{stack.queue}:q"
    assert broker.llen(queue) == 2  # both checks wait on the broker

    # One worker: the cluster takes both checks off the broker, runs the first, holds the second.
    first = stack.start_cluster("q1", workers=1)
    _mid_check(stack, "q1", uploads[0])
    assert broker.llen(queue) == 0
    first.kill()

    # Both checks died with the cluster: nothing of them is visible, and nothing is left to run them.
    assert [stack.status(job) for job in jobs] == ["outputs_returned", "outputs_returned"]
    assert stack.value("SELECT count(*) FROM reviews_outputfile") == 0
    assert broker.llen(queue) == 0
    stack.assert_nothing_partial()

    # The sweep's minute is up; the restarted cluster's own scheduler runs it, which redoes the checks.
    stack.db.execute(
        "UPDATE django_q_schedule SET next_run = now() WHERE func = 'crates.dispatch_tasks.expire_leases'"
    )
    stack.start_cluster("q1", workers=2)
    stack.wait_for(
        lambda: [stack.status(job) for job in jobs] == ["output_review", "output_review"],
        "the restarted cluster's schedule to redo the checks",
        timeout=120,
    )
    for job, upload in zip(jobs, uploads, strict=True):
        _checked_once(stack, job, upload)
        stack.wait_for(lambda u=upload: _checks_of(stack, u)[-1][1] is not None, "the redone check to end")
        assert _checks_of(stack, upload)[-1][1] is True
    stack.assert_nothing_partial()
    assert stack.server_errors() == []
    stack.verify_audit()

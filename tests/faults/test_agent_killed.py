"""SIGKILL of a TRE agent half-way through returning its results crate.

The portal is left reading an upload whose sender is gone: nothing of it may become visible. The lease
lapses, the sweep queues the job again, another agent runs it and its upload is the only result; a
retry of that upload with its Idempotency-Key answers with the first result, and the killed agent,
restarted, finds its lease gone and drops the job without touching it.
"""

import json
import zipfile

import pytest
import requests

from tests.faults.conftest import RETURNED

pytestmark = pytest.mark.faults


def _put(stack, job, token, *, fencing_token, key, sha256, body):
    return requests.put(
        f"http://127.0.0.1:{stack.port}/api/v1/agent/jobs/{job}/results/",
        data=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/zip",
            "Fencing-Token": str(fencing_token),
            "Idempotency-Key": key,
            "X-Content-SHA256": sha256,
        },
        timeout=60,
    )


def test_an_agent_killed_mid_upload_leaves_nothing_and_the_job_completes_once_elsewhere(stack):
    (job,) = stack.seed(jobs=1, agents=("agent-1", "agent-2"))
    stack.start_web()
    stack.start_cluster()
    upload_path = rf"/api/v1/agent/jobs/{job}/results/"
    half = stack.proxy.freeze("PUT", upload_path, body_fraction=0.5)

    first = stack.start_agent("agent-1")
    stack.wait_for(half.fired.is_set, "agent-1 to send half of its results crate")
    stack.wait_for(
        lambda: list(stack.web_scratch.glob("results-*/results.zip")), "the portal to spool the upload"
    )
    first.kill()

    # The portal sees the body end early, refuses it and keeps nothing: no row, no file, no scratch.
    stack.wait_for(lambda: not list(stack.web_scratch.glob("results-*")), "the portal to drop the upload")
    assert stack.status(job) == "running"
    assert stack.uploads() == []
    assert stack.media_files("results") == []
    stack.assert_nothing_partial()

    # Nobody renews the lease: once it lapses the sweep (run by a worker) queues the job again.
    stack.wait_for(
        lambda: stack.value("SELECT expires_at < now() FROM crates_joblease WHERE job_id = %s", job),
        "the lease to lapse",
        timeout=30,
    )
    stack.enqueue("crates.dispatch_tasks.expire_leases")
    stack.wait_for(lambda: stack.status(job) == "queued", "the sweep to queue the job again")

    second = stack.start_agent("agent-2")
    stack.wait_for(
        lambda: stack.status(job) in RETURNED and "job.execution_reported" in stack.verbs(job),
        "agent-2 to return the results and report completion",
    )
    stack.wait_for(lambda: stack.status(job) == "output_review", "the disclosure checks")

    (upload,) = stack.uploads()
    assert (upload["status"], upload["fencing_token"], upload["agent"]) == (
        "verified",
        2,
        stack.agent_id("agent-2"),
    )
    assert stack.media_files("results") == [upload["file"]]

    # agent-2's retry of its upload, with the key it used: the first result, and nothing new.
    state_dir = second.work / "jobs" / str(job)
    state = json.loads((state_dir / "state" / "lease.json").read_text())
    crate = (state_dir / "results" / "results.zip").read_bytes()
    assert state["idempotency_key"] == upload["key"]
    token = stack.tokens["agent-2"]
    for body in (crate, b"not the same bytes at all"):
        again = _put(
            stack, job, token, fencing_token=2, key=upload["key"], sha256=state["results_sha256"], body=body
        )
        assert again.status_code == 200, again.text
        assert again.headers["Idempotent-Replayed"] == "true"
        assert (again.json()["id"], again.json()["sha256"]) == (upload["id"], upload["sha256"])
    assert second.stop() == 0

    # The killed agent comes back with its half-sent upload: the portal refuses its stale lease, and
    # the agent drops the job.
    restarted = stack.start_agent("agent-1")
    stack.wait_for(lambda: "job.dropped" in restarted.events(), "the restarted agent-1 to drop the job")
    assert restarted.stop() == 0
    assert "job.completed" not in restarted.events()

    assert [u["id"] for u in stack.uploads()] == [upload["id"]]
    verbs = stack.verbs(job)
    assert verbs.count("job.claimed") == 2
    assert verbs.count("job.requeued") == 1
    assert verbs.count("job.outputs_returned") == 1
    assert verbs.count("job.execution_reported") == 1
    assert "job.results_rejected" not in verbs
    with zipfile.ZipFile(stack.media / upload["file"]) as archive:
        returned = sorted(
            n.split("/data/", 1)[1]
            for n in archive.namelist()
            if "/data/outputs/" in n and not n.endswith("/")
        )
    checked = [
        path
        for (path,) in stack.rows("SELECT path FROM reviews_outputfile WHERE job_id = %s ORDER BY path", job)
    ]
    assert checked == returned and returned
    stack.wait_for(
        lambda: list(stack.executions(func="reviews.tasks.check_outputs").values()) == [(1, 1)],
        "the disclosure checks to have run once, to their end",
    )
    stack.assert_nothing_partial()
    assert stack.server_errors() == []
    stack.verify_audit()


def test_an_agent_killed_mid_upload_and_restarted_sends_it_again_under_the_same_lease(stack):
    stack.lease_seconds = 30  # the restart comes well within the lease
    (job,) = stack.seed(jobs=1)
    stack.start_web()
    stack.start_cluster()
    half = stack.proxy.freeze("PUT", rf"/api/v1/agent/jobs/{job}/results/", body_fraction=0.5)
    first = stack.start_agent("agent-1")
    stack.wait_for(half.fired.is_set, "the agent to send half of its results crate")
    first.kill()
    stack.wait_for(lambda: not list(stack.web_scratch.glob("results-*")), "the portal to drop the upload")
    assert stack.uploads() == []

    restarted = stack.start_agent("agent-1")
    stack.wait_for(lambda: "job.execution_reported" in stack.verbs(job), "the restarted agent to finish")
    stack.wait_for(lambda: stack.status(job) == "output_review", "the disclosure checks")
    assert restarted.stop() == 0

    # Reconciling, the agent found the job still its own and sent the same crate again.
    events = restarted.events()
    assert "job.resumed" in events and "job.claimed" not in events
    assert events.count("job.results_uploaded") == 1
    (upload,) = stack.uploads()
    assert (upload["status"], upload["fencing_token"]) == ("verified", 1)
    lease = stack.lease(job)
    assert (lease["fencing_token"], lease["attempts"]) == (1, 1)
    verbs = stack.verbs(job)
    assert verbs.count("job.claimed") == 1 and "job.requeued" not in verbs
    assert verbs.count("job.outputs_returned") == 1 and verbs.count("job.execution_reported") == 1
    assert stack.media_files("results") == [upload["file"]]
    stack.assert_nothing_partial()
    assert stack.server_errors() == []
    stack.verify_audit()

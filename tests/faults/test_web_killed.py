"""SIGKILL of the web server (gunicorn, master and workers) while an agent uploads or claims.

Three moments: half-way through the body of an upload (nothing is stored yet), after the upload was
committed but before the agent heard so, and after a claim was committed but before the agent heard
so. The server is started again; the agent, retrying and reconciling, converges on the job it holds,
and the job is claimed once and completed once, with one stored result.
"""

import re

import pytest

from tests.faults.conftest import RETURNED

pytestmark = pytest.mark.faults

# The web server is down for a few seconds: a lease long enough that it never lapses meanwhile.
LEASE_SECONDS = 30


@pytest.fixture
def portal(stack):
    """One queued job, the web server and a cluster, and agent-1 ready to be started."""
    stack.lease_seconds = LEASE_SECONDS
    (job,) = stack.seed(jobs=1)
    stack.start_web()
    stack.start_cluster()
    return stack, job


def _finished_once(stack, job, agent):
    """The job ran once under its first and only lease and returned one result, which was checked."""
    stack.wait_for(lambda: "job.execution_reported" in stack.verbs(job), "the agent to report completion")
    stack.wait_for(lambda: stack.status(job) == "output_review", "the disclosure checks")
    (upload,) = stack.uploads()
    assert (upload["status"], upload["fencing_token"]) == ("verified", 1)
    lease = stack.lease(job)
    assert (lease["fencing_token"], lease["attempts"]) == (1, 1)
    verbs = stack.verbs(job)
    assert verbs.count("job.claimed") == 1
    assert verbs.count("job.outputs_returned") == 1
    assert verbs.count("job.execution_reported") == 1
    assert "job.requeued" not in verbs and "job.results_rejected" not in verbs
    assert stack.media_files("results") == [upload["file"]]
    stack.wait_for(
        lambda: list(stack.executions(func="reviews.tasks.check_outputs").values()) == [(1, 1)],
        "the disclosure checks to have run once, to their end",
    )
    assert agent.stop() == 0
    assert agent.events().count("job.completed") == 1
    stack.assert_nothing_partial()
    assert stack.server_errors() == []
    stack.verify_audit()
    return upload


def test_a_web_server_killed_mid_upload_stores_nothing_and_the_agent_uploads_again(portal):
    stack, job = portal
    half = stack.proxy.freeze("PUT", rf"/api/v1/agent/jobs/{job}/results/", body_fraction=0.5)
    agent = stack.start_agent("agent-1")
    stack.wait_for(half.fired.is_set, "the agent to send half of its results crate")
    stack.wait_for(
        lambda: list(stack.web_scratch.glob("results-*/results.zip")), "the portal to spool the upload"
    )
    stack.kill_web()

    # The dead server's scratch copy is all that is left of the upload, and nothing refers to it.
    assert stack.status(job) == "running"
    assert stack.uploads() == []
    assert stack.media_files("results") == []
    stack.assert_nothing_partial()

    stack.start_web()
    upload = _finished_once(stack, job, agent)
    assert upload["agent"] == stack.agent_id("agent-1")


def test_a_web_server_killed_before_answering_an_upload_keeps_it_and_the_retry_is_replayed(portal):
    stack, job = portal
    answer = stack.proxy.freeze("PUT", rf"/api/v1/agent/jobs/{job}/results/", status=201)
    agent = stack.start_agent("agent-1")
    stack.wait_for(answer.fired.is_set, "the portal to accept the results crate")
    stack.kill_web()

    # Accepted means committed: the result is there whole, though the agent never heard of it.
    (accepted,) = stack.uploads()
    assert accepted["status"] == "verified"
    assert stack.status(job) in RETURNED
    assert "job.results_uploaded" not in agent.events()
    stack.assert_nothing_partial()

    stack.start_web()
    upload = _finished_once(stack, job, agent)
    assert upload["id"] == accepted["id"]
    # The agent sent the same crate again under the same key, and was answered with the first result.
    log = (stack.logs / "web.log").read_text()
    puts = re.findall(rf'"PUT /api/v1/agent/jobs/{job}/results/ HTTP/1.1" (\d+)', log)
    assert puts == ["201", "200"]
    assert agent.events().count("job.results_uploaded") == 1


def test_a_web_server_killed_before_answering_a_claim_leaves_the_job_with_the_agent(portal):
    stack, job = portal
    claimed = stack.proxy.freeze("POST", r"/api/v1/agent/claim/", status=200)
    agent = stack.start_agent("agent-1")
    stack.wait_for(claimed.fired.is_set, "the portal to lease the job")
    stack.kill_web()

    # The claim committed: the job is leased to agent-1, which does not know it.
    assert stack.status(job) == "claimed"
    assert stack.lease(job)["agent"] == stack.agent_id("agent-1")
    assert "job.claimed" not in agent.events()
    stack.assert_nothing_partial()

    stack.start_web()
    _finished_once(stack, job, agent)
    # Reconciling told the agent of the job it held; it never saw a claim answer.
    events = agent.events()
    assert "job.resumed" in events
    assert "job.claimed" not in events

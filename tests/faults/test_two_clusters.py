"""Two django-q2 clusters on one Redis queue share the work and run no task twice.

Two hundred marker tasks, each counting its runs against its own key, and requests submitted through
the portal's intake, whose validation (and the e-mails it leads to) the clusters run. Every worker
also writes down each task it starts and finishes (tests/faults/apps.py), so "once" is counted, not
inferred from outcomes.
"""

import json

import pytest

pytestmark = pytest.mark.faults

MARKS = 200
REQUESTS = 12


def test_two_clusters_share_one_queue_and_run_every_task_exactly_once(stack):
    stack.seed(jobs=0)
    clusters = [stack.start_cluster("q1", workers=2), stack.start_cluster("q2", workers=2)]
    stack.helper("marks", "--count", MARKS, "--seconds", "0.02")
    out = stack.root / "versions.json"
    stack.helper("submit", "--count", REQUESTS, "--out", out)
    versions = json.loads(out.read_text())

    stack.wait_for(
        lambda: stack.value("SELECT count(*) FROM faults_marker") == MARKS, "every marker task", timeout=180
    )
    stack.wait_for(
        lambda: stack.value("SELECT count(*) FROM crates_requestversion WHERE status = 'valid'") == REQUESTS,
        "every request to be validated",
        timeout=180,
    )
    stack.wait_for(
        lambda: all(finished == 1 for _, finished in stack.executions().values()), "the tasks under way"
    )

    runs = dict(stack.rows("SELECT key, runs FROM faults_marker"))
    assert sorted(runs, key=int) == [str(n) for n in range(MARKS)]
    assert set(runs.values()) == {1}
    # Both clusters took a share, and nothing else did.
    shares = dict(stack.rows("SELECT pgid, count(*) FROM faults_marker GROUP BY pgid"))
    assert set(shares) == {cluster.pid for cluster in clusters}, shares

    executions = stack.executions()
    assert executions and set(executions.values()) == {(1, 1)}
    failed = stack.rows("SELECT name, result FROM faults_execution WHERE phase = 'finished' AND NOT success")
    assert failed == []
    validations = stack.rows(
        "SELECT name, result FROM faults_execution WHERE phase = 'finished' AND func = 'crates.tasks.validate_version'"
    )
    assert sorted(validations) == sorted((f"validate-version-{v}", "valid") for v in versions)

    # Each validation's outcome was recorded once: one audit event and one job per request.
    for version in versions:
        events = stack.value(
            "SELECT count(*) FROM portal_auditevent WHERE verb = 'request.version_valid' AND object_id = %s",
            str(version),
        )
        jobs = stack.value("SELECT count(*) FROM crates_job WHERE version_id = %s", version)
        assert (events, jobs) == (1, 1), version
    stack.verify_audit()

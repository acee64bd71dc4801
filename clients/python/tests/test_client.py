"""The client against a live portal: clear errors, typed results, the CLI's exit codes."""

import time

import pytest
from fivesafes_client import APIError, Client, TimedOut
from fivesafes_client.cli import main as fivesafes

from portal import services


@pytest.fixture
def token(portal, alice):
    with portal.db():
        return services.create_token(alice, "client", by=alice, days=1, second_factor_at=time.time())[1]


def test_a_bad_token_is_a_clear_error_not_a_sign_in_page(portal):
    with Client(portal.url, "fsp_not-a-real-token") as client, pytest.raises(APIError) as refused:
        client.me()
    assert refused.value.status == 401
    assert "unknown, expired or revoked" in str(refused.value.detail)


def test_typed_results_for_the_researchers_own_things(portal, token, project):
    with Client(portal.url, token) as client:
        assert client.me()["email"].startswith("alice")
        assert project.identifier in [p["identifier"] for p in client.projects()]
        assert "tre-a" in [t["slug"] for t in client.tres()]
        assert client.requests() == []


def test_submitting_a_crate_returns_a_request_with_one_job_per_tre(portal, token, registry, crate_zip):
    with Client(portal.url, token) as client:
        request = client.submit(
            crate_zip, project=registry["project"].identifier, tres=["tre-a"], title="Ages"
        )
        assert request.title == "Ages" and request.tres == ["tre-a"]
        assert request.job_at("tre-a").status == "awaiting_review"
        assert client.status(request.id) == client.request(request.id)
        with pytest.raises(TimedOut):
            client.wait(request.id, timeout=0.3, interval=0.1)
        # Waiting for the state the job is in returns at once.
        assert client.wait(request.id, until={"awaiting_review"}, timeout=5).id == request.id


def test_building_with_an_unknown_workflow_names_the_problem(portal, token, registry):
    with Client(portal.url, token) as client, pytest.raises(APIError) as refused:
        client.build(project=registry["project"].identifier, tres=["tre-a"], title="x", workflow=999999)
    assert refused.value.status == 400


def test_the_cli_needs_an_address_and_a_token(portal, capsys, monkeypatch):
    monkeypatch.delenv("FIVESAFES_URL", raising=False)
    monkeypatch.delenv("FIVESAFES_TOKEN", raising=False)
    assert fivesafes(["status"]) == 2
    assert "token" in capsys.readouterr().err


def test_the_cli_reports_a_refusal_and_exits_1(portal, capsys):
    assert fivesafes(["--url", portal.url, "--token", "fsp_nope", "status", "1"]) == 1
    assert "the portal refused (HTTP 401)" in capsys.readouterr().err


def test_the_cli_submits_and_shows_status(portal, token, registry, crate_zip, capsys):
    common = ["--url", portal.url, "--token", token]
    project = registry["project"].identifier
    assert (
        fivesafes([*common, "submit", str(crate_zip), "--project", project, "--tre", "tre-a", "--title", "T"])
        == 0
    )
    out = capsys.readouterr().out
    assert "awaiting_review" in out and "at tre-a" in out
    assert fivesafes([*common, "status"]) == 0
    assert "Request " in capsys.readouterr().out


def test_combining_names_what_is_missing(portal, token, registry, crate_zip, capsys):
    with Client(portal.url, token) as client:
        request = client.submit(
            crate_zip, project=registry["project"].identifier, tres=["tre-a"], title="One"
        )
        assert client.combinable(request.id) == [] and client.combined(request.id) == []
        with pytest.raises(APIError) as refused:
            client.combine(request.id, "by_age.csv")
        assert 400 <= refused.value.status < 500
    assert fivesafes(["--url", portal.url, "--token", token, "combine", str(request.id)]) == 0

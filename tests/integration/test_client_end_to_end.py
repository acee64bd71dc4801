"""A researcher's whole story with the Python client against a live portal, told by signed webhooks:
submit a crate, hear it validated and reviewed, wait for the checkers, download what they released."""

import hashlib
import time

import pytest
from fivesafes_client import APIError, Client
from fivesafes_client.cli import main as fivesafes

from crates.models import Job
from portal import permissions, services
from reviews import outputs
from reviews.models import OutputFile
from tests import builders
from tests.integration.portal.test_webhooks import Receiver

S = Job.Status
SAFE = b"age_band,female,male\n18-39,120,131\n40-64,210,198\n65+,95,88\n"


def _secret(user):
    scopes = permissions.token_scopes_for(user)  # privileged scopes right after a second-factor check
    return services.create_token(
        user, "client", by=user, days=1, scopes=scopes, second_factor_at=time.time()
    )[1]


@pytest.fixture
def receiver(settings):
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE = True
    settings.PORTAL_WEBHOOK_RETRY_BASE_SECONDS = 0
    server = Receiver()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_a_researcher_goes_from_submission_to_a_released_download_with_the_client(
    portal, registry, alice, olivia, cam, chris, crate_zip, tmp_path, receiver, capsys
):
    project = registry["project"].identifier
    with portal.db():
        researcher_token, checker_tokens = _secret(alice), [_secret(cam), _secret(chris)]
    client = Client(portal.url, researcher_token)

    hook = client.subscribe(receiver.url, project=project)
    receiver.secret = hook["secret"]

    request = client.submit(crate_zip, project=project, tres=["tre-a"], title="Ages by band")
    assert request.status and [job.tre for job in request.jobs] == ["tre-a"]
    assert request.jobs[0].status == S.AWAITING_REVIEW
    assert receiver.types()[0] == "request.validated"

    # The officer reviews and the agent runs the job (as their own tests drive them).
    with portal.db():
        job = Job.objects.get(pk=request.jobs[0].id)
        builders.walk(job, S.QUEUED, officer=olivia, researcher=alice)
        upload = builders.return_results(job, {"by_age.csv": SAFE}, tmp_path=tmp_path)
        outputs.check_outputs(upload.pk)
    assert "outputs.ready_to_check" in receiver.types()
    assert client.request(request.id).job_at("tre-a").status == S.OUTPUT_REVIEW

    # Nothing to download before release; the client says so plainly.
    (pending,) = client.outputs(job.pk)
    assert pending.download_url is None
    with pytest.raises(APIError) as refused:
        client.download(pending.id, tmp_path)
    assert refused.value.status == 403

    # Two checkers approve and release through the API with their own tokens.
    for secret in checker_tokens:
        with Client(portal.url, secret) as checker:
            checker._json("POST", f"/api/v1/outputs/{pending.id}/votes/", json={"decision": "approve"})
    with Client(portal.url, checker_tokens[0]) as checker:
        checker._json("POST", f"/api/v1/outputs/{pending.id}/release/")

    finished = client.wait(request.id, timeout=30, interval=0.2)
    assert finished.job_at("tre-a").status == S.RELEASED
    assert "outputs.released" in receiver.types()
    assert receiver.rejected == []  # every message carried a good signature

    (saved,) = client.download_released(request.id, tmp_path / "results")
    assert saved == tmp_path / "results" / "tre-a" / "by_age.csv"
    assert saved.read_bytes() == SAFE
    with portal.db():
        assert OutputFile.objects.get(pk=pending.id).sha256 == hashlib.sha256(SAFE).hexdigest()

    # The same from the command line.
    common = ["--url", portal.url, "--token", researcher_token]
    assert fivesafes([*common, "status", str(request.id)]) == 0
    assert "job 1 at tre-a: released" in capsys.readouterr().out.replace(f"job {job.pk} ", "job 1 ")
    assert fivesafes([*common, "download", str(request.id), "--to", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "tre-a" / "by_age.csv").read_bytes() == SAFE
    assert fivesafes([*common, "wait", str(request.id), "--timeout", "5", "--interval", "0.1"]) == 0

    # The delivery log names every message the receiver verified.
    log = client.deliveries(hook["id"])
    assert {row["message_id"] for row in log} == {mid for mid, _ in receiver.received}
    assert {row["status"] for row in log} == {"delivered"}
    client.close()

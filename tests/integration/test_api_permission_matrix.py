"""Every API operation against every kind of caller: who gets past authentication and authorisation.

The operations come from the OpenAPI schema itself, so a new endpoint fails this test until its row is
written here. Each call is made with an empty body: a caller who may act gets a validation or state
answer (200, 201, 204, 400, 409), one who may not gets 401, 403 or 404. The expectation is written
from the roles (DESIGN §2), never read back from the code: an unexpected "allow" is a hole.
"""

import re
import time

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from crates import dispatch
from crates.models import Job
from portal import permissions, services
from portal.models import WebhookDelivery, WebhookEndpoint
from reviews import outputs
from reviews.models import CombinedRelease
from tests import builders
from tests.dispatch_helpers import bearer, issue

pytestmark = pytest.mark.django_db

S = Job.Status
ALLOWED = {200, 201, 202, 204, 400, 409, 413, 415}
DENIED = {401, 403, 404}

CALLERS = [
    "anonymous",
    "alice",
    "bob",
    "penny",
    "rex",
    "lena",
    "pat",
    "olivia",
    "oscar",
    "cam",
    "audrey",
    "agent_a",
    "agent_b",
]
# penny applied and waits, rex was removed, lena lapsed: none of them acts as a member.
NOT_MEMBERS = {"penny", "rex", "lena"}
PEOPLE = {"alice", "bob", "pat", "olivia", "oscar", "cam", "audrey"} | NOT_MEMBERS
MEMBERS = {"alice", "bob"}  # alice submitted the requests; bob leads the project
TRE_A_STAFF = {"olivia", "cam"}  # officer and output checker of TRE A, where the jobs run
CAN_SEE_JOB = MEMBERS | TRE_A_STAFF | {"audrey"}
AGENTS = {"agent_a", "agent_b"}

# (method, path) -> the callers allowed through. {job}: a job of alice's request at TRE A, in review
# or with outputs being checked, or leased to TRE A's agent, as the operation needs.
EXPECTED = {
    ("POST", "/api/v1/agent/claim/"): AGENTS,
    ("GET", "/api/v1/agent/reconcile/"): AGENTS,
    ("GET", "/api/v1/agent/jobs/{leased}/crate/"): {"agent_a"},
    ("GET", "/api/v1/agent/jobs/{leased}/workflow/"): {"agent_a"},
    ("POST", "/api/v1/agent/jobs/{leased}/heartbeat/"): {"agent_a"},
    ("POST", "/api/v1/agent/jobs/{leased}/status/"): {"agent_a"},
    ("PUT", "/api/v1/agent/jobs/{leased}/results/"): {"agent_a"},
    ("GET", "/api/v1/me/"): PEOPLE,
    ("GET", "/api/v1/tres/"): PEOPLE,
    ("GET", "/api/v1/projects/"): PEOPLE,
    # Applicants and lapsed members see their own application in it; removed members nothing.
    ("GET", "/api/v1/projects/{project}/"): MEMBERS | {"penny", "lena", "olivia", "audrey"},
    ("GET", "/api/v1/requests/"): PEOPLE,
    # Researchers get past the door; the project named in the body is checked next, and refuses
    # penny, rex and lena (tests/integration/portal/test_membership_states.py).
    ("POST", "/api/v1/requests/"): {"alice", "bob"} | NOT_MEMBERS,
    ("POST", "/api/v1/requests/build/"): {"alice", "bob"} | NOT_MEMBERS,
    ("GET", "/api/v1/requests/{request}/"): CAN_SEE_JOB,
    ("POST", "/api/v1/requests/{request}/versions/"): MEMBERS,
    ("GET", "/api/v1/reviews/"): PEOPLE,
    ("GET", "/api/v1/jobs/{review}/"): CAN_SEE_JOB,
    ("POST", "/api/v1/jobs/{review}/start/"): {"olivia"},
    ("POST", "/api/v1/jobs/{review}/decisions/"): {"olivia"},
    ("POST", "/api/v1/jobs/{review}/messages/"): MEMBERS | TRE_A_STAFF,
    ("POST", "/api/v1/jobs/{review}/cancel/"): MEMBERS | {"olivia"},
    ("GET", "/api/v1/jobs/{checking}/outputs/"): CAN_SEE_JOB,
    ("POST", "/api/v1/outputs/{output}/votes/"): {"cam"},
    ("POST", "/api/v1/outputs/{output}/release/"): {"cam"},
    ("POST", "/api/v1/outputs/{output}/describe/"): MEMBERS,
    ("GET", "/api/v1/requests/{request}/combined/"): CAN_SEE_JOB,
    ("POST", "/api/v1/requests/{request}/combined/"): MEMBERS | {"cam"},
    ("GET", "/api/v1/requests/{request}/regression/"): MEMBERS | {"cam"},
    ("GET", "/api/v1/combined/{combined}/"): CAN_SEE_JOB,
    ("POST", "/api/v1/combined/{combined}/decision/"): {"cam"},
    # The checked output is not released yet: only its checkers may fetch it.
    ("GET", "/api/v1/outputs/{output}/download/"): {"cam"},
    # Anyone may subscribe to what they can see (the project or TRE in the body is checked next);
    # a subscription and its log are its owner's alone.
    ("GET", "/api/v1/webhooks/"): PEOPLE,
    ("POST", "/api/v1/webhooks/"): PEOPLE,
    ("GET", "/api/v1/webhooks/{webhook}/"): {"alice"},
    ("POST", "/api/v1/webhooks/{webhook}/enable/"): {"alice"},
    ("POST", "/api/v1/webhooks/{webhook}/ping/"): {"alice"},
    ("GET", "/api/v1/webhooks/{webhook}/deliveries/"): {"alice"},
    ("POST", "/api/v1/webhook-deliveries/{delivery}/replay/"): {"alice"},
    ("DELETE", "/api/v1/webhooks/{webhook}/"): {"alice"},  # last: it removes the subscription
}


def _operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, item in schema["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                yield method.upper(), path


def _template(method, path):
    """The EXPECTED key of a schema operation: its {id}/{identifier} named by the object it needs."""
    for (want_method, template), _ in EXPECTED.items():
        pattern = re.sub(r"\{\w+\}", "{[^/]+}", re.escape(template).replace(r"\{", "{").replace(r"\}", "}"))
        if want_method == method and re.fullmatch(pattern, path):
            return template
    return None


def test_every_api_operation_has_an_expectation():
    missing = [f"{method} {path}" for method, path in _operations() if _template(method, path) is None]
    assert not missing, "API operations without a row in EXPECTED:\n" + "\n".join(missing)


@pytest.fixture
def world(
    new_job,
    tmp_path,
    registry,
    alice,
    bob,
    penny,
    rex,
    lena,
    pat,
    olivia,
    oscar,
    cam,
    chris,
    audrey,
    tre_a,
    tre_b,
):
    review = new_job(S.IN_REVIEW)
    checking = new_job(S.QUEUED, title="Outputs")
    (tmp_path / "results").mkdir()
    upload = builders.return_results(checking, {"t.csv": b"a,b\nx,20\n"}, tmp_path=tmp_path / "results")
    outputs.check_outputs(upload.pk)
    leased = new_job(S.QUEUED, title="Leased")
    agent_a, secret_a = issue(tre_a, olivia)
    _, secret_b = issue(tre_b, oscar, name="agent-b")
    claim = dispatch.claim_next(agent_a)
    assert claim.job.pk == leased.pk
    tokens = {"agent_a": secret_a, "agent_b": secret_b}
    for name, user in dict(
        alice=alice,
        bob=bob,
        penny=penny,
        rex=rex,
        lena=lena,
        pat=pat,
        olivia=olivia,
        oscar=oscar,
        cam=cam,
        audrey=audrey,
    ).items():
        # Each token with every scope the person's roles allow, made right after a second-factor check.
        tokens[name] = services.create_token(
            user, "matrix", by=user, scopes=permissions.token_scopes_for(user), second_factor_at=time.time()
        )[1]
    # A combination of the checked output (its permissions follow its request and source jobs).
    combined = CombinedRelease.objects.create(
        request=checking.request,
        created_by=alice,
        table={"header": ["a", "b"], "labels": 1, "rows": [["x", "20"]]},
        stored="combined/matrix.csv",
        sha256="0" * 64,
        policy_version="matrix",
        policy={},
        sdc={},
        sdc_verdict="pass",
    )
    combined.sources.set([checking.outputs.get()])
    # alice's subscription to the project, with one failed delivery in its log.
    webhook = WebhookEndpoint.objects.create(
        owner=alice, project=review.request.project, url="https://hooks.example.org/fivesafes"
    )
    delivery = WebhookDelivery.objects.create(
        endpoint=webhook,
        message_id="msg_matrix",
        event_type="webhook.ping",
        payload={},
        status="failed",
        next_attempt_at=timezone.now(),
    )
    return {
        "tokens": tokens,
        "ids": {
            "review": review.pk,
            "checking": checking.pk,
            "leased": leased.pk,
            "request": review.request_id,
            "output": checking.outputs.get().pk,
            "project": review.request.project.identifier,
            "combined": combined.pk,
            "webhook": webhook.pk,
            "delivery": delivery.pk,
        },
    }


def test_every_caller_against_every_api_operation(client, world):
    unexpected = []
    for (method, template), allowed in EXPECTED.items():
        path = template.format(**world["ids"])
        for caller in CALLERS:
            headers = bearer(world["tokens"][caller]) if caller != "anonymous" else {}
            response = client.generic(method, path, b"", content_type="application/json", headers=headers)
            if response.streaming:
                b"".join(response.streaming_content)
            status = response.status_code
            if status not in ALLOWED | DENIED:
                unexpected.append(f"{caller:9} {method} {template}: unexpected status {status}")
            elif (status in ALLOWED) != (caller in allowed):
                got = "allowed" if status in ALLOWED else "denied"
                unexpected.append(f"{caller:9} {method} {template}: {got} ({status})")
    assert not unexpected, "\n".join(unexpected)

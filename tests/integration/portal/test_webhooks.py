"""Signed webhooks against a real HTTP receiver that checks every signature with `standardwebhooks`."""

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from portal import webhooks
from portal.audit import AuditEvent
from portal.models import PersonalToken, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


class Receiver:
    """A local HTTP server: answers with the queued statuses (then 204), records verified messages."""

    def __init__(self):
        self.statuses, self.received, self.rejected, self.delay = [], [], [], 0.0
        self.secret = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.delay:
                    time.sleep(receiver.delay)
                try:
                    message = Webhook(receiver.secret).verify(body, dict(self.headers))
                except WebhookVerificationError as error:
                    receiver.rejected.append(str(error))
                    self.send_response(401)
                    self.end_headers()
                    return
                receiver.received.append((self.headers["webhook-id"], message))
                status = receiver.statuses.pop(0) if receiver.statuses else 204
                self.send_response(status)
                self.end_headers()
                if status >= 300:
                    self.wfile.write(b"receiver says no")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/fivesafes"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def types(self):
        return [message["type"] for _, message in self.received]


@pytest.fixture
def receiver(settings):
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE = True
    settings.PORTAL_WEBHOOK_RETRY_BASE_SECONDS = 0
    settings.PORTAL_WEBHOOK_TIMEOUT_SECONDS = 2
    server = Receiver()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _token(user, scopes=("read", "submit")):
    key = PersonalToken.generate_key()
    PersonalToken.objects.create(
        user=user,
        name="hooks",
        key_prefix=key[:12],
        key_hash=PersonalToken.hash_key(key),
        expires_at=timezone.now() + timedelta(days=30),
        scopes=list(scopes),
    )
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


@pytest.fixture
def ping(client, django_capture_on_commit_callbacks):
    """Ask for a test message through the API and let its delivery run, as the commit would."""

    def send(hook, user):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(f"/api/v1/webhooks/{hook['id']}/ping/", **_token(user))
        assert response.status_code == 202, response.content
        return response

    return send


def _subscribe(client, user, receiver, **fields):
    response = client.post(
        "/api/v1/webhooks/",
        {"url": receiver.url, **fields},
        content_type="application/json",
        **_token(user),
    )
    assert response.status_code == 201, response.content
    receiver.secret = response.json()["secret"]
    return response.json()


def test_a_researcher_hears_of_validation_and_every_job_move_signed(
    client, alice, registry, receiver, new_job, django_capture_on_commit_callbacks
):
    hook = _subscribe(client, alice, receiver, project=registry["project"].identifier)
    assert hook["secret"].startswith("whsec_")

    job = new_job("approved")  # submitted, validated, reviewed and signed off through real transitions
    webhooks.deliver_due()

    assert receiver.rejected == []
    types = receiver.types()
    assert types[0] == "request.validated"
    assert types.count("job.state_changed") >= 2
    moves = [m["data"]["status"] for _, m in receiver.received if m["type"] == "job.state_changed"]
    assert moves[-1] == "approved"
    last = receiver.received[-1][1]
    assert last["data"]["job_id"] == job.pk
    assert last["data"]["url"].endswith(f"/api/v1/jobs/{job.pk}/")
    assert last["data"]["project"] == registry["project"].identifier
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    # Each delivery sits in the log with its message id.
    log = client.get(f"/api/v1/webhooks/{hook['id']}/deliveries/", **_token(alice)).json()
    assert {row["message_id"] for row in log["results"]} == {mid for mid, _ in receiver.received}


def test_deliveries_are_sent_when_the_event_commits(
    client, alice, registry, receiver, new_job, olivia, django_capture_on_commit_callbacks
):
    job = new_job("awaiting_review")
    _subscribe(
        client, alice, receiver, project=registry["project"].identifier, event_types=["job.state_changed"]
    )
    from reviews import services as review_services

    with django_capture_on_commit_callbacks(execute=True):
        review_services.start_review(job, by=olivia)
    assert receiver.types() == ["job.state_changed"]
    assert receiver.received[0][1]["data"]["before"] == {"status": "awaiting_review"}


def test_an_event_rolled_back_sends_nothing(client, alice, registry, receiver, new_job, olivia):
    from django.db import transaction

    from reviews import services as review_services

    job = new_job("awaiting_review")
    _subscribe(client, alice, receiver, project=registry["project"].identifier)
    before = WebhookDelivery.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        review_services.start_review(job, by=olivia)
        raise RuntimeError("the request failed after the move")
    assert WebhookDelivery.objects.count() == before


def test_a_failing_endpoint_is_retried_with_back_off_then_succeeds(
    client, alice, olivia, registry, receiver, new_job, settings
):
    job = new_job("awaiting_review")
    _subscribe(
        client, alice, receiver, project=registry["project"].identifier, event_types=["job.state_changed"]
    )
    receiver.statuses = [500, 503]
    from reviews import services as review_services

    review_services.start_review(job, by=olivia)  # outside a captured commit: the sweep sends it
    delivery = WebhookDelivery.objects.get()

    assert webhooks.deliver(delivery.pk) == "pending"
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.response_status) == (1, 500)
    assert "receiver says no" in delivery.last_error
    assert webhooks.deliver_due() == [delivery.pk]  # retried by the sweep: 503 again
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("pending", 2, 503)
    webhooks.deliver_due()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 3, 204)
    # The receiver saw the same message three times, under one id.
    assert len({mid for mid, _ in receiver.received}) == 1 and len(receiver.received) == 3
    assert WebhookEndpoint.objects.get().consecutive_failures == 0


def test_back_off_doubles_and_is_capped(settings):
    settings.PORTAL_WEBHOOK_RETRY_BASE_SECONDS = 30
    settings.PORTAL_WEBHOOK_RETRY_MAX_SECONDS = 3600
    assert [webhooks.backoff(n) for n in (1, 2, 3, 4, 10)] == [30, 60, 120, 240, 3600]


def test_a_retry_is_not_sent_before_it_is_due(ping, client, alice, registry, receiver, settings):
    settings.PORTAL_WEBHOOK_RETRY_BASE_SECONDS = 600
    hook = _subscribe(client, alice, receiver, project=registry["project"].identifier)
    receiver.statuses = [500]
    ping(hook, alice)
    delivery = WebhookDelivery.objects.get()
    assert delivery.attempts == 1 and delivery.status == "pending"
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=590)
    assert webhooks.deliver_due() == []
    assert webhooks.deliver(delivery.pk) == "skipped"
    assert len(receiver.received) == 1


def test_a_failed_delivery_can_be_replayed(
    ping, django_capture_on_commit_callbacks, client, alice, registry, receiver, settings
):
    settings.PORTAL_WEBHOOK_MAX_ATTEMPTS = 1
    hook = _subscribe(client, alice, receiver, project=registry["project"].identifier)
    receiver.statuses = [500]
    ping(hook, alice)
    failed = WebhookDelivery.objects.get()
    assert failed.status == "failed"

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/webhook-deliveries/{failed.pk}/replay/", **_token(alice))
    assert response.status_code == 202, response.content
    again = response.json()
    assert again["replay_of"] == failed.pk and again["message_id"] == failed.message_id
    assert WebhookDelivery.objects.get(pk=again["id"]).status == "delivered"
    assert [mid for mid, _ in receiver.received] == [failed.message_id] * 2
    assert AuditEvent.objects.filter(verb="webhook.replayed").exists()


def test_someone_else_cannot_replay_or_read_my_webhook(ping, client, alice, bob, registry, receiver):
    hook = _subscribe(client, alice, receiver, project=registry["project"].identifier)
    ping(hook, alice)
    delivery = WebhookDelivery.objects.get()
    assert client.get(f"/api/v1/webhooks/{hook['id']}/", **_token(bob)).status_code == 404
    assert client.post(f"/api/v1/webhook-deliveries/{delivery.pk}/replay/", **_token(bob)).status_code == 404
    assert client.get(f"/api/v1/webhooks/{hook['id']}/", **_token(alice, ["submit"])).status_code == 403


def test_an_endpoint_failing_again_and_again_is_switched_off(
    ping, client, alice, registry, receiver, settings
):
    settings.PORTAL_WEBHOOK_DISABLE_AFTER = 2
    settings.PORTAL_WEBHOOK_MAX_ATTEMPTS = 1
    hook = _subscribe(client, alice, receiver, project=registry["project"].identifier)
    receiver.statuses = [500, 500]
    for _ in range(2):
        ping(hook, alice)
    endpoint = WebhookEndpoint.objects.get()
    assert not endpoint.active and endpoint.disabled_at is not None
    assert AuditEvent.objects.filter(verb="webhook.disabled").count() == 1
    # Switched off, it gets nothing more, until its owner switches it on.
    ping(hook, alice)
    assert len(receiver.received) == 2
    response = client.post(f"/api/v1/webhooks/{hook['id']}/enable/", **_token(alice))
    assert response.json()["active"] is True and response.json()["consecutive_failures"] == 0


def test_a_slow_endpoint_times_out_instead_of_holding_the_worker(
    ping, client, alice, registry, receiver, settings
):
    settings.PORTAL_WEBHOOK_TIMEOUT_SECONDS = 1
    hook = _subscribe(client, alice, receiver, project=registry["project"].identifier)
    receiver.delay = 3
    started = time.monotonic()
    ping(hook, alice)
    assert time.monotonic() - started < 2.5
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and "timed out" in delivery.last_error.lower()


def test_private_addresses_are_refused_unless_allowed(client, alice, registry, settings):
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE = False
    for url in ("http://127.0.0.1:8000/x", "http://10.1.2.3/x", "http://[::1]/x", "http://169.254.169.254/"):
        response = client.post(
            "/api/v1/webhooks/",
            {"url": url, "project": registry["project"].identifier},
            content_type="application/json",
            **_token(alice),
        )
        assert response.status_code == 400, url
        assert "private" in json.dumps(response.json())
    response = client.post(
        "/api/v1/webhooks/",
        {"url": "ftp://example.org/x", "project": registry["project"].identifier},
        content_type="application/json",
        **_token(alice),
    )
    assert response.status_code == 400


def test_an_address_that_turns_private_later_is_not_posted_to(
    ping, client, alice, registry, receiver, settings
):
    hook = _subscribe(client, alice, receiver, project=registry["project"].identifier)
    settings.PORTAL_WEBHOOK_ALLOW_PRIVATE = False
    ping(hook, alice)
    assert receiver.received == []
    assert "private" in WebhookDelivery.objects.get().last_error


def test_only_people_who_may_see_a_project_or_tre_can_watch_it(
    client, alice, pat, registry, tre_a, olivia, receiver
):
    project = registry["project"].identifier
    refused = client.post(
        "/api/v1/webhooks/",
        {"url": receiver.url, "project": project},
        content_type="application/json",
        **_token(pat),
    )
    assert refused.status_code == 403
    refused = client.post(
        "/api/v1/webhooks/",
        {"url": receiver.url, "tre": tre_a.slug},
        content_type="application/json",
        **_token(alice),
    )
    assert refused.status_code == 403
    both = client.post(
        "/api/v1/webhooks/",
        {"url": receiver.url, "tre": tre_a.slug, "project": project},
        content_type="application/json",
        **_token(alice),
    )
    assert both.status_code == 400
    webhooks.create_endpoint(by=olivia, url=receiver.url, tre=tre_a)
    assert WebhookEndpoint.objects.filter(tre=tre_a, owner=olivia).exists()


def test_the_pages_subscribe_show_the_log_and_replay(
    client, alice, registry, receiver, django_capture_on_commit_callbacks
):
    from tests.conftest import sign_in

    sign_in(client, alice)
    page = client.get("/webhooks/")
    assert page.status_code == 200 and b"Subscribe" in page.content
    created = client.post("/webhooks/", {"url": receiver.url, "project": registry["project"].identifier})
    endpoint = WebhookEndpoint.objects.get(owner=alice)
    assert created.status_code == 302 and created.url == f"/webhooks/{endpoint.pk}/"
    receiver.secret = endpoint.secret
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/webhooks/{endpoint.pk}/ping/")
    detail = client.get(f"/webhooks/{endpoint.pk}/").content.decode()
    assert "webhook.ping" in detail and "Delivered" in detail and "Send again" in detail
    delivery = WebhookDelivery.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/webhook-deliveries/{delivery.pk}/replay/")
    assert [mid for mid, _ in receiver.received] == [delivery.message_id] * 2
    assert "(sent again)" in client.get(f"/webhooks/{endpoint.pk}/").content.decode()

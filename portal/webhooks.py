"""Signed webhooks: subscriptions, the outbox written with each audit event, and delivery.

One place feeds the outbox: `audit.event_recorded`, sent by `portal.audit.record()` inside the caller's
transaction. For an event a subscription wants, a `WebhookDelivery` row is written in that same
transaction and handed to a django-q2 worker on commit, so a slow or broken endpoint never slows the
portal. The worker claims the row with a compare-and-set update (a worker that lost the race
returns), posts the payload signed the Standard Webhooks way (`webhook-id`, `webhook-timestamp`,
`webhook-signature` headers, HMAC-SHA256 over `id.timestamp.body`), and on failure schedules a retry
with exponential back-off; `deliver_due` (every minute) hands out due retries and lapsed claims.

An endpoint that fails `PORTAL_WEBHOOK_DISABLE_AFTER` times in a row is switched off until its owner
turns it on again. Addresses that resolve to private, loopback, link-local or reserved networks are
refused (checked again at each delivery, and the connection goes to the address checked) unless
`PORTAL_WEBHOOK_ALLOW_PRIVATE` is set.
"""

import http.client
import ipaddress
import json
import logging
import socket
import ssl
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.dispatch import receiver
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from portal import audit, permissions
from portal.models import WebhookDelivery, WebhookEndpoint, WebhookEventType

log = logging.getLogger(__name__)

E = WebhookEventType
# Audit verbs that are events people wait for, besides every change of a job's state.
VERB_EVENTS = {
    "request.version_valid": (E.REQUEST_VALIDATED,),
    "request.version_invalid": (E.REQUEST_VALIDATED,),
    "outputs.checking": (E.OUTPUTS_READY,),
    "outputs.released": (E.OUTPUTS_RELEASED,),
    "agent.silent": (E.AGENT_SILENT,),
}
JOB_OBJECT_TYPE = "crates.job"
# Where the API shows the object an event is about (URL names; the apps above define them).
API_LINKS = {JOB_OBJECT_TYPE: "api_job_detail"}
USER_AGENT = "FiveSafesPortal-Webhooks/1"
RESPONSE_BYTES_KEPT = 300


class WebhookRefused(ValidationError):
    """An endpoint address the portal will not post to."""


def event_types_for(event):
    """The webhook event types an audit event stands for (empty for most events)."""
    types = list(VERB_EVENTS.get(event.verb, ()))
    if event.object_type == JOB_OBJECT_TYPE and "status" in (event.after or {}):
        types.insert(0, E.JOB_STATE_CHANGED)
    return types


def payload_for(event, event_type):
    data = {
        "event": event.verb,
        "object": {"type": event.object_type, "id": event.object_id, "label": event.object_label},
        "project": event.project_identifier or None,
        "tre": event.tre_slug or None,
        "before": event.before or {},
        "after": event.after or {},
        "message": event.message,
        "audit_event_id": event.pk,
    }
    if event.object_type == JOB_OBJECT_TYPE:
        data["job_id"] = int(event.object_id)
        data["status"] = (event.after or {}).get("status")
    link = API_LINKS.get(event.object_type)
    if link:
        try:
            data["url"] = settings.PORTAL_BASE_URL.rstrip("/") + reverse(link, args=[event.object_id])
        except NoReverseMatch:  # pragma: no cover - the apps above always define these names
            pass
    return {"type": str(event_type), "timestamp": event.created_at.isoformat(), "data": data}


def may_watch(user, *, project=None, tre=None):
    """A project's members and the people who govern or check it may watch it; a TRE, its officers and checkers."""
    if project is not None:
        return permissions.can_view_project(user, project)
    return permissions.can_govern_tre(user, tre) or permissions.can_check_outputs_at(user, tre)


def subscribers(event):
    query = Q()
    if event.project_identifier:
        query |= Q(project__identifier=event.project_identifier)
    if event.tre_slug:
        query |= Q(tre__slug=event.tre_slug)
    if not query:
        return []
    return list(WebhookEndpoint.objects.filter(query, active=True).select_related("owner", "project", "tre"))


@receiver(audit.event_recorded)
def add_to_outbox(sender, event, **kwargs):
    """Write one delivery per subscription that wants this event, in the event's own transaction."""
    types = event_types_for(event)
    if not types:
        return
    now = timezone.now()
    created = []
    for endpoint in subscribers(event):
        if not endpoint.owner.is_active or not may_watch(
            endpoint.owner, project=endpoint.project, tre=endpoint.tre
        ):
            continue
        for event_type in types:
            if endpoint.wants(event_type):
                created.append(
                    WebhookDelivery(
                        endpoint=endpoint,
                        message_id=f"msg_{uuid.uuid4().hex}",
                        event_type=event_type,
                        payload=json.loads(json.dumps(payload_for(event, event_type), cls=DjangoJSONEncoder)),
                        audit_event_id=event.pk,
                        next_attempt_at=now,
                    )
                )
    if created:
        ids = [row.pk for row in WebhookDelivery.objects.bulk_create(created)]
        transaction.on_commit(lambda: [enqueue(pk) for pk in ids])


def enqueue(delivery_id):
    from django_q.tasks import async_task  # django-q2 reads settings when imported

    async_task("portal.tasks.deliver_webhook", delivery_id, task_name=f"webhook-{delivery_id}")


# Subscriptions -----------------------------------------------------------------------------------------


def check_address(url):
    """Refuse URLs the portal will not post to; return the (host, port, addresses) to connect to."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise WebhookRefused("The address must be an http:// or https:// URL.")
    if parts.username or parts.password:
        raise WebhookRefused("The address must not carry a user name or password.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise WebhookRefused(f"The host name {parts.hostname} cannot be resolved.") from error
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global and not settings.PORTAL_WEBHOOK_ALLOW_PRIVATE:
            raise WebhookRefused(
                f"The address {parts.hostname} points into a private, loopback or reserved network; "
                "the portal does not post there."
            )
        addresses.append(str(address))
    return parts.hostname, port, addresses


def create_endpoint(*, by, url, project=None, tre=None, event_types=(), description=""):
    if (project is None) == (tre is None):
        raise ValidationError("A webhook watches exactly one project or one TRE.")
    if not may_watch(by, project=project, tre=tre):
        raise PermissionDenied("You cannot watch this project or TRE.")
    unknown = sorted(set(event_types) - set(E.values))
    if unknown:
        raise ValidationError(f"Unknown event types: {', '.join(unknown)}.")
    check_address(url)
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            owner=by,
            project=project,
            tre=tre,
            url=url,
            event_types=sorted(set(event_types)),
            description=description,
        )
        audit.record(
            "webhook.created",
            by=by,
            obj=endpoint,
            object_label=endpoint.url,
            after={"url": url, "event_types": endpoint.event_types},
            project=project or "",
            tre=tre or "",
        )
    return endpoint


def check_owner(user, endpoint):
    if endpoint.owner_id != user.pk:
        raise PermissionDenied("This webhook is not yours.")


def delete_endpoint(endpoint, *, by):
    check_owner(by, endpoint)
    with transaction.atomic():
        audit.record(
            "webhook.deleted",
            by=by,
            obj=endpoint,
            object_label=endpoint.url,
            project=endpoint.project or "",
            tre=endpoint.tre or "",
        )
        endpoint.delete()


def enable_endpoint(endpoint, *, by):
    """Turn an endpoint on again (after it was switched off for failing); the failure count starts over."""
    check_owner(by, endpoint)
    with transaction.atomic():
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            active=True, disabled_at=None, disabled_reason="", consecutive_failures=0
        )
        audit.record("webhook.enabled", by=by, obj=endpoint, object_label=endpoint.url)
    endpoint.refresh_from_db()
    return endpoint


def send_ping(endpoint, *, by):
    """Queue a test message to the endpoint."""
    check_owner(by, endpoint)
    payload = {
        "type": E.PING.value,
        "timestamp": timezone.now().isoformat(),
        "data": {"webhook_id": endpoint.pk, "message": "A test message from the Five Safes Portal."},
    }
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint,
            message_id=f"msg_{uuid.uuid4().hex}",
            event_type=E.PING,
            payload=payload,
            next_attempt_at=timezone.now(),
        )
        transaction.on_commit(lambda: enqueue(delivery.pk))
    return delivery


def replay(delivery, *, by):
    """Send a delivered or failed message again: the same id and body, as a new entry in the log."""
    check_owner(by, delivery.endpoint)
    with transaction.atomic():
        again = WebhookDelivery.objects.create(
            endpoint=delivery.endpoint,
            message_id=delivery.message_id,
            event_type=delivery.event_type,
            payload=delivery.payload,
            audit_event_id=delivery.audit_event_id,
            replay_of=delivery,
            next_attempt_at=timezone.now(),
        )
        audit.record(
            "webhook.replayed",
            by=by,
            obj=delivery.endpoint,
            object_label=delivery.endpoint.url,
            after={"message_id": delivery.message_id, "delivery": again.pk},
        )
        transaction.on_commit(lambda: enqueue(again.pk))
    return again


# Delivery ----------------------------------------------------------------------------------------------


def backoff(attempts):
    """Seconds to wait after the `attempts`-th failed attempt: doubling, capped."""
    base = settings.PORTAL_WEBHOOK_RETRY_BASE_SECONDS
    return min(base * 2 ** max(attempts - 1, 0), settings.PORTAL_WEBHOOK_RETRY_MAX_SECONDS)


def _claim(delivery_id, now):
    """Compare-and-set: take the delivery if it is due and nobody holds it; False if another worker won."""
    hold = now + timedelta(seconds=settings.PORTAL_WEBHOOK_TIMEOUT_SECONDS * 4 + 30)
    return (
        WebhookDelivery.objects.filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
            pk=delivery_id,
            status=WebhookDelivery.Status.PENDING,
            next_attempt_at__lte=now,
        ).update(claimed_until=hold, attempts=F("attempts") + 1, last_attempt_at=now)
        == 1
    )


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address that was checked, whatever the name resolves to now."""

    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def sign(endpoint, message_id, timestamp, body):
    return Webhook(endpoint.secret).sign(msg_id=message_id, timestamp=timestamp, data=body)


def post(endpoint, message_id, body):
    """POST the signed body; returns (HTTP status, error text). Never follows redirects."""
    host, port, addresses = check_address(endpoint.url)
    parts = urlsplit(endpoint.url)
    timestamp = timezone.now()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": sign(endpoint, message_id, timestamp, body),
    }
    connection_class = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(host, port, addresses[0], settings.PORTAL_WEBHOOK_TIMEOUT_SECONDS)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", target, body=body.encode(), headers=headers)
        # Closed here: a response that will close its connection is not closed by the connection.
        with connection.getresponse() as response:
            text = response.read(RESPONSE_BYTES_KEPT).decode("utf-8", "replace")
        return response.status, ("" if 200 <= response.status < 300 else f"HTTP {response.status}: {text}")
    finally:
        connection.close()


def deliver(delivery_id, now=None):
    """Try one delivery now; returns its status afterwards, or "skipped" if it was not ours to send."""
    now = now or timezone.now()
    if not _claim(delivery_id, now):
        return "skipped"
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    status, error = None, ""
    if not endpoint.active:
        error = "The webhook is switched off."
    else:
        body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True)
        try:
            status, error = post(endpoint, delivery.message_id, body)
        except WebhookRefused as refused:
            error = refused.messages[0]
        except (OSError, http.client.HTTPException) as failure:
            error = f"{type(failure).__name__}: {failure}" or "connection failed"
    _settle(delivery, endpoint, status, error[:500])
    return delivery.status


def _settle(delivery, endpoint, status, error):
    finished = timezone.now()
    delivery.response_status, delivery.last_error, delivery.claimed_until = status, error, None
    if not error:
        delivery.status, delivery.delivered_at = WebhookDelivery.Status.DELIVERED, finished
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=0)
    else:
        if delivery.attempts >= settings.PORTAL_WEBHOOK_MAX_ATTEMPTS or not endpoint.active:
            delivery.status = WebhookDelivery.Status.FAILED
        else:
            delivery.next_attempt_at = finished + timedelta(seconds=backoff(delivery.attempts))
        if endpoint.active:
            _count_failure(endpoint, finished)
    delivery.save(
        update_fields=[
            "status",
            "delivered_at",
            "response_status",
            "last_error",
            "claimed_until",
            "next_attempt_at",
        ]
    )


def _count_failure(endpoint, now):
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=F("consecutive_failures") + 1)
    limit = settings.PORTAL_WEBHOOK_DISABLE_AFTER
    with transaction.atomic():
        switched_off = WebhookEndpoint.objects.filter(
            pk=endpoint.pk, active=True, consecutive_failures__gte=limit
        ).update(
            active=False,
            disabled_at=now,
            disabled_reason=f"Switched off after {limit} failed deliveries in a row.",
        )
        if switched_off:
            audit.record(
                "webhook.disabled",
                by=audit.SYSTEM,
                obj=endpoint,
                object_label=endpoint.url,
                message=f"Switched off after {limit} failed deliveries in a row.",
            )


def deliver_due(now=None, limit=200):
    """Every minute: hand out retries that are due and deliveries whose worker's claim lapsed."""
    now = now or timezone.now()
    due = list(
        WebhookDelivery.objects.filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
            status=WebhookDelivery.Status.PENDING,
            next_attempt_at__lte=now,
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in due:
        enqueue(pk)
    return due

"""Webhook subscriptions and their outbox of deliveries (the service is portal/webhooks.py).

A subscription watches one project or one TRE and is owned by a person who may see it; each event it
wants becomes one `WebhookDelivery` row, written in the same transaction as the audit event that
caused it, and sent later by a background task (never on the request path).
"""

import base64
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q


class WebhookEventType(models.TextChoices):
    REQUEST_VALIDATED = "request.validated", "A request version was checked (valid or not)"
    JOB_STATE_CHANGED = "job.state_changed", "A job changed state"
    OUTPUTS_READY = "outputs.ready_to_check", "Outputs are ready for output checking"
    OUTPUTS_RELEASED = "outputs.released", "Outputs were released"
    AGENT_SILENT = "agent.silent", "A TRE agent has gone silent"
    PING = "webhook.ping", "A test message sent on request"


def generate_secret():
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class WebhookEndpoint(models.Model):
    """One subscription: where to send which events of one project or one TRE, signed with its secret."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="webhooks")
    project = models.ForeignKey(
        "portal.Project", on_delete=models.CASCADE, null=True, blank=True, related_name="webhooks"
    )
    tre = models.ForeignKey(
        "portal.TRE", on_delete=models.CASCADE, null=True, blank=True, related_name="webhooks"
    )
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(
        default=list, blank=True, help_text="WebhookEventType values wanted; empty means all of them."
    )
    secret = models.CharField(max_length=100, default=generate_secret)
    active = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(project__isnull=False, tre__isnull=True)
                | Q(project__isnull=True, tre__isnull=False),
                name="webhook_watches_project_or_tre",
            ),
            models.CheckConstraint(
                condition=Q(disabled_at__isnull=True) | Q(active=False), name="webhook_disabled_is_inactive"
            ),
        ]

    def __str__(self):
        return f"{self.url} ({self.scope_label})"

    @property
    def scope_label(self):
        return f"project {self.project.identifier}" if self.project_id else f"TRE {self.tre.name}"

    def wants(self, event_type):
        return event_type == WebhookEventType.PING or not self.event_types or event_type in self.event_types


class WebhookDelivery(models.Model):
    """One message to one endpoint: the outbox row and its delivery log in one."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Gave up"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    # The same message resent (a replay) keeps its id, as Standard Webhooks asks.
    message_id = models.CharField(max_length=40, db_index=True)
    event_type = models.CharField(max_length=40)
    payload = models.JSONField()
    audit_event_id = models.BigIntegerField(null=True, blank=True)
    replay_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    next_attempt_at = models.DateTimeField(db_index=True)
    # A worker holds a delivery until this time (compare-and-set claim; a dead worker's claim lapses).
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_due_idx")]

    def __str__(self):
        return f"{self.event_type} → {self.endpoint.url} ({self.status})"

"""Review decisions, messages and notifications.

Step decisions are immutable: made once by `reviews.services`, with the evidence frozen beside them.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from crates.models import Job, RequestVersion

User = settings.AUTH_USER_MODEL


class ImmutableQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError(f"{self.model.__name__} rows cannot be changed.")

    def delete(self):
        raise PermissionError(f"{self.model.__name__} rows cannot be deleted.")


class Step(models.TextChoices):
    SAFE_PEOPLE = "safe_people", "Safe People"
    SAFE_PROJECT = "safe_project", "Safe Project"
    SAFE_DATA = "safe_data", "Safe Data"
    SAFE_SETTINGS = "safe_settings", "Safe Settings"
    SIGN_OFF = "sign_off", "Sign-off"


# The four Safes checked before sign-off, in the order officers work through them.
CHECK_STEPS = [Step.SAFE_PEOPLE, Step.SAFE_PROJECT, Step.SAFE_DATA, Step.SAFE_SETTINGS]


class Outcome(models.TextChoices):
    APPROVE = "approve", "Approve"
    CHANGES = "changes", "Request changes"
    REJECT = "reject", "Reject"


class StepDecision(models.Model):
    """An officer's decision on one review step of one version of a job, with the evidence they saw."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="decisions")
    version = models.ForeignKey(RequestVersion, on_delete=models.PROTECT, related_name="+")
    step = models.CharField(max_length=20, choices=Step.choices)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    rationale = models.TextField(blank=True)
    evidence = models.JSONField(help_text="The automated evidence as shown when deciding.")
    decided_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField()

    objects = ImmutableQuerySet.as_manager()

    class Meta:
        ordering = ["decided_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "version", "step"], name="one_decision_per_step_and_version"
            ),
            models.CheckConstraint(
                condition=Q(outcome="approve") | ~Q(rationale=""), name="rationale_unless_approving"
            ),
        ]

    def __str__(self):
        return f"{self.get_step_display()}: {self.get_outcome_display()} ({self.job_id})"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("A decision, once recorded, cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("A decision, once recorded, cannot be deleted.")


class Message(models.Model):
    """A message on a job between its officers and the researchers (shown on both timelines)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self):
        return f"Message on job {self.job_id} by {self.author_id}"


class Notification(models.Model):
    """Something a person should know; shown in the portal and, if they chose, e-mailed."""

    class Kind(models.TextChoices):
        REVIEW = "review", "Requests waiting for my review"
        DECISION = "decision", "Decisions on my requests"
        MESSAGE = "message", "Messages on my requests or reviews"
        SUSPENSION = "suspension", "Jobs suspended or resumed"
        OUTPUTS = "outputs", "Outputs to check or released"
        REGISTRY = "registry", "Memberships, accreditations and agreements"

    recipient = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["recipient", "read_at"], name="notification_unread_idx"),
            models.Index(
                fields=["emailed_at"], condition=Q(emailed_at__isnull=True), name="notification_outbox_idx"
            ),
        ]

    def __str__(self):
        return self.subject

"""Requests (submitted Five Safes crates), their versions, and one job per target TRE.

A Request is one researcher's ask for one project, naming one or more TREs. Each upload or
resubmission is a RequestVersion holding the crate as received. Once a version is valid,
each target TRE gets a Job, which carries that TRE's own copy of the crate metadata (review
actions are written per TRE). Job status changes only through `crates.transitions`.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from portal.models import TRE, ApprovedWorkflow, Dataset, Project

User = settings.AUTH_USER_MODEL


def crate_upload_path(instance, filename):
    return f"crates/{instance.request_id}/v{instance.number}-{uuid.uuid4().hex[:8]}.zip"


class Request(models.Model):
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="requests")
    submitter = models.ForeignKey(User, on_delete=models.PROTECT, related_name="requests")
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    tres = models.ManyToManyField(TRE, related_name="requests", verbose_name="target TREs")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Request {self.pk}: {self.title}"

    def get_absolute_url(self):
        return reverse("request_detail", args=[self.pk])

    @property
    def latest_version(self):
        versions = getattr(self, "_prefetched_objects_cache", {}).get("versions")
        if versions is not None:
            return max(versions, key=lambda v: v.number, default=None)
        return self.versions.order_by("-number").first()

    def status_summary(self, jobs=None):
        """The request's status, derived from its newest version and its jobs."""
        version = self.latest_version
        if version is None:
            return "draft"
        if version.status != RequestVersion.Status.VALID:
            return version.status
        jobs = list(self.jobs.all()) if jobs is None else jobs
        statuses = {job.status for job in jobs}
        if not statuses:
            return "valid"
        if len(statuses) == 1:
            return statuses.pop()
        return "mixed"


class RequestVersion(models.Model):
    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        VALIDATING = "validating", "Checking"
        VALID = "valid", "Valid"
        INVALID = "invalid", "Invalid"

    request = models.ForeignKey(Request, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    crate = models.FileField(upload_to=crate_upload_path, max_length=300)
    original_filename = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    external_identifier = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RECEIVED)
    # The crate's metadata after intake (client AssessActions stripped, Check and Validation added).
    metadata = models.JSONField(null=True, blank=True)
    validation_report = models.JSONField(null=True, blank=True)
    crosscheck = models.JSONField(null=True, blank=True, help_text="Registry cross-check evidence.")
    summary = models.JSONField(
        null=True, blank=True, help_text="People, workflow, inputs and datasets named."
    )
    stripped_actions = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # When a worker claimed the version for checking: the claim is the run's, and a run finds its work
    # taken over (after a lost worker) when this has changed.
    validation_started_at = models.DateTimeField(null=True, blank=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True, help_text="The researcher's note for this version.")

    class Meta:
        ordering = ["request", "number"]
        constraints = [
            models.UniqueConstraint(fields=["request", "number"], name="version_number_unique"),
            models.CheckConstraint(
                condition=Q(status__in=["received", "validating"]) | Q(validated_at__isnull=False),
                name="version_validated_at_when_decided",
            ),
        ]

    def __str__(self):
        return f"{self.request} v{self.number}"

    @property
    def is_final(self):
        return self.status in (self.Status.VALID, self.Status.INVALID)


class CrateRefusal(models.Model):
    """A crate refused at intake: the record of the refusal is all that is kept of it."""

    created_at = models.DateTimeField(auto_now_add=True)
    user = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    request = models.ForeignKey(
        Request, on_delete=models.SET_NULL, null=True, blank=True, related_name="refusals"
    )
    filename = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    code = models.CharField(max_length=80)
    message = models.TextField()
    where = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.code}: {self.message}"


class JobQuerySet(models.QuerySet):
    def update(self, **kwargs):
        if "status" in kwargs:
            raise PermissionError("Job status changes only through crates.transitions.transition().")
        return super().update(**kwargs)


class Job(models.Model):
    """One request at one TRE. `status` is written only by `crates.transitions`."""

    class Status(models.TextChoices):
        AWAITING_REVIEW = "awaiting_review", "Awaiting review"
        IN_REVIEW = "in_review", "In review"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"
        REJECTED = "rejected", "Rejected"
        APPROVED = "approved", "Approved"
        QUEUED = "queued", "Queued for the TRE agent"
        CLAIMED = "claimed", "Claimed by the TRE agent"
        RUNNING = "running", "Running"
        FAILED = "failed", "Failed"
        OUTPUTS_RETURNED = "outputs_returned", "Outputs returned"
        OUTPUT_REVIEW = "output_review", "Output checking"
        OUTPUT_CHANGES_REQUESTED = "output_changes_requested", "Output changes requested"
        WITHHELD = "withheld", "Outputs withheld"
        RELEASED = "released", "Released"
        SUSPENDED = "suspended", "Suspended"
        CANCELLED = "cancelled", "Cancelled"

    request = models.ForeignKey(Request, on_delete=models.CASCADE, related_name="jobs")
    version = models.ForeignKey(RequestVersion, on_delete=models.PROTECT, related_name="jobs")
    tre = models.ForeignKey(TRE, on_delete=models.PROTECT, related_name="jobs")
    status = models.CharField(max_length=30, choices=Status.choices, default=Status.AWAITING_REVIEW)
    status_changed_at = models.DateTimeField(auto_now_add=True)
    # The state a suspended job returns to when the cause is resolved.
    suspended_from = models.CharField(max_length=30, choices=Status.choices, blank=True)
    suspended_reason = models.TextField(blank=True)
    # This TRE's working copy of the crate metadata; review actions are appended here.
    metadata = models.JSONField()
    workflow = models.ForeignKey(
        ApprovedWorkflow, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    datasets = models.ManyToManyField(Dataset, blank=True, related_name="jobs")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["request", "tre"], name="one_job_per_tre")]
        indexes = [
            models.Index(fields=["tre", "status"], name="job_tre_status_idx"),
            # Each TRE's queue in claiming order, so a claim reads the oldest queued job without a sort.
            models.Index(
                fields=["tre", "status_changed_at", "id"],
                condition=models.Q(status="queued"),
                name="job_queue_idx",
            ),
        ]

    def __str__(self):
        return f"Job {self.pk} ({self.request.title} at {self.tre.slug})"

    def save(self, *args, **kwargs):
        # A direct status write outside the transition function is a bug, not a feature.
        loaded = getattr(self, "_loaded_status", None)
        if (
            loaded is not None
            and loaded != self.status
            and not getattr(self, "_transition_in_progress", False)
        ):
            raise PermissionError("Job status changes only through crates.transitions.transition().")
        super().save(*args, **kwargs)
        self._loaded_status = self.status

    def get_absolute_url(self):
        return reverse("job_detail", args=[self.pk])

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._loaded_status = instance.__dict__.get("status")
        return instance


class Agent(models.Model):
    """A TRE agent: software inside one TRE that pulls its jobs. Agents are not users.

    Only the SHA-256 of its token is stored; the token is shown once when issued or rotated.
    """

    TOKEN_PREFIX = "fsa_"  # noqa: S105  (a public marker, not a secret)

    tre = models.ForeignKey(TRE, on_delete=models.PROTECT, related_name="agents")
    name = models.CharField(max_length=100)
    token_prefix = models.CharField(max_length=12)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    rotated_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    version = models.CharField(max_length=100, blank=True, help_text="What the agent reports about itself.")

    is_agent = True  # lets permission code tell agents from people

    class Meta:
        ordering = ["tre", "name"]
        constraints = [models.UniqueConstraint(fields=["tre", "name"], name="agent_name_per_tre")]

    def __str__(self):
        return f"{self.name} ({self.tre.slug})"

    @property
    def is_authenticated(self):
        return True

    @property
    def is_active(self):
        return self.revoked_at is None

    def audit_actor(self):
        from portal.audit import Actor, AuditEvent

        return Actor(AuditEvent.ActorKind.AGENT, str(self.pk), f"agent {self.name} at {self.tre.slug}")


class JobLease(models.Model):
    """The current claim on a job by an agent: its lease and fencing token.

    Every claim increments `fencing_token`; status updates and uploads must carry the current one,
    so an agent whose lease expired (and whose job was requeued) is refused.
    """

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="lease")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, null=True, blank=True, related_name="leases")
    fencing_token = models.PositiveBigIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.TextField(blank=True)
    message = models.TextField(blank=True, help_text="The agent's last status message or failure reason.")

    def __str__(self):
        return f"lease of job {self.job_id} (token {self.fencing_token})"


class ResultUpload(models.Model):
    """A results crate uploaded by an agent: invisible until its declared SHA-256 is verified."""

    class Status(models.TextChoices):
        RECEIVING = "receiving", "Receiving"
        VERIFIED = "verified", "Verified"
        REJECTED = "rejected", "Rejected"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="result_uploads")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="uploads")
    idempotency_key = models.CharField(max_length=200)
    fencing_token = models.PositiveBigIntegerField()
    declared_sha256 = models.CharField(max_length=64)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    file = models.FileField(upload_to="results/", max_length=300, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RECEIVING)
    message = models.TextField(blank=True)
    metadata = models.JSONField(
        null=True, blank=True, help_text="The results crate's metadata once verified."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["job", "idempotency_key"], name="upload_idempotency_key_per_job"),
            models.UniqueConstraint(
                fields=["job"], condition=Q(status="verified"), name="one_verified_result_per_job"
            ),
        ]

    def __str__(self):
        return f"results of job {self.job_id} ({self.status})"

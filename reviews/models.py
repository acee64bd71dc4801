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
    # A decision carried over to a resubmitted version, because what it rests on did not change.
    carried_from = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="carried_to"
    )

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

    @property
    def unmet_checks(self):
        """The automated findings that were not met when this decision was made (any step's, for sign-off)."""
        items = self.evidence.values() if isinstance(self.evidence, dict) else [self.evidence or []]
        return [f for group in items for f in group if isinstance(f, dict) and not f.get("ok", True)]

    @property
    def overrides_checks(self):
        """An approval given although an automated check was not met (its rationale says why)."""
        return self.outcome == "approve" and bool(self.unmet_checks)


class CarryOver(models.Model):
    """What happened to one job's step decisions when it moved to a resubmitted version, and why.

    ``steps`` lists, in review order, ``{"step", "carried": bool, "reason"}``: a plain sentence each.
    """

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="carry_overs")
    version = models.ForeignKey(RequestVersion, on_delete=models.PROTECT, related_name="+")
    from_version = models.ForeignKey(RequestVersion, on_delete=models.PROTECT, related_name="+")
    steps = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "version"], name="one_carry_over_per_version")]

    def __str__(self):
        return f"Carry-over of job {self.job_id} to version {self.version_id}"


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
    # The outbox: an e-mail is wanted (the person's choice when it was created) until it is sent.
    email_wanted = models.BooleanField(default=False)
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


class OutputFile(models.Model):
    """One output file returned by a TRE agent, with its automated disclosure verdict and its review."""

    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting checkers"
        APPROVED = "approved", "Approved for release"
        CHANGES = "changes_requested", "Changes requested"
        REJECTED = "rejected", "Rejected"
        RELEASED = "released", "Released"
        WITHDRAWN = "withdrawn", "Withdrawn"

    class Verdict(models.TextChoices):
        PASS = "pass", "Pass"
        REVIEW = "review", "Needs review"
        FAIL = "fail", "Fail"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="outputs")
    upload = models.ForeignKey("crates.ResultUpload", on_delete=models.PROTECT, related_name="outputs")
    path = models.CharField(
        max_length=500, help_text="The file's path inside the results crate's data/ folder."
    )
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    media_type = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=20, blank=True)
    stored = models.FileField(upload_to="outputs/%Y/%m/", max_length=300)
    sdc = models.JSONField(help_text="The automated disclosure checks, file and cells.")
    sdc_verdict = models.CharField(max_length=10, choices=Verdict.choices)
    policy_version = models.CharField(max_length=32)
    policy = models.JSONField()
    researcher_context = models.TextField(blank=True, help_text="What the output shows and how it was made.")
    researcher_justification = models.TextField(
        blank=True, help_text="Why flagged cells are safe to release."
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    round = models.PositiveSmallIntegerField(default=1)

    class Settlement(models.TextChoices):
        UNANIMOUS = "unanimous", "The checkers agreed"
        CAUTIOUS = "cautious", "The checkers disagreed; the TRE's policy took the most cautious decision"
        MAJORITY = "majority", "The checkers disagreed; one more checker was asked and the majority decided"
        NO_MAJORITY = (
            "no_majority",
            "The checkers disagreed, also with one more checker; the most cautious decision stands",
        )

    settlement = models.CharField(
        max_length=20,
        choices=Settlement.choices,
        blank=True,
        help_text="How the checkers' votes were settled.",
    )
    released_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    released_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "path"]
        constraints = [
            models.UniqueConstraint(fields=["job", "path"], name="output_path_once_per_job"),
            models.CheckConstraint(
                condition=Q(released_by__isnull=True, released_at__isnull=True)
                | Q(released_by__isnull=False, released_at__isnull=False, status="released"),
                name="output_released_by_and_at",
            ),
        ]

    def __str__(self):
        return f"{self.path} (job {self.job_id})"

    @property
    def name(self):
        return self.path.rsplit("/", 1)[-1]


class OutputVote(models.Model):
    """One checker's decision on one output file in one round. Immutable."""

    class Decision(models.TextChoices):
        APPROVE = "approve", "Approve"
        CHANGES = "changes", "Request changes"
        REJECT = "reject", "Reject"

    output = models.ForeignKey(OutputFile, on_delete=models.CASCADE, related_name="votes")
    checker = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    round = models.PositiveSmallIntegerField()
    decision = models.CharField(max_length=10, choices=Decision.choices)
    comment = models.TextField(blank=True)
    for_researcher = models.BooleanField(
        default=False, help_text="Show the comment to the researcher (otherwise checkers only)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ImmutableQuerySet.as_manager()

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["output", "checker", "round"], name="one_vote_per_checker_and_round"
            ),
            models.CheckConstraint(
                condition=Q(decision="approve") | ~Q(comment=""), name="vote_comment_unless_approving"
            ),
        ]

    def __str__(self):
        return f"{self.get_decision_display()} on {self.output_id} by {self.checker_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("A vote, once cast, cannot be changed.")
        super().save(*args, **kwargs)


class CombinedRelease(models.Model):
    """Released tables from several TREs' jobs of one request, combined (counts summed) and re-checked."""

    class Status(models.TextChoices):
        PENDING = "pending", "Awaiting a checker"
        RELEASED = "released", "Released"
        WITHHELD = "withheld", "Withheld"

    request = models.ForeignKey("crates.Request", on_delete=models.CASCADE, related_name="combined_releases")
    sources = models.ManyToManyField(OutputFile, related_name="combinations")
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    table = models.JSONField(help_text="The combined table: header and rows.")
    stored = models.FileField(upload_to="combined/%Y/%m/", max_length=300)
    sha256 = models.CharField(max_length=64)
    policy_version = models.CharField(max_length=32)
    policy = models.JSONField()
    sdc = models.JSONField()
    sdc_verdict = models.CharField(max_length=10, choices=OutputFile.Verdict.choices)
    differencing = models.JSONField(
        default=list, help_text="Cells recoverable by subtracting released tables."
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    rationale = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="pending", decided_by__isnull=True, decided_at__isnull=True)
                | (~Q(status="pending") & Q(decided_by__isnull=False, decided_at__isnull=False)),
                name="combined_decided_by_and_at",
            )
        ]

    def __str__(self):
        return f"Combined release {self.pk} of request {self.request_id}"


class Publication(models.Model):
    """The published results crate of a job: Disclosure and Publishing phases written, manifests renewed."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="publication")
    approved = models.BooleanField(
        help_text="False when the disclosure check failed and no outputs were kept."
    )
    stored = models.FileField(upload_to="published/%Y/%m/", max_length=300)
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"published crate of job {self.job_id}"


class PublicOutput(models.Model):
    """A released output the project chose to show on its public page, with a plain-language title."""

    output = models.OneToOneField(OutputFile, on_delete=models.CASCADE, related_name="public_record")
    # The output's project, kept here so the public pages read a project's outputs in one query.
    project = models.ForeignKey("portal.Project", on_delete=models.CASCADE, related_name="public_outputs")
    title = models.CharField(max_length=200, help_text="What the output shows, in plain words.")
    summary = models.TextField(blank=True, help_text="Optional: a sentence or two for the public.")
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    published_at = models.DateTimeField()

    class Meta:
        ordering = ["-published_at", "pk"]

    def __str__(self):
        return f"{self.title} (public)"

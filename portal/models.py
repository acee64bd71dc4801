"""The Five Safes registry: Safe People, Safe Projects, Safe Data and Safe Settings.

Changes go through `portal.services`, which writes the audit event in the same transaction.
"""

import hashlib
import secrets
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from portal import dur_lookups, service_settings
from portal.audit import AuditChainHead, AuditEvent  # noqa: F401  (models live in this app)
from portal.validators import validate_orcid, validate_output_schemas, validate_ror_id, validate_sha256

User = settings.AUTH_USER_MODEL


class Decision(models.TextChoices):
    PENDING = "pending", "Awaiting decision"
    APPROVED = "approved", "Approved"
    REFUSED = "refused", "Refused"
    REVOKED = "revoked", "Revoked"


def _decided_pair(prefix):
    """A decision's who and when are both set once it is decided, and both empty while pending."""
    return models.CheckConstraint(
        condition=(
            Q(status="pending", decided_by__isnull=True, decided_at__isnull=True)
            | (~Q(status="pending") & Q(decided_by__isnull=False, decided_at__isnull=False))
        ),
        name=f"{prefix}_decided_by_and_at_with_status",
    )


class Organisation(models.Model):
    name = models.CharField(max_length=200, unique=True)
    ror_id = models.CharField(
        "ROR identifier",
        max_length=40,
        blank=True,
        validators=[validate_ror_id],
        help_text="Research Organization Registry id, for example https://ror.org/02wnqcb97",
    )
    website = models.URLField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["ror_id"], condition=~Q(ror_id=""), name="organisation_ror_unique"
            )
        ]

    def __str__(self):
        return self.name


class TRE(models.Model):
    """A Trusted Research Environment, with the policies its officers set."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="tres")
    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=50, unique=True)
    description = models.TextField(blank=True)
    public_description = models.TextField(
        blank=True, help_text="Plain-language description shown on the public pages."
    )
    website = models.URLField(blank=True)
    # Disclosure-control policy (DESIGN §8); agreements may override.
    min_cell_count = models.PositiveIntegerField(default=10, validators=[MinValueValidator(1)])
    zeros_disclosive = models.BooleanField(default=False)
    dominance_n = models.PositiveSmallIntegerField(default=2, validators=[MinValueValidator(1)])
    dominance_k = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.900"),
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("1"))],
    )
    p_ratio = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.100"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
    )
    rounding_base = models.PositiveSmallIntegerField(default=0, help_text="0 means no rounding required.")
    required_output_checkers = models.PositiveSmallIntegerField(
        default=2, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )

    class OnDisagreement(models.TextChoices):
        REJECT = "reject", "Take the most cautious decision"
        ASK_ANOTHER = "ask_another", "Ask one more output checker; the majority decides"

    on_disagreement = models.CharField(
        max_length=20,
        choices=OnDisagreement.choices,
        default=OnDisagreement.REJECT,
        help_text="What happens when the output checkers of a file disagree.",
    )
    permitted_output_kinds = models.JSONField(default=list, blank=True)
    allowed_executors = models.JSONField(default=list, blank=True)

    class PPIEReview(models.TextChoices):
        REQUIRED = "required", "Required before approval"
        ADVISORY = "advisory", "Advisory: officers see it as evidence"
        OFF = "off", "Off"

    ppie_review = models.CharField(
        "PPIE review of lay summaries",
        max_length=10,
        choices=PPIEReview.choices,
        default=PPIEReview.ADVISORY,
        help_text="Whether patient and public representatives review a project's lay summary and public "
        "benefit statement before this TRE approves it.",
    )
    paused = models.BooleanField(default=False)
    paused_reason = models.TextField(blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "TRE"
        verbose_name_plural = "TREs"
        permissions = [
            ("govern_tre", "Act as governance officer for this TRE"),
            ("check_outputs_tre", "Act as output checker for this TRE"),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("tre_detail", args=[self.slug])


class Dataset(models.Model):
    class Sensitivity(models.TextChoices):
        SYNTHETIC = "synthetic", "Synthetic"
        AGGREGATE = "aggregate", "Aggregate (no individual records)"
        DEIDENTIFIED = "deidentified", "De-identified"
        PSEUDONYMISED = "pseudonymised", "Pseudonymised person-level"
        IDENTIFIABLE = "identifiable", "Identifiable person-level"

    tre = models.ForeignKey(TRE, on_delete=models.PROTECT, related_name="datasets")
    identifier = models.CharField(
        max_length=200, help_text="The identifier crates use for this dataset (a URL or a local id)."
    )
    name = models.CharField(max_length=200)
    sensitivity = models.CharField(
        max_length=20, choices=Sensitivity.choices, default=Sensitivity.PSEUDONYMISED
    )
    public_description = models.TextField(blank=True)
    is_public = models.BooleanField(default=True, help_text="Listed on the public transparency pages.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["tre__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tre", "identifier"], name="dataset_identifier_per_tre")
        ]

    def __str__(self):
        return f"{self.name} ({self.tre.slug})"


class Profile(models.Model):
    """What the registry knows of a person beyond their login."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="profile")
    display_name = models.CharField(max_length=200, blank=True)
    orcid = models.CharField(
        "ORCID iD",
        max_length=19,
        blank=True,
        validators=[validate_orcid],
        help_text="e.g. 0000-0002-1825-0097",
    )
    affiliation = models.ForeignKey(
        Organisation, on_delete=models.SET_NULL, null=True, blank=True, related_name="people"
    )
    notification_preferences = models.JSONField(default=dict, blank=True)
    publish_name_in_registers = models.BooleanField(
        default=False, help_text="Name me (and my ORCID) as an applicant in the public Data Use Register."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["orcid"], condition=~Q(orcid=""), name="profile_orcid_unique")
        ]

    def __str__(self):
        return self.name

    @property
    def name(self):
        return self.display_name or self.user.get_full_name() or self.user.email or self.user.username

    @property
    def orcid_url(self):
        return f"https://orcid.org/{self.orcid}" if self.orcid else ""


class Accreditation(models.Model):
    class Kind(models.TextChoices):
        SAFE_RESEARCHER = "safe_researcher", "Safe Researcher Training"
        ONS_ACCREDITED = "ons_accredited", "Accredited Researcher (Digital Economy Act)"
        TRE_INDUCTION = "tre_induction", "TRE induction"
        IG_TRAINING = "ig_training", "Information governance training"
        OTHER = "other", "Other"

    person = models.ForeignKey(User, on_delete=models.CASCADE, related_name="accreditations")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    issuer = models.CharField(max_length=200)
    reference = models.CharField(max_length=100, blank=True)
    valid_from = models.DateField()
    valid_until = models.DateField()
    evidence = models.FileField(upload_to="accreditations/%Y/", blank=True)
    verified_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="accreditations_verified"
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-valid_until"]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_until__gte=models.F("valid_from")), name="accreditation_dates"
            ),
            models.CheckConstraint(
                condition=Q(verified_by__isnull=True, verified_at__isnull=True)
                | Q(verified_by__isnull=False, verified_at__isnull=False),
                name="accreditation_verified_by_and_at",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} ({self.issuer}), until {self.valid_until}"

    @property
    def is_verified(self):
        return self.verified_at is not None

    def is_valid_on(self, day=None):
        day = day or timezone.localdate()
        return self.is_verified and self.valid_from <= day <= self.valid_until

    def expires_within(self, days):
        return self.is_valid_on() and self.valid_until <= timezone.localdate() + timedelta(days=days)


class ProjectQuerySet(models.QuerySet):
    def approved_at(self, tre):
        return self.filter(approvals__tre=tre, approvals__status=Decision.APPROVED)


class Project(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        CLOSED = "closed", "Closed"

    # Exactly these fields may appear on public pages and in the Data Use Register.
    PUBLIC_FIELDS = (
        "identifier",
        "title",
        "lay_summary",
        "public_benefit",
        "sponsor",
        "funder",
        "grant_reference",
        "start_date",
        "end_date",
        "status",
        "organisation_sector",
        "sublicence_arrangements",
        "request_category_type",
        "other_approval_committees",
        "legal_basis_for_data_article6",
        "legal_basis_for_data_article9",
        "duty_of_confidentiality",
        "national_data_optout",
        "request_frequency",
        "dataset_linkage_description",
        "confidential_data_description",
        "access_type",
        "privacy_enhancements",
    )

    identifier = models.CharField(
        max_length=50, unique=True, help_text="Stable project id used in crates, e.g. PRJ-2026-0001."
    )
    title = models.CharField(max_length=300)
    lay_summary = models.TextField(help_text="Plain language, for the public.")
    public_benefit = models.TextField(help_text="How the public will benefit.")
    technical_summary = models.TextField(blank=True)
    lead = models.ForeignKey(User, on_delete=models.PROTECT, related_name="projects_led")
    sponsor = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="projects_sponsored"
    )
    funder = models.CharField(max_length=200, blank=True)
    grant_reference = models.CharField(max_length=100, blank=True)
    ethics_reference = models.CharField(max_length=100, blank=True)
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    # Data Use Register fields (HDR UK template lookups, see portal/dur_lookups.py); all public.
    organisation_sector = models.CharField(
        max_length=60, blank=True, choices=dur_lookups.OrganisationSector.choices
    )
    sublicence_arrangements = models.CharField(max_length=3, blank=True, choices=dur_lookups.YesNo.choices)
    request_category_type = models.CharField(
        max_length=40, blank=True, choices=dur_lookups.RequestCategory.choices
    )
    other_approval_committees = models.TextField(blank=True, help_text="One per line.")
    legal_basis_for_data_article6 = models.CharField(
        "legal basis (UK GDPR Article 6)", max_length=20, blank=True, choices=dur_lookups.Article6.choices
    )
    legal_basis_for_data_article9 = models.CharField(
        "condition (UK GDPR Article 9)", max_length=20, blank=True, choices=dur_lookups.Article9.choices
    )
    duty_of_confidentiality = models.CharField(
        max_length=40, blank=True, choices=dur_lookups.DutyOfConfidentiality.choices
    )
    national_data_optout = models.CharField(
        "national data opt-out applied",
        max_length=20,
        blank=True,
        choices=dur_lookups.YesNoNotApplicable.choices,
    )
    request_frequency = models.CharField(
        max_length=20, blank=True, choices=dur_lookups.RequestFrequency.choices
    )
    dataset_linkage_description = models.TextField(blank=True)
    confidential_data_description = models.TextField(blank=True)
    access_type = models.CharField(
        max_length=10, choices=dur_lookups.AccessType.choices, default=dur_lookups.AccessType.TRE
    )
    privacy_enhancements = models.TextField(blank=True)
    tres = models.ManyToManyField(TRE, through="ProjectApproval", related_name="projects")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        permissions = [("manage_project", "Manage this project's details and members")]
        constraints = [
            models.CheckConstraint(
                condition=Q(start_date__isnull=True)
                | Q(end_date__isnull=True)
                | Q(end_date__gte=models.F("start_date")),
                name="project_dates",
            )
        ]

    def __str__(self):
        return f"{self.identifier}: {self.title}"

    def get_absolute_url(self):
        return reverse("project_detail", args=[self.pk])

    def is_in_date(self, day=None):
        day = day or timezone.localdate()
        return (self.start_date is None or self.start_date <= day) and (
            self.end_date is None or day <= self.end_date
        )


class TREDecision(models.Model):
    """What the three approvals at one TRE share (project, membership, workflow): a status decided by
    that TRE's officers, who decided, when and why. `_decided_pair` keeps decided_by and decided_at
    together."""

    status = models.CharField(max_length=20, choices=Decision.choices, default=Decision.PENDING)
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    rationale = models.TextField(blank=True)

    class Meta:
        abstract = True


class ProjectApproval(TREDecision):
    """A project's standing at one TRE (Safe Project), decided by that TRE's officers."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="approvals")
    tre = models.ForeignKey(TRE, on_delete=models.PROTECT, related_name="project_approvals")

    class Meta:
        ordering = ["tre__name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "tre"], name="project_approval_once_per_tre"),
            _decided_pair("project_approval"),
        ]

    def __str__(self):
        return f"{self.project.identifier} at {self.tre.slug}: {self.status}"


class Membership(models.Model):
    class Role(models.TextChoices):
        LEAD = "lead", "Project lead"
        RESEARCHER = "researcher", "Researcher"
        ANALYST = "analyst", "Analyst"

    class Status(models.TextChoices):
        INVITED = "invited", "Invited"
        PENDING = "pending", "Awaiting TRE approval"
        ACTIVE = "active", "Active"
        REFUSED = "refused", "Refused"
        LAPSED = "lapsed", "Lapsed"
        WITHDRAWN = "withdrawn", "Withdrawn"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    person = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.RESEARCHER)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    justification = models.TextField(blank=True, help_text="Why this person needs access.")
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    valid_until = models.DateField(null=True, blank=True)
    lapsed_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "person__email"]
        constraints = [
            models.UniqueConstraint(fields=["project", "person"], name="membership_once_per_project")
        ]

    def __str__(self):
        return f"{self.person} in {self.project.identifier} ({self.status})"


class MembershipApproval(TREDecision):
    """A member's approval at one TRE (Safe People), decided by that TRE's officers."""

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="approvals")
    tre = models.ForeignKey(TRE, on_delete=models.PROTECT, related_name="membership_approvals")

    class Meta:
        ordering = ["tre__name"]
        constraints = [
            models.UniqueConstraint(fields=["membership", "tre"], name="membership_approval_once_per_tre"),
            _decided_pair("membership_approval"),
        ]

    def __str__(self):
        return f"{self.membership} at {self.tre.slug}: {self.status}"


class DataAccessAgreement(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "In force"
        SUSPENDED = "suspended", "Suspended"
        TERMINATED = "terminated", "Terminated"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="agreements")
    tre = models.ForeignKey(TRE, on_delete=models.PROTECT, related_name="agreements")
    reference = models.CharField(max_length=100, unique=True)
    datasets = models.ManyToManyField(Dataset, related_name="agreements")
    valid_from = models.DateField()
    valid_until = models.DateField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    conditions = models.TextField(blank=True)
    permitted_output_kinds = models.JSONField(default=list, blank=True)
    disclosure_overrides = models.JSONField(
        default=dict,
        blank=True,
        help_text='Policy fields that differ from the TRE\'s, e.g. {"min_cell_count": 20}.',
    )
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    approved_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-valid_until"]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_until__gte=models.F("valid_from")), name="agreement_dates"
            ),
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True, approved_at__isnull=True)
                | Q(approved_by__isnull=False, approved_at__isnull=False),
                name="agreement_approved_by_and_at",
            ),
        ]

    def __str__(self):
        return f"{self.reference} ({self.project.identifier} at {self.tre.slug})"

    def get_absolute_url(self):
        return reverse("agreement_detail", args=[self.pk])

    def is_in_force(self, day=None):
        day = day or timezone.localdate()
        return self.status == self.Status.ACTIVE and self.valid_from <= day <= self.valid_until


class ApprovedWorkflow(models.Model):
    """A workflow the federation knows, identified by id, version and the checksum of its crate."""

    class Language(models.TextChoices):
        CWL = "cwl", "Common Workflow Language"
        SQL = "sql", "SQL aggregate query"
        NEXTFLOW = "nextflow", "Nextflow"
        SNAKEMAKE = "snakemake", "Snakemake"
        GALAXY = "galaxy", "Galaxy"
        R = "r", "R (DataSHIELD)"
        PYTHON = "python", "Python"

    class Executor(models.TextChoices):
        CWL = "cwl", "cwltool (local)"
        SQL_AGGREGATE = "sql-aggregate", "Safe aggregate count (built in)"
        TES = "tes", "GA4GH TES hand-off"
        DATASHIELD = "datashield", "DataSHIELD (Opal)"
        BITFOUNT = "bitfount", "Bitfount"

    name = models.CharField(max_length=200)
    workflow_id = models.CharField(
        "workflow id or URL", max_length=500, help_text="e.g. https://workflowhub.eu/workflows/289"
    )
    version = models.CharField(max_length=50)
    sha256 = models.CharField(
        max_length=64, validators=[validate_sha256], help_text="SHA-256 of the Workflow RO-Crate zip."
    )
    language = models.CharField(max_length=20, choices=Language.choices)
    executor = models.CharField(max_length=20, choices=Executor.choices)
    description = models.TextField(blank=True)
    crate = models.FileField(upload_to="workflows/", blank=True, help_text="The Workflow RO-Crate zip.")
    output_schemas = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_output_schemas],
        help_text='The shape of each table the workflow writes, by file name, e.g. {"age_sex_table.csv": '
        '{"labels": ["age_band", "sex"], "counts": ["persons"]}}; the disclosure checks read the tables so.',
    )
    # What a request gives the workflow (see portal.workflow_inputs); null: not declared, any name=value.
    inputs = models.JSONField(
        null=True,
        blank=True,
        help_text="The inputs a request gives the workflow: name, type, required, default, allowed values, "
        "description. Read from the CWL inputs when the crate is registered, unless given.",
    )
    tres = models.ManyToManyField(TRE, through="WorkflowApproval", related_name="workflows")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "version"]
        constraints = [
            models.UniqueConstraint(fields=["workflow_id", "version"], name="workflow_version_unique"),
        ]

    def __str__(self):
        return f"{self.name} {self.version}"


class WorkflowApproval(TREDecision):
    """A workflow on one TRE's approved list (Safe Settings)."""

    workflow = models.ForeignKey(ApprovedWorkflow, on_delete=models.CASCADE, related_name="approvals")
    tre = models.ForeignKey(TRE, on_delete=models.PROTECT, related_name="workflow_approvals")
    service_settings = models.JSONField(
        default=dict,
        blank=True,
        help_text="For DataSHIELD and Bitfount workflows: the profile and functions, or pods and task, this TRE "
        "approved (see portal.service_settings).",
    )

    class Meta:
        ordering = ["tre__name"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "tre"], name="workflow_approval_once_per_tre"),
            _decided_pair("workflow_approval"),
        ]

    def __str__(self):
        return f"{self.workflow} at {self.tre.slug}: {self.status}"

    @property
    def service_description(self):
        """Which service, profile or pods the workflow uses at this TRE, in one sentence ("" if none)."""
        return service_settings.describe(self.workflow.executor, self.service_settings)


class TokenScope(models.TextChoices):
    """What a personal API token may be used for. The privileged ones need a fresh second factor."""

    READ = "read", "Read what you can see"
    SUBMIT = "submit", "Submit requests, answer checkers, cancel your jobs"
    REVIEW = "review", "Decide review steps (governance officers)"
    CHECK = "check", "Vote on and release outputs (output checkers)"
    AUDIT = "audit", "Read the audit trail (auditors)"
    ADMIN = "admin", "Administer the federation (federation admins)"


PRIVILEGED_SCOPES = frozenset({TokenScope.REVIEW, TokenScope.CHECK, TokenScope.AUDIT, TokenScope.ADMIN})


def default_token_scopes():
    return [TokenScope.READ.value, TokenScope.SUBMIT.value]


class PersonalTokenQuerySet(models.QuerySet):
    def usable(self):
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class PersonalToken(models.Model):
    """A researcher's REST API token. Only its SHA-256 is stored; the secret is shown once."""

    PREFIX = "fsp_"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_prefix = models.CharField(max_length=12, help_text="The first characters, to tell tokens apart.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    scopes = models.JSONField(
        default=default_token_scopes,
        help_text="What the token may be used for (TokenScope values); privileged scopes expire within "
        "30 days and are granted only right after a second-factor check.",
    )

    objects = PersonalTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.key_prefix}…)"

    @staticmethod
    def hash_key(key):
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def generate_key(cls):
        return cls.PREFIX + secrets.token_urlsafe(32)

    @property
    def is_usable(self):
        return self.revoked_at is None and self.expires_at > timezone.now()

    @property
    def scope_labels(self):
        return [TokenScope(scope).label for scope in self.scopes if scope in TokenScope.values]


from portal.public_models import PublicQuestion  # noqa: E402, F401


class PPIEReview(models.Model):
    """A PPIE member's view of a project's lay summary and public benefit statement, as they read them.

    Immutable: a new reading is a new row. The texts are kept as read, so an edit of the project
    makes the view out of date and puts the project back in the PPIE queue.
    """

    class Outcome(models.TextChoices):
        CLEAR = "clear", "Clear for the public"
        PLAINER = "plainer", "Plainer words needed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="ppie_reviews")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    comment = models.TextField(blank=True, help_text="What to change, in words the researcher can act on.")
    lay_summary = models.TextField(help_text="The lay summary as the reviewer read it.")
    public_benefit = models.TextField(help_text="The public benefit statement as the reviewer read it.")
    reviewer = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome="clear") | ~Q(comment=""), name="ppie_comment_unless_clear"
            )
        ]

    def __str__(self):
        return f"PPIE review of {self.project.identifier}: {self.get_outcome_display()}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("A PPIE review, once recorded, cannot be changed.")
        super().save(*args, **kwargs)

    def is_current(self):
        """True while the project's texts are still the ones the reviewer read."""
        return (self.lay_summary, self.public_benefit) == (
            self.project.lay_summary,
            self.project.public_benefit,
        )


from portal.webhook_models import WebhookDelivery, WebhookEndpoint, WebhookEventType  # noqa: E402, F401

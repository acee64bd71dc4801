"""Registry forms. A refused form saves nothing and says what to fix, field by field."""

import hashlib
import json

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.validators import MaxValueValidator

from portal import permissions, workflow_inputs
from portal.models import (
    TRE,
    Accreditation,
    ApprovedWorkflow,
    DataAccessAgreement,
    Dataset,
    Decision,
    Membership,
    Organisation,
    Profile,
    Project,
    TokenScope,
)
from portal.validators import normalise_orcid, normalise_ror_id, validate_evidence_file

DATE_INPUT = forms.DateInput(attrs={"type": "date"})

EXECUTOR_CHOICES = ApprovedWorkflow.Executor.choices
OUTPUT_KIND_CHOICES = [
    ("table", "Aggregate tables (CSV)"),
    ("figure", "Figures (PNG, SVG)"),
    ("model", "Model estimates"),
    ("report", "Reports (PDF, HTML)"),
    ("code", "Code and logs"),
]


class DateRangeMixin:
    """Refuse ranges that end before they start."""

    date_range = ("valid_from", "valid_until")

    def clean(self):
        cleaned = super().clean()
        start, end = (cleaned.get(name) for name in self.date_range)
        if start and end and end < start:
            self.add_error(self.date_range[1], "The end date must be on or after the start date.")
        return cleaned


class OrganisationForm(forms.ModelForm):
    website = forms.URLField(required=False, assume_scheme="https")

    class Meta:
        model = Organisation
        fields = ["name", "ror_id", "website"]

    def clean_ror_id(self):
        value = self.cleaned_data["ror_id"]
        return normalise_ror_id(value) if value else ""


class TREForm(forms.ModelForm):
    website = forms.URLField(required=False, assume_scheme="https")
    allowed_executors = forms.MultipleChoiceField(
        choices=EXECUTOR_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )
    permitted_output_kinds = forms.MultipleChoiceField(
        choices=OUTPUT_KIND_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = TRE
        fields = [
            "name",
            "description",
            "public_description",
            "website",
            "min_cell_count",
            "zeros_disclosive",
            "dominance_n",
            "dominance_k",
            "p_ratio",
            "rounding_base",
            "required_output_checkers",
            "on_disagreement",
            "ppie_review",
            "permitted_output_kinds",
            "allowed_executors",
        ]


class DatasetForm(forms.ModelForm):
    class Meta:
        model = Dataset
        fields = ["identifier", "name", "sensitivity", "public_description", "is_public"]

    def __init__(self, *args, tre, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.tre = tre

    def clean_identifier(self):
        identifier = self.cleaned_data["identifier"].strip()
        clash = Dataset.objects.filter(tre=self.instance.tre, identifier=identifier).exclude(
            pk=self.instance.pk
        )
        if clash.exists():
            raise forms.ValidationError("This TRE already has a dataset with that identifier.")
        return identifier


class ProfileForm(forms.ModelForm):
    # Longer than the stored form so that people may paste the https://orcid.org/ URL.
    orcid = forms.CharField(
        label="ORCID iD", max_length=60, required=False, help_text="e.g. 0000-0002-1825-0097"
    )

    class Meta:
        model = Profile
        fields = ["display_name", "orcid", "affiliation", "publish_name_in_registers"]

    def clean_orcid(self):
        value = self.cleaned_data["orcid"]
        if not value:
            return ""
        orcid = normalise_orcid(value)
        if Profile.objects.filter(orcid=orcid).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("Another person has already registered this ORCID iD.")
        return orcid


class AccreditationForm(DateRangeMixin, forms.ModelForm):
    class Meta:
        model = Accreditation
        fields = ["kind", "issuer", "reference", "valid_from", "valid_until", "evidence"]
        widgets = {"valid_from": DATE_INPUT, "valid_until": DATE_INPUT}
        help_texts = {"evidence": "A PDF, PNG or JPEG certificate."}

    def clean_evidence(self):
        evidence = self.cleaned_data.get("evidence")
        if evidence and hasattr(evidence, "size") and not getattr(evidence, "_committed", False):
            validate_evidence_file(evidence)
        return evidence


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = [
            "identifier",
            "title",
            "lay_summary",
            "public_benefit",
            "technical_summary",
            "sponsor",
            "funder",
            "grant_reference",
            "ethics_reference",
            "start_date",
            "end_date",
            "organisation_sector",
            "request_category_type",
            "access_type",
            "legal_basis_for_data_article6",
            "legal_basis_for_data_article9",
            "duty_of_confidentiality",
            "national_data_optout",
            "request_frequency",
            "sublicence_arrangements",
            "other_approval_committees",
            "dataset_linkage_description",
            "confidential_data_description",
            "privacy_enhancements",
        ]
        widgets = {"start_date": DATE_INPUT, "end_date": DATE_INPUT}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Most projects run inside a TRE; the register's Access type defaults to that.
        self.fields["access_type"].required = False

    def clean_access_type(self):
        return self.cleaned_data.get("access_type") or Project._meta.get_field("access_type").default

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start_date"), cleaned.get("end_date")
        if start and end and end < start:
            self.add_error("end_date", "The end date must be on or after the start date.")
        return cleaned


class ApplyForm(forms.Form):
    justification = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), help_text="What you will do in this project and why."
    )


class InviteForm(forms.Form):
    email = forms.EmailField(help_text="The person must already have an account on the portal.")
    role = forms.ChoiceField(choices=[c for c in Membership.Role.choices if c[0] != Membership.Role.LEAD])
    justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def clean_email(self):
        email = self.cleaned_data["email"]
        user = get_user_model().objects.filter(email__iexact=email).first()
        if user is None:
            raise forms.ValidationError(
                "Nobody with this e-mail address has an account yet; ask them to sign up."
            )
        self.person = user
        return email


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[(Decision.APPROVED, "Approve"), (Decision.REFUSED, "Refuse")], widget=forms.RadioSelect
    )
    rationale = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Required when refusing; the applicant sees it.",
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("decision") == Decision.REFUSED and not cleaned.get("rationale", "").strip():
            self.add_error("rationale", "Give the reason for refusing.")
        return cleaned


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))


class RequestApprovalForm(forms.Form):
    tre = forms.ModelChoiceField(queryset=TRE.objects.all(), label="TRE")


class AgreementForm(DateRangeMixin, forms.ModelForm):
    permitted_output_kinds = forms.MultipleChoiceField(
        choices=OUTPUT_KIND_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = DataAccessAgreement
        fields = [
            "project",
            "tre",
            "reference",
            "datasets",
            "valid_from",
            "valid_until",
            "conditions",
            "permitted_output_kinds",
            "disclosure_overrides",
        ]
        widgets = {
            "valid_from": DATE_INPUT,
            "valid_until": DATE_INPUT,
            "datasets": forms.CheckboxSelectMultiple,
        }

    OVERRIDABLE = {
        "min_cell_count": int,
        "zeros_disclosive": bool,
        "dominance_n": int,
        "dominance_k": float,
        "p_ratio": float,
        "rounding_base": int,
        "required_output_checkers": int,
    }

    def __init__(self, *args, tres, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tre"].queryset = tres
        self.fields["datasets"].queryset = Dataset.objects.filter(tre__in=tres).select_related("tre")
        if self.instance.pk:
            self.fields["tre"].disabled = True
            self.fields["project"].disabled = True

    def clean_disclosure_overrides(self):
        overrides = self.cleaned_data.get("disclosure_overrides") or {}
        if not isinstance(overrides, dict):
            raise forms.ValidationError('Give overrides as a JSON object, e.g. {"min_cell_count": 20}.')
        for key, value in overrides.items():
            kind = self.OVERRIDABLE.get(key)
            if kind is None:
                raise forms.ValidationError(
                    f"{key!r} is not a policy field. Use one of: {', '.join(self.OVERRIDABLE)}."
                )
            if (
                kind is bool
                and not isinstance(value, bool)
                or kind is not bool
                and (isinstance(value, bool) or not isinstance(value, int | float))
            ):
                raise forms.ValidationError(f"{key} must be a {kind.__name__}.")
        return overrides

    def clean(self):
        cleaned = super().clean()
        tre, datasets = cleaned.get("tre"), cleaned.get("datasets")
        if tre and datasets:
            foreign = [d.name for d in datasets if d.tre_id != tre.pk]
            if foreign:
                self.add_error("datasets", f"Not held by {tre}: {', '.join(foreign)}.")
        return cleaned


class WorkflowForm(forms.ModelForm):
    declared_inputs = forms.CharField(
        label="Inputs (optional)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "class": "portal-mono"}),
        help_text="Leave empty to read them from the CWL workflow in the crate. Or give them as JSON, e.g. "
        '[{"name": "reference_year", "type": "int", "required": false, "default": 2025, '
        '"allowed": [], "description": "Year ages are computed at"}]. Types: '
        + ", ".join(workflow_inputs.TYPES)
        + ".",
    )

    class Meta:
        model = ApprovedWorkflow
        fields = [
            "name",
            "workflow_id",
            "version",
            "sha256",
            "language",
            "executor",
            "description",
            "output_schemas",
            "crate",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.inputs is not None:
            self.initial.setdefault("declared_inputs", json.dumps(self.instance.inputs, indent=1))

    def clean_declared_inputs(self):
        text = self.cleaned_data.get("declared_inputs", "").strip()
        return workflow_inputs.parse(text) if text else None

    def save(self, commit=True):
        workflow = super().save(commit=False)
        declared = self.cleaned_data.get("declared_inputs")
        crate = self.cleaned_data.get("crate")
        if declared is not None:
            workflow.inputs = declared
        elif crate and hasattr(crate, "read") and not getattr(crate, "_committed", False):
            workflow.inputs = workflow_inputs.from_crate(crate)
        if commit:
            workflow.save()
            self.save_m2m()
        return workflow

    def clean_sha256(self):
        return self.cleaned_data["sha256"].strip().lower()

    def clean_output_schemas(self):
        return self.cleaned_data.get("output_schemas") or {}

    def clean_crate(self):
        crate = self.cleaned_data.get("crate")
        if crate and hasattr(crate, "size") and not getattr(crate, "_committed", False):
            if crate.size > settings.PORTAL_WORKFLOW_MAX_BYTES:
                raise forms.ValidationError("The workflow crate is larger than the limit.")
            if not crate.name.lower().endswith(".zip"):
                raise forms.ValidationError("Upload the Workflow RO-Crate as a .zip file.")
        return crate

    def clean(self):
        cleaned = super().clean()
        crate, sha = cleaned.get("crate"), cleaned.get("sha256")
        if crate and sha and hasattr(crate, "chunks") and not getattr(crate, "_committed", False):
            digest = hashlib.sha256()
            for chunk in crate.chunks():
                digest.update(chunk)
            crate.seek(0)
            if digest.hexdigest() != sha:
                self.add_error("sha256", f"The uploaded crate's SHA-256 is {digest.hexdigest()}, not {sha}.")
        return cleaned


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. 'laptop scripts'.")
    days = forms.IntegerField(min_value=1, initial=90, label="Valid for (days)")
    scopes = forms.MultipleChoiceField(
        required=False,  # none ticked: read and submit
        label="What it may do",
        widget=forms.CheckboxSelectMultiple,
        initial=["read", "submit"],
        help_text="Reviewing, checking, auditing and administering need your second factor just before, "
        "and such a token lasts 30 days at most.",
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["days"].validators.append(MaxValueValidator(settings.PORTAL_TOKEN_MAX_DAYS))
        self.fields["days"].widget.attrs["max"] = settings.PORTAL_TOKEN_MAX_DAYS
        self.fields["scopes"].choices = [
            (scope.value, scope.label) for scope in map(TokenScope, permissions.token_scopes_for(user))
        ]


class AuditFilterForm(forms.Form):
    verb = forms.CharField(
        required=False,
        label="Event code",
        help_text="As in the exports, such as review.started; review. matches every review event.",
    )
    actor = forms.CharField(required=False, label="Actor (e-mail or id)")
    object_type = forms.CharField(required=False)
    object_id = forms.CharField(required=False)
    tre = forms.CharField(required=False, label="TRE slug")
    project = forms.CharField(required=False, label="Project id")
    since = forms.DateField(required=False, widget=DATE_INPUT)
    until = forms.DateField(required=False, widget=DATE_INPUT)

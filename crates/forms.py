"""Forms researchers use to submit crates: upload one, or have the portal build it."""

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from portal import permissions
from portal.models import TRE, ApprovedWorkflow, Dataset, Decision, Project


def _member_projects(user):
    return Project.objects.filter(
        pk__in=permissions.acting_memberships(user).values("project"), status=Project.Status.ACTIVE
    )


class CrateFileField(forms.FileField):
    def validate(self, value):
        super().validate(value)
        limit = settings.PORTAL_CRATE_LIMITS["max_compressed_bytes"]
        if value and value.size > limit:
            raise forms.ValidationError(
                f"The file is {filesizeformat(value.size)}; the limit is {filesizeformat(limit)}."
            )
        if value and not value.name.lower().endswith(".zip"):
            raise forms.ValidationError("Upload the crate as a .zip file holding one BagIt directory.")


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files from one input (the pattern of Django's file-upload documentation)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)] if data else []


class _RequestFields(forms.Form):
    project = forms.ModelChoiceField(queryset=Project.objects.none())
    tres = forms.ModelMultipleChoiceField(
        queryset=TRE.objects.none(), widget=forms.CheckboxSelectMultiple, label="Run at these TREs"
    )
    title = forms.CharField(max_length=300)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["project"].queryset = _member_projects(user)
        self.fields["tres"].queryset = TRE.objects.filter(
            project_approvals__status=Decision.APPROVED,
            project_approvals__project__in=self.fields["project"].queryset,
        ).distinct()

    def clean(self):
        cleaned = super().clean()
        project, tres = cleaned.get("project"), cleaned.get("tres")
        if project and tres:
            approved = set(
                project.approvals.filter(status=Decision.APPROVED).values_list("tre_id", flat=True)
            )
            outside = [t.name for t in tres if t.pk not in approved]
            if outside:
                self.add_error("tres", f"{project.identifier} is not approved at {', '.join(outside)}.")
        return cleaned


class UploadRequestForm(_RequestFields):
    crate = CrateFileField(help_text="A Five Safes RO-Crate: a ZIP holding one BagIt directory.")


class ResubmitForm(forms.Form):
    crate = CrateFileField(help_text="The corrected crate ZIP.")
    message = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="What you changed, for the officers.",
    )


class BuildRequestForm(_RequestFields):
    workflow = forms.ModelChoiceField(queryset=ApprovedWorkflow.objects.none(), label="Approved workflow")
    datasets = forms.ModelMultipleChoiceField(
        queryset=Dataset.objects.none(), widget=forms.CheckboxSelectMultiple, required=False
    )
    parameters = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="One per line, as name=value.",
    )
    inputs = MultipleFileField(
        required=False,
        help_text="Input files to include in the crate (small files only: no personal data).",
    )

    def clean_inputs(self):
        files = self.cleaned_data.get("inputs") or []
        limit = settings.PORTAL_BUILDER_MAX_INPUT_BYTES
        total = sum(f.size for f in files)
        if total > limit:
            raise forms.ValidationError(
                f"Input files add up to {filesizeformat(total)}; the limit is {filesizeformat(limit)}."
            )
        names = [f.name for f in files]
        if len(names) != len(set(names)):
            raise forms.ValidationError("Two input files have the same name.")
        return files

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        tres = self.fields["tres"].queryset
        self.fields["workflow"].queryset = ApprovedWorkflow.objects.filter(
            approvals__tre__in=tres, approvals__status=Decision.APPROVED
        ).distinct()
        self.fields["datasets"].queryset = Dataset.objects.filter(tre__in=tres).select_related("tre")

    def clean_parameters(self):
        parameters = []
        for number, line in enumerate(self.cleaned_data["parameters"].splitlines(), start=1):
            if not line.strip():
                continue
            name, sep, value = line.partition("=")
            if not sep or not name.strip():
                raise forms.ValidationError(f"Line {number} is not name=value: {line.strip()!r}.")
            parameters.append((name.strip(), value.strip()))
        names = [name for name, _ in parameters]
        if len(names) != len(set(names)):
            raise forms.ValidationError("Each parameter name may appear only once.")
        return parameters

    def clean(self):
        cleaned = super().clean()
        tres, workflow, datasets = cleaned.get("tres"), cleaned.get("workflow"), cleaned.get("datasets")
        if tres and workflow:
            approved = set(
                workflow.approvals.filter(status=Decision.APPROVED).values_list("tre_id", flat=True)
            )
            missing = [t.name for t in tres if t.pk not in approved]
            if missing:
                self.add_error("workflow", f"{workflow} is not approved at {', '.join(missing)}.")
        if tres and datasets:
            foreign = [d.name for d in datasets if d.tre_id not in {t.pk for t in tres}]
            if foreign:
                self.add_error("datasets", f"Not held by the chosen TREs: {', '.join(foreign)}.")
        return cleaned

"""Forms researchers use to submit crates: upload one, or have the portal build it."""

from pathlib import Path

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat

from portal import permissions, workflow_inputs
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
    """The request builder. A workflow that declares its inputs gets one typed field per input
    (``input_<name>``), checked by :func:`portal.workflow_inputs.check`; one that does not takes
    free ``name=value`` parameters and input files named after their parameter."""

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

    def __init__(self, *args, kept_files=None, **kwargs):
        super().__init__(*args, **kwargs)
        tres = self.fields["tres"].queryset
        self.fields["workflow"].queryset = ApprovedWorkflow.objects.filter(
            approvals__tre__in=tres, approvals__status=Decision.APPROVED
        ).distinct()
        self.fields["datasets"].queryset = Dataset.objects.filter(tre__in=tres).select_related("tre")
        # Files of the previous version a resubmission keeps unless replaced: {input name: file name}.
        self.kept_files = dict(kept_files or {})
        self.chosen_workflow = self._chosen_workflow()
        self.declared = self.chosen_workflow.inputs if self.chosen_workflow else None
        if self.declared is not None:
            del self.fields["parameters"]
            del self.fields["inputs"]
            for entry in self.declared:
                self.fields[f"input_{entry['name']}"] = self._typed_field(entry)
        elif self.kept_files:
            self.fields["inputs"].help_text += (
                " Kept from the last version unless you add a file for the same input: "
                + ", ".join(sorted(self.kept_files.values()))
                + "."
            )

    def _chosen_workflow(self):
        key = self.data.get("workflow") if self.is_bound else self.initial.get("workflow")
        key = getattr(key, "pk", key)
        if not key or not str(key).isdigit():
            return None
        return self.fields["workflow"].queryset.filter(pk=key).first()

    def _typed_field(self, entry):
        kind, name = entry["type"], entry["name"]
        hint = [entry.get("description") or ""]
        if entry.get("default") is not None:
            hint.append(f"Default: {entry['default']}.")
        kept = self.kept_files.get(name) if kind == "File" else None
        if kept:
            hint.append(f"Leave empty to keep {kept} from the last version.")
        options = {
            "label": name,
            "required": entry["required"] and not kept,
            "help_text": " ".join(h for h in hint if h),
            "error_messages": {
                "required": f"{name} is required: attach the file."
                if kind == "File"
                else f"{name} is required ({workflow_inputs.TYPES[kind]})."
            },
        }
        if kind == "File":
            return forms.FileField(**options)
        initial = entry.get("default")
        if entry.get("allowed"):
            choices = [("", "Choose one" if entry["required"] else "Use the default")]
            choices += [(str(a), str(a)) for a in entry["allowed"]]
            return forms.ChoiceField(choices=choices, initial=initial, **options)
        if kind == "boolean":
            default = {True: "yes", False: "no"}.get(initial, "none")
            choices = [("", f"Use the default ({default})"), ("true", "Yes"), ("false", "No")]
            return forms.ChoiceField(choices=choices, **options)
        attrs = {"int": {"inputmode": "numeric"}, "float": {"inputmode": "decimal"}}.get(kind, {})
        return forms.CharField(initial=initial, widget=forms.TextInput(attrs=attrs), **options)

    @property
    def typed_fields(self):
        return [self[f"input_{entry['name']}"] for entry in self.declared or []]

    @property
    def general_fields(self):
        """The visible fields but the workflow's typed inputs and the resubmission message."""
        return [f for f in self.visible_fields() if not f.name.startswith("input_") and f.name != "message"]

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

    def _clean_typed_inputs(self, cleaned, workflow):
        """Check the typed fields against the declaration; give the builder parameters and named files."""
        values, files = {}, {}
        for entry in self.declared:
            name = entry["name"]
            value = cleaned.get(f"input_{name}")
            if entry["type"] == "File":
                if value:
                    files[name] = value
                elif name in self.kept_files:
                    files[name] = None  # kept from the last version
            elif value not in (None, ""):
                values[name] = value
        uploads = [f for f in files.values() if f is not None]
        total = sum(f.size for f in uploads)
        if total > settings.PORTAL_BUILDER_MAX_INPUT_BYTES:
            self.add_error(
                None,
                f"Input files add up to {filesizeformat(total)}; the limit is "
                f"{filesizeformat(settings.PORTAL_BUILDER_MAX_INPUT_BYTES)}.",
            )
        try:
            converted = workflow_inputs.check(self.declared, values, files, workflow_name=str(workflow))
        except ValidationError as exc:
            for name, problems in exc.message_dict.items():
                field = f"input_{name}"
                if field not in self.fields:
                    self.add_error(None, problems)
                elif field not in self.errors:  # a required field left empty has said so already
                    self.add_error(field, problems)
            return
        cleaned["parameters"] = list(converted.items())
        cleaned["inputs"] = [(name, upload) for name, upload in files.items() if upload is not None]
        cleaned["kept_inputs"] = [name for name, upload in files.items() if upload is None]

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
        if workflow is not None and self.declared is not None:
            self._clean_typed_inputs(cleaned, workflow)
        else:
            # Free-form inputs: a file is the input named by its file name without suffix.
            replaced = {Path(f.name).stem for f in cleaned.get("inputs") or []}
            cleaned["kept_inputs"] = [name for name in self.kept_files if name not in replaced]
        return cleaned


class ResubmitBuildForm(BuildRequestForm):
    """The builder for a new version of an existing request: its project and TREs stay as they are."""

    message = forms.CharField(
        label="What you changed",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The officers see this beside what changed since the last version.",
    )

    def fix_request(self, req):
        for name in ("project", "tres"):
            self.fields[name].disabled = True
        self.fields["project"].queryset = Project.objects.filter(pk=req.project_id)
        self.fields["tres"].queryset = req.tres.all()

"""Researcher REST API for requests: submit a crate, follow it, resubmit."""

import json
import tempfile
from pathlib import Path

from django.core.files import File
from django.db.models import Prefetch
from django.utils.datastructures import MultiValueDict
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.fields import empty
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from crates import builder, services
from crates import permissions as crate_permissions
from crates.forms import BuildRequestForm
from crates.models import Job, Request, RequestVersion
from portal.api.permissions import READ
from portal.api.views import PersonAPIMixin
from portal.models import TRE, ApprovedWorkflow, Dataset, Project, TokenScope


class JobSerializer(serializers.ModelSerializer):
    tre = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)

    class Meta:
        model = Job
        fields = ["id", "tre", "status", "status_changed_at", "version", "suspended_reason"]


class VersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = RequestVersion
        fields = [
            "number",
            "status",
            "sha256",
            "size",
            "external_identifier",
            "created_at",
            "validated_at",
            "validation_report",
            "crosscheck",
            "message",
        ]


class RequestSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="identifier", read_only=True)
    submitter = serializers.EmailField(source="submitter.email", read_only=True)
    tres = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    status = serializers.SerializerMethodField()
    jobs = JobSerializer(many=True, read_only=True)
    versions = VersionSerializer(many=True, read_only=True)

    class Meta:
        model = Request
        fields = [
            "id",
            "title",
            "description",
            "project",
            "submitter",
            "tres",
            "status",
            "created_at",
            "jobs",
            "versions",
        ]

    def get_status(self, obj) -> str:
        return obj.status_summary(list(obj.jobs.all()))


class PlainSlugRelatedField(serializers.SlugRelatedField):
    """A slug lookup that refuses what no slug can hold (a NUL byte would reach PostgreSQL as an error)."""

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("does_not_exist", slug_name=self.slug_field, value=data.replace("\x00", "\\x00"))
        return super().to_internal_value(data)


class SubmitSerializer(serializers.Serializer):
    project = PlainSlugRelatedField(slug_field="identifier", queryset=Project.objects.all())
    tres = PlainSlugRelatedField(slug_field="slug", queryset=TRE.objects.all(), many=True)
    title = serializers.CharField(max_length=300)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    crate = serializers.FileField(help_text="The crate ZIP (one BagIt directory).")


class InputsField(serializers.DictField):
    """Inputs by name: a JSON object, or in a multipart body the text of one."""

    def get_value(self, dictionary):
        if hasattr(dictionary, "getlist"):  # a form body: the object arrives as JSON text
            return dictionary.get(self.field_name, empty)
        return super().get_value(dictionary)

    def to_internal_value(self, data):
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                self.fail("not_a_dict", input_type="text that is not JSON")
        return super().to_internal_value(data)


class BuildSerializer(serializers.Serializer):
    project = PlainSlugRelatedField(slug_field="identifier", queryset=Project.objects.all())
    tres = PlainSlugRelatedField(slug_field="slug", queryset=TRE.objects.all(), many=True)
    title = serializers.CharField(max_length=300)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    workflow = serializers.IntegerField(
        min_value=1, max_value=2**31 - 1, help_text="The approved workflow's id (see its page)."
    )
    datasets = serializers.ListField(
        child=serializers.CharField(max_length=500),
        required=False,
        default=list,
        help_text="Dataset identifiers.",
    )
    inputs = InputsField(
        required=False,
        default=dict,
        help_text="The workflow's inputs by name: checked against the inputs the workflow declares "
        "(type, required, allowed values). File inputs are sent as multipart files named input_<name>.",
    )


class ResubmitSerializer(serializers.Serializer):
    crate = serializers.FileField()
    message = serializers.CharField(required=False, allow_blank=True, default="")


def _requests_for(user):
    return (
        crate_permissions.visible_requests(user)
        .select_related("project", "submitter")
        .prefetch_related(
            "tres",
            Prefetch("jobs", queryset=Job.objects.select_related("tre", "version")),
            Prefetch("versions", queryset=RequestVersion.objects.order_by("number")),
        )
        .order_by("-created_at")
    )


class RequestListCreate(PersonAPIMixin, generics.ListAPIView):
    required_scopes = {**READ, "POST": (TokenScope.SUBMIT,)}
    serializer_class = RequestSerializer
    parser_classes = [MultiPartParser]

    def get_queryset(self):
        return _requests_for(self.request.user)

    @extend_schema(
        request={"multipart/form-data": SubmitSerializer},
        responses={201: RequestSerializer, 400: OpenApiResponse(description="Refused, with the reason")},
        summary="Submit a crate as a new request",
    )
    def post(self, request):
        # Who may submit is settled before the upload is read.
        crate_permissions.check_submit_requests(request.user)
        incoming = SubmitSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        created = services.submit_request(
            by=request.user,
            project=data["project"],
            tres=data["tres"],
            title=data["title"],
            description=data["description"],
            upload=data["crate"],
        )
        return Response(
            RequestSerializer(_requests_for(request.user).get(pk=created.pk)).data,
            status=status.HTTP_201_CREATED,
        )


def _form_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


class RequestBuild(PersonAPIMixin, APIView):
    required_scopes = {"POST": (TokenScope.SUBMIT,)}
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        request={"application/json": BuildSerializer, "multipart/form-data": BuildSerializer},
        responses={201: RequestSerializer, 400: OpenApiResponse(description="Refused, with the reason")},
        summary="Have the portal build the crate from an approved workflow and its inputs, and submit it",
    )
    def post(self, request):
        crate_permissions.check_submit_requests(request.user)
        incoming = BuildSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        # The web builder's form holds every rule (approvals, datasets, typed inputs): the API uses it too.
        form_data = {
            "project": data["project"].pk,
            "tres": [t.pk for t in data["tres"]],
            "title": data["title"],
            "description": data["description"],
            "workflow": data["workflow"],
            "datasets": list(
                Dataset.objects.filter(identifier__in=data["datasets"], tre__in=data["tres"]).values_list(
                    "pk", flat=True
                )
            ),
        }
        unknown = set(data["datasets"]) - set(
            Dataset.objects.filter(pk__in=form_data["datasets"]).values_list("identifier", flat=True)
        )
        if unknown:
            raise DRFValidationError(
                {"datasets": [f"Not held by the chosen TREs: {', '.join(sorted(unknown))}."]}
            )
        workflow = ApprovedWorkflow.objects.filter(pk=data["workflow"]).first()
        files = {key: f for key, f in request.FILES.items() if key.startswith("input_")}
        if workflow is not None and workflow.inputs is not None:
            form_data |= {f"input_{name}": _form_value(value) for name, value in data["inputs"].items()}
            declared = {entry["name"] for entry in workflow.inputs}
            strays = sorted(
                {name for name in data["inputs"] if name not in declared}
                | {key.removeprefix("input_") for key in files if key.removeprefix("input_") not in declared}
            )
            if strays:
                offered = ", ".join(sorted(declared)) or "no inputs"
                raise DRFValidationError(
                    {
                        "inputs": {
                            name: [f"{workflow} has no input called {name!r}; it takes {offered}."]
                            for name in strays
                        }
                    }
                )
        else:
            form_data["parameters"] = "\n".join(f"{k}={_form_value(v)}" for k, v in data["inputs"].items())
            uploads = request.FILES.getlist("inputs")
            files = {"inputs": uploads} if uploads else {}
        form = BuildRequestForm(form_data, _multi(files), user=request.user)
        if not form.is_valid():
            errors, inputs = {}, {}
            for field, problems in form.errors.items():
                if field.startswith("input_"):
                    inputs[field.removeprefix("input_")] = problems
                else:
                    errors["detail" if field == "__all__" else field] = problems
            if inputs:
                errors["inputs"] = inputs
            raise DRFValidationError(errors)
        cleaned = form.cleaned_data
        with tempfile.TemporaryDirectory(prefix="build-") as scratch:

            def build_and_submit():
                zip_path = builder.build_for_request(
                    user=request.user,
                    project=cleaned["project"],
                    tres=list(cleaned["tres"]),
                    workflow=cleaned["workflow"],
                    datasets=list(cleaned["datasets"]),
                    parameters=cleaned["parameters"],
                    inputs=cleaned["inputs"],
                    title=cleaned["title"],
                    description=cleaned["description"],
                    scratch=Path(scratch),
                )
                with zip_path.open("rb") as handle:
                    return services.submit_request(
                        by=request.user,
                        project=cleaned["project"],
                        tres=list(cleaned["tres"]),
                        title=cleaned["title"],
                        description=cleaned["description"],
                        upload=File(handle, name=zip_path.name),
                    )

            created = build_and_submit()
        return Response(
            RequestSerializer(_requests_for(request.user).get(pk=created.pk)).data,
            status=status.HTTP_201_CREATED,
        )


def _multi(files):
    """Uploads as the form expects them (a MultiValueDict: several files under one name)."""
    result = MultiValueDict()
    for key, value in files.items():
        if isinstance(value, list):
            result.setlist(key, value)
        else:
            result[key] = value
    return result


class RequestDetail(PersonAPIMixin, generics.RetrieveAPIView):
    required_scopes = READ
    serializer_class = RequestSerializer

    def get_queryset(self):
        return _requests_for(self.request.user)


class RequestResubmit(PersonAPIMixin, APIView):
    required_scopes = {"POST": (TokenScope.SUBMIT,)}
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": ResubmitSerializer},
        responses={201: VersionSerializer},
        summary="Send a corrected crate as a new version",
    )
    def post(self, request, pk):
        target = generics.get_object_or_404(_requests_for(request.user), pk=pk)
        crate_permissions.check_resubmit(request.user, target)
        incoming = ResubmitSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        version = services.add_version(
            target,
            by=request.user,
            upload=incoming.validated_data["crate"],
            message=incoming.validated_data["message"],
        )
        return Response(VersionSerializer(version).data, status=status.HTTP_201_CREATED)

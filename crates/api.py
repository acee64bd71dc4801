"""Researcher REST API for requests: submit a crate, follow it, resubmit."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied as DRFPermissionDenied
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from crates import permissions as crate_permissions
from crates import services
from crates.fivesafes.errors import CrateRefused
from crates.models import Job, Request, RequestVersion
from portal.api.permissions import READ
from portal.api.views import PersonAPIMixin
from portal.models import TRE, Project, TokenScope


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


class ResubmitSerializer(serializers.Serializer):
    crate = serializers.FileField()
    message = serializers.CharField(required=False, allow_blank=True, default="")


def _domain_errors(call):
    try:
        return call()
    except PermissionDenied as exc:
        raise DRFPermissionDenied(str(exc)) from exc
    except ValidationError as exc:
        raise DRFValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        ) from exc
    except CrateRefused as refusal:
        raise DRFValidationError(
            {"crate": [refusal.message], "code": refusal.code, "where": refusal.where}
        ) from refusal


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
        created = _domain_errors(
            lambda: services.submit_request(
                by=request.user,
                project=data["project"],
                tres=data["tres"],
                title=data["title"],
                description=data["description"],
                upload=data["crate"],
            )
        )
        return Response(
            RequestSerializer(_requests_for(request.user).get(pk=created.pk)).data,
            status=status.HTTP_201_CREATED,
        )


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
        version = _domain_errors(
            lambda: services.add_version(
                target,
                by=request.user,
                upload=incoming.validated_data["crate"],
                message=incoming.validated_data["message"],
            )
        )
        return Response(VersionSerializer(version).data, status=status.HTTP_201_CREATED)

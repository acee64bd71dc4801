"""The TRE-agent API (/api/v1/agent/): claim, heartbeat, report, download, upload, reconcile.

Agents authenticate with their own token (`Authorization: Bearer fsa_...`) and are Agent rows, not
users. Each view opts in to that authentication; the API's default is to deny. Views translate HTTP
to one `crates.dispatch` call and back; refusals are `{"detail": ..., "code": ...}` bodies.
"""

import os
import shutil
import tempfile
from base64 import b64encode
from pathlib import Path

from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import authentication, exceptions, serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from crates import dispatch
from crates.models import Agent, ResultUpload

TAG = "TRE agent"


# --- Authentication ----------------------------------------------------------------------------


class AgentTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer fsa_...`: an agent's token, until it is rotated or revoked."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key.startswith(Agent.TOKEN_PREFIX):
            raise exceptions.AuthenticationFailed(
                f"The TRE-agent API needs an agent token: 'Authorization: Bearer {Agent.TOKEN_PREFIX}...'."
            )
        agent = dispatch.agent_for_token(key)
        if agent is None:
            raise exceptions.AuthenticationFailed("The agent token is unknown or revoked.")
        dispatch.touch(agent, version=request.headers.get("User-Agent", ""))
        return agent, None

    def authenticate_header(self, request):
        return self.keyword


class AgentTokenScheme(OpenApiAuthenticationExtension):
    target_class = AgentTokenAuthentication
    name = "agentToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A TRE agent's token (fsa_...), issued on the TRE's agents page and shown once.",
        }


class IsAgent(BasePermission):
    message = "Only TRE agents can use this endpoint."

    def has_permission(self, request, view):
        return getattr(request.user, "is_agent", False)


# --- Errors ------------------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """A refusal, as application/problem+json (RFC 9457). For a request that does not validate (code
    "invalid") `errors` gives the messages of each field under the field's name."""

    type = serializers.CharField(help_text='"about:blank": the status says what kind of problem it is.')
    title = serializers.CharField(help_text="The HTTP status in words.")
    status = serializers.IntegerField()
    detail = serializers.CharField(help_text="What was refused and why, for the person or operator.")
    instance = serializers.CharField(required=False, help_text="The path that was called.")
    code = serializers.CharField(required=False, help_text="A stable identifier of the refusal.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="For a request that does not validate: the messages of each field.",
    )


ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="The request is malformed."),
    401: OpenApiResponse(ErrorSerializer, description="The agent token is missing, unknown or revoked."),
    404: OpenApiResponse(ErrorSerializer, description="No such job at the agent's TRE."),
    409: OpenApiResponse(
        ErrorSerializer,
        description="The fencing token is stale, the lease has expired or ended, or the job is not in a "
        "state that allows this. Stop working on the job.",
    ),
}


class AgentAPIView(APIView):
    authentication_classes = [AgentTokenAuthentication]
    permission_classes = [IsAgent]

    def handle_exception(self, exc):
        if self._malformed(exc) and "pk" in self.kwargs and getattr(self.request.user, "is_agent", False):
            # A job of another TRE does not exist for this agent, whatever else is wrong with the call
            # (checked only on refusal, so that a good call costs no extra query).
            try:
                dispatch.check_job_at_tre(self.request.user, self.kwargs["pk"])
            except dispatch.DispatchError as missing:
                exc = missing
        return super().handle_exception(exc)

    @staticmethod
    def _malformed(exc):
        return isinstance(exc, exceptions.ValidationError) or (
            isinstance(exc, dispatch.DispatchError) and exc.code == "fencing_token_missing"
        )


def _fencing_token(request):
    raw = request.headers.get("Fencing-Token", "")
    if not raw.strip().isdigit():
        raise dispatch.DispatchError(
            "Send the fencing token of your claim in the Fencing-Token header.", code="fencing_token_missing"
        )
    return int(raw)


FENCING_HEADER = OpenApiParameter(
    "Fencing-Token",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    required=True,
    description="The fencing token of the agent's claim on the job.",
)


# --- Serializers -------------------------------------------------------------------------------


class ClaimRequestSerializer(serializers.Serializer):
    wait_seconds = serializers.FloatField(
        min_value=0,
        max_value=600,
        default=0,
        help_text="Wait up to this long for a job (capped by the portal's PORTAL_AGENT_CLAIM_MAX_WAIT_SECONDS).",
    )


class WorkflowSerializer(serializers.Serializer):
    id = serializers.CharField(source="workflow_id", help_text="The workflow id as the portal names it.")
    version = serializers.CharField()
    name = serializers.CharField()
    sha256 = serializers.CharField(help_text="SHA-256 of the approved Workflow RO-Crate zip.")
    language = serializers.CharField()
    executor = serializers.CharField()
    settings = serializers.DictField(
        read_only=True,
        help_text="What this TRE approved for the workflow's analytics service: for datashield "
        "{profile, functions}, for bitfount {pods, task, project_id}, for cwl {containers: the image "
        "digests it may run} or empty; empty for other executors.",
    )


class AgentPolicySerializer(serializers.Serializer):
    """What the agent must honour of the TRE's disclosure policy (with the project's agreement overrides)."""

    min_cell_count = serializers.IntegerField(
        help_text="Counts below this are suppressed before they leave the TRE; the portal fails them."
    )
    zeros_disclosive = serializers.BooleanField(help_text="Whether a zero count is disclosive.")
    rounding_base = serializers.IntegerField(
        help_text="Published counts must be multiples of this; 0 means no rounding is required."
    )


class LeasedJobSerializer(serializers.Serializer):
    """A job leased to the agent, with everything needed to run it."""

    # It serializes a crates.claiming.Claim.

    id = serializers.IntegerField(source="job.pk")
    status = serializers.CharField(source="job.status")
    request = serializers.IntegerField(source="job.request_id")
    title = serializers.CharField(source="job.request.title")
    project = serializers.CharField(source="job.request.project.identifier")
    tre = serializers.CharField(source="job.tre.slug")
    external_identifier = serializers.CharField(source="job.version.external_identifier")
    fencing_token = serializers.IntegerField(source="lease.fencing_token")
    attempt = serializers.IntegerField(source="lease.attempts")
    max_attempts = serializers.SerializerMethodField()
    claimed_at = serializers.DateTimeField(source="lease.claimed_at")
    lease_expires_at = serializers.DateTimeField(source="lease.expires_at", allow_null=True)
    heartbeat_seconds = serializers.SerializerMethodField()
    cancel_requested = serializers.SerializerMethodField()
    cancel_reason = serializers.CharField(source="lease.cancel_reason")
    workflow = serializers.SerializerMethodField()
    crate_url = serializers.SerializerMethodField()
    workflow_url = serializers.SerializerMethodField()
    results_url = serializers.SerializerMethodField()
    results_max_bytes = serializers.SerializerMethodField()
    policy = AgentPolicySerializer(
        help_text="The disclosure policy the agent must honour; an agent that cannot honour it refuses the job."
    )

    def _url(self, name, claim):
        return self.context["request"].build_absolute_uri(reverse(name, args=[claim.job.pk]))

    def get_max_attempts(self, claim) -> int:
        return dispatch.max_attempts()

    def get_heartbeat_seconds(self, claim) -> int:
        return dispatch.heartbeat_seconds()

    def get_cancel_requested(self, claim) -> bool:
        return claim.lease.cancel_requested_at is not None

    @extend_schema_field(WorkflowSerializer(allow_null=True))
    def get_workflow(self, claim):
        """The approved workflow to run, or null when the job has none on this TRE's approved list."""
        if claim.job.workflow is None or not claim.workflow_approved:
            return None
        workflow = claim.job.workflow
        # WorkflowSerializer's fields (it describes this in the schema), all plain text but the settings.
        return {
            "id": workflow.workflow_id,
            "version": workflow.version,
            "name": workflow.name,
            "sha256": workflow.sha256,
            "language": workflow.language,
            "executor": workflow.executor,
            "settings": claim.workflow_settings or {},
        }

    def get_crate_url(self, claim) -> str:
        return self._url("api_agent_crate", claim)

    def get_workflow_url(self, claim) -> str:
        return self._url("api_agent_workflow", claim)

    def get_results_url(self, claim) -> str:
        return self._url("api_agent_results", claim)

    def get_results_max_bytes(self, claim) -> int:
        return dispatch.results_max_bytes()


class LeaseSerializer(serializers.Serializer):
    """The state of the agent's lease on a job."""

    id = serializers.IntegerField(source="job_id")
    status = serializers.CharField(source="job.status")
    fencing_token = serializers.IntegerField()
    attempt = serializers.IntegerField(source="attempts")
    lease_expires_at = serializers.DateTimeField(source="expires_at", allow_null=True)
    cancel_requested = serializers.SerializerMethodField()
    cancel_reason = serializers.CharField()

    def get_cancel_requested(self, lease) -> bool:
        return lease.cancel_requested_at is not None


class HeartbeatSerializer(serializers.Serializer):
    fencing_token = serializers.IntegerField(min_value=0)
    message = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="Progress, for the TRE's officers."
    )


class ReportSerializer(serializers.Serializer):
    fencing_token = serializers.IntegerField(min_value=0)
    status = serializers.ChoiceField(
        choices=["running", "failed", "cancelled", "completed"],
        help_text="running: the workflow started; failed: it failed; cancelled: acknowledges a requested "
        "cancellation; completed: confirms a run whose results crate was uploaded.",
    )
    started_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    finished_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    message = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=2000,
        help_text="Written by the agent, never copied from engine output (which may quote data).",
    )


class ResultUploadSerializer(serializers.ModelSerializer):
    job_status = serializers.CharField(source="job.status")

    class Meta:
        model = ResultUpload
        fields = ["id", "job", "status", "idempotency_key", "sha256", "size", "verified_at", "job_status"]


class ReconcileSerializer(serializers.Serializer):
    jobs = LeasedJobSerializer(many=True, help_text="Every job the portal believes this agent holds.")


# --- Views -------------------------------------------------------------------------------------


class ClaimView(AgentAPIView):
    @extend_schema(
        tags=[TAG],
        summary="Claim the next queued job of the agent's TRE (long poll)",
        request=ClaimRequestSerializer,
        responses={
            200: LeasedJobSerializer,
            204: OpenApiResponse(description="No job was queued within the wait."),
            400: ERRORS[400],
            401: ERRORS[401],
        },
    )
    def post(self, request):
        incoming = ClaimRequestSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        claim = dispatch.claim_next(request.user, wait=incoming.validated_data["wait_seconds"])
        if claim is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(LeasedJobSerializer(claim, context={"request": request}).data)


class HeartbeatView(AgentAPIView):
    @extend_schema(
        tags=[TAG],
        summary="Renew the lease on a job; learn whether it was cancelled",
        request=HeartbeatSerializer,
        responses={200: LeaseSerializer, **ERRORS},
    )
    def post(self, request, pk):
        incoming = HeartbeatSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        lease = dispatch.heartbeat(
            request.user,
            pk,
            fencing_token=incoming.validated_data["fencing_token"],
            message=incoming.validated_data.get("message"),
        )
        return Response(LeaseSerializer(lease).data)


class StatusView(AgentAPIView):
    @extend_schema(
        tags=[TAG],
        summary="Report that a job is running, failed, cancelled or completed",
        request=ReportSerializer,
        responses={200: LeaseSerializer, **ERRORS},
    )
    def post(self, request, pk):
        incoming = ReportSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        lease = dispatch.report_status(request.user, pk, **incoming.validated_data)
        return Response(LeaseSerializer(lease).data)


def _file_response(handle, *, filename, sha256, size):
    response = FileResponse(handle, as_attachment=True, filename=filename, content_type="application/zip")
    response["Content-Length"] = str(size)
    response["X-Content-SHA256"] = sha256
    response["Repr-Digest"] = f"sha-256=:{b64encode(bytes.fromhex(sha256)).decode()}:"
    return response


DOWNLOAD_RESPONSES = {
    (200, "application/zip"): OpenApiResponse(
        OpenApiTypes.BINARY,
        description="The crate; its SHA-256 is in X-Content-SHA256 (hex) and Repr-Digest.",
    ),
    **ERRORS,
}
WORKFLOW_RESPONSES = {
    **DOWNLOAD_RESPONSES,
    403: OpenApiResponse(
        ErrorSerializer,
        description="The job's workflow is not in the registry or not on the TRE's approved list.",
    ),
    404: OpenApiResponse(ErrorSerializer, description="No such job, or no crate stored for its workflow."),
}


class CrateView(AgentAPIView):
    @extend_schema(
        tags=[TAG],
        summary="Download the job's crate (with this TRE's review actions)",
        parameters=[FENCING_HEADER],
        responses=DOWNLOAD_RESPONSES,
    )
    def get(self, request, pk):
        scratch = Path(tempfile.mkdtemp(prefix="agent-crate-"))
        try:
            path, sha256 = dispatch.export_crate_for(
                request.user, pk, fencing_token=_fencing_token(request), dest_dir=scratch
            )
            handle = path.open("rb")
            size = os.fstat(handle.fileno()).st_size
        finally:
            # The open handle keeps the file readable; the directory goes now.
            shutil.rmtree(scratch, ignore_errors=True)
        return _file_response(handle, filename=f"job-{pk}.zip", sha256=sha256, size=size)


class WorkflowView(AgentAPIView):
    @extend_schema(
        tags=[TAG],
        summary="Download the job's approved Workflow RO-Crate",
        parameters=[FENCING_HEADER],
        responses=WORKFLOW_RESPONSES,
    )
    def get(self, request, pk):
        workflow = dispatch.workflow_for(request.user, pk, fencing_token=_fencing_token(request))
        handle = workflow.crate.open("rb")
        return _file_response(
            handle, filename=f"workflow-{workflow.pk}.zip", sha256=workflow.sha256, size=workflow.crate.size
        )


class ZipParser(BaseParser):
    """Documents the upload's media type; the body is streamed by the view, never parsed."""

    media_type = "application/zip"

    def parse(self, stream, media_type=None, parser_context=None):
        raise exceptions.ParseError("The results crate is read as a stream.")


class ResultsView(AgentAPIView):
    parser_classes = [ZipParser]

    @extend_schema(
        tags=[TAG],
        summary="Upload the results crate (streamed, idempotent, verified before it is kept)",
        request={"application/zip": OpenApiTypes.BINARY},
        parameters=[
            FENCING_HEADER,
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="Chosen by the agent per results crate; a retry with the same key returns "
                "the first successful result.",
            ),
            OpenApiParameter(
                "X-Content-SHA256",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="The crate's SHA-256 (hex); the upload is refused if the bytes differ.",
            ),
        ],
        responses={
            201: ResultUploadSerializer,
            200: OpenApiResponse(ResultUploadSerializer, description="A retry: the first result."),
            413: OpenApiResponse(ErrorSerializer, description="Larger than the portal accepts."),
            422: OpenApiResponse(
                ErrorSerializer,
                description="Checksum mismatch, or not a valid Five Safes RO-Crate of this job; nothing kept.",
            ),
            **ERRORS,
        },
    )
    def put(self, request, pk):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0) or None
        except ValueError:
            length = None
        upload, replayed = dispatch.receive_results(
            request.user,
            pk,
            fencing_token=_fencing_token(request),
            idempotency_key=request.headers.get("Idempotency-Key"),
            declared_sha256=request.headers.get("X-Content-SHA256"),
            stream=request.stream,
            length=length,
        )
        response = Response(
            ResultUploadSerializer(upload).data,
            status=status.HTTP_200_OK if replayed else status.HTTP_201_CREATED,
        )
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response


class ReconcileView(AgentAPIView):
    @extend_schema(
        tags=[TAG],
        summary="What the portal believes this agent holds (call on start-up)",
        responses={200: ReconcileSerializer, 401: ERRORS[401]},
    )
    def get(self, request):
        claims = dispatch.reconcile(request.user)
        return Response(ReconcileSerializer({"jobs": claims}, context={"request": request}).data)

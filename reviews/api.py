"""REST API for reviews: officers' queues, evidence and decisions; messages and cancellation for both sides."""

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied as DRFPermissionDenied
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from crates import permissions as crate_permissions
from crates.models import Job
from portal import audit, permissions
from portal.api.permissions import READ
from portal.api.views import PersonAPIMixin
from portal.models import TokenScope
from reviews import evidence, federation, outputs, services
from reviews.models import CombinedRelease, Message, Outcome, OutputFile, OutputVote, Step, StepDecision
from reviews.permissions import (
    can_check_outputs,
    can_decide_combined,
    can_download_combined,
    can_download_output,
    can_review,
    check_act_as_researcher,
    check_check_outputs,
    check_combine,
    check_decide_combined,
    check_post_message,
    check_review,
    check_view_outputs,
)


class FindingSerializer(serializers.Serializer):
    check = serializers.CharField()
    ok = serializers.BooleanField()
    message = serializers.CharField()


class DecisionSerializer(serializers.ModelSerializer):
    decided_by = serializers.EmailField(source="decided_by.email")
    version = serializers.IntegerField(source="version.number")

    class Meta:
        model = StepDecision
        fields = ["step", "outcome", "rationale", "evidence", "decided_by", "decided_at", "version"]


class MessageSerializer(serializers.ModelSerializer):
    author = serializers.EmailField(source="author.email", read_only=True)

    class Meta:
        model = Message
        fields = ["id", "author", "body", "created_at"]
        read_only_fields = ["id", "author", "created_at"]


class JobSummarySerializer(serializers.ModelSerializer):
    tre = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    request = serializers.IntegerField(source="request_id")
    title = serializers.CharField(source="request.title")
    project = serializers.CharField(source="request.project.identifier")
    submitter = serializers.EmailField(source="request.submitter.email")
    version = serializers.IntegerField(source="version.number")

    class Meta:
        model = Job
        fields = [
            "id",
            "request",
            "title",
            "project",
            "submitter",
            "tre",
            "status",
            "status_changed_at",
            "version",
        ]


class JobDetailSerializer(JobSummarySerializer):
    suspended_reason = serializers.CharField()
    summary = serializers.JSONField(source="version.summary")
    decisions = serializers.SerializerMethodField()
    evidence = serializers.SerializerMethodField()
    messages = MessageSerializer(many=True, read_only=True)

    class Meta(JobSummarySerializer.Meta):
        fields = [
            *JobSummarySerializer.Meta.fields,
            "suspended_reason",
            "summary",
            "decisions",
            "evidence",
            "messages",
        ]

    def get_decisions(self, job) -> list[dict]:
        return DecisionSerializer(job.decisions.select_related("decided_by", "version"), many=True).data

    def get_evidence(self, job) -> dict:
        """Live evidence per step, for the TRE's officers while the job is in review."""
        user = self.context["request"].user
        if not can_review(user, job) or job.status != Job.Status.IN_REVIEW:
            return {}
        return evidence.all_evidence(job)


class DecideSerializer(serializers.Serializer):
    step = serializers.ChoiceField(choices=Step.choices)
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    rationale = serializers.CharField(required=False, allow_blank=True, default="")


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField()


def _jobs_for(user):
    return Job.objects.filter(request__in=crate_permissions.visible_requests(user)).select_related(
        "tre", "request__project", "request__submitter", "version"
    )


class ReviewQueue(PersonAPIMixin, generics.ListAPIView):
    """Jobs at the TREs this officer governs, oldest first."""

    required_scopes = READ

    serializer_class = JobSummarySerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("tre", str, description="Only this TRE (slug)"),
            OpenApiParameter("status", str, description="Only jobs in this status"),
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        jobs = Job.objects.filter(tre__in=permissions.tres_governed_by(self.request.user)).select_related(
            "tre", "request__project", "request__submitter", "version"
        )
        if self.request.query_params.get("tre"):
            jobs = jobs.filter(tre__slug=self.request.query_params["tre"])
        wanted = self.request.query_params.get("status")
        jobs = (
            jobs.filter(status=wanted) if wanted else jobs.filter(status__in=["awaiting_review", "in_review"])
        )
        return jobs.order_by("status_changed_at")


class JobDetail(PersonAPIMixin, generics.RetrieveAPIView):
    required_scopes = READ
    serializer_class = JobDetailSerializer

    def get_queryset(self):
        return _jobs_for(self.request.user).prefetch_related("messages__author")


class JobActionMixin(PersonAPIMixin):
    def job(self, pk):
        return generics.get_object_or_404(_jobs_for(self.request.user), pk=pk)

    def done(self, job):
        job.refresh_from_db()
        return Response(JobDetailSerializer(job, context={"request": self.request}).data)


class StartReview(JobActionMixin, APIView):
    required_scopes = {"POST": (TokenScope.REVIEW,)}

    @extend_schema(request=None, responses=JobDetailSerializer, summary="Start the review of a job")
    def post(self, request, pk):
        job = self.job(pk)
        services.start_review(job, by=request.user)
        return self.done(job)


class Decide(JobActionMixin, APIView):
    required_scopes = {"POST": (TokenScope.REVIEW,)}

    @extend_schema(request=DecideSerializer, responses=JobDetailSerializer, summary="Decide one review step")
    def post(self, request, pk):
        job = self.job(pk)
        check_review(request.user, job)  # who may, before what they sent
        incoming = DecideSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        services.decide_step(job, data["step"], data["outcome"], data["rationale"], by=request.user)
        return self.done(job)


class PostMessage(JobActionMixin, APIView):
    required_scopes = {"POST": (TokenScope.SUBMIT, TokenScope.REVIEW, TokenScope.CHECK)}

    @extend_schema(request=MessageSerializer, responses={201: MessageSerializer}, summary="Write on a job")
    def post(self, request, pk):
        job = self.job(pk)
        check_post_message(request.user, job)
        incoming = MessageSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        message = services.post_message(job, incoming.validated_data["body"], by=request.user)
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)


class Cancel(JobActionMixin, APIView):
    required_scopes = {"POST": (TokenScope.SUBMIT, TokenScope.REVIEW)}

    @extend_schema(request=ReasonSerializer, responses=JobDetailSerializer, summary="Cancel a job")
    def post(self, request, pk):
        job = self.job(pk)
        crate_permissions.check_cancel(request.user, job)
        incoming = ReasonSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        services.cancel(job, by=request.user, reason=incoming.validated_data["reason"])
        return self.done(job)


# --- Outputs -------------------------------------------------------------------------------------


class OutputSerializer(serializers.ModelSerializer):
    name = serializers.CharField(read_only=True)
    sdc = serializers.SerializerMethodField(
        help_text="The automated disclosure checks. Before release, anyone but the TRE's output checkers "
        "sees verdicts, rule names and cell positions only (`redacted: true`), never the flagged values."
    )
    votes = serializers.SerializerMethodField()
    download = serializers.SerializerMethodField()

    class Meta:
        model = OutputFile
        fields = [
            "id",
            "name",
            "path",
            "size",
            "sha256",
            "status",
            "round",
            "settlement",
            "sdc_verdict",
            "sdc",
            "policy_version",
            "researcher_context",
            "researcher_justification",
            "released_at",
            "votes",
            "download",
        ]

    def get_sdc(self, output) -> dict:
        return outputs.sdc_visible_to(output, self.context["request"].user)

    def get_votes(self, output) -> list[dict]:
        user = self.context["request"].user
        votes = outputs.votes_visible_to(output, user)
        if not can_check_outputs(user, output.job):
            votes = [v for v in votes if v.for_researcher]
        return [
            {"checker": v.checker.email, "round": v.round, "decision": v.decision, "comment": v.comment}
            for v in votes
        ]

    def get_download(self, output) -> str | None:
        request = self.context["request"]
        if can_download_output(request.user, output):
            # The API's own download, which takes the same token (the page's link wants a browser session).
            return request.build_absolute_uri(reverse("api_output_download", args=[output.pk]))
        return None


class VoteSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=OutputVote.Decision.choices)
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    for_researcher = serializers.BooleanField(required=False, default=False)


class DescribeSerializer(serializers.Serializer):
    context = serializers.CharField(required=False, allow_blank=True, default="")
    justification = serializers.CharField(required=False, allow_blank=True, default="")


class JobOutputs(JobActionMixin, generics.ListAPIView):
    required_scopes = READ
    serializer_class = OutputSerializer
    pagination_class = None

    def get_queryset(self):
        job = self.job(self.kwargs["pk"])
        check_view_outputs(self.request.user, job)  # the question the outputs page asks
        return job.outputs.select_related("job__tre", "job__request__project").prefetch_related(
            "votes__checker"
        )


class OutputActionMixin(PersonAPIMixin):
    def output(self, pk):
        jobs = _jobs_for(self.request.user)
        return generics.get_object_or_404(
            OutputFile.objects.filter(job__in=jobs).select_related("job__tre", "job__request__project"), pk=pk
        )

    def done(self, output):
        output.refresh_from_db()
        return Response(OutputSerializer(output, context={"request": self.request}).data)


class VoteOnOutput(OutputActionMixin, APIView):
    required_scopes = {"POST": (TokenScope.CHECK,)}

    @extend_schema(
        request=VoteSerializer, responses=OutputSerializer, summary="Vote on an output file (checkers)"
    )
    def post(self, request, pk):
        output = self.output(pk)
        check_check_outputs(request.user, output.job)
        incoming = VoteSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        outputs.vote(
            output,
            data["decision"],
            data["comment"],
            for_researcher=data["for_researcher"],
            by=request.user,
        )
        return self.done(output)


class ReleaseOutput(OutputActionMixin, APIView):
    required_scopes = {"POST": (TokenScope.CHECK,)}

    @extend_schema(
        request=None, responses=OutputSerializer, summary="Release an approved output file (checkers)"
    )
    def post(self, request, pk):
        output = self.output(pk)
        outputs.release(output, by=request.user)
        return self.done(output)


class DescribeOutput(OutputActionMixin, APIView):
    required_scopes = {"POST": (TokenScope.SUBMIT,)}

    @extend_schema(
        request=DescribeSerializer,
        responses=OutputSerializer,
        summary="Give context and justification for an output, or answer the checkers (researchers)",
    )
    def post(self, request, pk):
        output = self.output(pk)
        check_act_as_researcher(request.user, output.job)
        incoming = DescribeSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        action = outputs.respond if output.status == OutputFile.Status.CHANGES else outputs.describe
        action(
            output,
            context=incoming.validated_data["context"],
            justification=incoming.validated_data["justification"],
            by=request.user,
        )
        return self.done(output)


class OutputDownload(PersonAPIMixin, APIView):
    """A released output file (or, for its checkers, one under review), with a token."""

    required_scopes = READ

    @extend_schema(
        responses={(200, "application/octet-stream"): bytes},
        summary="Download an output file",
    )
    def get(self, request, pk):
        output = get_object_or_404(
            OutputFile.objects.select_related("job__request__project", "job__tre"),
            pk=pk,
        )
        crate_permissions.check_view_request(request.user, output.job.request)
        if not can_download_output(request.user, output):
            raise DRFPermissionDenied("This output is not released to you.")
        audit.record(
            "outputs.file_downloaded",
            by=request.user,
            obj=output,
            after={"sha256": output.sha256, "through": "api"},
            tre=output.job.tre,
            project=output.job.request.project,
        )
        return FileResponse(output.stored.open("rb"), as_attachment=True, filename=output.name)


# --- Combined (federated) results --------------------------------------------------------------


class CombinedReleaseSerializer(serializers.ModelSerializer):
    """A combination of released tables; the table itself only for checkers and, once released, members."""

    created_by = serializers.EmailField(source="created_by.email", read_only=True)
    decided_by = serializers.EmailField(source="decided_by.email", read_only=True, allow_null=True)
    sources = serializers.SerializerMethodField()
    table = serializers.SerializerMethodField()

    class Meta:
        model = CombinedRelease
        fields = [
            "id",
            "request",
            "status",
            "created_by",
            "created_at",
            "sources",
            "policy_version",
            "policy",
            "sdc_verdict",
            "sdc",
            "differencing",
            "table",
            "sha256",
            "decided_by",
            "decided_at",
            "rationale",
        ]

    def get_sources(self, release) -> list[dict]:
        return [
            {"output": o.pk, "path": o.path, "tre": o.job.tre.slug}
            for o in release.sources.select_related("job__tre").order_by("job__tre__slug", "pk")
        ]

    def get_table(self, release) -> dict | None:
        user = self.context["request"].user
        if can_decide_combined(user, release) or can_download_combined(user, release):
            return release.table
        return None


class CombineSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The released file name, as listed under `combinable`.")


class CombinedListSerializer(serializers.Serializer):
    combinable = serializers.ListField(child=serializers.CharField())
    releases = CombinedReleaseSerializer(many=True)


class CombinedDecisionSerializer(serializers.Serializer):
    release = serializers.BooleanField(help_text="True to release the combined table, false to withhold it.")
    rationale = serializers.CharField(required=False, allow_blank=True, default="")


class RequestCombined(PersonAPIMixin, APIView):
    required_scopes = {"GET": (TokenScope.READ,), "POST": (TokenScope.SUBMIT, TokenScope.CHECK)}

    def _request(self, pk):
        return generics.get_object_or_404(crate_permissions.visible_requests(self.request.user), pk=pk)

    @extend_schema(responses=CombinedListSerializer, summary="Released tables that combine, and combinations")
    def get(self, request, pk):
        req = self._request(pk)
        data = {
            "combinable": sorted(federation.combinable(req)),
            "releases": req.combined_releases.select_related("created_by", "decided_by"),
        }
        return Response(CombinedListSerializer(data, context={"request": request}).data)

    @extend_schema(
        request=CombineSerializer,
        responses={201: CombinedReleaseSerializer},
        summary="Combine one released table across the request's TREs",
    )
    def post(self, request, pk):
        req = self._request(pk)
        check_combine(request.user, list(req.jobs.select_related("tre", "request__project")))
        incoming = CombineSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        release = federation.combine(req, incoming.validated_data["name"], by=request.user)
        return Response(
            CombinedReleaseSerializer(release, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


class PooledRegressionSerializer(serializers.Serializer):
    formula = serializers.CharField()
    family = serializers.CharField()
    coefficients_sent = serializers.ListField(child=serializers.FloatField())
    coefficients_next = serializers.ListField(child=serializers.FloatField())
    deviance = serializers.FloatField()
    n_valid = serializers.IntegerField()
    per_tre_n = serializers.DictField(child=serializers.IntegerField())
    converged = serializers.BooleanField()
    next_call = serializers.CharField(help_text="The glmDS2 call to send to every TRE in the next round.")


class RequestRegression(PersonAPIMixin, APIView):
    """One round of a DataSHIELD regression pooled across the request's TREs (docs/executors/datashield.md)."""

    required_scopes = {"GET": (TokenScope.READ,)}

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "previous_deviance",
                float,
                description="The pooled deviance of the round before, to tell whether the fit has converged.",
            )
        ],
        responses={
            200: PooledRegressionSerializer,
            400: OpenApiResponse(
                description="Nothing to pool, answers that may not be pooled, or a bad deviance"
            ),
        },
        summary="Pool the TREs' released regression answers into the next round",
    )
    def get(self, request, pk):
        req = generics.get_object_or_404(crate_permissions.visible_requests(request.user), pk=pk)
        check_combine(request.user, list(req.jobs.select_related("tre", "request__project")))
        previous = request.query_params.get("previous_deviance")
        try:
            previous = float(previous) if previous not in (None, "") else None
        except ValueError:
            raise DRFValidationError(
                {"previous_deviance": "Give the last round's deviance as a number."}
            ) from None
        pooled = federation.glm_round(req, by=request.user, previous_deviance=previous)
        return Response(PooledRegressionSerializer(pooled).data)


class CombinedMixin(PersonAPIMixin):
    def combined(self, pk):
        visible = crate_permissions.visible_requests(self.request.user)
        return generics.get_object_or_404(
            CombinedRelease.objects.filter(request__in=visible).select_related(
                "request__project", "created_by"
            ),
            pk=pk,
        )


class CombinedDetail(CombinedMixin, APIView):
    required_scopes = READ

    @extend_schema(responses=CombinedReleaseSerializer, summary="A combined table and its checks")
    def get(self, request, pk):
        release = self.combined(pk)
        return Response(CombinedReleaseSerializer(release, context={"request": request}).data)


class DecideCombined(CombinedMixin, APIView):
    required_scopes = {"POST": (TokenScope.CHECK,)}

    @extend_schema(
        request=CombinedDecisionSerializer,
        responses=CombinedReleaseSerializer,
        summary="Release or withhold a combined table (output checkers)",
    )
    def post(self, request, pk):
        release = self.combined(pk)
        check_decide_combined(request.user, release)
        incoming = CombinedDecisionSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        federation.decide(release, data["release"], data["rationale"], by=request.user)
        release.refresh_from_db()
        return Response(CombinedReleaseSerializer(release, context={"request": request}).data)

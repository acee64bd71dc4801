"""Webhook subscriptions, their delivery log and replay (/api/v1/webhooks/)."""

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import webhooks
from portal.api.views import PersonAPIMixin
from portal.models import TRE, Project, TokenScope, WebhookDelivery, WebhookEndpoint, WebhookEventType

# Anyone may watch what they can see; writing a subscription needs a token that may act.
WRITE = (TokenScope.SUBMIT, TokenScope.REVIEW, TokenScope.CHECK)


class WebhookSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(
        slug_field="identifier", queryset=Project.objects.all(), required=False, allow_null=True
    )
    tre = serializers.SlugRelatedField(
        slug_field="slug", queryset=TRE.objects.all(), required=False, allow_null=True
    )
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEventType.choices), required=False, default=list
    )
    secret = serializers.SerializerMethodField(
        help_text="The signing secret (whsec_...): verify each delivery with it, the Standard Webhooks way."
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "project",
            "tre",
            "event_types",
            "active",
            "consecutive_failures",
            "disabled_at",
            "disabled_reason",
            "created_at",
            "secret",
        ]
        read_only_fields = ["active", "consecutive_failures", "disabled_at", "disabled_reason", "created_at"]

    def get_secret(self, endpoint) -> str:
        return endpoint.secret


class DeliverySerializer(serializers.ModelSerializer):
    replay_of = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "message_id",
            "event_type",
            "status",
            "attempts",
            "created_at",
            "next_attempt_at",
            "last_attempt_at",
            "delivered_at",
            "response_status",
            "last_error",
            "replay_of",
            "payload",
        ]


def _run(call):
    try:
        return call()
    except ValidationError as error:
        raise DRFValidationError({"detail": " ".join(error.messages)}) from error


def _own_endpoints(user):
    return WebhookEndpoint.objects.filter(owner=user).select_related("project", "tre")


class WebhookList(PersonAPIMixin, generics.ListCreateAPIView):
    required_scopes = {"GET": (TokenScope.READ,), "POST": WRITE}
    serializer_class = WebhookSerializer

    def get_queryset(self):
        return _own_endpoints(self.request.user)

    @extend_schema(summary="Subscribe a URL to the events of one project or one TRE")
    def post(self, request):
        incoming = WebhookSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        endpoint = _run(
            lambda: webhooks.create_endpoint(
                by=request.user,
                url=data["url"],
                project=data.get("project"),
                tre=data.get("tre"),
                event_types=data.get("event_types") or (),
                description=data.get("description", ""),
            )
        )
        return Response(WebhookSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookDetail(PersonAPIMixin, generics.RetrieveDestroyAPIView):
    required_scopes = {"GET": (TokenScope.READ,), "DELETE": WRITE}
    serializer_class = WebhookSerializer

    def get_queryset(self):
        return _own_endpoints(self.request.user)

    def perform_destroy(self, endpoint):
        webhooks.delete_endpoint(endpoint, by=self.request.user)


class WebhookEnable(PersonAPIMixin, APIView):
    required_scopes = {"POST": WRITE}

    @extend_schema(request=None, responses=WebhookSerializer, summary="Switch a webhook on again")
    def post(self, request, pk):
        endpoint = get_object_or_404(_own_endpoints(request.user), pk=pk)
        return Response(WebhookSerializer(webhooks.enable_endpoint(endpoint, by=request.user)).data)


class WebhookPing(PersonAPIMixin, APIView):
    required_scopes = {"POST": WRITE}

    @extend_schema(request=None, responses={202: DeliverySerializer}, summary="Send a test message")
    def post(self, request, pk):
        endpoint = get_object_or_404(_own_endpoints(request.user), pk=pk)
        delivery = webhooks.send_ping(endpoint, by=request.user)
        delivery.refresh_from_db()
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class DeliveryList(PersonAPIMixin, generics.ListAPIView):
    required_scopes = {"GET": (TokenScope.READ,)}
    serializer_class = DeliverySerializer

    def get_queryset(self):
        endpoint = get_object_or_404(_own_endpoints(self.request.user), pk=self.kwargs["pk"])
        return endpoint.deliveries.all()


class DeliveryReplay(PersonAPIMixin, APIView):
    required_scopes = {"POST": WRITE}

    @extend_schema(
        request=None, responses={202: DeliverySerializer}, summary="Send a delivered or failed message again"
    )
    def post(self, request, pk):
        delivery = get_object_or_404(
            WebhookDelivery.objects.select_related("endpoint").filter(endpoint__owner=request.user), pk=pk
        )
        again = webhooks.replay(delivery, by=request.user)
        again.refresh_from_db()
        return Response(DeliverySerializer(again).data, status=status.HTTP_202_ACCEPTED)

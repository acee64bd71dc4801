"""Researcher-facing REST API (personal tokens or the browser session)."""

from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import permissions
from portal.api.authentication import PersonalTokenAuthentication
from portal.api.permissions import READ, RequiredScope
from portal.api.schema import PersonAutoSchema
from portal.api.serializers import MeSerializer, ProjectDetailSerializer, ProjectSerializer, TRESerializer
from portal.models import TRE, Membership, ProjectApproval


class PersonAPIMixin:
    """People authenticate with a personal token, or the browser session (with CSRF). Each view names
    the token scope its methods need (`required_scopes`, portal.api.permissions); none named, none let in."""

    authentication_classes = [PersonalTokenAuthentication, SessionAuthentication]
    permission_classes = [RequiredScope]
    schema = PersonAutoSchema()


class MeView(PersonAPIMixin, APIView):
    required_scopes = READ

    @extend_schema(responses=MeSerializer, summary="Who the token belongs to")
    def get(self, request):
        user = request.user
        data = {"email": user.email, "profile": user.profile, "roles": sorted(permissions.user_roles(user))}
        return Response(MeSerializer(data).data)


class TREList(PersonAPIMixin, generics.ListAPIView):
    required_scopes = READ
    serializer_class = TRESerializer
    queryset = TRE.objects.select_related("organisation").order_by("name")


class ProjectList(PersonAPIMixin, generics.ListAPIView):
    required_scopes = READ
    serializer_class = ProjectSerializer

    def get_queryset(self):
        return (
            permissions.visible_projects(self.request.user)
            .select_related("lead")
            .prefetch_related(Prefetch("approvals", queryset=ProjectApproval.objects.select_related("tre")))
            .order_by("-created_at")
        )


class ProjectDetail(PersonAPIMixin, generics.RetrieveAPIView):
    required_scopes = READ
    serializer_class = ProjectDetailSerializer
    lookup_field = "identifier"

    def get_queryset(self):
        return (
            permissions.visible_projects(self.request.user)
            .select_related("lead")
            .prefetch_related(
                Prefetch("approvals", queryset=ProjectApproval.objects.select_related("tre")),
                Prefetch("memberships", queryset=Membership.objects.select_related("person")),
            )
        )

    def get_object(self):
        project = super().get_object()
        if not permissions.can_see_project_records(self.request.user, project):
            # An applicant, or a lapsed or removed member: their own application, nobody else's.
            project._prefetched_objects_cache["memberships"] = project.memberships.filter(
                person=self.request.user
            ).select_related("person")
        return project

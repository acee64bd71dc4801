from rest_framework import serializers

from portal.models import TRE, Dataset, Membership, Project, ProjectApproval


class TRESerializer(serializers.ModelSerializer):
    organisation = serializers.CharField(source="organisation.name")

    class Meta:
        model = TRE
        fields = ["slug", "name", "organisation", "public_description", "paused"]


class DatasetSerializer(serializers.ModelSerializer):
    tre = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Dataset
        fields = ["id", "identifier", "name", "tre", "sensitivity"]


class ProjectApprovalSerializer(serializers.ModelSerializer):
    tre = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = ProjectApproval
        fields = ["tre", "status", "decided_at"]


class MembershipSerializer(serializers.ModelSerializer):
    person = serializers.EmailField(source="person.email")

    class Meta:
        model = Membership
        fields = ["person", "role", "status", "valid_until"]


class ProjectSerializer(serializers.ModelSerializer):
    lead = serializers.EmailField(source="lead.email")
    approvals = ProjectApprovalSerializer(many=True, read_only=True)

    class Meta:
        model = Project
        fields = [
            "id",
            "identifier",
            "title",
            "lay_summary",
            "public_benefit",
            "technical_summary",
            "lead",
            "status",
            "start_date",
            "end_date",
            "approvals",
        ]


class ProjectDetailSerializer(ProjectSerializer):
    memberships = MembershipSerializer(many=True, read_only=True)

    class Meta(ProjectSerializer.Meta):
        fields = [*ProjectSerializer.Meta.fields, "memberships"]


class MeSerializer(serializers.Serializer):
    email = serializers.EmailField()
    name = serializers.CharField(source="profile.name")
    orcid = serializers.CharField(source="profile.orcid")
    roles = serializers.ListField(child=serializers.CharField())

"""Django admin for federation admins. Audit events are read-only here as everywhere."""

from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from portal.audit import AuditEvent
from portal.models import (
    TRE,
    Accreditation,
    ApprovedWorkflow,
    DataAccessAgreement,
    Dataset,
    Membership,
    MembershipApproval,
    Organisation,
    PersonalToken,
    Profile,
    Project,
    ProjectApproval,
    WorkflowApproval,
)


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "ror_id"]
    search_fields = ["name", "ror_id"]


class DatasetInline(admin.TabularInline):
    model = Dataset
    extra = 0


@admin.register(TRE)
class TREAdmin(GuardedModelAdmin):
    list_display = ["name", "slug", "organisation", "paused"]
    list_select_related = ["organisation"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [DatasetInline]


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "identifier", "tre", "sensitivity", "is_public"]
    list_filter = ["tre", "sensitivity"]
    list_select_related = ["tre"]


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "display_name", "orcid", "affiliation"]
    search_fields = ["user__email", "display_name", "orcid"]
    list_select_related = ["user", "affiliation"]


@admin.register(Accreditation)
class AccreditationAdmin(admin.ModelAdmin):
    list_display = ["person", "kind", "issuer", "valid_from", "valid_until", "verified_at"]
    list_filter = ["kind"]
    list_select_related = ["person"]
    readonly_fields = ["verified_by", "verified_at"]


class ProjectApprovalInline(admin.TabularInline):
    model = ProjectApproval
    extra = 0
    readonly_fields = ["status", "decided_by", "decided_at", "rationale"]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fk_name = "project"


@admin.register(Project)
class ProjectAdmin(GuardedModelAdmin):
    list_display = ["identifier", "title", "lead", "status"]
    list_filter = ["status"]
    search_fields = ["identifier", "title"]
    list_select_related = ["lead"]
    inlines = [ProjectApprovalInline, MembershipInline]


@admin.register(MembershipApproval)
class MembershipApprovalAdmin(admin.ModelAdmin):
    list_display = ["membership", "tre", "status", "decided_by", "decided_at"]
    list_select_related = ["membership__person", "membership__project", "tre", "decided_by"]
    readonly_fields = ["status", "decided_by", "decided_at", "rationale"]


@admin.register(DataAccessAgreement)
class AgreementAdmin(admin.ModelAdmin):
    list_display = ["reference", "project", "tre", "status", "valid_from", "valid_until"]
    list_filter = ["status", "tre"]
    list_select_related = ["project", "tre"]
    readonly_fields = ["approved_by", "approved_at", "created_by"]


class WorkflowApprovalInline(admin.TabularInline):
    model = WorkflowApproval
    extra = 0
    readonly_fields = ["status", "decided_by", "decided_at", "rationale"]


@admin.register(ApprovedWorkflow)
class WorkflowAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "language", "executor"]
    inlines = [WorkflowApprovalInline]


@admin.register(PersonalToken)
class PersonalTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "name", "key_prefix", "created_at", "expires_at", "revoked_at"]
    readonly_fields = ["key_prefix", "key_hash", "last_used_at"]
    list_select_related = ["user"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["id", "created_at", "actor_label", "verb", "object_type", "object_id", "tre_slug"]
    list_filter = ["verb", "actor_kind"]
    search_fields = ["actor_label", "object_label", "verb"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

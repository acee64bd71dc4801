from django.contrib import admin
from django.urls import include, path, re_path

from portal.views import health, people, projects, registry

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    # The API first: agents poll it all day, and Django tries the patterns in order.
    path("api/", include("portal.api.urls")),
    path("public/", include("transparency.urls")),
    path("", people.home, name="home"),
    path("dashboard/", people.dashboard, name="dashboard"),
    # Organisations, TREs, datasets
    path("organisations/", registry.organisation_list, name="organisation_list"),
    path("organisations/new/", registry.organisation_edit, name="organisation_create"),
    path("organisations/<int:pk>/edit/", registry.organisation_edit, name="organisation_edit"),
    path("tres/", registry.tre_list, name="tre_list"),
    path("tres/<slug:slug>/", registry.tre_detail, name="tre_detail"),
    path("tres/<slug:slug>/edit/", registry.tre_edit, name="tre_edit"),
    path("tres/<slug:slug>/pause/", registry.tre_pause, name="tre_pause"),
    path("tres/<slug:slug>/resume/", registry.tre_resume, name="tre_resume"),
    path("tres/<slug:slug>/approvals/", registry.approvals_queue, name="approvals_queue"),
    path("tres/<slug:slug>/datasets/new/", registry.dataset_edit, name="dataset_create"),
    path("tres/<slug:slug>/datasets/<int:pk>/edit/", registry.dataset_edit, name="dataset_edit"),
    # Workflows
    path("workflows/", registry.workflow_list, name="workflow_list"),
    path("workflows/new/", registry.workflow_edit, name="workflow_create"),
    path("workflows/<int:pk>/", registry.workflow_detail, name="workflow_detail"),
    path("workflows/<int:pk>/edit/", registry.workflow_edit, name="workflow_edit"),
    path("workflows/<int:pk>/files/", registry.workflow_files, name="workflow_files"),
    path("workflows/<int:pk>/crate.zip", registry.workflow_crate, name="workflow_crate"),
    path("workflows/<int:pk>/changes/", registry.workflow_diff, name="workflow_diff"),
    path(
        "workflows/<int:pk>/request-approval/",
        registry.workflow_request_approval,
        name="workflow_request_approval",
    ),
    path("workflow-approvals/<int:pk>/decide/", registry.workflow_decide, name="workflow_decide"),
    # Projects and memberships
    path("projects/", projects.project_list, name="project_list"),
    path("projects/find/", projects.project_directory, name="project_directory"),
    path("projects/new/", projects.project_create, name="project_create"),
    path("projects/<int:pk>/", projects.project_detail, name="project_detail"),
    path("projects/<int:pk>/edit/", projects.project_edit, name="project_edit"),
    path("projects/<int:pk>/apply/", projects.project_apply, name="project_apply"),
    path("projects/<int:pk>/invite/", projects.project_invite, name="project_invite"),
    path(
        "projects/<int:pk>/request-approval/",
        projects.project_request_approval,
        name="project_request_approval",
    ),
    path("project-approvals/<int:pk>/decide/", projects.project_decide, name="project_decide"),
    path("memberships/<int:pk>/accept/", projects.membership_accept, name="membership_accept"),
    path("memberships/<int:pk>/withdraw/", projects.membership_withdraw, name="membership_withdraw"),
    path("memberships/<int:pk>/reinstate/", projects.membership_reinstate, name="membership_reinstate"),
    path("membership-approvals/<int:pk>/decide/", projects.membership_decide, name="membership_decide"),
    # Agreements
    path("agreements/", projects.agreement_list, name="agreement_list"),
    path("agreements/new/", projects.agreement_edit, name="agreement_create"),
    path("agreements/<int:pk>/", projects.agreement_detail, name="agreement_detail"),
    path("agreements/<int:pk>/edit/", projects.agreement_edit, name="agreement_edit"),
    path("agreements/<int:pk>/pdf/", projects.agreement_pdf, name="agreement_pdf"),
    path(
        "agreements/<int:pk>/<str:action>/",
        projects.agreement_status,
        name="agreement_status",
    ),
    # People
    path("me/", people.profile_edit, name="profile_edit"),
    path("people/<int:pk>/", people.person_detail, name="person_detail"),
    path("accreditations/", people.accreditation_list, name="accreditation_list"),
    path("accreditations/new/", people.accreditation_create, name="accreditation_create"),
    path("accreditations/<int:pk>/verify/", people.accreditation_verify, name="accreditation_verify"),
    path("accreditations/<int:pk>/evidence/", people.accreditation_evidence, name="accreditation_evidence"),
    path("tokens/", people.token_list, name="token_list"),
    path("tokens/<int:pk>/revoke/", people.token_revoke, name="token_revoke"),
    # PPIE oversight
    path("ppie/", include("transparency.ppie_urls")),
    # Audit
    path("audit/", people.audit_list, name="audit_list"),
    path("audit/verify/", people.audit_verify, name="audit_verify"),
    re_path(r"^audit/export\.(?P<fmt>csv|json)$", people.audit_export, name="audit_export"),
    path("", include("reviews.urls")),
    path("", include("crates.urls")),
    path("", include("crates.agent_pages_urls")),
    # Accounts, admin
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
]

"""Projects, memberships and data-access agreements."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Prefetch, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_POST

from portal import permissions, services
from portal.forms import (
    AgreementForm,
    ApplyForm,
    DecisionForm,
    InviteForm,
    ProjectForm,
    ReasonForm,
    RequestApprovalForm,
)
from portal.models import (
    DataAccessAgreement,
    Membership,
    MembershipApproval,
    Project,
    ProjectApproval,
)
from portal.views.helpers import add_form_errors, domain_errors_as_messages, paginate
from portal.views.registry import _form_page


def _decision_from(request):
    form = DecisionForm(request.POST)
    if not form.is_valid():
        raise ValidationError([e for errs in form.errors.values() for e in errs])
    return form.cleaned_data["decision"], form.cleaned_data["rationale"]


# --- Projects --------------------------------------------------------------------------


@login_required
def project_list(request):
    projects = (
        permissions.visible_projects(request.user)
        .select_related("lead__profile", "sponsor")
        .annotate(member_count=Count("memberships", filter=Q(memberships__status="active"), distinct=True))
        .prefetch_related(Prefetch("approvals", queryset=ProjectApproval.objects.select_related("tre")))
        .order_by("-created_at")
    )
    return render(
        request,
        "portal/project_list.html",
        {"page": paginate(request, projects), "can_create": permissions.can_create_project(request.user)},
    )


@login_required
def project_directory(request):
    """Active projects researchers may apply to join: title, lead and TREs only."""
    projects = (
        Project.objects.filter(status=Project.Status.ACTIVE)
        .select_related("lead__profile", "sponsor")
        .prefetch_related(Prefetch("approvals", queryset=ProjectApproval.objects.select_related("tre")))
        .order_by("title")
    )
    mine = set(Membership.objects.filter(person=request.user).values_list("project_id", flat=True))
    return render(
        request, "portal/project_directory.html", {"page": paginate(request, projects), "mine": mine}
    )


@login_required
def project_detail(request, pk):
    project = get_object_or_404(Project.objects.select_related("lead__profile", "sponsor"), pk=pk)
    permissions.check_view_project(request.user, project)
    memberships = project.memberships.select_related("person__profile").prefetch_related(
        Prefetch("approvals", queryset=MembershipApproval.objects.select_related("tre", "decided_by"))
    )
    agreements = permissions.visible_agreements(request.user).filter(project=project)
    if not permissions.can_see_project_records(request.user, project):
        # An applicant, or a lapsed or removed member: their own application, nobody else's.
        memberships = memberships.filter(person=request.user)
    approvals = project.approvals.select_related("tre", "decided_by")
    governed_ids = set(permissions.tres_governed_by(request.user).values_list("pk", flat=True))
    return render(
        request,
        "portal/project_detail.html",
        {
            "project": project,
            "memberships": memberships,
            "approvals": approvals,
            "agreements": agreements.select_related("tre").prefetch_related("datasets"),
            "can_manage": permissions.can_manage_project(request.user, project),
            "conflicted": permissions.belongs_to_project(request.user, project),
            "governed_ids": governed_ids,
            "my_membership": next((m for m in memberships if m.person_id == request.user.pk), None),
            "decision_form": DecisionForm(),
            "invite_form": InviteForm(),
            "approval_form": RequestApprovalForm(),
            "show_ppie": any(a.tre.ppie_review != "off" for a in approvals),
        },
    )


@login_required
def project_create(request):
    permissions.check_create_project(request.user)
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        project = services.create_project(form, by=request.user)
        messages.success(request, f"Created {project.identifier}. Next, ask a TRE to approve it.")
        return redirect(project)
    return _form_page(request, form, title="Start a project", back="project_list")


@login_required
def project_edit(request, pk):
    project = get_object_or_404(Project, pk=pk)
    permissions.check_manage_project(request.user, project)
    form = ProjectForm(request.POST or None, instance=project)
    if request.method == "POST" and form.is_valid():
        services.save_record(form, by=request.user, verb_prefix="project", project=project)
        messages.success(request, "Saved the project.")
        return redirect(project)
    return _form_page(request, form, title=f"Edit {project.identifier}", back=project.get_absolute_url())


@login_required
@require_POST
@domain_errors_as_messages
def project_request_approval(request, pk):
    project = get_object_or_404(Project, pk=pk)
    form = RequestApprovalForm(request.POST)
    if not form.is_valid():
        raise ValidationError("Choose a TRE.")
    services.request_project_approval(project, form.cleaned_data["tre"], by=request.user)
    messages.success(request, f"Asked {form.cleaned_data['tre']} to approve the project.")
    return redirect(project)


@login_required
@require_POST
@domain_errors_as_messages
def project_decide(request, pk):
    approval = get_object_or_404(ProjectApproval.objects.select_related("project"), pk=pk)
    decision, rationale = _decision_from(request)
    services.decide_project(approval, decision, rationale, by=request.user)
    messages.success(request, "Decision recorded.")
    return redirect(approval.project)


# --- Memberships -----------------------------------------------------------------------


@login_required
def project_apply(request, pk):
    project = get_object_or_404(Project, pk=pk, status=Project.Status.ACTIVE)
    form = ApplyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.apply_to_project(
                project, by=request.user, justification=form.cleaned_data["justification"]
            )
        except ValidationError as exc:
            add_form_errors(form, exc)
        else:
            messages.success(request, "Application sent. Each TRE's officers will decide.")
            return redirect(project)
    return _form_page(
        request, form, title=f"Apply to join {project.title}", back="project_directory", submit="Apply"
    )


@login_required
@require_POST
@domain_errors_as_messages
def project_invite(request, pk):
    project = get_object_or_404(Project, pk=pk)
    permissions.check_manage_project(request.user, project)
    form = InviteForm(request.POST)
    if not form.is_valid():
        raise ValidationError([e for errs in form.errors.values() for e in errs])
    services.invite_member(
        project,
        form.person,
        form.cleaned_data["role"],
        by=request.user,
        justification=form.cleaned_data["justification"],
    )
    messages.success(request, f"Invited {form.cleaned_data['email']}.")
    return redirect(project)


@login_required
@require_POST
@domain_errors_as_messages
def membership_accept(request, pk):
    membership = get_object_or_404(Membership, pk=pk, person=request.user)
    services.accept_invitation(membership, by=request.user)
    messages.success(request, "Invitation accepted. Each TRE's officers will now decide.")
    return redirect(membership.project)


@login_required
@require_POST
@domain_errors_as_messages
def membership_withdraw(request, pk):
    membership = get_object_or_404(Membership, pk=pk)
    services.withdraw_membership(membership, by=request.user)
    messages.success(request, "Membership ended.")
    return redirect("project_list")


@login_required
@require_POST
@domain_errors_as_messages
def membership_decide(request, pk):
    approval = get_object_or_404(MembershipApproval.objects.select_related("membership__project"), pk=pk)
    decision, rationale = _decision_from(request)
    services.decide_membership(approval, decision, rationale, by=request.user)
    messages.success(request, "Decision recorded.")
    return redirect(approval.membership.project)


@login_required
@require_POST
@domain_errors_as_messages
def membership_reinstate(request, pk):
    membership = get_object_or_404(Membership, pk=pk)
    services.reinstate_membership(membership, by=request.user)
    messages.success(request, "Membership reinstated.")
    return redirect(membership.project)


# --- Agreements ------------------------------------------------------------------------


@login_required
def agreement_list(request):
    agreements = (
        permissions.visible_agreements(request.user)
        .select_related("project", "tre")
        .annotate(dataset_count=Count("datasets"))
        .order_by("-valid_until")
    )
    return render(
        request,
        "portal/agreement_list.html",
        {
            "page": paginate(request, agreements),
            "can_add": permissions.tres_governed_by(request.user).exists(),
        },
    )


def _get_agreement(user, pk):
    agreement = get_object_or_404(
        DataAccessAgreement.objects.select_related(
            "project__lead__profile", "tre__organisation", "approved_by"
        ),
        pk=pk,
    )
    permissions.check_view_agreement(user, agreement)
    return agreement


@login_required
def agreement_detail(request, pk):
    agreement = _get_agreement(request.user, pk)
    return render(
        request,
        "portal/agreement_detail.html",
        {
            "agreement": agreement,
            "datasets": agreement.datasets.all(),
            "can_govern": permissions.can_govern_tre(request.user, agreement.tre),
            "reason_form": ReasonForm(),
        },
    )


@login_required
def agreement_edit(request, pk=None):
    tres = permissions.tres_governed_by(request.user)
    if not tres.exists():
        raise PermissionDenied("Only governance officers can draw up agreements.")
    agreement = get_object_or_404(DataAccessAgreement, pk=pk, tre__in=tres) if pk else DataAccessAgreement()
    form = AgreementForm(request.POST or None, instance=agreement, tres=tres)
    if request.method == "POST" and form.is_valid():
        try:
            agreement = services.save_agreement(form, by=request.user)
        except (ValidationError, services.ServiceError) as exc:
            add_form_errors(form, exc if isinstance(exc, ValidationError) else ValidationError(str(exc)))
        else:
            messages.success(request, f"Saved {agreement.reference}.")
            return redirect(agreement)
    title = f"Edit {agreement.reference}" if pk else "Draw up a data-access agreement"
    return _form_page(request, form, title=title, back="agreement_list")


@login_required
@require_POST
@domain_errors_as_messages
def agreement_status(request, pk, action):
    agreement = get_object_or_404(DataAccessAgreement, pk=pk)
    services.change_agreement_status(
        agreement, action, by=request.user, reason=request.POST.get("reason", "")
    )
    messages.success(request, f"{agreement.reference}: done.")
    return redirect(agreement)


@login_required
def agreement_pdf(request, pk):
    """The agreement as a PDF, rendered by weasyprint from the detail page's partial."""
    from weasyprint import HTML

    agreement = _get_agreement(request.user, pk)
    html = render_to_string(
        "portal/agreement_pdf.html",
        {"agreement": agreement, "datasets": agreement.datasets.all(), "generated_by": request.user},
    )
    # The PDF template carries its own styles, so weasyprint fetches nothing over the network.
    pdf = HTML(string=html).write_pdf()
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{agreement.reference}.pdf"'
    services.audit.record("agreement.pdf_downloaded", by=request.user, obj=agreement, tre=agreement.tre)
    return response

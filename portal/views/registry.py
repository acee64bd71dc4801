"""Registry pages: organisations, TREs, datasets, approved workflows, the officers' queue."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count, IntegerField, OuterRef, Prefetch, Subquery
from django.db.models.functions import Coalesce
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_POST

from portal import audit, permissions, service_settings, services, workflow_inputs
from portal import workflow_files as workflow_files_lib
from portal.forms import DatasetForm, DecisionForm, OrganisationForm, ReasonForm, TREForm, WorkflowForm
from portal.models import (
    TRE,
    Accreditation,
    ApprovedWorkflow,
    Dataset,
    Decision,
    MembershipApproval,
    Organisation,
    ProjectApproval,
    WorkflowApproval,
)
from portal.views.helpers import add_form_errors, domain_errors_as_messages, paginate


def _form_page(request, form, *, title, back, submit="Save", intro=""):
    return render(
        request,
        "portal/form_page.html",
        {"form": form, "title": title, "back": back, "submit": submit, "intro": intro},
    )


# --- Organisations ---------------------------------------------------------------------


@login_required
def organisation_list(request):
    organisations = Organisation.objects.annotate(tre_count=Count("tres", distinct=True)).order_by("name")
    return render(
        request,
        "portal/organisation_list.html",
        {
            "page": paginate(request, organisations),
            "can_manage": permissions.can_manage_organisations(request.user),
        },
    )


@login_required
def organisation_edit(request, pk=None):
    permissions.check_manage_organisations(request.user)
    organisation = get_object_or_404(Organisation, pk=pk) if pk else Organisation()
    form = OrganisationForm(request.POST or None, instance=organisation)
    if request.method == "POST" and form.is_valid():
        services.save_record(form, by=request.user, verb_prefix="organisation")
        messages.success(request, f"Saved {form.instance.name}.")
        return redirect("organisation_list")
    title = f"Edit {organisation.name}" if pk else "Add an organisation"
    return _form_page(request, form, title=title, back="organisation_list")


# --- TREs ------------------------------------------------------------------------------


@login_required
def tre_list(request):
    # Counted in subqueries: joining both relations at once would multiply their rows.
    datasets = Dataset.objects.filter(tre=OuterRef("pk")).order_by().values("tre").annotate(n=Count("pk"))
    projects = (
        ProjectApproval.objects.filter(tre=OuterRef("pk"), status=Decision.APPROVED)
        .order_by()
        .values("tre")
        .annotate(n=Count("project", distinct=True))
    )
    tres = TRE.objects.select_related("organisation").annotate(
        dataset_count=Coalesce(Subquery(datasets.values("n"), output_field=IntegerField()), 0),
        project_count=Coalesce(Subquery(projects.values("n"), output_field=IntegerField()), 0),
    )
    return render(request, "portal/tre_list.html", {"tres": tres})


@login_required
def tre_detail(request, slug):
    tre = get_object_or_404(TRE.objects.select_related("organisation"), slug=slug)
    workflows = WorkflowApproval.objects.filter(tre=tre).select_related("workflow", "decided_by")
    return render(
        request,
        "portal/tre_detail.html",
        {
            "tre": tre,
            "datasets": tre.datasets.all(),
            "workflow_approvals": workflows,
            "can_edit": permissions.can_edit_tre(request.user, tre),
            "can_govern": permissions.can_govern_tre(request.user, tre),
            "pause_form": ReasonForm(),
            # The dispatch overview comes from crates' {% dispatch_overview_for %} tag.
        },
    )


@login_required
def tre_edit(request, slug):
    tre = get_object_or_404(TRE, slug=slug)
    permissions.check_edit_tre(request.user, tre)
    form = TREForm(request.POST or None, instance=tre)
    if request.method == "POST" and form.is_valid():
        services.save_record(form, by=request.user, verb_prefix="tre", tre=tre)
        messages.success(request, f"Saved the settings of {tre}.")
        return redirect(tre)
    return _form_page(
        request,
        form,
        title=f"Settings of {tre}",
        back=tre.get_absolute_url(),
        intro="These policies apply to every request to this TRE unless an agreement overrides them.",
    )


@login_required
@require_POST
@domain_errors_as_messages
def tre_pause(request, slug):
    tre = get_object_or_404(TRE, slug=slug)
    form = ReasonForm(request.POST)
    services.pause_tre(tre, by=request.user, reason=form.data.get("reason", ""))
    messages.success(request, f"{tre} is paused: no new work will be dispatched to it.")
    return redirect(tre)


@login_required
@require_POST
@domain_errors_as_messages
def tre_resume(request, slug):
    tre = get_object_or_404(TRE, slug=slug)
    services.resume_tre(tre, by=request.user)
    messages.success(request, f"{tre} is open again.")
    return redirect(tre)


@login_required
def dataset_edit(request, slug, pk=None):
    tre = get_object_or_404(TRE, slug=slug)
    permissions.check_edit_tre(request.user, tre)
    dataset = get_object_or_404(Dataset, pk=pk, tre=tre) if pk else None
    form = DatasetForm(request.POST or None, instance=dataset, tre=tre)
    if request.method == "POST" and form.is_valid():
        services.save_record(form, by=request.user, verb_prefix="dataset", tre=tre)
        messages.success(request, f"Saved dataset {form.instance.name}.")
        return redirect(tre)
    title = f"Edit {dataset.name}" if dataset else f"Add a dataset held by {tre}"
    return _form_page(request, form, title=title, back=tre.get_absolute_url())


# --- The officers' queue ---------------------------------------------------------------


@login_required
def approvals_queue(request, slug):
    """Everything awaiting this TRE's officers in the registry."""
    tre = get_object_or_404(TRE, slug=slug)
    permissions.check_govern_tre(request.user, tre)
    return render(
        request,
        "portal/approvals_queue.html",
        {
            "tre": tre,
            "project_approvals": ProjectApproval.objects.filter(tre=tre, status=Decision.PENDING)
            .select_related("project__lead")
            .prefetch_related("project__ppie_reviews"),
            "membership_approvals": MembershipApproval.objects.filter(
                tre=tre, status=Decision.PENDING, membership__status__in=["pending", "active"]
            ).select_related("membership__project", "membership__person__profile"),
            "workflow_approvals": WorkflowApproval.objects.filter(
                tre=tre, status=Decision.PENDING
            ).select_related("workflow"),
            "accreditations": Accreditation.objects.filter(
                verified_at__isnull=True, person__memberships__approvals__tre=tre
            )
            .select_related("person")
            .distinct(),
            "decision_form": DecisionForm(),
        },
    )


# --- Approved workflows ----------------------------------------------------------------


@login_required
def workflow_list(request):
    workflows = ApprovedWorkflow.objects.prefetch_related(
        Prefetch("approvals", queryset=WorkflowApproval.objects.select_related("tre"))
    )
    return render(
        request,
        "portal/workflow_list.html",
        {"page": paginate(request, workflows), "can_add": permissions.is_officer(request.user)},
    )


@login_required
def workflow_detail(request, pk):
    workflow = get_object_or_404(ApprovedWorkflow, pk=pk)
    approvals = workflow.approvals.select_related("tre", "decided_by")
    governed = permissions.tres_governed_by(request.user)
    return render(
        request,
        "portal/workflow_detail.html",
        {
            "workflow": workflow,
            "approvals": approvals,
            "requestable_tres": governed.exclude(workflow_approvals__workflow=workflow),
            "governed_ids": set(governed.values_list("pk", flat=True)),
            "decision_form": DecisionForm(),
            "input_lines": [workflow_inputs.describe(entry) for entry in workflow.inputs or []],
            "previous": workflow_files_lib.previous_approved(workflow),
        },
    )


@login_required
def workflow_files(request, pk):
    """The workflow's crate as a tree of files, with the chosen file shown highlighted."""
    workflow = get_object_or_404(ApprovedWorkflow, pk=pk)
    path = request.GET.get("path", "")
    context = {"workflow": workflow, "path": path, "previous": workflow_files_lib.previous_approved(workflow)}
    try:
        entries = workflow_files_lib.files(workflow)
        context["tree"] = workflow_files_lib.tree(entries)
        context["count"] = len(entries)
        if not path:
            main = next(
                (e.path for e in entries if e.path.endswith(".cwl")), entries[0].path if entries else ""
            )
            path = context["path"] = main
        if path:
            try:
                text, why = workflow_files_lib.read_text(workflow, path)
            except KeyError:
                raise Http404("The crate has no file of that name.") from None
            context["why_not_shown"] = why
            context["highlighted"] = workflow_files_lib.highlight(path, text) if text is not None else ""
    except workflow_files_lib.CrateUnreadable as exc:
        context["unreadable"] = str(exc)
    return render(request, "portal/workflow_files.html", context)


@login_required
def workflow_crate(request, pk):
    """Download the workflow's crate ZIP, as approved (its SHA-256 in a header)."""
    workflow = get_object_or_404(ApprovedWorkflow, pk=pk)
    if not workflow.crate:
        raise Http404("This workflow was registered without its crate.")
    audit.record("workflow.crate_downloaded", by=request.user, obj=workflow)
    response = FileResponse(
        workflow.crate.open("rb"),
        as_attachment=True,
        filename=f"{slugify(workflow.name) or 'workflow'}-{slugify(workflow.version) or 'version'}.crate.zip",
        content_type="application/zip",
    )
    response["X-Content-SHA256"] = workflow.sha256
    return response


@login_required
def workflow_diff(request, pk):
    """What changed in the crate since the previously approved version of the same workflow."""
    workflow = get_object_or_404(ApprovedWorkflow, pk=pk)
    previous = workflow_files_lib.previous_approved(workflow)
    context = {"workflow": workflow, "previous": previous}
    if previous is not None:
        try:
            context["changes"] = workflow_files_lib.compare(previous, workflow)
        except workflow_files_lib.CrateUnreadable as exc:
            context["unreadable"] = str(exc)
    return render(request, "portal/workflow_diff.html", context)


@login_required
def workflow_edit(request, pk=None):
    workflow = get_object_or_404(ApprovedWorkflow, pk=pk) if pk else ApprovedWorkflow()
    permissions.check_change_workflow(request.user, workflow)
    approved = services.is_workflow_approved_anywhere(workflow)
    form = WorkflowForm(request.POST or None, request.FILES or None, instance=workflow)
    if request.method == "POST" and form.is_valid():
        try:
            workflow = services.change_workflow(form, by=request.user)
        except ValidationError as exc:
            add_form_errors(form, exc)
        else:
            if approved:
                messages.success(request, f"Registered {workflow} as a new version; it needs approval again.")
            else:
                messages.success(request, f"Saved {workflow}.")
            return redirect("workflow_detail", pk=workflow.pk)
    intro = (
        "This workflow is approved, so it does not change: saving registers your change as a new version, "
        "which needs approval again."
        if approved
        else ""
    )
    return _form_page(
        request,
        form,
        title="Register a workflow" if not pk else f"Edit {workflow}",
        back="workflow_list",
        intro=intro,
    )


@login_required
@require_POST
@domain_errors_as_messages
def workflow_request_approval(request, pk):
    workflow = get_object_or_404(ApprovedWorkflow, pk=pk)
    tre = get_object_or_404(TRE, pk=request.POST.get("tre"))
    services.request_workflow_approval(workflow, tre, by=request.user)
    messages.success(request, f"{workflow} is now on {tre}'s list for a decision.")
    return redirect("workflow_detail", pk=pk)


@login_required
@require_POST
@domain_errors_as_messages
def workflow_decide(request, pk):
    approval = get_object_or_404(WorkflowApproval.objects.select_related("workflow"), pk=pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        raise services.ServiceError(" ".join(e for errs in form.errors.values() for e in errs))
    services.decide_workflow(
        approval,
        form.cleaned_data["decision"],
        form.cleaned_data["rationale"],
        by=request.user,
        settings=service_settings.from_form(approval.workflow.executor, request.POST),
    )
    messages.success(request, "Decision recorded.")
    return redirect("workflow_detail", pk=approval.workflow_id)

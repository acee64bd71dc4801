"""Researcher pages for requests: submit (upload or build), follow validation, compare versions, resubmit."""

import shutil
import tempfile
from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.db.models import Prefetch
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from crates import builder, explain, services, versions
from crates import permissions as crate_permissions
from crates import summary as summaries
from crates.fivesafes.errors import CrateRefused
from crates.forms import BuildRequestForm, ResubmitBuildForm, ResubmitForm, UploadRequestForm
from crates.models import Job, Request, RequestVersion
from portal import audit, permissions, plain
from portal.views.helpers import add_form_errors, paginate


@login_required
def request_list(request):
    requests = (
        crate_permissions.visible_requests(request.user)
        .select_related("project", "submitter")
        .prefetch_related("versions", Prefetch("jobs", queryset=Job.objects.select_related("tre")))
        .order_by("-created_at")
    )
    return render(
        request,
        "crates/request_list.html",
        {"page": paginate(request, requests), "can_submit": permissions.has_role(request.user, "researcher")},
    )


def _submit_page(request, form, *, title, template="crates/request_form.html"):
    return render(request, template, {"form": form, "title": title})


@login_required
def request_create(request):
    form = UploadRequestForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            submitted = services.submit_request(
                by=request.user,
                project=data["project"],
                tres=list(data["tres"]),
                title=data["title"],
                description=data["description"],
                upload=data["crate"],
            )
        except ValidationError as exc:
            add_form_errors(form, exc)
        except CrateRefused as refusal:
            form.add_error("crate", refusal.message)
        else:
            messages.success(request, "Crate received. It is being checked now; this page updates when done.")
            return redirect(submitted)
    return _submit_page(request, form, title="Submit a crate")


def _initial_from_query(query):
    """The builder's starting values from a GET (the workflow picked before its inputs are shown)."""
    initial = {
        key: query.get(key) for key in ("project", "workflow", "title", "description") if query.get(key)
    }
    for key in ("tres", "datasets"):
        if query.getlist(key):
            initial[key] = query.getlist(key)
    return initial


def _builder_page(request, form, *, title, req=None, base=None):
    # Choosing a workflow shows its inputs at once (htmx); without JavaScript, a button does it.
    form.fields["workflow"].widget.attrs.update(
        {
            "hx-get": request.path,
            "hx-trigger": "change",
            "hx-target": "#workflow-inputs",
            "hx-select": "#workflow-inputs",
            "hx-swap": "outerHTML",
            "hx-include": "closest form",
        }
    )
    return render(
        request,
        "crates/request_build.html",
        {"form": form, "title": title, "req": req, "base": base, "workflow": form.chosen_workflow},
    )


def _build_crate(request, data, scratch, *, base=None):
    """Build the crate from a valid builder form; return the ZIP's path."""
    kept = versions.extract_kept(base, data.get("kept_inputs", []), scratch) if base else []
    return builder.build_for_request(
        user=request.user,
        project=data["project"],
        tres=list(data["tres"]),
        workflow=data["workflow"],
        datasets=list(data["datasets"]),
        parameters=data["parameters"],
        inputs=data["inputs"],
        kept=kept,
        title=data["title"],
        description=data["description"],
        scratch=Path(scratch),
    )


@login_required
@vary_on_headers("HX-Request")
def request_build(request):
    """The portal builds the crate from a form, packs it as a BagIt ZIP, and submits it."""
    form = BuildRequestForm(
        request.POST or None,
        request.FILES or None,
        user=request.user,
        initial=_initial_from_query(request.GET),
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with tempfile.TemporaryDirectory(prefix="build-") as scratch:
            try:
                zip_path = _build_crate(request, data, scratch)
                with zip_path.open("rb") as handle:
                    submitted = services.submit_request(
                        by=request.user,
                        project=data["project"],
                        tres=list(data["tres"]),
                        title=data["title"],
                        description=data["description"],
                        upload=File(handle, name=zip_path.name),
                    )
            except ValidationError as exc:
                add_form_errors(form, exc)
            else:
                messages.success(request, "The crate was built and submitted. It is being checked now.")
                return redirect(submitted)
    return _builder_page(request, form, title="Build a request")


@login_required
@vary_on_headers("HX-Request")
def request_edit(request, pk):
    """Edit and resubmit: the builder, filled from the last version; the new crate is the next version."""
    req = _get_request(request.user, pk)
    crate_permissions.check_resubmit(request.user, req)
    latest = req.latest_version
    asked = req.jobs.filter(status=Job.Status.CHANGES_REQUESTED).exists()
    if latest is None or not latest.is_final or (latest.status == RequestVersion.Status.VALID and not asked):
        messages.error(request, "No TRE has asked for changes, so there is nothing to resubmit.")
        return redirect(req)
    base = versions.base_version(req)
    if base is None:
        messages.error(
            request, "No version of this request passed its checks; upload a corrected crate instead."
        )
        return redirect(req)
    initial, kept = versions.prefill(req, base)
    if request.method == "GET" and request.GET.get("workflow"):
        initial.update(_initial_from_query(request.GET))
    form = ResubmitBuildForm(
        request.POST or None, request.FILES or None, user=request.user, initial=initial, kept_files=kept
    )
    form.fix_request(req)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with tempfile.TemporaryDirectory(prefix="build-") as scratch:
            try:
                zip_path = _build_crate(request, data, scratch, base=base)
                with zip_path.open("rb") as handle:
                    services.add_version(
                        req, by=request.user, upload=File(handle, name=zip_path.name), message=data["message"]
                    )
            except (ValidationError, PermissionDenied) as exc:
                add_form_errors(form, exc if isinstance(exc, ValidationError) else ValidationError(str(exc)))
            except CrateRefused as refusal:
                form.add_error(None, refusal.message)
            else:
                messages.success(request, "New version built and received. It is being checked now.")
                return redirect(req)
    return _builder_page(request, form, title=f"Edit and resubmit request #{req.pk}", req=req, base=base)


def _get_request(user, pk):
    req = get_object_or_404(Request.objects.select_related("project__lead", "submitter"), pk=pk)
    crate_permissions.check_view_request(user, req)
    return req


@login_required
@vary_on_headers("HX-Request")
def request_detail(request, pk):
    req = _get_request(request.user, pk)
    versions = list(req.versions.select_related("created_by").order_by("-number"))
    jobs = list(req.jobs.select_related("tre", "version").order_by("tre__name"))
    changes = []
    for newer, older in zip(versions, versions[1:], strict=False):
        if newer.summary and older.summary:
            changes.append((older.number, newer.number, summaries.diff(older.summary, newer.summary)))
    latest = versions[0] if versions else None
    worth_fixing, recorded_later = plain.recommendations(
        ((latest.validation_report or {}).get("warnings") if latest else None) or []
    )
    context = {
        "req": req,
        "versions": versions,
        "worth_fixing": worth_fixing,
        "recorded_later": recorded_later,
        "latest": versions[0] if versions else None,
        "jobs": jobs,
        "changes": changes,
        "can_resubmit": crate_permissions.can_resubmit(request.user, req)
        and versions
        and versions[0].is_final
        and (
            versions[0].status == RequestVersion.Status.INVALID
            or any(j.status == "changes_requested" for j in jobs)
        ),
        "resubmit_form": ResubmitForm(),
    }
    context["jobs_poll_seconds"] = _poll_seconds(jobs)
    context["failures"] = [(job, explain.failure(job)) for job in jobs if job.status == Job.Status.FAILED]
    if context["can_resubmit"]:
        context["edit_base"] = next((v for v in versions if v.summary), None)
        context["can_edit"] = context["edit_base"] is not None
    template = "crates/request_detail.html"
    if request.htmx and request.htmx.target == "request-jobs":
        template += "#request-jobs"
    elif request.htmx:
        template += "#version-status"
        if latest is not None and latest.is_final:
            # The status region polls only while the crate is being checked. Once it is checked, the
            # summary and the jobs at each TRE appear, so the whole page loads once (keeping its place).
            response = render(request, template, context)
            response["HX-Refresh"] = "true"
            return response
    return render(request, template, context)


def _poll_seconds(jobs):
    """The request page refreshes its jobs while any of them is still moving."""
    moving = [job for job in jobs if job.status not in explain.ENDED]
    if not moving:
        return None
    return 3 if any(job.status in explain.IN_PROGRESS for job in moving) else 20


@login_required
@require_POST
def request_resubmit(request, pk):
    req = _get_request(request.user, pk)
    form = ResubmitForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            services.add_version(
                req, by=request.user, upload=form.cleaned_data["crate"], message=form.cleaned_data["message"]
            )
        except (ValidationError, PermissionDenied, CrateRefused) as exc:
            messages.error(
                request, getattr(exc, "message", None) or " ".join(getattr(exc, "messages", [str(exc)]))
            )
        else:
            messages.success(request, "New version received. It is being checked now.")
    else:
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
    return redirect(req)


@login_required
def job_crate(request, pk):
    """Download a job's crate as it stands (officers of its TRE, the project's members, auditors)."""
    job = get_object_or_404(Job.objects.select_related("request__project", "tre", "version"), pk=pk)
    crate_permissions.check_view_request(request.user, job.request)
    if not job.version.crate:
        raise Http404("This version's crate was not kept.")
    scratch = Path(tempfile.mkdtemp(prefix="export-"))
    path = services.export_job_crate(job, scratch / f"request-{job.request_id}-{job.tre.slug}.zip")
    audit.record("job.crate_downloaded", by=request.user, obj=job, tre=job.tre, project=job.request.project)
    response = FileResponse(
        path.open("rb"), as_attachment=True, filename=path.name, content_type="application/zip"
    )
    response["X-Content-SHA256"] = services.job_crate_sha256(path)
    # The temporary copy is removed when the response is closed.
    response._resource_closers.append(lambda: shutil.rmtree(scratch, ignore_errors=True))
    return response

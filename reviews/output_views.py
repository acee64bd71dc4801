"""Output checking pages: the job's outputs, the table viewer with flagged cells, votes, release, downloads."""

import csv
import io

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from crates import permissions as crate_permissions
from crates.models import Job
from portal import audit, permissions
from portal.errors import Refusal, message_of
from reviews import outputs
from reviews.models import OutputFile, OutputVote, Publication
from reviews.permissions import (
    can_act_as_researcher,
    can_check_outputs,
    can_decide_combined,
    can_download_combined,
    can_download_output,
    can_publish_output,
    check_download_combined,
    check_download_output,
    check_view_output,
    check_view_outputs,
    check_view_published_crate,
)
from reviews.sdc import redact
from reviews.sdc.tables import guess_delimiter

MAX_ROWS = 500


def _get_job(user, pk):
    job = get_object_or_404(
        Job.objects.select_related("request__project", "request__submitter", "tre"), pk=pk
    )
    crate_permissions.check_view_request(user, job.request)
    return job


def _get_output(user, pk):
    output = get_object_or_404(
        OutputFile.objects.select_related("job__request__project", "job__request__submitter", "job__tre"),
        pk=pk,
    )
    crate_permissions.check_view_request(user, output.job.request)
    return output


def _file_rows(output, user):
    votes = outputs.votes_visible_to(output, user)
    is_checker = can_check_outputs(user, output.job)
    return {
        "output": output,
        # Values behind the flags only for the checkers and, once released, the project's members.
        "sdc": outputs.sdc_visible_to(output, user),
        "votes": votes if is_checker else [v for v in votes if v.for_researcher],
        # Approvals of a file the automated checks did not pass, with their reasons (certified for all).
        "overrides": [v for v in votes if v.decision == OutputVote.Decision.APPROVE and v.comment]
        if output.sdc_verdict != OutputFile.Verdict.PASS
        else [],
        "my_vote": next(
            (v for v in output.votes.all() if v.checker_id == user.pk and v.round == output.round), None
        ),
        "needed": outputs.votes_needed(output),
        "required": outputs.required_checkers(output),
        "cast": sum(1 for v in output.votes.all() if v.round == output.round),
        "can_download": can_download_output(user, output),
        "can_publish": can_publish_output(user, output),
        "public_record": getattr(output, "public_record", None)
        if output.status == OutputFile.Status.RELEASED
        else None,
    }


@login_required
def output_queue(request):
    """The checker's work queue: files waiting for my vote across my TREs, oldest first."""
    permissions.check_use_output_queue(request.user)
    return render(
        request,
        "reviews/output_queue.html",
        {"files": list(outputs.awaiting_vote(request.user)), "now": timezone.now()},
    )


def _has_decided_outputs(job, files):
    """A release certificate certifies decisions: it exists once a file is decided or the job ended."""
    return job.status in (Job.Status.RELEASED, Job.Status.WITHHELD) or any(
        o.status != OutputFile.Status.PENDING for o in files
    )


@login_required
def job_outputs(request, pk):
    job = _get_job(request.user, pk)
    check_view_outputs(request.user, job)
    files = [
        _file_rows(o, request.user)
        for o in job.outputs.select_related("public_record").prefetch_related("votes__checker")
    ]
    return render(
        request,
        "reviews/outputs.html",
        {
            "job": job,
            "files": files,
            "is_checker": can_check_outputs(request.user, job),
            "is_researcher": can_act_as_researcher(request.user, job),
            "decisions": OutputVote.Decision.choices,
            "can_certify": _has_decided_outputs(job, [f["output"] for f in files]),
        },
    )


def _table(output):
    """The first rows of a CSV output, with each value cell's flags, for the viewer.

    Flags find their cell by the file line and column the checks recorded, so the marked cell is the
    flagged value whatever the number of label columns or the separator.
    """
    with output.stored.open("rb") as handle:
        text = handle.read(2 * 1024 * 1024).decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=guess_delimiter(text))
    flags = {}
    for flag in output.sdc.get("flags", []):
        if flag.get("line") is not None and flag.get("field") is not None:
            flags.setdefault((flag["line"], flag["field"]), []).append(flag)
    rows, line = [], 1
    try:
        for record in reader:
            if any(field.strip() for field in record):
                rows.append((line, record))
                if len(rows) > MAX_ROWS:
                    break
            line = reader.line_num + 1
    except csv.Error:
        pass  # the checks said what is wrong with the file; show what could be read
    if not rows:
        return None
    header, body = rows[0][1], rows[1:]
    labels = set(output.sdc.get("label_columns") or [])
    table = []
    for number, row in body:
        cells = []
        for index, value in enumerate(row):
            cells.append(
                {
                    "value": value,
                    "flags": flags.get((number, index), []),
                    "label": index in labels or (not labels and index == 0),
                }
            )
        table.append(cells)
    return {"header": header, "rows": table, "truncated": len(body) >= MAX_ROWS}


@login_required
@vary_on_headers("HX-Request")
def output_detail(request, pk):
    output = _get_output(request.user, pk)
    job = output.job
    check_view_output(request.user, output)
    is_checker = can_check_outputs(request.user, job)
    context = {
        **_file_rows(output, request.user),
        "job": job,
        "is_checker": is_checker,
        # Researchers see the flags on their own outputs; the content only once released (or as checkers).
        "table": _table(output)
        if output.name.lower().endswith(".csv") and (is_checker or can_download_output(request.user, output))
        else None,
        "decisions": OutputVote.Decision.choices,
    }
    audit.record("outputs.file_viewed", by=request.user, obj=output, tre=job.tre, project=job.request.project)
    template = "reviews/output_detail.html"
    if request.htmx:
        template += "#viewer"
    return render(request, template, context)


@login_required
def output_download(request, pk):
    output = _get_output(request.user, pk)
    check_download_output(request.user, output)
    audit.record(
        "outputs.file_downloaded",
        by=request.user,
        obj=output,
        after={"sha256": output.sha256},
        tre=output.job.tre,
        project=output.job.request.project,
    )
    return FileResponse(output.stored.open("rb"), as_attachment=True, filename=output.name)


def _act(request, output, call, success):
    try:
        call()
    except (Refusal, ValidationError, PermissionDenied) as exc:
        messages.error(request, message_of(exc))
    else:
        messages.success(request, success)
    return redirect("job_outputs", pk=output.job_id)


@login_required
@require_POST
def output_vote(request, pk):
    output = _get_output(request.user, pk)
    return _act(
        request,
        output,
        lambda: outputs.vote(
            output,
            request.POST.get("decision", ""),
            request.POST.get("comment", ""),
            for_researcher=request.POST.get("for_researcher") == "on",
            by=request.user,
        ),
        f"Vote recorded on {output.name}.",
    )


@login_required
@require_POST
def output_release(request, pk):
    output = _get_output(request.user, pk)
    return _act(request, output, lambda: outputs.release(output, by=request.user), f"Released {output.name}.")


@login_required
@require_POST
def output_describe(request, pk):
    output = _get_output(request.user, pk)
    action = outputs.respond if output.status == OutputFile.Status.CHANGES else outputs.describe
    return _act(
        request,
        output,
        lambda: action(
            output,
            context=request.POST.get("context", ""),
            justification=request.POST.get("justification", ""),
            by=request.user,
        ),
        f"Saved what you said about {output.name}.",
    )


@login_required
@require_POST
def output_withdraw(request, pk):
    output = _get_output(request.user, pk)
    return _act(
        request, output, lambda: outputs.withdraw(output, by=request.user), f"Withdrew {output.name}."
    )


@login_required
@require_POST
def output_publish(request, pk):
    output = _get_output(request.user, pk)
    return _act(
        request,
        output,
        lambda: outputs.publish_output(
            output,
            title=request.POST.get("title", ""),
            summary=request.POST.get("summary", ""),
            by=request.user,
        ),
        f"{output.name} is on the project's public page.",
    )


@login_required
@require_POST
def output_unpublish(request, pk):
    output = _get_output(request.user, pk)
    return _act(
        request,
        output,
        lambda: outputs.unpublish_output(output, by=request.user),
        f"{output.name} is no longer on the project's public page.",
    )


@login_required
def published_crate(request, pk):
    """The published results crate: project members once released, the TRE's staff, auditors."""
    job = _get_job(request.user, pk)
    publication = get_object_or_404(Publication, job=job)
    check_view_published_crate(request.user, job)
    audit.record(
        "outputs.crate_downloaded", by=request.user, obj=job, tre=job.tre, project=job.request.project
    )
    return FileResponse(
        publication.stored.open("rb"),
        as_attachment=True,
        filename=f"published-request-{job.request_id}-{job.tre.slug}.zip",
    )


@login_required
def release_certificate(request, pk):
    """A PDF listing every output, its hashes, the automated checks and the checkers' decisions."""
    from weasyprint import HTML

    job = _get_job(request.user, pk)
    check_view_outputs(request.user, job)
    files = [
        _file_rows(o, request.user)
        for o in job.outputs.select_related("public_record").prefetch_related("votes__checker")
    ]
    if not _has_decided_outputs(job, [f["output"] for f in files]):
        messages.info(request, "No output has been decided yet, so there is nothing to certify.")
        return redirect("job_outputs", pk=job.pk)
    html = render_to_string(
        "reviews/release_certificate.html",
        {
            "job": job,
            "files": files,
            "generated_by": request.user,
            "publication": Publication.objects.filter(job=job).first(),
        },
    )
    audit.record(
        "outputs.certificate_downloaded", by=request.user, obj=job, tre=job.tre, project=job.request.project
    )
    response = HttpResponse(HTML(string=html).write_pdf(), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="release-certificate-job-{job.pk}.pdf"'
    return response


# --- Combined (federated) results -----------------------------------------------------------


def _get_combined(user, pk):
    from reviews.models import CombinedRelease

    release = get_object_or_404(
        CombinedRelease.objects.select_related("request__project", "created_by"), pk=pk
    )
    crate_permissions.check_view_request(user, release.request)
    return release


@login_required
def request_combined(request, pk):
    """Released tables that can be combined across TREs, and the combinations made so far."""
    from crates.models import Request
    from reviews import federation

    req = get_object_or_404(Request.objects.select_related("project"), pk=pk)
    crate_permissions.check_view_request(request.user, req)
    if request.method == "POST":
        try:
            release = federation.combine(req, request.POST.get("name", ""), by=request.user)
        except (Refusal, PermissionDenied, ValidationError) as exc:
            messages.error(request, message_of(exc))
        else:
            messages.success(request, "Combined. An output checker now decides whether to release it.")
            return redirect("combined_detail", pk=release.pk)
    return render(
        request,
        "reviews/combined_list.html",
        {
            "req": req,
            "groups": federation.combinable(req),
            "releases": req.combined_releases.select_related("created_by", "decided_by"),
        },
    )


@login_required
def combined_detail(request, pk):
    from reviews import federation

    release = _get_combined(request.user, pk)
    if request.method == "POST":
        try:
            federation.decide(
                release,
                request.POST.get("decision") == "release",
                request.POST.get("rationale", ""),
                by=request.user,
            )
        except (Refusal, PermissionDenied, ValidationError) as exc:
            messages.error(request, message_of(exc))
        else:
            messages.success(request, "Decision recorded.")
        return redirect("combined_detail", pk=release.pk)
    is_checker = can_decide_combined(request.user, release)
    audit.record("outputs.combined_viewed", by=request.user, obj=release, project=release.request.project)
    return render(
        request,
        "reviews/combined_detail.html",
        {
            "release": release,
            "sources": release.sources.select_related("job__tre"),
            "is_checker": is_checker,
            "sdc": release.sdc
            if is_checker or can_download_combined(request.user, release)
            else redact(release.sdc),
            "show_table": is_checker or can_download_combined(request.user, release),
            "can_download": can_download_combined(request.user, release),
        },
    )


@login_required
def combined_download(request, pk):

    release = _get_combined(request.user, pk)
    check_download_combined(request.user, release)
    audit.record("outputs.combined_downloaded", by=request.user, obj=release, project=release.request.project)
    return FileResponse(release.stored.open("rb"), as_attachment=True, filename=f"combined-{release.pk}.csv")

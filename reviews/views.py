"""Review pages: each TRE's queue, the job page (evidence, decisions, timeline), messages, certificates."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, F, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from crates import dispatch, explain
from crates import permissions as crate_permissions
from crates import summary as summaries
from crates.models import Job
from crates.permissions import can_cancel
from crates.transitions import TERMINAL, can_transition
from portal import audit, permissions
from portal.errors import Refusal, message_of
from portal.models import TRE
from portal.views.helpers import paginate
from reviews import evidence, services
from reviews.models import CHECK_STEPS, CarryOver, Notification, Outcome, Step
from reviews.permissions import can_act_as_researcher, can_review

S = Job.Status
QUEUE_STATES = [S.AWAITING_REVIEW, S.IN_REVIEW, S.CHANGES_REQUESTED, S.SUSPENDED]


@login_required
def review_queue(request, slug):
    """A TRE's jobs waiting on review, oldest first, with who they wait on."""
    tre = get_object_or_404(TRE, slug=slug)
    permissions.check_govern_tre(request.user, tre)
    status = request.GET.get("status") or ""
    jobs = (
        Job.objects.filter(tre=tre)
        .select_related("request__project", "request__submitter", "version")
        .annotate(decided_steps=Count("decisions", filter=Q(decisions__version=F("version"))))
        .order_by("status_changed_at")
    )
    jobs = jobs.filter(status=status) if status in S.values else jobs.filter(status__in=QUEUE_STATES)
    if request.GET.get("project"):
        jobs = jobs.filter(request__project__identifier=request.GET["project"])
    counts = dict(
        Job.objects.filter(tre=tre, status__in=QUEUE_STATES)
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    return render(
        request,
        "reviews/queue.html",
        {
            "tre": tre,
            "page": paginate(request, jobs),
            "status": status,
            "counts": counts,
            "states": [(s, S(s).label) for s in QUEUE_STATES],
            "now": timezone.now(),
            "waiting_on": WAITING_ON,
        },
    )


# Whom a job in each state is waiting on, in plain words.
WAITING_ON = {
    S.AWAITING_REVIEW: "an officer to start the review",
    S.IN_REVIEW: "the officer reviewing it",
    S.CHANGES_REQUESTED: "the researcher to resubmit",
    S.SUSPENDED: "the cause of the suspension to be resolved",
    S.APPROVED: "the portal to queue it",
    S.QUEUED: "the TRE agent to claim it",
    S.CLAIMED: "the TRE agent to start it",
    S.RUNNING: "the workflow to finish",
    S.OUTPUTS_RETURNED: "the automated output checks",
    S.OUTPUT_REVIEW: "the output checkers",
    S.OUTPUT_CHANGES_REQUESTED: "the researcher to respond to the checkers",
}


def _get_job(user, pk):
    job = get_object_or_404(
        Job.objects.select_related(
            "request__project__lead", "request__submitter", "tre__organisation", "version", "workflow"
        ),
        pk=pk,
    )
    crate_permissions.check_view_request(user, job.request)
    return job


def _job_context(request, job):
    user = request.user
    is_officer = can_review(user, job)
    lease = getattr(job, "lease", None) if job.status in dispatch.ACTIVE else None
    cancel_pending = lease is not None and lease.cancel_requested_at is not None
    decisions = services.decisions_for(job)
    live = evidence.all_evidence(job) if is_officer and job.status == S.IN_REVIEW else {}
    steps = []
    for step in [*CHECK_STEPS, Step.SIGN_OFF]:
        decision = decisions.get(step)
        steps.append(
            {
                "step": step,
                "label": Step(step).label,
                "decision": decision,
                "evidence": decision.evidence if decision and step != Step.SIGN_OFF else live.get(step),
                "clear": evidence.is_clear(
                    decision.evidence if decision and step != Step.SIGN_OFF else live.get(step, [])
                ),
                "can_decide": is_officer and job.status == S.IN_REVIEW and decision is None,
            }
        )
    signoff_ready = all(
        decisions.get(s) is not None and decisions[s].outcome == Outcome.APPROVE for s in CHECK_STEPS
    )
    history = audit.AuditEvent.objects.filter(object_type="crates.job", object_id=str(job.pk)).order_by("id")
    resubmission = None
    if job.version.number > 1:
        carry = CarryOver.objects.filter(job=job, version=job.version).select_related("from_version").first()
        previous = (
            carry.from_version
            if carry
            else job.request.versions.filter(number__lt=job.version.number, summary__isnull=False)
            .order_by("-number")
            .first()
        )
        if previous is not None:
            resubmission = {
                "previous": previous,
                "diff": summaries.diff(previous.summary or {}, job.version.summary or {}),
                "carry_over": carry,
            }
    return {
        "job": job,
        "req": job.request,
        "steps": steps,
        "signoff_ready": signoff_ready,
        "is_officer": is_officer,
        "is_researcher": can_act_as_researcher(user, job),
        "conflicted": permissions.can_govern_tre(user, job.tre) and not is_officer,
        "can_start": can_transition(job, S.IN_REVIEW, by=user),
        "can_hand_back": is_officer and job.status == S.IN_REVIEW,
        "can_cancel": can_cancel(user, job) and not cancel_pending,
        "cancel_pending": cancel_pending,
        "messages_list": job.messages.select_related("author__profile"),
        "history": history,
        "resubmission": resubmission,
        "blocking": services.blocking_reasons(job) if job.status == S.SUSPENDED else [],
        "waiting_on": WAITING_ON.get(job.status, ""),
        "outcomes": Outcome.choices,
        "summary": job.version.summary or {},
        "crosscheck": (job.version.crosscheck or {}).get("findings", []),
        "output_states": [S.OUTPUT_REVIEW, S.OUTPUT_CHANGES_REQUESTED, S.RELEASED, S.WITHHELD],
        "failure": explain.failure(job, lease=getattr(job, "lease", None)),
        "now": explain.NOW.get(job.status, ""),
        "poll_seconds": _poll_seconds(job),
        "can_certify": bool(decisions) or job.decisions.exists(),
    }


def _poll_seconds(job):
    """How often the job page refreshes its status: often while the TRE works, slowly while people
    decide, never once the job has ended."""
    if job.status in TERMINAL:
        return None
    return 3 if job.status in explain.IN_PROGRESS else 20


@login_required
@vary_on_headers("HX-Request")
def job_detail(request, pk):
    job = _get_job(request.user, pk)
    context = _job_context(request, job)
    template = "reviews/job_detail.html"
    if request.htmx and request.htmx.target == "review-steps":
        template += "#review-steps"
    elif request.htmx and request.htmx.target == "job-status":
        template += "#job-status"
    return render(request, template, context)


def _back_to_job(request, job):
    if request.htmx:
        return HttpResponseClientRedirect(job.get_absolute_url())
    return redirect(job)


def _act(request, job, action, success):
    try:
        action()
    except (Refusal, ValidationError, PermissionDenied) as exc:
        messages.error(request, message_of(exc) or "You may not do that.")
    else:
        messages.success(request, success)
    return _back_to_job(request, job)


@login_required
@require_POST
def job_start_review(request, pk):
    job = _get_job(request.user, pk)
    return _act(request, job, lambda: services.start_review(job, by=request.user), "Review started.")


@login_required
@require_POST
def job_hand_back(request, pk):
    job = _get_job(request.user, pk)
    return _act(request, job, lambda: services.hand_back(job, by=request.user), "Handed back to the queue.")


@login_required
@require_POST
def job_decide(request, pk, step):
    job = _get_job(request.user, pk)
    outcome, rationale = request.POST.get("outcome", ""), request.POST.get("rationale", "")
    label = Step(step).label if step in Step.values else step
    if request.htmx and step in CHECK_STEPS:
        # One of the four steps: swap the steps in place, so the officer stays where they were reading.
        # (Sign-off changes the job's status, so the whole page is loaded again.)
        try:
            services.decide_step(job, step, outcome, rationale, by=request.user)
        except (Refusal, ValidationError, PermissionDenied) as exc:
            messages.error(request, message_of(exc) or "You may not do that.")
        else:
            messages.success(request, f"{label}: decision recorded.")
        job = _get_job(request.user, pk)
        return render(request, "reviews/job_detail.html#review-steps", _job_context(request, job))
    return _act(
        request,
        job,
        lambda: services.decide_step(job, step, outcome, rationale, by=request.user),
        f"{label}: decision recorded.",
    )


@login_required
@require_POST
def job_cancel(request, pk):
    job = _get_job(request.user, pk)
    return _act(
        request,
        job,
        lambda: services.cancel(job, by=request.user, reason=request.POST.get("reason", "")),
        "The TRE's agent has been asked to stop; the job is cancelled when it does."
        if job.status in dispatch.ACTIVE
        else "Cancelled.",
    )


@login_required
@require_POST
def job_message(request, pk):
    job = _get_job(request.user, pk)
    return _act(
        request,
        job,
        lambda: services.post_message(job, request.POST.get("body", ""), by=request.user),
        "Message sent.",
    )


@login_required
def job_certificate(request, pk):
    """The decision certificate: evidence, decisions, deciders, times and crate hashes, as a PDF."""
    from weasyprint import HTML

    job = _get_job(request.user, pk)
    context = _job_context(request, job)
    if not context["can_certify"]:
        messages.info(request, "No decision has been made on this job yet, so there is nothing to certify.")
        return redirect(job)
    context["all_decisions"] = job.decisions.select_related("decided_by", "version").order_by("decided_at")
    context["generated_by"] = request.user
    html = render_to_string("reviews/certificate.html", context)
    pdf = HTML(string=html).write_pdf()
    audit.record(
        "job.certificate_downloaded", by=request.user, obj=job, tre=job.tre, project=job.request.project
    )
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="decision-certificate-job-{job.pk}.pdf"'
    return response


@login_required
def suspended_jobs(request):
    """Why each suspended job (that this person can see) is waiting."""
    jobs = (
        Job.objects.filter(status=S.SUSPENDED, request__in=crate_permissions.visible_requests(request.user))
        .select_related("request__project", "tre")
        .order_by("status_changed_at")
    )
    return render(request, "reviews/suspended.html", {"page": paginate(request, jobs)})


# --- Notifications ------------------------------------------------------------------------------


@login_required
def notification_list(request):
    notifications = Notification.objects.filter(recipient=request.user)
    prefs = request.user.profile.notification_preferences or {}
    if request.method == "POST":
        services.set_email_preferences(request.user, request.POST.getlist("email"))
        messages.success(request, "Saved your e-mail choices.")
        return redirect("notification_list")
    return render(
        request,
        "reviews/notifications.html",
        {
            "page": paginate(request, notifications),
            "kinds": [(k, label, prefs.get(k, True)) for k, label in Notification.Kind.choices],
            "unread": notifications.filter(read_at__isnull=True).count(),
        },
    )


@login_required
@require_POST
def notifications_read(request):
    Notification.objects.filter(recipient=request.user, read_at__isnull=True).update(read_at=timezone.now())
    return redirect("notification_list")

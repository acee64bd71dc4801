"""The home page, dashboards, people, accreditations, API tokens and the audit trail."""

import json
from datetime import timedelta

from allauth.mfa.models import Authenticator
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_POST

from portal import accounts, audit, csvexport, permissions, ppie, roles, services, todo
from portal.forms import AccreditationForm, AuditFilterForm, ProfileForm, TokenForm
from portal.models import (
    Accreditation,
    DataAccessAgreement,
    Decision,
    Membership,
    MembershipApproval,
    PersonalToken,
    ProjectApproval,
    WorkflowApproval,
)
from portal.views.helpers import add_form_errors, domain_errors_as_messages, paginate
from portal.views.registry import _form_page

SOON = timedelta(days=30)


def home(request):
    return render(request, "portal/home.html")


@login_required
def dashboard(request):
    """What this person has to do next, by role."""
    user = request.user
    today = timezone.localdate()
    context = {
        "invitations": Membership.objects.filter(
            person=user, status=Membership.Status.INVITED
        ).select_related("project", "invited_by"),
        "my_memberships": Membership.objects.filter(person=user)
        .exclude(status=Membership.Status.WITHDRAWN)
        .select_related("project"),
        "accreditations": Accreditation.objects.filter(person=user, valid_until__gte=today - SOON),
        "has_valid_accreditation": services.has_valid_accreditation(user),
        "soon": today + SOON,
        "today": today,
    }
    governed = permissions.tres_governed_by(user)
    if governed.exists():
        tres = list(
            governed.annotate(
                jobs_waiting=Count("jobs", filter=Q(jobs__status__in=["awaiting_review", "in_review"]))
            )
        )
        context["officer"] = {
            "tres": tres,
            "project_approvals": ProjectApproval.objects.filter(
                tre__in=tres, status=Decision.PENDING
            ).count(),
            "membership_approvals": MembershipApproval.objects.filter(
                tre__in=tres, status=Decision.PENDING, membership__status__in=["pending", "active"]
            ).count(),
            "workflow_approvals": WorkflowApproval.objects.filter(
                tre__in=tres, status=Decision.PENDING
            ).count(),
            "unverified": Accreditation.objects.filter(
                verified_at__isnull=True, person__memberships__approvals__tre__in=tres
            )
            .distinct()
            .count(),
            "expiring_agreements": DataAccessAgreement.objects.filter(
                tre__in=tres, status=DataAccessAgreement.Status.ACTIVE, valid_until__lte=today + SOON
            ).select_related("project", "tre"),
        }
    context["ppie_asks"] = [
        (project, review)
        for project in user.projects_led.filter(approvals__status=Decision.PENDING)
        .distinct()
        .prefetch_related("ppie_reviews")
        for state, review in [ppie.state(project)]
        if state == ppie.PLAINER
    ]
    context["sections"] = [
        render_to_string(section.template, section.context, request=request)
        for section in todo.sections_for(user)
    ]
    context["is_auditor"] = permissions.can_view_audit(user)
    context["is_researcher"] = permissions.has_role(user, roles.RESEARCHER)
    return render(request, "portal/dashboard.html", context)


# --- Profile and accreditations --------------------------------------------------------


@login_required
def profile_edit(request):
    form = ProfileForm(request.POST or None, instance=request.user.profile)
    if request.method == "POST" and form.is_valid():
        services.save_record(form, by=request.user, verb_prefix="profile")
        messages.success(request, "Saved your profile.")
        return redirect("dashboard")
    return _form_page(request, form, title="Your profile", back="dashboard")


@login_required
def person_detail(request, pk):
    person = get_object_or_404(get_user_model().objects.select_related("profile__affiliation"), pk=pk)
    if not permissions.can_view_person(request.user, person):
        raise PermissionDenied("Only governance officers and auditors can see other people's records.")
    return render(
        request,
        "portal/person_detail.html",
        {
            "person": person,
            "accreditations": person.accreditations.select_related("verified_by"),
            "memberships": person.memberships.select_related("project"),
            "can_verify": permissions.can_verify_accreditations(request.user)
            and person.pk != request.user.pk,
        },
    )


@login_required
def accreditation_list(request):
    return render(
        request,
        "portal/accreditation_list.html",
        {
            "accreditations": request.user.accreditations.select_related("verified_by"),
            "today": timezone.localdate(),
        },
    )


@login_required
def accreditation_create(request):
    form = AccreditationForm(request.POST or None, request.FILES or None)
    form.instance.person = request.user
    if request.method == "POST" and form.is_valid():
        services.save_record(form, by=request.user, verb_prefix="accreditation")
        messages.success(request, "Added. A governance officer will verify it against the evidence.")
        return redirect("accreditation_list")
    return _form_page(request, form, title="Add an accreditation", back="accreditation_list")


@login_required
@require_POST
@domain_errors_as_messages
def accreditation_verify(request, pk):
    accreditation = get_object_or_404(Accreditation, pk=pk)
    services.verify_accreditation(accreditation, by=request.user)
    messages.success(request, "Accreditation verified.")
    return redirect("person_detail", pk=accreditation.person_id)


@login_required
def accreditation_evidence(request, pk):
    """Evidence files are never public: the holder and officers only."""
    accreditation = get_object_or_404(Accreditation, pk=pk)
    if not permissions.can_view_person(request.user, accreditation.person) or not accreditation.evidence:
        raise Http404
    audit.record("accreditation.evidence_viewed", by=request.user, obj=accreditation)
    return FileResponse(accreditation.evidence.open("rb"), as_attachment=True)


# --- API tokens ------------------------------------------------------------------------


@login_required
def token_list(request):
    form = TokenForm(request.POST or None, user=request.user)
    secret = None
    if request.method == "POST" and form.is_valid():
        try:
            _, secret = services.create_token(
                request.user,
                form.cleaned_data["name"],
                by=request.user,
                days=form.cleaned_data["days"],
                scopes=form.cleaned_data["scopes"],
                second_factor_at=accounts.second_factor_at(request),
            )
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
        except ValidationError as exc:
            add_form_errors(form, exc)
        else:
            form = TokenForm(user=request.user)
    return render(
        request,
        "portal/token_list.html",
        {
            "tokens": request.user.api_tokens.all(),
            "form": form,
            "secret": secret,
            "privileged": permissions.is_privileged(request.user),
            "has_totp": Authenticator.objects.filter(
                user=request.user, type=Authenticator.Type.TOTP
            ).exists(),
        },
    )


@login_required
@require_POST
@domain_errors_as_messages
def token_revoke(request, pk):
    token = get_object_or_404(PersonalToken, pk=pk, user=request.user)
    services.revoke_token(token, by=request.user)
    messages.success(request, f"Revoked {token.name}.")
    return redirect("token_list")


# --- Audit trail -----------------------------------------------------------------------


def _filtered_events(request):
    form = AuditFilterForm(request.GET or None)
    events = audit.AuditEvent.objects.order_by("-id")
    if form.is_valid():
        data = form.cleaned_data
        for field, lookup in (
            ("verb", "verb__startswith"),
            ("object_type", "object_type"),
            ("object_id", "object_id"),
            ("tre", "tre_slug"),
            ("project", "project_identifier"),
        ):
            if data.get(field):
                events = events.filter(**{lookup: data[field]})
        if data.get("actor"):
            events = events.filter(Q(actor_label__iexact=data["actor"]) | Q(actor_id=data["actor"]))
        if data.get("since"):
            events = events.filter(created_at__date__gte=data["since"])
        if data.get("until"):
            events = events.filter(created_at__date__lte=data["until"])
    return form, events


@login_required
def audit_list(request):
    permissions.check_view_audit(request.user)
    form, events = _filtered_events(request)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "portal/audit_list.html",
        {"form": form, "page": paginate(request, events, per_page=50), "query": query.urlencode()},
    )


class _Echo:
    def write(self, value):
        return value


EXPORT_FIELDS = ["id", *audit.CONTENT_FIELDS, "prev_hash", "hash"]


def _event_row(event):
    row = {field: getattr(event, field) for field in EXPORT_FIELDS}
    row["created_at"] = event.created_at.isoformat()
    return row


@login_required
def audit_export(request, fmt):
    """Stream the filtered trail as CSV or JSON lines-in-an-array, with the hashes to re-verify."""
    permissions.check_view_audit(request.user)
    _, events = _filtered_events(request)
    events = events.order_by("id")
    audit.record(
        "audit.exported",
        by=request.user,
        object_type="audit",
        message=f"format={fmt} {request.GET.urlencode()}",
    )
    if fmt == "csv":
        writer = csvexport.writer(_Echo())

        def rows():
            yield writer.writerow(EXPORT_FIELDS)
            for event in events.iterator(chunk_size=1000):
                row = _event_row(event)
                row["before"], row["after"] = json.dumps(row["before"]), json.dumps(row["after"])
                yield writer.writerow([row[f] for f in EXPORT_FIELDS])

        response = StreamingHttpResponse(rows(), content_type="text/csv")
    else:

        def chunks():
            yield "[\n"
            for index, event in enumerate(events.iterator(chunk_size=1000)):
                yield ("" if index == 0 else ",\n") + json.dumps(_event_row(event))
            yield "\n]\n"

        response = StreamingHttpResponse(chunks(), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="audit-{timezone.now():%Y%m%dT%H%M%S}.{fmt}"'
    return response


@login_required
def audit_verify(request):
    permissions.check_view_audit(request.user)
    problem = audit.verify_chain() or audit.verify_against_published()
    return render(request, "portal/audit_verify.html", {"problem": problem, "digest": audit.head_digest()})

"""Governance officers and PPIE members moderate the questions the public asks about projects."""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from portal import permissions
from portal.public_models import PublicQuestion
from portal.views.helpers import domain_errors_as_messages, paginate
from transparency import questions


def officer_with_mfa(view):
    """Officers only, with their second factor set up (these pages live under /public/, which the
    MFA middleware leaves open, so the check is made here)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if permissions.needs_mfa_setup(request.user):
            return redirect(f"{reverse('mfa_activate_totp')}?next={request.path}")
        if not (permissions.is_officer(request.user) or permissions.is_ppie(request.user)):
            raise PermissionDenied(
                "Only governance officers and PPIE members moderate questions from the public."
            )
        return view(request, *args, **kwargs)

    return login_required(wrapper)


@officer_with_mfa
def moderation_queue(request):
    page = paginate(request, questions.questions_to_moderate(request.user), per_page=20)
    forms = [
        (
            question,
            questions.ModerationForm(initial={"question": question.question}, prefix=f"q{question.pk}"),
        )
        for question in page
    ]
    return render(request, "public/moderation.html", {"page": page, "forms": forms})


@officer_with_mfa
@require_POST
@domain_errors_as_messages
def moderate(request, pk):
    question = get_object_or_404(PublicQuestion, pk=pk)
    form = questions.ModerationForm(request.POST, prefix=f"q{pk}")
    if not form.is_valid():
        raise ValidationError([error for errors in form.errors.values() for error in errors])
    data = form.cleaned_data
    if data["action"] == "publish":
        questions.publish_question(
            question, by=request.user, answer=data["answer"], question_text=data["question"]
        )
        messages.success(request, "Published the question with your answer.")
    else:
        questions.reject_question(question, by=request.user, reason=data["reason"])
        messages.success(request, "The question will not be published.")
    return redirect("public_questions_moderation")

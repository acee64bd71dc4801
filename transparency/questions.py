"""Questions from the public: spam checks, submission, and moderation by the TREs' officers."""

import hashlib
import time

from django import forms
from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from portal import audit, permissions
from portal.models import TRE, Decision, Membership
from portal.public_models import PublicQuestion
from portal.services import ServiceError
from reviews.notifications import Kind, notify
from transparency.page_cache import invalidate_public_pages

# --- Questions from the public -------------------------------------------------------------

QUESTION_MIN_SECONDS = 3  # a person needs longer than this to read the form and type a question
QUESTION_MAX_AGE_SECONDS = 2 * 60 * 60
# A signing namespace, not a secret; kept from when this lived in portal.public, so forms shown before
# an upgrade still verify.
_TOKEN_SALT = "portal.public.question-form"  # noqa: S105


def _now():
    return time.time()


def questions_per_hour():
    return getattr(settings, "PORTAL_PUBLIC_QUESTIONS_PER_HOUR", 5)


def issue_form_token(identifier):
    """A signed note of when the form was shown, and for which project."""
    return signing.dumps({"p": identifier, "t": int(_now())}, salt=_TOKEN_SALT, compress=True)


def check_form_token(token, identifier):
    """Raise ValidationError unless the token is ours, for this project, and neither too new nor too old."""
    try:
        data = signing.loads(token or "", salt=_TOKEN_SALT)
    except signing.BadSignature:
        raise ValidationError(
            "The form could not be checked. Please send your question again.", code="token"
        ) from None
    age = _now() - int(data.get("t", 0))
    if data.get("p") != identifier:
        raise ValidationError(
            "This form was for another project. Please send your question again.", code="token"
        )
    if age < QUESTION_MIN_SECONDS:
        raise ValidationError(
            "That was sent faster than a person can type. Please wait a few seconds and send it again.",
            code="too_fast",
        )
    if age > QUESTION_MAX_AGE_SECONDS:
        raise ValidationError(
            "The form was open too long and has expired. Please send your question again.", code="expired"
        )


def client_ip(request):
    """The visitor's address: REMOTE_ADDR, or with PORTAL_TRUSTED_PROXIES proxies in front, the address
    the nearest untrusted hop gave (X-Forwarded-For is read from the right, as proxies append to it)."""
    proxies = getattr(settings, "PORTAL_TRUSTED_PROXIES", 0)
    if proxies:
        hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def allow_question_from(ip):
    """Count one attempt from this address; False once it has made too many this hour."""
    key = "public-questions:" + hashlib.sha256(ip.encode()).hexdigest()[:32]
    cache.add(key, 0, timeout=60 * 60)
    try:
        attempts = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=60 * 60)
        attempts = 1
    return attempts <= questions_per_hour()


class QuestionForm(forms.Form):
    question = forms.CharField(
        label="Your question",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Ask in your own words. Please do not include personal or medical details about "
        "yourself or anyone else: the question may be published.",
    )
    name = forms.CharField(
        label="Your name",
        max_length=100,
        required=False,
        help_text="Only the governance officers see your name and e-mail address. They are never published.",
    )
    email = forms.EmailField(
        label="Your e-mail address",
        required=False,
        help_text="So an officer can contact you if your question needs clarifying.",
    )
    # A trap for robots: hidden from people (and from screen readers) by the template and CSS.
    website = forms.CharField(
        label="Leave this empty",
        required=False,
        widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
    )
    token = forms.CharField(widget=forms.HiddenInput, required=False)

    RATE_LIMITED = (
        "Too many questions have come from your connection in the last hour. Please try again later."
    )

    def __init__(self, *args, identifier, blocked=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.identifier = identifier
        self.blocked = blocked  # over the per-address rate limit

    def fresh_token(self):
        return issue_form_token(self.identifier)

    def clean(self):
        cleaned = super().clean()
        if self.blocked:
            self.add_error(None, ValidationError(self.RATE_LIMITED, code="rate_limited"))
        elif not self.is_spam:
            try:
                check_form_token(cleaned.get("token"), self.identifier)
            except ValidationError as exc:
                self.add_error(None, exc)
        return cleaned

    @property
    def is_spam(self):
        return bool(self.data.get("website", "").strip())


class ModerationForm(forms.Form):
    question = forms.CharField(
        label="Question as it will be published",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Remove any personal details before publishing.",
    )
    answer = forms.CharField(
        label="Answer", required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 5})
    )
    reason = forms.CharField(
        label="Why it should not be published",
        required=False,
        max_length=1000,
        help_text="Only if you decide not to publish it. Kept in the audit trail, not shown to the public.",
    )
    action = forms.ChoiceField(choices=[("publish", "Publish"), ("reject", "Do not publish")])


def _officers_to_tell(project):

    tres = TRE.objects.filter(project_approvals__project=project, project_approvals__status=Decision.APPROVED)
    return [
        o
        for tre in tres
        for o in permissions.officers_of(tre)
        if not permissions.belongs_to_project(o, project)
    ]


@transaction.atomic
def submit_question(project, *, question, name="", email=""):
    """Store a question for moderation and tell the officers who may moderate it."""

    entry = PublicQuestion.objects.create(
        project=project, question=question.strip(), name=name.strip(), email=email.strip()
    )
    audit.record(
        "public_question.received",
        by=audit.PUBLIC,
        obj=entry,
        object_label=f"Question {entry.pk} about {project.identifier}",
        project=project,
    )
    notify(
        _officers_to_tell(project),
        Kind.REVIEW,
        f"A question from the public about {project.identifier}",
        "Read it, answer it and publish it, or decide not to publish it.",
        reverse("public_questions_moderation"),
    )
    return entry


# --- Moderation ----------------------------------------------------------------------------


def questions_to_moderate(user):
    """Questions waiting for this officer, oldest first (none from projects they belong to)."""
    return (
        PublicQuestion.objects.filter(
            status=PublicQuestion.Status.PENDING, project__in=permissions.moderatable_projects(user)
        )
        .exclude(project__lead=user)
        .exclude(project__in=Membership.objects.filter(person=user).values("project"))
        .select_related("project")
        .order_by("created_at")
    )


def _locked(question):
    return PublicQuestion.objects.select_for_update().select_related("project").get(pk=question.pk)


@transaction.atomic
def publish_question(question, *, by, answer, question_text=None):
    """Publish the question (as the officer may have edited it to remove personal details) with an answer."""
    question = _locked(question)
    permissions.check_moderate(by, question)
    if question.status != PublicQuestion.Status.PENDING:
        raise ServiceError(f"This question was already moderated ({question.get_status_display().lower()}).")
    answer = (answer or "").strip()
    if not answer:
        raise ValidationError({"answer": "Write the answer to publish with the question."})
    edited = question_text is not None and question_text.strip() != question.question
    if question_text is not None and not question_text.strip():
        raise ValidationError({"question": "The question to publish cannot be empty."})
    if edited:
        question.question = question_text.strip()
    now = timezone.now()
    question.status = PublicQuestion.Status.PUBLISHED
    question.answer, question.answered_by, question.answered_at, question.moderated_at = answer, by, now, now
    question.save()
    audit.record(
        "public_question.published",
        by=by,
        obj=question,
        object_label=f"Question {question.pk} about {question.project.identifier}",
        after={"status": question.status, "question_edited": edited},
        project=question.project,
    )
    transaction.on_commit(invalidate_public_pages)
    return question


@transaction.atomic
def reject_question(question, *, by, reason=""):
    """Decide not to publish a question (spam, abuse, personal details); the reason stays in the audit trail."""
    question = _locked(question)
    permissions.check_moderate(by, question)
    if question.status != PublicQuestion.Status.PENDING:
        raise ServiceError(f"This question was already moderated ({question.get_status_display().lower()}).")
    question.status = PublicQuestion.Status.REJECTED
    question.moderated_at = timezone.now()
    question.save()
    audit.record(
        "public_question.rejected",
        by=by,
        obj=question,
        object_label=f"Question {question.pk} about {question.project.identifier}",
        after={"status": question.status},
        message=(reason or "").strip(),
        project=question.project,
    )
    return question

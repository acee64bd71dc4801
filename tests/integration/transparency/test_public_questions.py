"""Questions from the public: spam defences, moderation by the right officers, and what gets published."""

import pytest
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from lxml import html

from portal import permissions, roles, services
from portal.audit import AuditEvent
from portal.public_models import PublicQuestion
from reviews.models import Notification
from tests import factories
from transparency import questions

pytestmark = pytest.mark.django_db

T0 = 1_900_000_000


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def clock(monkeypatch):
    """The time the question form's token sees: set `clock.now`."""

    class Clock:
        now = T0

    monkeypatch.setattr(questions, "_now", lambda: Clock.now)
    return Clock


def _token(clock, identifier, *, seconds_ago):
    clock.now = T0
    token = questions.issue_form_token(identifier)
    clock.now = T0 + seconds_ago
    return token


def _ask(client, project, clock, *, seconds_ago=30, ip="203.0.113.7", **fields):
    data = {
        "question": "Will the results be shared with the hospitals that provided the data?",
        "name": "Sam Public",
        "email": "sam@example.net",
        "website": "",
        "token": _token(clock, project.identifier, seconds_ago=seconds_ago),
        **fields,
    }
    return client.post(reverse("public_question_ask", args=[project.identifier]), data, REMOTE_ADDR=ip)


def _officer(username, tre, admin_user):
    user = factories.UserFactory(username=username)
    from allauth.mfa.totp.internal.auth import TOTP

    TOTP.activate(user, "JBSWY3DPEHPK3PXP")
    services.grant_role(user, roles.GOVERNANCE_OFFICER, by=admin_user, tre=tre)
    return user


# --- Asking ------------------------------------------------------------------------------


def test_the_form_works_without_script_and_hides_the_trap_from_people(client, project):
    page = client.get(reverse("public_question_ask", args=[project.identifier]))
    assert page.status_code == 200
    tree = html.fromstring(page.content)
    form = tree.xpath("//form[@method='post']")[0]
    assert form.xpath(".//input[@name='csrfmiddlewaretoken']")
    assert form.xpath(".//input[@type='hidden'][@name='token']/@value")[0]
    for name in ("question", "name", "email"):
        control = form.xpath(f".//*[@name='{name}']")[0]
        assert form.xpath(f".//label[@for='{control.get('id')}']"), name
    trap = form.xpath(".//input[@name='website']")[0]
    assert trap.get("tabindex") == "-1" and trap.get("autocomplete") == "off"
    assert trap.getparent().get("aria-hidden") == "true"
    assert "public-hp" in trap.getparent().get("class")


def test_a_question_is_kept_for_moderation_and_the_right_officers_are_told(
    client, project, clock, olivia, oscar, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _ask(client, project, clock)
    assert response.status_code == 302
    assert response["Location"] == reverse("public_question_sent", args=[project.identifier])
    question = PublicQuestion.objects.get()
    assert (question.status, question.name, question.email) == ("pending", "Sam Public", "sam@example.net")
    assert question.question.startswith("Will the results be shared")

    event = AuditEvent.objects.get(verb="public_question.received")
    assert event.actor_kind == AuditEvent.ActorKind.PUBLIC
    assert event.project_identifier == project.identifier
    assert "sam@example.net" not in str(event.content()) and "Sam Public" not in str(event.content())

    told = Notification.objects.filter(subject__contains="question from the public")
    assert [n.recipient for n in told] == [olivia]  # oscar's TRE did not approve the project

    sent = client.get(response["Location"])
    assert "your question has been sent" in sent.content.decode()


def test_a_filled_trap_is_answered_as_sent_and_nothing_is_kept(client, project, clock):
    response = _ask(client, project, clock, website="https://spam.example")
    assert response.status_code == 302
    assert not PublicQuestion.objects.exists()


@pytest.mark.parametrize(
    ("seconds_ago", "message"),
    [
        (1, "faster than a person can type"),
        (3 * 60 * 60, "has expired"),
    ],
)
def test_a_form_sent_too_fast_or_too_late_is_refused(client, project, clock, seconds_ago, message):
    response = _ask(client, project, clock, seconds_ago=seconds_ago)
    assert response.status_code == 400
    text = response.content.decode()
    assert message in text and "There is a problem" in text
    # The question typed is kept, and a fresh token is issued for the next try.
    assert "Will the results be shared" in text
    assert not PublicQuestion.objects.exists()


def test_a_token_for_another_project_or_forged_is_refused(client, project, clock, bob, olivia, tre_a):
    response = _ask(client, project, clock, token=_token(clock, "PRJ-OTHER", seconds_ago=30))
    assert "another project" in response.content.decode()
    forged = signing.dumps({"p": project.identifier, "t": T0 - 60}, salt="not-our-salt")
    response = _ask(client, project, clock, token=forged)
    assert response.status_code == 400
    assert "could not be checked" in response.content.decode()
    assert not PublicQuestion.objects.exists()


def test_each_address_may_ask_only_a_few_times_an_hour(client, project, clock, settings):
    settings.PORTAL_PUBLIC_QUESTIONS_PER_HOUR = 2
    assert _ask(client, project, clock).status_code == 302
    assert _ask(client, project, clock).status_code == 302
    refused = _ask(client, project, clock)
    assert refused.status_code == 429
    assert "Too many questions" in refused.content.decode()
    assert _ask(client, project, clock, ip="198.51.100.2").status_code == 302
    assert PublicQuestion.objects.count() == 3


def test_behind_a_trusted_proxy_the_forwarded_address_counts(rf, settings):
    settings.PORTAL_TRUSTED_PROXIES = 1
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.9, 203.0.113.5")
    assert questions.client_ip(request) == "203.0.113.5"
    settings.PORTAL_TRUSTED_PROXIES = 0
    assert questions.client_ip(request) == "10.0.0.1"


def test_only_approved_projects_take_questions(client, bob):
    draft = factories.ProjectFactory(lead=bob)
    assert client.get(reverse("public_question_ask", args=[draft.identifier])).status_code == 404


# --- Moderating --------------------------------------------------------------------------


@pytest.fixture
def asked(project):
    return questions.submit_question(
        project,
        question="Is my GP surgery's data in this? I live at 1 High Street.",
        name="Sam",
        email="sam@example.net",
    )


def test_an_officer_of_an_approving_tre_publishes_an_edited_question_with_an_answer(
    client, project, asked, olivia, django_capture_on_commit_callbacks
):
    client.force_login(olivia)
    queue = client.get(reverse("public_questions_moderation"))
    assert queue.status_code == 200
    assert "sam@example.net" in queue.content.decode()  # officers see who asked

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("public_question_moderate", args=[asked.pk]),
            {
                f"q{asked.pk}-question": "Is my GP surgery's data in this?",
                f"q{asked.pk}-answer": "Only hospital data are used, not GP records.",
                f"q{asked.pk}-action": "publish",
            },
        )
    assert response.status_code == 302
    asked.refresh_from_db()
    assert (asked.status, asked.answered_by, asked.question) == (
        "published",
        olivia,
        "Is my GP surgery's data in this?",
    )
    event = AuditEvent.objects.get(verb="public_question.published")
    assert event.after == {"status": "published", "question_edited": True}

    page = client.get(reverse("public_project_detail", args=[project.identifier])).content.decode()
    assert "Only hospital data are used, not GP records." in page
    assert "Is my GP surgery&#x27;s data in this?" in page
    for private in ("High Street", "sam@example.net", "Sam"):
        assert private not in page


def test_rejecting_keeps_the_question_off_the_page_and_the_reason_in_the_trail(
    client, project, asked, olivia
):
    client.force_login(olivia)
    client.post(
        reverse("public_question_moderate", args=[asked.pk]),
        {
            f"q{asked.pk}-question": asked.question,
            f"q{asked.pk}-reason": "Contains an address.",
            f"q{asked.pk}-action": "reject",
        },
    )
    asked.refresh_from_db()
    assert asked.status == "rejected" and asked.moderated_at is not None
    assert AuditEvent.objects.get(verb="public_question.rejected").message == "Contains an address."
    page = client.get(reverse("public_project_detail", args=[project.identifier])).content.decode()
    assert "GP surgery" not in page
    assert client.get(reverse("public_questions_moderation")).content.decode().count("GP surgery") == 0


def test_publishing_needs_an_answer_and_happens_once(client, asked, olivia):
    client.force_login(olivia)
    url = reverse("public_question_moderate", args=[asked.pk])
    data = {f"q{asked.pk}-question": asked.question, f"q{asked.pk}-action": "publish"}
    page = client.post(url, data, follow=True).content.decode()
    assert "Write the answer to publish with the question." in page
    asked.refresh_from_db()
    assert asked.status == "pending"

    client.post(url, {**data, f"q{asked.pk}-answer": "An answer."})
    page = client.post(url, {**data, f"q{asked.pk}-answer": "Another."}, follow=True).content.decode()
    assert "already moderated" in page
    asked.refresh_from_db()
    assert asked.answer == "An answer."


def test_officers_of_other_tres_cannot_moderate(client, asked, oscar):
    client.force_login(oscar)
    assert "GP surgery" not in client.get(reverse("public_questions_moderation")).content.decode()
    response = client.post(
        reverse("public_question_moderate", args=[asked.pk]),
        {f"q{asked.pk}-question": "x", f"q{asked.pk}-answer": "y", f"q{asked.pk}-action": "publish"},
    )
    assert response.status_code == 302  # refused with a message, not a server error
    asked.refresh_from_db()
    assert asked.status == "pending"
    assert not permissions.can_moderate(oscar, asked)


def test_an_officer_who_belongs_to_the_project_cannot_moderate(project, asked, bob, tre_a, admin_user):
    otto = _officer("otto", tre_a, admin_user)
    services.invite_member(project, otto, "analyst", by=bob)
    assert not permissions.can_moderate(otto, asked)
    assert list(questions.questions_to_moderate(otto)) == []
    with pytest.raises(PermissionDenied, match="Only governance officers of a TRE that approved"):
        questions.publish_question(asked, by=otto, answer="An answer.")


def test_the_project_lead_who_is_also_an_officer_cannot_moderate(asked, bob, tre_a, admin_user):
    services.grant_role(bob, roles.GOVERNANCE_OFFICER, by=admin_user, tre=tre_a)
    assert not permissions.can_moderate(bob, asked)
    assert list(questions.questions_to_moderate(bob)) == []


def test_moderation_is_for_signed_in_officers_with_a_second_factor(client, asked, alice, tre_a, admin_user):
    url = reverse("public_questions_moderation")
    assert client.get(url)["Location"].startswith(reverse("account_login"))
    client.force_login(alice)
    assert client.get(url).status_code == 403
    no_mfa = factories.UserFactory(username="nomfa")
    services.grant_role(no_mfa, roles.GOVERNANCE_OFFICER, by=admin_user, tre=tre_a)
    client.force_login(no_mfa)
    assert client.get(url)["Location"].startswith(reverse("mfa_activate_totp"))

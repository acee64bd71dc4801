"""Nothing that is not public appears on any public page or in any export.

One project has every field filled, every non-public field holding a unique marker; it has members,
an agreement, requests in several states with private messages and decisions, and questions from
the public in every state. Every public page and both exports are then searched for every marker.
"""

import io
import json

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from portal import services
from portal.models import Dataset, Membership, Organisation, ProjectApproval
from reviews import services as review_services
from reviews.models import Message, Step
from tests import factories
from transparency import digests, questions

pytestmark = pytest.mark.django_db

SECRET = {
    "technical summary": "QXTECHSUMMARY8841",
    "ethics reference": "QXETHICS8842",
    "lead e-mail": "qxlead8843@example.org",
    "member e-mail": "qxmember8844@example.org",
    "member name": "QXMEMBERNAME8845",
    "lead name": "QXLEADNAME8862",
    "membership justification": "QXJUSTIFY8846",
    "lapsed reason": "QXLAPSED8847",
    "approval rationale": "QXRATIONALE8848",
    "agreement reference": "QXDAA8849",
    "agreement conditions": "QXCONDITIONS8850",
    "TRE internal description": "QXTREDESC8851",
    "TRE pause reason": "QXPAUSE8852",
    "unlisted dataset name": "QXHIDDENDATA8853",
    "unlisted dataset description": "QXHIDDENDESC8854",
    "dataset identifier": "QXDATASETID8855",
    "accreditation reference": "QXACCRED8856",
    "request title": "QXREQTITLE8857",
    "request description": "QXREQDESC8858",
    "private message": "QXMESSAGE8859",
    "review decision rationale": "QXDECISION8860",
    "pending question": "QXPENDINGQ8861",
    "rejected question": "QXREJECTEDQ8863",
    "rejection reason": "QXREJECTREASON8864",
    "asker name": "QXASKERNAME8865",
    "asker e-mail": "qxasker8866@example.org",
    "draft project title": "QXDRAFTTITLE8867",
    "revoked project title": "QXREVOKEDTITLE8868",
    "officer e-mail": "qxofficer8869@example.org",
    "ORCID": "0000-0002-1825-0097",
    "lead ORCID": "0000-0001-5109-3700",
}

SHOWN = {
    "title": "PUBLICTITLE Outcomes after COVID-19",
    "lay summary": "PUBLICLAY who recovered, and how fast.",
    "public benefit": "PUBLICBENEFIT better planning.",
    "sponsor": "PUBLICSPONSOR University",
    "funder": "PUBLICFUNDER Trust",
    "grant": "PUBLICGRANT-1",
    "TRE description": "PUBLICTREDESC secure environment.",
    "dataset": "PUBLICDATASET Hospital admissions",
    "dataset description": "PUBLICDATADESC Admissions since 2010.",
    "published question": "PUBLICQUESTION Who can see my data?",
    "published answer": "PUBLICANSWER Only approved researchers, inside the TRE.",
}


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def everything(registry, new_job, alice, bob, olivia, tre_a, admin_user, django_capture_on_commit_callbacks):
    """The registry's project with every field filled, and everything around it."""
    project = registry["project"]
    sponsor = Organisation.objects.create(name=SHOWN["sponsor"], website="https://sponsor.example.org")
    type(project).objects.filter(pk=project.pk).update(
        title=SHOWN["title"],
        lay_summary=SHOWN["lay summary"],
        public_benefit=SHOWN["public benefit"],
        technical_summary=SECRET["technical summary"],
        ethics_reference=SECRET["ethics reference"],
        sponsor=sponsor,
        funder=SHOWN["funder"],
        grant_reference=SHOWN["grant"],
        start_date=timezone.localdate(),
    )
    bob.email, alice.email, olivia.email = (
        SECRET["lead e-mail"],
        SECRET["member e-mail"],
        SECRET["officer e-mail"],
    )
    for user in (bob, alice, olivia):
        user.save()
    bob.profile.display_name, bob.profile.orcid = SECRET["lead name"], SECRET["lead ORCID"]
    bob.profile.save()
    alice.profile.display_name = SECRET["member name"]
    alice.profile.save()  # alice's ORCID (SECRET["ORCID"]) was set by the registry fixture
    Membership.objects.filter(project=project, person=alice).update(
        justification=SECRET["membership justification"], lapsed_reason=SECRET["lapsed reason"]
    )
    ProjectApproval.objects.filter(project=project).update(rationale=SECRET["approval rationale"])
    bob.accreditations.update(reference=SECRET["accreditation reference"])

    tre_a.description = SECRET["TRE internal description"]
    tre_a.public_description = SHOWN["TRE description"]
    tre_a.paused_reason = SECRET["TRE pause reason"]
    tre_a.save()
    Dataset.objects.filter(pk=registry["dataset"].pk).update(
        name=SHOWN["dataset"],
        public_description=SHOWN["dataset description"],
        identifier=SECRET["dataset identifier"],
    )
    hidden = factories.DatasetFactory(
        tre=tre_a,
        name=SECRET["unlisted dataset name"],
        public_description=SECRET["unlisted dataset description"],
        is_public=False,
    )
    agreement = project.agreements.get()
    type(agreement).objects.filter(pk=agreement.pk).update(
        reference=SECRET["agreement reference"], conditions=SECRET["agreement conditions"]
    )
    agreement.datasets.add(hidden)

    released = new_job("released", title=SECRET["request title"])
    released.request.description = SECRET["request description"]
    released.request.save()
    Message.objects.create(job=released, author=olivia, body=SECRET["private message"])
    in_review = new_job("in_review")
    review_services.decide_step(
        in_review, Step.SAFE_DATA, "changes", SECRET["review decision rationale"], by=olivia
    )
    new_job("rejected")

    with django_capture_on_commit_callbacks(execute=True):
        questions.submit_question(
            project,
            question=SECRET["pending question"],
            name=SECRET["asker name"],
            email=SECRET["asker e-mail"],
        )
        rejected = questions.submit_question(
            project,
            question=SECRET["rejected question"],
            name=SECRET["asker name"],
            email=SECRET["asker e-mail"],
        )
        questions.reject_question(rejected, by=olivia, reason=SECRET["rejection reason"])
        answered = questions.submit_question(
            project,
            question=SHOWN["published question"],
            name=SECRET["asker name"],
            email=SECRET["asker e-mail"],
        )
        questions.publish_question(answered, by=olivia, answer=SHOWN["published answer"])

    # A project that was never approved, and one whose only approval was revoked.
    factories.ProjectFactory(title=SECRET["draft project title"], lead=bob)
    revoked = factories.ProjectFactory(title=SECRET["revoked project title"], lead=bob, status="active")
    factories.make_dur_ready(revoked, tre_a, olivia)
    services.decide_project(revoked.approvals.create(tre=tre_a), "approved", by=olivia)
    services.decide_project(revoked.approvals.get(), "revoked", "Ethics lapsed.", by=olivia)

    digests.publish_audit_digest()
    project.refresh_from_db()
    return project


def _public_urls(project):
    identifier = project.identifier
    return [
        reverse("public_home"),
        reverse("public_project_list"),
        reverse("public_project_list") + "?q=PUBLICTITLE",
        reverse("public_project_list") + "?q=QX",  # searching for a secret finds nothing
        reverse("public_project_detail", args=[identifier]),
        reverse("public_question_ask", args=[identifier]),
        reverse("public_question_sent", args=[identifier]),
        reverse("public_tre_list"),
        reverse("public_tre_detail", args=["tre-a"]),
        reverse("public_statistics"),
        reverse("public_dur"),
        reverse("public_dur_download", args=["csv"]),
        reverse("public_dur_download", args=["json"]),
        reverse("public_audit"),
        reverse("public_audit_digests"),
        reverse("public_glossary"),
    ]


def _leaks(text):
    lowered = text.lower()
    return [what for what, marker in SECRET.items() if marker.lower() in lowered]


def test_every_marker_is_really_stored(everything):
    """So the searches below would find a leak: each secret is somewhere in the database."""
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    stored = dump.getvalue().lower()
    assert [what for what, marker in SECRET.items() if marker.lower() not in stored] == []


def test_no_public_page_shows_anything_not_public(client, everything):
    for url in _public_urls(everything):
        response = client.get(url)
        assert response.status_code == 200, url
        assert _leaks(response.content.decode()) == [], url


def test_signed_in_people_see_the_same_public_pages(client, everything, olivia):
    client.force_login(olivia)
    for url in _public_urls(everything):
        assert _leaks(client.get(url).content.decode()) == [], url


def test_the_exports_show_nothing_not_public(everything):
    for fmt in ("csv", "json"):
        out, err = io.StringIO(), io.StringIO()
        call_command("export_dur", "--format", fmt, stdout=out, stderr=err)
        assert SHOWN["title"] in out.getvalue()
        assert _leaks(out.getvalue() + err.getvalue()) == [], fmt


def test_the_project_page_does_show_the_public_fields(client, everything):
    page = client.get(reverse("public_project_detail", args=[everything.identifier])).content.decode()
    for what, text in SHOWN.items():
        if what != "TRE description":
            assert text.replace("'", "&#x27;") in page, what
    tre_page = client.get(reverse("public_tre_detail", args=["tre-a"])).content.decode()
    assert SHOWN["TRE description"] in tre_page


def test_the_register_entry_names_no_one_and_lists_only_public_data(everything):
    document = json.loads(public_dur_json())
    (entry,) = document["data_uses"]
    assert entry["project_title"] == SHOWN["title"]
    assert entry["organisation_name"] == SHOWN["sponsor"]
    assert entry["non_gateway_datasets"] == [SHOWN["dataset"]]
    assert entry["non_gateway_applicants"] == [] and entry["applicant_id"] is None
    assert entry["technical_summary"] is None


def test_projects_not_approved_are_not_found(client, everything):
    for title in (SECRET["draft project title"], SECRET["revoked project title"]):
        project = type(everything).objects.get(title=title)
        assert client.get(reverse("public_project_detail", args=[project.identifier])).status_code == 404
        assert client.get(reverse("public_question_ask", args=[project.identifier])).status_code == 404


def public_dur_json():
    from transparency import dur

    return dur.export("json")[0]

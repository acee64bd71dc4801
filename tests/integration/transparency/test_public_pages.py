"""The public pages: open to anyone, accessible markup, the right projects, cached, constant query counts."""

import csv
import io
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from lxml import html

from portal import audit, services
from portal.forms import ProjectForm
from portal.models import Organisation
from tests import factories
from transparency import digests, dur, questions, records

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def approved_project(lead, officer, tre, n, *, datasets=1, title=None):
    """A project approved at `tre` through the services, its agreement in force first."""
    sponsor = Organisation.objects.create(name=f"Sponsor {n}")
    form = ProjectForm(
        {
            "identifier": f"PRJ-PUB-{n:04d}",
            "title": title or f"Public project {n}",
            "lay_summary": f"Lay summary {n}.",
            "public_benefit": f"Benefit {n}.",
            "technical_summary": "Not for the public.",
            "sponsor": sponsor.pk,
        }
    )
    assert form.is_valid(), form.errors
    project = services.create_project(form, by=lead)
    agreement = factories.AgreementFactory(project=project, tre=tre, created_by=officer)
    agreement.datasets.add(*[factories.DatasetFactory(tre=tre) for _ in range(datasets)])
    services.change_agreement_status(agreement, "activate", by=officer)
    services.decide_project(services.request_project_approval(project, tre, by=lead), "approved", by=officer)
    return project


PAGES = [
    ("public_home", ()),
    ("public_project_list", ()),
    ("public_tre_list", ()),
    ("public_tre_detail", ("tre-a",)),
    ("public_statistics", ()),
    ("public_dur", ()),
    ("public_audit", ()),
    ("public_glossary", ()),
]


def _accessibility_problems(page):
    """What a reviewer would flag: language, one h1, heading order, labels, captions, CSP-unsafe markup."""
    tree = html.fromstring(page)
    problems = []
    if tree.get("lang") != "en-GB":
        problems.append("html lang")
    if len(tree.xpath("//h1")) != 1:
        problems.append("exactly one h1")
    levels = [int(h.tag[1]) for h in tree.xpath("//main//*[self::h1 or self::h2 or self::h3 or self::h4]")]
    problems += [f"h{a} then h{b}" for a, b in zip(levels, levels[1:], strict=False) if b > a + 1]
    for control in tree.xpath("//input[not(@type='hidden') and not(@type='submit')] | //textarea | //select"):
        if not tree.xpath(f"//label[@for='{control.get('id')}']") and not control.get("aria-label"):
            problems.append(f"unlabelled {control.get('name')}")
    for table in tree.xpath("//table"):
        if not table.xpath("./caption"):
            problems.append("table without a caption")
    if tree.xpath("//*[@style]") or tree.xpath("//style"):
        problems.append("inline style (CSP)")
    if tree.xpath("//script[not(@src)]"):
        problems.append("inline script (CSP)")
    for svg in tree.xpath("//*[local-name()='svg']"):
        if svg.get("role") != "img" or not svg.get("aria-labelledby"):
            problems.append("unnamed svg")
    return problems


@pytest.mark.parametrize(("name", "args"), PAGES)
def test_public_pages_are_open_and_accessible(client, project, new_job, name, args):
    new_job("released")
    digests.publish_audit_digest()
    response = client.get(reverse(name, args=args))
    assert response.status_code == 200
    assert _accessibility_problems(response.content) == []
    nav = html.fromstring(response.content).xpath("//nav[@aria-label='Menu']//a/text()")
    assert nav == [
        "Projects",
        "TREs and data",
        "Statistics",
        "Data Use Register",
        "How we check the record",
        "Glossary",
    ]


def test_the_project_pages_are_accessible(client, project, new_job):
    new_job("rejected")
    for url in (
        reverse("public_project_detail", args=[project.identifier]),
        reverse("public_question_ask", args=[project.identifier]),
    ):
        assert _accessibility_problems(client.get(url).content) == [], url


def test_the_current_section_is_marked_in_the_menu(client, project):
    tree = html.fromstring(client.get(reverse("public_project_detail", args=[project.identifier])).content)
    assert tree.xpath("//nav[@aria-label='Menu']//a[@aria-current]/text()") == ["Projects"]
    tree = html.fromstring(client.get(reverse("public_statistics")).content)
    assert tree.xpath("//nav[@aria-label='Menu']//a[@aria-current='page']/text()") == ["Statistics"]


def test_a_project_page_shows_its_public_record(client, project, new_job, tre_a, tre_b, olivia):
    unlisted = factories.DatasetFactory(tre=tre_a, name="Unlisted cancer data", is_public=False)
    project.agreements.get().datasets.add(unlisted)
    for state in ("released", "rejected", "in_review"):
        new_job(state)
    tree = html.fromstring(client.get(reverse("public_project_detail", args=[project.identifier])).content)
    text = tree.text_content()
    assert tree.xpath("//h1")[0].text_content() == "Outcomes after COVID-19"
    assert "Who recovered, and how fast." in text and "Better planning." in text
    approvals = [[c.text_content() for c in row] for row in tree.xpath("(//table)[1]/tbody/tr")]
    assert approvals == [["TRE A", timezone.localdate().strftime("%-d %B %Y")]]
    dataset = project.agreements.get().datasets.get(is_public=True)
    assert dataset.name in text and "Unlisted cancer data" not in text
    assert "3 requests to analyse data have been sent for review." in " ".join(text.split())
    outcomes = {
        row.xpath("./th")[0].text_content(): row.xpath("./td")[0].text_content()
        for row in tree.xpath("//caption[contains(., 'Where the requests are now')]/../tbody/tr")
    }
    assert outcomes == {"Being reviewed": "1", "Turned down": "1", "Results released": "1"}
    assert "has not published any results here yet" in text
    assert tree.xpath(f"//a[@href='{reverse('public_question_ask', args=[project.identifier])}']")


def test_every_job_status_has_a_plain_outcome():
    from crates.models import Job

    assert set(records._GROUP_OF_STATUS) == set(Job.Status.values)


def test_projects_not_approved_anywhere_are_not_public(client, bob, project):
    draft = factories.ProjectFactory(lead=bob, title="A draft nobody approved")
    assert client.get(reverse("public_project_detail", args=[draft.identifier])).status_code == 404
    assert client.get(reverse("public_project_detail", args=["PRJ-NO-SUCH"])).status_code == 404
    listing = client.get(reverse("public_project_list")).content.decode()
    assert project.title in listing and draft.title not in listing


def test_the_project_list_is_newest_approval_first_searchable_and_paged(
    client, bob, olivia, tre_a, monkeypatch
):
    for n in range(3):
        approved_project(
            bob, olivia, tre_a, n, title=["Asthma in children", "Stroke care", "Asthma in adults"][n]
        )
    titles = html.fromstring(client.get(reverse("public_project_list")).content).xpath("//li/h2/a/text()")
    assert titles == ["Asthma in adults", "Stroke care", "Asthma in children"]

    found = html.fromstring(client.get(reverse("public_project_list"), {"q": "asthma"}).content)
    assert found.xpath("//li/h2/a/text()") == ["Asthma in adults", "Asthma in children"]
    assert "2 projects found" in found.text_content()
    by_identifier = html.fromstring(client.get(reverse("public_project_list"), {"q": "prj-pub-0001"}).content)
    assert by_identifier.xpath("//li/h2/a/text()") == ["Stroke care"]

    monkeypatch.setattr(records, "PROJECTS_PER_PAGE", 2)
    second = html.fromstring(client.get(reverse("public_project_list"), {"page": 2}).content)
    assert second.xpath("//li/h2/a/text()") == ["Asthma in children"]
    assert "Page 2 of 2" in second.text_content()


def test_tre_pages_show_listed_data_and_approved_projects(client, project, tre_a, tre_b):
    tre_a.public_description = "Holds hospital data for the region."
    tre_a.save()
    factories.DatasetFactory(tre=tre_a, name="Listed admissions", public_description="Every admission.")
    factories.DatasetFactory(tre=tre_a, name="Not listed", is_public=False)
    listing = html.fromstring(client.get(reverse("public_tre_list")).content)
    assert listing.xpath("//li/h2/a/text()") == ["TRE A", "TRE B"]
    assert "2 listed datasets · 1 approved project" in " ".join(listing.text_content().split())

    page = html.fromstring(client.get(reverse("public_tre_detail", args=["tre-a"])).content)
    text = " ".join(page.text_content().split())
    assert "Holds hospital data for the region." in text
    assert "Listed admissions" in text and "Not listed" not in text
    assert "At least 2 trained people check every result independently" in text
    assert "Counts of fewer than 10 people are not released" in text
    assert page.xpath("//li/h3/a/text()") == [project.title]
    assert client.get(reverse("public_tre_detail", args=["no-such-tre"])).status_code == 404


def test_the_register_page_and_downloads(client, bob, olivia, tre_a):
    approved_project(bob, olivia, tre_a, 1)
    page = html.fromstring(client.get(reverse("public_dur")).content)
    assert "The register lists 1 approved project." in " ".join(page.text_content().split())
    rows = page.xpath("//caption[contains(., 'Columns')]/../tbody/tr")
    assert len(rows) == 31
    assert [
        r.xpath("./th")[0].text_content() for r in rows if r.xpath("./td")[0].text_content() == "Required"
    ] == [c.name for c in dur.REQUIRED]

    download = client.get(reverse("public_dur_download", args=["csv"]))
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    assert download["Content-Disposition"].startswith('attachment; filename="data-use-register-')
    table = list(csv.reader(io.StringIO(download.content.decode())))
    assert tuple(table[0]) == dur.HEADERS and table[1][0] == "PRJ-PUB-0001"
    as_json = client.get(reverse("public_dur_download", args=["json"]))
    assert as_json["Content-Type"] == "application/json"
    assert as_json.json()["data_uses"][0]["project_id_text"] == "PRJ-PUB-0001"


def test_public_pages_are_served_from_the_cache(client, project):
    url = reverse("public_project_detail", args=[project.identifier])
    first = client.get(url)
    assert "max-age=300" in first["Cache-Control"]
    with CaptureQueriesContext(connection) as captured:
        again = client.get(url)
    assert again.status_code == 200 and len(captured) == 0
    assert again.content == first.content


def test_public_pages_only_answer_get_and_head(client, project):
    assert client.head(reverse("public_project_list")).status_code == 200
    assert client.post(reverse("public_project_list")).status_code == 405


def test_a_published_answer_shows_at_once_and_other_changes_within_the_ttl(
    client, project, olivia, django_capture_on_commit_callbacks
):
    url = reverse("public_project_detail", args=[project.identifier])
    client.get(url)
    type(project).objects.filter(pk=project.pk).update(title="A new title")
    assert "A new title" not in client.get(url).content.decode()  # cached for up to the TTL

    with django_capture_on_commit_callbacks(execute=True):
        question = questions.submit_question(project, question="Who can see the results?")
        questions.publish_question(question, by=olivia, answer="Everyone, once checked.")
    page = client.get(url).content.decode()
    assert "Everyone, once checked." in page and "A new title" in page


# --- Query counts at two sizes -----------------------------------------------------------


def _grow(n, start, *, bob, olivia, tre_a, project):
    for i in range(start, start + n):
        approved_project(bob, olivia, tre_a, i, datasets=2)
        tre = factories.TREFactory()
        factories.DatasetFactory.create_batch(2, tre=tre)
        question = questions.submit_question(project, question=f"Question {i}?")
        questions.publish_question(question, by=olivia, answer=f"Answer {i}.")
        audit.record("test.event", by=None, object_type="thing")
        digests.publish_audit_digest(today=timezone.localdate() + timedelta(days=i))


COUNTED = [
    ("public_home", lambda p: ()),
    ("public_project_list", lambda p: ()),
    ("public_project_detail", lambda p: (p.identifier,)),
    ("public_tre_list", lambda p: ()),
    ("public_tre_detail", lambda p: ("tre-a",)),
    ("public_statistics", lambda p: ()),
    ("public_dur", lambda p: ()),
    ("public_dur_download", lambda p: ("csv",)),
    ("public_dur_download", lambda p: ("json",)),
    ("public_audit", lambda p: ()),
    ("public_audit_digests", lambda p: ()),
]


@pytest.mark.parametrize(("name", "args"), COUNTED)
def test_query_count_is_constant(client, name, args, project, new_job, bob, olivia, tre_a):
    url = reverse(name, args=args(project))

    def queries():
        cache.clear()
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    new_job("released")
    _grow(2, 1, bob=bob, olivia=olivia, tre_a=tre_a, project=project)
    client.get(url)  # warm the per-process caches (content types) first
    small = queries()
    new_job("rejected")
    new_job("awaiting_review")
    _grow(6, 3, bob=bob, olivia=olivia, tre_a=tre_a, project=project)
    large = queries()
    assert large == small, f"{name}: {small} queries with 3 projects, {large} with 9"

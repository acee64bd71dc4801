"""Public statistics: what is counted, the median time to a decision, and charts that come with their tables."""

from datetime import date, timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from lxml import html

from crates.models import Job, Request
from reviews.models import StepDecision
from transparency import statistics

pytestmark = pytest.mark.django_db

SVG_NS = {"svg": "http://www.w3.org/2000/svg"}


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def _final_decision(job):
    return StepDecision.objects.get(Q(job=job), Q(step="sign_off", outcome="approve") | Q(outcome="reject"))


@pytest.fixture
def history(new_job):
    """Five requests to TRE A: released, withheld, still queued, turned down, and waiting for review.

    The four decided ones reached the TRE 2, 4, 10 and 1 days before their final decision.
    """
    jobs = {
        state: new_job(state) for state in ("released", "withheld", "queued", "rejected", "awaiting_review")
    }
    for state, days in {"released": 2, "withheld": 4, "queued": 10, "rejected": 1}.items():
        decided_at = _final_decision(jobs[state]).decided_at
        Job.objects.filter(pk=jobs[state].pk).update(created_at=decided_at - timedelta(days=days))
    return jobs


def test_the_last_twelve_months_are_counted(history):
    stats = statistics.statistics()
    assert stats.totals == {"requests": 5, "approved": 3, "rejected": 1, "released": 1, "withheld": 1}
    requests, decisions, waits, outputs = stats.figures
    this_month = timezone.localdate().strftime("%B %Y")
    assert len(requests.rows) == 12 and requests.rows[-1] == (this_month, "5")
    assert decisions.headers == ("Month", "Approved", "Turned down")
    assert decisions.rows[-1] == (this_month, "3", "1")
    assert outputs.rows[-1] == (this_month, "1", "1")
    assert all(row[1:] == ("0", "0") for row in decisions.rows[:-1])


def test_the_median_time_to_a_decision_is_per_tre(history):
    waits = statistics.statistics().figures[2]
    assert waits.headers == ("TRE", "Median days to decision", "Decisions counted")
    assert waits.rows == (("TRE A", "3", "4"),)  # the median of 1, 2, 4 and 10 days
    assert waits.chart.horizontal and waits.chart.categories == ("TRE A",)
    assert waits.chart.series[0].values == (3.0,)


def test_a_request_older_than_a_year_is_left_out(history):
    old = history["awaiting_review"].request
    Request.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=400))
    assert statistics.statistics().totals["requests"] == 4


def test_requests_that_never_reached_review_are_not_counted(history, registry, alice):
    Request.objects.create(project=registry["project"], submitter=alice, title="Crate refused at intake")
    assert statistics.statistics().totals["requests"] == 5


def test_every_chart_is_an_accessible_image_followed_by_its_table(client, history):
    page = client.get(reverse("public_statistics"))
    assert page.status_code == 200
    tree = html.fromstring(page.content)
    sections = tree.xpath("//section[contains(@class, 'public-figure')]")
    assert len(sections) == 4
    for section in sections:
        heading = section.xpath("./h2")[0].text_content()
        svg = section.xpath(".//*[local-name()='svg']")[0]
        assert svg.get("role") == "img"
        title_id, desc_id = svg.get("aria-labelledby").split()
        assert svg.xpath(f".//*[@id='{title_id}']")[0].text_content() == heading
        assert svg.xpath(f".//*[@id='{desc_id}']")[0].text_content().strip()
        table = section.xpath(".//table")[0]
        assert table.xpath("./caption")[0].text_content() == f"{heading}: the numbers"
        assert table.xpath(".//th[@scope='col']") and table.xpath(".//th[@scope='row']")
        # The table follows the chart, one click away (no script needed: a <details> element).
        details = table.xpath("ancestor::details")[0]
        assert section.index(svg.getparent()) < section.index(details)
        assert details.xpath("./summary")[0].text_content() == f"Show the numbers for “{heading}” as a table"
    decisions = sections[1]
    last_row = [cell.text_content() for cell in decisions.xpath(".//tbody/tr")[-1]]
    assert last_row == [timezone.localdate().strftime("%B %Y"), "3", "1"]
    assert "Approved: 3 in all" in decisions.xpath(".//*[local-name()='desc']")[0].text_content()


def test_the_page_renders_before_anything_has_happened(client, db):
    page = client.get(reverse("public_statistics"))
    assert page.status_code == 200
    text = page.content.decode()
    assert text.count("No data for this period") >= 4  # in each picture, and in the empty median table


def test_the_statistics_page_makes_the_same_number_of_queries_however_much_has_happened(client, new_job):
    def queries():
        cache.clear()
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("public_statistics")).status_code == 200
        return len(captured)

    new_job("released")
    client.get(reverse("public_statistics"))
    small = queries()
    for state in ("withheld", "rejected", "queued"):
        new_job(state)
    assert queries() == small


def test_month_labels_carry_the_year_without_crowding():
    short, full = statistics._month_labels([date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)])
    assert short == ["Dec", "Jan\n2026", "Feb"]
    assert full == ["December 2025", "January 2026", "February 2026"]
    assert statistics._month_labels([date(2026, 3, 1), date(2026, 4, 1)])[0] == ["Mar\n2026", "Apr"]

"""Certificates exist only when there is something to certify, and their table rows never split."""

import pytest
from django.template.loader import render_to_string
from weasyprint import HTML
from weasyprint.formatting_structure import boxes

from crates.models import Job
from reviews import services
from reviews.views import _job_context

pytestmark = pytest.mark.django_db


def _rows_per_page(document):
    """For each page, the table rows (by their HTML element) laid out on it, whole or in part."""
    pages = []
    for page in document.pages:
        found, stack = set(), [page._page_box]
        while stack:
            box = stack.pop()
            if isinstance(box, boxes.TableRowBox):
                found.add(id(box.element))
            stack.extend(getattr(box, "children", []))
        pages.append(found)
    return pages


def test_decision_certificate_rows_never_split_across_pages(rf, new_job, olivia, alice):
    job = new_job(Job.Status.CHANGES_REQUESTED)
    for n in range(40):
        services.post_message(job, f"Reply {n}: " + "a long explanation of the change " * 12, by=alice)
    request = rf.get("/")
    request.user = olivia
    context = _job_context(request, job)
    context["all_decisions"] = job.decisions.select_related("decided_by", "version")
    context["generated_by"] = olivia
    # Make some evidence rows tall, so that a row would straddle a page break if it could.
    for decision in context["all_decisions"]:
        for finding in decision.evidence:
            finding["message"] = finding["message"] + " (details) " * 60
    document = HTML(string=render_to_string("reviews/certificate.html", context)).render()
    pages = _rows_per_page(document)
    assert len(pages) >= 2
    for first, second in zip(pages, pages[1:], strict=False):
        assert not first & second, "a table row was split across two pages"

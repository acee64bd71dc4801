"""The public pages without JavaScript, and proof that the page checks catch what they look for."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import run_axe

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_public_pages_read_without_javascript(portal, registry, open_tab, recorder, tre_a):
    project = registry["project"]
    # axe-core is a script, so it cannot run here; the same pages are checked with it in the journey.
    visitor = open_tab(java_script_enabled=False, axe=False)
    page = visitor.page
    visitor.goto("/public/", "transparency home")
    page.get_by_role("link", name="Approved projects").click()
    visitor.check("approved projects")
    page.get_by_label("Search the projects").fill(project.identifier)
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("status")).to_have_text(re.compile(f"1 project found for “{project.identifier}”"))
    visitor.check("search")
    page.get_by_role("link", name=project.title).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(project.title)
    expect(page.get_by_text(project.lay_summary)).to_be_visible()
    approved = page.get_by_role("table", name="TREs that approved the project")
    expect(approved.get_by_role("link", name=tre_a.name)).to_be_visible()
    expect(page.get_by_role("region", name="Datasets the project may use")).to_contain_text(
        registry["dataset"].name
    )
    visitor.check("the project")
    page.get_by_role("link", name="Statistics", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    visitor.check("statistics")
    # Without JavaScript the NHS.UK header stays as the server rendered it: no "More" menu was built.
    assert page.evaluate("() => document.body.classList.contains('nhsuk-frontend-supported')") is False
    recorder.assert_clean()


def test_an_inline_script_is_refused_and_reported(portal, open_tab, recorder):
    visitor = open_tab()
    visitor.goto("/public/", "transparency home")
    recorder.assert_clean()
    visitor.page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.ran = true";
            document.body.append(script);
        }"""
    )
    visitor.page.wait_for_timeout(200)
    assert visitor.page.evaluate("() => window.ran === true") is False
    assert any("securitypolicyviolation: script-src-elem blocked inline" in line for line in recorder.console)
    with pytest.raises(AssertionError, match="script-src-elem"):
        recorder.assert_clean()


def test_axe_reports_an_image_without_a_text_alternative(portal, open_tab):
    visitor = open_tab()
    page = visitor.page
    visitor.goto("/public/", "transparency home")
    assert run_axe(page) == []
    page.evaluate(
        """() => {
            const image = document.createElement("img");
            image.src = "/static/nhsuk/assets/images/favicon.svg";
            document.querySelector("main").append(image);
        }"""
    )
    (violation,) = run_axe(page)
    assert violation["id"] == "image-alt"
    assert [node["html"] for node in violation["nodes"]] == [
        '<img src="/static/nhsuk/assets/images/favicon.svg">'
    ]

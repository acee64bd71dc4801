"""Browser fixtures: the live portal, Debian's chromium driven by Playwright, signed-in tabs, axe-core.

Every page a test looks at goes through `Tab.check`: a full-page screenshot kept as an artefact
(BROWSER_ARTIFACTS_DIR, default var/test-artifacts/browser/<test>/NN-<step>.png), axe-core with the
WCAG 2.0, 2.1 and 2.2 A and AA rules, and the console watched for Content Security Policy violations
and script errors. Tests end with `recorder.assert_clean()`.
"""

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.core.cache import caches
from django.db import connections
from playwright.sync_api import expect, sync_playwright

from tests.live import shared_live_server

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("BROWSER_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS_DIR") or REPO / "var" / "test-artifacts" / "browser")
AXE_JS = REPO / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
PASSWORD = "correct horse battery staple"  # noqa: S105  (tests.factories.UserFactory's password)
TOTP_SECRET = "JBSWY3DPEHPK3PXP"  # tests.conftest activates it for every privileged member of the cast

# NHS.UK frontend's compiled CSS declares its Frutiger @font-face on assets.nhs.uk. The portal's CSP
# (font-src 'self' data:) refuses it on purpose (ADR 0001: Frutiger is licensed to NHS.UK domains, and
# a TRE's pages must not tell a third party who visits them), so the pages use the Arial fallback;
# chromium still reports the refusal on every page. Only this exact refusal is tolerated.
NHS_FONTS = re.compile(
    r"Loading the font 'https://assets\.nhs\.uk/fonts/[\w.-]+' violates the following Content Security "
    r"Policy directive: \"font-src 'self' data:\"\. The action has been blocked\.$"
    r"|securitypolicyviolation: font-src blocked https://assets\.nhs\.uk/fonts/[\w.-]+ at "
)
# The standard violation event, sent to the console so that one listener hears it with chromium's own.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`securitypolicyviolation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile || document.location.href}:${event.lineNumber}`);
});
"""
AXE_RUN = """
async (tags) => {
  const results = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map((n) => ({target: n.target.join(" "), html: n.html, summary: n.failureSummary})),
  }));
}
"""


@pytest.fixture(autouse=True)
def _allow_orm_under_playwright(monkeypatch):
    # Playwright's sync API keeps an asyncio loop running in this thread, which makes Django refuse
    # ORM calls from the test itself; no coroutine ever touches the database here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _fresh_page_cache():
    # Public pages are cached per URL; another test's copy must not answer for this test's database.
    for cache in caches.all():
        cache.clear()


# --- The live portal --------------------------------------------------------------------------


@pytest.fixture
def portal(django_db_setup, live_server, settings):
    """pytest-django's live server, safe to share with the test thread on in-memory SQLite."""
    # Agents long-poll for work; keep each poll short so that pages never wait long behind one.
    settings.PORTAL_AGENT_CLAIM_POLL_SECONDS = 0.1
    settings.PORTAL_AGENT_CLAIM_MAX_WAIT_SECONDS = 1
    settings.PORTAL_BASE_URL = live_server.url
    with shared_live_server(live_server, join_requests=True) as portal:
        yield portal


# --- The browser ------------------------------------------------------------------------------


@pytest.fixture
def browser(portal):
    """Debian's chromium, headless, closed before the portal stops sharing its database connection.

    Started per test: Playwright's event loop must not outlive the test into the rest of the suite."""
    assert Path(CHROMIUM).exists(), (
        f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)"
    )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
            # While Playwright's loop runs, asgiref gives the test's queries a database connection of
            # their own; close it here, in that same context, or it outlives the test database.
            connections.close_all()


def _slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80]


@dataclass
class Recorder:
    """What the browser saw: screenshots on disk, axe violations and console problems per page."""

    directory: Path
    count: int = 0
    pages: list = field(default_factory=list)
    violations: dict = field(default_factory=dict)
    console: list = field(default_factory=list)

    def shot(self, page, step):
        self.count += 1
        path = self.directory / f"{self.count:02d}-{_slug(step)}.png"
        page.screenshot(path=path, full_page=True)
        self.pages.append(f"{path.name}: {page.url}")
        return path

    def report(self):
        lines = []
        for where, found in self.violations.items():
            lines.append(f"\n{where}")
            for v in found:
                lines.append(f"  [{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
                lines.extend(f"      {n['target']}\n        {n['html'][:200]}" for n in v["nodes"][:5])
        return "\n".join(lines)

    def assert_clean(self):
        assert self.pages, "no page was checked"
        assert not self.violations, f"axe-core found accessibility violations:{self.report()}"
        assert not self.console, "the browser reported:\n" + "\n".join(self.console)


@pytest.fixture
def recorder(request):
    directory = ARTIFACTS / _slug(request.node.name)
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.png"):
        old.unlink()
    recorder = Recorder(directory)
    yield recorder
    (directory / "pages.txt").write_text("\n".join(recorder.pages) + "\n")
    if recorder.violations:
        (directory / "axe-violations.json").write_text(json.dumps(recorder.violations, indent=1))


class Tab:
    """One signed-in (or anonymous) browser context and its page, checked at every step."""

    def __init__(self, context, who, recorder, portal, *, axe=True):
        self.context, self.who, self.recorder, self.portal = context, who, recorder, portal
        self.axe = axe
        context.add_init_script(script=CSP_LISTENER)
        self.page = context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: recorder.console.append(f"{who}: script error {error}"))

    def _console(self, message):
        if message.type == "error" and not NHS_FONTS.match(message.text):
            source = message.location.get("url")
            where = f" ({source})" if source and source != self.page.url else ""
            self.recorder.console.append(f"{self.who} on {self.page.url}: {message.text}{where}")

    def goto(self, path, step):
        response = self.page.goto(self.portal.url + path)
        assert response is not None and response.ok, (path, response and response.status)
        return self.check(step)

    def check(self, step):
        """Screenshot, axe-core and console for the page as it now stands."""
        page = self.page
        page.wait_for_load_state("load")
        step = f"{self.who} {step}"
        self.recorder.shot(page, step)
        if self.axe:
            found = run_axe(page)
            if found:
                self.recorder.violations[f"{step} ({page.url})"] = found
        return page

    def close(self):
        self.context.close()


def run_axe(page):
    """axe-core's WCAG 2.0/2.1/2.2 A and AA violations on the page, as plain dicts."""
    # The portal's CSP forbids inline script, so add_script_tag(content=...) would be blocked; evaluating
    # the source through the DevTools protocol is not subject to the page's CSP, and leaves it in force.
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    return page.evaluate(AXE_RUN, WCAG_TAGS)


def totp_code():
    """The current code of the cast's authenticator, never one about to expire."""
    if 30 - time.time() % 30 < 3:
        time.sleep(30 - time.time() % 30 + 0.1)
    return format_hotp_value(hotp_value(TOTP_SECRET, int(time.time()) // 30))


@pytest.fixture
def open_tab(browser, recorder, portal):
    """open_tab(user=None, **context options): a tab signed in as `user` through the real forms."""
    tabs = []

    def open_(user=None, *, axe=True, **options):
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, accept_downloads=True, **options
        )
        tab = Tab(context, user.username if user else "visitor", recorder, portal, axe=axe)
        tabs.append(tab)
        if user is not None:
            sign_in(tab, user)
        return tab

    yield open_
    for tab in tabs:
        tab.close()


def sign_in(tab, user):
    """Sign in with e-mail and password, then the one-time code if the account has a second factor."""
    from tests.conftest import has_totp

    page = tab.goto("/accounts/login/", "sign in")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("main form").get_by_role("button", name=re.compile("sign in", re.I)).click()
    with tab.portal.db():
        second_factor = has_totp(user)
    if second_factor:
        page.wait_for_url("**/accounts/2fa/authenticate/")
        tab.check("second factor")
        page.get_by_label(re.compile("code", re.I)).fill(totp_code())
        page.locator("main form").get_by_role("button").first.click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

"""No Content-Security-Policy violation on any page, in real headless Chromium, on every backend.

The pages are derived from the app's URL map (every GET route but the API, health and static
files), visited by the role that owns them after logging in through the real form, at phone and
desktop size; plus the login page and error pages. htmx swaps (polls, action answers with their
out-of-band regions) are triggered too, as swapped-in HTML is held to the policy as well.
Violations are collected twice: by a `securitypolicyviolation` listener in every document, and
from Chromium's console, which reports each one there. Its browser contexts keep the policy (the
other journeys bypass it to add axe-core).
"""

from __future__ import annotations

import pytest

from tests.support.browser import (
    DESKTOP,
    PERSON_FOR_ROLE,
    ROLES,
    SIZES,
    choose_provider,
    poll_handled,
    role_page_urls,
    start_poll,
)

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips these tests (or fails them when required)
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.server]

# Installed before any of the page's own scripts, in every document the page loads.
COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push({
    directive: event.violatedDirective, blocked: event.blockedURI,
    source: event.sourceFile, line: event.lineNumber, sample: event.sample,
  });
});
"""


class ViolationLog:
    """What the browser reported, for every page of the sweep."""

    def __init__(self):
        self.events: list[str] = []
        self.console: list[str] = []
        self.visits = 0

    def watch(self, page, who: str) -> None:
        page.add_init_script(COLLECT_VIOLATIONS)
        page.on("console", lambda msg: self._console(who, msg))

    def _console(self, who: str, msg) -> None:
        if "Content Security Policy" in msg.text:
            self.console.append(f"{who}: {msg.text} ({msg.location.get('url')})")

    def collect(self, page, who: str) -> None:
        """The listener's findings in the current document."""
        for found in page.evaluate("() => window.__cspViolations || []"):
            self.events.append(f"{who} on {page.url}: {found}")
        page.evaluate("() => { window.__cspViolations = []; }")

    def visit(self, page, who: str, path: str, *, status: int = 200) -> None:
        """The page at phone size, then at desktop size (each a fresh load)."""
        for size in SIZES.values():
            page.set_viewport_size(size)
            response = page.goto(path)
            assert response.status == status, f"{who}: {path} → {response.status}"
            self.collect(page, who)
            self.visits += 1


def assert_the_collectors_catch_a_violation(browser, url: str) -> None:
    """The canary (in a context of its own, outside the journey's error checks): an inline
    style set by script is refused, and both collectors see it, so silence means something."""
    log = ViolationLog()
    context = browser.new_context(base_url=url)
    try:
        page = context.new_page()
        log.watch(page, "canary")
        page.goto("/login")
        page.evaluate("() => document.body.setAttribute('style', 'color: red')")
        page.wait_for_function("() => window.__cspViolations.length > 0")
        log.collect(page, "canary")
        expect(page.locator("body")).not_to_have_css("color", "rgb(255, 0, 0)")
    finally:
        context.close()
    assert any("style-src" in found for found in log.events), log.events
    assert log.console, "Chromium logged no CSP message for the refused inline style"


def assign_on_board(page, booking_id: int, provider_name: str) -> None:
    """An action answered with the card plus out-of-band lane counts and provider panel."""
    card = page.locator(f"#booking-{booking_id}")
    card.locator("a.action-assign").click()  # its form, fetched and swapped in
    assign = card.locator("details.action-assign")
    choose_provider(assign.get_by_label("Provider"), provider_name)
    assign.get_by_role("button", name="Assign").click()
    expect(page.locator(f".lane-assigned #booking-{booking_id}")).to_have_attribute(
        "data-status", "ASSIGNED"
    )


def test_no_page_violates_the_content_security_policy(journey, app, capsys):
    journey.keep_csp()  # the app's own policy, in every context: no test script may bypass it
    server = journey.server
    log = ViolationLog()
    for_provider = server.booking_for(assign_to="provider")["id"]  # the provider accepts it
    to_assign = server.booking_for("Boiler service")["id"]  # the admin assigns it
    to_cancel = server.booking_for("Window cleaning")["id"]  # the customer cancels it
    pages = role_page_urls(app, for_provider)
    assert_the_collectors_catch_a_violation(journey.browser, server.url)

    # Anonymous: the login page and an error page.
    anonymous = journey.open("anonymous")
    log.watch(anonymous, "anonymous")
    log.visit(anonymous, "anonymous", "/login")
    journey.expect_refusal(404)
    log.visit(anonymous, "anonymous", "/no-such-page", status=404)

    for who in ROLES:
        page = journey.open(who)
        log.watch(page, who)
        journey.log_in(page, PERSON_FOR_ROLE[who])
        log.collect(page, who)
        for path in pages[who]:
            log.visit(page, who, path)
        page.set_viewport_size(DESKTOP)
        page.goto(f"/{who}/")  # the role's home page, for the swaps
        page.evaluate("() => { window.__sameDocument = true; }")  # gone if a form navigates
        if who == "admin":
            start_poll(page, "#board")
            poll_handled(page)
            assign_on_board(page, to_assign, server.person("other_provider").name)
        elif who == "provider":
            start_poll(page, "#queue")
            poll_handled(page)
            page.locator(f"#booking-{for_provider}").get_by_role("button", name="Accept").click()
            expect(page.locator(f"#booking-{for_provider}")).to_have_attribute(
                "data-status", "IN_PROGRESS"
            )
        else:
            card = page.locator(f"#booking-{to_cancel}")
            card.locator("a.action-cancel").click()
            cancel = card.locator("details.action-cancel")
            cancel.get_by_role("checkbox").check()
            cancel.get_by_role("button", name="Cancel booking").click()
            expect(page.locator(f"#booking-{to_cancel}")).to_have_attribute(
                "data-status", "CANCELLED"
            )
            card.locator("details.card-timeline summary").click()  # the swapped card's timeline
        assert page.evaluate("() => window.__sameDocument === true"), f"{who}: not an htmx swap"
        log.collect(page, who)
        if who == "customer":
            log.visit(page, who, "/customer/bookings/999999", status=404)  # an error page

    with capsys.disabled():
        page_count = log.visits // len(SIZES)
        print(
            f"\nCSP sweep: {page_count} pages × {len(SIZES)} sizes = {log.visits} visits, "
            "plus htmx swaps for each role"
        )
    assert not log.events, "securitypolicyviolation events:\n" + "\n".join(log.events)
    assert not log.console, "CSP messages on the console:\n" + "\n".join(log.console)

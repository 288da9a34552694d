"""Accessibility at WCAG 2.2 AA, in real headless Chromium, on every backend.

Every journey checks each page it shows with axe-core at phone and desktop size, and that it
fits a 320 px wide screen (tests.support.browser's `Journey.shot`). The sweep here shows every
GET page of each role (from the app's URL map, as the CSP sweep visits them) and the states a
person brings them into: forms open, forms with errors, timelines open. The tests after it are
what a machine cannot judge: where focus goes, what a keyboard reaches first, what a screen
reader hears.
"""

from __future__ import annotations

import re

import pytest
from flask import url_for

from tests.support.browser import (
    PERSON_FOR_ROLE,
    ROLES,
    pause_clock,
    poll_handled,
    role_page_urls,
    start_poll,
)

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips these tests (or fails them when required)
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.server]

# The regions the board and the queue poll: fragments of those pages, checked as part of them.
POLLED_REGIONS = ("admin.board_regions", "provider.queue_items", "customer.bookings_region")


def assert_skip_link_leads_to_the_content(page) -> None:
    """The first Tab on a fresh page reaches "Skip to content"; following it puts the keyboard
    at the page's main content, past the top bar."""
    page.keyboard.press("Tab")
    focused = page.locator(":focus")
    expect(focused).to_have_text("Skip to content")
    expect(focused).to_be_in_viewport()  # shown when focused, not only to screen readers
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()


def test_every_page_and_state_passes_axe_at_phone_and_desktop(journey, app):
    server = journey.server
    for_provider = server.booking_for(assign_to="provider")["id"]
    to_assign = server.booking_for("Boiler service")["id"]
    to_cancel = server.booking_for("Window cleaning")["id"]
    with app.test_request_context():
        regions = {url_for(endpoint) for endpoint in POLLED_REGIONS}
    pages = {
        role: [path for path in paths if path not in regions]
        for role, paths in role_page_urls(app, for_provider).items()
    }

    anonymous = journey.open("anonymous")
    anonymous.goto("/login")
    journey.shot(anonymous, "loaded")
    assert_skip_link_leads_to_the_content(anonymous)
    journey.expect_refusal(400)
    anonymous.get_by_role("button", name="Log in").click()
    expect(anonymous.locator(".field-error").first).to_be_visible()
    journey.shot(anonymous, "form errors")
    journey.expect_refusal(404)
    anonymous.goto("/no-such-page")
    journey.shot(anonymous, "error page")

    for who in ROLES:
        page = journey.open(who)
        journey.log_in(page, PERSON_FOR_ROLE[who])
        for path in pages[who]:
            page.goto(path)
            journey.shot(page, "loaded")
            assert_skip_link_leads_to_the_content(page)

        page.goto(f"/{who}/")
        if who == "admin":
            page.goto("/api/docs")
            journey.shot(page, "loaded")
            page.goto("/admin/")
            card = page.locator(f"#booking-{to_assign}")
            card.locator("details.card-timeline summary").click()
            expect(card.locator(".timeline-event")).to_have_count(1)
            journey.shot(page, "timeline open")
            card.locator("a.action-assign").click()
            expect(card.locator("details.action-assign").get_by_label("Provider")).to_be_visible()
            journey.shot(page, "assign form open")
        elif who == "customer":
            page.goto("/customer/bookings/new")
            page.get_by_role("button", name="Request booking").click()
            expect(page.locator(".field-error").first).to_be_visible()
            journey.shot(page, "form errors")
            page.goto("/customer/")
            card = page.locator(f"#booking-{to_cancel}")
            card.locator("a.action-cancel").click()
            expect(card.locator("details.action-cancel").get_by_role("checkbox")).to_be_visible()
            journey.shot(page, "cancel form open")
        else:
            card = page.locator(f"#booking-{for_provider}")
            card.locator("a.action-reject").click()
            expect(card.locator("details.action-reject").get_by_label("Reason")).to_be_visible()
            journey.shot(page, "reject form open")
            card.locator("details.action-reject summary").click()
            card.get_by_role("button", name="Accept").click()
            expect(card).to_have_attribute("data-status", "IN_PROGRESS")
            card.locator("details.card-timeline summary").click()
            expect(card.locator(".timeline-event")).to_have_count(3)
            journey.shot(page, "timeline open")


def test_a_failed_booking_form_links_each_error_to_its_field_and_focuses_the_first(journey):
    page = journey.open("owner")
    journey.log_in(page, "owner")
    page.goto("/customer/bookings/new")
    page.get_by_label("Address").fill("12 Harbour Lane")  # kept: only the others are missing
    journey.expect_refusal(400)
    page.get_by_role("button", name="Request booking").click()

    service = page.get_by_label("What do you need?")
    expect(service).to_be_focused()  # the first field in error, without any script
    for field_name, message in [
        ("What do you need?", "Choose a service."),
        ("Day", "Pick a day."),
        ("08:00–10:00", "Pick an arrival window, or another time."),
        ("Another time", "Pick an arrival window, or another time."),
    ]:
        field = page.get_by_label(field_name, exact=True)
        expect(field).to_have_attribute("aria-invalid", "true")
        # What a screen reader reads with the field: its error, by aria-describedby.
        expect(field).to_have_accessible_description(re.compile(re.escape(message)))
    # Another time without its times: each list says what it lacks.
    page.get_by_label("Another time").check()
    page.get_by_role("button", name="Request booking").click()
    for field_name, message in [("From", "Pick a start time."), ("Until", "Pick an end time.")]:
        field = page.get_by_label(field_name, exact=True)
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(field).to_have_accessible_description(re.compile(re.escape(message)))
    address = page.get_by_label("Address")
    expect(address).to_have_value("12 Harbour Lane")
    expect(address).not_to_have_attribute("aria-invalid", "true")
    # The hint stays linked to its field, error or not.
    expect(page.get_by_label("Notes for the provider")).to_have_accessible_description(
        "Access, parking, pets — anything that helps."
    )
    journey.shot(page, "customer-form-errors")


def test_a_failed_login_says_why_beside_the_field_it_puts_focus_on(journey):
    page = journey.open("anonymous")
    page.goto("/login")
    page.get_by_label("Email").fill(journey.server.person("owner").email)
    page.get_by_label("Password").fill("not the password")
    journey.expect_refusal(400)
    page.get_by_role("button", name="Log in").click()

    password = page.get_by_label("Password")
    expect(password).to_be_focused()
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(password).to_have_accessible_description("Wrong email or password.")
    expect(page.get_by_label("Email")).to_have_value(journey.server.person("owner").email)
    journey.shot(page, "login-failed")


def redraw_queue(page) -> None:
    """The queue's poll, sent now and dealt with (the page's clock stands still)."""
    start_poll(page, "#queue")
    poll_handled(page, clock_paused=True)


def test_the_queue_announces_a_new_job_in_a_sentence_not_the_whole_queue(journey):
    phone = journey.open("provider", phone=True)
    phone.clock.install()  # before the page loads, so its poll's timer is the test's to move
    journey.log_in(phone, "provider")
    expect(phone.get_by_role("heading", name="Nothing assigned to you right now")).to_be_visible()
    pause_clock(phone)

    # What polls is not itself a live region (a screen reader would read the whole queue on
    # every redraw); one short status line says what changed.
    expect(phone.locator("#queue")).not_to_have_attribute("aria-live", re.compile("."))
    expect(phone.locator("#queue :is([aria-live], [role=status])")).to_have_count(0)
    news = phone.locator("#queue-news")
    expect(news).to_have_attribute("role", "status")
    expect(news).to_have_text("")

    booking_id = journey.server.booking_for("Blocked drain", assign_to="provider")["id"]
    redraw_queue(phone)
    expect(phone.locator(f"#booking-{booking_id}")).to_be_visible()
    expect(news).to_have_text(re.compile(r"^New job: Blocked drain, \w{3} \d\d:\d\d \w+\.$"))
    journey.shot(phone, "provider-queue-announces-new-job")

    # Nothing changed: the next redraw has nothing to say.
    redraw_queue(phone)
    expect(news).to_have_text("")

    journey.server.api(
        "admin",
        "POST",
        f"/api/bookings/{booking_id}/force-cancel",
        {"reason": "Customer phoned: no longer needed."},
    )
    redraw_queue(phone)
    expect(phone.locator(f"#booking-{booking_id}")).to_have_count(0)
    expect(news).to_have_text(f"Job #{booking_id} left your queue.")

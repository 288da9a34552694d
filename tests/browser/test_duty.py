"""Duty and the picker's explanations, in real headless Chromium: a provider goes off duty on
their phone and the dispatcher's board shows it; the assign picker says why each provider can or
cannot take the booking; automation is paused and resumed from the board; a booking it gave up
on is flagged for a person."""

from __future__ import annotations

import re

import pytest

from ops_portal.domain.lifecycle import Actor
from ops_portal.extensions import db
from ops_portal.models import utcnow
from ops_portal.services import dispatcher, duty
from tests.support.browser import start_poll

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips these tests (or fails them when required)
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.server]


def test_a_provider_goes_off_duty_on_the_phone_and_the_board_says_why_in_its_picker(journey):
    booking = journey.server.api("owner", "POST", "/api/bookings", {"service": "Leaking tap"})
    phone = journey.open("provider")
    journey.log_in(phone, "provider")
    phone.get_by_role("button", name="Go off duty").click()
    expect(phone.locator("#duty")).to_contain_text("You're off duty")
    journey.shot(phone, "provider-off-duty")

    board = journey.open("admin")
    journey.log_in(board, "admin")
    pat = board.locator(".provider-row", has_text="Pat Provider")
    expect(pat.locator(".badge")).to_have_text("Off duty")
    card = board.locator(f"#booking-{booking['id']}")
    card.locator("a.action-assign").click()
    options = card.locator("details.action-assign").get_by_label("Provider").locator("option")
    expect(options.filter(has_text="Pat Provider")).to_have_text(re.compile(r"off duty since"))
    expect(options.filter(has_text="Pat Provider")).to_be_disabled()
    expect(options.filter(has_text="Quinn Provider")).to_have_text(re.compile(r"available, idle"))
    journey.shot(board, "picker-explains")

    # Back on duty from the phone: the board's next redraw shows it.
    phone.get_by_role("button", name="Go on duty").click()
    expect(phone.locator("#duty")).to_contain_text("You're on duty")
    start_poll(board, "#board")
    expect(pat.locator(".badge")).to_have_text("Available")


def test_a_dispatcher_pauses_and_resumes_automation_on_the_board(journey):
    board = journey.open("admin")
    journey.log_in(board, "admin")
    switch = board.locator("#automation")
    switch.get_by_role("button", name="Pause automation").click()
    expect(switch).to_contain_text("Automation: paused")
    journey.shot(board, "automation-paused")
    board.reload()
    board.locator("#automation").get_by_role("button", name="Resume automation").click()
    expect(board.locator("#automation")).to_contain_text("Automation: on")


def test_a_booking_automation_gave_up_on_is_flagged_on_the_board(journey):
    for name in ("provider", "other_provider"):
        duty.set_duty(Actor.system(), journey.server.user_id(name), False, reason="Test")
    booking = journey.server.api("owner", "POST", "/api/bookings", {"service": "Leaking tap"})
    dispatcher.run_pass(utcnow() + dispatcher.Policy().no_provider_wait)
    db.session.remove()

    board = journey.open("admin")
    journey.log_in(board, "admin")
    card = board.locator(f"#booking-{booking['id']}")
    expect(card.get_by_test_id("needs-dispatcher")).to_have_text("Needs a dispatcher")
    expect(card).to_contain_text("No eligible provider for 15 min")
    journey.shot(board, "needs-a-dispatcher")

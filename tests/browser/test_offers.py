"""Offers that expire, in real headless Chromium: an offer counts down on the provider's phone
by itself and, once automation has expired it, leaves the queue without a reload; the board
shows the time left on an assigned card."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from ops_portal.domain.lifecycle import Action, Actor, Role
from ops_portal.models import utcnow
from ops_portal.services import bookings, offers

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips these tests (or fails them when required)
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.server]

OFFER_TIME = timedelta(seconds=300)


def offer(server, provider: str, *, left: timedelta):
    """A new booking offered to `provider` with `left` of its offer to run: its deadline."""
    booking = server.api("owner", "POST", "/api/bookings", {"service": "Blocked drain"})
    admin = Actor(Role.ADMIN, server.user_id("admin"))
    assigned = bookings.perform_action(
        admin,
        booking["id"],
        Action.ASSIGN,
        provider_id=server.user_id(provider),
        now=utcnow() - OFFER_TIME + left,
    )
    return booking["id"], assigned.offer_expires_at


def test_an_offer_counts_down_on_the_phone_and_leaves_the_queue_once_expired(journey):
    server = journey.server
    booking_id, deadline = offer(server, "provider", left=timedelta(seconds=12))

    phone = journey.open("provider", phone=True)
    journey.log_in(phone, "provider")
    clock = phone.locator(f"#booking-{booking_id}").get_by_test_id("offer-left")
    expect(clock).to_have_text(re.compile(r"^Offer: \d+ s left$"))
    first = clock.inner_text()
    expect(clock).not_to_have_text(first)  # it counts down by itself
    journey.shot(phone, "provider-offer-counting-down")
    expect(clock).to_have_text("Offer: expired", timeout=20_000)

    # Automation's pass, on a clock moved just past the deadline.
    assert offers.expire_offers(deadline + timedelta(seconds=1)) == [booking_id]
    expect(phone.locator(f"#booking-{booking_id}")).to_have_count(0, timeout=15_000)
    expect(phone.get_by_role("heading", name="Nothing assigned to you right now")).to_be_visible()


def test_the_board_shows_how_long_an_assigned_offer_has_left(journey):
    booking_id, _ = offer(journey.server, "other_provider", left=timedelta(seconds=270))
    board = journey.open("admin")
    journey.log_in(board, "admin")
    card = board.locator(f"#booking-{booking_id}")
    expect(card.get_by_test_id("offer-left")).to_have_text("Offer: 4 min left")
    journey.shot(board, "board-offer-left")

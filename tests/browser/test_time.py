"""Time in real Chromium: a customer in Tokyo picks their zone, books a preset evening window
and reads it back in their zone, 24-hour (Chromium runs in en-US, whose time inputs are
12-hour); a dispatcher sees a booking whose window has begun flagged late and narrows the
board to late bookings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ops_portal.domain.lifecycle import Actor, Role
from ops_portal.extensions import db
from ops_portal.services import bookings

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips these tests (or fails them when required)
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.server]


def test_a_customer_in_tokyo_books_a_preset_window_and_reads_it_in_tokyo_time(journey):
    page = journey.open("owner")
    journey.log_in(page, "owner")
    page.get_by_role("link", name="Account").click()
    page.get_by_label("Show and enter times in").select_option("Asia/Tokyo")
    journey.shot(page, "account")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".alert-success")).to_contain_text("Asia/Tokyo")

    page.get_by_role("link", name="Back to work").click()
    page.get_by_role("link", name="Book a service").first.click()
    expect(page.locator("legend").first).to_contain_text("times in Asia/Tokyo, 24-hour")
    day = datetime.now(ZoneInfo("Asia/Tokyo")).date() + timedelta(days=2)
    page.get_by_label("What do you need?").select_option(label="Blocked drain")
    page.get_by_label("Address").fill("3-1 Marunouchi")
    page.get_by_label("Day").fill(day.isoformat())
    page.get_by_label("18:00–20:00").check()
    journey.shot(page, "booking-form")
    page.get_by_role("button", name="Request booking").click()

    card = page.locator("article.card").first
    expect(card).to_contain_text(f"{day:%a %d %b %Y}, 18:00–20:00 JST")
    journey.shot(page, "booked")


def test_a_dispatcher_sees_a_late_booking_flagged_and_filters_to_late_only(journey):
    owner = Actor(Role.CUSTOMER, journey.server.user_id("owner"))
    begun = datetime.now(UTC) - timedelta(hours=1)
    late = bookings.create_booking(
        owner,
        service="Leaking tap",
        address="4 Mill Lane",
        window_start=begun,
        window_end=begun + timedelta(hours=2),
        now=begun - timedelta(days=1),
    ).id
    journey.server.booking_for("Blocked drain")  # its window is years ahead
    db.session.remove()

    page = journey.open("admin")
    journey.log_in(page, "admin")
    late_card = page.locator(f"#booking-{late}")
    expect(late_card.get_by_test_id("late")).to_have_text("Late")
    expect(late_card.get_by_test_id("waiting")).to_contain_text("waiting")
    expect(page.locator("article.card")).to_have_count(2)
    journey.shot(page, "board")

    page.get_by_label("Late only").check()
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(journey.server.url + "/admin/?q=&service=&late=1")
    expect(page.locator("article.card")).to_have_count(1)
    expect(page.locator(f"#booking-{late}")).to_be_visible()
    journey.shot(page, "board-late-only")

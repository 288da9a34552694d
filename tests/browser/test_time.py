"""Time in real Chromium: a customer in Tokyo picks their zone, books a preset evening window
and reads it back in their zone, 24-hour (Chromium runs in en-US, whose time inputs are
12-hour), then finds that today's windows which have begun cannot be booked; a dispatcher sees
a booking whose window has begun flagged late, how long each has waited, and narrows the board
to late bookings."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips these tests (or fails them when required)
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.server]

# Zones round the clock (UTC +14, +9, 0/+1, -7/-8, -11), no two neighbours more than 9 h
# apart: at any moment one of them is between 10:00 and 23:00, past today's first preset window
# and an hour or more from the day's end.
ZONES_ROUND_THE_CLOCK = (
    "Pacific/Kiritimati",
    "Asia/Tokyo",
    "Europe/London",
    "America/Los_Angeles",
    "Pacific/Pago_Pago",
)


def zone_where_the_morning_has_passed() -> tuple[str, datetime]:
    """A zone where it is now between 10:00 and 23:00, and the time there: today's 08:00–10:00
    window has begun (and ended), and today stays today while the test runs."""
    for name in ZONES_ROUND_THE_CLOCK:
        local = datetime.now(ZoneInfo(name))
        if time(10) <= local.time() <= time(23):
            return name, local
    pytest.fail(f"none of {ZONES_ROUND_THE_CLOCK} is between 10:00 and 23:00 now: fix the list")


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

    # Today, somewhere the morning has passed: its first window cannot be booked any more.
    zone, local = zone_where_the_morning_has_passed()
    page.get_by_role("link", name="Account").click()
    page.get_by_label("Show and enter times in").select_option(zone)
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".alert-success")).to_contain_text(zone)
    page.get_by_role("link", name="Back to work").click()
    page.get_by_role("link", name="Book a service").first.click()
    page.get_by_label("What do you need?").select_option(label="Plumbing")
    page.get_by_label("Address").fill("1 Early Street")
    page.get_by_label("Day").fill(local.date().isoformat())
    # The page greys out today's windows that have begun, so the person picks the same hours
    # as another time, and the server refuses them beside the time they chose.
    expect(page.get_by_label("08:00–10:00")).to_be_disabled()
    page.get_by_label("Another time").check()
    page.get_by_label("From").select_option("08:00")
    page.get_by_label("Until").select_option("10:00")
    journey.expect_refusal(400)
    page.get_by_role("button", name="Request booking").click()
    start = page.get_by_label("From")
    expect(start).to_have_attribute("aria-invalid", "true")
    expect(start).to_be_focused()
    expect(page.locator("#start-error")).to_have_text("That time has passed")
    expect(page.get_by_label("Address")).to_have_value("1 Early Street")

    # A browser that runs no script offers the preset window: the server refuses it beside
    # the choice of windows.
    def script(url: str) -> bool:
        return urlsplit(url).path.endswith("/js/app.js")

    journey.block(page, script)
    page.goto("/customer/bookings/new")
    page.get_by_label("What do you need?").select_option(label="Plumbing")
    page.get_by_label("Address").fill("1 Early Street")
    page.get_by_label("Day").fill(local.date().isoformat())
    page.get_by_label("08:00–10:00").check()
    page.get_by_role("button", name="Request booking").click()
    expect(page.locator("#slot-error")).to_have_text("That time has passed")
    slot = page.get_by_label("08:00–10:00")
    expect(slot).to_have_attribute("aria-invalid", "true")
    expect(slot).to_have_attribute("aria-describedby", "slot-error")
    journey.shot(page, "window-passed")
    journey.unblock(page, script)

    # Nothing was booked: the list holds the evening in Tokyo alone.
    page.get_by_role("link", name="My bookings").click()
    expect(page.locator("article.card")).to_have_count(1)


def test_a_dispatcher_sees_a_late_booking_flagged_and_filters_to_late_only(journey):
    late = journey.server.late_booking("Leaking tap", "4 Mill Lane")
    later = journey.server.booking_for("Blocked drain")["id"]  # its window is years ahead

    page = journey.open("admin")
    journey.log_in(page, "admin")
    late_card = page.locator(f"#booking-{late}")
    expect(late_card.get_by_test_id("late")).to_have_text("Late")
    # Requested a day before its window began an hour ago, it has waited 25 hours; the other
    # was requested a moment ago.
    expect(late_card.get_by_test_id("waiting")).to_have_text("waiting 25 h")
    expect(page.locator(f"#booking-{later} [data-testid=waiting]")).to_have_text(
        re.compile(r"^waiting (under a minute|\d+ min)$")
    )
    expect(page.locator("article.card")).to_have_count(2)
    journey.shot(page, "board")

    page.get_by_label("Late only").check()
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(journey.server.url + "/admin/?q=&service=&late=1")
    expect(page.locator("article.card")).to_have_count(1)
    expect(page.locator(f"#booking-{late}")).to_be_visible()
    journey.shot(page, "board-late-only")

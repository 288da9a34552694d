"""A dispatcher reads the day's figures on the board, then a past day's charts on the reports
page, at a desktop and on a phone, and downloads the waiting bookings from the real server; axe
checks every state shot."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from ops_portal.extensions import db
from tests.support.history import random_history

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips these tests (or fails them when required)
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.server]


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
def test_a_dispatcher_reads_the_boards_figures_and_a_days_charts(journey, phone):
    random_history(journey.server.cast, datetime(2025, 3, 1, tzinfo=UTC), bookings=120, seed=11)
    db.session.remove()
    journey.server.booking_for()  # one waiting now
    admin = journey.open("admin", phone=phone)
    journey.log_in(admin, "admin")
    figures = admin.locator(".metrics")
    # Bookings left waiting in March 2025 have waited days.
    expect(figures.locator(".metric").first).to_contain_text(
        re.compile(r"Waiting\d+ \(oldest \d+ days\)")
    )
    journey.shot(admin, "figures")

    admin.get_by_role("link", name="Reports").first.click()
    admin.get_by_label("Day", exact=True).fill("2025-03-02")
    admin.get_by_role("button", name="Show").click()
    expect(admin.locator("h1")).to_have_text("Reports")
    expect(admin.locator("svg.chart")).to_have_count(3)
    expect(admin.locator("#outcomes-title")).to_contain_text("Sun 02 Mar 2025")
    journey.shot(admin, "charts")

    # The bookings list as a file, streamed by gunicorn row by row.
    download = admin.request.get("/admin/archive.csv?status=PENDING")
    assert download.ok and download.headers["content-type"].startswith("text/csv")
    rows = download.text().splitlines()
    assert rows[0].startswith("Booking,Status,") and len(rows) > 2

    for summary in admin.locator(".chart-figures summary").all():
        summary.click()
    expect(admin.locator(".chart-figures table").first).to_be_visible()
    journey.shot(admin, "figures as tables")

"""A dispatcher working the board at a desktop in real Chromium: compact cards, a lane's full
list a page at a time, the search by customer, address and service, a confirmation and the
focus after an action, a booking's page that agrees with its card, and a redraw that
keeps an open timeline and a half-typed reason; the customer's list redraws itself too."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from ops_portal.domain.lifecycle import Actor, Role
from ops_portal.extensions import db
from ops_portal.services import bookings
from tests.support.browser import (
    DESKTOP,
    assert_keyboard_focus_stays_clear_of,
    choose_provider,
    poll_handled,
    start_poll,
)

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips these tests (or fails them when required)
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.server]

SERVICES = ("Leaking tap", "Blocked drain", "Boiler service")


def card_ids(page) -> list[int]:
    """The bookings the page's cards show, in the page's order."""
    return [
        int(card_id.removeprefix("booking-"))
        for card_id in page.locator("article.card").evaluate_all("cards => cards.map(c => c.id)")
    ]


def cards_above_the_fold(page) -> int:
    """Cards wholly inside the window as it first shows the page."""
    return page.locator("article.card").evaluate_all(
        """(cards, height) => cards.filter(card => {
            const box = card.getBoundingClientRect();
            return box.top >= 0 && box.bottom <= height;
        }).length""",
        DESKTOP["height"],
    )


def test_a_dispatcher_sees_twelve_cards_above_the_fold_reads_a_whole_lane_and_searches(journey):
    server = journey.server
    # 54 waiting bookings, an hour apart: more than a lane shows and more than a page of the
    # lane's own list. The last three stand out by customer, address and service.
    owner = Actor(Role.CUSTOMER, server.user_id("owner"))
    first_window = datetime(2031, 5, 6, 9, tzinfo=UTC)
    made = []
    for n in range(54):
        customer, service, address = owner, SERVICES[n % 3], "12 Harbour Lane, Flat 3"
        if n == 51:
            customer = Actor(Role.CUSTOMER, server.user_id("other_customer"))  # Oscar Other
        elif n == 52:
            address = "4 Mill Lane, Leeds"
        elif n == 53:
            service = "Plumbing"
        start = first_window + timedelta(hours=n)
        made.append(
            bookings.create_booking(
                customer,
                service=service,
                address=address,
                window_start=start,
                window_end=start + timedelta(hours=2),
            ).id
        )
    db.session.remove()
    *_, oscars, on_mill_lane, plumbing = made

    admin = journey.open("admin")
    journey.log_in(admin, "admin")
    expect(admin.locator(".lane-pending article.card")).to_have_count(12)
    # Measured once the stylesheet is in: the cards are there as soon as the HTML is parsed.
    admin.wait_for_load_state("load")
    assert cards_above_the_fold(admin) >= 12
    # Compact, yet every card keeps its buttons and its facts for a screen reader.
    card = admin.locator(".lane-pending article.card").first
    expect(card.locator("a.action-assign")).to_be_visible()
    expect(card.locator("dt").first).to_have_text("When")
    journey.shot(admin, "admin-board-compact")

    # The lane leads to all of its cards, the soonest window first, a page at a time.
    admin.get_by_role("link", name="All 54 waiting for a provider →").click()
    expect(admin).to_have_url(re.compile(r"/admin/lanes/pending$"))
    expect(admin.locator(".list-count")).to_have_text("54 bookings")
    expect(admin.locator("article.card")).to_have_count(50)
    assert card_ids(admin) == made[:50]
    expect(admin.locator("nav.pagination a")).to_have_text(["Later →", "Latest"])
    admin.get_by_role("link", name="Later →").click()
    expect(admin.locator("article.card")).to_have_count(4)
    assert card_ids(admin) == made[50:]
    expect(admin.locator("nav.pagination a")).to_have_text(["Oldest", "← Earlier"])
    journey.shot(admin, "admin-lane-last-page")

    # The board's search finds a booking by its customer, its address or its service, though
    # none of them is among the cards the lane shows.
    admin.get_by_role("link", name="Board", exact=True).click()
    search = admin.get_by_role("searchbox", name="Search")
    for typed, found, in_url in (
        ("Oscar", oscars, "q=Oscar"),
        ("Mill Lane", on_mill_lane, "q=Mill+Lane"),
        ("plumbing", plumbing, "q=plumbing"),
    ):
        search.fill(typed)
        admin.get_by_role("button", name="Filter").click()
        expect(admin).to_have_url(re.compile(rf"/admin/\?{re.escape(in_url)}&"))
        expect(admin.locator(f"#booking-{found}")).to_be_visible()
        expect(admin.locator("article.card")).to_have_count(1)
        expect(search).to_have_value(typed)
    journey.shot(admin, "admin-board-searched")


def test_an_action_on_the_board_is_confirmed_and_keeps_the_focus_on_its_card(journey):
    booking_id = journey.server.booking_for()["id"]
    admin = journey.open("admin")
    journey.log_in(admin, "admin")
    card = admin.locator(f".lane-pending #booking-{booking_id}")
    card.locator("a.action-assign").click()
    assign = card.locator("details.action-assign")
    choose_provider(assign.get_by_label("Provider"), "Pat Provider")
    assign.get_by_role("button", name="Assign").click()

    confirmation = admin.locator("#confirmation")
    expect(confirmation).to_have_text(f"Booking #{booking_id} assigned to Pat Provider")
    expect(confirmation).to_have_attribute("aria-live", "polite")
    moved = admin.locator(f".lane-assigned #booking-{booking_id}")
    expect(moved).to_be_focused()
    expect(moved).to_have_class(re.compile(r"\bcard-compact\b"))  # drawn as the board draws it
    journey.shot(admin, "admin-assigned-confirmed")
    assert_keyboard_focus_stays_clear_of(confirmation)

    # On the booking's page the heading follows the card, and nothing is swapped into regions
    # the page does not have (the journey fails on any console error).
    admin.goto(f"/admin/bookings/{booking_id}")
    detail = admin.locator(f"#booking-{booking_id}")
    detail.locator("a.action-mark-failed").click()
    mark_failed = detail.locator("details.action-mark-failed")
    mark_failed.get_by_label("Reason").fill("Nobody home")
    mark_failed.get_by_role("button", name="Mark failed").click()
    expect(detail).to_have_attribute("data-status", "FAILED")
    expect(admin.locator("#booking-head")).to_contain_text("Failed")
    expect(confirmation).to_have_text(f"Booking #{booking_id} marked failed")
    expect(detail.locator(".card-reason")).to_contain_text("Nobody home")
    expect(detail).to_be_focused()
    journey.shot(admin, "admin-detail-marked-failed")


def test_an_open_timeline_and_a_half_typed_reason_survive_the_board_redraw(journey):
    opened = journey.server.booking_for()["id"]
    typed = journey.server.booking_for("Blocked drain")["id"]
    admin = journey.open("admin")
    journey.log_in(admin, "admin")

    timeline_card = admin.locator(f"#booking-{opened}")
    timeline_card.locator("details.card-timeline summary").click()
    expect(timeline_card.locator(".timeline")).to_contain_text("Request")
    reason_card = admin.locator(f"#booking-{typed}")
    reason_card.locator("a.action-mark-failed").click()
    reason = reason_card.get_by_label("Reason")
    reason.fill("The customer said")
    # Meanwhile a new booking comes in: the redraw must show it.
    newcomer = journey.server.booking_for("Boiler service")["id"]

    # The board's redraw, sent now rather than waited for (one of its own may come too: each
    # must keep them alike).
    start_poll(admin, "#board")
    poll_handled(admin)

    expect(admin.locator(f"#booking-{newcomer}")).to_be_visible()
    expect(timeline_card.locator("details.card-timeline")).to_have_attribute("open", "")
    expect(timeline_card.locator(".timeline")).to_be_visible()
    expect(reason).to_have_value("The customer said")
    expect(reason).to_be_focused()
    # The kept form still works: typing on and sending it acts once.
    reason.press("End")
    reason.type(" nobody lives there.")
    reason_card.get_by_role("button", name="Mark failed").click()
    expect(reason_card).to_have_attribute("data-status", "FAILED")
    expect(reason_card.locator(".card-reason")).to_contain_text(
        "The customer said nobody lives there."
    )
    journey.shot(admin, "admin-board-after-redraw")


def test_the_customers_list_redraws_itself(journey):
    booking_id = journey.server.booking_for()["id"]
    customer = journey.open("owner")
    customer.clock.install()
    journey.log_in(customer, "owner")
    card = customer.locator(f"#booking-{booking_id}")
    expect(card).to_have_attribute("data-status", "PENDING")
    card.locator("details.card-timeline summary").click()
    expect(card.locator(".timeline")).to_be_visible()

    journey.server.api(
        "admin",
        "POST",
        f"/api/bookings/{booking_id}/assign",
        {"provider_id": journey.server.user_id("provider")},
    )
    customer.clock.fast_forward("00:15")
    # The booking changed, so its card is drawn afresh: the news, not the old picture.
    expect(card).to_have_attribute("data-status", "ASSIGNED")
    expect(card.locator(".card-facts")).to_contain_text("Pat Provider")
    journey.shot(customer, "customer-list-redrawn")

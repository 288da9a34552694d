"""A dispatcher working the board at a desktop in real Chromium: compact cards, a confirmation
and the focus after an action, a booking's page that agrees with its card, and a redraw that
keeps an open timeline and a half-typed reason; the customer's list redraws itself too."""

from __future__ import annotations

import re

import pytest

from tests.support.browser import DESKTOP, choose_provider, poll_handled, start_poll

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips these tests (or fails them when required)
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.server]


def cards_above_the_fold(page) -> int:
    """Cards wholly inside the window as it first shows the page."""
    return page.locator("article.card").evaluate_all(
        """(cards, height) => cards.filter(card => {
            const box = card.getBoundingClientRect();
            return box.top >= 0 && box.bottom <= height;
        }).length""",
        DESKTOP["height"],
    )


def test_a_dispatcher_sees_at_least_twelve_cards_above_the_fold(journey):
    for n in range(14):
        journey.server.booking_for(("Leaking tap", "Blocked drain", "Boiler service")[n % 3])
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

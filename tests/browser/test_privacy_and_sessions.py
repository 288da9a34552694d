"""A person's steps in real Chromium: a customer reads their booking's timeline in plain words
after a provider rejected it with a note and a dispatcher force-assigned it with a reason; a
dispatcher whose session ended in another tab is led to log in and back to the board, and an
action pressed in the stale tab says so in its card."""

from __future__ import annotations

import pytest

from tests.support.browser import choose_provider, start_poll

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips these tests (or fails them when required)
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.server]

REJECTION_NOTE = "I only do windows, not taps"
FORCE_REASON = "Owner is a VIP, send Quinn anyway"


def test_customer_reads_their_timeline_in_plain_words_without_internal_reasons(journey):
    booking = journey.server.booking_for(assign_to="provider")
    booking_id = booking["id"]

    # The provider rejects it from their phone, with a note for dispatch.
    phone = journey.open("provider", phone=True)
    journey.log_in(phone, "provider")
    job = phone.locator(f"#booking-{booking_id}")
    job.locator("a.action-reject").tap()
    reject = job.locator("details.action-reject")
    reject.get_by_label("Reason").fill(REJECTION_NOTE)
    with phone.expect_response(lambda r: r.url.endswith(f"/{booking_id}/reject")) as answer:
        reject.get_by_role("button", name="Reject").tap()
    assert answer.value.status == 200
    expect(job).to_have_count(0)  # no longer theirs: it leaves the queue

    # The dispatcher force-assigns it to Quinn with a private reason.
    admin = journey.open("admin")
    journey.log_in(admin, "admin")
    card = admin.locator(f"#booking-{booking_id}")
    card.locator("a.action-force-assign").click()
    force = card.locator("details.action-force-assign")
    choose_provider(force.get_by_label("Provider", exact=True), "Quinn Provider")
    force.get_by_label("Reason").fill(FORCE_REASON)
    force.get_by_role("checkbox").check()
    force.get_by_role("button", name="Force-assign").click()
    expect(admin.locator(f"#booking-{booking_id}")).to_have_attribute("data-status", "ASSIGNED")
    # The dispatcher still reads everything
    admin.goto(f"/admin/bookings/{booking_id}")
    admin_timeline = admin.locator(".timeline")
    for text in (REJECTION_NOTE, FORCE_REASON, "forced"):
        expect(admin_timeline).to_contain_text(text)

    # The customer opens their booking's timeline and reads what happened, in their words.
    customer = journey.open("owner")
    journey.log_in(customer, "owner")
    own_card = customer.locator(f"#booking-{booking_id}")
    own_card.locator(".card-timeline summary").click()
    events = own_card.locator(".timeline-event")
    expect(events.locator("strong")).to_have_text(
        [
            "Booking requested",
            "Provider assigned",
            "Looking for another provider",
            "Provider assigned",
        ]
    )
    journey.shot(customer, "customer-timeline-plain-words")
    page_text = customer.locator("main").inner_text()
    for secret in (REJECTION_NOTE, FORCE_REASON, "forced", "Ada Admin", "(admin", "(provider"):
        assert secret not in page_text, secret
    expect(own_card.locator(".tag-forced")).to_have_count(0)


def test_a_session_ended_in_another_tab_leads_to_login_and_back_and_actions_say_so(journey):
    booking = journey.server.booking_for()
    booking_id = booking["id"]
    board = journey.open("admin")
    journey.log_in(board, "admin")
    board.goto("/admin/?service=Leaking+tap")
    card = board.locator(f"#booking-{booking_id}")
    expect(card).to_be_visible()

    # A form is open in tab A when tab B of the same browser logs out.
    card.locator("a.action-mark-failed").click()
    mark_failed = card.locator("details.action-mark-failed")
    mark_failed.get_by_label("Reason").fill("Customer unreachable")

    # Tab B logs out.
    other_tab = board.context.new_page()
    other_tab.goto("/admin/")
    other_tab.get_by_role("button", name="Log out").click()
    expect(other_tab).to_have_url(journey.server.url + "/login")

    # In tab A, pressing an action says the session ended, in the card pressed.
    journey.expect_refusal(401)
    mark_failed.get_by_role("button", name="Mark failed").click()
    expect(card.locator(".card-error")).to_contain_text("Your session has ended")
    journey.shot(board, "admin-action-after-logout")
    expect(board.locator("#alerts .alert-error")).to_have_count(0)
    assert "This form has expired" not in card.inner_text()

    # The board's next poll leads to the login page, which says why and comes back.
    start_poll(board, "#board")
    expect(board).to_have_url(journey.server.url + "/login?next=/admin/?service%3DLeaking%2Btap")
    expect(board.get_by_text("You were logged out")).to_be_visible()
    journey.shot(board, "login-after-logout")
    person = journey.server.person("admin")
    board.get_by_label("Email").fill(person.email)
    board.get_by_label("Password").fill("correct horse battery staple")
    board.get_by_role("button", name="Log in").click()
    expect(board).to_have_url(journey.server.url + "/admin/?service=Leaking+tap")
    expect(board.locator("html head link[rel=stylesheet]")).not_to_have_count(0)
    expect(board.locator(f"#booking-{booking_id}")).to_be_visible()

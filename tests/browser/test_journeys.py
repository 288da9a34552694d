"""Journeys through the role pages in real headless Chromium, on every database backend.

Each journey is what one or more people do with the product; screenshots of every page they
visit land in artifacts/<journey>/<backend>/ (phone and desktop size) for a person to look at.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from tests.support.browser import choose_provider, pause_clock, poll_handled, start_poll

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips these tests (or fails them when required)
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.server]

MIN_TOUCH_TARGET = 44  # px: the smallest height of anything a provider taps
# The queue's poll, whatever jobs it names as shown (`?shown=…`).
QUEUE_POLL = re.compile(r"/provider/queue(\?|$)")


def book_through_form(journey, page, service: str = "Leaking tap") -> int:
    """The customer fills in the new-booking form; returns the new booking's id."""
    page.get_by_role("link", name="Book a service").first.click()
    expect(page.get_by_role("heading", name="Book a service")).to_be_visible()
    journey.shot(page, "customer-new-booking")

    page.get_by_label("What do you need?").select_option(label=service)
    page.get_by_label("Address").fill("12 Harbour Lane, Flat 3")
    page.get_by_label("Day").fill((date.today() + timedelta(days=2)).isoformat())
    page.get_by_label("Another time").check()
    page.get_by_label("From").select_option("09:00")
    page.get_by_label("Until").select_option("11:30")
    page.get_by_label("Notes for the provider").fill("Ring twice; the dog is friendly.")
    page.get_by_role("button", name="Request booking").click()

    expect(page).to_have_url(journey.server.url + "/customer/")
    expect(page.locator(".alert-success")).to_contain_text("requested")
    card = page.locator("article.card").first
    expect(card.locator(".card-title")).to_have_text(service)
    return int(card.get_attribute("id").removeprefix("booking-"))


def assert_touch_targets(page, controls) -> None:
    """Every visible control in `controls` is at least MIN_TOUCH_TARGET px high (not those inside
    a closed <details>, which have boxes but are not shown). Measured in one
    pass over the live DOM, so a redraw of the queue cannot detach a control mid-measurement,
    once the page has its stylesheet (without it a button is a bare 21 px)."""
    controls.page.wait_for_load_state("load")
    sizes = controls.evaluate_all(
        """elements => elements
            .filter(e => e.checkVisibility())
            .map(e => [e.innerText.trim(), e.getBoundingClientRect().height])"""
    )
    assert sizes, "no controls to measure"
    for label, height in sizes:
        assert height >= MIN_TOUCH_TARGET, f"{label!r} is {height:.0f} px high"


def test_customer_books_and_cancels_in_place(journey):
    page = journey.open("owner")
    journey.log_in(page, "owner")
    expect(page.get_by_role("heading", name="No bookings yet")).to_be_visible()
    journey.shot(page, "customer-no-bookings")

    # The form refuses an empty request with messages beside the fields.
    page.get_by_role("link", name="Book a service").first.click()
    journey.expect_refusal(400)
    page.get_by_role("button", name="Request booking").click()
    expect(page.locator(".field-error").first).to_be_visible()
    expect(page.locator("#service-error")).to_have_text("Choose a service.")
    journey.shot(page, "customer-form-errors")
    page.get_by_role("link", name="My bookings").click()

    booking_id = book_through_form(journey, page)
    card = page.locator(f"#booking-{booking_id}")
    expect(card).to_have_attribute("data-status", "PENDING")
    expect(card.get_by_test_id("status")).to_have_text("Waiting for a provider")
    journey.shot(page, "customer-booked")

    # A marker on the window survives an htmx swap and dies with a full page load.
    page.evaluate("window.__noReload = true")
    card.locator("a.action-cancel").click()  # its form, fetched and swapped in
    cancel = card.locator("details.action-cancel")
    expect(cancel.locator("label.confirm")).to_have_text(f"Yes, cancel booking #{booking_id}")
    journey.shot(page, "customer-cancel-confirmation")
    cancel.get_by_role("checkbox").check()
    cancel.get_by_role("button", name="Cancel booking").click()

    expect(card).to_have_attribute("data-status", "CANCELLED")
    expect(card.get_by_test_id("status")).to_have_text("Cancelled")
    expect(card.locator(".card-actions")).to_have_count(0)
    assert page.evaluate("window.__noReload") is True, "the page reloaded instead of swapping"
    expect(page).to_have_url(journey.server.url + "/customer/")
    card.locator(".card-timeline summary").click()
    expect(card.locator(".timeline-event")).to_have_count(2)
    journey.shot(page, "customer-cancelled")


def test_booking_goes_from_customer_through_board_and_phone_queue_to_completed(journey):
    server = journey.server
    provider, provider_id = server.person("provider"), server.user_id("provider")

    customer = journey.open("owner")
    journey.log_in(customer, "owner")
    booking_id = book_through_form(journey, customer)
    expect(customer.locator(f"#booking-{booking_id}")).to_have_attribute("data-status", "PENDING")
    journey.shot(customer, "customer-booked")

    # The dispatcher assigns it on the board to a provider who is free.
    admin = journey.open("admin")
    journey.log_in(admin, "admin")
    card = admin.locator(f".lane-pending #booking-{booking_id}")
    expect(card).to_have_attribute("data-status", "PENDING")
    expect(admin.locator("#lane-count-PENDING")).to_have_text("1")
    journey.shot(admin, "admin-board")
    card.locator("a.action-assign").click()  # the picker, fetched when opened
    assign = card.locator("details.action-assign")
    picker = assign.get_by_label("Provider")
    expect(picker.locator("option")).to_have_text(
        ["Choose…", re.compile(r"^Pat Provider — available"), re.compile(r"^Quinn Provider — ")]
    )
    choose_provider(picker, provider.name)
    journey.shot(admin, "admin-assign-picker")
    assign.get_by_role("button", name="Assign").click()
    # The card answers in place, then the board redraws and it moves to the assigned lane.
    card = admin.locator(f".lane-assigned #booking-{booking_id}")
    expect(card).to_have_attribute("data-status", "ASSIGNED")
    expect(admin.locator(f".lane-pending #booking-{booking_id}")).to_have_count(0)
    expect(card.locator(".card-facts")).to_contain_text(provider.name)
    # Out-of-band: the lane counts and the provider panel follow the card.
    expect(admin.locator("#lane-count-PENDING")).to_have_text("0")
    expect(admin.locator("#lane-count-ASSIGNED")).to_have_text("1")
    expect(admin.locator(f"#provider-panel #provider-{provider_id}")).to_contain_text("Busy")
    journey.shot(admin, "admin-assigned")

    # The provider works it from a phone, with one thumb.
    phone = journey.open("provider", phone=True)
    journey.log_in(phone, "provider")
    job = phone.locator(f".current-job #booking-{booking_id}")
    expect(job).to_have_attribute("data-status", "ASSIGNED")
    tappable = "#queue :is(button, summary, a), header.topbar button"
    assert_touch_targets(phone, phone.locator(tappable))
    journey.shot(phone, "provider-queue-assigned")

    job.locator("a.action-reject").tap()
    reject = job.locator("details.action-reject")
    expect(reject.get_by_label("Reason")).to_be_visible()
    assert_touch_targets(phone, reject.locator("button, textarea"))
    journey.shot(phone, "provider-reject-form-open")
    reject.locator("summary").tap()  # changed their mind: close it again
    expect(reject.get_by_label("Reason")).to_be_hidden()

    job.get_by_role("button", name="Accept").tap()
    expect(job).to_have_attribute("data-status", "IN_PROGRESS")
    assert_touch_targets(phone, phone.locator(tappable))
    journey.shot(phone, "provider-in-progress")
    # The action answers with the card, done; then the queue redraws and the finished job
    # leaves it. The card on screen may already be gone by the time anyone looks, so what the
    # action showed is read from its own answer.
    # Complete asks to confirm first: a job finished by a slip of the thumb cannot be undone.
    job.locator("a.action-complete").tap()
    complete = job.locator("details.action-complete")
    complete.get_by_role("checkbox").check()
    with phone.expect_response(lambda r: r.url.endswith(f"/{booking_id}/complete")) as answer:
        complete.get_by_role("button", name="Complete").tap()
    assert answer.value.status == 200
    completed = answer.value.text()
    assert f'id="booking-{booking_id}"' in completed and 'data-status="COMPLETED"' in completed
    assert re.search(r'data-testid="status">\s*Completed\s*<', completed), completed
    expect(job).to_have_count(0)
    expect(phone.get_by_role("heading", name="Nothing assigned to you right now")).to_be_visible()
    journey.shot(phone, "provider-completed")

    customer.reload()
    customer_card = customer.locator(f"#booking-{booking_id}")
    expect(customer_card).to_have_attribute("data-status", "COMPLETED")
    expect(customer_card.get_by_test_id("status")).to_have_text("Completed")
    expect(customer_card.locator(".card-facts")).to_contain_text(provider.name)
    journey.shot(customer, "customer-sees-completed")

    # The dispatcher finds it in the archive and reads its whole story.
    admin.goto(f"/admin/archive?q={booking_id}")
    expect(admin.locator(f"#booking-{booking_id}")).to_have_attribute("data-status", "COMPLETED")
    journey.shot(admin, "admin-archive-search")
    admin.goto(f"/admin/bookings/{booking_id}")
    events = admin.locator(f"#booking-{booking_id} .timeline-event")
    expect(events.locator("strong")).to_have_text(["Request", "Assign", "Accept", "Complete"])
    expect(events.nth(1)).to_contain_text("Ada Admin")
    expect(events.nth(3)).to_contain_text("Pat Provider")
    journey.shot(admin, "admin-booking-timeline")


def test_provider_accepting_a_booking_cancelled_meanwhile_sees_the_conflict_in_the_card(journey):
    booking = journey.server.booking_for(assign_to="provider")
    booking_id = booking["id"]

    admin = journey.open("admin")
    journey.log_in(admin, "admin")
    board_card = admin.locator(f".lane-assigned #booking-{booking_id}")
    expect(board_card).to_have_attribute("data-status", "ASSIGNED")
    journey.shot(admin, "admin-board")

    phone = journey.open("provider", phone=True)
    phone.clock.install()  # before the page loads: its timers are then the test's to stop
    journey.log_in(phone, "provider")
    job = phone.locator(f".current-job #booking-{booking_id}")
    expect(job).to_have_attribute("data-status", "ASSIGNED")
    journey.shot(phone, "provider-queue")
    # The card on the phone must stay as drawn until Accept is pressed: should the queue's
    # 10 s poll come in between, it is answered "nothing new" (204, which htmx does not swap).
    phone.route(QUEUE_POLL, lambda route: route.fulfill(status=204))

    # The board's own refresh can be drawn just before an action and arrive just after it: hold
    # one refresh's answer (drawn now) until the force-cancel has been answered, then deliver it.
    held = []

    def hold_first_refresh(route):
        if held:
            route.continue_()
        else:
            held.append((route, route.fetch()))

    admin.route("**/admin/board", hold_first_refresh)
    start_poll(admin, "#board")

    board_card.locator("a.action-force-cancel").click()
    force_cancel = board_card.locator("details.action-force-cancel")
    force_cancel.get_by_label("Reason").fill("Customer phoned: no longer needed.")
    force_cancel.get_by_role("checkbox").check()
    journey.shot(admin, "admin-force-cancel-confirmation")
    force_cancel.get_by_role("button", name="Force-cancel").click()
    # The card answers in place (then the board redraws and the finished booking leaves it):
    # either way no ASSIGNED picture of it is left on the board.
    assigned_on_board = admin.locator(f"#booking-{booking_id}[data-status=ASSIGNED]")
    expect(assigned_on_board).to_have_count(0)
    expect(admin.locator("#lane-count-ASSIGNED")).to_have_text("0")
    expect(admin.locator(f"#provider-{journey.server.user_id('provider')}")).to_contain_text(
        "Available"
    )

    assert len(held) == 1, "the board refresh was not sent before the force-cancel"
    route, stale_answer = held[0]
    assert f'id="booking-{booking_id}"' in stale_answer.text()  # a picture from before the cancel
    route.fulfill(response=stale_answer)
    poll_handled(admin)
    admin.unroute("**/admin/board")
    # The late, older picture (which still has the card in the assigned lane) does not undo
    # the cancel on screen.
    expect(assigned_on_board).to_have_count(0)
    expect(admin.locator("#lane-count-ASSIGNED")).to_have_text("0")
    expect(admin.locator(f"#provider-{journey.server.user_id('provider')}")).to_contain_text(
        "Available"
    )

    journey.expect_refusal(409)
    # From here the phone's clock stands still: the queue's own 10 s poll cannot come in while
    # the refusal is on screen (it would use up the one refresh the unread message holds back),
    # so each refresh below is one the test sends.
    pause_clock(phone)
    with phone.expect_response(lambda r: r.url.endswith(f"/{booking_id}/accept")) as answer:
        job.get_by_role("button", name="Accept").tap()
    assert answer.value.status == 409
    expect(job.locator(".card-error")).to_contain_text("This booking changed: now CANCELLED")
    expect(job).to_have_attribute("data-status", "CANCELLED")
    expect(job.get_by_test_id("status")).to_have_text("Cancelled")
    expect(job.get_by_role("button", name="Accept")).to_have_count(0)
    # Still the queue page with its top bar, not an error page.
    expect(phone.locator("header.topbar")).to_be_visible()
    expect(phone.get_by_role("heading", name="My work queue")).to_be_visible()
    expect(phone.locator(".error-page")).to_have_count(0)
    phone.unroute(QUEUE_POLL)
    journey.shot(phone, "provider-sees-conflict")
    journey.shot(admin, "admin-board-after-force-cancel")

    # The unread message holds back the queue's next refresh, but only that one: after it the
    # queue is live again (the cancelled job leaves it).
    start_poll(phone, "#queue")
    poll_handled(phone, clock_paused=True)
    expect(job.locator(".card-error")).to_be_visible()
    start_poll(phone, "#queue")
    poll_handled(phone, clock_paused=True)
    expect(job).to_have_count(0)
    expect(phone.get_by_role("heading", name="Nothing assigned to you right now")).to_be_visible()
    journey.shot(phone, "provider-queue-after-refresh")


def test_provider_queue_shows_a_new_assignment_without_a_reload(journey):
    phone = journey.open("provider", phone=True)
    phone.clock.install()  # before the page loads, so its poll's timer is the test's to move
    journey.log_in(phone, "provider")
    expect(phone.get_by_role("heading", name="Nothing assigned to you right now")).to_be_visible()
    journey.shot(phone, "provider-empty-queue")
    phone.evaluate("window.__noReload = true")

    booking_id = journey.server.booking_for("Blocked drain", assign_to="provider")["id"]

    # The queue polls every 10 s: a whole interval on the page's clock, and its poll goes out
    # now (not when the machine gets round to it).
    phone.clock.fast_forward("00:10")
    job = phone.locator(f".current-job #booking-{booking_id}")
    expect(job).to_have_attribute("data-status", "ASSIGNED")
    expect(job.locator(".card-title")).to_have_text("Blocked drain")
    assert phone.evaluate("window.__noReload") is True, "the page reloaded instead of polling"
    journey.shot(phone, "provider-queue-new-job")

"""A provider on a phone and a customer, in real headless Chromium: the provider's new job asks
them to act, a job whose window has begun is flagged late in their queue, an open timeline
survives the queue's redraw, Complete asks to confirm, each job has a page and finished ones a
history, the address opens a maps app and the customer's phone is a tap-to-call link; a
customer whose booking failed is told what happens next and requests it again from a prefilled
form, and cancels another with a reason."""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import quote_plus

import pytest

from tests.support.browser import assert_keyboard_focus_stays_clear_of, poll_handled, start_poll

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips these tests (or fails them when required)
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.server]

ADDRESS = "4 Mill Lane, Leeds"
PHONE = "+44 20 7946 0018"


def test_a_provider_on_a_phone_works_a_job_through_to_its_history(journey):
    server = journey.server
    booking = server.api(
        "owner",
        "POST",
        "/api/bookings",
        {"service": "Leaking tap", "address": ADDRESS, "customer_phone": PHONE},
    )
    server.api(
        "admin",
        "POST",
        f"/api/bookings/{booking['id']}/assign",
        {"provider_id": server.user_id("provider")},
    )

    phone = journey.open("provider", phone=True)
    journey.log_in(phone, "provider")
    job = phone.locator(f".current-job #booking-{booking['id']}")
    expect(job.get_by_test_id("status")).to_have_text("New job — accept or reject")
    maps = job.get_by_role("link", name=ADDRESS)
    expect(maps).to_have_attribute(
        "href", "https://www.google.com/maps/search/?api=1&query=" + quote_plus(ADDRESS)
    )
    expect(job.get_by_role("link", name=PHONE)).to_have_attribute("href", "tel:+442079460018")
    journey.shot(phone, "provider-new-job")

    job.get_by_role("button", name="Accept").tap()
    expect(job).to_have_attribute("data-status", "IN_PROGRESS")
    expect(job.get_by_test_id("status")).to_have_text("In progress")
    # The note saying so sits at the foot of the phone's screen; the keyboard never hides
    # behind it.
    confirmation = phone.locator("#confirmation")
    expect(confirmation).to_contain_text("accepted")
    assert_keyboard_focus_stays_clear_of(confirmation)

    # While they read the job's timeline, a dispatcher gives them, busy as they are, a job
    # whose window began an hour ago: the queue's redraw (sent now rather than waited for)
    # shows it next, flagged late, and leaves the timeline open.
    job.locator("details.card-timeline summary").tap()
    expect(job.locator(".timeline")).to_contain_text("Job started")
    late = server.late_booking("Blocked drain", "9 Mill Lane, Leeds")
    server.api(
        "admin",
        "POST",
        f"/api/bookings/{late}/force-assign",
        {"provider_id": server.user_id("provider"), "reason": "Nobody else free"},
    )
    start_poll(phone, "#queue")
    poll_handled(phone)
    up_next = phone.locator(f".card-list #booking-{late}")
    expect(up_next.get_by_test_id("late")).to_have_text("Late")
    expect(job.get_by_test_id("late")).to_have_count(0)  # in progress, and due any time
    expect(job.locator("details.card-timeline")).to_have_attribute("open", "")
    expect(job.locator(".timeline")).to_be_visible()
    journey.shot(phone, "provider-late-job-up-next")

    job.locator("a.action-complete").tap()
    complete = job.locator("details.action-complete")
    confirm = complete.get_by_role("checkbox")
    expect(complete.locator("label.confirm")).to_have_text(
        f"Yes, complete booking #{booking['id']}"
    )
    journey.shot(phone, "provider-complete-confirmation")
    confirm.check()
    complete.get_by_role("button", name="Complete").tap()
    # The late job is theirs to do now, still flagged.
    current = phone.locator(f".current-job #booking-{late}")
    expect(current.get_by_test_id("status")).to_have_text("New job — accept or reject")
    expect(current.get_by_test_id("late")).to_have_text("Late")

    phone.get_by_role("link", name="Jobs I finished").tap()
    expect(phone.get_by_role("heading", name="Jobs I finished")).to_be_visible()
    done = phone.locator(f"#booking-{booking['id']}")
    expect(done.get_by_test_id("status")).to_have_text("Completed")
    expect(done.get_by_role("link", name=PHONE)).to_be_visible()
    journey.shot(phone, "provider-history")

    done.get_by_role("link", name=f"#{booking['id']}").tap()
    expect(phone.get_by_role("heading", name=f"Booking #{booking['id']}")).to_be_visible()
    events = phone.locator(f"#booking-{booking['id']} .timeline-event strong")
    expect(events).to_have_text(
        ["Booking requested", "Provider assigned", "Job started", "Completed"]
    )
    journey.shot(phone, "provider-job-page")


def test_a_customer_requests_a_failed_booking_again_and_cancels_another_with_a_reason(journey):
    server = journey.server
    page = journey.open("owner")
    journey.log_in(page, "owner")

    page.get_by_role("link", name="Book a service").first.click()
    page.get_by_label("What do you need?").select_option(label="Plumbing")
    page.get_by_label("Address").fill(ADDRESS)
    page.get_by_label("Day").fill((date.today() + timedelta(days=2)).isoformat())
    page.get_by_label("Another time").check()
    page.get_by_label("From").select_option("09:00")
    page.get_by_label("Until").select_option("11:30")
    page.get_by_label("Notes for the provider").fill("Gate code 1234")
    page.get_by_label("Phone (optional)").fill(PHONE)
    journey.shot(page, "customer-form-with-phone")
    page.get_by_role("button", name="Request booking").click()
    card = page.locator("article.card").first
    booking_id = int(card.get_attribute("id").removeprefix("booking-"))

    # No provider can be found: a dispatcher marks it failed.
    server.api(
        "admin", "POST", f"/api/bookings/{booking_id}/mark-failed", {"reason": "Nobody free"}
    )
    page.reload()
    card = page.locator(f"#booking-{booking_id}")
    expect(card.get_by_test_id("status")).to_have_text("Failed")
    expect(card.locator(".next-step")).to_contain_text(
        "We couldn't find a provider for this time. You can request it again"
    )
    journey.shot(page, "customer-failed-next-step")

    card.get_by_role("link", name="Request again").click()
    expect(page.get_by_text(f"The same job as booking #{booking_id}")).to_be_visible()
    expect(page.get_by_label("What do you need?")).to_have_value("Plumbing")
    expect(page.get_by_label("Address")).to_have_value(ADDRESS)
    expect(page.get_by_label("Notes for the provider")).to_have_value("Gate code 1234")
    expect(page.get_by_label("Phone (optional)")).to_have_value(PHONE)
    expect(page.get_by_label("Day")).to_have_value("")
    journey.shot(page, "customer-request-again")
    page.get_by_label("Day").fill((date.today() + timedelta(days=3)).isoformat())
    page.get_by_label("12:00–14:00").check()
    page.get_by_role("button", name="Request booking").click()
    again = page.locator("article.card").first
    expect(again).to_have_attribute("data-status", "PENDING")
    again_id = int(again.get_attribute("id").removeprefix("booking-"))
    assert again_id != booking_id

    # Cancelling asks why.
    again.locator("a.action-cancel").click()
    cancel = again.locator("details.action-cancel")
    cancel.get_by_label("Found someone else").check()
    cancel.get_by_label("Yes, cancel booking").check()
    journey.shot(page, "customer-cancel-reasons")
    cancel.get_by_role("button", name="Cancel booking").click()
    expect(again).to_have_attribute("data-status", "CANCELLED")
    again.locator(".card-timeline summary").click()
    expect(again.locator(".timeline-reason")).to_have_text("Found someone else")
    journey.shot(page, "customer-cancelled-with-reason")

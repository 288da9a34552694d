"""What a provider and a customer see and do beyond the plain lifecycle: Complete asks to
confirm; a provider's own new job asks them to act; a page per job and a history of finished
jobs; the address opens a maps app and the customer's phone is a tap-to-call link (for that
job's provider only); a failed booking says what happens next and offers to request it again;
cancelling offers reasons. Through the pages (test client), on SQLite and PostgreSQL."""

from __future__ import annotations

from urllib.parse import quote_plus

from ops_portal.domain.lifecycle import Action, Status
from ops_portal.extensions import db
from ops_portal.services import bookings
from tests.support.api import assert_error
from tests.support.builders import booking_in, count_bookings, snapshot
from tests.support.pages import HTMX, Page, booking_form, press

PHONE = "+44 (0)20 7946-0018"


def fresh():
    """Ends the test's earlier reads, so the next one sees what the pages wrote."""
    db.session.rollback()


def booked_with_phone(people, status: Status, phone: str = PHONE, *, provider=None):
    """A booking of Olive's with her phone on it, brought to `status` for `provider` (Pat)."""
    booking = bookings.create_booking(
        people.owner, service="Leaking tap", address="4 Mill Lane, Leeds", customer_phone=phone
    )
    steps = {
        Status.ASSIGNED: [Action.ASSIGN],
        Status.IN_PROGRESS: [Action.ASSIGN, Action.ACCEPT],
        Status.COMPLETED: [Action.ASSIGN, Action.ACCEPT, Action.COMPLETE],
    }[status]
    provider = provider or people.provider
    for action in steps:
        bookings.perform_action(
            people.admin if action is Action.ASSIGN else provider,
            booking.id,
            action,
            provider_id=provider.user_id if action is Action.ASSIGN else None,
        )
    return booking.id


# ------------------------------------------------------------------------ provider


def test_complete_asks_the_provider_to_confirm_before_it_is_done(people, login):
    booking = booking_in(people, Status.IN_PROGRESS)
    client = login("provider")
    page = Page(client.get("/provider/"))
    assert page.action_link(booking.id, "complete"), "Complete is a link to its form"

    form = page.form(booking.id, "complete")
    assert "confirm" in form.checkboxes
    unconfirmed = press(client, form, htmx=True)
    assert unconfirmed.status_code == 400
    assert "Tick the box to confirm: complete." in Page(unconfirmed).card_error(booking.id)
    assert snapshot(booking.id)[0] == Status.IN_PROGRESS

    done = press(client, page.form(booking.id, "complete"), htmx=True, confirm=True)
    assert done.status_code == 200
    assert snapshot(booking.id)[0] == Status.COMPLETED


def test_a_providers_own_new_job_asks_them_to_accept_or_reject(people, login):
    booking = booking_in(people, Status.ASSIGNED)
    provider_card = Page(login("provider").get("/provider/")).card(booking.id)
    admin_card = Page(login("admin").get(f"/admin/bookings/{booking.id}")).card(booking.id)

    assert "New job — accept or reject" in provider_card
    assert "New job" not in admin_card and "Provider assigned" in admin_card


def test_a_rejected_booking_reads_to_its_customer_as_another_provider_being_found(people, login):
    booking = booking_in(people, Status.REJECTED)
    customer_card = Page(login("owner").get("/customer/")).card(booking.id)
    detail = Page(login("owner").get(f"/customer/bookings/{booking.id}")).text
    admin_card = Page(login("admin").get(f"/admin/bookings/{booking.id}")).card(booking.id)

    assert "Finding another provider" in customer_card and "Finding another provider" in detail
    assert "Rejected" not in customer_card and "Rejected" not in detail
    assert "Rejected by provider" in admin_card


def test_once_accepted_the_job_reads_in_progress_to_its_provider(people, login):
    booking = booking_in(people, Status.IN_PROGRESS)
    card = Page(login("provider").get("/provider/")).card(booking.id)
    assert "In progress" in card and "New job" not in card


def test_a_provider_opens_a_page_for_each_job_of_theirs_and_for_no_other(people, login):
    mine = booking_in(people, Status.ASSIGNED)
    theirs = booking_in(people, Status.ASSIGNED, provider=people.other_provider)
    client = login("provider")

    queue = Page(client.get("/provider/"))
    assert f'href="/provider/bookings/{mine.id}"' in queue.card(mine.id)
    page = Page(client.get(f"/provider/bookings/{mine.id}"))
    assert page.status == 200 and not page.is_fragment
    assert f"Booking #{mine.id}" in page.text and "Timeline" in page.text
    assert client.get(f"/provider/bookings/{theirs.id}").status_code == 403


def test_the_history_lists_the_jobs_a_provider_finished_latest_first(people, login):
    first = booking_in(people, Status.COMPLETED)
    second = booking_in(people, Status.COMPLETED)
    booking_in(people, Status.IN_PROGRESS)  # not finished
    quinns = booking_in(people, Status.COMPLETED, provider=people.other_provider)
    client = login("provider")

    queue = Page(client.get("/provider/"))
    assert 'href="/provider/history"' in queue.html
    history = Page(client.get("/provider/history"))
    assert history.status == 200
    assert history.card_ids == [second.id, first.id]
    assert "2 finished jobs" in history.text
    assert quinns.id not in history.card_ids


def test_a_finished_job_opens_from_the_history_with_its_timeline(people, login):
    done = booking_in(people, Status.COMPLETED)
    client = login("provider")
    history = Page(client.get("/provider/history"))
    assert f'href="/provider/bookings/{done.id}"' in history.card(done.id)

    page = Page(client.get(f"/provider/bookings/{done.id}"))
    assert page.status == 200 and "Completed" in page.text
    timeline = Page(client.get(f"/provider/bookings/{done.id}/timeline", headers=HTMX))
    assert timeline.status == 200 and "Complete" in timeline.text
    # A job another provider finished stays theirs.
    assert login("other_provider").get(f"/provider/bookings/{done.id}").status_code == 403


def test_the_history_pages_by_position(people, login):
    done = [booking_in(people, Status.COMPLETED).id for _ in range(22)]
    client = login("provider")
    first = Page(client.get("/provider/history"))
    assert first.card_ids == done[::-1][:20]
    second = Page(client.get(f"/provider/history?after={first.card_ids[-1]}"))
    assert second.card_ids == done[::-1][20:]


def test_the_address_opens_in_a_maps_app_for_the_provider(people, login):
    booking = booked_with_phone(people, Status.ASSIGNED)
    card = Page(login("provider").get("/provider/")).card(booking)
    maps = "https://www.google.com/maps/search/?api=1&amp;query=" + quote_plus("4 Mill Lane, Leeds")
    assert f'href="{maps}"' in card


def test_the_customers_phone_is_a_tap_to_call_link_for_the_jobs_provider(people, login):
    booking = booked_with_phone(people, Status.ASSIGNED)
    provider_card = Page(login("provider").get("/provider/")).card(booking)
    admin_card = Page(login("admin").get(f"/admin/bookings/{booking}")).card(booking)

    for card in (provider_card, admin_card):
        assert f'href="tel:+4402079460018">{PHONE}</a>' in card


def test_the_customers_phone_is_never_shown_to_another_provider(people, login):
    booking = booked_with_phone(people, Status.COMPLETED)
    # Quinn is given a job of Olive's too; Pat's finished one is not Quinn's to see.
    booked_with_phone(people, Status.ASSIGNED, "0113 496 0000", provider=people.other_provider)
    client = login("other_provider")
    for url in ("/provider/", "/provider/history"):
        assert PHONE not in client.get(url).get_data(as_text=True)
    assert client.get(f"/provider/bookings/{booking}").status_code == 403


# ------------------------------------------------------------------------ customer


def test_the_booking_form_takes_an_optional_phone(people, login):
    client = login("owner")
    _, data = booking_form(client, customer_phone="+44 20 7946 0018")
    assert client.post("/customer/bookings/new", data=data).status_code == 303
    _, data = booking_form(client)  # and without one
    assert client.post("/customer/bookings/new", data=data).status_code == 303

    fresh()
    phones = [b.customer_phone for b in bookings.customer_bookings(people.owner).items]
    assert phones == ["", "+44 20 7946 0018"]


def test_a_phone_that_is_not_a_number_is_refused_beside_its_field_keeping_the_form(people, login):
    client = login("owner")
    for typed in ("call me", "12345", "+1 234 567 890 123 456 789 01"):
        _, data = booking_form(client, customer_phone=typed, address="9 Kept Road")
        page = Page(client.post("/customer/bookings/new", data=data))
        assert page.status == 400
        assert page.field_error("customer_phone") == (
            "A phone number has 6 to 20 digits, and nothing else but spaces and + - ( )"
        )
        assert 'value="9 Kept Road"' in page.html and f'value="{typed}"' in page.html
    fresh()
    assert bookings.customer_bookings(people.owner).items == []


def test_a_failed_booking_says_what_happens_next_and_offers_to_request_it_again(people, login):
    client = login("owner")
    _, data = booking_form(
        client, customer_phone="0113 496 0000", notes="Gate code 1234", address="4 Mill Lane"
    )
    client.post("/customer/bookings/new", data=data)
    fresh()
    booking = bookings.customer_bookings(people.owner).items[0]
    bookings.perform_action(people.admin, booking.id, Action.MARK_FAILED, reason="No one free")

    card = Page(client.get("/customer/")).card(booking.id)
    assert "We couldn&#39;t find a provider for this time." in card
    assert f'href="/customer/bookings/new?again={booking.id}"' in card

    again = Page(client.get(f"/customer/bookings/new?again={booking.id}"))
    assert again.status == 200
    assert f"The same job as booking #{booking.id}" in again.text
    assert '<option selected value="Plumbing">' in again.html
    for kept in ('value="4 Mill Lane"', "Gate code 1234", 'value="0113 496 0000"'):
        assert kept in again.html
    assert '<input id="day" name="day" required type="date" value="">' in again.html, "a new day"


def test_only_failed_bookings_offer_to_request_again_and_only_to_their_owner(people, login):
    pending = booking_in(people, Status.PENDING)
    failed = booking_in(people, Status.FAILED)
    page = Page(login("owner").get("/customer/"))
    assert "Request again" not in page.card(pending.id)
    assert "Request again" in page.card(failed.id)
    assert "Request again" not in Page(login("admin").get(f"/admin/bookings/{failed.id}")).html
    # Another customer's booking is not a form to start from.
    other = login("other_customer")
    assert other.get(f"/customer/bookings/new?again={failed.id}").status_code == 403


def test_cancelling_offers_reasons_and_keeps_the_chosen_one_with_what_was_typed(people, login):
    client = login("owner")
    chosen, typed, neither = (booking_in(people, Status.PENDING) for _ in range(3))
    page = Page(client.get("/customer/"))
    form = page.form(chosen.id, "cancel")
    opened = Page(client.get(page.action_link(chosen.id, "cancel"), headers=HTMX))
    for preset in ("Plans changed", "Found someone else", "Booked by mistake", "Other…"):
        assert preset in opened.text

    press(client, form, confirm=True, reason_preset="Found someone else", reason="")
    press(client, page.form(typed.id, "cancel"), confirm=True, reason_preset="", reason="Moved")
    press(client, page.form(neither.id, "cancel"), confirm=True)

    fresh()
    reasons = [
        bookings.booking_events(people.owner, b.id)[-1].reason for b in (chosen, typed, neither)
    ]
    assert reasons == ["Found someone else", "Moved", None]


def test_a_preset_with_words_of_ones_own_keeps_both(people, login):
    booking = booking_in(people, Status.ASSIGNED)
    client = login("owner")
    form = Page(client.get("/customer/")).form(booking.id, "cancel")
    press(client, form, confirm=True, reason_preset="Plans changed", reason="Moving house")
    fresh()
    event = bookings.booking_events(people.admin, booking.id)[-1]
    assert (event.action, event.reason) == (Action.CANCEL, "Plans changed: Moving house")


def test_a_reason_that_is_not_one_offered_is_refused_in_the_card(people, login):
    booking = booking_in(people, Status.PENDING)
    client = login("owner")
    form = Page(client.get("/customer/")).form(booking.id, "cancel")
    response = press(client, form, htmx=True, confirm=True, reason_preset="Because")
    assert response.status_code == 400
    assert "Choose one of the reasons offered" in Page(response).card_error(booking.id)
    assert snapshot(booking.id)[0] == Status.PENDING


# ------------------------------------------------------------------------ the API


def test_the_api_creates_a_booking_with_the_customers_phone_and_shows_it(api, cast):
    created = api.post(
        "/api/bookings/", as_="owner", json={"service": "Leaking tap", "customer_phone": PHONE}
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    booking = created.get_json()
    assert booking["customer_phone"] == PHONE
    bookings.perform_action(
        cast.admin, booking["id"], Action.ASSIGN, provider_id=cast.provider.user_id
    )
    seen = api.get(f"/api/bookings/{booking['id']}", as_="provider").get_json()
    assert seen["customer_phone"] == PHONE
    plain = api.post("/api/bookings/", as_="owner", json={"service": "Leaking tap"})
    assert plain.get_json()["customer_phone"] == ""


def test_the_api_refuses_a_phone_that_is_not_a_number(api, cast):
    for phone in ("call me", "123"):
        refused = api.post("/api/bookings/", as_="owner", json={"customer_phone": phone})
        detail = assert_error(refused, 400)
        assert "A phone number has 6 to 20 digits" in detail, detail
    too_long = api.post("/api/bookings/", as_="owner", json={"customer_phone": "0" * 33})
    assert "customer_phone" in assert_error(too_long, 400)
    assert count_bookings() == 0


def test_a_provider_reads_a_job_they_finished_through_the_api_and_no_other(api, cast):
    mine = booking_in(cast, Status.COMPLETED)
    quinns = booking_in(cast, Status.COMPLETED, provider=cast.other_provider)
    assert api.get(f"/api/bookings/{mine.id}", as_="provider").status_code == 200
    assert api.get(f"/api/bookings/{quinns.id}", as_="provider").status_code == 403

"""Offers on the pages: the provider's queue and the board say how long each offer has left,
the countdown's data for the script beside it; an answer after the deadline is refused inside
the card, telling the deadline in the person's own zone."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from ops_portal.domain.lifecycle import Action
from ops_portal.models import utcnow
from ops_portal.services import bookings, offers
from tests.support.pages import Page, press

OFFER_TIME = timedelta(seconds=300)


def offered(people, *, ago: timedelta) -> tuple[int, object]:
    """A booking offered to Pat `ago` ago: its id and its offer's deadline."""
    booking = bookings.create_booking(people.owner, service="Leaking tap", address="1 Test St")
    assigned = bookings.perform_action(
        people.admin,
        booking.id,
        Action.ASSIGN,
        provider_id=people.provider.user_id,
        now=utcnow() - ago,
    )
    return booking.id, assigned.offer_expires_at


def offer_left(page: Page, booking_id: int) -> tuple[str, int] | None:
    found = re.search(
        r'data-testid="offer-left">Offer: <span role="timer" data-offer-seconds="(\d+)">([^<]*)<',
        page.card(booking_id),
    )
    return (found.group(2), int(found.group(1))) if found else None


def test_the_queue_and_the_board_say_how_long_an_offer_has_left(people, login):
    booking_id, _ = offered(people, ago=timedelta(seconds=30))
    words, seconds = offer_left(Page(login("provider").get("/provider/")), booking_id)
    assert words == "4 min left" and 240 <= seconds <= 270
    assert offer_left(Page(login("admin").get("/admin/")), booking_id)[0] == "4 min left"
    customer = Page(login("owner").get("/customer/"))
    assert customer.card(booking_id) and offer_left(customer, booking_id) is None


def test_an_answer_after_the_deadline_is_refused_in_the_card_in_the_persons_zone(people, login):
    booking_id, deadline = offered(people, ago=OFFER_TIME + timedelta(seconds=5))
    provider = login("provider")
    page = Page(provider.get("/account/"))
    provider.post("/account/", data={"csrf_token": page.csrf_token, "time_zone": "Asia/Tokyo"})
    queue = Page(provider.get("/provider/"))
    assert offer_left(queue, booking_id) == ("expired", 0)

    response = press(provider, queue.form(booking_id, "accept"), htmx=True)

    assert response.status_code == 409
    tokyo = deadline.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%H:%M")
    assert Page(response).card_error(booking_id) == f"This offer expired at {tokyo}."
    assert Page(response).card_status(booking_id) == "ASSIGNED"

    assert offers.expire_offers(utcnow()) == [booking_id]
    assert booking_id not in Page(provider.get("/provider/")).card_ids

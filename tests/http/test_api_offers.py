"""The API of offers that expire: POST /api/bookings/{id}/expire-offer for SYSTEM tokens once
the offer's deadline has passed, answers after it refused with 409, and the deadline shown to
the provider and dispatchers, not to the customer."""

from __future__ import annotations

from datetime import timedelta

from ops_portal.domain.lifecycle import Action, Status
from ops_portal.models import utcnow
from ops_portal.services import bookings
from tests.support.api import assert_aware_iso, assert_error
from tests.support.builders import booking_in, booking_state, event_actions

OFFER_TIME = timedelta(seconds=300)


def overdue_offer(cast) -> int:
    """A booking offered to Pat just over the offer time ago."""
    booking = bookings.create_booking(cast.owner, service="Leaking tap")
    bookings.perform_action(
        cast.admin,
        booking.id,
        Action.ASSIGN,
        provider_id=cast.provider.user_id,
        now=utcnow() - OFFER_TIME - timedelta(seconds=1),
    )
    return booking.id


def test_an_accept_after_the_deadline_is_refused_with_409_saying_when(api, cast):
    booking_id = overdue_offer(cast)
    before = booking_state(booking_id)
    response = api.post(f"/api/bookings/{booking_id}/accept", as_="provider", json={})
    detail = assert_error(response, 409)
    assert response.get_json()["error"] == "offer_expired"
    assert detail.startswith("This offer expired at ") and detail.endswith(" UTC")
    assert booking_state(booking_id) == before


def test_only_the_system_expires_an_overdue_offer(api, cast):
    booking_id = overdue_offer(cast)
    for kind in ("admin", "provider", "owner"):
        response = api.post(f"/api/bookings/{booking_id}/expire-offer", as_=kind, json={})
        assert_error(response, 403)

    response = api.post(f"/api/bookings/{booking_id}/expire-offer", as_="system", json={})

    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()
    assert (data["status"], data["provider_id"], data["offer_expires_at"]) == (
        "REJECTED",
        None,
        None,
    )
    assert event_actions(booking_id)[-1] == "expire-offer"


def test_an_offer_still_open_or_no_offer_at_all_is_not_expired(api, cast):
    open_offer = booking_in(cast, Status.ASSIGNED)
    response = api.post(f"/api/bookings/{open_offer.id}/expire-offer", as_="system", json={})
    assert assert_error(response, 409).startswith("This offer is open until ")
    assert response.get_json()["error"] == "offer_still_open"

    in_progress = booking_in(cast, Status.IN_PROGRESS, provider=cast.other_provider)
    response = api.post(f"/api/bookings/{in_progress.id}/expire-offer", as_="system", json={})
    assert_error(response, 400)


def test_the_deadline_is_shown_to_the_provider_and_dispatchers_not_the_customer(api, cast):
    booking = booking_in(cast, Status.ASSIGNED)
    for kind in ("provider", "admin"):
        data = api.get(f"/api/bookings/{booking.id}", as_=kind).get_json()
        deadline = assert_aware_iso(data["offer_expires_at"])
        assert timedelta(0) < deadline - utcnow() <= OFFER_TIME
    assert "offer_expires_at" not in api.get(f"/api/bookings/{booking.id}", as_="owner").get_json()

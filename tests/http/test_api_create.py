"""POST /api/bookings/: a customer creates a booking (201, its location, its first event);
who may create, for whom, and which fields are refused.
Through the Flask test client, with real bearer tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ops_portal.services import bookings
from tests.support.api import (
    assert_booking_shape,
    assert_error,
)
from tests.support.builders import assert_event_chain, count_bookings
from tests.support.queries import counted_statements


def test_a_customer_creates_a_booking_and_gets_201_with_its_location(api, cast):
    response = api.post(
        "/api/bookings/",
        as_="owner",
        json={
            "customer_name": "Olive at the door",
            "service": "Boiler service",
            "address": "7 Kings Court",
            "window_start": "2031-05-01T09:00:00+02:00",
            "window_end": "2031-05-01T11:00:00+02:00",
            "notes": "Ring twice",
        },
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    data = response.get_json()
    assert_booking_shape(data, with_events=True, as_="owner")
    assert data["status"] == "PENDING"
    assert data["customer_id"] == cast.owner.user_id
    assert data["customer_name"] == "Olive at the door"
    assert data["provider_id"] is None
    assert data["version"] == 1
    assert data["service"] == "Boiler service"
    assert datetime.fromisoformat(data["window_start"]) == datetime.fromisoformat(
        "2031-05-01T07:00:00+00:00"
    )
    # A customer reads their booking's events in plain words; the stored event has the facts.
    assert [(e["summary"], e["reason"]) for e in data["events"]] == [("Booking requested", None)]
    [event] = bookings.booking_events(cast.admin, data["id"])
    assert (event.action, event.from_status, event.to_status) == ("create", None, "PENDING")
    assert (event.actor_role, event.actor_id, event.source) == (
        "CUSTOMER",
        cast.owner.user_id,
        "api",
    )
    assert response.headers["Location"].endswith(f"/api/bookings/{data['id']}")
    again = api.get(response.headers["Location"], as_="owner")
    assert again.status_code == 200
    assert again.get_json() == data


def test_a_new_bookings_answer_reads_nothing_after_writing_it(api, cast):
    """The answer is the booking as written: its first event is shown to the customer in
    words that need no person's name, so no one is read back (a statement a lifecycle
    request used to spend)."""
    with counted_statements() as statements:
        response = api.post("/api/bookings/", as_="owner", json={"service": "Leaking tap"})
    assert response.status_code == 201
    writes = [i for i, s in enumerate(statements) if s.lstrip().upper().startswith("INSERT")]
    assert len(writes) == 2, statements  # the booking and its event
    after = [s for s in statements[writes[-1] + 1 :] if s.lstrip().upper().startswith("SELECT")]
    assert after == [], after


def test_a_booking_created_with_an_empty_body_takes_the_customers_name(api, cast):
    response = api.post("/api/bookings", as_="owner")
    assert response.status_code == 201
    data = response.get_json()
    assert data["customer_name"] == "Olive Owner"
    assert data["customer_id"] == cast.owner.user_id
    assert_event_chain(data["id"])


@pytest.mark.parametrize("kind", ["provider", "admin", "system"])
def test_only_customers_may_create_bookings(api, cast, kind):
    response = api.post("/api/bookings/", as_=kind, json={})
    assert_error(response, 403)
    assert count_bookings() == 0


# Naming the other customer as the booking's customer, or as the actor in the body.
@pytest.mark.parametrize("field", ["customer_id", "actor_id"])
def test_a_customer_cannot_create_a_booking_for_someone_else(api, cast, field):
    response = api.post("/api/bookings/", as_="owner", json={field: cast.other_customer.user_id})
    assert_error(response, 403)
    assert count_bookings() == 0


def test_create_accepts_actor_fields_and_customer_id_that_match_the_token(api, cast):
    response = api.post(
        "/api/bookings/",
        as_="owner",
        json={
            "actor_role": "CUSTOMER",
            "actor_id": cast.owner.user_id,
            "customer_id": cast.owner.user_id,
        },
    )
    assert response.status_code == 201
    assert response.get_json()["customer_id"] == cast.owner.user_id


@pytest.mark.parametrize(
    "body, named",
    [
        ({"customer_name": 5}, "customer_name"),
        ({"service": ["plumbing"]}, "service"),
        ({"window_start": "tomorrow morning"}, "window_start"),
        ({"window_start": "2026-05-01T09:00:00"}, "window_start"),
        (
            {
                "window_start": "2026-05-01T11:00:00+00:00",
                "window_end": "2026-05-01T09:00:00+00:00",
            },
            "window_end",
        ),
        ({"customer_id": "3"}, "customer_id"),
        ({"colour": "red"}, "colour"),
    ],
    ids=[
        "name-a-number",
        "service-a-list",
        "window-not-a-date",
        "window-without-offset",
        "window-ends-before-it-starts",
        "customer-id-a-string",
        "unknown-field",
    ],
)
def test_create_refuses_invalid_fields_with_400_naming_the_field(api, cast, body, named):
    response = api.post("/api/bookings/", as_="owner", json=body)
    assert named in assert_error(response, 400)
    assert count_bookings() == 0


def test_a_window_that_has_already_begun_is_refused_with_422_on_its_field(api, cast):
    begun = datetime.now(UTC) - timedelta(minutes=5)
    response = api.post(
        "/api/bookings/",
        as_="owner",
        json={
            "window_start": begun.isoformat(),
            "window_end": (begun + timedelta(hours=2)).isoformat(),
        },
    )
    assert assert_error(response, 422) == "That time has passed"
    assert response.get_json()["field"] == "window_start"
    assert count_bookings() == 0

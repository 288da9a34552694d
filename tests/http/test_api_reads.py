"""The API's reads: /health, a booking with its events, its events alone, a provider's queue and
the dispatchers' provider list, each with its success shape.
Through the Flask test client, with real bearer tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

from itertools import pairwise

import pytest

from ops_portal.domain.lifecycle import Action, Status
from ops_portal.services import bookings
from tests.support.api import (
    EVENT_KEYS,
    assert_aware_iso,
    assert_booking_shape,
)
from tests.support.builders import booking_in


def pending_force_assigned_to(cast, provider):
    """An ASSIGNED booking for a provider who may already be busy (force-assign bypasses that)."""
    booking = booking_in(cast, Status.PENDING)
    bookings.perform_action(
        cast.admin, booking.id, Action.FORCE_ASSIGN, provider_id=provider.user_id, reason="test"
    )
    return booking.id


def test_health_answers_ok_when_the_database_answers(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


@pytest.mark.parametrize("kind", ["owner", "provider", "admin", "system"])
def test_a_booking_is_readable_with_its_events_by_everyone_allowed_to_see_it(api, cast, kind):
    booking = booking_in(cast, Status.IN_PROGRESS)
    response = api.get(f"/api/bookings/{booking.id}", as_=kind)
    assert response.status_code == 200
    data = response.get_json()
    assert_booking_shape(data, with_events=True, as_=kind)
    assert (data["id"], data["status"], data["provider_id"]) == (
        booking.id,
        "IN_PROGRESS",
        cast.provider.user_id,
    )
    assert data["version"] == 3
    assert response.headers["ETag"] == '"3"'
    assert [e["summary"] for e in data["events"]] == [
        "Booking requested",
        "Provider assigned",
        "Job started",
    ]
    if kind in ("admin", "system"):
        assert [e["action"] for e in data["events"]] == ["create", "assign", "accept"]


def test_events_come_oldest_first_and_match_the_bookings_own_list(api, cast):
    booking = booking_in(cast, Status.REJECTED)
    bookings.perform_action(cast.system, booking.id, Action.RETRY)
    bookings.perform_action(
        cast.admin, booking.id, Action.ASSIGN, provider_id=cast.other_provider.user_id
    )
    response = api.get(f"/api/bookings/{booking.id}/events", as_="admin")
    assert response.status_code == 200
    events = response.get_json()
    assert [e["action"] for e in events] == ["create", "assign", "reject", "retry", "assign"]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    times = [assert_aware_iso(e["created_at"]) for e in events]
    assert times == sorted(times)
    assert all(set(e) == EVENT_KEYS for e in events)
    for previous, event in pairwise(events):
        assert event["from_status"] == previous["to_status"]
    assert events[2]["provider_id"] == cast.provider.user_id  # the rejecting provider is kept
    single = api.get(f"/api/bookings/{booking.id}", as_="admin").get_json()
    assert single["events"] == events


def test_a_provider_queue_holds_only_assigned_and_in_progress_bookings_current_job_first(api, cast):
    completed = booking_in(cast, Status.COMPLETED)
    for status in (Status.REJECTED, Status.FAILED, Status.CANCELLED):
        booking_in(cast, status)
    booking_in(cast, Status.PENDING)
    in_progress = booking_in(cast, Status.IN_PROGRESS).id
    assigned = pending_force_assigned_to(cast, cast.provider)
    booking_in(cast, Status.ASSIGNED, provider=cast.other_provider)  # someone else's job
    assert completed.provider_id == cast.provider.user_id  # kept, yet not in the queue

    for kind in ("provider", "admin", "system"):
        response = api.get(f"/api/providers/{cast.provider.user_id}/bookings", as_=kind)
        assert response.status_code == 200
        queue = response.get_json()
        assert [b["id"] for b in queue] == [in_progress, assigned]
        assert [b["status"] for b in queue] == ["IN_PROGRESS", "ASSIGNED"]
        for item in queue:
            assert_booking_shape(item, with_events=False, as_=kind)
            assert item["provider_id"] == cast.provider.user_id


def test_an_idle_provider_has_an_empty_queue(api, cast):
    booking_in(cast, Status.COMPLETED)
    response = api.get(f"/api/providers/{cast.provider.user_id}/bookings", as_="provider")
    assert response.status_code == 200
    assert response.get_json() == []


@pytest.mark.parametrize("kind", ["admin", "system"])
def test_dispatchers_list_providers_with_availability(api, cast, kind):
    booking_in(cast, Status.ASSIGNED)  # cast.provider is busy
    response = api.get("/api/admin/providers", as_=kind)
    assert response.status_code == 200
    providers = response.get_json()
    assert isinstance(providers, list)
    for item in providers:
        assert {"id", "name", "availability"} <= set(item)
    by_id = {p["id"]: (p["name"], p["availability"]) for p in providers}
    assert by_id == {
        cast.provider.user_id: ("Pat Provider", "BUSY"),
        cast.other_provider.user_id: ("Quinn Provider", "AVAILABLE"),
    }


def test_health_needs_no_credentials(client):
    assert client.get("/health").status_code == 200

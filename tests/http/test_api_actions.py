"""POST /api/bookings/<id>/<action>: every allowed action answers the booking with one new event;
busy providers, invalid transitions (400) and versions (If-Match, a stale version's 409).
Through the Flask test client, with real bearer tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from ops_portal.domain.lifecycle import LIFECYCLE, Action, Status
from ops_portal.services import bookings
from tests.support.api import (
    assert_booking_shape,
    assert_error,
    unchanged,
)
from tests.support.builders import assert_event_chain, booking_in, booking_state

# (path, starting status, actor, body, resulting status, provider afterwards)
SUCCESSES = [
    ("cancel", Status.PENDING, "owner", {}, "CANCELLED", None),
    ("assign", Status.PENDING, "admin", {"provider_id": "provider"}, "ASSIGNED", "provider"),
    (
        "assign",
        Status.REJECTED,
        "system",
        {"provider_id": "other_provider"},
        "ASSIGNED",
        "other_provider",
    ),
    (
        "force-assign",
        Status.FAILED,
        "admin",
        {"provider_id": "provider", "reason": "Specialist needed"},
        "ASSIGNED",
        "provider",
    ),
    ("accept", Status.ASSIGNED, "provider", {}, "IN_PROGRESS", "provider"),
    ("reject", Status.ASSIGNED, "provider", {"reason": "Too far"}, "REJECTED", None),
    ("complete", Status.IN_PROGRESS, "provider", {}, "COMPLETED", "provider"),
    ("retry", Status.FAILED, "system", {}, "PENDING", None),
    ("force-cancel", Status.IN_PROGRESS, "admin", {"reason": "Duplicate"}, "CANCELLED", None),
    ("mark-failed", Status.ASSIGNED, "system", {"reason": "Unreachable"}, "FAILED", None),
    ("cancel/admin", Status.ASSIGNED, "admin", {"reason": "Duplicate"}, "CANCELLED", None),
]


@pytest.mark.parametrize(
    "path, start, kind, body, target, provider_after",
    SUCCESSES,
    ids=[f"{p}-from-{s.lower()}-by-{k}" for p, s, k, *_ in SUCCESSES],
)
def test_an_allowed_action_answers_the_booking_with_one_new_api_event(
    api, cast, path, start, kind, body, target, provider_after
):
    booking = booking_in(cast, start)
    before_version = booking.version
    before_events = len(bookings.booking_events(cast.admin, booking.id))
    if "provider_id" in body:
        body = {**body, "provider_id": cast.by_name(body["provider_id"]).user_id}
    response = api.post(f"/api/bookings/{booking.id}/{path}", as_=kind, json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()
    assert_booking_shape(data, with_events=True, as_=kind)
    assert data["status"] == target
    expected_provider = cast.by_name(provider_after).user_id if provider_after else None
    assert data["provider_id"] == expected_provider
    assert data["version"] == before_version + 1
    assert response.headers["ETag"] == f'"{before_version + 1}"'
    assert len(data["events"]) == before_events + 1
    action = "force-cancel" if path == "cancel/admin" else path
    assert data["events"][-1]["summary"] == LIFECYCLE[Action(action)].customer_words
    # The event as stored (the answer shows it as the caller may see it)
    event = bookings.booking_events(cast.admin, booking.id)[-1]
    assert event.action == action
    assert (event.from_status, event.to_status) == (start, target)
    assert (event.actor_role, event.actor_id) == (
        cast.by_name(kind).role,
        cast.by_name(kind).user_id,
    )
    assert event.source == "api"
    assert event.reason == body.get("reason")
    assert event.forced is (action in ("force-assign", "force-cancel"))
    assert booking_state(booking.id)[0] == target
    assert_event_chain(booking.id)


def test_cancel_admin_is_force_cancel_and_frees_the_provider(api, cast):
    booking = booking_in(cast, Status.IN_PROGRESS)
    response = api.post(
        f"/api/bookings/{booking.id}/cancel/admin",
        as_="admin",
        json={"reason": "Customer moved away"},
    )
    assert response.status_code == 200
    data = response.get_json()
    assert (data["status"], data["provider_id"]) == ("CANCELLED", None)
    event = data["events"][-1]
    assert (event["action"], event["forced"], event["provider_id"]) == (
        "force-cancel",
        True,
        cast.provider.user_id,
    )
    providers = api.get("/api/admin/providers", as_="admin").get_json()
    assert {p["id"]: p["availability"] for p in providers}[cast.provider.user_id] == "AVAILABLE"


def test_a_customer_cannot_use_the_admin_cancel(api, cast):
    booking = booking_in(cast, Status.PENDING)
    with unchanged(booking.id):
        response = api.post(f"/api/bookings/{booking.id}/cancel/admin", as_="owner", json={})
        assert_error(response, 403)


def test_assigning_a_busy_provider_is_refused_with_provider_is_busy(api, cast):
    booking_in(cast, Status.ASSIGNED)
    waiting = booking_in(cast, Status.PENDING)
    with unchanged(waiting.id):
        response = api.post(
            f"/api/bookings/{waiting.id}/assign",
            as_="admin",
            json={"provider_id": cast.provider.user_id},
        )
        assert assert_error(response, 403) == "Provider is busy"


def test_force_assigning_a_busy_provider_succeeds_and_is_marked_forced(api, cast):
    booking_in(cast, Status.IN_PROGRESS)
    waiting = booking_in(cast, Status.PENDING)
    response = api.post(
        f"/api/bookings/{waiting.id}/force-assign",
        as_="admin",
        json={"provider_id": cast.provider.user_id, "reason": "Only plumber nearby"},
    )
    assert response.status_code == 200
    data = response.get_json()
    assert (data["status"], data["provider_id"]) == ("ASSIGNED", cast.provider.user_id)
    assert data["events"][-1]["forced"] is True


INVALID_TRANSITIONS = [
    # (path, status, actor, body, what the detail must also say)
    ("cancel", Status.IN_PROGRESS, "owner", {}, "force-cancel"),
    ("retry", Status.PENDING, "system", {}, "REJECTED"),
    ("accept", Status.IN_PROGRESS, "provider", {}, "ASSIGNED"),
    ("complete", Status.ASSIGNED, "provider", {}, "IN_PROGRESS"),
    ("force-cancel", Status.COMPLETED, "admin", {"reason": "late"}, "PENDING"),
    ("cancel/admin", Status.CANCELLED, "admin", {"reason": "twice"}, "PENDING"),
    ("mark-failed", Status.FAILED, "admin", {"reason": "again"}, "IN_PROGRESS"),
    ("assign", Status.IN_PROGRESS, "admin", {"provider_id": "other_provider"}, "PENDING"),
]


@pytest.mark.parametrize(
    "path, start, kind, body, why",
    INVALID_TRANSITIONS,
    ids=[f"{p}-from-{s.lower()}" for p, s, *_ in INVALID_TRANSITIONS],
)
def test_an_invalid_transition_is_refused_with_400_naming_action_status_and_why(
    api, cast, path, start, kind, body, why
):
    booking = booking_in(cast, start)
    if "provider_id" in body:
        body = {"provider_id": cast.by_name(body["provider_id"]).user_id}
    with unchanged(booking.id):
        response = api.post(f"/api/bookings/{booking.id}/{path}", as_=kind, json=body)
        detail = assert_error(response, 400)
    action = "force-cancel" if path == "cancel/admin" else path
    assert action in detail
    assert str(start) in detail
    assert "allowed only from" in detail
    assert why in detail
    assert response.get_json()["booking"]["status"] == start


@pytest.mark.parametrize(
    "kind, path, start, body",
    [
        ("owner", "cancel", Status.PENDING, {"actor_role": "CUSTOMER", "actor_id": "owner"}),
        ("owner", "cancel", Status.PENDING, {"actor_role": "customer"}),
        ("provider", "accept", Status.ASSIGNED, {"actor_role": "PROVIDER", "actor_id": "provider"}),
        ("system", "retry", Status.FAILED, {"actor_role": "SYSTEM", "actor_id": "system"}),
        ("admin", "force-cancel", Status.PENDING, {"actor_role": "ADMIN", "actor_id": "admin"}),
    ],
    ids=["owner-both", "owner-lowercase-role", "provider", "system", "admin"],
)
def test_body_actor_fields_that_match_the_token_are_accepted(api, cast, kind, path, start, body):
    booking = booking_in(cast, start)
    if "actor_id" in body:
        body = {**body, "actor_id": cast.by_name(body["actor_id"]).user_id}
    response = api.post(f"/api/bookings/{booking.id}/{path}", as_=kind, json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    event = bookings.booking_events(cast.admin, booking.id)[-1]
    assert (event.actor_role, event.actor_id) == (
        cast.by_name(kind).role,
        cast.by_name(kind).user_id,
    )


def test_a_stale_version_in_the_body_answers_409_with_the_current_booking(api, cast):
    booking = booking_in(cast, Status.PENDING)
    seen_version = booking.version
    assigned = api.post(
        f"/api/bookings/{booking.id}/assign",
        as_="admin",
        json={"provider_id": cast.provider.user_id, "version": seen_version},
    )
    assert assigned.status_code == 200
    with unchanged(booking.id):
        response = api.post(
            f"/api/bookings/{booking.id}/cancel", as_="owner", json={"version": seen_version}
        )
        assert_error(response, 409)
    current = response.get_json()["booking"]
    assert (current["id"], current["status"], current["version"]) == (
        booking.id,
        "ASSIGNED",
        seen_version + 1,
    )
    assert current["provider_id"] == cast.provider.user_id


def test_if_match_star_acts_on_whatever_version_is_current(api, cast):
    booking = booking_in(cast, Status.ASSIGNED)
    response = api.post(
        f"/api/bookings/{booking.id}/accept", as_="provider", headers={"If-Match": "*"}
    )
    assert response.status_code == 200
    assert response.get_json()["status"] == "IN_PROGRESS"


def test_a_stale_if_match_answers_409_with_the_current_booking(api, cast):
    booking = booking_in(cast, Status.ASSIGNED)
    etag = api.get(f"/api/bookings/{booking.id}", as_="provider").headers["ETag"]
    accepted = api.post(
        f"/api/bookings/{booking.id}/accept", as_="provider", headers={"If-Match": etag}
    )
    assert accepted.status_code == 200
    with unchanged(booking.id):
        response = api.post(
            f"/api/bookings/{booking.id}/force-cancel",
            as_="admin",
            json={"reason": "stale screen"},
            headers={"If-Match": etag},
        )
        assert_error(response, 409)
    current = response.get_json()["booking"]
    assert (current["status"], current["version"]) == (
        "IN_PROGRESS",
        accepted.get_json()["version"],
    )


@pytest.mark.parametrize("kind, path", [("other_customer", "cancel"), ("other_provider", "accept")])
def test_a_stranger_sending_a_stale_version_gets_the_same_403_and_learns_nothing(
    api, cast, kind, path
):
    booking = booking_in(cast, Status.ASSIGNED)
    url = f"/api/bookings/{booking.id}/{path}"
    with unchanged(booking.id):
        plain = api.post(url, as_=kind, json={})
        stale = api.post(url, as_=kind, json={"version": booking.version - 1})
        current = api.post(url, as_=kind, json={"version": booking.version})
    answers = [(r.status_code, r.get_json()) for r in (plain, stale, current)]
    assert answers[0] == answers[1] == answers[2]
    assert_error(stale, 403)
    assert "ASSIGNED" not in stale.get_json()["detail"]
    assert "booking" not in stale.get_json()


def test_a_provider_whose_job_was_taken_away_gets_409_for_the_version_they_saw(api, cast):
    booking = booking_in(cast, Status.ASSIGNED)
    seen = booking.version
    moved = api.post(
        f"/api/bookings/{booking.id}/force-cancel", as_="admin", json={"reason": "customer called"}
    )
    assert moved.status_code == 200
    with unchanged(booking.id):
        response = api.post(
            f"/api/bookings/{booking.id}/accept", as_="provider", json={"version": seen}
        )
        assert "CANCELLED" in assert_error(response, 409)


def test_a_current_version_lets_the_action_through(api, cast):
    booking = booking_in(cast, Status.ASSIGNED)
    response = api.post(
        f"/api/bookings/{booking.id}/accept",
        as_="provider",
        json={"version": booking.version},
        headers={"If-Match": f'W/"{booking.version}"'},
    )
    assert response.status_code == 200
    assert response.get_json()["status"] == "IN_PROGRESS"

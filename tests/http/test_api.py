"""The JSON API of SPEC §7 through the Flask test client, with real bearer tokens, on SQLite and
PostgreSQL: each endpoint's success shape and its 400/401/403/404/409/413 answers (SPEC §5)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime
from itertools import pairwise

import pytest
import sqlalchemy as sa

from ops_portal.domain.lifecycle import Action, Status
from ops_portal.extensions import db
from ops_portal.models import Booking
from ops_portal.services import bookings
from tests.support.builders import assert_event_chain, booking_in, booking_state

BOOKING_KEYS = {
    "id",
    "status",
    "customer_id",
    "customer_name",
    "provider_id",
    "version",
    "created_at",
    "updated_at",
}
EVENT_KEYS = {
    "id",
    "booking_id",
    "action",
    "from_status",
    "to_status",
    "actor_role",
    "actor_id",
    "provider_id",
    "reason",
    "forced",
    "source",
    "created_at",
}


# ------------------------------------------------------------------------------------ helpers


def call(client, method, path, token=None, body=None, *, data=None, headers=None):
    """One API request; `body` is sent as JSON, `data` as raw bytes."""
    headers = dict(headers or {})
    if token is not None:
        headers.setdefault("Authorization", f"Bearer {token}")
    kwargs = {"headers": headers}
    if body is not None:
        kwargs["json"] = body
    elif data is not None:
        kwargs["data"] = data
        kwargs["content_type"] = "application/json"
    return client.open(path, method=method, **kwargs)


def assert_error(response, status: int) -> str:
    """An error answer: the expected code, JSON {"detail": "..."}, no HTML, no stack trace."""
    text = response.get_data(as_text=True)
    assert response.status_code == status, text
    assert response.mimetype == "application/json", text
    assert "<html" not in text.lower() and "traceback" not in text.lower()
    body = response.get_json()
    assert isinstance(body, dict) and isinstance(body.get("detail"), str) and body["detail"]
    return body["detail"]


def assert_aware_iso(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() is not None, f"{value!r} has no UTC offset"
    return parsed


def assert_booking_shape(data: dict, *, with_events: bool) -> None:
    assert set(data) >= BOOKING_KEYS
    assert isinstance(data["id"], int) and isinstance(data["version"], int)
    assert isinstance(data["customer_id"], int)
    assert data["provider_id"] is None or isinstance(data["provider_id"], int)
    assert data["status"] in set(Status)
    assert assert_aware_iso(data["updated_at"]) >= assert_aware_iso(data["created_at"])
    if with_events:
        assert data["events"], "a single booking carries its events"
        for event in data["events"]:
            assert set(event) >= EVENT_KEYS
            assert_aware_iso(event["created_at"])
    else:
        assert "events" not in data


@contextmanager
def unchanged(*booking_ids: int):
    before = [booking_state(b) for b in booking_ids]
    yield
    assert [booking_state(b) for b in booking_ids] == before


def pending_force_assigned_to(cast, provider):
    """An ASSIGNED booking for a provider who may already be busy (force-assign bypasses that)."""
    booking = booking_in(cast, Status.PENDING)
    bookings.perform_action(
        cast.admin, booking.id, Action.FORCE_ASSIGN, provider_id=provider.user_id, reason="test"
    )
    return booking.id


# ------------------------------------------------------------------------------------ health


def test_health_answers_ok_when_the_database_answers(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


# ------------------------------------------------------------------------------------ create


def test_a_customer_creates_a_booking_and_gets_201_with_its_location(client, cast):
    response = call(
        client,
        "POST",
        "/api/bookings/",
        cast.tokens["owner"],
        {
            "customer_name": "Olive at the door",
            "service": "Boiler service",
            "address": "7 Kings Court",
            "window_start": "2026-05-01T09:00:00+02:00",
            "window_end": "2026-05-01T11:00:00+02:00",
            "notes": "Ring twice",
        },
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    data = response.get_json()
    assert_booking_shape(data, with_events=True)
    assert data["status"] == "PENDING"
    assert data["customer_id"] == cast.owner.user_id
    assert data["customer_name"] == "Olive at the door"
    assert data["provider_id"] is None
    assert data["version"] == 1
    assert data["service"] == "Boiler service"
    assert datetime.fromisoformat(data["window_start"]) == datetime.fromisoformat(
        "2026-05-01T07:00:00+00:00"
    )
    [event] = data["events"]
    assert (event["action"], event["from_status"], event["to_status"]) == (
        "create",
        None,
        "PENDING",
    )
    assert (event["actor_role"], event["actor_id"], event["source"]) == (
        "CUSTOMER",
        cast.owner.user_id,
        "api",
    )
    assert response.headers["Location"].endswith(f"/api/bookings/{data['id']}")
    again = call(client, "GET", response.headers["Location"], cast.tokens["owner"])
    assert again.status_code == 200
    assert again.get_json() == data


def test_a_booking_created_with_an_empty_body_takes_the_customers_name(client, cast):
    response = call(client, "POST", "/api/bookings", cast.tokens["owner"])
    assert response.status_code == 201
    data = response.get_json()
    assert data["customer_name"] == "Olive Owner"
    assert data["customer_id"] == cast.owner.user_id
    assert_event_chain(data["id"])


@pytest.mark.parametrize("kind", ["provider", "admin", "system"])
def test_only_customers_may_create_bookings(client, cast, kind):
    response = call(client, "POST", "/api/bookings/", cast.tokens[kind], {})
    assert_error(response, 403)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 0


def test_a_customer_cannot_create_a_booking_for_someone_else(client, cast):
    response = call(
        client,
        "POST",
        "/api/bookings/",
        cast.tokens["owner"],
        {"customer_id": cast.other_customer.user_id},
    )
    assert_error(response, 403)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 0


def test_create_accepts_actor_fields_and_customer_id_that_match_the_token(client, cast):
    response = call(
        client,
        "POST",
        "/api/bookings/",
        cast.tokens["owner"],
        {
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
def test_create_refuses_invalid_fields_with_400_naming_the_field(client, cast, body, named):
    response = call(client, "POST", "/api/bookings/", cast.tokens["owner"], body)
    assert named in assert_error(response, 400)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 0


# ------------------------------------------------------------------------------------ reads


@pytest.mark.parametrize("kind", ["owner", "provider", "admin", "system"])
def test_a_booking_is_readable_with_its_events_by_everyone_allowed_to_see_it(client, cast, kind):
    booking = booking_in(cast, Status.IN_PROGRESS)
    response = call(client, "GET", f"/api/bookings/{booking.id}", cast.tokens[kind])
    assert response.status_code == 200
    data = response.get_json()
    assert_booking_shape(data, with_events=True)
    assert (data["id"], data["status"], data["provider_id"]) == (
        booking.id,
        "IN_PROGRESS",
        cast.provider.user_id,
    )
    assert data["version"] == 3
    assert response.headers["ETag"] == '"3"'
    assert [e["action"] for e in data["events"]] == ["create", "assign", "accept"]


def test_events_come_oldest_first_and_match_the_bookings_own_list(client, cast):
    booking = booking_in(cast, Status.REJECTED)
    bookings.perform_action(cast.system, booking.id, Action.RETRY)
    bookings.perform_action(
        cast.admin, booking.id, Action.ASSIGN, provider_id=cast.other_provider.user_id
    )
    response = call(client, "GET", f"/api/bookings/{booking.id}/events", cast.tokens["admin"])
    assert response.status_code == 200
    events = response.get_json()
    assert [e["action"] for e in events] == ["create", "assign", "reject", "retry", "assign"]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    times = [assert_aware_iso(e["created_at"]) for e in events]
    assert times == sorted(times)
    assert all(set(e) >= EVENT_KEYS for e in events)
    for previous, event in pairwise(events):
        assert event["from_status"] == previous["to_status"]
    assert events[2]["provider_id"] == cast.provider.user_id  # the rejecting provider is kept
    single = call(client, "GET", f"/api/bookings/{booking.id}", cast.tokens["admin"]).get_json()
    assert single["events"] == events


def test_a_provider_queue_holds_only_assigned_and_in_progress_bookings_current_job_first(
    client, cast
):
    completed = booking_in(cast, Status.COMPLETED)
    for status in (Status.REJECTED, Status.FAILED, Status.CANCELLED):
        booking_in(cast, status)
    booking_in(cast, Status.PENDING)
    in_progress = booking_in(cast, Status.IN_PROGRESS).id
    assigned = pending_force_assigned_to(cast, cast.provider)
    booking_in(cast, Status.ASSIGNED, provider=cast.other_provider)  # someone else's job
    assert completed.provider_id == cast.provider.user_id  # kept, yet not in the queue

    for kind in ("provider", "admin", "system"):
        response = call(
            client, "GET", f"/api/providers/{cast.provider.user_id}/bookings", cast.tokens[kind]
        )
        assert response.status_code == 200
        queue = response.get_json()
        assert [b["id"] for b in queue] == [in_progress, assigned]
        assert [b["status"] for b in queue] == ["IN_PROGRESS", "ASSIGNED"]
        for item in queue:
            assert_booking_shape(item, with_events=False)
            assert item["provider_id"] == cast.provider.user_id


def test_an_idle_provider_has_an_empty_queue(client, cast):
    booking_in(cast, Status.COMPLETED)
    response = call(
        client, "GET", f"/api/providers/{cast.provider.user_id}/bookings", cast.tokens["provider"]
    )
    assert response.status_code == 200
    assert response.get_json() == []


@pytest.mark.parametrize("kind", ["admin", "system"])
def test_dispatchers_list_providers_with_availability(client, cast, kind):
    booking_in(cast, Status.ASSIGNED)  # cast.provider is busy
    response = call(client, "GET", "/api/admin/providers", cast.tokens[kind])
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


# ------------------------------------------------------------------------------------ actions

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
    client, cast, path, start, kind, body, target, provider_after
):
    booking = booking_in(cast, start)
    before_version = booking.version
    before_events = len(bookings.booking_events(cast.admin, booking.id))
    if "provider_id" in body:
        body = {**body, "provider_id": cast.by_name(body["provider_id"]).user_id}
    response = call(client, "POST", f"/api/bookings/{booking.id}/{path}", cast.tokens[kind], body)
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()
    assert_booking_shape(data, with_events=True)
    assert data["status"] == target
    expected_provider = cast.by_name(provider_after).user_id if provider_after else None
    assert data["provider_id"] == expected_provider
    assert data["version"] == before_version + 1
    assert response.headers["ETag"] == f'"{before_version + 1}"'
    assert len(data["events"]) == before_events + 1
    event = data["events"][-1]
    action = "force-cancel" if path == "cancel/admin" else path
    assert event["action"] == action
    assert (event["from_status"], event["to_status"]) == (start, target)
    assert (event["actor_role"], event["actor_id"]) == (
        cast.by_name(kind).role,
        cast.by_name(kind).user_id,
    )
    assert event["source"] == "api"
    assert event["reason"] == body.get("reason")
    assert event["forced"] is (action in ("force-assign", "force-cancel"))
    assert booking_state(booking.id)[0] == target
    assert_event_chain(booking.id)


def test_cancel_admin_is_force_cancel_and_frees_the_provider(client, cast):
    booking = booking_in(cast, Status.IN_PROGRESS)
    response = call(
        client,
        "POST",
        f"/api/bookings/{booking.id}/cancel/admin",
        cast.tokens["admin"],
        {"reason": "Customer moved away"},
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
    providers = call(client, "GET", "/api/admin/providers", cast.tokens["admin"]).get_json()
    assert {p["id"]: p["availability"] for p in providers}[cast.provider.user_id] == "AVAILABLE"


def test_a_customer_cannot_use_the_admin_cancel(client, cast):
    booking = booking_in(cast, Status.PENDING)
    with unchanged(booking.id):
        response = call(
            client, "POST", f"/api/bookings/{booking.id}/cancel/admin", cast.tokens["owner"], {}
        )
        assert_error(response, 403)


def test_assigning_a_busy_provider_is_refused_with_provider_is_busy(client, cast):
    booking_in(cast, Status.ASSIGNED)
    waiting = booking_in(cast, Status.PENDING)
    with unchanged(waiting.id):
        response = call(
            client,
            "POST",
            f"/api/bookings/{waiting.id}/assign",
            cast.tokens["admin"],
            {"provider_id": cast.provider.user_id},
        )
        assert assert_error(response, 403) == "Provider is busy"


def test_force_assigning_a_busy_provider_succeeds_and_is_marked_forced(client, cast):
    booking_in(cast, Status.IN_PROGRESS)
    waiting = booking_in(cast, Status.PENDING)
    response = call(
        client,
        "POST",
        f"/api/bookings/{waiting.id}/force-assign",
        cast.tokens["admin"],
        {"provider_id": cast.provider.user_id, "reason": "Only plumber nearby"},
    )
    assert response.status_code == 200
    data = response.get_json()
    assert (data["status"], data["provider_id"]) == ("ASSIGNED", cast.provider.user_id)
    assert data["events"][-1]["forced"] is True


# ------------------------------------------------------------------------------------ 401

ENDPOINTS = [
    ("POST", "/api/bookings/"),
    ("GET", "/api/bookings/{id}"),
    ("GET", "/api/bookings/{id}/events"),
    *[
        ("POST", f"/api/bookings/{{id}}/{a}")
        for a in (
            "cancel",
            "assign",
            "force-assign",
            "accept",
            "reject",
            "complete",
            "retry",
            "force-cancel",
            "mark-failed",
            "cancel/admin",
        )
    ],
    ("GET", "/api/providers/{provider}/bookings"),
    ("GET", "/api/admin/providers"),
]
BAD_CREDENTIALS = {
    "no-header": lambda token: {},
    "unknown-token": lambda token: {"Authorization": "Bearer ops_not-a-real-token"},
    "empty-bearer": lambda token: {"Authorization": "Bearer "},
    "basic-scheme": lambda token: {"Authorization": f"Basic {token}"},
    "token-scheme": lambda token: {"Authorization": f"Token {token}"},
    "bare-token": lambda token: {"Authorization": token},
}


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS, ids=list(BAD_CREDENTIALS))
def test_every_api_endpoint_answers_401_with_a_bearer_challenge_without_valid_credentials(
    client, cast, credentials
):
    booking = booking_in(cast, Status.ASSIGNED)
    headers = BAD_CREDENTIALS[credentials](cast.tokens["admin"])
    with unchanged(booking.id):
        for method, template in ENDPOINTS:
            path = template.format(id=booking.id, provider=cast.provider.user_id)
            response = call(
                client,
                method,
                path,
                headers=headers,
                body={"provider_id": cast.other_provider.user_id} if "assign" in path else None,
            )
            detail = assert_error(response, 401)
            assert "token" in detail.lower(), (method, path)
            assert response.headers["WWW-Authenticate"].startswith("Bearer"), (method, path)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 1


def test_health_needs_no_credentials(client):
    assert client.get("/health").status_code == 200


# ------------------------------------------------------------------------------------ 400

INVALID_BODIES = [
    ("accept", "provider", b"{not json", "JSON"),
    ("accept", "provider", b'{"reason": "unterminated', "JSON"),
    ("accept", "provider", b"\xff\xfe\x00", "JSON"),
    ("accept", "provider", b"[1, 2]", "object"),
    ("accept", "provider", b'"accept"', "object"),
    ("accept", "provider", b"42", "object"),
    ("accept", "provider", b"null", "object"),
    ("accept", "provider", b'{"colour": "red"}', "colour"),
    ("accept", "provider", b'{"version": "x"}', "version"),
    ("accept", "provider", b'{"version": 1.5}', "version"),
    ("accept", "provider", b'{"version": true}', "version"),
    ("reject", "provider", b'{"reason": 5}', "reason"),
    ("reject", "provider", b'{"reason": "a\\u0000b"}', "reason"),
    ("reject", "provider", b'{"reason": "' + b"x" * 501 + b'"}', "reason"),
    ("force-assign", "admin", b'{"provider_id": "3"}', "provider_id"),
    ("force-assign", "admin", b'{"provider_id": true}', "provider_id"),
    ("force-assign", "admin", b'{"provider_id": 2.0}', "provider_id"),
    ("force-assign", "admin", b"{}", "provider_id"),
    ("force-assign", "admin", b'{"reason": "no one named"}', "provider_id"),
    ("accept", "provider", b'{"provider_id": 1}', "provider_id"),
    ("mark-failed", "admin", b"{}", "reason"),
    ("mark-failed", "admin", b'{"reason": "   "}', "reason"),
    ("cancel/admin", "admin", b'{"reason": ["a"]}', "reason"),
    ("accept", "provider", b'{"actor_role": 3}', "actor_role"),
    ("accept", "provider", b'{"actor_id": "7"}', "actor_id"),
]


@pytest.mark.parametrize(
    "path, kind, raw, named",
    INVALID_BODIES,
    ids=[f"{p}-{raw[:24].decode('latin-1')}" for p, _, raw, _ in INVALID_BODIES],
)
def test_invalid_input_is_refused_with_400_saying_what_is_wrong(
    client, cast, path, kind, raw, named
):
    booking = booking_in(cast, Status.ASSIGNED)
    with unchanged(booking.id):
        response = call(
            client, "POST", f"/api/bookings/{booking.id}/{path}", cast.tokens[kind], data=raw
        )
        assert named.lower() in assert_error(response, 400).lower()


def test_json_nested_too_deeply_is_refused_with_400_not_a_server_error(client, cast):
    booking = booking_in(cast, Status.ASSIGNED)
    with unchanged(booking.id):
        response = call(
            client,
            "POST",
            f"/api/bookings/{booking.id}/accept",
            cast.tokens["provider"],
            data=b"[" * 60_000,
        )
        assert_error(response, 400)


def test_assign_without_a_provider_id_is_refused_with_400(client, cast):
    booking = booking_in(cast, Status.PENDING)
    with unchanged(booking.id):
        response = call(
            client, "POST", f"/api/bookings/{booking.id}/assign", cast.tokens["admin"], {}
        )
        assert "provider_id" in assert_error(response, 400)


@pytest.mark.parametrize("header", ['"abc"', "latest", '"-1"'])
def test_an_if_match_that_is_not_a_version_is_refused_with_400(client, cast, header):
    booking = booking_in(cast, Status.ASSIGNED)
    with unchanged(booking.id):
        response = call(
            client,
            "POST",
            f"/api/bookings/{booking.id}/accept",
            cast.tokens["provider"],
            headers={"If-Match": header},
        )
        assert "If-Match" in assert_error(response, 400)


def test_a_version_and_an_if_match_that_disagree_are_refused_with_400(client, cast):
    booking = booking_in(cast, Status.ASSIGNED)
    with unchanged(booking.id):
        response = call(
            client,
            "POST",
            f"/api/bookings/{booking.id}/accept",
            cast.tokens["provider"],
            {"version": booking.version},
            headers={"If-Match": f'"{booking.version + 1}"'},
        )
        assert_error(response, 400)


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
    client, cast, path, start, kind, body, why
):
    booking = booking_in(cast, start)
    if "provider_id" in body:
        body = {"provider_id": cast.by_name(body["provider_id"]).user_id}
    with unchanged(booking.id):
        response = call(
            client, "POST", f"/api/bookings/{booking.id}/{path}", cast.tokens[kind], body
        )
        detail = assert_error(response, 400)
    action = "force-cancel" if path == "cancel/admin" else path
    assert action in detail
    assert str(start) in detail
    assert "allowed only from" in detail
    assert why in detail
    assert response.get_json()["booking"]["status"] == start


# ------------------------------------------------------------------------------------ 403

WRONG_ACTORS = [
    # (actor, method, path, body, may the actor see the booking?)
    ("other_customer", "GET", "/api/bookings/{id}", None, False),
    ("other_customer", "GET", "/api/bookings/{id}/events", None, False),
    ("other_customer", "POST", "/api/bookings/{id}/cancel", {}, False),
    ("other_provider", "GET", "/api/bookings/{id}", None, False),
    ("other_provider", "GET", "/api/bookings/{id}/events", None, False),
    ("other_provider", "POST", "/api/bookings/{id}/accept", {}, False),
    ("other_provider", "POST", "/api/bookings/{id}/reject", {}, False),
    ("other_provider", "GET", "/api/providers/{provider}/bookings", None, False),
    ("owner", "GET", "/api/providers/{provider}/bookings", None, True),
    ("owner", "GET", "/api/admin/providers", None, True),
    ("provider", "GET", "/api/admin/providers", None, True),
    ("owner", "POST", "/api/bookings/{id}/assign", {"provider_id": "other_provider"}, True),
    ("owner", "POST", "/api/bookings/{id}/force-assign", {"provider_id": "other_provider"}, True),
    ("owner", "POST", "/api/bookings/{id}/force-cancel", {}, True),
    ("owner", "POST", "/api/bookings/{id}/cancel/admin", {}, True),
    ("owner", "POST", "/api/bookings/{id}/mark-failed", {"reason": "x"}, True),
    ("owner", "POST", "/api/bookings/{id}/accept", {}, True),
    ("other_customer", "POST", "/api/bookings/{id}/force-cancel", {}, False),
    ("provider", "POST", "/api/bookings/{id}/cancel", {}, True),
    ("provider", "POST", "/api/bookings/{id}/force-cancel", {}, True),
    ("provider", "POST", "/api/bookings/{id}/mark-failed", {"reason": "x"}, True),
    ("system", "POST", "/api/bookings/{id}/force-assign", {"provider_id": "other_provider"}, True),
    ("system", "POST", "/api/bookings/{id}/cancel/admin", {}, True),
    ("admin", "POST", "/api/bookings/{id}/accept", {}, True),
    ("admin", "POST", "/api/bookings/{id}/cancel", {}, True),
]


@pytest.mark.parametrize(
    "kind, method, template, body, sees",
    WRONG_ACTORS,
    ids=[f"{k}-{m}-{t.rsplit('}', 1)[-1] or '/booking'}" for k, m, t, *_ in WRONG_ACTORS],
)
def test_a_token_for_the_wrong_actor_is_refused_with_403_and_changes_nothing(
    client, cast, kind, method, template, body, sees
):
    booking = booking_in(cast, Status.ASSIGNED)
    path = template.format(id=booking.id, provider=cast.provider.user_id)
    if body and "provider_id" in body:
        body = {**body, "provider_id": cast.other_provider.user_id}
    with unchanged(booking.id):
        response = call(client, method, path, cast.tokens[kind], body)
        assert_error(response, 403)
    if not sees:
        assert "booking" not in response.get_json(), "a 403 must not show a booking to a stranger"


ACTOR_FIELDS = [
    ("owner", "cancel", Status.PENDING, lambda c: {"actor_role": "ADMIN"}),
    (
        "owner",
        "cancel",
        Status.PENDING,
        lambda c: {"actor_role": "PROVIDER", "actor_id": c.owner.user_id},
    ),
    ("owner", "cancel", Status.PENDING, lambda c: {"actor_id": c.other_customer.user_id}),
    ("owner", "cancel", Status.PENDING, lambda c: {"actor_role": "CUSTOMER", "actor_id": None}),
    ("provider", "accept", Status.ASSIGNED, lambda c: {"actor_id": c.other_provider.user_id}),
    ("provider", "accept", Status.ASSIGNED, lambda c: {"actor_role": "SYSTEM"}),
    ("admin", "mark-failed", Status.PENDING, lambda c: {"actor_role": "SYSTEM", "reason": "x"}),
    ("system", "retry", Status.FAILED, lambda c: {"actor_role": "ADMIN"}),
]


@pytest.mark.parametrize(
    "kind, path, start, make_body",
    ACTOR_FIELDS,
    ids=[f"{k}-{p}-{i}" for i, (k, p, *_) in enumerate(ACTOR_FIELDS)],
)
def test_body_actor_fields_that_contradict_the_token_are_refused_with_403(
    client, cast, kind, path, start, make_body
):
    booking = booking_in(cast, start)
    with unchanged(booking.id):
        response = call(
            client, "POST", f"/api/bookings/{booking.id}/{path}", cast.tokens[kind], make_body(cast)
        )
        assert "credentials" in assert_error(response, 403)


def test_body_actor_fields_cannot_make_a_customer_create_for_another(client, cast):
    response = call(
        client,
        "POST",
        "/api/bookings/",
        cast.tokens["owner"],
        {"actor_id": cast.other_customer.user_id},
    )
    assert_error(response, 403)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 0


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
def test_body_actor_fields_that_match_the_token_are_accepted(client, cast, kind, path, start, body):
    booking = booking_in(cast, start)
    if "actor_id" in body:
        body = {**body, "actor_id": cast.by_name(body["actor_id"]).user_id}
    response = call(client, "POST", f"/api/bookings/{booking.id}/{path}", cast.tokens[kind], body)
    assert response.status_code == 200, response.get_data(as_text=True)
    event = response.get_json()["events"][-1]
    assert (event["actor_role"], event["actor_id"]) == (
        cast.by_name(kind).role,
        cast.by_name(kind).user_id,
    )


# ------------------------------------------------------------------------------------ 404

MISSING_IDS = {"unknown": 999_999, "beyond-any-integer": 10**30, "zero": 0}


@pytest.mark.parametrize("which", MISSING_IDS, ids=list(MISSING_IDS))
def test_a_booking_that_does_not_exist_answers_404_on_every_booking_route(client, cast, which):
    booking_id = MISSING_IDS[which]
    for method, template in ENDPOINTS:
        if "{id}" not in template:
            continue
        body = None
        if method == "POST":
            body = {"reason": "x"}
            if "assign" in template:
                body["provider_id"] = cast.provider.user_id
        response = call(client, method, template.format(id=booking_id), cast.tokens["admin"], body)
        assert str(booking_id) in assert_error(response, 404), template


@pytest.mark.parametrize(
    "path",
    [
        "/api/bookings/-1",
        "/api/bookings/-1/events",
        "/api/bookings/-5/cancel",
        "/api/providers/-3/bookings",
        "/api/bookings/abc",
    ],
)
def test_a_negative_or_non_numeric_id_answers_404_in_json(client, cast, path):
    method = "POST" if path.endswith("cancel") else "GET"
    assert_error(
        call(client, method, path, cast.tokens["admin"], {} if method == "POST" else None), 404
    )


@pytest.mark.parametrize("which", MISSING_IDS, ids=list(MISSING_IDS))
def test_the_queue_of_a_provider_that_does_not_exist_answers_404(client, cast, which):
    response = call(
        client, "GET", f"/api/providers/{MISSING_IDS[which]}/bookings", cast.tokens["admin"]
    )
    assert_error(response, 404)


def test_a_customer_id_is_not_a_provider_queue(client, cast):
    response = call(
        client, "GET", f"/api/providers/{cast.owner.user_id}/bookings", cast.tokens["admin"]
    )
    assert_error(response, 404)


@pytest.mark.parametrize("path", ["assign", "force-assign"])
@pytest.mark.parametrize("who", ["unknown", "huge", "a-customer", "negative"])
def test_assigning_a_provider_that_does_not_exist_answers_404(client, cast, path, who):
    booking = booking_in(cast, Status.PENDING)
    provider_id = {
        "unknown": 999_999,
        "huge": 10**30,
        "a-customer": cast.other_customer.user_id,
        "negative": -4,
    }[who]
    with unchanged(booking.id):
        response = call(
            client,
            "POST",
            f"/api/bookings/{booking.id}/{path}",
            cast.tokens["admin"],
            {"provider_id": provider_id, "reason": "test"},
        )
        assert "provider" in assert_error(response, 404).lower()


def test_an_unknown_api_path_and_a_wrong_method_answer_in_json(client, cast):
    assert_error(call(client, "GET", "/api/nothing-here", cast.tokens["admin"]), 404)
    booking = booking_in(cast, Status.PENDING)
    response = call(client, "GET", f"/api/bookings/{booking.id}/cancel", cast.tokens["owner"])
    assert_error(response, 405)
    assert "POST" in response.headers["Allow"]


# ------------------------------------------------------------------------------------ 409


def test_a_stale_version_in_the_body_answers_409_with_the_current_booking(client, cast):
    booking = booking_in(cast, Status.PENDING)
    seen_version = booking.version
    assigned = call(
        client,
        "POST",
        f"/api/bookings/{booking.id}/assign",
        cast.tokens["admin"],
        {"provider_id": cast.provider.user_id, "version": seen_version},
    )
    assert assigned.status_code == 200
    with unchanged(booking.id):
        response = call(
            client,
            "POST",
            f"/api/bookings/{booking.id}/cancel",
            cast.tokens["owner"],
            {"version": seen_version},
        )
        assert_error(response, 409)
    current = response.get_json()["booking"]
    assert (current["id"], current["status"], current["version"]) == (
        booking.id,
        "ASSIGNED",
        seen_version + 1,
    )
    assert current["provider_id"] == cast.provider.user_id


def test_if_match_star_acts_on_whatever_version_is_current(client, cast):
    booking = booking_in(cast, Status.ASSIGNED)
    response = call(
        client,
        "POST",
        f"/api/bookings/{booking.id}/accept",
        cast.tokens["provider"],
        headers={"If-Match": "*"},
    )
    assert response.status_code == 200
    assert response.get_json()["status"] == "IN_PROGRESS"


def test_a_stale_if_match_answers_409_with_the_current_booking(client, cast):
    booking = booking_in(cast, Status.ASSIGNED)
    etag = call(client, "GET", f"/api/bookings/{booking.id}", cast.tokens["provider"]).headers[
        "ETag"
    ]
    accepted = call(
        client,
        "POST",
        f"/api/bookings/{booking.id}/accept",
        cast.tokens["provider"],
        headers={"If-Match": etag},
    )
    assert accepted.status_code == 200
    with unchanged(booking.id):
        response = call(
            client,
            "POST",
            f"/api/bookings/{booking.id}/force-cancel",
            cast.tokens["admin"],
            {"reason": "stale screen"},
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
    client, cast, kind, path
):
    booking = booking_in(cast, Status.ASSIGNED)
    url = f"/api/bookings/{booking.id}/{path}"
    with unchanged(booking.id):
        plain = call(client, "POST", url, cast.tokens[kind], {})
        stale = call(client, "POST", url, cast.tokens[kind], {"version": booking.version - 1})
        current = call(client, "POST", url, cast.tokens[kind], {"version": booking.version})
    answers = [(r.status_code, r.get_json()) for r in (plain, stale, current)]
    assert answers[0] == answers[1] == answers[2]
    assert_error(stale, 403)
    assert "ASSIGNED" not in stale.get_json()["detail"]
    assert "booking" not in stale.get_json()


def test_a_provider_whose_job_was_taken_away_gets_409_for_the_version_they_saw(client, cast):
    booking = booking_in(cast, Status.ASSIGNED)
    seen = booking.version
    moved = call(
        client,
        "POST",
        f"/api/bookings/{booking.id}/force-cancel",
        cast.tokens["admin"],
        {"reason": "customer called"},
    )
    assert moved.status_code == 200
    with unchanged(booking.id):
        response = call(
            client,
            "POST",
            f"/api/bookings/{booking.id}/accept",
            cast.tokens["provider"],
            {"version": seen},
        )
        assert "CANCELLED" in assert_error(response, 409)


def test_a_current_version_lets_the_action_through(client, cast):
    booking = booking_in(cast, Status.ASSIGNED)
    response = call(
        client,
        "POST",
        f"/api/bookings/{booking.id}/accept",
        cast.tokens["provider"],
        {"version": booking.version},
        headers={"If-Match": f'W/"{booking.version}"'},
    )
    assert response.status_code == 200
    assert response.get_json()["status"] == "IN_PROGRESS"


# ------------------------------------------------------------------------------------ 413


def test_a_body_larger_than_the_limit_answers_413_in_json_and_changes_nothing(client, cast, app):
    booking = booking_in(cast, Status.ASSIGNED)
    limit = app.config["MAX_CONTENT_LENGTH"]
    raw = json.dumps({"reason": "x" * (limit + 10)}).encode()
    with unchanged(booking.id):
        response = call(
            client, "POST", f"/api/bookings/{booking.id}/reject", cast.tokens["provider"], data=raw
        )
        assert_error(response, 413)
        create = call(
            client,
            "POST",
            "/api/bookings/",
            cast.tokens["owner"],
            data=json.dumps({"notes": "y" * (limit + 10)}).encode(),
        )
        assert_error(create, 413)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 1

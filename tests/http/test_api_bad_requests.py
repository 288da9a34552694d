"""Requests the API refuses for what they say, on every endpoint: malformed or invalid bodies and
headers (400), bookings and providers that do not exist (404), wrong methods (405), bodies over
the size limit (413), all in JSON.
Through the Flask test client, with real bearer tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from ops_portal.domain.lifecycle import Status
from tests.support.api import (
    API_ENDPOINTS,
    assert_error,
    unchanged,
)
from tests.support.builders import booking_in, count_bookings

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
def test_invalid_input_is_refused_with_400_saying_what_is_wrong(api, cast, path, kind, raw, named):
    booking = booking_in(cast, Status.ASSIGNED)
    with unchanged(booking.id):
        response = api.post(f"/api/bookings/{booking.id}/{path}", as_=kind, data=raw)
        assert named.lower() in assert_error(response, 400).lower()


def test_json_nested_too_deeply_is_refused_with_400_not_a_server_error(api, cast):
    booking = booking_in(cast, Status.ASSIGNED)
    with unchanged(booking.id):
        response = api.post(
            f"/api/bookings/{booking.id}/accept", as_="provider", data=b"[" * 60_000
        )
        assert_error(response, 400)


def test_assign_without_a_provider_id_is_refused_with_400(api, cast):
    booking = booking_in(cast, Status.PENDING)
    with unchanged(booking.id):
        response = api.post(f"/api/bookings/{booking.id}/assign", as_="admin", json={})
        assert "provider_id" in assert_error(response, 400)


@pytest.mark.parametrize("header", ['"abc"', "latest", '"-1"'])
def test_an_if_match_that_is_not_a_version_is_refused_with_400(api, cast, header):
    booking = booking_in(cast, Status.ASSIGNED)
    with unchanged(booking.id):
        response = api.post(
            f"/api/bookings/{booking.id}/accept", as_="provider", headers={"If-Match": header}
        )
        assert "If-Match" in assert_error(response, 400)


def test_a_version_and_an_if_match_that_disagree_are_refused_with_400(api, cast):
    booking = booking_in(cast, Status.ASSIGNED)
    with unchanged(booking.id):
        response = api.post(
            f"/api/bookings/{booking.id}/accept",
            as_="provider",
            json={"version": booking.version},
            headers={"If-Match": f'"{booking.version + 1}"'},
        )
        assert_error(response, 400)


MISSING_IDS = {"unknown": 999_999, "beyond-any-integer": 10**30, "zero": 0}


@pytest.mark.parametrize("which", MISSING_IDS, ids=list(MISSING_IDS))
def test_a_booking_that_does_not_exist_answers_404_on_every_booking_route(api, cast, which):
    booking_id = MISSING_IDS[which]
    for method, template in API_ENDPOINTS:
        if "{id}" not in template:
            continue
        body = None
        if method == "POST":
            body = {"reason": "x"}
            if "assign" in template:
                body["provider_id"] = cast.provider.user_id
        response = api.request(method, template.format(id=booking_id), as_="admin", json=body)
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
def test_a_negative_or_non_numeric_id_answers_404_in_json(api, cast, path):
    method = "POST" if path.endswith("cancel") else "GET"
    assert_error(api.request(method, path, as_="admin", json={} if method == "POST" else None), 404)


@pytest.mark.parametrize("which", MISSING_IDS, ids=list(MISSING_IDS))
def test_the_queue_of_a_provider_that_does_not_exist_answers_404(api, cast, which):
    response = api.get(f"/api/providers/{MISSING_IDS[which]}/bookings", as_="admin")
    assert_error(response, 404)


def test_a_customer_id_is_not_a_provider_queue(api, cast):
    response = api.get(f"/api/providers/{cast.owner.user_id}/bookings", as_="admin")
    assert_error(response, 404)


@pytest.mark.parametrize("path", ["assign", "force-assign"])
@pytest.mark.parametrize("who", ["unknown", "huge", "a-customer", "negative"])
def test_assigning_a_provider_that_does_not_exist_answers_404(api, cast, path, who):
    booking = booking_in(cast, Status.PENDING)
    provider_id = {
        "unknown": 999_999,
        "huge": 10**30,
        "a-customer": cast.other_customer.user_id,
        "negative": -4,
    }[who]
    with unchanged(booking.id):
        response = api.post(
            f"/api/bookings/{booking.id}/{path}",
            as_="admin",
            json={"provider_id": provider_id, "reason": "test"},
        )
        assert "provider" in assert_error(response, 404).lower()


def test_an_unknown_api_path_and_a_wrong_method_answer_in_json(api, cast):
    assert_error(api.get("/api/nothing-here", as_="admin"), 404)
    booking = booking_in(cast, Status.PENDING)
    response = api.get(f"/api/bookings/{booking.id}/cancel", as_="owner")
    assert_error(response, 405)
    assert "POST" in response.headers["Allow"]


def test_a_body_larger_than_the_limit_answers_413_in_json_and_changes_nothing(api, cast, app):
    booking = booking_in(cast, Status.ASSIGNED)
    limit = app.config["MAX_CONTENT_LENGTH"]
    raw = json.dumps({"reason": "x" * (limit + 10)}).encode()
    with unchanged(booking.id):
        response = api.post(f"/api/bookings/{booking.id}/reject", as_="provider", data=raw)
        assert_error(response, 413)
        create = api.post(
            "/api/bookings/", as_="owner", data=json.dumps({"notes": "y" * (limit + 10)}).encode()
        )
        assert_error(create, 413)
    assert count_bookings() == 1

"""Who may call the API: without valid credentials every endpoint answers 401 with a bearer
challenge; a token of the wrong actor, or body actor fields that contradict it, get 403 and
change nothing.
Through the Flask test client, with real bearer tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from ops_portal.domain.lifecycle import Status
from tests.support.api import (
    API_ENDPOINTS,
    assert_error,
    unchanged,
)
from tests.support.builders import booking_in, count_bookings

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
    api, cast, credentials
):
    booking = booking_in(cast, Status.ASSIGNED)
    headers = BAD_CREDENTIALS[credentials](cast.tokens["admin"])
    with unchanged(booking.id):
        for method, template in API_ENDPOINTS:
            path = template.format(id=booking.id, provider=cast.provider.user_id)
            response = api.request(
                method,
                path,
                json={"provider_id": cast.other_provider.user_id} if "assign" in path else None,
                headers=headers,
            )
            detail = assert_error(response, 401)
            assert "token" in detail.lower(), (method, path)
            assert response.headers["WWW-Authenticate"].startswith("Bearer"), (method, path)
    assert count_bookings() == 1


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
    api, cast, kind, method, template, body, sees
):
    booking = booking_in(cast, Status.ASSIGNED)
    path = template.format(id=booking.id, provider=cast.provider.user_id)
    if body and "provider_id" in body:
        body = {**body, "provider_id": cast.other_provider.user_id}
    with unchanged(booking.id):
        response = api.request(method, path, as_=kind, json=body)
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
    api, cast, kind, path, start, make_body
):
    booking = booking_in(cast, start)
    with unchanged(booking.id):
        response = api.post(f"/api/bookings/{booking.id}/{path}", as_=kind, json=make_body(cast))
        assert "credentials" in assert_error(response, 403)

"""The JSON API as the tests call it: `api.post(path, as_="owner", json=..., key=...)` sends the
request with that person's bearer token (and an Idempotency-Key), and the checks every API test
makes of an answer."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from datetime import datetime

import pytest
from flask.testing import FlaskClient

from ops_portal.domain.lifecycle import BOOKING_ACTIONS, Status
from tests.support.builders import booking_state
from tests.support.people import Cast

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
# Every route of the API, {id} a booking's and {provider} a provider's.
API_ENDPOINTS = [
    ("POST", "/api/bookings/"),
    ("GET", "/api/bookings/{id}"),
    ("GET", "/api/bookings/{id}/events"),
    *[("POST", f"/api/bookings/{{id}}/{action.value}") for action in BOOKING_ACTIONS],
    ("POST", "/api/bookings/{id}/cancel/admin"),
    ("GET", "/api/providers/{provider}/bookings"),
    ("GET", "/api/admin/providers"),
]
# A create request the idempotency tests repeat.
CREATE_BODY = {"service": "Leaking tap", "address": "1 Retry Road"}
# An event's keys as each audience is given them: customers read what happened and their own
# reasons; providers also statuses, who acted and their own assignment; dispatchers everything.
CUSTOMER_EVENT_KEYS = {"id", "booking_id", "summary", "reason", "created_at"}
PROVIDER_EVENT_KEYS = CUSTOMER_EVENT_KEYS | {"to_status", "by", "provider_id"}
EVENT_KEYS = PROVIDER_EVENT_KEYS | {
    "action",
    "from_status",
    "actor_role",
    "actor_id",
    "forced",
    "source",
}
EVENT_KEYS_FOR = {
    "owner": CUSTOMER_EVENT_KEYS,
    "other_customer": CUSTOMER_EVENT_KEYS,
    "provider": PROVIDER_EVENT_KEYS,
    "other_provider": PROVIDER_EVENT_KEYS,
    "admin": EVENT_KEYS,
    "system": EVENT_KEYS,
}


class ApiClient:
    """A Flask test client that speaks for the cast: `as_` names whose token to send."""

    def __init__(self, client: FlaskClient, cast: Cast):
        self.client = client
        self.cast = cast

    def request(
        self,
        method: str,
        path: str,
        *,
        as_: str | None = None,
        json=None,
        data: bytes | None = None,
        key: str | None = None,
        headers: dict | None = None,
    ):
        """One request; `json` is sent as JSON, `data` as raw bytes labelled JSON, `key` as the
        Idempotency-Key. Without `as_` (or with an Authorization in `headers`), no token."""
        headers = dict(headers or {})
        if as_ is not None:
            headers.setdefault("Authorization", f"Bearer {self.cast.tokens[as_]}")
        if key is not None:
            headers["Idempotency-Key"] = key
        kwargs = {}
        if json is not None:
            kwargs["json"] = json
        elif data is not None:
            kwargs["data"] = data
            kwargs["content_type"] = "application/json"
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.request("POST", path, **kwargs)


def new_key() -> str:
    """A fresh Idempotency-Key."""
    return str(uuid.uuid4())


@pytest.fixture
def api(client, cast) -> ApiClient:
    return ApiClient(client, cast)


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


def assert_booking_shape(data: dict, *, with_events: bool, as_: str = "admin") -> None:
    """The booking's shape as `as_` is given it (a forced assignment is dispatchers' business)."""
    assert set(data) >= BOOKING_KEYS
    assert ("assignment_forced" in data) == (EVENT_KEYS_FOR[as_] == EVENT_KEYS)
    assert isinstance(data["id"], int) and isinstance(data["version"], int)
    assert isinstance(data["customer_id"], int)
    assert data["provider_id"] is None or isinstance(data["provider_id"], int)
    assert data["status"] in set(Status)
    assert assert_aware_iso(data["updated_at"]) >= assert_aware_iso(data["created_at"])
    if with_events:
        assert data["events"], "a single booking carries its events"
        for event in data["events"]:
            assert set(event) == EVENT_KEYS_FOR[as_]
            assert_aware_iso(event["created_at"])
    else:
        assert "events" not in data


@contextmanager
def unchanged(*booking_ids: int):
    """The block must leave these bookings as they were (status, provider, version, events)."""
    before = [booking_state(b) for b in booking_ids]
    yield
    assert [booking_state(b) for b in booking_ids] == before

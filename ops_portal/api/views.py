"""JSON API routes: parse, call one service, serialize. Rules live in the services."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, g, jsonify, request, url_for

from ..domain.errors import NotAuthenticated, NotPermitted
from ..domain.lifecycle import BOOKING_ACTIONS, Action, Source
from ..extensions import db
from ..idempotent import idempotent
from ..services import accounts, bookings
from .inputs import (
    check_body_actor,
    expected_version,
    json_body,
    optional_datetime,
    optional_int,
    optional_text,
)
from .serializers import booking_json, event_json

api = Blueprint("api", __name__, url_prefix="/api")
health = Blueprint("health", __name__)

CREATE_FIELDS = {"customer_id", "customer_name", "service", "address", "window_start",
                 "window_end", "notes"}
ACTION_FIELDS = {"reason", "version", "provider_id"}
ACTION_NAMES = ",".join(f'"{a.value}"' for a in BOOKING_ACTIONS)


@api.before_request
def authenticate():
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    actor = accounts.actor_for_token(token.strip(), Source.API) if scheme.lower() == "bearer" else None
    if actor is None:
        raise NotAuthenticated("A valid bearer token is required (Authorization: Bearer <token>)")
    g.actor = actor


def _booking_response(booking, status: int = 200):
    response = jsonify(booking_json(booking, with_events=True))
    response.status_code = status
    response.headers["ETag"] = f'"{booking.version}"'
    return response


@api.post("/bookings/", strict_slashes=False)
@idempotent
def create_booking():
    """Create a booking for the calling customer."""
    body = json_body(CREATE_FIELDS)
    check_body_actor(body, g.actor)
    customer_id = optional_int(body, "customer_id")
    if customer_id is not None and customer_id != g.actor.user_id:
        raise NotPermitted("customer_id does not match your credentials")
    booking = bookings.create_booking(
        g.actor,
        service=optional_text(body, "service") or bookings.DEFAULT_SERVICE,
        address=optional_text(body, "address") or "",
        window_start=optional_datetime(body, "window_start"),
        window_end=optional_datetime(body, "window_end"),
        notes=optional_text(body, "notes") or "",
        customer_name=optional_text(body, "customer_name"),
    )
    response = _booking_response(booking, 201)
    response.headers["Location"] = url_for("api.get_booking", booking_id=booking.id)
    return response


@api.get("/bookings/<int:booking_id>")
def get_booking(booking_id: int):
    """One booking with its events."""
    return _booking_response(bookings.get_booking(g.actor, booking_id))


@api.get("/bookings/<int:booking_id>/events")
def get_booking_events(booking_id: int):
    """A booking's events, oldest first."""
    return jsonify([event_json(e) for e in bookings.booking_events(g.actor, booking_id)])


def _perform(booking_id: int, action: Action):
    body = json_body(ACTION_FIELDS)
    check_body_actor(body, g.actor)
    booking = bookings.perform_action(
        g.actor,
        booking_id,
        action,
        provider_id=optional_int(body, "provider_id"),
        reason=optional_text(body, "reason"),
        expected_version=expected_version(body),
    )
    return _booking_response(booking)


@api.post(f"/bookings/<int:booking_id>/<any({ACTION_NAMES}):action>")
@idempotent
def booking_action(booking_id: int, action: str):
    """Apply a lifecycle action (cancel, assign, accept, ...) to a booking."""
    return _perform(booking_id, Action(action))


@api.post("/bookings/<int:booking_id>/cancel/admin")
@idempotent
def admin_cancel(booking_id: int):
    """The seed's name for force-cancel."""
    return _perform(booking_id, Action.FORCE_CANCEL)


@api.get("/providers/<int:provider_id>/bookings")
def provider_bookings(provider_id: int):
    """A provider's ASSIGNED and IN_PROGRESS bookings."""
    queue = bookings.provider_queue(g.actor, provider_id)
    return jsonify([booking_json(b) for b in queue])


@api.get("/admin/providers")
def admin_providers():
    """Every provider with availability."""
    return jsonify(
        [
            {
                "id": p.id,
                "name": p.name,
                "active": p.active,
                "availability": p.availability,
                "busy_with": p.busy_with,
            }
            for p in bookings.providers_with_availability(g.actor)
        ]
    )


@health.get("/health")
def health_check():
    """200 when the database answers; a database fault becomes 503 in the error handler."""
    db.session.execute(sa.text("SELECT 1"))
    return jsonify({"status": "ok"})

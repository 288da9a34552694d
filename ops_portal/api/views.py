"""JSON API routes: parse, call one service, serialize. Rules live in the services.

The blueprint is flask-smorest's: the marshmallow schemas that parse bodies and dump answers are
also what the OpenAPI document at /api/openapi.json is generated from."""

from __future__ import annotations

from datetime import UTC, datetime, time

import marshmallow as ma
import sqlalchemy as sa
from flask import Blueprint, g, jsonify, request, url_for
from flask_smorest import Blueprint as ApiBlueprint

from ..domain.errors import NotAuthenticated, NotPermitted
from ..domain.lifecycle import (
    BOOKING_ACTIONS,
    LIFECYCLE,
    Action,
    Deadline,
    Relation,
    Source,
    Status,
)
from ..extensions import db
from ..http.idempotency import KEY_HEADER, REPLAYED_HEADER, idempotent
from ..models import utcnow
from ..services import accounts, bookings, dispatch, duty, metrics, providers
from ..services.idempotency import KEY_PATTERN
from ..web.clock import display_zone
from .errors import json_refusal, register_refusals
from .inputs import ApiArgumentsParser, check_body_actor, expected_version
from .schemas import (
    BookingSchema,
    BookingWithEventsSchema,
    CandidatesSchema,
    CreateBookingBody,
    DispatchMetricsQuery,
    DispatchMetricsSchema,
    DutyBody,
    ErrorSchema,
    EventSchema,
    ProviderSchema,
    SeenBooking,
    action_body,
)


class Api(ApiBlueprint):
    ARGUMENTS_PARSER = ApiArgumentsParser()


api = Api(
    "api",
    __name__,
    url_prefix="/api",
    description="Bookings, their events, providers, dispatch metrics.",
)
health = Blueprint("health", __name__)
register_refusals(api)
# A refusal is an answer too: stored with its Idempotency-Key and replayed like a success.
idempotent_api = idempotent(refusal=json_refusal)


# What each refusal means here; every operation documents the ones it can give.
REFUSALS = {
    400: "Malformed input, or the lifecycle does not allow this from the booking's status.",
    401: "No valid bearer token.",
    403: "Your role or relation to the booking does not allow this (or the provider is busy).",
    404: "No such booking or provider.",
    409: "The booking moved on since the version you sent, the same Idempotency-Key is still "
    "being processed, or the offer's deadline does not allow it now (an answer after it, an "
    "expiry before it).",
    413: "The body is larger than the server accepts.",
    422: "This Idempotency-Key was used for a different request, or (creating a booking) the "
    "window has already begun.",
    503: "The database is unavailable right now; nothing was changed. Retry after the delay.",
}
READ_REFUSALS = (401, 403, 404, 503)
WRITE_REFUSALS = (400, 401, 403, 404, 409, 413, 422, 503)
IDEMPOTENCY_KEY = {
    "in": "header",
    "name": KEY_HEADER,
    "required": False,
    "schema": {"type": "string", "pattern": KEY_PATTERN},
    "description": "Makes the request safe to retry: a repeat within 24 h gets the first "
    f"answer again, marked `{REPLAYED_HEADER}: true`.",
}
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "schema": {"type": "string", "pattern": r'^((W/)?"?[0-9]+"?|\*)$'},
    "description": "The booking version you acted on (its ETag); 409 if it moved on. "
    "`*` means any version.",
}
ETAG = {"ETag": {"description": "The booking's version.", "schema": {"type": "string"}}}
LOCATION = {"Location": {"description": "The new booking's URL.", "schema": {"type": "string"}}}


def refusals(*statuses: int):
    """Document the error answers an operation can give (all shaped like ErrorSchema)."""

    def decorate(view):
        for status in statuses:
            headers = {"Retry-After": {"schema": {"type": "string"}}} if status == 503 else None
            view = api.alt_response(
                status, schema=ErrorSchema, description=REFUSALS[status], headers=headers
            )(view)
        return view

    return decorate


@api.before_request
def authenticate():
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    actor = (
        accounts.actor_for_token(token.strip(), Source.API) if scheme.lower() == "bearer" else None
    )
    if actor is None:
        raise NotAuthenticated("A valid bearer token is required (Authorization: Bearer <token>)")
    g.actor = actor


def _with_etag(booking, status: int = 200, **headers):
    return SeenBooking(booking, g.actor), status, {"ETag": f'"{booking.version}"', **headers}


@api.post("/bookings/", strict_slashes=False)
@idempotent_api
@api.arguments(CreateBookingBody, required=False)
@api.response(201, BookingWithEventsSchema, headers={**ETAG, **LOCATION})
@refusals(*WRITE_REFUSALS)
@api.doc(parameters=[IDEMPOTENCY_KEY])
def create_booking(body: dict):
    """Create a booking for the calling customer

    Only customers create bookings, for themselves. The booking starts PENDING with one
    `create` event."""
    check_body_actor(body, g.actor)
    customer_id = body.get("customer_id")
    if customer_id is not None and customer_id != g.actor.user_id:
        raise NotPermitted("customer_id does not match your credentials")
    booking = bookings.create_booking(
        g.actor,
        service=body.get("service") or bookings.DEFAULT_SERVICE,
        address=body.get("address") or "",
        window_start=body.get("window_start"),
        window_end=body.get("window_end"),
        notes=body.get("notes") or "",
        customer_name=body.get("customer_name"),
        customer_phone=body.get("customer_phone") or "",
    )
    return _with_etag(booking, 201, Location=url_for("api.get_booking", booking_id=booking.id))


@api.get("/bookings/<int:booking_id>")
@api.response(200, BookingWithEventsSchema, headers=ETAG)
@refusals(*READ_REFUSALS)
def get_booking(booking_id: int):
    """One booking with its events

    Customers see their own bookings, providers those assigned to them, dispatchers all."""
    return _with_etag(bookings.get_booking(g.actor, booking_id))


@api.get("/bookings/<int:booking_id>/events")
@api.response(200, EventSchema(many=True))
@refusals(*READ_REFUSALS)
def get_booking_events(booking_id: int):
    """A booking's events, oldest first

    The append-only audit trail: one event per change, each from the status the previous
    one ended in."""
    return bookings.booking_events(g.actor, booking_id)


def _perform(body: dict, booking_id: int, action: Action):
    check_body_actor(body, g.actor)
    booking = bookings.perform_action(
        g.actor,
        booking_id,
        action,
        provider_id=body.get("provider_id"),
        reason=body.get("reason"),
        expected_version=expected_version(body),
    )
    return _with_etag(booking)


# What the offer's deadline (the booking's `offer_expires_at`) allows, by the rule's stance.
DEADLINE_WORDS = {
    None: "",
    Deadline.BEFORE: " Only before the offer's deadline (`offer_expires_at`): at or after it "
    "the answer is 409 `offer_expired`.",
    Deadline.AFTER: " Only once the offer's deadline (`offer_expires_at`) has passed: before it "
    "the answer is 409 `offer_still_open`.",
}


def _action_view(action: Action):
    """One operation per action, so each one's body and rules are documented on their own."""
    rule = LIFECYCLE[action]

    def view(body: dict, booking_id: int):
        return _perform(body, booking_id, action)

    who = " or ".join(sorted(role.value for role in rule.roles))
    who += {Relation.OWNER: " who owns the booking", Relation.ASSIGNED: " assigned to it"}.get(
        rule.relation, ""
    )
    sources = ", ".join(status.value for status in Status if status in rule.sources)
    view.__name__ = f"action_{action.name.lower()}"
    view.__doc__ = (
        f"{rule.label or action.value.capitalize()}: {sources} → {rule.target.value}\n\n"
        f"Who may: {who}. From any other status the answer is 400 and nothing changes; "
        "the change and its event are written together or not at all."
        + DEADLINE_WORDS[rule.offer_deadline]
    )
    documented = api.doc(parameters=[IDEMPOTENCY_KEY, IF_MATCH])(view)
    documented = refusals(*WRITE_REFUSALS)(documented)
    documented = api.response(200, BookingWithEventsSchema, headers=ETAG)(documented)
    documented = api.arguments(action_body(action), required=False)(documented)
    api.post(f"/bookings/<int:booking_id>/{action.value}")(idempotent_api(documented))


for _action in BOOKING_ACTIONS:
    _action_view(_action)


@api.post("/bookings/<int:booking_id>/cancel/admin")
@idempotent_api
@api.arguments(action_body(Action.FORCE_CANCEL), required=False)
@api.response(200, BookingWithEventsSchema, headers=ETAG)
@refusals(*WRITE_REFUSALS)
@api.doc(parameters=[IDEMPOTENCY_KEY, IF_MATCH])
def admin_cancel(body: dict, booking_id: int):
    """Force-cancel (its first API name)

    The same as `POST /api/bookings/{booking_id}/force-cancel`: dispatchers only."""
    return _perform(body, booking_id, Action.FORCE_CANCEL)


@api.get("/providers/<int:provider_id>/bookings")
@api.response(200, BookingSchema(many=True))
@refusals(*READ_REFUSALS)
def provider_bookings(provider_id: int):
    """A provider's ASSIGNED and IN_PROGRESS bookings

    The provider themself, or a dispatcher."""
    return [
        SeenBooking(booking, g.actor) for booking in bookings.provider_queue(g.actor, provider_id)
    ]


@api.get("/admin/providers")
@api.response(200, ProviderSchema(many=True))
@refusals(401, 403, 503)
def admin_providers():
    """Every provider with availability

    Dispatchers only. `busy_with` is the booking that keeps a BUSY provider busy."""
    return providers.providers_with_availability(g.actor)


@api.put("/providers/<int:provider_id>/duty")
@api.arguments(DutyBody)
@api.response(200, ProviderSchema)
@refusals(400, 401, 403, 404, 503)
def provider_duty(body: dict, provider_id: int):
    """Put a provider on or off duty

    The provider themself, or a dispatcher; recorded with who and why. Answers with the
    provider's availability."""
    duty.set_duty(g.actor, provider_id, body["on_duty"], reason=body.get("reason"))
    return providers.provider_availability(g.actor, provider_id)


@api.get("/bookings/<int:booking_id>/candidates")
@api.response(200, CandidatesSchema)
@refusals(*READ_REFUSALS)
def booking_candidates(booking_id: int):
    """Every provider for a booking, with why they can or cannot take it

    Dispatchers only. Eligible providers first (the longest idle first), then the rest by
    name; `reasons` in words, times in the server's display zone."""
    booking, found = dispatch.candidates(g.actor, booking_id)
    now, zone = utcnow(), display_zone()
    return {
        "booking_id": booking.id,
        "service": booking.service,
        "candidates": [
            {
                "provider_id": c.provider.id,
                "name": c.provider.name,
                "availability": c.provider.availability.value,
                "on_duty": c.provider.on_duty,
                "busy_with": c.provider.busy_with,
                "does_service": c.does_service,
                "eligible": c.eligible,
                "assignable": c.assignable,
                "turned_down": c.turned_down[0] if c.turned_down else None,
                "idle_since": c.idle_since,
                "off_duty_since": c.off_duty_since,
                "reasons": c.reasons(now, zone),
            }
            for c in found
        ],
    }


@api.get("/metrics/dispatch")
# Unknown arguments are refused, as unknown body fields are (webargs would drop them).
@api.arguments(DispatchMetricsQuery, location="query", unknown=ma.RAISE)
@api.response(200, DispatchMetricsSchema)
@refusals(400, 401, 403, 503)
def dispatch_metrics(query: dict):
    """Dispatch metrics from `since` until now

    Dispatchers and SYSTEM only. From the event log: bookings pending now and the oldest's
    wait, the median times to assign (from when the booking became open) and to accept (from
    the offer), how offers ended (accepted, rejected, lapsed), and the share of assignments
    SYSTEM made. 400 when `since` is not an ISO 8601 time or is after now."""
    now = utcnow()
    since = query["since"] or datetime.combine(now.date(), time(), tzinfo=UTC)
    return metrics.dispatch_metrics(g.actor, since=since, until=now)


@health.get("/health")
def health_check():
    """200 when the database answers; a database fault becomes 503 in the error handler."""
    db.session.execute(sa.text("SELECT 1"))
    return jsonify({"status": "ok"})

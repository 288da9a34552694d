"""The API's bodies as marshmallow schemas: they parse requests, dump answers, and are what
flask-smorest turns into the OpenAPI document, so the document cannot drift from the code."""

from __future__ import annotations

from functools import cache

import marshmallow as ma
from marshmallow import fields, post_dump, validate

from ..domain.access import EVENT_FIELDS, Audience, audience_of, events_seen_by
from ..domain.lifecycle import (
    BOOKING_ACTIONS,
    LIFECYCLE,
    Action,
    Actor,
    Availability,
    Role,
    Source,
    Status,
)
from ..domain.text import MAX_LENGTHS

STATUSES = [s.value for s in Status]
ACTIONS = ["create", *(a.value for a in BOOKING_ACTIONS)]
ROLES = [r.value for r in Role]
SOURCES = [s.value for s in Source]


def described(text: str, **extra) -> dict:
    return {"metadata": {"description": text, **extra}}


class StrictSchema(ma.Schema):
    """A request body: unknown fields are an error, not silently dropped."""

    class Meta:
        unknown = ma.RAISE


class ActorFields(StrictSchema):
    """Bodies of the first API version named their actor: accepted when it matches the token."""

    actor_role = fields.String(
        allow_none=True, **described("Optional; must match the token's role.", example="ADMIN")
    )
    actor_id = fields.Integer(
        strict=True, allow_none=True, **described("Optional; must match the token's user id.")
    )


class CreateBookingBody(ActorFields):
    customer_id = fields.Integer(
        strict=True, allow_none=True, **described("Optional; must be the calling customer's id.")
    )
    customer_name = fields.String(
        allow_none=True,
        validate=validate.Length(max=MAX_LENGTHS["customer_name"]),
        **described("Defaults to the account's name."),
    )
    service = fields.String(
        allow_none=True,
        validate=validate.Length(max=MAX_LENGTHS["service"]),
        **described("What needs doing.", example="Leaking tap"),
    )
    address = fields.String(
        allow_none=True,
        validate=validate.Length(max=MAX_LENGTHS["address"]),
        **described("Where.", example="1 High Street"),
    )
    window_start = fields.AwareDateTime(
        allow_none=True, **described("ISO 8601 with a time zone offset.")
    )
    window_end = fields.AwareDateTime(
        allow_none=True, **described("ISO 8601 with a time zone offset; after window_start.")
    )
    notes = fields.String(allow_none=True, validate=validate.Length(max=MAX_LENGTHS["notes"]))
    customer_phone = fields.String(
        allow_none=True,
        validate=validate.Length(max=MAX_LENGTHS["customer_phone"]),
        **described(
            "Optional; 6 to 20 digits, with spaces and + - ( ). Shown to the booking's "
            "provider and to dispatchers.",
            example="+44 20 7946 0018",
        ),
    )


VERSION_FIELD = fields.Integer(
    strict=True,
    allow_none=True,
    **described("The booking version you acted on (or send If-Match); 409 if it moved on."),
)


@cache
def action_body(action: Action) -> type[ma.Schema]:
    """The body one action accepts, derived from its rule: provider_id exists only where the
    action names a provider. Fields the rule requires are marked so in words, not in `required`:
    the service checks them after who-may-do-what, so a caller who may not act gets 403 whatever
    the body says."""
    rule = LIFECYCLE[action]
    body: dict[str, fields.Field] = {
        "reason": fields.String(
            allow_none=True,
            validate=validate.Length(max=MAX_LENGTHS["reason"]),
            **described(
                "Why; recorded in the event."
                + (" Required for this action." if rule.reason_required else "")
            ),
        ),
        "version": VERSION_FIELD,
    }
    if rule.takes_provider:
        body["provider_id"] = fields.Integer(
            strict=True, allow_none=True, **described("The provider to assign. Required.")
        )
    name = "".join(part.title() for part in action.value.split("-")) + "Body"
    return ActorFields.from_dict(body, name=name)


def for_audience(*audiences: Audience) -> str:
    return "Given to " + ", ".join(a.value for a in audiences) + " callers."


DISPATCH = for_audience(Audience.DISPATCH)


class EventSchema(ma.Schema):
    """An event as the caller may see it: which fields are given to whom is the domain's rule
    (domain.access.EVENT_FIELDS), the same one the pages' timelines follow."""

    id = fields.Integer(required=True)
    booking_id = fields.Integer(required=True)
    summary = fields.String(
        required=True, **described("What happened, in plain words.", example="Provider assigned")
    )
    action = fields.String(validate=validate.OneOf(ACTIONS), **described(DISPATCH))
    from_status = fields.String(
        allow_none=True, validate=validate.OneOf(STATUSES), **described(DISPATCH)
    )
    to_status = fields.String(
        validate=validate.OneOf(STATUSES),
        **described(for_audience(Audience.PROVIDER, Audience.DISPATCH)),
    )
    by = fields.String(
        **described(
            'Who acted: a name for dispatchers; for providers "you", "the customer", '
            '"another provider" or "dispatch". '
            + for_audience(Audience.PROVIDER, Audience.DISPATCH)
        )
    )
    actor_role = fields.String(validate=validate.OneOf(ROLES), **described(DISPATCH))
    actor_id = fields.Integer(allow_none=True, **described(DISPATCH))
    provider_id = fields.Integer(
        allow_none=True,
        **described(
            "The provider the event concerns; a provider is given only their own, else null. "
            + for_audience(Audience.PROVIDER, Audience.DISPATCH)
        ),
    )
    reason = fields.String(
        allow_none=True,
        **described("Why. Customers and providers are given only their own reasons, else null."),
    )
    forced = fields.Boolean(**described(DISPATCH))
    source = fields.String(validate=validate.OneOf(SOURCES), **described(DISPATCH))
    created_at = fields.DateTime(required=True)

    @post_dump(pass_original=True)
    def _only_what_the_audience_sees(self, data: dict, event, **kwargs) -> dict:
        # Anything but a SeenEvent is shown as to the audience that sees least.
        shown = EVENT_FIELDS[getattr(event, "audience", Audience.CUSTOMER)]
        return {key: value for key, value in data.items() if key in shown}


class BookingSchema(ma.Schema):
    id = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    customer_id = fields.Integer(required=True)
    customer_name = fields.String(required=True)
    provider_id = fields.Integer(allow_none=True)
    provider_name = fields.Method("_provider_name", allow_none=True, metadata={"type": "string"})
    assignment_forced = fields.Boolean(**described(DISPATCH))
    service = fields.String(required=True)
    address = fields.String(required=True)
    window_start = fields.DateTime(allow_none=True)
    window_end = fields.DateTime(allow_none=True)
    notes = fields.String(required=True)
    offer_expires_at = fields.DateTime(
        allow_none=True,
        **described(
            "While ASSIGNED: when the offer lapses unless its provider accepts or rejects it "
            "first. " + for_audience(Audience.PROVIDER, Audience.DISPATCH)
        ),
    )
    customer_phone = fields.String(required=True, **described("Empty when none was given."))
    version = fields.Integer(
        required=True, **described("Rises by one with every change; also the ETag.")
    )
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)

    def _provider_name(self, booking) -> str | None:
        return booking.provider.name if booking.provider else None

    @post_dump(pass_original=True)
    def _internal_flags_for_dispatch(self, data: dict, booking, **kwargs) -> dict:
        audience = getattr(booking, "audience", Audience.CUSTOMER)
        if audience is not Audience.DISPATCH:
            del data["assignment_forced"]
        if audience is Audience.CUSTOMER:
            data.pop("offer_expires_at", None)
        return data


class SeenBooking:
    """A booking as one caller may see it: its events through the domain's event rule, and
    its internal flags only for dispatchers. Every booking the API answers with is wrapped."""

    def __init__(self, booking, viewer: Actor):
        self.booking = booking
        self.viewer = viewer
        self.audience = audience_of(viewer)

    @property
    def events(self):
        return events_seen_by(self.viewer, self.booking.events)

    def __getattr__(self, name: str):
        return getattr(self.booking, name)


class BookingWithEventsSchema(BookingSchema):
    events = fields.List(fields.Nested(EventSchema), required=True, **described("Oldest first."))


class ProviderSchema(ma.Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    active = fields.Boolean(required=True)
    availability = fields.String(
        required=True, validate=validate.OneOf([a.value for a in Availability])
    )
    busy_with = fields.Integer(
        allow_none=True, **described("The booking that keeps the provider busy.")
    )
    on_duty = fields.Boolean(
        required=True, **described("Off duty: offered no work (a force-assign still may).")
    )


class DutyBody(StrictSchema):
    on_duty = fields.Boolean(required=True, **described("true: on duty; false: off duty."))
    reason = fields.String(
        allow_none=True,
        validate=validate.Length(max=MAX_LENGTHS["reason"]),
        **described("Why, kept in the provider's duty log.", example="Lunch break"),
    )


class CandidateSchema(ma.Schema):
    provider_id = fields.Integer(required=True)
    name = fields.String(required=True)
    availability = fields.String(
        required=True, validate=validate.OneOf([a.value for a in Availability])
    )
    on_duty = fields.Boolean(required=True)
    busy_with = fields.Integer(allow_none=True)
    does_service = fields.Boolean(
        required=True, **described("Does the booking's service (no services recorded: every one).")
    )
    eligible = fields.Boolean(
        required=True, **described("Can take it: assignable, and never turned this booking down.")
    )
    assignable = fields.Boolean(required=True, **described("An assign would accept them."))
    turned_down = fields.String(
        allow_none=True,
        **described("How they turned this booking down, if they did: reject or expire-offer."),
    )
    idle_since = fields.DateTime(
        required=True,
        **described("The latest of: their last job ended, they came on duty, they joined."),
    )
    off_duty_since = fields.DateTime(allow_none=True)
    reasons = fields.List(
        fields.String(),
        required=True,
        **described("Why, in words.", example=["available, idle 42 min"]),
    )


class CandidatesSchema(ma.Schema):
    booking_id = fields.Integer(required=True)
    service = fields.String(required=True)
    candidates = fields.List(fields.Nested(CandidateSchema), required=True)


class ErrorSchema(ma.Schema):
    error = fields.String(
        required=True,
        **described(
            "The kind of error, for machines: invalid_input, transition_not_allowed, "
            "not_permitted, provider_busy, not_found, stale_booking, …"
        ),
    )
    detail = fields.String(required=True, **described("What went wrong, in words."))
    field = fields.String(**described("The field of the request the refusal is about, if one."))
    booking = fields.Nested(
        BookingSchema, **described("The booking as it is now, when the refusal concerns one.")
    )


booking_with_events = BookingWithEventsSchema()
booking_only = BookingSchema()


class DispatchMetricsQuery(StrictSchema):
    since = fields.AwareDateTime(
        load_default=None,
        error_messages={
            "invalid": "since must be a date and time in ISO 8601, e.g. 2030-03-01T00:00:00Z",
            "invalid_awareness": "since needs a time zone offset, e.g. 2030-03-01T00:00:00Z",
        },
        **described(
            "ISO 8601 with an offset; the start of the span measured, which ends now. "
            "Defaults to the start of today (UTC).",
            example="2030-03-01T00:00:00Z",
        ),
    )


def _seconds(name: str) -> fields.Function:
    return fields.Function(
        lambda figures: (
            None if getattr(figures, name) is None else getattr(figures, name).total_seconds()
        ),
        allow_none=True,
        **described("Seconds; null when there was nothing to measure."),
    )


def _share(text: str) -> fields.Float:
    return fields.Float(allow_none=True, **described(f"{text}, 0 to 1; null when none ended."))


class DispatchMetricsSchema(ma.Schema):
    since = fields.AwareDateTime(required=True)
    until = fields.AwareDateTime(required=True, **described("The time of the request."))
    pending = fields.Integer(required=True, **described("Bookings PENDING now."))
    oldest_pending_since = fields.AwareDateTime(
        allow_none=True, **described("When the longest-waiting PENDING booking became PENDING.")
    )
    oldest_pending_wait_seconds = _seconds("oldest_pending_wait")
    assignments = fields.Integer(
        required=True, **described("assign and force-assign events from an open status.")
    )
    automatic_assignments = fields.Integer(required=True, **described("Of those, by SYSTEM."))
    automatic_share = fields.Float(allow_none=True, **described("0 to 1; null without any."))
    median_time_to_assign_seconds = _seconds("median_time_to_assign")
    accepted = fields.Integer(required=True)
    rejected = fields.Integer(required=True)
    lapsed = fields.Integer(required=True, **described("Offers ended by expire-offer."))
    offers_ended = fields.Integer(required=True, **described("accepted + rejected + lapsed."))
    acceptance_rate = _share("accepted / offers_ended")
    rejection_rate = _share("rejected / offers_ended")
    lapse_rate = _share("lapsed / offers_ended")
    median_time_to_accept_seconds = _seconds("median_time_to_accept")

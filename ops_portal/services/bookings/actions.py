"""The lifecycle actions: create a booking, and apply one action to it. Every action loads
and locks the booking, checks role → version → relation → status → reason → provider, applies
the change and appends exactly one event, in one transaction: all or nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ...domain.access import can_view
from ...domain.errors import (
    InvalidInput,
    NotPermitted,
    OfferExpired,
    OfferStillOpen,
    ProviderBusy,
    ProviderOffDuty,
    ServiceNotOffered,
    StaleBooking,
    TransitionNotAllowed,
)
from ...domain.lifecycle import (
    ACTIVE,
    LIFECYCLE,
    Action,
    Actor,
    Deadline,
    Rule,
    Status,
    is_related,
)
from ...domain.schedule import check_window_ahead
from ...domain.text import MAX_LENGTHS
from ...models import Booking, BookingEvent, Customer, Provider, utcnow
from .. import skills  # a module, not its names: skills reads bookings.rules
from ..transactions import locked_row, write_transaction
from .queries import get_booking, was_ever_assigned
from .rules import (
    DEFAULT_SERVICE,
    check_id,
    check_version,
    clean_phone,
    clean_text,
    time_window,
)


def create_booking(
    actor: Actor,
    *,
    service: str = DEFAULT_SERVICE,
    address: str = "",
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    notes: str = "",
    customer_name: str | None = None,
    customer_phone: str = "",
    now: datetime | None = None,
) -> Booking:
    """A customer requests a job for themselves: a PENDING booking and its first event. Its
    window, if it has one, must not have begun by `now` (the time of the request)."""
    rule = LIFECYCLE[Action.CREATE]
    if actor.role not in rule.roles:
        raise NotPermitted(f"A {actor.role} may not create bookings; customers create their own")
    service = clean_text(service, "service", max_len=MAX_LENGTHS["service"], required=True)
    address = clean_text(address, "address", max_len=MAX_LENGTHS["address"])
    notes = clean_text(notes, "notes", max_len=MAX_LENGTHS["notes"])
    customer_name = clean_text(customer_name, "customer_name", max_len=MAX_LENGTHS["customer_name"])
    customer_phone = clean_phone(customer_phone)
    window_start, window_end = time_window(window_start, window_end)
    now = now or utcnow()
    check_window_ahead(window_start, now)
    with write_transaction(keep_loaded=True) as session:
        customer = session.get(Customer, actor.user_id) if actor.user_id else None
        if customer is None:
            raise NotPermitted("This account has no customer profile")
        booking = Booking(
            status=rule.target,
            customer_id=customer.id,
            customer_name=customer_name or customer.name,
            service=service,
            address=address,
            window_start=window_start,
            window_end=window_end,
            notes=notes,
            customer_phone=customer_phone,
            created_at=now,
            updated_at=now,
        )
        session.add(booking)
        session.flush()
        event = _append_event(
            session, booking, Action.CREATE, None, actor, provider_id=None, at=now
        )
        session.flush()
        # The answer shows the new booking as it was written: no provider, one event.
        set_committed_value(booking, "provider", None)
        set_committed_value(booking, "events", [event])
    return booking


def perform_action(
    actor: Actor,
    booking_id: int,
    action: Action,
    *,
    provider_id: int | None = None,
    reason: str | None = None,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Booking:
    """Apply one lifecycle action to a booking on behalf of `actor`, at `now` (the time of the
    request): an assignment's offer lapses a set time after it, unless answered first."""
    rule = LIFECYCLE[action]
    if action is Action.CREATE:
        raise InvalidInput("use create_booking to create a booking")
    reason = clean_text(reason, "reason", max_len=MAX_LENGTHS["reason"]) or None
    if provider_id is not None and not rule.takes_provider:
        raise InvalidInput(f"provider_id is not accepted by {action}")
    if rule.takes_provider:
        if provider_id is None:
            raise InvalidInput(f"{action} needs a provider_id")
        check_id(provider_id, "provider_id")
    check_version(expected_version)
    check_id(booking_id, "booking_id")
    now = now or utcnow()

    with write_transaction(keep_loaded=True) as session:
        booking = locked_row(session, Booking, booking_id, "booking")
        _guard(booking, actor, action, expected_version)
        _guard_deadline(booking, rule, now)
        if rule.reason_required and not reason:
            raise InvalidInput(f"A reason is required to {action} a booking", booking=booking)
        providers = _lock_providers(session, booking, rule, provider_id)
        new_provider = providers[provider_id] if rule.takes_provider else None
        if new_provider is not None:
            _guard_provider(session, booking, new_provider, rule.checks_availability)

        from_status = booking.status
        previous_provider_id = booking.provider_id
        booking.status = rule.target
        if new_provider is not None:
            booking.provider = new_provider
            booking.assignment_forced = rule.forced
        elif rule.releases_provider:
            booking.provider = None
            booking.assignment_forced = False
        booking.offer_expires_at = _offer_deadline(now) if rule.target is Status.ASSIGNED else None
        relieved = providers.get(previous_provider_id)
        if relieved is not None and relieved is not new_provider:
            relieved.idle_since = now  # this booking was their work, and no longer is
        booking.updated_at = now
        involved = new_provider.id if new_provider is not None else previous_provider_id
        _append_event(
            session,
            booking,
            action,
            from_status,
            actor,
            provider_id=involved,
            reason=reason,
            at=booking.updated_at,
        )
        # The answer shows the booking as this action left it, timeline included.
        session.flush()
        _load_events(session, booking)
    return booking


def _lock_providers(
    session: Session, booking: Booking, rule: Rule, provider_id: int | None
) -> dict[int, Provider]:
    """The providers the action changes, locked in id order (a reassignment locks two, and two
    crossing ones must not wait on each other): the one it assigns, and the one whose work it
    may end (the booking's provider while it is active, unless it stays active with them)."""
    ids = {provider_id} if rule.takes_provider else set()
    holder = booking.provider_id if booking.status in ACTIVE else None
    if holder is not None and (rule.takes_provider or rule.target not in ACTIVE):
        ids.add(holder)
    return {pid: locked_row(session, Provider, pid, "provider") for pid in sorted(ids)}


def _load_events(session: Session, booking: Booking) -> None:
    """The booking's events, the one just appended among them, read in one statement."""
    events = session.scalars(
        sa.select(BookingEvent)
        .where(BookingEvent.booking_id == booking.id)
        .order_by(BookingEvent.id)
    ).all()
    set_committed_value(booking, "events", list(events))


def open_action(actor: Actor, booking_id: int, action: Action) -> Booking:
    """The booking whose form for `action` a person opens (to choose a provider, give a reason
    or confirm): refused now, by the same checks as the action itself, rather than after the
    form is filled in. Nothing is written."""
    if action is Action.CREATE:
        raise InvalidInput("use create_booking to create a booking")
    booking = get_booking(actor, booking_id)
    _guard(booking, actor, action, expected_version=None)
    return booking


def _guard(booking: Booking, actor: Actor, action: Action, expected_version) -> None:
    rule = LIFECYCLE[action]
    facts = booking.facts
    if actor.role not in rule.roles:
        who = " or ".join(sorted(r.lower() for r in rule.roles))
        raise NotPermitted(f"Only a {who} may {action} a booking", booking=_seen(booking, actor))
    if expected_version is not None and expected_version != booking.version:
        if _seen(booking, actor) is None and not was_ever_assigned(booking.id, actor):
            # A stranger learns nothing from a stale version: refused as the relation check is.
            raise _unrelated(booking, action)
        raise StaleBooking(
            f"This booking changed: now {booking.status} (version {booking.version}, "
            f"you acted on version {expected_version})",
            booking=_seen(booking, actor),
        )
    if not is_related(facts, actor, rule.relation):
        raise _unrelated(booking, action)
    if facts.status not in rule.sources:
        allowed = ", ".join(sorted(rule.sources))
        hint = f"; {rule.refusal_hint}" if rule.refusal_hint else ""
        raise TransitionNotAllowed(
            f"Cannot {action} booking {booking.id}: it is {booking.status}, and {action} "
            f"is allowed only from {allowed}{hint}",
            booking=booking,
        )


def _guard_deadline(booking: Booking, rule: Rule, now: datetime) -> None:
    """The offer's deadline is authoritative: an answer at or after it is too late, an expiry
    before it too early, so an answer and the expiry at the same instant cannot both pass."""
    deadline = booking.offer_expires_at
    if rule.offer_deadline is None:
        return
    if deadline is None:
        if rule.offer_deadline is Deadline.AFTER:  # an offer made before offers had deadlines
            raise TransitionNotAllowed(
                f"Booking {booking.id}'s offer has no deadline, so it never lapses",
                booking=booking,
            )
        return
    if rule.offer_deadline is Deadline.BEFORE and now >= deadline:
        raise OfferExpired(deadline, booking=booking)
    if rule.offer_deadline is Deadline.AFTER and now < deadline:
        raise OfferStillOpen(deadline, booking=booking)


def _offer_deadline(now: datetime) -> datetime:
    return now + timedelta(seconds=current_app.config["OFFER_TIMEOUT_SECONDS"])


def _guard_provider(session: Session, booking: Booking, provider: Provider, check: bool) -> None:
    if not provider.active:
        raise NotPermitted(f"Provider {provider.id} is not active", booking=booking)
    if provider.id == booking.provider_id and booking.status in ACTIVE:
        raise TransitionNotAllowed(
            f"Booking {booking.id} is already assigned to provider {provider.id}",
            booking=booking,
        )
    if not check:  # a forced assignment overrides the rest
        return
    if _active_booking_ids(session, provider.id):
        raise ProviderBusy("Provider is busy", booking=booking)
    if not provider.on_duty:
        raise ProviderOffDuty("Provider is off duty", booking=booking)
    if not skills.provider_does(session, provider.id, booking.service):
        raise ServiceNotOffered(f"{provider.name} doesn't do {booking.service}", booking=booking)


def _unrelated(booking: Booking, action: Action) -> NotPermitted:
    owner = LIFECYCLE[action].relation.value == "owner"
    whose = "the customer who owns" if owner else "the provider assigned to"
    return NotPermitted(f"Only {whose} booking {booking.id} may {action} it")


def _seen(booking: Booking, actor: Actor) -> Booking | None:
    """The booking for an error answer, only if the actor may see it."""
    return booking if can_view(booking.facts, actor) else None


def _active_booking_ids(session: Session, provider_id: int) -> list[int]:
    return list(
        session.scalars(
            sa.select(Booking.id)
            .where(Booking.provider_id == provider_id, Booking.status.in_(ACTIVE))
            .order_by(Booking.id)
        )
    )


def _append_event(
    session: Session,
    booking: Booking,
    action: Action,
    from_status: str | None,
    actor: Actor,
    *,
    provider_id: int | None,
    at: datetime,
    reason: str | None = None,
) -> BookingEvent:
    event = BookingEvent(
        booking_id=booking.id,
        action=action,
        from_status=from_status,
        to_status=booking.status,
        actor_role=actor.role,
        actor_id=actor.user_id,
        provider_id=provider_id,
        reason=reason,
        forced=LIFECYCLE[action].forced,
        source=actor.source,
        created_at=at,
    )
    session.add(event)
    return event

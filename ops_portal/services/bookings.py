"""Bookings: the lifecycle actions (SPEC §2), their audit events (§3) and the reads (§4).

Every action: load and lock the booking, check role → version → relation → status → reason →
provider availability, apply, append exactly one event, commit — all or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from ..domain.errors import (
    InvalidInput,
    NotFound,
    NotPermitted,
    ProviderBusy,
    StaleBooking,
    TransitionNotAllowed,
)
from ..domain.lifecycle import (
    ACTIVE,
    LIFECYCLE,
    Action,
    Actor,
    Availability,
    Role,
    Status,
    can_view,
    is_related,
)
from ..domain.text import MAX_LENGTHS, has_control_characters, normalize_newlines
from ..extensions import db
from ..models import Booking, BookingEvent, Customer, Provider, User, utcnow
from .transactions import write_transaction

MAX_ID = 2**31 - 1  # ids beyond a 32-bit integer cannot exist; answer 404, not a driver error
ADMIN_ROLES = (Role.ADMIN, Role.SYSTEM)
# The seed's API created bookings with no service named; they are general jobs.
DEFAULT_SERVICE = "General service"


# ---------------------------------------------------------------------------------- input rules


def _text(value, field: str, *, max_len: int, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text", field=field)
    value = normalize_newlines(value)
    # Checked before strip(): it would quietly drop some controls (\x1c-\x1f, \x85) at the ends.
    if has_control_characters(value):
        raise InvalidInput(f"{field} must not contain control characters", field=field)
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"{field} is required", field=field)
    if len(value) > max_len:
        raise InvalidInput(f"{field} must be at most {max_len} characters", field=field)
    return value


def _time_window(start: datetime | None, end: datetime | None):
    for name, value in (("window_start", start), ("window_end", end)):
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise InvalidInput(f"{name} must be a date and time with a time zone")
    if start and end and end <= start:
        raise InvalidInput("window_end must be after window_start")
    return start, end


def check_id(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be an integer")
    if not 1 <= value <= MAX_ID:
        raise NotFound(f"No {what.replace('_id', '').replace('_', ' ')} {value}")
    return value


# ---------------------------------------------------------------------------------- actions


def create_booking(
    actor: Actor,
    *,
    service: str = DEFAULT_SERVICE,
    address: str = "",
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    notes: str = "",
    customer_name: str | None = None,
) -> Booking:
    """A customer requests a job for themselves: a PENDING booking and its first event."""
    rule = LIFECYCLE[Action.CREATE]
    if actor.role not in rule.roles:
        raise NotPermitted(f"A {actor.role} may not create bookings; customers create their own")
    service = _text(service, "service", max_len=MAX_LENGTHS["service"], required=True)
    address = _text(address, "address", max_len=MAX_LENGTHS["address"])
    notes = _text(notes, "notes", max_len=MAX_LENGTHS["notes"])
    customer_name = _text(customer_name, "customer_name", max_len=MAX_LENGTHS["customer_name"])
    window_start, window_end = _time_window(window_start, window_end)
    with write_transaction() as session:
        customer = session.get(Customer, actor.user_id) if actor.user_id else None
        if customer is None:
            raise NotPermitted("This account has no customer profile")
        now = utcnow()
        booking = Booking(
            status=rule.target,
            customer_id=customer.id,
            customer_name=customer_name or customer.name,
            service=service,
            address=address,
            window_start=window_start,
            window_end=window_end,
            notes=notes,
            created_at=now,
            updated_at=now,
        )
        session.add(booking)
        session.flush()
        _append_event(session, booking, Action.CREATE, None, actor, provider_id=None, at=now)
    return booking


def perform_action(
    actor: Actor,
    booking_id: int,
    action: Action,
    *,
    provider_id: int | None = None,
    reason: str | None = None,
    expected_version: int | None = None,
) -> Booking:
    """Apply one lifecycle action to a booking on behalf of `actor`."""
    rule = LIFECYCLE[action]
    if action is Action.CREATE:
        raise InvalidInput("use create_booking to create a booking")
    reason = _text(reason, "reason", max_len=MAX_LENGTHS["reason"]) or None
    if provider_id is not None and not rule.takes_provider:
        raise InvalidInput(f"provider_id is not accepted by {action}")
    if rule.takes_provider:
        if provider_id is None:
            raise InvalidInput(f"{action} needs a provider_id")
        check_id(provider_id, "provider_id")
    if expected_version is not None and (
        isinstance(expected_version, bool) or not isinstance(expected_version, int)
    ):
        raise InvalidInput("version must be an integer")
    check_id(booking_id, "booking_id")

    with write_transaction(keep_loaded=True) as session:
        booking = _lock_booking(session, booking_id)
        _guard(booking, actor, action, expected_version, reason)
        new_provider = _lock_provider(session, provider_id) if rule.takes_provider else None
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
        booking.updated_at = utcnow()
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
        session.refresh(booking, ["events"])
    return booking


def _guard(booking: Booking, actor: Actor, action: Action, expected_version, reason) -> None:
    rule = LIFECYCLE[action]
    facts = booking.facts
    if actor.role not in rule.roles:
        who = " or ".join(sorted(r.lower() for r in rule.roles))
        raise NotPermitted(f"Only a {who} may {action} a booking", booking=_seen(booking, actor))
    if expected_version is not None and expected_version != booking.version:
        if _seen(booking, actor) is None and not _ever_assigned(booking, actor):
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
    if rule.reason_required and not reason:
        raise InvalidInput(f"A reason is required to {action} a booking", booking=booking)


def _guard_provider(session: Session, booking: Booking, provider: Provider, check: bool) -> None:
    if not provider.active:
        raise NotPermitted(f"Provider {provider.id} is not active", booking=booking)
    if provider.id == booking.provider_id and booking.status in ACTIVE:
        raise TransitionNotAllowed(
            f"Booking {booking.id} is already assigned to provider {provider.id}",
            booking=booking,
        )
    if check and _active_booking_ids(session, provider.id):
        raise ProviderBusy("Provider is busy", booking=booking)


def _unrelated(booking: Booking, action: Action) -> NotPermitted:
    owner = LIFECYCLE[action].relation.value == "owner"
    whose = "the customer who owns" if owner else "the provider assigned to"
    return NotPermitted(f"Only {whose} booking {booking.id} may {action} it")


def _ever_assigned(booking: Booking, actor: Actor) -> bool:
    """A provider once assigned to the booking (their job was taken away meanwhile)."""
    if actor.role is not Role.PROVIDER or actor.user_id is None:
        return False
    return bool(
        db.session.scalar(
            sa.select(
                sa.exists().where(
                    BookingEvent.booking_id == booking.id,
                    BookingEvent.provider_id == actor.user_id,
                )
            )
        )
    )


def _seen(booking: Booking, actor: Actor) -> Booking | None:
    """The booking for an error answer, only if the actor may see it."""
    return booking if can_view(booking.facts, actor) else None


def _lock_booking(session: Session, booking_id: int) -> Booking:
    booking = session.execute(
        sa.select(Booking).where(Booking.id == booking_id).with_for_update(of=Booking)
    ).scalar_one_or_none()
    if booking is None:
        raise NotFound(f"No booking {booking_id}")
    return booking


def _lock_provider(session: Session, provider_id: int) -> Provider:
    # Serializes assigns to one provider on PostgreSQL; the availability check follows the lock.
    provider = session.execute(
        sa.select(Provider).where(Provider.id == provider_id).with_for_update(of=Provider)
    ).scalar_one_or_none()
    if provider is None:
        raise NotFound(f"No provider {provider_id}")
    return provider


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


# ---------------------------------------------------------------------------------- reads


def get_booking(actor: Actor, booking_id: int) -> Booking:
    """One booking, if the actor may see it (SPEC §4)."""
    check_id(booking_id, "booking_id")
    booking = db.session.get(Booking, booking_id)
    if booking is None:
        raise NotFound(f"No booking {booking_id}")
    if not can_view(booking.facts, actor):
        raise NotPermitted(f"You may not see booking {booking_id}")
    return booking


def booking_events(actor: Actor, booking_id: int) -> list[BookingEvent]:
    """A booking's events, oldest first."""
    get_booking(actor, booking_id)
    return list(
        db.session.scalars(
            sa.select(BookingEvent)
            .where(BookingEvent.booking_id == booking_id)
            .order_by(BookingEvent.id)
        )
    )


def rejected_by(booking_id: int) -> list[int]:
    """Providers who rejected the booking, from its events (never stored twice)."""
    return list(
        db.session.scalars(
            sa.select(BookingEvent.provider_id)
            .where(
                BookingEvent.booking_id == booking_id,
                BookingEvent.action == Action.REJECT,
            )
            .order_by(BookingEvent.id)
        )
    )


def provider_queue(actor: Actor, provider_id: int) -> list[Booking]:
    """A provider's ASSIGNED and IN_PROGRESS bookings: the job in progress first, then oldest."""
    check_id(provider_id, "provider_id")
    if actor.role is Role.PROVIDER and actor.user_id != provider_id:
        raise NotPermitted("Providers see only their own work queue")
    if actor.role is Role.CUSTOMER:
        raise NotPermitted("Customers have no work queue")
    if db.session.get(Provider, provider_id) is None:
        raise NotFound(f"No provider {provider_id}")
    in_progress_first = sa.case((Booking.status == Status.IN_PROGRESS, 0), else_=1)
    return list(
        db.session.scalars(
            _with_timeline(sa.select(Booking))
            .where(Booking.provider_id == provider_id, Booking.status.in_(ACTIVE))
            .order_by(in_progress_first, Booking.created_at, Booking.id)
        )
    )


@dataclass(frozen=True)
class ProviderAvailability:
    id: int
    name: str
    active: bool
    availability: Availability
    busy_with: int | None  # the booking that makes them busy (oldest, if several)
    active_count: int


def providers_with_availability(actor: Actor) -> list[ProviderAvailability]:
    """Every provider with availability computed from bookings, in one query."""
    if actor.role not in ADMIN_ROLES:
        raise NotPermitted("Only dispatchers see the provider list")
    active = (
        sa.select(
            Booking.provider_id,
            sa.func.min(Booking.id).label("busy_with"),
            sa.func.count().label("active_count"),
        )
        .where(Booking.status.in_(ACTIVE))
        .group_by(Booking.provider_id)
        .subquery()
    )
    rows = db.session.execute(
        sa.select(
            Provider.id, User.name, Provider.active, active.c.busy_with, active.c.active_count
        )
        .join(User, User.id == Provider.id)
        .outerjoin(active, active.c.provider_id == Provider.id)
        .order_by(User.name, Provider.id)
    )
    return [
        ProviderAvailability(
            id=row.id,
            name=row.name,
            active=row.active,
            availability=(
                Availability.INACTIVE
                if not row.active
                else Availability.BUSY
                if row.busy_with is not None
                else Availability.AVAILABLE
            ),
            busy_with=row.busy_with,
            active_count=row.active_count or 0,
        )
        for row in rows
    ]


# ---------------------------------------------------------------------------------- page reads

# Lanes of the dispatch board: what needs doing, in the order a dispatcher works them.
BOARD_LANES: tuple[Status, ...] = (
    Status.PENDING,
    Status.REJECTED,
    Status.FAILED,
    Status.ASSIGNED,
    Status.IN_PROGRESS,
)
ARCHIVE_STATUSES: tuple[Status, ...] = (Status.COMPLETED, Status.CANCELLED)
MAX_PER_PAGE = 100


@dataclass(frozen=True)
class Page:
    items: list[Booking]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class Lane:
    status: Status
    count: int
    items: list[Booking]  # the oldest first, at most the lane's limit


def _with_timeline(query):
    # Cards show their timeline: load every listed booking's events in one more query.
    return query.options(selectinload(Booking.events))


def _page_number(page) -> int:
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise InvalidInput("page must be a positive whole number")
    return min(page, MAX_ID)


def _paginate(query, page: int, per_page: int) -> Page:
    page = _page_number(page)
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    total = db.session.scalar(
        sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
    )
    items = db.session.scalars(
        _with_timeline(query).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return Page(list(items), total, page, per_page)


def customer_bookings(actor: Actor, *, page: int = 1, per_page: int = 10) -> Page:
    """A customer's own bookings, newest first."""
    if actor.role is not Role.CUSTOMER:
        raise NotPermitted("Only customers have a list of their own bookings")
    query = (
        sa.select(Booking)
        .where(Booking.customer_id == actor.user_id)
        .order_by(Booking.created_at.desc(), Booking.id.desc())
    )
    return _paginate(query, page, per_page)


def lane_counts(actor: Actor) -> dict[Status, int]:
    """How many bookings wait in each lane of the dispatch board, in one query."""
    if actor.role not in ADMIN_ROLES:
        raise NotPermitted("Only dispatchers see the dispatch board")
    counts = dict(
        db.session.execute(
            sa.select(Booking.status, sa.func.count())
            .where(Booking.status.in_(BOARD_LANES))
            .group_by(Booking.status)
        ).all()
    )
    return {status: counts.get(status, 0) for status in BOARD_LANES}


def board_lanes(actor: Actor, *, per_lane: int = 25) -> list[Lane]:
    """The dispatch board: each open status's count and its oldest bookings, in two queries
    (plus one for their timelines) however many bookings there are."""
    counts = lane_counts(actor)
    position = (
        sa.func.row_number()
        .over(partition_by=Booking.status, order_by=(Booking.created_at, Booking.id))
        .label("position")
    )
    ranked = sa.select(Booking.id, position).where(Booking.status.in_(BOARD_LANES)).subquery()
    items = db.session.scalars(
        _with_timeline(sa.select(Booking))
        .join(ranked, ranked.c.id == Booking.id)
        .where(ranked.c.position <= per_lane)
        .order_by(Booking.created_at, Booking.id)
    ).all()
    by_status: dict[str, list[Booking]] = {status: [] for status in BOARD_LANES}
    for booking in items:
        by_status[booking.status].append(booking)
    return [Lane(status, counts[status], by_status[status]) for status in BOARD_LANES]


def archive(
    actor: Actor,
    *,
    search: str = "",
    status: str | None = None,
    page: int = 1,
    per_page: int = 20,
) -> Page:
    """Finished bookings (completed, cancelled), newest first, searchable by booking id or
    customer name or email."""
    if actor.role not in ADMIN_ROLES:
        raise NotPermitted("Only dispatchers see the archive")
    search = _text(search, "search", max_len=120)
    statuses = ARCHIVE_STATUSES
    if status:
        if status not in ARCHIVE_STATUSES:
            raise InvalidInput(
                f"status must be one of {', '.join(ARCHIVE_STATUSES)}, got {status!r}"
            )
        statuses = (Status(status),)
    query = sa.select(Booking).where(Booking.status.in_(statuses))
    if search:
        number = search.lstrip("#")
        # What a person types is text: % and _ match themselves, not any characters.
        needle = search.lower()
        matches = [
            sa.func.lower(Booking.customer_name).contains(needle, autoescape=True),
            Booking.customer_id.in_(
                sa.select(User.id).where(
                    sa.or_(
                        sa.func.lower(User.name).contains(needle, autoescape=True),
                        User.email.contains(needle, autoescape=True),
                    )
                )
            ),
        ]
        if number.isdigit() and int(number) <= MAX_ID:
            matches.append(Booking.id == int(number))
        query = query.where(sa.or_(*matches))
    query = query.order_by(Booking.updated_at.desc(), Booking.id.desc())
    return _paginate(query, page, per_page)


def booking_for_card(actor: Actor, booking_id: int) -> Booking:
    """A booking as the card of someone who just acted on it may show it: what they may see,
    or — for a provider it was taken from a moment ago — as it now is, so a refused action
    explains itself in the card instead of an error page."""
    check_id(booking_id, "booking_id")
    booking = db.session.get(Booking, booking_id)
    if booking is None:
        raise NotFound(f"No booking {booking_id}")
    if not can_view(booking.facts, actor) and not _ever_assigned(booking, actor):
        raise NotPermitted(f"You may not see booking {booking_id}")
    return booking

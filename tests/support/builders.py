"""Bookings for the tests, and what the database holds about them: `booking_in` (through the
service layer), `bulk_bookings` (thousands a second, straight into the tables), and readers that
always read fresh (each ends the session's earlier reads first: on SQLite (WAL) a read
transaction left open would keep seeing an old snapshot)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import sqlalchemy as sa

from ops_portal.domain.lifecycle import ACTIVE, LIFECYCLE, Action, Actor, Status
from ops_portal.extensions import db
from ops_portal.models import Booking, BookingEvent, IdempotencyKey
from tests.support.people import PERSON, Cast

# How to bring a fresh booking to each status, with `cast.provider` the one involved.
PATH_TO: dict[Status, list[Action]] = {
    Status.PENDING: [],
    Status.ASSIGNED: [Action.ASSIGN],
    Status.IN_PROGRESS: [Action.ASSIGN, Action.ACCEPT],
    Status.COMPLETED: [Action.ASSIGN, Action.ACCEPT, Action.COMPLETE],
    Status.REJECTED: [Action.ASSIGN, Action.REJECT],
    Status.CANCELLED: [Action.CANCEL],
    Status.FAILED: [Action.ASSIGN, Action.MARK_FAILED],
}
# Who takes each step of PATH_TO (the provider steps are the provider's involved).
ACTOR_FOR_STEP = {
    Action.ASSIGN: "admin",
    Action.FORCE_ASSIGN: "admin",
    Action.ACCEPT: "provider",
    Action.REJECT: "provider",
    Action.COMPLETE: "provider",
    Action.CANCEL: "owner",
    Action.MARK_FAILED: "admin",
}
ASSIGNING = (Action.ASSIGN, Action.FORCE_ASSIGN)


def booking_in(cast: Cast, status: Status, *, provider: Actor | None = None):
    """A booking of `cast.owner` brought to `status` through the service layer."""
    from ops_portal.services import bookings

    provider = provider or cast.provider
    booking = bookings.create_booking(cast.owner, service="Leaking tap", address="1 Test St")
    for action in PATH_TO[status]:
        kind = ACTOR_FOR_STEP[action]
        bookings.perform_action(
            provider if kind == "provider" else cast.by_name(kind),
            booking.id,
            action,
            provider_id=provider.user_id if action is Action.ASSIGN else None,
            reason="test reason" if action is Action.MARK_FAILED else None,
        )
    return bookings.get_booking(cast.admin, booking.id)


def bulk_bookings(
    cast: Cast,
    statuses: list[Status],
    *,
    customer: str = "owner",
    providers: tuple[str, ...] = ("provider",),
    customer_name: str | None = None,
    start: datetime | None = None,
) -> list[int]:
    """Insert bookings in the given statuses, each with the event chain of PATH_TO, in one
    transaction (thousands per second). Active ones are force-assigned, round robin over
    `providers`, so a provider may hold many; a second apart, oldest first."""
    start = start or datetime(2030, 1, 1, 9, tzinfo=UTC)
    customer_actor = cast.by_name(customer)
    name = customer_name or PERSON[customer].name
    plans = []
    for index, status in enumerate(statuses):
        provider = cast.by_name(providers[index % len(providers)])
        active = status in (Status.ASSIGNED, Status.IN_PROGRESS)
        steps = [
            Action.FORCE_ASSIGN if a is Action.ASSIGN and active else a for a in PATH_TO[status]
        ]
        created = start + timedelta(seconds=index)
        plans.append((status, provider, steps, created))
    rows = [
        {
            "status": status.value,
            "customer_id": customer_actor.user_id,
            "provider_id": provider.user_id
            if status in (Status.ASSIGNED, Status.IN_PROGRESS, Status.COMPLETED)
            else None,
            "assignment_forced": status in (Status.ASSIGNED, Status.IN_PROGRESS),
            "customer_name": name,
            "service": "Leaking tap",
            "address": f"{index} Bulk Street",
            "notes": "",
            "version": 1 + len(steps),
            "created_at": created,
            "updated_at": created + timedelta(milliseconds=len(steps)),
        }
        for index, (status, provider, steps, created) in enumerate(plans)
    ]
    db.session.rollback()
    with db.session.begin():
        connection = db.session.connection()  # Core executemany: batched multi-row INSERTs
        ids = list(
            connection.scalars(
                sa.insert(Booking.__table__).returning(
                    Booking.__table__.c.id, sort_by_parameter_order=True
                ),
                rows,
            )
        )
        events = []
        for booking_id, (status, provider, steps, created) in zip(ids, plans, strict=True):
            current = None
            involved = provider.user_id if steps and steps[0] in ASSIGNING else None
            for number, action in enumerate([Action.CREATE, *steps]):
                target = LIFECYCLE[action].target
                actor = (
                    customer_actor
                    if action is Action.CREATE
                    else cast.by_name(ACTOR_FOR_STEP[action])
                )
                events.append(
                    {
                        "booking_id": booking_id,
                        "action": action.value,
                        "from_status": current,
                        "to_status": target.value,
                        "actor_role": actor.role.value,
                        "actor_id": actor.user_id,
                        "provider_id": None if action is Action.CREATE else involved,
                        "reason": "bulk" if action is Action.MARK_FAILED else None,
                        "forced": LIFECYCLE[action].forced,
                        "source": "web",
                        "created_at": created + timedelta(milliseconds=number),
                    }
                )
                current = target.value
            assert current == status.value
        connection.execute(sa.insert(BookingEvent.__table__), events)
    return ids


# ------------------------------------------------------------------------------ reading back


def assert_event_chain(booking_id: int) -> None:
    """Events form an unbroken chain ending at the booking's status."""
    events = db.session.scalars(
        sa.select(BookingEvent)
        .where(BookingEvent.booking_id == booking_id)
        .order_by(BookingEvent.id)
    ).all()
    assert events, f"booking {booking_id} has no events"
    assert events[0].from_status is None and events[0].action == "create"
    for previous, event in pairwise(events):
        assert event.from_status == previous.to_status, f"chain broken at event {event.id}"
    status = db.session.scalar(sa.select(Booking.status).where(Booking.id == booking_id))
    assert events[-1].to_status == status


def read_booking(booking_id: int, *columns) -> tuple:
    """The booking's `columns`, then the ids of its events, oldest first; read fresh."""
    db.session.rollback()
    row = db.session.execute(sa.select(*columns).where(Booking.id == booking_id)).one()
    event_ids = tuple(
        db.session.scalars(
            sa.select(BookingEvent.id)
            .where(BookingEvent.booking_id == booking_id)
            .order_by(BookingEvent.id)
        )
    )
    db.session.rollback()
    return (*row, event_ids)


def booking_state(booking_id: int) -> tuple:
    """What a refused request must leave alone: status first, then provider, forced flag,
    version, updated_at, and the booking's event ids."""
    return read_booking(
        booking_id,
        Booking.status,
        Booking.provider_id,
        Booking.assignment_forced,
        Booking.version,
        Booking.updated_at,
    )


def snapshot(booking_id: int) -> tuple:
    """(status, version, provider_id, number of events)."""
    *row, event_ids = read_booking(booking_id, Booking.status, Booking.version, Booking.provider_id)
    return (*row, len(event_ids))


def count_rows(model, *where) -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def count_bookings() -> int:
    return count_rows(Booking)


def event_actions(booking_id: int) -> list[str]:
    """The actions of the booking's events, oldest first."""
    return event_values(booking_id, BookingEvent.action)


def event_values(booking_id: int, column) -> list:
    """One column of the booking's events (BookingEvent.actor_id, ...), oldest first."""
    db.session.rollback()
    return list(
        db.session.scalars(
            sa.select(column).where(BookingEvent.booking_id == booking_id).order_by(BookingEvent.id)
        )
    )


def double_booked_providers() -> list[tuple[int, int]]:
    """(provider, active bookings) for each provider who holds more than one active booking
    that was not force-assigned to them: none, whatever happened."""
    db.session.rollback()
    return [
        tuple(row)
        for row in db.session.execute(
            sa.select(Booking.provider_id, sa.func.count())
            .where(Booking.status.in_(ACTIVE), Booking.assignment_forced.is_(False))
            .group_by(Booking.provider_id)
            .having(sa.func.count() > 1)
        )
    ]


def key_rows() -> list[IdempotencyKey]:
    """Every idempotency key's row, oldest first, detached from the session."""
    db.session.rollback()
    rows = list(db.session.scalars(sa.select(IdempotencyKey).order_by(IdempotencyKey.id)))
    db.session.expunge_all()
    return rows

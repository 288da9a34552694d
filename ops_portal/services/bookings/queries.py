"""Reads of bookings: one booking, its events, a provider's queue, a customer's list, the
dispatch board and the archive. Each asks the read rules (domain.access) first, and none makes
a query per row."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from ...domain.access import READ_RULES, Read, can_view, require_read
from ...domain.errors import InvalidInput, NotFound, NotPermitted
from ...domain.lifecycle import ACTIVE, Actor, Role, Status
from ...domain.numbers import LARGEST_ID
from ...extensions import db
from ...models import Booking, BookingEvent, Provider
from ..search import booking_matches
from .rules import check_id, clean_text

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


# ---------------------------------------------------------------------------------- one booking


def get_booking(actor: Actor, booking_id: int) -> Booking:
    """One booking, if the actor may see it."""
    booking = _load(booking_id)
    require_read(actor, Read.BOOKING, booking.facts)
    return booking


def booking_for_card(actor: Actor, booking_id: int) -> Booking:
    """A booking as the card of someone who just acted on it may show it: what they may see,
    or — for a provider it was taken from a moment ago — as it now is, so a refused action
    explains itself in the card instead of an error page."""
    booking = _load(booking_id)
    if not can_view(booking.facts, actor) and not was_ever_assigned(booking.id, actor):
        raise NotPermitted(READ_RULES[Read.BOOKING].refusal)
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


def was_ever_assigned(booking_id: int, actor: Actor) -> bool:
    """The actor is a provider once assigned to the booking (their job was taken away since)."""
    if actor.role is not Role.PROVIDER or actor.user_id is None:
        return False
    return bool(
        db.session.scalar(
            sa.select(
                sa.exists().where(
                    BookingEvent.booking_id == booking_id,
                    BookingEvent.provider_id == actor.user_id,
                )
            )
        )
    )


def _load(booking_id: int) -> Booking:
    check_id(booking_id, "booking_id")
    booking = db.session.get(Booking, booking_id)
    if booking is None:
        raise NotFound(f"No booking {booking_id}")
    return booking


# ---------------------------------------------------------------------------------- lists


def provider_queue(actor: Actor, provider_id: int) -> list[Booking]:
    """A provider's ASSIGNED and IN_PROGRESS bookings: the job in progress first, then oldest."""
    check_id(provider_id, "provider_id")
    require_read(actor, Read.WORK_QUEUE, provider_id)
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


def customer_bookings(actor: Actor, *, page: int = 1, per_page: int = 10) -> Page:
    """A customer's own bookings, newest first."""
    require_read(actor, Read.OWN_BOOKINGS)
    query = (
        sa.select(Booking)
        .where(Booking.customer_id == actor.user_id)
        .order_by(Booking.created_at.desc(), Booking.id.desc())
    )
    return _paginate(query, page, per_page)


def lane_counts(actor: Actor) -> dict[Status, int]:
    """How many bookings wait in each lane of the dispatch board, in one query."""
    require_read(actor, Read.DISPATCH_BOARD)
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
    require_read(actor, Read.ARCHIVE)
    search = clean_text(search, "search", max_len=120)
    statuses = ARCHIVE_STATUSES
    if status:
        if status not in ARCHIVE_STATUSES:
            raise InvalidInput(
                f"status must be one of {', '.join(ARCHIVE_STATUSES)}, got {status!r}"
            )
        statuses = (Status(status),)
    query = sa.select(Booking).where(Booking.status.in_(statuses))
    if search:
        query = query.where(booking_matches(search))
    query = query.order_by(Booking.updated_at.desc(), Booking.id.desc())
    return _paginate(query, page, per_page)


def _with_timeline(query):
    # Cards show their timeline: load every listed booking's events in one more query.
    return query.options(selectinload(Booking.events))


def _page_number(page) -> int:
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise InvalidInput("page must be a positive whole number")
    return min(page, LARGEST_ID)


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

"""Reads of bookings: one booking, its events, a provider's queue, a customer's list, the
dispatch board and the search of every booking. Each asks the read rules (domain.access) first,
and none makes a query per row."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from ...domain.access import (
    READ_RULES,
    Read,
    SeenEvent,
    can_view,
    events_seen_by,
    may_read,
    require_read,
)
from ...domain.errors import InvalidInput, NotFound, NotPermitted
from ...domain.lifecycle import ACTIVE, STATUS_WORDS, Actor, Role, Status
from ...domain.schedule import LATE_AFTER
from ...extensions import db
from ...models import Booking, BookingEvent, Provider
from ..search import booking_matches, matching_ids
from . import paging
from .paging import (
    FROM_THE_START,
    Cursor,
    Order,
    Window,
    capped_count,
    load_in_order,
    read_window,
)
from .rules import check_id, clean_text

# Lanes of the dispatch board: what needs doing, in the order a dispatcher works them.
BOARD_LANES: tuple[Status, ...] = (
    Status.PENDING,
    Status.REJECTED,
    Status.FAILED,
    Status.ASSIGNED,
    Status.IN_PROGRESS,
)
OPEN_LANES = tuple(status for status in BOARD_LANES if status is not Status.FAILED)
# A failed booking waits on the board this long for a dispatcher; then it leaves for the archive.
FAILED_ON_BOARD = timedelta(days=7)
# Cards a lane shows on the board; the lane's own page lists all of them.
PER_LANE = 12
# The soonest window first; bookings with no window ("any time") after those with one.
LANE_ORDER = Order((Booking.window_start, Booking.id), descending=False, nulls_last=True)
# Statuses whose cards tell dispatchers why: the reason given when the booking was last put in
# one of them (a provider's rejection, a mark-failed).
EXPLAINED_STATUSES = frozenset({Status.REJECTED, Status.FAILED})
NEWEST_FIRST = Order((Booking.created_at, Booking.id), descending=True)
LATEST_CHANGE_FIRST = Order((Booking.updated_at, Booking.id), descending=True)


@dataclass(frozen=True)
class Lane:
    status: Status
    count: int
    items: list[Booking]  # the soonest window first, at most the lane's limit


# ---------------------------------------------------------------------------------- one booking


def get_booking(actor: Actor, booking_id: int) -> Booking:
    """One booking, if the actor may see it."""
    booking = _load(booking_id)
    if not can_view(booking.facts, actor):
        raise NotPermitted(READ_RULES[Read.BOOKING].refusal)
    return booking


def booking_for_card(actor: Actor, booking_id: int) -> Booking:
    """A booking as the card of someone who just acted on it may show it: what they may see,
    or — for a provider it was taken from a moment ago — as it now is, so a refused action
    explains itself in the card instead of an error page."""
    booking = _load(booking_id)
    if not can_view(booking.facts, actor) and not was_ever_assigned(booking.id, actor):
        raise NotPermitted(READ_RULES[Read.BOOKING].refusal)
    return booking


def booking_events(actor: Actor, booking_id: int) -> list[SeenEvent]:
    """A booking's events, oldest first, as the actor may see them (domain.access.see_event)."""
    get_booking(actor, booking_id)
    return events_seen_by(
        actor,
        db.session.scalars(
            sa.select(BookingEvent)
            .where(BookingEvent.booking_id == booking_id)
            .order_by(BookingEvent.id)
        ),
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


def late(now: datetime):
    """Bookings late at `now` (domain.schedule.is_late), as SQL."""
    return sa.or_(
        *(
            sa.and_(Booking.status == status, getattr(Booking, edge) <= now)
            for status, edge in LATE_AFTER.items()
        )
    )


def _soonest_window_first() -> list:
    """The soonest window first, bookings without one ("any time") last."""
    return [sa.case((Booking.window_start.is_(None), 1), else_=0), Booking.window_start, Booking.id]


def provider_queue(actor: Actor, provider_id: int) -> list[Booking]:
    """A provider's ASSIGNED and IN_PROGRESS bookings: the job in progress first, then the
    soonest window."""
    check_id(provider_id, "provider_id")
    require_read(actor, Read.WORK_QUEUE, provider_id)
    if db.session.get(Provider, provider_id) is None:
        raise NotFound(f"No provider {provider_id}")
    in_progress_first = sa.case((Booking.status == Status.IN_PROGRESS, 0), else_=1)
    return list(
        db.session.scalars(
            sa.select(Booking)
            .where(Booking.provider_id == provider_id, Booking.status.in_(ACTIVE))
            .order_by(in_progress_first, *_soonest_window_first())
        )
    )


def provider_history(
    actor: Actor, provider_id: int, *, cursor: Cursor = FROM_THE_START, per_page: int = 20
) -> Window:
    """The jobs a provider completed, the latest finished first, a page at a time. A completed
    booking changes no more, so its last change is when it was finished."""
    check_id(provider_id, "provider_id")
    require_read(actor, Read.FINISHED_JOBS, provider_id)
    query = sa.select(Booking.id).where(
        Booking.status == Status.COMPLETED, Booking.provider_id == provider_id
    )
    return read_window(query, LATEST_CHANGE_FIRST, cursor, per_page)


def customer_bookings(
    actor: Actor, *, cursor: Cursor = FROM_THE_START, per_page: int = 10
) -> Window:
    """A customer's own bookings, newest first, a page at a time."""
    require_read(actor, Read.OWN_BOOKINGS)
    query = sa.select(Booking.id).where(Booking.customer_id == actor.user_id)
    return read_window(query, NEWEST_FIRST, cursor, per_page)


@dataclass(frozen=True)
class BoardFilter:
    """What a dispatcher narrowed the board to: a search (services.search: number, customer,
    email, service, address, provider), one service, and late bookings only. Empty: the whole
    board."""

    search: str = ""
    service: str = ""
    late_only: bool = False

    def __post_init__(self):
        object.__setattr__(self, "search", clean_text(self.search, "q", max_len=120))
        object.__setattr__(self, "service", clean_text(self.service, "service", max_len=80))

    def __bool__(self) -> bool:
        return bool(self.search or self.service or self.late_only)

    def args(self) -> dict[str, str]:
        """The filter as a query string's arguments (?q=…&service=…&late=1)."""
        if not self:
            return {}
        return {
            "q": self.search,
            "service": self.service,
            **({"late": "1"} if self.late_only else {}),
        }

    def clauses(self, now: datetime) -> list:
        clauses = []
        if self.search:
            clauses.append(booking_matches(self.search))
        if self.service:
            clauses.append(Booking.service == self.service)
        if self.late_only:
            clauses.append(late(now))
        return clauses


WHOLE_BOARD = BoardFilter()


def _on_board(now: datetime, narrowed: BoardFilter):
    """Bookings the board shows: open ones, and failed ones until they are FAILED_ON_BOARD old
    (older ones are in the archive, and search finds them); those the filter lets through."""
    return sa.and_(
        sa.or_(
            Booking.status.in_(OPEN_LANES),
            sa.and_(Booking.status == Status.FAILED, Booking.updated_at >= now - FAILED_ON_BOARD),
        ),
        *narrowed.clauses(now),
    )


def lane_counts(
    actor: Actor, *, now: datetime, narrowed: BoardFilter = WHOLE_BOARD
) -> dict[Status, int]:
    """How many bookings wait in each lane of the dispatch board, in one query."""
    require_read(actor, Read.DISPATCH_BOARD)
    counts = dict(
        db.session.execute(
            sa.select(Booking.status, sa.func.count())
            .where(_on_board(now, narrowed))
            .group_by(Booking.status)
        ).all()
    )
    return {status: counts.get(status, 0) for status in BOARD_LANES}


def board_lanes(
    actor: Actor, *, now: datetime, narrowed: BoardFilter = WHOLE_BOARD, per_lane: int = PER_LANE
) -> list[Lane]:
    """The dispatch board: each lane's count and its bookings with the soonest windows, in two
    queries however many bookings there are (the bookings on the board are found once, for
    both)."""
    require_read(actor, Read.DISPATCH_BOARD)
    in_lane = {"partition_by": Booking.status}
    position = sa.func.row_number().over(**in_lane, order_by=_soonest_window_first())
    ranked = (
        sa.select(
            Booking.id,
            Booking.status,
            position.label("position"),
            sa.func.count().over(**in_lane).label("count"),
        )
        .where(_on_board(now, narrowed))
        .subquery()
    )
    rows = db.session.execute(
        sa.select(ranked.c.id, ranked.c.status, ranked.c.count).where(ranked.c.position <= per_lane)
    ).all()
    counts = {status: 0 for status in BOARD_LANES}
    counts.update({row.status: row.count for row in rows})
    by_status: dict[Status, list[Booking]] = {status: [] for status in BOARD_LANES}
    loaded = load_in_order([row.id for row in rows])
    for booking in sorted(loaded, key=_by_window):
        by_status[booking.status].append(booking)
    return [Lane(status, counts[status], by_status[status]) for status in BOARD_LANES]


def _by_window(booking: Booking) -> tuple:
    """A booking's place in a lane: _soonest_window_first, in Python."""
    start = booking.window_start
    return (start is None, start or 0, booking.id)


def lane(
    actor: Actor,
    status: Status,
    *,
    now: datetime,
    narrowed: BoardFilter = WHOLE_BOARD,
    cursor: Cursor = FROM_THE_START,
    per_page: int = 50,
) -> Window:
    """Every booking of one lane of the board, the soonest window first, a page at a time."""
    require_read(actor, Read.DISPATCH_BOARD)
    if status not in BOARD_LANES:
        raise NotFound(f"No lane {status}")
    query = sa.select(Booking.id).where(Booking.status == status, _on_board(now, narrowed))
    return read_window(query, LANE_ORDER, cursor, per_page)


def find_bookings(
    actor: Actor,
    *,
    search: str = "",
    status: str | None = None,
    cursor: Cursor = FROM_THE_START,
    per_page: int = 20,
) -> Window:
    """Every booking, whatever its status unless `status` names one, the latest change first,
    searchable by number and by any word of the customer, the service, the address or the
    provider (services.search)."""
    require_read(actor, Read.EVERY_BOOKING)
    search = clean_text(search, "search", max_len=120)
    filters = [Booking.status == status_named(status)] if status else []
    if not search:
        return read_window(
            sa.select(Booking.id).where(*filters), LATEST_CHANGE_FIRST, cursor, per_page
        )
    # Counted first: how many match decides how the database had best read a page of them.
    counted = capped_count(matching_ids(search, *filters), paging.SEARCH_COUNT_CAP)
    page_query = matching_ids(search, *filters, in_order_of=counted[0])
    return read_window(page_query, LATEST_CHANGE_FIRST, cursor, per_page, counted=counted)


def every_found_booking(
    actor: Actor, *, search: str = "", status: str | None = None, batch: int = 500
) -> Iterator[Booking]:
    """Every booking find_bookings finds, in its order (the latest change first), read
    `batch` at a time with their providers: for an export, which streams as it reads."""
    require_read(actor, Read.EVERY_BOOKING)
    search = clean_text(search, "search", max_len=120)
    filters = [Booking.status == status_named(status)] if status else []
    found = matching_ids(search, *filters) if search else sa.select(Booking.id).where(*filters)
    yield from db.session.scalars(
        sa.select(Booking)
        .where(Booking.id.in_(found))
        .order_by(Booking.updated_at.desc(), Booking.id.desc())
        .execution_options(yield_per=batch)
    )


def status_named(name: str) -> Status:
    """The status a filter names ("FAILED", "failed"), or a sentence listing those there are."""
    try:
        return Status(name.strip().upper())
    except ValueError:
        choices = [STATUS_WORDS[s].lower() for s in Status]
        raise InvalidInput(
            f"There is no status “{name[:40]}”; choose one of any status, "
            f"{', '.join(choices[:-1])} or {choices[-1]}.",
            field="status",
        ) from None


# ---------------------------------------------------------------------------------- reasons


@dataclass(frozen=True)
class Explanation:
    """Why a rejected or failed booking is so: the reason given (None when none was), and who
    put it there. A booking the SYSTEM dispatcher failed is one automation gave up on: it needs
    a dispatcher."""

    reason: str | None
    by: Role

    @property
    def needs_a_dispatcher(self) -> bool:
        return self.by is Role.SYSTEM


def latest_reasons(actor: Actor, shown: list[Booking]) -> dict[int, Explanation | None]:
    """Why each rejected or failed booking of `shown` is where it is, for a dispatcher: the
    event that last brought it into its status, in one query for them all. Other bookings, and
    other people, get None without a query."""
    reasons: dict[int, Explanation | None] = {booking.id: None for booking in shown}
    explained = [b.id for b in shown if b.status in EXPLAINED_STATUSES]
    if not explained or not may_read(actor, Read.DISPATCH_BOARD):
        return reasons
    latest = (
        sa.select(sa.func.max(BookingEvent.id))
        .where(
            BookingEvent.booking_id.in_(explained),
            BookingEvent.to_status.in_(EXPLAINED_STATUSES),
        )
        .group_by(BookingEvent.booking_id)
    )
    rows = db.session.execute(
        sa.select(BookingEvent.booking_id, BookingEvent.reason, BookingEvent.actor_role).where(
            BookingEvent.id.in_(latest)
        )
    )
    reasons.update({row.booking_id: Explanation(row.reason, row.actor_role) for row in rows})
    return reasons

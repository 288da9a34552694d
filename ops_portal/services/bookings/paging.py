"""Lists of bookings read a page at a time by position (keyset), never by OFFSET: a page
starts after (or ends before) the booking named in the URL, so the last page of 200,000 costs
what the first does. Counts stop at a cap: past it a list says "10,000+" instead of counting
every row.

Ids are selected first, in the list's order and with its limit, through an index on the
order's columns; the bookings and the people they show are loaded for those ids only."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from ...domain.errors import InvalidInput
from ...extensions import db
from ...models import Booking

COUNT_CAP = 10_000
# A search counts its matches no further: each one it counts is looked up in the text index.
# The count also tells a search how to read a page (services.search.WALK_FROM, which is no
# greater).
SEARCH_COUNT_CAP = 1_000
MAX_PER_PAGE = 100


@dataclass(frozen=True)
class Order:
    """The order of a list: its columns (the last one Booking.id, so positions are unique),
    all ascending or all descending."""

    columns: tuple[sa.ColumnElement, ...]
    descending: bool
    # The first column may be NULL (ascending only): rows without it come after every row with
    # it. Each part is read as a range of the index on the columns (NULL never compares, so
    # one keyset over both could not be), and the page is the parts read in turn.
    nulls_last: bool = False

    def parts(self) -> list[tuple[sa.ColumnElement, Order]]:
        """The runs of the list, in its order: which rows each holds, and its own order."""
        if not self.nulls_last:
            return [(sa.true(), self)]
        lead, rest = self.columns[0], self.columns[1:]
        return [
            (lead.is_not(None), Order(self.columns, self.descending)),
            (lead.is_(None), Order(rest, self.descending)),
        ]

    def part_of(self, position: tuple) -> tuple[int, tuple]:
        """Which run a position is in, and where within it."""
        if self.nulls_last and position[0] is None:
            return 1, position[1:]
        return 0, position

    def forward(self):
        return [c.desc() if self.descending else c.asc() for c in self.columns]

    def backward(self):
        return [c.asc() if self.descending else c.desc() for c in self.columns]

    def beyond(self, position: tuple, *, forward: bool):
        """Rows after `position` in the list's order (before it when not `forward`)."""
        here = sa.tuple_(*self.columns)
        there = sa.tuple_(
            *(sa.literal(v, c.type) for v, c in zip(position, self.columns, strict=True))
        )
        return here < there if self.descending == forward else here > there


@dataclass(frozen=True)
class Cursor:
    """Where a page of a list starts: after a booking, before one, at the end, or (all None)
    at the start."""

    after: int | None = None
    before: int | None = None
    end: bool = False

    def __post_init__(self):
        if sum((self.after is not None, self.before is not None, self.end)) > 1:
            raise InvalidInput("give at most one of after, before and end")


FROM_THE_START = Cursor()


@dataclass(frozen=True)
class Window:
    """A page of a list: its bookings, whether there are more either side, and how many the
    list holds (`total`, up to COUNT_CAP; `capped` when there are more)."""

    items: list[Booking]
    has_previous: bool
    has_next: bool
    total: int
    capped: bool

    @property
    def first_id(self) -> int | None:
        return self.items[0].id if self.items else None

    @property
    def last_id(self) -> int | None:
        return self.items[-1].id if self.items else None


def read_window(
    query, order: Order, cursor: Cursor, per_page: int, *, counted: tuple[int, bool] | None = None
) -> Window:
    """One page of `query` (a select of Booking.id with the list's filters) in `order`.

    counted: what capped_count found of these rows, when the caller counted them first (a
    search chooses how to read the page by how many it finds)."""
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    forward = cursor.before is None and not cursor.end
    mark = cursor.after if cursor.after is not None else cursor.before
    position = None
    if mark is not None:
        position = db.session.execute(
            sa.select(*order.columns).where(Booking.id == mark)
        ).one_or_none()
        if position is None:
            raise InvalidInput(f"No booking {mark} to page from")
    ids = _page_ids(query, order, position and tuple(position), forward, per_page + 1)
    more = len(ids) > per_page
    ids = ids[:per_page]
    if not forward:
        ids.reverse()
    total, capped = capped_count(query, COUNT_CAP) if counted is None else counted
    return Window(
        items=load_in_order(ids),
        has_previous=more if not forward else mark is not None,
        has_next=more if forward else not cursor.end,
        total=total,
        capped=capped,
    )


def _page_ids(query, order: Order, position: tuple | None, forward: bool, limit: int) -> list:
    """Up to `limit` ids of `query` beyond `position` (from the start or the end when None),
    nearest first. A list in one run is one ranged read; one in several reads each run's
    nearest `limit` in one statement (UNION ALL) and keeps the nearest of them."""
    parts = order.parts()
    first, within = (0, None) if position is None else order.part_of(position)
    if position is None and not forward:
        first = len(parts) - 1
    reads = []
    for index, (rows, part_order) in enumerate(parts):
        if (index < first) if forward else (index > first):
            continue  # the runs behind the position
        read = query.where(rows) if order.nulls_last else query
        if index == first and within is not None:
            read = read.where(part_order.beyond(within, forward=forward))
        ordered = part_order.forward() if forward else part_order.backward()
        reads.append((index, read.order_by(*ordered).limit(limit)))
    if len(reads) == 1:
        return list(db.session.scalars(reads[0][1]))
    # Each run's rows with its number and its order's columns, to put them in the list's order.
    lead = order.columns[0]
    runs = sa.union_all(
        *(
            sa.select(subquery)
            for subquery in (
                read.add_columns(sa.literal(index).label("run"), lead.label("lead")).subquery()
                for index, read in reads
            )
        )
    )
    rows = list(db.session.execute(runs).all())
    # Within a run the leads are all set or all NULL, so a NULL never meets a date here.
    rows.sort(key=lambda row: (row.run, row.lead or 0, row.id))
    if not forward:
        rows.reverse()
    return [row.id for row in rows[:limit]]


def capped_count(query, cap: int) -> tuple[int, bool]:
    """How many rows `query` selects, counting no further than `cap`."""
    limited = query.order_by(None).limit(cap + 1).subquery()
    count = db.session.scalar(sa.select(sa.func.count()).select_from(limited))
    return min(count, cap), count > cap


def load_in_order(ids: list[int]) -> list[Booking]:
    """The bookings with these ids, in this order (their people joined for these rows only)."""
    if not ids:
        return []
    found = {b.id: b for b in db.session.scalars(sa.select(Booking).where(Booking.id.in_(ids)))}
    return [found[i] for i in ids if i in found]

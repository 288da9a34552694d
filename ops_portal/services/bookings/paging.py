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
    page_query = query.order_by(*(order.forward() if forward else order.backward()))
    mark = cursor.after if cursor.after is not None else cursor.before
    if mark is not None:
        position = db.session.execute(
            sa.select(*order.columns).where(Booking.id == mark)
        ).one_or_none()
        if position is None:
            raise InvalidInput(f"No booking {mark} to page from")
        page_query = page_query.where(order.beyond(tuple(position), forward=forward))
    ids = list(db.session.scalars(page_query.limit(per_page + 1)))
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

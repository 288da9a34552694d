"""The change feed live pages are told from: the booking events and the duty changes appended
since a cursor, each with whom it concerns (access.hears_of decides who hears of it). The
append-only logs are the source of truth; nothing here is stored twice."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from ..domain.access import Change, ChangeKind, hears_of
from ..domain.errors import InvalidInput
from ..domain.lifecycle import Actor
from ..extensions import db
from ..models import Booking, BookingEvent, ProviderDutyEvent

CURSOR_TEXT = re.compile(r"(\d{1,18})-(\d{1,18})")


class Cursor(NamedTuple):
    """How far a reader has read each log: the latest booking event id and duty change id.
    Written "1234-56" (an SSE event id, a page's data attribute, a poll's `after`)."""

    bookings: int = 0
    duty: int = 0

    def __str__(self) -> str:
        return f"{self.bookings}-{self.duty}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        found = CURSOR_TEXT.fullmatch(text.strip())
        if found is None:
            raise InvalidInput("after must look like 1234-56", field="after")
        return cls(int(found[1]), int(found[2]))

    def past(self, change: Change) -> Cursor:
        """This cursor moved past `change`."""
        if change.kind is ChangeKind.BOOKING:
            return self._replace(bookings=max(self.bookings, change.id))
        return self._replace(duty=max(self.duty, change.id))

    def has_read(self, change: Change) -> bool:
        held = self.bookings if change.kind is ChangeKind.BOOKING else self.duty
        return change.id <= held

    def covers(self, other: Cursor) -> bool:
        """Whether everything `other` has read, this one has read too."""
        return self.bookings >= other.bookings and self.duty >= other.duty


def latest_cursor() -> Cursor:
    """The end of both logs now."""
    bookings = db.session.scalar(sa.select(sa.func.max(BookingEvent.id)))
    duty = db.session.scalar(sa.select(sa.func.max(ProviderDutyEvent.id)))
    return Cursor(bookings or 0, duty or 0)


def changes_after(
    cursor: Cursor, limit: int = 1000, *, late: tuple[Iterable[int], Iterable[int]] = ((), ())
) -> list[Change]:
    """The changes past `cursor`, each log's oldest first, at most `limit` of each (two
    statements, through the logs' primary keys); and those of the ids in `late` (booking event
    ids, duty change ids), ids below the cursor a reader has not seen yet."""
    late_events, late_duty = (sorted(ids) for ids in late)
    event, before = BookingEvent, aliased(BookingEvent)
    # The provider who held the booking before this event: a reassignment names only the new
    # one, and the provider it was taken from must hear of it too.
    held_before = (
        sa.select(before.provider_id)
        .where(
            before.booking_id == event.booking_id,
            before.id < event.id,
            before.provider_id.is_not(None),
        )
        .order_by(before.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    booking_rows = db.session.execute(
        sa.select(event.id, event.provider_id, Booking.customer_id, held_before.label("before"))
        .join(Booking, Booking.id == event.booking_id)
        .where(sa.or_(event.id > cursor.bookings, event.id.in_(late_events)))
        .order_by(event.id)
        .limit(limit)
    )
    changes = [
        Change(
            ChangeKind.BOOKING,
            row.id,
            row.customer_id,
            frozenset(p for p in (row.provider_id, row.before) if p is not None),
        )
        for row in booking_rows
    ]
    duty_rows = db.session.execute(
        sa.select(ProviderDutyEvent.id, ProviderDutyEvent.provider_id)
        .where(sa.or_(ProviderDutyEvent.id > cursor.duty, ProviderDutyEvent.id.in_(late_duty)))
        .order_by(ProviderDutyEvent.id)
        .limit(limit)
    )
    changes += [
        Change(ChangeKind.DUTY, row.id, None, frozenset({row.provider_id})) for row in duty_rows
    ]
    return changes


def news_for(actor: Actor, after: Cursor) -> Cursor | None:
    """Whether anything `actor` hears of changed past `after`, read from the logs: the cursor
    to redraw at, or None. (A process that serves streams answers this from its hub instead.)"""
    found = changes_after(after)
    if not any(hears_of(actor, change) for change in found):
        return None
    told = after
    for change in found:
        told = told.past(change)
    return told

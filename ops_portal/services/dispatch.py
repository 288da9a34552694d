"""Who a booking can be offered to: the reads a dispatcher (a person at the board, or the
SYSTEM actor) decides with. Each answers in one query, however many providers there are."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import sqlalchemy as sa

from ..domain.access import Read, require_read
from ..domain.lifecycle import LIFECYCLE, Action, Actor, Availability
from ..domain.text import fold
from ..extensions import db
from ..models import BookingEvent, Provider
from . import providers
from .bookings.rules import clean_text

# A picker lists this many providers at most; a search narrows a longer list.
PICKER_SIZE = 30


def rejected_by(booking_id: int) -> list[int]:
    """Providers who rejected the booking or let its offer lapse, oldest first, from its events
    (never stored twice)."""
    return list(db.session.scalars(_rejecters(booking_id).order_by(BookingEvent.id)))


def _rejecters(booking_id: int) -> sa.Select:
    """The providers who turned the booking down, by rejecting it or letting its offer lapse: a
    select for a subquery or a list (both events always name their provider)."""
    return sa.select(BookingEvent.provider_id).where(
        BookingEvent.booking_id == booking_id,
        BookingEvent.action.in_((Action.REJECT, Action.EXPIRE_OFFER)),
        BookingEvent.provider_id.is_not(None),
    )


def eligible_providers(booking_id: int) -> list[providers.ProviderAvailability]:
    """Providers the booking may be assigned to now: active, AVAILABLE, and not one who already
    rejected it; by name."""
    active = providers.active_bookings_by_provider()
    query = providers.availability_query(active).where(
        Provider.active.is_(True),
        active.c.busy_with.is_(None),
        Provider.id.not_in(_rejecters(booking_id)),
    )
    return [providers.from_row(row) for row in db.session.execute(query)]


@dataclass(frozen=True)
class Choice:
    """A provider as a picker offers them for one booking."""

    provider: providers.ProviderAvailability
    rejected_it: bool

    @property
    def eligible(self) -> bool:
        return _eligible(self.provider.availability, self.rejected_it)


def _eligible(availability: str, rejected_it: bool) -> bool:
    """Who a picker offers first: free now, and not one who rejected the booking."""
    return availability == Availability.AVAILABLE and not rejected_it


@dataclass(frozen=True)
class Picker:
    """The providers an assign or force-assign form offers: eligible ones first, then by name;
    at most PICKER_SIZE of the `matching` ones, narrowed by `search`."""

    action: Action
    choices: list[Choice]
    matching: int
    search: str

    @property
    def groups(self) -> list[tuple[str, list[Choice]]]:
        """The choices under a heading saying why they are where they are, eligible first."""
        groups = (
            ("Free now", [c for c in self.choices if c.eligible]),
            (
                "Free, but rejected this booking",
                [
                    c
                    for c in self.choices
                    if c.rejected_it and c.provider.availability is Availability.AVAILABLE
                ],
            ),
            ("Busy", [c for c in self.choices if c.provider.availability is Availability.BUSY]),
        )
        return [(label, choices) for label, choices in groups if choices]


def provider_picker(actor: Actor, booking_id: int, action: Action, search: str = "") -> Picker:
    """The choices for `action` on the booking: assign offers providers who are free now;
    force-assign every active one, busy ones too. One query, whatever the number of providers;
    only the PICKER_SIZE shown become choices."""
    require_read(actor, Read.PROVIDER_LIST)
    search = clean_text(search, "q", max_len=80).strip()
    active = providers.active_bookings_by_provider()
    rejected_it = Provider.id.in_(_rejecters(booking_id)).label("rejected_it")
    query = providers.availability_query(active).add_columns(rejected_it)
    query = query.where(Provider.active.is_(True))
    if LIFECYCLE[action].checks_availability:
        query = query.where(active.c.busy_with.is_(None))
    rows = db.session.execute(query).all()  # by name
    if search:
        needle = fold(search)
        rows = [row for row in rows if needle in fold(row.name)]
    eligible = [row for row in rows if _eligible(row.availability, row.rejected_it)]
    shown = eligible[:PICKER_SIZE]
    if len(shown) < PICKER_SIZE:
        others = (row for row in rows if not _eligible(row.availability, row.rejected_it))
        shown += list(itertools.islice(others, PICKER_SIZE - len(shown)))
    choices = [Choice(providers.from_row(row), bool(row.rejected_it)) for row in shown]
    return Picker(action, choices, len(rows), search)

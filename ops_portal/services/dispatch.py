"""Who a booking can be offered to: the reads a dispatcher (a person at the board, or the
SYSTEM actor) decides with. Each answers in one query, however many providers there are."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

import sqlalchemy as sa

from ..domain.access import Read, require_read
from ..domain.errors import NotFound
from ..domain.lifecycle import LIFECYCLE, TURNED_DOWN, Action, Actor, Availability
from ..domain.schedule import waited
from ..domain.text import fold
from ..extensions import db
from ..models import Booking, BookingEvent, Provider, User, utcnow
from . import providers, skills
from .bookings.rules import check_id, clean_text

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
        BookingEvent.action.in_(TURNED_DOWN),
        BookingEvent.provider_id.is_not(None),
    )


def _eligible(active, booking_id: int, service: str):
    """As SQL: the provider may be offered the booking now: AVAILABLE (active, on duty, free),
    doing its service, and not one who turned it down."""
    return sa.and_(
        providers.availability_of(active) == Availability.AVAILABLE.value,
        skills.does_service(service),
        Provider.id.not_in(_rejecters(booking_id)),
    )


def eligible_providers(booking_id: int) -> list[providers.ProviderAvailability]:
    """Providers the booking may be assigned to now (_eligible), by name."""
    service = db.session.scalar(sa.select(Booking.service).where(Booking.id == booking_id))
    active = providers.active_bookings_by_provider()
    query = providers.availability_query(active).where(_eligible(active, booking_id, service or ""))
    return [providers.from_row(row) for row in db.session.execute(query)]


# How a picker tells that a provider turned the booking down (lifecycle.TURNED_DOWN).
TURNED_DOWN_WORDS = {
    Action.REJECT: "rejected this booking",
    Action.EXPIRE_OFFER: "let this offer lapse",
}


@dataclass(frozen=True)
class Candidate:
    """A provider as one booking sees them: whether they can take it, and the facts that say
    why. `assignable`: an assign would accept them; `eligible`: offered first (the database's
    answer to _eligible: assignable, and they have not turned this booking down)."""

    provider: providers.ProviderAvailability
    service: str
    does_service: bool
    eligible: bool
    turned_down: tuple[Action, datetime] | None  # (the action, when) on this booking
    off_duty_since: datetime | None
    idle_since: datetime

    @property
    def assignable(self) -> bool:
        return self.provider.availability is Availability.AVAILABLE and self.does_service

    def reasons(self, now: datetime, zone: tzinfo) -> list[str]:
        """Why they can or cannot take the booking, in a dispatcher's words; times in `zone`."""
        p = self.provider
        said = {
            Availability.AVAILABLE: f"available, idle {waited(self.idle_since, now)}",
            Availability.BUSY: f"busy with #{p.busy_with}",
            Availability.INACTIVE: "inactive",
            Availability.OFF_DUTY: "off duty"
            + (f" since {_clock(self.off_duty_since, now, zone)}" if self.off_duty_since else ""),
        }
        words = [said[p.availability]]
        if not self.does_service:
            words.append(f"doesn't do {self.service}")
        if self.turned_down:
            action, at = self.turned_down
            words.append(f"{TURNED_DOWN_WORDS[action]} at {_clock(at, now, zone)}")
        return words

    def reason(self, now: datetime, zone: tzinfo) -> str:
        return "; ".join(self.reasons(now, zone))


def _clock(at: datetime, now: datetime, zone: tzinfo) -> str:
    """A time as a dispatcher reads it: "14:02" today, "Tue 14:02" before."""
    local, today = at.astimezone(zone), now.astimezone(zone)
    return f"{local:%H:%M}" if local.date() == today.date() else f"{local:%a %H:%M}"


def _booking(actor: Actor, booking_id: int) -> Booking:
    require_read(actor, Read.PROVIDER_LIST)
    check_id(booking_id, "booking_id")
    booking = db.session.get(Booking, booking_id)
    if booking is None:
        raise NotFound(f"No booking {booking_id}")
    return booking


def _candidate_query(booking: Booking, *, eligible_only: bool = False):
    """Every provider (or every eligible one) with what a Candidate needs but when they turned
    the booking down: the eligible ones first, the longest idle first, then the rest by name.
    Idleness and duty times are the provider row's own: no look-up per provider."""
    active = providers.active_bookings_by_provider()
    eligible = _eligible(active, booking.id, booking.service)
    idle_since = sa.func.coalesce(Provider.idle_since, User.created_at)
    query = (
        providers.availability_query(active)
        .add_columns(
            skills.does_service(booking.service).label("does_service"),
            eligible.label("eligible"),
            idle_since.label("idle_since"),
            Provider.duty_since,
        )
        .order_by(None)
        .order_by(sa.desc(eligible), sa.case((eligible, idle_since)), User.name, Provider.id)
    )
    return query.where(eligible) if eligible_only else query


def _candidate(booking: Booking, row, turned_down) -> Candidate:
    return Candidate(
        provider=providers.from_row(row),
        service=booking.service,
        does_service=bool(row.does_service),
        eligible=bool(row.eligible),
        turned_down=turned_down,
        off_duty_since=None if row.on_duty else row.duty_since,
        idle_since=row.idle_since,
    )


def candidates(actor: Actor, booking_id: int) -> tuple[Booking, list[Candidate]]:
    """Every provider for the booking, with the facts of why they can or cannot take it:
    eligible ones first, the longest idle first, then the rest by name. Three statements,
    however many providers there are."""
    booking, rows, turned_down = _ranked(actor, booking_id)
    return booking, [_candidate(booking, row, turned_down.get(row.id)) for row in rows]


def _ranked(actor: Actor, booking_id: int) -> tuple[Booking, list[sa.Row], dict]:
    """The booking, every provider's row in the candidates' order, and who turned the booking
    down (provider id → (action, when)): what Candidates are made of, for as few of them as a
    caller shows."""
    booking = _booking(actor, booking_id)
    when = sa.func.max(BookingEvent.created_at)
    turned_down = {
        row.provider_id: (row.action, row.at)
        for row in db.session.execute(
            _rejecters(booking_id)
            .add_columns(BookingEvent.action, when.label("at"))
            .group_by(BookingEvent.provider_id, BookingEvent.action)
            .order_by(when)  # the latest wins below
        )
    }
    return booking, db.session.execute(_candidate_query(booking)).all(), turned_down


def longest_idle(actor: Actor, booking_id: int) -> tuple[Candidate | None, int]:
    """The eligible provider idle longest for the booking (None: nobody is eligible) and how
    many are eligible, in two statements: what the SYSTEM dispatcher offers by."""
    booking = _booking(actor, booking_id)
    row = db.session.execute(
        _candidate_query(booking, eligible_only=True)
        .add_columns(sa.func.count().over().label("eligible_count"))
        .limit(1)
    ).one_or_none()
    if row is None:
        return None, 0
    return _candidate(booking, row, None), row.eligible_count


@dataclass(frozen=True)
class Picker:
    """The providers an assign or force-assign form offers: eligible ones first (the longest
    idle first), then the rest by name, each with why; at most PICKER_SIZE of the `matching`
    ones, narrowed by `search`. `now` and `zone` are what the reasons are told in."""

    action: Action
    choices: list[Candidate]
    matching: int
    search: str
    now: datetime
    zone: tzinfo

    def selectable(self, candidate: Candidate) -> bool:
        """Whether the action would accept them: an assign only who it allows; a forced one
        anyone active."""
        if LIFECYCLE[self.action].checks_availability:
            return candidate.assignable
        return candidate.provider.availability is not Availability.INACTIVE

    @property
    def groups(self) -> list[tuple[str, list[Candidate]]]:
        """The choices under a heading, eligible first."""
        groups = (
            ("Can take it", [c for c in self.choices if c.eligible]),
            ("Can't take it now", [c for c in self.choices if not c.eligible]),
        )
        return [(label, choices) for label, choices in groups if choices]


def provider_picker(
    actor: Actor,
    booking_id: int,
    action: Action,
    search: str = "",
    *,
    now: datetime | None = None,
    zone: tzinfo = UTC,
) -> Picker:
    """The choices for `action` on the booking: every provider, with why they can or cannot take
    it (candidates). Only the PICKER_SIZE shown become choices, eligible ones first."""
    search = clean_text(search, "q", max_len=80).strip()
    booking, rows, turned_down = _ranked(actor, booking_id)
    if search:
        needle = fold(search)
        rows = [row for row in rows if needle in fold(row.name)]
    shown = [_candidate(booking, row, turned_down.get(row.id)) for row in rows[:PICKER_SIZE]]
    return Picker(action, shown, len(rows), search, now or utcnow(), zone)

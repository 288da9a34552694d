"""Providers and their availability, computed from bookings (a provider is BUSY while a booking
of theirs is ASSIGNED or IN_PROGRESS) and from their duty, never from a stored availability that
could drift."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from ..domain.access import Read, require_read
from ..domain.errors import NotFound
from ..domain.lifecycle import ACTIVE, Actor, Availability, Role
from ..extensions import db
from ..models import Booking, Provider, ProviderDutyEvent, User
from . import skills


@dataclass(frozen=True)
class ProviderAvailability:
    id: int
    name: str
    active: bool
    on_duty: bool
    availability: Availability
    busy_with: int | None  # the booking that makes them busy (oldest, if several)
    active_count: int


def active_bookings_by_provider():
    """provider_id → (busy_with, active_count) for every provider with active work."""
    return (
        sa.select(
            Booking.provider_id,
            sa.func.min(Booking.id).label("busy_with"),
            sa.func.count().label("active_count"),
        )
        .where(Booking.status.in_(ACTIVE))
        .group_by(Booking.provider_id)
        .subquery()
    )


def availability_of(active):
    """A provider's availability, as SQL: INACTIVE, else BUSY while they hold active work, else
    OFF_DUTY when they are, else AVAILABLE. `active` is active_bookings_by_provider(), joined to
    the provider."""
    return sa.case(
        (Provider.active.is_(False), Availability.INACTIVE.value),
        (active.c.busy_with.is_not(None), Availability.BUSY.value),
        (Provider.on_duty.is_(False), Availability.OFF_DUTY.value),
        else_=Availability.AVAILABLE.value,
    )


def availability_query(active):
    """Every provider with the columns ProviderAvailability needs, in one statement; `active`
    is active_bookings_by_provider(), for callers that filter on it."""
    return (
        sa.select(
            Provider.id,
            User.name,
            Provider.active,
            Provider.on_duty,
            availability_of(active).label("availability"),
            active.c.busy_with,
            active.c.active_count,
        )
        .join(User, User.id == Provider.id)
        .outerjoin(active, active.c.provider_id == Provider.id)
        .order_by(User.name, Provider.id)
    )


def from_row(row) -> ProviderAvailability:
    return ProviderAvailability(
        id=row.id,
        name=row.name,
        active=row.active,
        on_duty=row.on_duty,
        availability=Availability(row.availability),
        busy_with=row.busy_with,
        active_count=row.active_count or 0,
    )


def providers_with_availability(actor: Actor) -> list[ProviderAvailability]:
    """Every provider with availability computed from bookings, in one query."""
    require_read(actor, Read.PROVIDER_LIST)
    query = availability_query(active_bookings_by_provider())
    return [from_row(row) for row in db.session.execute(query)]


# The board's provider panel lists this many providers at most, whatever their number.
PANEL_SIZE = 20


@dataclass(frozen=True)
class Panel:
    """The board's provider panel: how many providers are in each availability, and the first
    PANEL_SIZE of them (free ones first, then busy, off duty, inactive; by name)."""

    counts: dict[Availability, int]
    providers: list[ProviderAvailability]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def provider_panel(actor: Actor) -> Panel:
    """The provider panel in two queries, however many providers there are."""
    require_read(actor, Read.PROVIDER_LIST)
    active = active_bookings_by_provider()
    availability = availability_of(active)
    counted = (
        sa.select(availability, sa.func.count())
        .select_from(Provider)
        .outerjoin(active, active.c.provider_id == Provider.id)
        .group_by(availability)
    )
    counts = {a: 0 for a in Availability}
    counts.update({Availability(a): n for a, n in db.session.execute(counted)})
    order = sa.case(
        {a.value: rank for rank, a in enumerate(Availability)}, value=availability, else_=9
    )
    first = availability_query(active).order_by(None).order_by(order, User.name, Provider.id)
    listed = [from_row(row) for row in db.session.execute(first.limit(PANEL_SIZE))]
    return Panel(counts, listed)


def provider_availability(actor: Actor, provider_id: int) -> ProviderAvailability:
    """One provider's availability: for the provider themselves, or a dispatcher."""
    if not (actor.role is Role.PROVIDER and actor.user_id == provider_id):
        require_read(actor, Read.PROVIDER_LIST)
    query = availability_query(active_bookings_by_provider()).where(Provider.id == provider_id)
    row = db.session.execute(query).one_or_none()
    if row is None:
        raise NotFound(f"No provider {provider_id}")
    return from_row(row)


@dataclass(frozen=True)
class ProviderPage:
    """What a dispatcher reads about one provider: availability, services, duty log."""

    provider: ProviderAvailability
    services: list[str]  # empty: every service
    duty_log: list[ProviderDutyEvent]  # the latest first


def provider_page(actor: Actor, provider_id: int) -> ProviderPage:
    """One provider for a dispatcher, in three statements."""
    require_read(actor, Read.PROVIDER_LIST)
    provider = provider_availability(actor, provider_id)
    log = db.session.scalars(
        sa.select(ProviderDutyEvent)
        .where(ProviderDutyEvent.provider_id == provider_id)
        .order_by(ProviderDutyEvent.id.desc())
    )
    return ProviderPage(provider, skills.services_of(actor, provider_id), list(log))

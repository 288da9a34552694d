"""Providers and their availability, computed from bookings (a provider is BUSY while a booking
of theirs is ASSIGNED or IN_PROGRESS), never from a stored flag that could drift."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from ..domain.access import Read, require_read
from ..domain.lifecycle import ACTIVE, Actor, Availability
from ..extensions import db
from ..models import Booking, Provider, User


@dataclass(frozen=True)
class ProviderAvailability:
    id: int
    name: str
    active: bool
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


def availability_query(active):
    """Every provider with the columns ProviderAvailability needs, in one statement; `active`
    is active_bookings_by_provider(), for callers that filter on it."""
    return (
        sa.select(
            Provider.id, User.name, Provider.active, active.c.busy_with, active.c.active_count
        )
        .join(User, User.id == Provider.id)
        .outerjoin(active, active.c.provider_id == Provider.id)
        .order_by(User.name, Provider.id)
    )


def from_row(row) -> ProviderAvailability:
    if not row.active:
        availability = Availability.INACTIVE
    elif row.busy_with is not None:
        availability = Availability.BUSY
    else:
        availability = Availability.AVAILABLE
    return ProviderAvailability(
        id=row.id,
        name=row.name,
        active=row.active,
        availability=availability,
        busy_with=row.busy_with,
        active_count=row.active_count or 0,
    )


def providers_with_availability(actor: Actor) -> list[ProviderAvailability]:
    """Every provider with availability computed from bookings, in one query."""
    require_read(actor, Read.PROVIDER_LIST)
    query = availability_query(active_bookings_by_provider())
    return [from_row(row) for row in db.session.execute(query)]

"""Who a booking can be offered to: the reads a dispatcher (a person at the board, or the
SYSTEM actor) decides with. Each answers in one query, however many providers there are."""

from __future__ import annotations

import sqlalchemy as sa

from ..domain.lifecycle import Action
from ..extensions import db
from ..models import BookingEvent, Provider
from . import providers


def rejected_by(booking_id: int) -> list[int]:
    """Providers who rejected the booking, oldest first, from its events (never stored twice)."""
    return list(
        db.session.scalars(
            sa.select(BookingEvent.provider_id)
            .where(BookingEvent.booking_id == booking_id, BookingEvent.action == Action.REJECT)
            .order_by(BookingEvent.id)
        )
    )


def eligible_providers(booking_id: int) -> list[providers.ProviderAvailability]:
    """Providers the booking may be assigned to now: active, AVAILABLE, and not one who already
    rejected it; by name."""
    active = providers.active_bookings_by_provider()
    rejected_it = sa.exists().where(
        BookingEvent.booking_id == booking_id,
        BookingEvent.action == Action.REJECT,
        BookingEvent.provider_id == Provider.id,
    )
    query = providers.availability_query(active).where(
        Provider.active.is_(True), active.c.busy_with.is_(None), ~rejected_it
    )
    return [providers.from_row(row) for row in db.session.execute(query)]

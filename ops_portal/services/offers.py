"""Offers that lapse. An ASSIGNED booking is an offer to its provider until its deadline
(bookings.offer_expires_at); SYSTEM expires the overdue ones, each through the same lifecycle
action as anything else, so an offer accepted meanwhile is left alone. A provider who lets
several offers in a row lapse is put off duty."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask import current_app

from ..domain.errors import OfferStillOpen, TransitionNotAllowed
from ..domain.lifecycle import OFFER_OUTCOMES, Action, Actor, Status
from ..extensions import db
from ..models import Booking, BookingEvent, Provider
from . import duty
from .bookings import perform_action

# The events that end an offer, one way or the other, for the provider it was made to.
LAPSE_REASON = "Not answered in time"


def overdue_offers(now: datetime) -> list[int]:
    """The ASSIGNED bookings whose offer's deadline has passed by `now`, the most overdue first.
    (Few bookings are ASSIGNED at a time, one per busy provider: the status index finds them.)"""
    return list(
        db.session.scalars(
            sa.select(Booking.id)
            .where(Booking.status == Status.ASSIGNED, Booking.offer_expires_at <= now)
            .order_by(Booking.offer_expires_at, Booking.id)
        )
    )


def expire_offers(now: datetime) -> list[int]:
    """As SYSTEM, expire every offer overdue at `now`; the ids of the bookings expired. Each
    expiry is its own conditional change with its event: a booking its provider answered (or a
    dispatcher reassigned) since it was found is skipped. A provider whose last
    LAPSES_BEFORE_OFF_DUTY offers all lapsed is put off duty in the same pass."""
    system = Actor.system()
    expired = []
    for booking_id in overdue_offers(now):
        try:
            booking = perform_action(
                system, booking_id, Action.EXPIRE_OFFER, reason=LAPSE_REASON, now=now
            )
        except (TransitionNotAllowed, OfferStillOpen):
            continue  # answered or reassigned meanwhile: no longer this offer to expire
        expired.append(booking_id)
        _off_duty_after_lapses(booking.events[-1].provider_id, now)
    return expired


def _off_duty_after_lapses(provider_id: int, now: datetime) -> None:
    lapses = current_app.config["LAPSES_BEFORE_OFF_DUTY"]
    if lapses < 1 or last_outcomes(provider_id, lapses) != [Action.EXPIRE_OFFER] * lapses:
        return
    duty.set_duty(
        Actor.system(),
        provider_id,
        False,
        reason=f"Let {lapses} offer{'' if lapses == 1 else 's'} lapse in a row",
        now=now,
    )


def last_outcomes(provider_id: int, count: int) -> list[Action]:
    """How the provider's last `count` offers since their latest duty change ended (accepted,
    rejected or lapsed), the latest first: a provider back on duty starts a fresh streak."""
    duty_since = sa.select(Provider.duty_since).where(Provider.id == provider_id)
    return list(
        db.session.scalars(
            sa.select(BookingEvent.action)
            .where(
                BookingEvent.provider_id == provider_id,
                BookingEvent.action.in_(OFFER_OUTCOMES),
                sa.or_(
                    duty_since.scalar_subquery().is_(None),
                    BookingEvent.created_at >= duty_since.scalar_subquery(),
                ),
            )
            .order_by(BookingEvent.id.desc())
            .limit(count)
        )
    )

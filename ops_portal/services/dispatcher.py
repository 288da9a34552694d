"""The SYSTEM dispatcher: one pass expires every overdue offer, then offers each open booking
(PENDING, or REJECTED and awaiting another offer), the soonest window first, to the eligible
provider who has been idle longest, and fails the bookings automation cannot place, so that a
person takes them up.

A pass acts as SYSTEM through the same service functions, locks and checks as a person does
(`perform_action`): every change is conditional on the state it read, so several dispatchers may
run at once, beside people at the board, and a booking another changed meanwhile is skipped.
It takes the time as a parameter; `flask --app ops_portal dispatch run` calls it every few
seconds, `dispatch once` once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from ..domain.errors import DomainError
from ..domain.lifecycle import OFFERS, Action, Actor, Status
from ..domain.schedule import waited
from ..extensions import db
from ..models import Booking, BookingEvent
from . import offers
from .automation import automation_state
from .bookings import perform_action
from .dispatch import longest_idle

# What the dispatcher works on, in order: the soonest window first (bookings without one last).
OPEN_STATUSES = (Status.PENDING, Status.REJECTED)


@dataclass(frozen=True)
class Policy:
    batch: int = 50  # bookings one pass considers
    offers_before_failing: int = 3  # offers made without acceptance, then a person decides
    no_provider_wait: timedelta = timedelta(minutes=15)  # with nobody eligible this long: failed


@dataclass
class PassSummary:
    at: datetime
    paused: bool = False
    expired: list[int] = field(default_factory=list)  # bookings whose offer lapsed
    offered: list[dict] = field(default_factory=list)  # {"booking", "provider", "reason"}
    failed: list[dict] = field(default_factory=list)  # {"booking", "reason"}
    skipped: list[dict] = field(default_factory=list)  # changed by someone else meanwhile

    def as_json(self) -> dict:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


def run_pass(
    now: datetime, policy: Policy = Policy(), *, clock: Callable[[], datetime] | None = None
) -> PassSummary:
    """One pass over the open bookings (at most policy.batch) open as of `now`. With a `clock`
    (the dispatcher process's: the time), each booking is offered as of the time it is offered
    at, never earlier than `now`: a pass that takes a while must not make offers whose deadlines
    count from its start."""
    summary = PassSummary(at=now)
    if automation_state().paused:
        summary.paused = True
        return summary
    summary.expired = offers.expire_offers(now)
    system = Actor.system()
    for booking in _open_bookings(policy.batch, now):
        at = max(now, clock()) if clock else now
        try:
            _dispatch_one(system, at, policy, summary, booking)
        except DomainError as error:  # moved on meanwhile (a person, another dispatcher)
            summary.skipped.append({"booking": booking.id, "why": error.detail})
        finally:
            db.session.rollback()  # each booking reads afresh
    return summary


def _dispatch_one(system, now, policy, summary, booking):
    if booking.status is Status.REJECTED and booking.offers >= policy.offers_before_failing:
        _fail(system, now, summary, booking, f"Offered {booking.offers} times without acceptance")
        return
    chosen, eligible = longest_idle(system, booking.id)
    if chosen is None:
        if now - booking.updated_at >= policy.no_provider_wait:
            minutes = int(policy.no_provider_wait.total_seconds() // 60)
            _fail(system, now, summary, booking, f"No eligible provider for {minutes} min")
        return
    reason = f"longest idle of {eligible} eligible: idle {waited(chosen.idle_since, now)}"
    perform_action(
        system,
        booking.id,
        Action.ASSIGN,
        provider_id=chosen.provider.id,
        reason=reason,
        expected_version=booking.version,
        now=now,
    )
    offered = {"booking": booking.id, "provider": chosen.provider.id, "reason": reason}
    summary.offered.append(offered)


def _fail(system, now, summary, booking, reason: str) -> None:
    """Automation gives the booking up, for a dispatcher to take on (its card says so)."""
    perform_action(
        system,
        booking.id,
        Action.MARK_FAILED,
        reason=reason,
        expected_version=booking.version,
        now=now,
    )
    summary.failed.append({"booking": booking.id, "reason": reason})


def _open_bookings(batch: int, now: datetime) -> list[sa.Row]:
    """The bookings open as of `now`, soonest window first: id, version, status, since when they
    have waited in that status (updated_at), and how many offers they have had, in one query.
    One that opened after `now`, while this pass was under way (its provider rejected it, or
    another dispatcher's later pass let its offer lapse), is left to the next pass: acted on as
    of `now`, its event would be stamped before the one it follows, and a new offer's deadline
    would count from before the booking was open."""
    offers = (
        sa.select(sa.func.count())
        .where(BookingEvent.booking_id == Booking.id, BookingEvent.action.in_(OFFERS))
        .correlate(Booking)
        .scalar_subquery()
    )
    return db.session.execute(
        sa.select(
            Booking.id, Booking.version, Booking.status, Booking.updated_at, offers.label("offers")
        )
        .where(Booking.status.in_(OPEN_STATUSES), Booking.updated_at <= now)
        .order_by(Booking.window_start.is_(None), Booking.window_start, Booking.id)
        .limit(batch)
    ).all()

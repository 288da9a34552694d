"""Dispatch metrics, read from the append-only event log: how long bookings wait for a provider
and providers take to accept, what becomes of offers, how much automation assigns, and what the
reports page draws. Each function is one query; each takes the time span it measures (`since`,
`until`), so tests move the clock.

The words used:
- an assignment is an `assign` or `force-assign` event; made from an open status (PENDING,
  REJECTED, FAILED), its time to assign is how long the booking had been in that status: since
  the event before it. A force-assign that replaces a standing offer is no new assignment.
- an offer ends with an `accept`, a `reject` or a lapse (an `expire-offer` event, by SYSTEM);
  the time to accept is from the assignment (the event before the accept) to the accept.
- an outcome is a booking reaching COMPLETED, CANCELLED or FAILED.

Events are found through the bookings changed since the span began (a booking's updated_at is
the time of its latest event, under an index), then each booking's events through
(booking_id, id)."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from ..domain.access import Read, require_read
from ..domain.errors import InvalidInput
from ..domain.lifecycle import OFFER_OUTCOMES, OFFERS, Action, Actor, Role, Status
from ..extensions import db
from ..models import Booking, BookingEvent, User, UTCDateTime

ASSIGNMENTS = frozenset(action.value for action in OFFERS)
LAPSE = Action.EXPIRE_OFFER.value
OFFER_ENDS = tuple(action.value for action in OFFER_OUTCOMES)
OUTCOMES = (Status.COMPLETED, Status.CANCELLED, Status.FAILED)
# The time-to-accept histogram's bins: (upper bound in seconds, label); the last is open.
ACCEPT_BINS: tuple[tuple[float, str], ...] = (
    (30, "< 30 s"),
    (60, "30–60 s"),
    (120, "1–2 min"),
    (300, "2–5 min"),
    (900, "5–15 min"),
    (float("inf"), "15+ min"),
)


@dataclass(frozen=True)
class DispatchMetrics:
    since: datetime
    until: datetime
    pending: int  # bookings PENDING at `until`
    oldest_pending_since: datetime | None  # when the longest-waiting of them became PENDING
    assignments: int
    automatic_assignments: int  # made by SYSTEM
    median_time_to_assign: timedelta | None
    accepted: int
    rejected: int
    lapsed: int
    median_time_to_accept: timedelta | None

    @property
    def offers_ended(self) -> int:
        return self.accepted + self.rejected + self.lapsed

    def _share(self, part: int, whole: int) -> float | None:
        return part / whole if whole else None

    @property
    def acceptance_rate(self) -> float | None:
        return self._share(self.accepted, self.offers_ended)

    @property
    def rejection_rate(self) -> float | None:
        return self._share(self.rejected, self.offers_ended)

    @property
    def lapse_rate(self) -> float | None:
        return self._share(self.lapsed, self.offers_ended)

    @property
    def automatic_share(self) -> float | None:
        return self._share(self.automatic_assignments, self.assignments)

    @property
    def oldest_pending_wait(self) -> timedelta | None:
        if self.oldest_pending_since is None:
            return None
        return max(timedelta(0), self.until - self.oldest_pending_since)


@dataclass(frozen=True)
class Timings:
    """What the timed events of a span say: each assignment (its time to assign, whether SYSTEM
    made it) and each offer's end (its action, and the time to accept)."""

    to_assign: list[timedelta]
    automatic: int
    assignments: int
    ends: Counter
    to_accept: list[timedelta]


@dataclass(frozen=True)
class HourOutcomes:
    hour: datetime  # the hour's start, in the zone asked for
    counts: dict[Status, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class ProviderJobs:
    provider_id: int
    name: str
    jobs: int


def check_span(since: datetime, until: datetime) -> None:
    """A span to measure: `since` no later than `until` (an empty span measures nothing)."""
    if since > until:
        raise InvalidInput(
            f"since must not be after {until.isoformat(timespec='seconds')}: "
            f"{since.isoformat(timespec='seconds')} is",
            field="since",
        )


def dispatch_metrics(actor: Actor, *, since: datetime, until: datetime) -> DispatchMetrics:
    """The dispatch board's figures for the span: bookings pending at `until` and the oldest's
    wait, the median times to assign and to accept, what became of offers, and the share of
    assignments automation made. Two queries."""
    require_read(actor, Read.DISPATCH_BOARD)
    check_span(since, until)
    pending, oldest = db.session.execute(
        sa.select(sa.func.count(), sa.func.min(Booking.updated_at)).where(
            Booking.status == Status.PENDING
        )
    ).one()
    timings = span_timings(since, until)
    return DispatchMetrics(
        since=since,
        until=until,
        pending=pending,
        oldest_pending_since=oldest,
        assignments=timings.assignments,
        automatic_assignments=timings.automatic,
        median_time_to_assign=_median(timings.to_assign),
        accepted=timings.ends[Action.ACCEPT.value],
        rejected=timings.ends[Action.REJECT.value],
        lapsed=timings.ends[LAPSE],
        median_time_to_accept=_median(timings.to_accept),
    )


def span_timings(since: datetime, until: datetime) -> Timings:
    """Assignments and offers' ends in [since, until), each with the time since the event
    before it, in one query."""
    previous_at = (
        sa.func.lag(BookingEvent.created_at, type_=UTCDateTime)
        .over(partition_by=BookingEvent.booking_id, order_by=BookingEvent.id)
        .label("previous_at")
    )
    timed = (
        sa.select(
            # As text: an action the lifecycle table does not name (yet) is still read.
            sa.type_coerce(BookingEvent.action, sa.String).label("action"),
            BookingEvent.from_status,
            BookingEvent.actor_role,
            BookingEvent.created_at,
            previous_at,
        )
        .where(BookingEvent.booking_id.in_(_changed_since(since)))
        .subquery()
    )
    rows = db.session.execute(
        sa.select(timed).where(
            timed.c.created_at >= since,
            timed.c.created_at < until,
            timed.c.action.in_([*ASSIGNMENTS, *OFFER_ENDS]),
        )
    ).all()
    to_assign, to_accept, ends = [], [], Counter()
    automatic = assignments = 0
    for row in rows:
        action = row.action
        waited = row.created_at - row.previous_at if row.previous_at else None
        if action in ASSIGNMENTS:
            if row.from_status == Status.ASSIGNED:
                continue  # replaces a standing offer
            assignments += 1
            automatic += row.actor_role == Role.SYSTEM
            if waited is not None:
                to_assign.append(waited)
        else:
            ends[action] += 1
            if action == Action.ACCEPT.value and waited is not None:
                to_accept.append(waited)
    return Timings(to_assign, automatic, assignments, ends, to_accept)


@dataclass(frozen=True)
class AcceptTimes:
    bins: list[tuple[str, int]]  # (label, offers) for each of ACCEPT_BINS
    median: timedelta | None


def accept_times(actor: Actor, *, since: datetime, until: datetime) -> AcceptTimes:
    """How many offers of the span were accepted within each of ACCEPT_BINS, and the median
    time to accept, in one query."""
    require_read(actor, Read.DISPATCH_BOARD)
    check_span(since, until)
    waits = span_timings(since, until).to_accept
    counts = Counter(_bin_of(waited) for waited in waits)
    return AcceptTimes([(label, counts[label]) for _, label in ACCEPT_BINS], _median(waits))


def _bin_of(waited: timedelta) -> str:
    seconds = waited.total_seconds()
    return next(label for upper, label in ACCEPT_BINS if seconds < upper)


def outcomes_by_hour(actor: Actor, *, since: datetime, until: datetime, zone) -> list[HourOutcomes]:
    """Bookings completed, cancelled or failed in each hour of the span (hours of `zone`), in
    one query. Every hour of the span is listed, empty ones too."""
    require_read(actor, Read.DISPATCH_BOARD)
    check_span(since, until)
    rows = db.session.execute(
        sa.select(BookingEvent.to_status, BookingEvent.created_at).where(
            BookingEvent.booking_id.in_(_changed_since(since)),
            BookingEvent.created_at >= since,
            BookingEvent.created_at < until,
            BookingEvent.to_status.in_(OUTCOMES),
        )
    ).all()
    hours = _hours(since, until, zone)
    counts = {hour: dict.fromkeys(OUTCOMES, 0) for hour in hours}
    for to_status, created_at in rows:
        local = created_at.astimezone(zone).replace(minute=0, second=0, microsecond=0)
        counts[local][to_status] += 1
    return [HourOutcomes(hour, counts[hour]) for hour in hours]


def _hours(since: datetime, until: datetime, zone) -> list[datetime]:
    """The starts of the hours of `zone` the span touches (a day of 23 or 25 on a change of
    clocks)."""
    first = since.astimezone(zone).replace(minute=0, second=0, microsecond=0)
    hours, at = [], first.astimezone(since.tzinfo)
    while at < until:
        hours.append(at.astimezone(zone))
        at += timedelta(hours=1)
    return hours


def jobs_per_provider(actor: Actor, *, since: datetime, until: datetime) -> list[ProviderJobs]:
    """How many jobs each provider accepted in the span, the most first, in one query."""
    require_read(actor, Read.DISPATCH_BOARD)
    check_span(since, until)
    jobs = sa.func.count().label("jobs")
    rows = db.session.execute(
        sa.select(BookingEvent.provider_id, User.name, jobs)
        .join(User, User.id == BookingEvent.provider_id)
        .where(
            BookingEvent.booking_id.in_(_changed_since(since)),
            BookingEvent.created_at >= since,
            BookingEvent.created_at < until,
            BookingEvent.action == Action.ACCEPT.value,
        )
        .group_by(BookingEvent.provider_id, User.name)
        .order_by(jobs.desc(), User.name, BookingEvent.provider_id)
    ).all()
    return [ProviderJobs(row.provider_id, row.name, row.jobs) for row in rows]


def _changed_since(since: datetime) -> sa.Select:
    """The bookings with an event at or after `since`: a booking's updated_at is its latest
    event's time."""
    return sa.select(Booking.id).where(Booking.updated_at >= since)


def _median(values: list[timedelta]) -> timedelta | None:
    return statistics.median(values) if values else None


def day_span(day: date, zone) -> tuple[datetime, datetime]:
    """A day of `zone`, from its midnight to the next (23 or 25 hours on a change of clocks),
    as UTC."""
    start = datetime.combine(day, time(), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)

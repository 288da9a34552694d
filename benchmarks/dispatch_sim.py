"""A simulated day of dispatch: the real SYSTEM dispatcher (`dispatcher.run_pass`, in a process
of its own) on an accelerated clock, while simulated customers book and simulated providers
answer offers, do the jobs and come back on duty, all through the service functions people use.

    python -m benchmarks.dispatch_sim [--db sqlite|postgresql] [--providers 200]
        [--bookings 2000] [--speed 360] [--seed 2026] ...      (make bench-dispatch)

The clock: sim_now = sim_start + real seconds elapsed × speed, read alike by both processes
(time.monotonic is the machine's). The simulated day begins at the UTC midnight after the
accounts are made. The dispatcher passes as `flask dispatch run` does: a pass at the clock's
time, then --pass-interval real seconds of rest. At the default speed (360×) the day takes four
minutes of real time; the run goes on until every booking is settled (at most --drain-hours
more). Faster, delays of the machine's grow into simulated minutes: a pass stamps each offer
with the clock's time when it makes it, but a provider who polls 0.5 s late at 600× sees it 300 s
old, as long as it has to live.

The database is new, built by the migrations: a SQLite file under benchmarks/.data/ or the
PostgreSQL database ops_bench_dispatch. Providers do every service (none recorded) and each
belongs to one behaviour class (BEHAVIOURS, written into their email: `steady-7@sim.example`).
Bookings arrive over the day along HOURLY, for the catalog's services, each with a two-hour
window two to eight hours ahead. Providers learn of offers by polling, as their phones do.

Every figure is computed afterwards from the event log (booking_events, provider_duty_events)
in plain Python (`figures`); only the passes' durations come from the dispatcher process. They
are printed with the targets' PASS/FAIL and written to benchmarks/results/dispatch_<db>.json.
"""

from __future__ import annotations

import argparse
import cProfile
import heapq
import io
import itertools
import json
import multiprocessing
import os
import pstats
import random
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import NamedTuple

import sqlalchemy as sa

from ops_portal import create_app
from ops_portal.domain.catalog import SERVICES
from ops_portal.domain.errors import DomainError
from ops_portal.domain.lifecycle import OFFERS, Action, Actor, Role, Source, Status
from ops_portal.extensions import db
from ops_portal.models import Booking, BookingEvent, Provider, ProviderDutyEvent, User
from ops_portal.services import accounts, bookings, dispatcher, duty

from . import dataset
from .__main__ import RESULTS, git, machine, verdict
from .reads import percentile

# What the dispatcher should reach (PASS/FAIL beside each; nothing fails the run).
TARGETS = {
    "expiry_lag_p95_real_s": 5.0,  # an overdue offer expires within seconds of real time
    "jobs_max_minus_min": 1,  # among providers who were equally available
}
# Bookings per hour of the day, relative: quiet at night, peaks mid-morning and early evening.
HOURLY = (1, 0.5, 0.3, 0.3, 0.5, 1, 2, 4, 7, 9, 9, 8, 7, 7, 7, 7, 8, 9, 9, 7, 5, 3, 2, 1.5)
WINDOW = timedelta(hours=2)
HOURS_AHEAD = (2, 8)  # a booking's window starts 2 to 8 hours after the request
OFFER_ACTIONS = tuple(action.value for action in OFFERS)  # as the event log spells them
OPEN = (Status.PENDING, Status.REJECTED, Status.ASSIGNED, Status.IN_PROGRESS)
EMAIL_DOMAIN = "sim.example"


@dataclass(frozen=True)
class Behaviour:
    """How a class of providers answers offers and works. The offers they neither accept nor
    reject they ignore, and those lapse."""

    name: str
    share: float  # of the providers
    accept: float  # odds, per offer
    reject: float
    answer_seconds: tuple[float, float]  # from seeing an offer to answering it (simulated);
    # equal bounds: fixed
    job_minutes: tuple[float, float]  # from accepting to completing; equal bounds: fixed
    break_minutes: float  # after automation put them off duty, they come back this much later

    @property
    def ignore(self) -> float:
        return max(0.0, 1 - self.accept - self.reject)

    def describe(self) -> str:
        low, high = self.job_minutes
        job = f"{low:g} min" if low == high else f"{low:g}–{high:g} min"
        first, last = self.answer_seconds
        answer = f"{first:g}" if first == last else f"{first:g}–{last:g}"
        return (
            f"accepts {self.accept:.0%}, rejects {self.reject:.0%}, ignores {self.ignore:.0%} "
            f"(answers in {answer} s); job {job}; back {self.break_minutes:g} min after being "
            "put off duty"
        )


BEHAVIOURS = (
    # Equally available by construction: the same answer time and the same job length.
    Behaviour("steady", 0.60, 1.00, 0.00, (45, 45), (45, 45), 30),
    Behaviour("choosy", 0.25, 0.70, 0.30, (30, 180), (30, 75), 30),
    Behaviour("flaky", 0.15, 0.55, 0.05, (60, 240), (30, 90), 45),
)
# Whose jobs are compared for fairness: one behaviour and one job duration; among them, only
# those on duty all day (no duty change in the log).
EQUALLY_AVAILABLE = "steady"


@dataclass(frozen=True)
class Settings:
    providers: int = 200
    customers: int = 500
    bookings: int = 2_000
    hours: int = 24  # bookings arrive over this many hours from midnight
    speed: float = 360.0  # simulated seconds per real second: the day in four minutes
    pass_interval: float = 0.25  # real seconds of rest after each pass
    poll_interval: float = 0.05  # real seconds between the providers' looks at their offers
    offer_timeout: int = 300  # simulated seconds (OFFER_TIMEOUT_SECONDS)
    lapses_before_off_duty: int = 3
    drain_hours: float = 3.0  # after the day, until every booking is settled, at most
    seed: int = 2026
    behaviours: tuple[Behaviour, ...] = BEHAVIOURS
    fair_class: str = EQUALLY_AVAILABLE


@dataclass(frozen=True)
class Clock:
    """Simulated time: `start` when time.monotonic() read `real_start`, then `speed` times as
    fast."""

    start: datetime
    real_start: float
    speed: float

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self.real_start) * self.speed)

    def real_at(self, when: datetime) -> float:
        return self.real_start + (when - self.start).total_seconds() / self.speed


# ---------------------------------------------------------------------------------- the dispatcher


def run_dispatcher(config: dict, interval: float, profile: str | None, channels) -> None:
    """The dispatcher's process: passes as `flask dispatch run` makes them, on the simulated
    clock, which arrives once this process is ready; until told to stop, then what it did."""
    ready, clocks, stop, results = channels
    app = create_app(config)
    passes, tally = [], Counter()
    profiler = cProfile.Profile() if profile else None
    with app.app_context():
        db.session.execute(sa.select(1))  # connected before the clock starts
        db.session.remove()
        ready.set()
        clock = clocks.get()
        while not stop.is_set():
            began = time.perf_counter()
            if profiler:
                profiler.enable()
            summary = dispatcher.run_pass(clock.now(), clock=clock.now)
            db.session.remove()  # as `dispatch run`: no session held between passes
            if profiler:
                profiler.disable()
            passes.append(round((time.perf_counter() - began) * 1000, 2))
            for what in ("expired", "offered", "failed", "skipped"):
                tally[what] += len(getattr(summary, what))
            stop.wait(interval)
    if profiler:
        profiler.dump_stats(profile)
    results.put(
        {"pass_ms": passes, **{k: tally[k] for k in ("expired", "offered", "failed", "skipped")}}
    )


# ---------------------------------------------------------------------------------- the people


class Arrival(NamedTuple):
    at: timedelta  # after the day's start
    customer: int  # an index into the customers
    service: str
    hours_ahead: float


def plan_arrivals(settings: Settings, rng: random.Random) -> list[Arrival]:
    """The day's bookings, in order of arrival: an hour drawn along HOURLY, a moment in it."""
    hours = range(settings.hours)
    weights = [HOURLY[hour % 24] for hour in hours]
    arrivals = [
        Arrival(
            timedelta(hours=hour + rng.random()),
            rng.randrange(settings.customers),
            rng.choice(SERVICES),
            rng.uniform(*HOURS_AHEAD),
        )
        for hour in rng.choices(hours, weights, k=settings.bookings)
    ]
    return sorted(arrivals)


def class_counts(settings: Settings) -> dict[str, int]:
    """Providers per behaviour: each its share, rounded; the last takes what is left."""
    counts = {b.name: round(b.share * settings.providers) for b in settings.behaviours[:-1]}
    counts[settings.behaviours[-1].name] = settings.providers - sum(counts.values())
    return counts


def create_people(settings: Settings, rng: random.Random) -> tuple[dict[int, str], list[int]]:
    """The providers (by id: their behaviour's name) and the customers' ids, through the
    accounts service. No passwords: nobody logs in."""
    names = [name for name, n in class_counts(settings).items() for _ in range(n)]
    rng.shuffle(names)  # the classes interleave in the order of creation (first idle first)
    people = [
        accounts.validate_new_user(f"{name}-{i}@{EMAIL_DOMAIN}", f"{name} {i}", Role.PROVIDER)
        for i, name in enumerate(names)
    ] + [
        accounts.validate_new_user(f"customer-{i}@{EMAIL_DOMAIN}", f"Customer {i}", Role.CUSTOMER)
        for i in range(settings.customers)
    ]
    created = accounts.create_users(people, with_tokens=False)
    providers = {
        user.id: name for (user, _), name in zip(created[: len(names)], names, strict=True)
    }
    customers = [user.id for user, _ in created[len(names) :]]
    return providers, customers


def provider_classes() -> dict[int, str]:
    """Each provider's behaviour, read back from their email."""
    rows = db.session.execute(
        sa.select(User.id, User.email).where(User.role == Role.PROVIDER).order_by(User.id)
    )
    return {row.id: row.email.split("-", 1)[0] for row in rows}


# ---------------------------------------------------------------------------------- the simulation


class Simulation:
    """Customers and providers acting at simulated times (a queue of what is due), in this
    process; the dispatcher works beside them in its own."""

    def __init__(self, settings, clock, providers, customers, rng):
        self.settings, self.clock, self.rng = settings, clock, rng
        self.behaviour = {
            provider: next(b for b in settings.behaviours if b.name == name)
            for provider, name in providers.items()
        }
        self.customers = customers
        self.queue: list[tuple] = []
        self.sequence = itertools.count()
        self.seen_offers: set[tuple] = set()
        self.on_break: set[int] = set()
        self.arrivals_left = 0
        # The simulator's own bookkeeping: whether it kept up, and what it saw; no figure of
        # the report is computed from it.
        self.lateness_ms: list[float] = []
        self.offer_age_s: list[float] = []  # simulated: how old an offer was when first seen
        self.counts = Counter()

    def at(self, when: datetime, act, *args) -> None:
        heapq.heappush(self.queue, (when, next(self.sequence), act, args))

    def run(self, arrivals: list[Arrival], dispatcher_process) -> bool:
        """Until every booking has arrived and is settled, or the drain ends; whether all
        were settled."""
        settings, clock = self.settings, self.clock
        for arrival in arrivals:
            self.at(clock.start + arrival.at, self.book, arrival)
        self.arrivals_left = len(arrivals)
        end = clock.start + timedelta(hours=settings.hours + settings.drain_hours)
        next_look = 0.0
        while True:
            if time.monotonic() >= next_look:
                if dispatcher_process.exitcode is not None:
                    raise RuntimeError(
                        f"the dispatcher's process ended with {dispatcher_process.exitcode}"
                    )
                unsettled = self.look()
                next_look = time.monotonic() + settings.poll_interval
                if not self.arrivals_left and not unsettled:
                    return True
                if clock.now() >= end:
                    return False
            while self.queue and self.queue[0][0] <= clock.now():
                when, _, act, args = heapq.heappop(self.queue)
                self.lateness_ms.append((time.monotonic() - clock.real_at(when)) * 1000)
                act(*args)
                db.session.rollback()  # each act reads afresh
            due = clock.real_at(self.queue[0][0]) if self.queue else next_look
            pause = min(due, next_look) - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # until the next act or look is due

    def look(self) -> int:
        """What the providers' phones show: new offers (each answered or ignored by the odds of
        its provider's behaviour) and being off duty (back after a break). Returns how many
        bookings are not yet settled."""
        now = self.clock.now()
        offers = db.session.execute(
            sa.select(Booking.id, Booking.provider_id, Booking.version, Booking.offer_expires_at)
            .where(Booking.status == Status.ASSIGNED)
            .order_by(Booking.id)
        ).all()
        for offer in offers:
            key = (offer.id, offer.offer_expires_at)
            if key not in self.seen_offers:
                self.seen_offers.add(key)
                offered_at = offer.offer_expires_at - timedelta(seconds=self.settings.offer_timeout)
                self.offer_age_s.append((now - offered_at).total_seconds())
                self.consider(offer, now)
        for provider_id in db.session.scalars(sa.select(Provider.id).where(~Provider.on_duty)):
            if provider_id not in self.on_break:
                self.on_break.add(provider_id)
                minutes = self.behaviour[provider_id].break_minutes
                self.at(now + timedelta(minutes=minutes), self.back_on_duty, provider_id)
        unsettled = db.session.scalar(
            sa.select(sa.func.count()).select_from(Booking).where(Booking.status.in_(OPEN))
        )
        db.session.rollback()  # no read transaction held: SQLite would keep its snapshot
        return unsettled

    def consider(self, offer, now: datetime) -> None:
        behaviour = self.behaviour[offer.provider_id]
        draw = self.rng.random()
        if draw < behaviour.accept:
            action = Action.ACCEPT
        elif draw < behaviour.accept + behaviour.reject:
            action = Action.REJECT
        else:
            self.counts["offers ignored"] += 1
            return
        when = now + timedelta(seconds=self.rng.uniform(*behaviour.answer_seconds))
        self.at(when, self.answer, offer.id, offer.provider_id, offer.version, action)

    def book(self, arrival: Arrival) -> None:
        now = self.clock.now()
        start = _next_half_hour(now + timedelta(hours=arrival.hours_ahead))
        bookings.create_booking(
            Actor(Role.CUSTOMER, self.customers[arrival.customer], Source.WEB),
            service=arrival.service,
            address=f"{1 + arrival.customer % 200} Simulation Street",
            window_start=start,
            window_end=start + WINDOW,
            now=now,
        )
        self.arrivals_left -= 1

    def answer(self, booking_id: int, provider_id: int, version: int, action: Action) -> None:
        provider = Actor(Role.PROVIDER, provider_id, Source.API)
        try:
            bookings.perform_action(
                provider,
                booking_id,
                action,
                expected_version=version,
                reason="Too far from my next job" if action is Action.REJECT else None,
                now=self.clock.now(),
            )
        except DomainError:  # the offer lapsed first
            self.counts[f"{action} too late"] += 1
            return
        if action is Action.ACCEPT:
            minutes = self.rng.uniform(*self.behaviour[provider_id].job_minutes)
            self.at(
                self.clock.now() + timedelta(minutes=minutes), self.complete, booking_id, provider
            )

    def complete(self, booking_id: int, provider: Actor) -> None:
        bookings.perform_action(provider, booking_id, Action.COMPLETE, now=self.clock.now())

    def back_on_duty(self, provider_id: int) -> None:
        provider = Actor(Role.PROVIDER, provider_id, Source.WEB)
        duty.set_duty(provider, provider_id, True, reason="Back from a break", now=self.clock.now())
        self.on_break.discard(provider_id)


def _next_half_hour(at: datetime) -> datetime:
    rounded = at.replace(minute=0, second=0, microsecond=0)
    while rounded < at:
        rounded += timedelta(minutes=30)
    return rounded


def simulate(database_url: str, settings: Settings, *, profile: str | None = None) -> dict:
    """Migrate the empty database at `database_url`, simulate the day on it, and return the
    report: the figures from its event log, the dispatcher's passes, the simulator's notes."""
    from flask_migrate import upgrade

    config = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": dataset.SECRET_KEY,
        "OFFER_TIMEOUT_SECONDS": settings.offer_timeout,
        "LAPSES_BEFORE_OFF_DUTY": settings.lapses_before_off_duty,
    }
    rng = random.Random(settings.seed)
    app = create_app(config)
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited engine
    channels = (context.Event(), context.Queue(), context.Event(), context.Queue())
    ready, clocks, stop, results = channels
    process = context.Process(
        target=run_dispatcher,
        args=(config, settings.pass_interval, profile, channels),
        name="dispatcher",
    )
    with app.app_context():
        upgrade()
        providers, customers = create_people(settings, rng)
        arrivals = plan_arrivals(settings, rng)
        # The day begins after the accounts were made: nobody is idle since before it began.
        start = (datetime.now(UTC) + timedelta(days=1)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        process.start()
        try:
            started = time.monotonic()
            while not ready.wait(timeout=0.1):  # bounded: the process dies or 120 s pass
                if process.exitcode is not None or time.monotonic() - started > 120:
                    raise RuntimeError(f"the dispatcher's process did not start: {process}")
            clock = Clock(start, time.monotonic(), settings.speed)
            clocks.put(clock)
            simulation = Simulation(settings, clock, providers, customers, rng)
            settled = simulation.run(arrivals, process)
            real_seconds = time.monotonic() - clock.real_start
            stop.set()
            passes = results.get(timeout=120)
        finally:
            stop.set()
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join()
        log_events, duty_changes = read_log()
        found = figures(
            log_events,
            duty_changes,
            provider_classes(),
            fair_class=settings.fair_class,
            offer_timeout=settings.offer_timeout,
            speed=settings.speed,
        )
        db.session.remove()
        db.engine.dispose()
    return {
        "settings": {**asdict(settings), "sim_start": start.isoformat()},
        "providers_per_class": class_counts(settings),
        "run": {"real_seconds": round(real_seconds, 1), "settled": settled},
        "figures": found,
        "dispatcher": {
            "passes": len(passes["pass_ms"]),
            "pass_ms": summary(passes["pass_ms"]),
            "offered": passes["offered"],
            "expired": passes["expired"],
            "failed": passes["failed"],
            "skipped": passes["skipped"],
        },
        "simulator": {
            "lateness_ms": summary(simulation.lateness_ms),
            "offer_age_when_seen_s": summary(simulation.offer_age_s),
            **dict(sorted(simulation.counts.items())),
        },
    }


# ---------------------------------------------------------------------------------- the figures


class LogEvent(NamedTuple):
    booking_id: int
    action: str
    provider_id: int | None
    created_at: datetime
    to_status: str
    reason: str | None


class DutyChange(NamedTuple):
    provider_id: int
    on_duty: bool
    created_at: datetime


def read_log() -> tuple[list[LogEvent], list[DutyChange]]:
    """Every booking event and duty change, in the order they were written."""
    events = db.session.execute(
        sa.select(
            BookingEvent.booking_id,
            sa.type_coerce(BookingEvent.action, sa.String),
            BookingEvent.provider_id,
            BookingEvent.created_at,
            sa.type_coerce(BookingEvent.to_status, sa.String),
            BookingEvent.reason,
        ).order_by(BookingEvent.id)
    )
    changes = db.session.execute(
        sa.select(
            ProviderDutyEvent.provider_id, ProviderDutyEvent.on_duty, ProviderDutyEvent.created_at
        ).order_by(ProviderDutyEvent.id)
    )
    return [LogEvent(*row) for row in events], [DutyChange(*row) for row in changes]


def summary(values: list[float]) -> dict:
    """How many, the least, p50, p95, mean and max of `values` (None when there are none)."""
    if not values:
        return dict.fromkeys(("count", "min", "p50", "p95", "mean", "max"))
    return {
        "count": len(values),
        "min": round(min(values), 2),
        "p50": round(percentile(values, 0.5), 2),
        "p95": round(percentile(values, 0.95), 2),
        "mean": round(sum(values) / len(values), 2),
        "max": round(max(values), 2),
    }


def gini(values: list[int]) -> float | None:
    """The Gini coefficient: 0 when all are equal, towards 1 when one has everything (the mean
    absolute difference over all pairs, over twice the mean)."""
    if not values:
        return None
    total, n = sum(values), len(values)
    if total == 0:
        return 0.0
    ordered = sorted(values)
    return sum((2 * rank - n - 1) * x for rank, x in enumerate(ordered, 1)) / (n * total)


def fairness(jobs: list[int]) -> dict:
    """How evenly jobs fell: the fewest, the most, their difference and the Gini coefficient."""
    if not jobs:
        return {"providers": 0, "min": None, "max": None, "max_minus_min": None, "gini": None}
    return {
        "providers": len(jobs),
        "min": min(jobs),
        "max": max(jobs),
        "max_minus_min": max(jobs) - min(jobs),
        "gini": round(gini(jobs), 4),
    }


def figures(
    events: list[LogEvent],
    duty_changes: list[DutyChange],
    classes: dict[int, str],
    *,
    fair_class: str,
    offer_timeout: float,
    speed: float,
) -> dict:
    """The dispatch figures of a run, from its event log alone. Times in simulated seconds;
    the expiry lag also in real seconds (simulated / speed). A job is an accepted offer.
    `classes`: every provider's behaviour; those of `fair_class` with no duty change were
    equally available."""
    chains: dict[int, list[LogEvent]] = defaultdict(list)
    for event in events:
        chains[event.booking_id].append(event)
    to_assign, to_accept, offers, lags = [], [], [], []
    final, failed_why, outcomes, jobs = Counter(), Counter(), Counter(), Counter()
    out_of_order = 0
    for chain in chains.values():
        created = chain[0].created_at
        offered_at = None
        offers.append(sum(event.action in OFFER_ACTIONS for event in chain))
        for previous, event in pairwise([None, *chain]):
            if previous is not None and event.created_at < previous.created_at:
                out_of_order += 1
            if event.action in OFFER_ACTIONS:
                if offered_at is None:
                    to_assign.append(_seconds(event.created_at - created))
                offered_at = event.created_at
            elif event.action == Action.EXPIRE_OFFER:
                deadline = offered_at + timedelta(seconds=offer_timeout)
                lags.append(_seconds(event.created_at - deadline))
            elif event.action == Action.ACCEPT:
                to_accept.append(_seconds(event.created_at - created))
                jobs[event.provider_id] += 1
            if event.action in (Action.ACCEPT, Action.REJECT, Action.EXPIRE_OFFER):
                outcomes[event.action] += 1
        last = chain[-1]
        final[last.to_status] += 1
        if last.to_status == Status.FAILED:
            failed_why[last.reason] += 1
    went_off = {change.provider_id for change in duty_changes if not change.on_duty}
    equal = [p for p, name in classes.items() if name == fair_class and p not in went_off]
    by_class = defaultdict(list)
    for provider, name in classes.items():
        by_class[name].append(jobs[provider])
    count = len(chains)
    return {
        "bookings": count,
        "final_status": dict(sorted(final.items())),
        "failed_share": round(final[Status.FAILED] / count, 4) if count else None,
        "failed_reasons": dict(failed_why.most_common()),
        "time_to_assign_s": summary(to_assign),
        "time_to_accept_s": summary(to_accept),
        "offers_per_booking": {
            "mean": round(sum(offers) / count, 3) if count else None,
            "p95": summary(offers)["p95"],
            "max": max(offers, default=None),
            "total": sum(offers),
        },
        "offer_outcomes": dict(sorted(outcomes.items())),
        "expiry_lag_s": summary(lags),
        "expiry_lag_real_s": summary([lag / speed for lag in lags]),
        "events_stamped_before_the_previous": out_of_order,
        "providers_put_off_duty": len(went_off),
        "jobs": {
            "equally_available": {"class": fair_class, **fairness([jobs[p] for p in equal])},
            "all": fairness([jobs[p] for p in classes]),
            "by_class": {name: fairness(counts) for name, counts in sorted(by_class.items())},
        },
    }


def _seconds(delta: timedelta) -> float:
    return delta.total_seconds()


# ---------------------------------------------------------------------------------- the report


def checks(report: dict) -> list[tuple[str, str, bool | None]]:
    found = report["figures"]
    lag = found["expiry_lag_real_s"]["p95"]
    spread = found["jobs"]["equally_available"]["max_minus_min"]
    return [
        (
            f"expiry lag p95 ≤ {TARGETS['expiry_lag_p95_real_s']:g} s of real time",
            "no offer lapsed" if lag is None else f"{lag:.2f} s",
            None if lag is None else lag <= TARGETS["expiry_lag_p95_real_s"],
        ),
        (
            f"jobs per equally available provider: max − min ≤ {TARGETS['jobs_max_minus_min']}",
            "nobody to compare" if spread is None else str(spread),
            None if spread is None else spread <= TARGETS["jobs_max_minus_min"],
        ),
    ]


def print_report(report: dict, db_name: str) -> None:
    s, found, passes = report["settings"], report["figures"], report["dispatcher"]
    print(
        f"\nDispatch simulation on {db_name}: {s['providers']} providers, {s['bookings']:,} "
        f"bookings over {s['hours']} h at {s['speed']:g}× (a pass, then {s['pass_interval']:g} s "
        f"of rest; offers lapse after {s['offer_timeout']} s; off duty after "
        f"{s['lapses_before_off_duty']} lapses), seed {s['seed']}"
    )
    print("Providers (every one does every service):")
    for behaviour in s["behaviours"]:
        behaviour = Behaviour(**behaviour)
        count = report["providers_per_class"][behaviour.name]
        print(f"  {behaviour.name:<8}{count:>4}  {behaviour.describe()}")
    run = report["run"]
    settled = "every booking settled" if run["settled"] else "NOT every booking settled"
    print(f"Ran {run['real_seconds']:.0f} s of real time, {passes['passes']} passes; {settled}")

    def times(name: str, stats: dict) -> str:
        if stats["p50"] is None:
            return f"  {name:<44}none"
        return (
            f"  {name:<44}p50 {stats['p50']:>7.0f} s   p95 {stats['p95']:>7.0f} s   "
            f"(simulated; {stats['count']:,})"
        )

    print("\nFrom the event log:")
    print(times("time to assign (created → first offer)", found["time_to_assign_s"]))
    print(times("time to accept (created → accept)", found["time_to_accept_s"]))
    offers = found["offers_per_booking"]
    print(
        f"  {'offers per booking':<44}mean {offers['mean']:.2f}   p95 {offers['p95']:g}   "
        f"max {offers['max']}   ({offers['total']:,} offers: {found['offer_outcomes']})"
    )
    failed = found["final_status"].get(Status.FAILED, 0)
    print(
        f"  {'FAILED':<44}{found['failed_share']:.1%} ({failed} of {found['bookings']:,})"
        + "".join(f"\n      {n} × {why}" for why, n in found["failed_reasons"].items())
    )
    lag, real = found["expiry_lag_s"], found["expiry_lag_real_s"]
    if lag["p50"] is not None:
        print(
            f"  {'expiry lag behind the deadline':<44}p50 {lag['p50']:.0f} s ({real['p50']:.2f} s "
            f"real)   p95 {lag['p95']:.0f} s ({real['p95']:.2f} s real)   max {real['max']:.2f} s "
            f"real   ({lag['count']} lapses)"
        )
    jobs = found["jobs"]
    equal, everyone = jobs["equally_available"], jobs["all"]
    if equal["providers"]:
        print(
            f"  {'jobs per equally available provider':<44}{equal['min']}–{equal['max']}: "
            f"max − min {equal['max_minus_min']}, Gini {equal['gini']:.3f}   "
            f"({equal['providers']} {equal['class']} providers on duty all day)"
        )
    print(
        f"  {'jobs per provider, all':<44}{everyone['min']}–{everyone['max']}, "
        f"Gini {everyone['gini']:.3f}   (by class: "
        + ", ".join(f"{name} {c['min']}–{c['max']}" for name, c in jobs["by_class"].items())
        + f"; {found['providers_put_off_duty']} put off duty)"
    )
    print(
        f"  {'events stamped before the one before them':<44}"
        f"{found['events_stamped_before_the_previous']}"
    )
    pass_ms = passes["pass_ms"]
    print("\nFrom the dispatcher's process:")
    print(
        f"  {'pass duration (real)':<44}p50 {pass_ms['p50']:.0f} ms   p95 {pass_ms['p95']:.0f} ms"
        f"   max {pass_ms['max']:.0f} ms   ({passes['offered']:,} offers, {passes['expired']} "
        f"expiries, {passes['failed']} failed)"
    )
    simulator = dict(report["simulator"])
    late, age = simulator.pop("lateness_ms"), simulator.pop("offer_age_when_seen_s")
    print("\nFrom the simulator's own notes (how far the acceleration distorts):")
    print(
        f"  {'acts due, run late by (real)':<44}p50 {late['p50']:.0f} ms   p95 {late['p95']:.0f} ms"
        f"   max {late['max']:.0f} ms"
    )
    if age["p50"] is not None:
        print(
            f"  {'age of an offer when its provider saw it':<44}p50 {age['p50']:.0f} s   "
            f"p95 {age['p95']:.0f} s   max {age['max']:.0f} s   (simulated; from the time "
            "it was made)"
        )
    print(f"  {simulator}")
    print("\nTargets:")
    for what, value, ok in report["checks"]:
        print(f"  {verdict(ok):<5} {what:<64} {value}")


# ---------------------------------------------------------------------------------- the command


def parse(argv) -> argparse.Namespace:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.dispatch_sim", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres-url", default=dataset.DEFAULT_POSTGRES_URL)
    for name in (
        "providers",
        "customers",
        "bookings",
        "hours",
        "speed",
        "pass_interval",
        "poll_interval",
        "offer_timeout",
        "lapses_before_off_duty",
        "drain_hours",
        "seed",
    ):
        default = getattr(defaults, name)
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    parser.add_argument("--profile", help="profile the dispatcher's passes into this file")
    parser.add_argument("--out", help="the JSON file (default benchmarks/results/dispatch_<db>)")
    return parser.parse_args(argv)


def fresh_database(args) -> str:
    """A new, empty database for the run: its URL."""
    if args.db == "sqlite":
        dataset.DATA.mkdir(exist_ok=True)
        path = dataset.DATA / "dispatch_sim.sqlite3"
        dataset.remove_sqlite(path)
        return f"sqlite:///{path}"
    return dataset.create_postgres_database(args.postgres_url, "ops_bench_dispatch")


def main(argv=None) -> None:
    args = parse(argv)
    settings = Settings(
        **{name: getattr(args, name) for name in Settings.__dataclass_fields__ if name in args}
    )
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(args),
        "git": git(),
        "db": args.db,
    }
    report.update(simulate(fresh_database(args), settings, profile=args.profile))
    report["machine"]["load_average_after"] = os.getloadavg()
    report["checks"] = checks(report)
    print_report(report, args.db)
    if args.profile:
        print_profile(args.profile)
    report["checks"] = [{"target": t, "value": v, "pass": ok} for t, v, ok in report["checks"]]
    out = Path(args.out) if args.out else RESULTS / f"dispatch_{args.db}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"\nWritten: {out}")


def print_profile(path: str, lines: int = 25) -> None:
    text = io.StringIO()
    pstats.Stats(path, stream=text).sort_stats("cumulative").print_stats(lines)
    print(f"\nThe dispatcher's passes, profiled ({path}), by cumulative time:")
    print(text.getvalue())


if __name__ == "__main__":
    main()

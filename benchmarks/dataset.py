"""Benchmark datasets: N bookings with a year of history, 2,000 providers, 20,000 customers and
one admin, on SQLite or PostgreSQL.

The schema comes only from the migrations; the rows are then bulk inserted (SQLAlchemy Core
executemany on SQLite, COPY on PostgreSQL) through that schema as it is, triggers included.
Every booking's events are a legal walk of LIFECYCLE from `create` to the booking's status,
written as the service layer would write them (who acts, which provider is involved, forced,
version = number of events, updated_at = the last event).

    python -m benchmarks.dataset --db sqlite --size 200000 [--rebuild]

Datasets are cached: SQLite files under benchmarks/.data/, PostgreSQL databases named
ops_bench_<size>; beside each, a JSON file with the logins and raw API tokens the benchmark
uses (only their hashes are in the database).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sqlite3
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from ops_portal import create_app
from ops_portal.config import normalize_database_url
from ops_portal.domain.lifecycle import ACTIVE, LIFECYCLE, Action, Role, Status
from ops_portal.extensions import db
from ops_portal.models import ApiToken, Booking, BookingEvent, Customer, Provider, User
from ops_portal.services import accounts

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
PASSWORD = "bench-pass-2026"
SECRET_KEY = "benchmark-secret"
# Bump when what the generator writes changes: cached datasets of another format are rebuilt.
FORMAT = 2

# The open lanes hold the same bookings at every size (scaled down only below 2,000 bookings),
# so pages that show them render the same content and a large/small ratio measures the growth
# of the history alone.
OPEN_LANES = {
    Status.PENDING: 250,
    Status.REJECTED: 100,
    Status.ASSIGNED: 200,
    Status.IN_PROGRESS: 200,
}
FAILED_SHARE = 0.02  # failed bookings accumulate over the history
CANCELLED_SHARE = 0.10  # the rest of the history is COMPLETED
FORCED_SHARE = 0.05  # of ASSIGNED: force-assigned, which may double-book a provider
INACTIVE_SHARE = 0.02  # of providers: no longer assignable, holding no active work
CUSTOMER_BOOKINGS = 200  # the customer the benchmark logs in as
PROVIDER_HISTORY = 40  # completed jobs of the provider the benchmark logs in as

SERVICES = [
    "Plumbing",
    "Cleaning",
    "Window cleaning",
    "Electrical",
    "Gardening",
    "Painting",
    "Carpentry",
    "Appliance repair",
    "Locksmith",
    "Pest control",
]
STREETS = [
    "Mill Lane",
    "High Street",
    "Station Road",
    "Church Road",
    "Park Avenue",
    "Harbour Street",
    "Orchard Road",
    "Kings Court",
    "Elm Close",
    "Quay Side",
    "Victoria Road",
    "Green Lane",
]
FIRST_NAMES = [
    "Zoë", "Ünal", "José", "Anaïs", "Björn", "Chloé", "Łukasz", "Søren", "Maëlle", "Ana",
    "Ben", "Carla", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jamal", "Kate",
    "Liam", "Mia", "Noah", "Olga", "Priya", "Ravi", "Sara", "Tom", "Uma", "Wei", "Yusuf",
]  # fmt: skip
SURNAMES = [
    "Müller", "García", "Núñez", "Øster", "Kowalczyk", "Çelik", "Dvořák", "Smith", "Jones",
    "Taylor", "Brown", "Wilson", "Evans", "Patel", "Khan", "Lee", "Walker", "Wright", "Green",
    "Hall", "Wood", "Clarke", "Hughes", "Ward", "Baker", "Moore", "Young", "King", "Scott",
    "Turner", "Hill", "Adams",
]  # fmt: skip
# One customer has it, so an archive search for it finds a handful of bookings.
RARE_SURNAME = "Quennell"
NOTES = ["", "", "", "Side gate is open.", "Ring twice, please.", "Dog in the garden."]
REASONS = {
    Action.REJECT: "Too far from my current job",
    Action.FORCE_ASSIGN: "Only specialist available today",
    Action.FORCE_CANCEL: "Duplicate of another request",
    Action.MARK_FAILED: "Customer unreachable at the address",
}

A = Action
# How bookings reach each status (the actions after `create`), with weights: about 5 events a
# booking overall.
PATHS: dict[str, list[tuple[float, tuple[Action, ...]]]] = {
    Status.COMPLETED: [
        (0.40, (A.ASSIGN, A.ACCEPT, A.COMPLETE)),
        (0.05, (A.FORCE_ASSIGN, A.ACCEPT, A.COMPLETE)),
        (0.25, (A.ASSIGN, A.REJECT, A.ASSIGN, A.ACCEPT, A.COMPLETE)),
        (0.05, (A.ASSIGN, A.REJECT, A.FORCE_ASSIGN, A.ACCEPT, A.COMPLETE)),
        (0.05, (A.MARK_FAILED, A.RETRY, A.ASSIGN, A.ACCEPT, A.COMPLETE)),
        (0.15, (A.ASSIGN, A.REJECT, A.RETRY, A.ASSIGN, A.ACCEPT, A.COMPLETE)),
        (0.05, (A.ASSIGN, A.REJECT, A.ASSIGN, A.REJECT, A.ASSIGN, A.ACCEPT, A.COMPLETE)),
    ],
    Status.CANCELLED: [
        (0.35, (A.CANCEL,)),
        (0.25, (A.ASSIGN, A.CANCEL)),
        (0.15, (A.ASSIGN, A.REJECT, A.CANCEL)),
        (0.15, (A.ASSIGN, A.ACCEPT, A.FORCE_CANCEL)),
        (0.05, (A.FORCE_CANCEL,)),
        (0.05, (A.MARK_FAILED, A.FORCE_CANCEL)),
    ],
    Status.FAILED: [
        (0.3, (A.MARK_FAILED,)),
        (0.3, (A.ASSIGN, A.MARK_FAILED)),
        (0.3, (A.ASSIGN, A.ACCEPT, A.MARK_FAILED)),
        (0.1, (A.ASSIGN, A.REJECT, A.MARK_FAILED)),
    ],
    Status.PENDING: [
        (0.6, ()),
        (0.3, (A.ASSIGN, A.REJECT, A.RETRY)),
        (0.1, (A.MARK_FAILED, A.RETRY)),
    ],
    Status.REJECTED: [(0.8, (A.ASSIGN, A.REJECT)), (0.2, (A.ASSIGN, A.REJECT, A.ASSIGN, A.REJECT))],
    Status.ASSIGNED: [(0.8, (A.ASSIGN,)), (0.2, (A.ASSIGN, A.REJECT, A.ASSIGN))],
    Status.IN_PROGRESS: [
        (0.85, (A.ASSIGN, A.ACCEPT)),
        (0.15, (A.ASSIGN, A.REJECT, A.ASSIGN, A.ACCEPT)),
    ],
    "FORCED": [(0.8, (A.FORCE_ASSIGN,)), (0.2, (A.ASSIGN, A.REJECT, A.FORCE_ASSIGN))],
}
# Minutes from one event to the next, by the action of the later one.
GAPS = {
    A.ASSIGN: (5, 240),
    A.FORCE_ASSIGN: (10, 600),
    A.ACCEPT: (5, 180),
    A.REJECT: (5, 120),
    A.COMPLETE: (60, 4320),
    A.CANCEL: (10, 2880),
    A.FORCE_CANCEL: (30, 2880),
    A.MARK_FAILED: (60, 2880),
    A.RETRY: (5, 240),
}


@dataclass(frozen=True)
class Step:
    """One event of a path, as far as the lifecycle table decides it."""

    action: str
    from_status: str | None
    to_status: str
    takes_provider: bool
    releases_provider: bool
    forced: bool
    actor: Role  # CUSTOMER, PROVIDER, ADMIN, or SYSTEM for "an admin or the automation"
    reason: str | None
    minutes: tuple[int, int]  # the gap before it


def walk(path: tuple[Action, ...]) -> tuple[Step, ...]:
    """create + path as a walk of LIFECYCLE; refuses a path the table does not allow."""
    steps, current = [], None
    for action in (A.CREATE, *path):
        rule = LIFECYCLE[action]
        if action is not A.CREATE and current not in rule.sources:
            raise ValueError(f"{action} is not allowed from {current} (path {path})")
        actor = Role.SYSTEM if Role.SYSTEM in rule.roles else min(rule.roles)
        steps.append(
            Step(
                action.value,
                current and current.value,
                rule.target.value,
                rule.takes_provider,
                rule.releases_provider,
                rule.forced,
                actor,
                REASONS.get(action),
                GAPS.get(action, (0, 0)),
            )
        )
        current = rule.target
    return tuple(steps)


# Per status: its paths (walked) and their cumulative weights, for random.choices.
PATH_CHOICES = {
    status: (tuple(walk(p) for _, p in options), tuple(accumulate(w for w, _ in options)))
    for status, options in PATHS.items()
}
BOOKING_COLUMNS = (
    "id", "status", "customer_id", "provider_id", "assignment_forced", "customer_name",
    "service", "address", "window_start", "window_end", "notes", "version", "created_at",
    "updated_at",
)  # fmt: skip
EVENT_COLUMNS = (
    "id", "booking_id", "action", "from_status", "to_status", "actor_role", "actor_id",
    "provider_id", "reason", "forced", "source", "created_at",
)  # fmt: skip


@dataclass(frozen=True)
class Shape:
    bookings: int
    providers: int = 2_000
    customers: int = 20_000
    # Customer/provider pairs of their own for the throughput run's client threads.
    thread_accounts: int = 16


@dataclass
class Plan:
    """Every row to insert, and what the benchmark needs to know about them."""

    users: list[tuple]
    customers: list[tuple]
    providers: list[tuple]
    bookings: list[tuple]
    events: list[tuple]
    tokens: list[tuple]
    info: dict


class Planner:
    """Builds the rows in memory: users, then bookings with their event chains."""

    def __init__(self, shape: Shape, seed: int, now: datetime):
        self.shape, self.now = shape, now
        self.rng = random.Random(seed)
        self.users: list[tuple] = []
        self.bookings: list[tuple] = []  # BOOKING_COLUMNS but the id, given later by time
        self.events: list[tuple] = []  # (created_at, booking key, the rest of EVENT_COLUMNS)
        self.admin_id = 1
        self.recent_since = now - timedelta(days=3)

    # ------------------------------------------------------------------------------ people

    def plan_people(self, password_hash: str) -> None:
        shape, rng = self.shape, self.rng
        self.threads = min(shape.thread_accounts, shape.providers // 4, shape.customers // 4)
        created = self.now - timedelta(days=400)

        def user(email, name, role):
            self.users.append(
                (len(self.users) + 1, email, name, role, password_hash, True, 1, created)
            )
            return len(self.users)

        user("admin@bench.example", "Dana Dispatcher", Role.ADMIN.value)
        self.provider_ids, self.customer_ids, self.names = [], [], {}
        for index in range(shape.providers):
            name = {0: "Priya Plumber", 1: "Zoë Zinc"}.get(index) or self._person_name()
            self.provider_ids.append(
                user(f"provider{index}@bench.example", name, Role.PROVIDER.value)
            )
        for index in range(shape.customers):
            name = {0: "Ana Lima", 1: f"Ingrid {RARE_SURNAME}"}.get(index) or self._person_name()
            self.customer_ids.append(
                user(f"customer{index}@bench.example", name, Role.CUSTOMER.value)
            )
            self.names[self.customer_ids[-1]] = name
        self.provider = self.provider_ids[0]
        self.customer = self.customer_ids[0]
        self.rare_customer = self.customer_ids[1]
        self.thread_providers = self.provider_ids[-self.threads :] if self.threads else []
        self.thread_customers = self.customer_ids[-self.threads :] if self.threads else []
        ordinary = self.provider_ids[2 : len(self.provider_ids) - self.threads]
        inactive_count = max(1, round(INACTIVE_SHARE * shape.providers))
        self.inactive = set(rng.sample(ordinary, min(inactive_count, len(ordinary))))
        # Who a booking's history may name (also the inactive: they worked before), and who
        # may hold work now. The throughput threads' providers and customers start fresh.
        self.history_providers = [self.provider_ids[1], *ordinary]
        self.active_providers = [p for p in self.history_providers if p not in self.inactive]
        self.other_customers = self.customer_ids[2 : len(self.customer_ids) - self.threads]

    def _person_name(self) -> str:
        return f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(SURNAMES)}"

    # ------------------------------------------------------------------------------ bookings

    def counts(self) -> dict[str, int]:
        """How many bookings end in each status ("FORCED": force-assigned ASSIGNED ones)."""
        n = self.shape.bookings
        scale = min(1.0, n / 2_000)
        lanes = {status: max(1, round(count * scale)) for status, count in OPEN_LANES.items()}
        forced = max(1, round(lanes[Status.ASSIGNED] * FORCED_SHARE))
        lanes[Status.ASSIGNED] -= forced
        # One non-forced active booking per provider: the lanes are bounded by the providers
        # free to hold one (the benchmark's provider holds one IN_PROGRESS of the lane).
        free = len(self.active_providers) + 1
        while lanes[Status.ASSIGNED] + lanes[Status.IN_PROGRESS] > free:
            bigger = max((Status.ASSIGNED, Status.IN_PROGRESS), key=lanes.__getitem__)
            lanes[bigger] -= 1
        counts = {
            **lanes,
            "FORCED": forced,
            Status.FAILED: max(1, round(n * FAILED_SHARE)),
            Status.CANCELLED: max(1, round(n * CANCELLED_SHARE)),
        }
        counts[Status.COMPLETED] = n - sum(counts.values())
        if counts[Status.COMPLETED] < min(CUSTOMER_BOOKINGS, n // 10) + 3:
            raise ValueError(f"{n} bookings are too few for this shape: {counts}")
        return counts

    def plan_bookings(self) -> dict:
        rng, counts = self.rng, self.counts()
        year_ago = self.now - timedelta(days=365)
        week_ago = self.now - timedelta(days=7)
        remaining = Counter(counts)

        def take(status: str) -> str:
            remaining[status] -= 1
            return status

        # The accounts the benchmark logs in as: a customer with a long history and one
        # booking waiting, a provider with a job in progress and past jobs.
        customer_history = min(CUSTOMER_BOOKINGS, self.shape.bookings // 10) - 1
        pending = self.book(
            take(Status.PENDING),
            self.customer,
            (A.ASSIGN, A.REJECT, A.RETRY),
            self.now - timedelta(hours=20),
        )
        for index in range(customer_history):
            status = take(Status.CANCELLED if index % 10 == 9 else Status.COMPLETED)
            self.book(status, self.customer, None, _between(rng, year_ago, week_ago))
        self.book(
            take(Status.IN_PROGRESS),
            self._any_customer(),
            (A.ASSIGN, A.ACCEPT),
            self.now - timedelta(hours=3),
            provider=self.provider,
        )
        for _ in range(min(PROVIDER_HISTORY, remaining[Status.COMPLETED] // 4)):
            self.book(
                take(Status.COMPLETED),
                self._any_customer(),
                None,
                _between(rng, year_ago, week_ago),
                provider=self.provider,
            )
        for _ in range(3):
            self.book(
                take(Status.COMPLETED),
                self.rare_customer,
                None,
                _between(rng, year_ago, week_ago),
            )

        # Everything else. Each non-forced active booking has a provider of its own.
        free = list(self.active_providers)
        rng.shuffle(free)
        for status in list(remaining):
            for _ in range(remaining[status]):
                provider = None
                if status in ACTIVE:
                    provider = free.pop()
                elif status == "FORCED":
                    provider = rng.choice(self.active_providers)
                if status in OPEN_LANES or status == "FORCED":
                    start = _between(rng, self.now - timedelta(days=2), self.now)
                else:
                    # Finished work happens every day of the year, so the archive's newest
                    # page holds the same mix of outcomes at any size.
                    start = _between(rng, year_ago, self.now - timedelta(days=1))
                self.book(status, self._any_customer(), None, start, provider=provider)
            remaining[status] = 0
        return {
            "pending_booking_id": pending,  # a key until ids are given, below
            "counts": {str(status): count for status, count in counts.items()},
        }

    def _any_customer(self) -> int:
        return self.rng.choice(self.other_customers)

    def book(self, status, customer_id, path, start, *, provider=None) -> int:
        """A booking ending in `status` (or "FORCED"), along `path` (the actions after create;
        drawn from PATHS if None) with its events; returns its key. `provider` takes the last
        assignment."""
        rng, random = self.rng, self.rng.random
        if path is None:
            paths, cumulative = PATH_CHOICES[status]
            steps = rng.choices(paths, cum_weights=cumulative)[0]
        else:
            steps = walk(path)
        key = len(self.bookings)
        # Times: a gap before each step, squeezed to end before now.
        gaps = [lo + (hi - lo) * random() for lo, hi in (step.minutes for step in steps)]
        room = (self.now - start).total_seconds() / 60 - 1
        squeeze = min(1.0, room / max(sum(gaps), 1))
        times, at = [], start
        for gap in gaps:
            at += timedelta(minutes=gap * squeeze)
            times.append(at)

        recent = start > self.recent_since
        last_assign = max(i for i, step in enumerate(steps) if step.takes_provider or i == 0)
        held, forced, rejecters = None, False, set()
        for index, step in enumerate(steps):
            # The provider involved, as the service records it: the one being assigned, else
            # the one the booking held.
            involved = held
            if step.takes_provider:
                if index == last_assign and provider is not None:
                    held = provider
                else:
                    held = self._provider_besides(rejecters, recent=recent)
                involved, forced = held, step.forced
            elif step.releases_provider:
                held, forced = None, False
            if step.action == "reject":
                rejecters.add(involved)
            chance = random()
            if step.actor is Role.CUSTOMER:
                actor = ("CUSTOMER", customer_id, "web" if chance < 0.7 else "api")
            elif step.actor is Role.PROVIDER:
                actor = ("PROVIDER", involved, "web" if chance < 0.8 else "api")
            elif step.actor is Role.SYSTEM and chance < 0.5:
                actor = ("SYSTEM", None, "system")  # built-in automation: Actor.system()
            else:
                actor = ("ADMIN", self.admin_id, "web")
            self.events.append(
                (
                    times[index],
                    key,
                    step.action,
                    step.from_status,
                    step.to_status,
                    actor[0],
                    actor[1],
                    involved,
                    step.reason,
                    step.forced,
                    actor[2],
                )
            )
        current = steps[-1].to_status
        assert current == ("ASSIGNED" if status == "FORCED" else status), (status, steps)
        created = times[0]
        # A 2-hour slot between 8:00 and 18:00, one to six days after the request.
        slot = created.replace(hour=8, minute=0, second=0, microsecond=0) + timedelta(
            days=1 + int(6 * random()), hours=2 * int(5 * random())
        )
        self.bookings.append(
            (
                current,
                customer_id,
                held,
                forced,
                self.names[customer_id],
                SERVICES[int(len(SERVICES) * random())],
                f"{1 + int(199 * random())} {STREETS[int(len(STREETS) * random())]}",
                slot,
                slot + timedelta(hours=2),
                NOTES[int(len(NOTES) * random())],
                len(steps),
                created,
                times[-1],
            )
        )
        return key

    def _provider_besides(self, rejecters: set, *, recent: bool) -> int:
        pool = self.active_providers if recent else self.history_providers
        for _ in range(10):  # bounded: the pools are far larger than a booking's rejecters
            choice = pool[int(len(pool) * self.rng.random())]
            if choice not in rejecters:
                return choice
        return choice

    # ------------------------------------------------------------------------------ rows

    def plan(self, password_hash: str, stamp) -> Plan:
        """The rows, with times as `stamp` gives them to the database."""
        self.plan_people(password_hash)
        facts = self.plan_bookings()
        # Ids in the order things happened, as the app would have given them.
        order = sorted(range(len(self.bookings)), key=lambda k: self.bookings[k][-2])
        booking_id = {key: index + 1 for index, key in enumerate(order)}
        bookings = []
        for key in order:
            *row, start, end, notes, version, created, updated = self.bookings[key]
            bookings.append(
                (
                    booking_id[key],
                    *row,
                    stamp(start),
                    stamp(end),
                    notes,
                    version,
                    stamp(created),
                    stamp(updated),
                )
            )
        self.events.sort(key=lambda event: event[0])
        events = [
            (index + 1, booking_id[e[1]], *e[2:], stamp(e[0]))
            for index, e in enumerate(self.events)
        ]
        self.users = [(*user[:-1], stamp(user[-1])) for user in self.users]
        facts["pending_booking_id"] = booking_id[facts["pending_booking_id"]]
        facts["events"] = len(events)

        tokens = []

        def token(user_id):
            secret, digest = accounts.new_token()
            tokens.append((len(tokens) + 1, user_id, digest, stamp(self.now)))
            return secret

        def login(user_id):
            email = self.users[user_id - 1][1]
            return {"id": user_id, "email": email, "token": token(user_id)}

        raw = {
            "admin": login(self.admin_id),
            "provider": login(self.provider),
            "customer": login(self.customer),
        }
        threads = [
            {
                "customer_id": customer,
                "customer_token": token(customer),
                "provider_id": provider,
                "provider_token": token(provider),
            }
            for customer, provider in zip(self.thread_customers, self.thread_providers, strict=True)
        ]
        info = {
            "format": FORMAT,
            "size": self.shape.bookings,
            "shape": asdict(self.shape),
            "password": PASSWORD,
            "accounts": raw,
            "threads": threads,
            "rare_surname": RARE_SURNAME,
            **facts,
        }
        return Plan(
            users=self.users,
            customers=[(c,) for c in self.customer_ids],
            providers=[(p, p not in self.inactive) for p in self.provider_ids],
            bookings=bookings,
            events=events,
            tokens=tokens,
            info=info,
        )


def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    return start + (end - start) * rng.random()


# ---------------------------------------------------------------------------------- writing

USER_COLUMNS = (
    "id", "email", "name", "role", "password_hash", "is_enabled", "session_version", "created_at",
)  # fmt: skip
TABLES = [
    (User.__table__, USER_COLUMNS, "users"),
    (Customer.__table__, ("id",), "customers"),
    (Provider.__table__, ("id", "active"), "providers"),
    (Booking.__table__, BOOKING_COLUMNS, "bookings"),
    (BookingEvent.__table__, EVENT_COLUMNS, "events"),
    (ApiToken.__table__, ("id", "user_id", "token_hash", "created_at"), "tokens"),
]
BATCH = 50_000


def _stamp(dialect):
    """Times as the database takes them: PostgreSQL's driver takes aware datetimes; SQLite gets
    the text SQLAlchemy stores for UTCDateTime (naive UTC), made here without the per-value
    type machinery, and checked against it once."""
    if dialect.name == "postgresql":
        return lambda value: value

    def stamp(value: datetime) -> str:
        return value.replace(tzinfo=None).isoformat(" ", "microseconds")

    column_type = Booking.__table__.c.created_at.type
    app_stamp = column_type.dialect_impl(dialect).bind_processor(dialect)
    sample = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert stamp(sample) == app_stamp(sample), (stamp(sample), app_stamp(sample))
    return stamp


def _insert(connection, table: sa.Table, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Bulk insert through the migrated schema as it is: its constraints and triggers apply."""
    if connection.dialect.name == "postgresql":
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    # SQLite: the driver's executemany into a staging table without constraints, then one
    # INSERT ... SELECT into the real table. Row by row, each execution re-evaluates the CHECK
    # constraints' value lists from scratch (twice the time for the events); as one statement
    # every row still meets every constraint, foreign key, index and trigger.
    names = ", ".join(columns)
    staged = f"temp.staged_{table.name}"
    connection.exec_driver_sql(f"CREATE TEMP TABLE staged_{table.name} ({names})")
    marks = ", ".join("?" * len(columns))
    for start in range(0, len(rows), BATCH):
        connection.exec_driver_sql(
            f"INSERT INTO {staged} VALUES ({marks})", rows[start : start + BATCH]
        )
    connection.exec_driver_sql(
        f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {staged} ORDER BY rowid"
    )
    connection.exec_driver_sql(f"DROP TABLE {staged}")


def build(database_url: str, shape: Shape, *, seed: int = 2026, info_path: Path | None = None):
    """Migrate the empty database at `database_url` and fill it; returns the dataset's info
    (also written to info_path), with the seconds each part took."""
    from flask_migrate import upgrade

    clock = Stopwatch()
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": SECRET_KEY})
    with app.app_context():
        upgrade()
        # argon2 is slow by design: one hash with the app's parameters, shared by every user.
        password_hash = accounts.password_hasher().hash(PASSWORD)
        clock.lap("migrate")
        with db.engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                # For the loading connection only, before its transaction begins: a page cache
                # that holds the indexes being built (256 MiB), staging tables in memory.
                driver = connection.connection.driver_connection
                driver.execute("PRAGMA cache_size = -262144")
                driver.execute("PRAGMA temp_store = MEMORY")
            with connection.begin():
                stamp = _stamp(connection.dialect)
                plan = Planner(shape, seed, datetime.now(UTC)).plan(password_hash, stamp)
                clock.lap("plan")
                for table, columns, attribute in TABLES:
                    _insert(connection, table, columns, getattr(plan, attribute))
                    clock.lap(table.name)
                if connection.dialect.name == "postgresql":
                    # Explicit ids leave the sequences behind: the app's next insert follows.
                    for table, *_ in TABLES:
                        if table.name not in ("customers", "providers"):
                            connection.exec_driver_sql(
                                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                f"(SELECT max(id) FROM {table.name}))"
                            )
        clock.lap("commit")
        if db.engine.dialect.name == "postgresql":
            # As a database in service would be: statistics gathered, visibility map set.
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
            clock.lap("vacuum")
        db.engine.dispose()
    info = {**plan.info, "revision": _head_revision(app), "seconds": clock.laps()}
    if info_path is not None:
        info_path.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return info


class Stopwatch:
    """Wall seconds per part, and in all; CPU seconds of this process too, since a busy
    machine stretches wall time."""

    def __init__(self):
        self.start = self.last = time.perf_counter()
        self.cpu = time.process_time()
        self.parts: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.parts[name] = round(now - self.last, 2)
        self.last = now

    def laps(self) -> dict[str, float]:
        return {
            **self.parts,
            "total": round(time.perf_counter() - self.start, 2),
            "cpu": round(time.process_time() - self.cpu, 2),
        }


def _head_revision(app) -> str:
    return ScriptDirectory(app.extensions["migrate"].directory).get_current_head()


# ---------------------------------------------------------------------------------- the cache


def postgres_database_url(server_url: str, name: str) -> str:
    url = sa.make_url(normalize_database_url(server_url)).set(database=name)
    return url.render_as_string(hide_password=False)


def _postgres_admin(server_url: str) -> sa.Engine:
    return sa.create_engine(normalize_database_url(server_url), isolation_level="AUTOCOMMIT")


def postgres_database_exists(server_url: str, name: str) -> bool:
    engine = _postgres_admin(server_url)
    with engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        ).first()
    engine.dispose()
    return found is not None


TEMPLATE_BUSY_TRIES = 50  # 0.1 s apart


def create_postgres_database(server_url: str, name: str, *, template: str | None = None) -> str:
    """A new database (dropped first if it exists); returns its URL."""
    engine = _postgres_admin(server_url)
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        suffix = f' TEMPLATE "{template}"' if template else ""
        for attempt in range(TEMPLATE_BUSY_TRIES):
            try:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"{suffix}')
                break
            except sa.exc.OperationalError as error:
                # A template may have no session: one its last user just closed may not have
                # ended yet on the server.
                if "being accessed by other users" not in str(error):
                    raise
                if attempt == TEMPLATE_BUSY_TRIES - 1:
                    raise
                time.sleep(0.1)
    engine.dispose()
    return postgres_database_url(server_url, name)


def drop_postgres_database(server_url: str, name: str) -> None:
    engine = _postgres_admin(server_url)
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engine.dispose()


@contextlib.contextmanager
def scratch_copy(url: str, name: str, *, postgres_url: str = DEFAULT_POSTGRES_URL):
    """A copy of the dataset at `url` for a benchmark that writes (the cached one stays as
    built), named `name`: a SQLite file beside it, or a PostgreSQL database made from it as a
    template on the server at `postgres_url`. Yields its URL; removed afterwards."""
    source = sa.make_url(url)
    if source.get_backend_name() == "sqlite":
        path = Path(source.database).with_name(f"{name}.sqlite3")
        remove_sqlite(path)
        with sqlite3.connect(source.database) as original:
            target = sqlite3.connect(path)
            original.backup(target)
            target.close()
        try:
            yield f"sqlite:///{path}"
        finally:
            remove_sqlite(path)
        return
    copy = create_postgres_database(postgres_url, name, template=source.database)
    try:
        yield copy
    finally:
        drop_postgres_database(postgres_url, name)


def sqlite_path(key: str | int) -> Path:
    return DATA / f"ops_bench_{key}.sqlite3"


def remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-writer"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def ensure(
    backend: str,
    size: int,
    *,
    providers: int = Shape.providers,
    postgres_url: str = DEFAULT_POSTGRES_URL,
    rebuild: bool = False,
    log=print,
) -> tuple[str, dict]:
    """The cached dataset of this size and number of providers (built if missing, stale or
    `rebuild`): its database URL and info."""
    DATA.mkdir(exist_ok=True)
    # The usual shape keeps its plain name; another number of providers is named by it.
    key = str(size) if providers == Shape.providers else f"{size}_p{providers}"
    info_path = DATA / f"{backend}-{key}.json"
    name = f"ops_bench_{key}"
    if backend == "sqlite":
        url = f"sqlite:///{sqlite_path(key)}"
        exists = sqlite_path(key).exists()
    else:
        url = postgres_database_url(postgres_url, name)
        exists = postgres_database_exists(postgres_url, name)
    info = json.loads(info_path.read_text()) if info_path.exists() else None
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET_KEY})
    fresh = (
        exists
        and info is not None
        and info.get("format") == FORMAT
        and info.get("revision") == _head_revision(app)
    )
    if fresh and not rebuild:
        log(f"{backend} {size:,} bookings, {providers:,} providers: cached")
        return url, info
    log(f"{backend} {size:,} bookings, {providers:,} providers: building ...")
    if backend == "sqlite":
        remove_sqlite(sqlite_path(key))
    else:
        create_postgres_database(postgres_url, name)
    info = build(url, Shape(size, providers=providers), info_path=info_path)
    seconds = info["seconds"]
    parts = ", ".join(f"{name} {value}" for name, value in seconds.items() if name != "total")
    log(
        f"{backend} {size:,} bookings, {info['events']:,} events: built in "
        f"{seconds['total']} s ({parts})"
    )
    return url, info


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--size", type=int, default=2_000)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args(argv)
    ensure(args.db, args.size, postgres_url=args.postgres_url, rebuild=args.rebuild)


if __name__ == "__main__":
    main()

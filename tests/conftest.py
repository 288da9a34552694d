"""Fixtures: every database test runs on SQLite and, when OPS_PORTAL_TEST_POSTGRES_URL is set
(CI sets it), on PostgreSQL too. Databases are built only through the migrations."""

from __future__ import annotations

import os
import sqlite3
import uuid
from dataclasses import dataclass
from itertools import pairwise

import pytest
import sqlalchemy as sa
from flask import Flask

from ops_portal import create_app
from ops_portal.config import normalize_database_url
from ops_portal.domain.lifecycle import Action, Actor, Role, Source, Status
from ops_portal.extensions import db, limiter

POSTGRES_URL = os.environ.get("OPS_PORTAL_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])

# Fast password hashing in tests only (production uses OWASP's argon2id parameters).
TEST_CONFIG = {
    "TESTING": True,
    "ARGON2_TIME_COST": 1,
    "ARGON2_MEMORY_COST": 1024,
    "SECRET_KEY": "test-secret-key",
}
TABLES = [
    "idempotency_keys",
    "booking_events",
    "bookings",
    "api_tokens",
    "customers",
    "providers",
    "users",
]


def make_app(database_url: str, **overrides):
    return create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, **overrides})


def migrate_to_head(database_url: str) -> None:
    from flask_migrate import upgrade

    app = make_app(database_url)
    with app.app_context():
        upgrade()
        db.engine.dispose()


def postgres_admin_url() -> str:
    return normalize_database_url(POSTGRES_URL)


def create_postgres_database(prefix: str = "ops_test") -> str:
    """A new empty database on the test server; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return sa.make_url(postgres_admin_url()).set(database=name).render_as_string(False)


def drop_postgres_database(url: str) -> None:
    name = sa.make_url(url).database
    engine = sa.create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engine.dispose()


class SqliteReset:
    """Puts the migrated template back into the session's one SQLite file before each test.

    Through SQLite's backup API, not by replacing the file: connections still open on it (the
    shared app's pool, apps a test built itself) then see the fresh contents instead of a
    replaced file beside a stale WAL."""

    def __init__(self, template, path):
        self.template = sqlite3.connect(template)
        self.url = f"sqlite:///{path}"
        self.path = path

    def __call__(self) -> str:
        target = sqlite3.connect(self.path)
        try:
            self.template.backup(target)
        finally:
            target.close()
        return self.url

    def close(self) -> None:
        self.template.close()


class PostgresReset:
    """Empties the session's PostgreSQL database before each test with one TRUNCATE on a pooled
    connection (not a new engine per test). TRUNCATE rather than DELETE: fresh heaps keep rows
    in insertion order, as in a new database, and leave no dead rows behind."""

    def __init__(self, url):
        self.url = url
        self.engine = sa.create_engine(normalize_database_url(url), pool_size=1)

    def __call__(self) -> str:
        with self.engine.begin() as conn:
            # Triggers refuse TRUNCATE of the audit trail; replica mode skips them for this reset.
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            conn.exec_driver_sql(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        return self.url

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture(scope="session")
def migrated_databases(tmp_path_factory):
    """One migrated database per backend for the session, each with a reset that brings it back
    to migrated-and-empty: a template copied into one file for SQLite, a database emptied in
    place for PostgreSQL."""
    resets = {}
    folder = tmp_path_factory.mktemp("databases")
    migrate_to_head(f"sqlite:///{folder / 'template.sqlite3'}")
    resets["sqlite"] = SqliteReset(folder / "template.sqlite3", folder / "ops_portal.sqlite3")
    pg_url = None
    if POSTGRES_URL:
        pg_url = create_postgres_database()
        migrate_to_head(pg_url)
        resets["postgresql"] = PostgresReset(pg_url)
    yield resets
    for reset in resets.values():
        reset.close()
    if pg_url:
        drop_postgres_database(pg_url)


@pytest.fixture(params=BACKENDS)
def database_url(request, migrated_databases):
    """A migrated, empty database of each backend (the session's one, reset for this test)."""
    return migrated_databases[request.param]()


@dataclass
class SharedApp:
    """One app per backend for the session (create_app costs ~50 ms, and a new engine compiles
    every SQL statement again), with what a test may change on it restored before each test."""

    app: Flask
    config: dict

    def fresh(self) -> Flask:
        app = self.app
        app.config.clear()
        app.config.update(self.config)
        app.test_client_class = None  # the `people` fixture swaps in PageClient
        app.jinja_env.bytecode_cache = None
        # create_app binds the one global limiter to the newest app with new storage, as a test's
        # own make_app(...) does; re-binding gives this test empty memory:// counts again.
        limiter.init_app(app)
        return app


@pytest.fixture(scope="session")
def shared_apps():
    apps: dict[str, SharedApp] = {}
    yield apps
    for shared in apps.values():
        with shared.app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(database_url, shared_apps):
    """The backend's shared app, as fresh as a new one: config, limiter and test client class
    restored; a new app context (g, db.session) and new database connections for this test."""
    if database_url not in shared_apps:
        made = make_app(database_url)
        shared_apps[database_url] = SharedApp(made, dict(made.config))
    app = shared_apps[database_url].fresh()
    with app.app_context():
        yield app
        db.session.remove()
        # New connections for the next test, as with a new app; the engine (and the SQL it has
        # compiled) stays.
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


# ------------------------------------------------------------------------------ people and bookings


@dataclass
class Cast:
    """The people of a lifecycle test: two customers, two providers, an admin, a system account."""

    owner: Actor
    other_customer: Actor
    provider: Actor
    other_provider: Actor
    admin: Actor
    system: Actor
    tokens: dict[str, str]

    def by_name(self, name: str) -> Actor:
        return getattr(self, name)


ACTOR_KINDS = ("owner", "other_customer", "provider", "other_provider", "admin", "system")


@pytest.fixture
def cast(app) -> Cast:
    from ops_portal.services import accounts

    people = [
        ("owner", "owner@example.com", "Olive Owner", Role.CUSTOMER),
        ("other_customer", "other@example.com", "Oscar Other", Role.CUSTOMER),
        ("provider", "pat@example.com", "Pat Provider", Role.PROVIDER),
        ("other_provider", "quinn@example.com", "Quinn Provider", Role.PROVIDER),
        ("admin", "admin@example.com", "Ada Admin", Role.ADMIN),
        ("system", "robot@example.com", "Robot", Role.SYSTEM),
    ]
    created = accounts.create_users(
        [accounts.validate_new_user(email, name, role) for _, email, name, role in people],
        with_tokens=True,
    )
    actors, tokens = {}, {}
    for (kind, _, _, role), (user, token) in zip(people, created, strict=True):
        actors[kind] = Actor(role, user.id, Source.API)
        tokens[kind] = token
    return Cast(**actors, tokens=tokens)


# How to bring a fresh booking to each status, with `cast.provider` the one involved.
PATH_TO: dict[Status, list[Action]] = {
    Status.PENDING: [],
    Status.ASSIGNED: [Action.ASSIGN],
    Status.IN_PROGRESS: [Action.ASSIGN, Action.ACCEPT],
    Status.COMPLETED: [Action.ASSIGN, Action.ACCEPT, Action.COMPLETE],
    Status.REJECTED: [Action.ASSIGN, Action.REJECT],
    Status.CANCELLED: [Action.CANCEL],
    Status.FAILED: [Action.ASSIGN, Action.MARK_FAILED],
}


def booking_in(cast: Cast, status: Status, *, provider: Actor | None = None):
    """A booking of `cast.owner` brought to `status` through the service layer."""
    from ops_portal.services import bookings

    provider = provider or cast.provider
    booking = bookings.create_booking(cast.owner, service="Leaking tap", address="1 Test St")
    for action in PATH_TO[status]:
        actor = {
            Action.ASSIGN: cast.admin,
            Action.ACCEPT: provider,
            Action.COMPLETE: provider,
            Action.REJECT: provider,
            Action.CANCEL: cast.owner,
            Action.MARK_FAILED: cast.admin,
        }[action]
        bookings.perform_action(
            actor,
            booking.id,
            action,
            provider_id=provider.user_id if action is Action.ASSIGN else None,
            reason="test reason" if action is Action.MARK_FAILED else None,
        )
    return bookings.get_booking(cast.admin, booking.id)


def assert_event_chain(booking_id: int) -> None:
    """SPEC §3: events form an unbroken chain ending at the booking's status."""
    from ops_portal.models import Booking, BookingEvent

    events = db.session.scalars(
        sa.select(BookingEvent)
        .where(BookingEvent.booking_id == booking_id)
        .order_by(BookingEvent.id)
    ).all()
    assert events, f"booking {booking_id} has no events"
    assert events[0].from_status is None and events[0].action == "create"
    for previous, event in pairwise(events):
        assert event.from_status == previous.to_status, f"chain broken at event {event.id}"
    status = db.session.scalar(sa.select(Booking.status).where(Booking.id == booking_id))
    assert events[-1].to_status == status


def booking_state(booking_id: int) -> tuple:
    """What a refused request must leave alone, read fresh from the database: status first,
    then provider, forced flag, version, updated_at, and the booking's event ids."""
    from ops_portal.models import Booking, BookingEvent

    db.session.rollback()
    row = db.session.execute(
        sa.select(
            Booking.status,
            Booking.provider_id,
            Booking.assignment_forced,
            Booking.version,
            Booking.updated_at,
        ).where(Booking.id == booking_id)
    ).one()
    event_ids = tuple(
        db.session.scalars(
            sa.select(BookingEvent.id)
            .where(BookingEvent.booking_id == booking_id)
            .order_by(BookingEvent.id)
        )
    )
    return (*row, event_ids)

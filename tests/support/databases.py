"""The databases and apps of the tests: every database test runs on SQLite and, when
OPS_PORTAL_TEST_POSTGRES_URL is set (CI sets it), on PostgreSQL too. Databases are built only
through the migrations.

Each pytest-xdist worker is a process of its own with its own session fixtures: its SQLite files
sit under its own tmp_path_factory folder and its PostgreSQL databases have random names, so
workers never share a database."""

from __future__ import annotations

import os
import sqlite3
import uuid
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from flask import Flask

from ops_portal import create_app
from ops_portal.config import normalize_database_url
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
    shared app's pool, apps a test built itself, a shared server's workers) then see the fresh
    contents instead of a replaced file beside a stale WAL."""

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
            # The rows the migrations put in, as a migrated database has them.
            conn.exec_driver_sql("INSERT INTO dispatch_settings (id, paused) VALUES (1, false)")
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

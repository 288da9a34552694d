"""The schema comes only from the migrations: an empty database migrated to head has exactly the
models' schema, with the append-only guards and the partial unique index that backs the
availability rule; it downgrades to nothing and upgrades again. On SQLite and, when
OPS_PORTAL_TEST_POSTGRES_URL is set, on PostgreSQL."""

from __future__ import annotations

import pprint
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from flask_migrate import downgrade, upgrade

import ops_portal
from ops_portal.extensions import db
from tests.support.databases import (
    BACKENDS,
    create_postgres_database,
    drop_postgres_database,
    make_app,
)

# At least these; the full table list is the models' (db.metadata), compared below.
CORE_TABLES = {"users", "api_tokens", "customers", "providers", "bookings", "booking_events"}
# Written out here rather than imported from the migration: the test states what must exist.
APPEND_ONLY_TRIGGERS = {
    "sqlite": {"booking_events_no_update", "booking_events_no_delete", "bookings_no_delete"},
    "postgresql": {
        "booking_events_no_change",
        "booking_events_no_truncate",
        "bookings_no_delete",
        "bookings_no_truncate",
    },
}


@pytest.fixture(params=BACKENDS)
def empty_database(request, tmp_path):
    """A brand-new database with nothing in it (not even alembic_version)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    url = create_postgres_database("ops_migrations")
    try:
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture
def migration_app(empty_database):
    app = make_app(empty_database)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def schema_diff(**opts) -> list:
    with db.engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts=opts), db.metadata)


def assert_no_schema_diff() -> None:
    diff = schema_diff()
    assert diff == [], "the migrations and the models disagree:\n" + pprint.pformat(diff)
    if db.engine.dialect.name == "postgresql":
        # Server defaults too. (Not on SQLite: Alembic misreads its reflected '' defaults.)
        diff = schema_diff(compare_server_default=True)
        assert diff == [], "server defaults disagree:\n" + pprint.pformat(diff)


def triggers() -> set[str]:
    with db.engine.connect() as conn:
        if db.engine.dialect.name == "postgresql":
            rows = conn.exec_driver_sql("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        else:
            rows = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        return {name for (name,) in rows}


def current_revision() -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    config = current_app.extensions["migrate"].migrate.get_config()
    return ScriptDirectory.from_config(config).get_current_head()


def assert_at_head() -> None:
    assert current_revision() == head_revision()
    tables = set(sa.inspect(db.engine).get_table_names())
    assert set(db.metadata.tables) >= CORE_TABLES
    assert tables == set(db.metadata.tables) | {"alembic_version"}
    assert_no_schema_diff()
    assert APPEND_ONLY_TRIGGERS[db.engine.dialect.name] <= triggers()
    (one_active,) = [
        index
        for index in sa.inspect(db.engine).get_indexes("bookings")
        if index["name"] == "uq_bookings_one_active_per_provider"
    ]
    # The availability backstop must stay a *partial* unique index: unique over active, non-forced
    # bookings only (a plain unique index on provider_id would forbid any booking history).
    assert one_active["unique"] and one_active["column_names"] == ["provider_id"]
    where = str(one_active["dialect_options"][f"{db.engine.dialect.name}_where"])
    assert "ASSIGNED" in where and "IN_PROGRESS" in where and "assignment_forced" in where


def test_an_empty_database_migrated_to_head_has_exactly_the_models_schema(migration_app):
    upgrade()
    assert_at_head()


def test_downgrade_to_base_leaves_no_application_schema_and_upgrade_works_again(migration_app):
    upgrade()
    downgrade(revision="base")

    assert current_revision() is None
    leftover = set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}
    assert leftover == set()
    assert triggers() == set()
    with db.engine.connect() as conn:
        if db.engine.dialect.name == "postgresql":
            functions = conn.exec_driver_sql(
                "SELECT proname FROM pg_proc WHERE proname = 'ops_portal_refuse_change'"
            ).all()
            assert functions == []
        else:
            indexes = conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            ).all()
            assert indexes == []

    upgrade()
    assert_at_head()


def test_the_app_never_creates_tables_itself():
    package = Path(ops_portal.__file__).resolve().parent
    offenders = [
        f"{path.relative_to(package.parent)}:{number}: {line.strip()}"
        for path in sorted(package.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "create_all" in line
    ]
    assert offenders == [], "the schema must come from the migrations only:\n" + "\n".join(
        offenders
    )


# ------------------------------------------------------------------ upgrades keep the data


def _rows(table: str) -> list[tuple]:
    with db.engine.connect() as conn:
        return [tuple(row) for row in conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id")]


def _seed_through_the_app() -> None:
    """Users, a booking and its events, written by the app at the current revision."""
    from ops_portal.domain.lifecycle import Action, Actor, Role, Source
    from ops_portal.services import accounts, bookings

    (owner, _), (provider, _), (admin, _) = (
        accounts.create_user(f"{role.lower()}@example.com", role.title(), role, with_token=False)
        for role in (Role.CUSTOMER, Role.PROVIDER, Role.ADMIN)
    )
    booking = bookings.create_booking(Actor(Role.CUSTOMER, owner.id, Source.WEB), service="Tap")
    dispatcher = Actor(Role.ADMIN, admin.id, Source.WEB)
    bookings.perform_action(dispatcher, booking.id, Action.ASSIGN, provider_id=provider.id)
    bookings.perform_action(Actor(Role.PROVIDER, provider.id), booking.id, Action.REJECT)


def test_upgrading_from_0002_keeps_every_row_and_the_append_only_guards(migration_app):
    upgrade(revision="0002")
    _seed_through_the_app()
    db.session.remove()
    before = {table: _rows(table) for table in ("users", "bookings", "booking_events")}
    assert [row[2] for row in before["booking_events"]] == ["create", "assign", "reject"]

    upgrade()

    assert {table: _rows(table) for table in before} == before
    assert_at_head()
    with db.engine.connect() as conn:
        for statement in ("UPDATE booking_events SET reason = 'x'", "DELETE FROM booking_events"):
            with pytest.raises(sa.exc.DBAPIError, match=r"append-only|not allowed"):
                conn.exec_driver_sql(statement)
            conn.rollback()
        # The new constraints hold: an unknown action cannot be written, even bypassing the app.
        with pytest.raises(sa.exc.IntegrityError):
            conn.exec_driver_sql(
                "INSERT INTO booking_events (booking_id, action, from_status, to_status, "
                "actor_role, forced, source, created_at) VALUES "
                "(1, 'teleport', 'PENDING', 'ASSIGNED', 'ADMIN', false, 'web', CURRENT_TIMESTAMP)"
            )
        conn.rollback()

    downgrade(revision="0002")
    assert {table: _rows(table) for table in before} == before
    assert APPEND_ONLY_TRIGGERS[db.engine.dialect.name] <= triggers()

"""The schema comes only from the migrations: an empty database migrated to head has exactly the
models' schema, with the append-only guards, the partial unique index that backs the
availability rule and the search index; it downgrades to nothing and upgrades again. On SQLite
and, when OPS_PORTAL_TEST_POSTGRES_URL is set, on PostgreSQL."""

from __future__ import annotations

import pprint
from datetime import UTC, datetime, timedelta
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
from ops_portal.services.search import INDEX_OBJECTS, not_an_index_object
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
# Migration 0007's guards of the duty log.
DUTY_TRIGGERS = {
    "sqlite": {"provider_duty_events_no_update", "provider_duty_events_no_delete"},
    "postgresql": {"provider_duty_events_no_change", "provider_duty_events_no_truncate"},
}
# Migration 0010's notifications of appended changes (PostgreSQL's; SQLite's listener polls).
NOTIFY_TRIGGERS = {
    "sqlite": set(),
    "postgresql": {"booking_events_notify", "provider_duty_events_notify"},
}
# The search index of migration 0004: SQLite's FTS5 table (with the shadow tables FTS5 makes for
# it) and the triggers that keep it in step; PostgreSQL's folded search text of each booking,
# its trigram index, and the functions and triggers that write it.
SEARCH_TABLES = {
    "sqlite": {
        "booking_search",
        "booking_search_config",
        "booking_search_content",
        "booking_search_data",
        "booking_search_docsize",
        "booking_search_idx",
    },
    "postgresql": set(),
}
SEARCH_TRIGGERS = {
    "sqlite": {
        "booking_search_on_booking_insert",
        "booking_search_on_booking_update",
        "booking_search_on_user_update",
    },
    "postgresql": {"booking_search_text_on_booking_write", "booking_search_text_on_user_update"},
}
SEARCH_INDEXES = {"sqlite": set(), "postgresql": {"ix_bookings_search_text_trgm"}}
SEARCH_COLUMNS = {"sqlite": set(), "postgresql": {"search_text"}}  # of bookings
SEARCH_FUNCTIONS = {
    "sqlite": set(),
    "postgresql": {
        "ops_portal_fold",
        "ops_portal_booking_search_text",
        "ops_portal_reindex_user_bookings",
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
    # The search index is the migrations' alone (no model can describe an FTS5 table or an index
    # on a function of a column): left out by name, and checked on its own in assert_at_head.
    opts = {"include_object": not_an_index_object, **opts}
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


def search_objects() -> dict[str, set[str]]:
    """The search index's tables, columns, triggers, indexes and functions that exist."""
    inspector = sa.inspect(db.engine)
    tables = set(inspector.get_table_names())
    columns = (
        {c["name"] for c in inspector.get_columns("bookings")} if "bookings" in tables else set()
    )
    with db.engine.connect() as conn:
        if db.engine.dialect.name == "postgresql":
            indexes = conn.exec_driver_sql("SELECT indexname FROM pg_indexes")
            functions = conn.exec_driver_sql(
                "SELECT proname FROM pg_proc WHERE starts_with(proname, 'ops_portal_')"
            )
            extensions = conn.exec_driver_sql(
                "SELECT extname FROM pg_extension WHERE extname IN ('pg_trgm', 'unaccent')"
            )
        else:
            indexes = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")
            functions = extensions = []
        found = {
            "tables": tables & SEARCH_TABLES["sqlite"],
            "columns": columns & SEARCH_COLUMNS["postgresql"],
            "triggers": triggers() & (SEARCH_TRIGGERS["sqlite"] | SEARCH_TRIGGERS["postgresql"]),
            "indexes": {name for (name,) in indexes} & SEARCH_INDEXES["postgresql"],
            "functions": {name for (name,) in functions}
            - {"ops_portal_refuse_change", "ops_portal_notify_change"},
            "extensions": {name for (name,) in extensions},
        }
    return found


def expected_search_objects() -> dict[str, set[str]]:
    dialect = db.engine.dialect.name
    postgres = dialect == "postgresql"
    return {
        "tables": SEARCH_TABLES[dialect],
        "columns": SEARCH_COLUMNS[dialect],
        "triggers": SEARCH_TRIGGERS[dialect],
        "indexes": SEARCH_INDEXES[dialect],
        "functions": SEARCH_FUNCTIONS[dialect],
        "extensions": {"pg_trgm", "unaccent"} if postgres else set(),
    }


NO_SEARCH_OBJECTS = {
    kind: set() for kind in ("tables", "columns", "triggers", "indexes", "functions", "extensions")
}


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
    search_tables = SEARCH_TABLES[db.engine.dialect.name]
    assert tables == set(db.metadata.tables) | {"alembic_version"} | search_tables
    # What the comparison with the models leaves out is exactly the search index.
    assert {name for _, name in INDEX_OBJECTS} == (
        SEARCH_TABLES["sqlite"] | SEARCH_INDEXES["postgresql"] | SEARCH_COLUMNS["postgresql"]
    )
    assert_no_schema_diff()
    assert APPEND_ONLY_TRIGGERS[db.engine.dialect.name] <= triggers()
    assert NOTIFY_TRIGGERS[db.engine.dialect.name] <= triggers()
    # A rebuild of bookings or users by a later migration drops their triggers: then this fails.
    assert search_objects() == expected_search_objects()
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
    assert search_objects() == NO_SEARCH_OBJECTS
    with db.engine.connect() as conn:
        if db.engine.dialect.name == "postgresql":
            functions = conn.exec_driver_sql(
                "SELECT proname FROM pg_proc WHERE proname IN "
                "('ops_portal_refuse_change', 'ops_portal_notify_change')"
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


def _rows(table: str, columns: list[str] | None = None) -> list[tuple]:
    """The rows of a table, in `columns`, by default those its model has that the database has
    now (PostgreSQL's search text is not one; an older revision lacks a newer column)."""
    if columns is None:
        columns = _columns(table)
    with db.engine.connect() as conn:
        selected = ", ".join(columns)
        return [
            tuple(row)
            for row in conn.exec_driver_sql(f"SELECT {selected} FROM {table} ORDER BY id")
        ]


def _columns(table: str) -> list[str]:
    present = {column["name"] for column in sa.inspect(db.engine).get_columns(table)}
    return [c.name for c in db.metadata.tables[table].c if c.name in present]


def _insert(table: str, *rows: dict) -> None:
    """Rows written in SQL, naming their columns (every row the same ones): at an older
    revision the models (and so the app) may name columns the database does not have yet."""
    with db.engine.begin() as conn:
        conn.execute(sa.Table(table, sa.MetaData(), autoload_with=conn).insert(), list(rows))


def _seed_old_rows() -> None:
    """Users, a booking and its events as the app writes them: created, assigned, rejected."""
    now = datetime.now(UTC)
    people = ((1, "CUSTOMER"), (2, "PROVIDER"), (3, "ADMIN"))
    _insert(
        "users",
        *(
            {"id": i, "email": f"{role.lower()}@example.com", "name": role.title(), "role": role}
            | {"created_at": now}
            for i, role in people
        ),
    )
    _insert("customers", {"id": 1})
    _insert("providers", {"id": 2})
    _insert(
        "bookings",
        {"id": 1, "status": "REJECTED", "customer_id": 1, "customer_name": "Customer"}
        | {"service": "Tap", "version": 3, "created_at": now, "updated_at": now},
    )
    event = {"booking_id": 1, "source": "web", "created_at": now}
    _insert(
        "booking_events",
        event
        | {"action": "create", "from_status": None, "to_status": "PENDING"}
        | {"actor_role": "CUSTOMER", "actor_id": 1, "provider_id": None},
        event
        | {"action": "assign", "from_status": "PENDING", "to_status": "ASSIGNED"}
        | {"actor_role": "ADMIN", "actor_id": 3, "provider_id": 2},
        event
        | {"action": "reject", "from_status": "ASSIGNED", "to_status": "REJECTED"}
        | {"actor_role": "PROVIDER", "actor_id": 2, "provider_id": 2},
    )


def test_upgrading_from_0002_keeps_every_row_and_the_append_only_guards(migration_app):
    upgrade(revision="0002")
    _seed_old_rows()
    columns = {table: _columns(table) for table in ("users", "bookings", "booking_events")}
    before = {table: _rows(table) for table in columns}
    assert [row[2] for row in before["booking_events"]] == ["create", "assign", "reject"]

    upgrade()

    assert {table: _rows(table, columns[table]) for table in before} == before
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
    assert {table: _rows(table, columns[table]) for table in before} == before
    assert APPEND_ONLY_TRIGGERS[db.engine.dialect.name] <= triggers()


def test_upgrading_from_0003_indexes_the_bookings_already_there_and_downgrading_removes_it(
    migration_app,
):
    from ops_portal.domain.lifecycle import Action, Actor, Role, Source
    from ops_portal.models import Booking
    from ops_portal.services import bookings
    from ops_portal.services.search import booking_matches

    upgrade(revision="0003")
    now = datetime.now(UTC)
    people = (
        (1, "wren@example.com", "Wren Whitlock", Role.CUSTOMER),
        (2, "zoe@example.com", "Zoë Zinc", Role.PROVIDER),
        (3, "ada@example.com", "Ada Admin", Role.ADMIN),
    )
    _insert(
        "users",
        *(
            {"id": i, "email": email, "name": name, "role": role.value, "created_at": now}
            for i, email, name, role in people
        ),
    )
    _insert("customers", {"id": 1})
    _insert("providers", {"id": 2})
    booking = {"customer_id": 1, "customer_name": "Wren Whitlock", "created_at": now}
    plumbing, painting = 1, 2
    _insert(
        "bookings",
        booking
        | {"id": plumbing, "status": "PENDING", "service": "Plumbing", "version": 1}
        | {"address": "4 Mill Lane", "provider_id": None, "updated_at": now},
        booking
        | {"id": painting, "status": "ASSIGNED", "service": "Painting", "version": 2}
        | {"address": "Dock Road", "provider_id": 2, "updated_at": now},
    )
    columns = _columns("bookings")
    before = _rows("bookings")

    upgrade()

    def found(text: str) -> list[int]:
        db.session.rollback()
        return sorted(db.session.scalars(sa.select(Booking.id).where(booking_matches(text))))

    assert _rows("bookings", columns) == before
    assert found("whitlock") == found("wren@example.com") == [plumbing, painting]
    assert found("plumbing mill") == [plumbing]
    assert found("zoe") == found("dock") == [painting]
    # And kept in step from now on.
    bookings.perform_action(Actor(Role.PROVIDER, 2, Source.WEB), painting, Action.REJECT)
    assert found("zoe") == []
    db.session.remove()

    downgrade(revision="0003")

    assert current_revision() == "0003"
    assert search_objects() == NO_SEARCH_OBJECTS
    assert APPEND_ONLY_TRIGGERS[db.engine.dialect.name] <= triggers()
    assert [row[0] for row in _rows("bookings")] == [plumbing, painting]
    # Nothing left behind that a write would still reach.
    _insert(
        "bookings",
        booking
        | {"id": 3, "status": "PENDING", "service": "Tiling"}
        | {"version": 1, "updated_at": now},
    )


def test_0007_records_lapsed_offers_keeps_the_event_guards_and_guards_the_duty_log(
    migration_app,
):
    upgrade(revision="0006")
    _seed_old_rows()
    columns = {table: _columns(table) for table in ("users", "bookings", "booking_events")}
    before = {table: _rows(table) for table in columns}

    upgrade(revision="0007")

    assert {table: _rows(table, columns[table]) for table in before} == before
    dialect = db.engine.dialect.name
    assert APPEND_ONLY_TRIGGERS[dialect] | DUTY_TRIGGERS[dialect] <= triggers()
    now = datetime.now(UTC)
    lapse = {"booking_id": 1, "source": "system", "created_at": now, "actor_role": "SYSTEM"}
    _insert(
        "booking_events",
        lapse | {"action": "expire-offer", "from_status": "ASSIGNED", "to_status": "REJECTED"},
    )
    _insert(
        "provider_duty_events",
        {"provider_id": 2, "on_duty": False, "actor_role": "PROVIDER", "actor_id": 2}
        | {"reason": "Lunch", "source": "web", "created_at": now},
    )
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT on_duty FROM providers").scalar() in (True, 1)
        assert conn.exec_driver_sql("SELECT paused FROM dispatch_settings").scalar() in (False, 0)
        for table in ("booking_events", "provider_duty_events"):
            with pytest.raises(sa.exc.DBAPIError, match=r"append-only|not allowed"):
                conn.exec_driver_sql(f"DELETE FROM {table}")
            conn.rollback()
        with pytest.raises(sa.exc.IntegrityError):
            conn.exec_driver_sql("INSERT INTO dispatch_settings (id, paused) VALUES (2, true)")
        conn.rollback()


def test_0009_gives_each_provider_the_time_their_work_ended_and_their_duty_changed(
    migration_app,
):
    upgrade(revision="0008")
    _seed_old_rows()  # provider 2 was assigned booking 1, then rejected it
    now = datetime.now(UTC)
    rejected, started = now + timedelta(minutes=1), now + timedelta(minutes=2)
    event = {"booking_id": 1, "source": "web", "actor_role": "PROVIDER", "actor_id": 2}
    _insert(
        "booking_events",
        event
        | {"action": "reject", "from_status": "ASSIGNED", "to_status": "REJECTED"}
        | {"provider_id": 2, "created_at": rejected},
        # Not the end of anyone's work: ignored.
        event
        | {"action": "accept", "from_status": "ASSIGNED", "to_status": "IN_PROGRESS"}
        | {"provider_id": 2, "created_at": started},
    )
    joined = {"name": "Later", "role": "PROVIDER", "created_at": now - timedelta(days=1)}
    _insert(
        "users",
        joined | {"id": 4, "email": "duty@example.com"},
        joined | {"id": 5, "email": "new@example.com"},
    )
    _insert("providers", {"id": 4}, {"id": 5})
    duty = {"provider_id": 4, "actor_role": "PROVIDER", "actor_id": 4, "source": "web"}
    _insert(
        "provider_duty_events",
        duty | {"on_duty": False, "reason": "Lunch", "created_at": now - timedelta(hours=2)},
        duty | {"on_duty": True, "reason": None, "created_at": now - timedelta(hours=1)},
    )

    upgrade(revision="0009")

    with db.engine.connect() as conn:
        since = {
            row.id: (_utc(row.idle_since), _utc(row.duty_since))
            for row in conn.exec_driver_sql("SELECT id, idle_since, duty_since FROM providers")
        }
    assert since == {
        2: (rejected, None),
        4: (now - timedelta(hours=1), now - timedelta(hours=1)),
        5: (now - timedelta(days=1), None),
    }


def _utc(value):
    """A driver's datetime as an aware UTC one (SQLite's come back as text without a zone)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

"""archive search through an index: SQLite's FTS5, PostgreSQL's trigram indexes on folded text

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08 10:00:00

ops_portal/services/search.py finds a booking by its customer's name (as on the booking), its
customer's email, its service, its address and its current provider's name, case and diacritics
ignored.

SQLite: the FTS5 table booking_search holds those five texts, one row per booking, its rowid the
booking's id; it is filled from the existing bookings here and kept in step by triggers on
bookings (insert; a change of customer, customer name, service, address or provider) and on
users (a change of name or email re-indexes the bookings that user is the customer or the
provider of). A table rebuild (batch_alter_table on SQLite) drops the rebuilt table's triggers:
a later migration that rebuilds bookings or users must create their search triggers again (and
the append-only guard bookings_no_delete), or the index silently stops following changes
(tests/test_migrations.py checks that they exist at head).

PostgreSQL: GIN trigram indexes (pg_trgm) on ops_portal_fold() of the same columns, so that
`ops_portal_fold(column) LIKE '%word%'` is an index scan. ops_portal_fold is lower(unaccent()).
unaccent() is only STABLE, and an index expression must be IMMUTABLE, so ops_portal_fold is
declared IMMUTABLE; it calls the two-argument unaccent() with the dictionary named with its
schema, because the one-argument form finds its dictionary through search_path, which is empty
while pg_restore rebuilds indexes. Its body is SQL-standard (RETURN ...), parsed when created,
so PostgreSQL records that it depends on unaccent (needs PostgreSQL 14). Both extensions are
trusted: the database owner may create them (the contrib modules must be installed).
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# --------------------------------------------------------------------------------------- SQLite

SEARCH_COLUMNS = "customer_name, customer_email, service, address, provider_name"
# One booking's row of the index, from a booking row named `b` (new.* in the triggers).
SEARCH_ROW = """
    {b}.id,
    {b}.customer_name,
    coalesce((SELECT email FROM users WHERE id = {b}.customer_id), ''),
    {b}.service,
    {b}.address,
    coalesce((SELECT name FROM users WHERE id = {b}.provider_id), '')
"""
INDEXED_BOOKING_COLUMNS = ("customer_id", "customer_name", "service", "address", "provider_id")
SQLITE_TRIGGERS = {
    "booking_search_on_booking_insert": f"""
        AFTER INSERT ON bookings
        BEGIN
            INSERT INTO booking_search (rowid, {SEARCH_COLUMNS})
            VALUES ({SEARCH_ROW.format(b="new")});
        END
    """,
    "booking_search_on_booking_update": f"""
        AFTER UPDATE OF {", ".join(INDEXED_BOOKING_COLUMNS)} ON bookings
        WHEN {" OR ".join(f"old.{c} IS NOT new.{c}" for c in INDEXED_BOOKING_COLUMNS)}
        BEGIN
            DELETE FROM booking_search WHERE rowid = old.id;
            INSERT INTO booking_search (rowid, {SEARCH_COLUMNS})
            VALUES ({SEARCH_ROW.format(b="new")});
        END
    """,
    "booking_search_on_user_update": """
        AFTER UPDATE OF name, email ON users
        WHEN old.name IS NOT new.name OR old.email IS NOT new.email
        BEGIN
            UPDATE booking_search SET customer_email = new.email
            WHERE old.email IS NOT new.email
              AND rowid IN (SELECT id FROM bookings WHERE customer_id = new.id);
            UPDATE booking_search SET provider_name = new.name
            WHERE old.name IS NOT new.name
              AND rowid IN (SELECT id FROM bookings WHERE provider_id = new.id);
        END
    """,
}

# ----------------------------------------------------------------------------------- PostgreSQL

EXTENSIONS = ("pg_trgm", "unaccent")
FOLDED_TRIGRAM_INDEXES = {
    "ix_bookings_customer_name_folded_trgm": ("bookings", "customer_name"),
    "ix_bookings_service_folded_trgm": ("bookings", "service"),
    "ix_bookings_address_folded_trgm": ("bookings", "address"),
    "ix_users_name_folded_trgm": ("users", "name"),
    "ix_users_email_folded_trgm": ("users", "email"),
}


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        _create_postgres_search()
    else:
        _create_sqlite_search()


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        _drop_postgres_search()
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS booking_search")  # and FTS5's shadow tables with it


def _create_sqlite_search():
    op.execute(
        f"CREATE VIRTUAL TABLE booking_search USING fts5({SEARCH_COLUMNS}, "
        "tokenize = 'unicode61 remove_diacritics 2')"
    )
    op.execute(
        f"INSERT INTO booking_search (rowid, {SEARCH_COLUMNS}) "
        f"SELECT {SEARCH_ROW.format(b='bookings')} FROM bookings"
    )
    for name, definition in SQLITE_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {definition}")


def _create_postgres_search():
    for extension in EXTENSIONS:
        op.execute(f"CREATE EXTENSION IF NOT EXISTS {extension}")
    # Wherever the extensions live (the first schema of search_path when created here), named
    # with their schema, so nothing depends on the search_path of whoever runs a query.
    trgm, unaccent = (_extension_schema(extension) for extension in EXTENSIONS)
    op.execute(
        "CREATE FUNCTION ops_portal_fold(text) RETURNS text "
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT "
        f"RETURN lower({unaccent}.unaccent('{unaccent}.unaccent'::regdictionary, $1))"
    )
    # fastupdate off: a write updates the index itself instead of a pending list that every
    # search then reads through until the next vacuum (a 4 MB list made a rare word's search
    # 20 ms instead of 3).
    for name, (table, column) in FOLDED_TRIGRAM_INDEXES.items():
        op.execute(
            f"CREATE INDEX {name} ON {table} "
            f"USING gin (ops_portal_fold({column}) {trgm}.gin_trgm_ops) WITH (fastupdate = off)"
        )


def _drop_postgres_search():
    for name in FOLDED_TRIGRAM_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute("DROP FUNCTION IF EXISTS ops_portal_fold(text)")
    # The extensions go too, unless something else in the database still depends on them (then
    # DROP refuses, and they stay for it).
    for extension in EXTENSIONS:
        op.execute(
            f"""
            DO $$
            BEGIN
                DROP EXTENSION IF EXISTS {extension};
            EXCEPTION WHEN dependent_objects_still_exist THEN
                RAISE NOTICE 'extension {extension} kept: other objects depend on it';
            END
            $$
            """
        )


def _extension_schema(extension: str) -> str:
    schema = sa.text(
        "SELECT quote_ident(n.nspname) FROM pg_extension e "
        "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = :extension"
    )
    return op.get_bind().scalar(schema, {"extension": extension})

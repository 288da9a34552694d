"""archive search through an index: SQLite's FTS5, PostgreSQL's trigram index on folded text

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

PostgreSQL: the column bookings.search_text holds those five texts, folded (ops_portal_fold:
lower(unaccent())) and one a line, and one GIN trigram index (pg_trgm) on it makes
`search_text LIKE '%word%'` an index scan. A column of the bookings rather than a table beside
them: a search is read together with the booking's status and its place in the list's order,
so a page walks the order's index checking each booking's text, and a count filters one table.
A BEFORE trigger writes it whenever a booking is inserted or one of the columns it comes from
(or search_text itself) is set; a trigger on users sets it again on the bookings whose
customer's email or provider's name changed. Written once, the folded text is compared as it
is: folding each candidate row while searching cost ~1.5 us a call. No model names the column:
the application never reads it (services/search.py refers to it by name).

ops_portal_fold folds the words searched for too. It is declared IMMUTABLE (unaccent() is only
STABLE) so that the planner folds a word while planning and estimates from the column's
statistics how many bookings it finds. It calls the two-argument unaccent() with the dictionary
named with its schema: the one-argument form finds its dictionary through the caller's
search_path. Its body is SQL-standard (RETURN ...), parsed when created, so PostgreSQL records
that it depends on unaccent (needs PostgreSQL 14). Both extensions are trusted: the database
owner may create them (the contrib modules must be installed). The triggers run as whoever
writes, so the application's role needs no grant beyond those it has (SELECT and UPDATE of
bookings and users).
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
SEARCH_TEXT_INDEX = "ix_bookings_search_text_trgm"
# A booking's search text is built from these of its columns (and its customer's email and its
# provider's name, through customer_id and provider_id); setting search_text itself builds it
# again, so no UPDATE can leave another text there.
SEARCH_TEXT_SOURCES = ("customer_id", "customer_name", "service", "address", "provider_id")
POSTGRES_FUNCTIONS = {
    # NEW.search_text from the booking and the users it names. A user newly named by the
    # booking (an insert, or a new customer or provider) is read FOR SHARE: that waits for a
    # transaction renaming them to commit, and then reads the new name. Without it, the rename's
    # trigger (which only finds the bookings that name the user in its snapshot) and this one
    # would each miss the other's change, and the booking would keep the old name. A user the
    # booking already named needs no lock: a rename's trigger updates this booking too, after
    # this write commits.
    "ops_portal_booking_search_text": """
        CREATE FUNCTION ops_portal_booking_search_text() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            customer_email text;
            provider_name text;
        BEGIN
            IF TG_OP = 'INSERT' OR NEW.customer_id IS DISTINCT FROM OLD.customer_id THEN
                SELECT email INTO customer_email FROM users WHERE id = NEW.customer_id FOR SHARE;
            ELSE
                SELECT email INTO customer_email FROM users WHERE id = NEW.customer_id;
            END IF;
            IF TG_OP = 'INSERT' OR NEW.provider_id IS DISTINCT FROM OLD.provider_id THEN
                SELECT name INTO provider_name FROM users WHERE id = NEW.provider_id FOR SHARE;
            ELSE
                SELECT name INTO provider_name FROM users WHERE id = NEW.provider_id;
            END IF;
            NEW.search_text := ops_portal_fold(concat_ws(E'\\n',
                NEW.customer_name, customer_email, NEW.service, NEW.address, provider_name));
            RETURN NEW;
        END
        $$
    """,
    # Setting search_text (to anything) makes the bookings' trigger build it again.
    "ops_portal_reindex_user_bookings": """
        CREATE FUNCTION ops_portal_reindex_user_bookings() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF OLD.email IS DISTINCT FROM NEW.email THEN
                UPDATE bookings SET search_text = NULL WHERE customer_id = NEW.id;
            END IF;
            IF OLD.name IS DISTINCT FROM NEW.name THEN
                UPDATE bookings SET search_text = NULL WHERE provider_id = NEW.id;
            END IF;
            RETURN NULL;
        END
        $$
    """,
}
POSTGRES_TRIGGERS = {
    "booking_search_text_on_booking_write": (
        "bookings",
        f"""
        BEFORE INSERT OR UPDATE OF {", ".join(SEARCH_TEXT_SOURCES)}, search_text ON bookings
        FOR EACH ROW EXECUTE FUNCTION ops_portal_booking_search_text()
        """,
    ),
    "booking_search_text_on_user_update": (
        "users",
        """
        AFTER UPDATE OF name, email ON users FOR EACH ROW
        WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.email IS DISTINCT FROM NEW.email)
        EXECUTE FUNCTION ops_portal_reindex_user_bookings()
        """,
    ),
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
    # Adding the column locks bookings, and creating the trigger on users locks users against
    # writes, until this migration commits: nothing changes between the backfill and the
    # triggers that take over from it.
    op.execute("ALTER TABLE bookings ADD COLUMN search_text text")
    for definition in POSTGRES_FUNCTIONS.values():
        op.execute(definition)
    for name, (_table, definition) in POSTGRES_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {definition}")
    op.execute("UPDATE bookings SET search_text = NULL")  # the trigger writes each one
    op.execute("ALTER TABLE bookings ALTER COLUMN search_text SET NOT NULL")
    # Built after the backfill: one bulk build instead of an insert per booking. fastupdate
    # off: a write updates the index itself instead of a pending list that every search then
    # reads through until the next vacuum (a 4 MB list made a rare word's search 20 ms
    # instead of 3).
    op.execute(
        f"CREATE INDEX {SEARCH_TEXT_INDEX} ON bookings "
        f"USING gin (search_text {trgm}.gin_trgm_ops) WITH (fastupdate = off)"
    )
    # Statistics of the new column now, so the planner estimates how many bookings a word
    # finds (and whether to walk a list's order or sort the matches) from the start.
    op.execute("ANALYZE bookings")


def _drop_postgres_search():
    for name, (table, _definition) in POSTGRES_TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    for name in POSTGRES_FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.execute(f"DROP INDEX IF EXISTS {SEARCH_TEXT_INDEX}")
    op.execute("ALTER TABLE bookings DROP COLUMN IF EXISTS search_text")
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

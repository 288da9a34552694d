"""PostgreSQL tells listeners when a booking event or a duty change is appended

Live pages are told of changes by each process's one listener. On PostgreSQL it LISTENs on
ops_portal_changes; these statement-level triggers NOTIFY it in the transaction that appends to
either log, once per statement, with the kind and the latest id as the payload ("booking:1234").
A notification is delivered when its transaction commits, never if it rolls back. The listener
reads the logs by id either way, so the payload only wakes it. SQLite has no NOTIFY: there the
listener reads the logs a few times a second.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 01:00:00.000000

"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

CHANNEL = "ops_portal_changes"
LOGS = {"booking_events": "booking", "provider_duty_events": "duty"}


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION ops_portal_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            latest bigint;
        BEGIN
            SELECT max(id) INTO latest FROM appended;
            IF latest IS NOT NULL THEN
                PERFORM pg_notify('{CHANNEL}', TG_ARGV[0] || ':' || latest);
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    for table, kind in LOGS.items():
        op.execute(
            f"CREATE TRIGGER {table}_notify AFTER INSERT ON {table} "
            f"REFERENCING NEW TABLE AS appended FOR EACH STATEMENT "
            f"EXECUTE FUNCTION ops_portal_notify_change('{kind}')"
        )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in LOGS:
        op.execute(f"DROP TRIGGER {table}_notify ON {table}")
    op.execute("DROP FUNCTION ops_portal_notify_change()")

"""events' action and from_status limited to known values, as their enum columns are

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 23:40:00

The models read status, role, source and action as enums; every such column already had a
CHECK constraint except booking_events.action and booking_events.from_status. Existing rows are
kept as they are (the app only ever wrote known values; an unknown one makes the upgrade fail
and change nothing). SQLite adds a constraint by rebuilding the table, which drops its triggers:
the append-only guards are created again, as they were.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATUSES = "'ASSIGNED', 'CANCELLED', 'COMPLETED', 'FAILED', 'IN_PROGRESS', 'PENDING', 'REJECTED'"
ACTIONS = (
    "'accept', 'assign', 'cancel', 'complete', 'create', 'force-assign', 'force-cancel', "
    "'mark-failed', 'reject', 'retry'"
)
CHECKS = {
    "ck_booking_events_action_known": f"action IN ({ACTIONS})",
    "ck_booking_events_from_status_known": f"from_status IN ({STATUSES})",
}
# The SQLite guards of booking_events, as revision 0001 created them.
SQLITE_EVENT_GUARDS = {
    "booking_events_no_update": "BEFORE UPDATE ON booking_events",
    "booking_events_no_delete": "BEFORE DELETE ON booking_events",
}


def upgrade():
    with op.batch_alter_table("booking_events", schema=None) as batch_op:
        for name, condition in CHECKS.items():
            batch_op.create_check_constraint(op.f(name), sa.text(condition))
    _restore_sqlite_guards()


def downgrade():
    with op.batch_alter_table("booking_events", schema=None) as batch_op:
        for name in CHECKS:
            batch_op.drop_constraint(op.f(name), type_="check")
    _restore_sqlite_guards()


def _restore_sqlite_guards():
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL alters the table in place; its triggers stay
    for name, when in SQLITE_EVENT_GUARDS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute(
            f"CREATE TRIGGER {name} {when} BEGIN "
            f"SELECT RAISE(ABORT, '{name}: the audit trail is append-only'); END"
        )

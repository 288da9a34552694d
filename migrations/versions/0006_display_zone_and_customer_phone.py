"""display time zone per user, the customer's phone on a booking, lanes by their windows

A user's display time zone (an IANA name; null: the app's DISPLAY_TIMEZONE). A booking's
customer phone (optional, shown to its provider as a tap-to-call link). The board's lanes list
the soonest window first, through (status, window_start, id). A provider's finished jobs are
listed the latest first through (provider_id, status, updated_at, id), which also serves every
look-up of a provider's bookings by status that (provider_id, status) served.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 21:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


# Plain ADD COLUMN and CREATE INDEX, not batch operations: on SQLite a batch may rebuild the
# table, which would drop its triggers (the search index's, migration 0004).
def upgrade():
    op.add_column("users", sa.Column("time_zone", sa.String(64), nullable=True))
    op.add_column(
        "bookings",
        sa.Column("customer_phone", sa.String(32), nullable=False, server_default=""),
    )
    op.create_index(
        "ix_bookings_status_window_start_id", "bookings", ["status", "window_start", "id"]
    )
    op.create_index(
        "ix_bookings_provider_id_status_updated_at_id",
        "bookings",
        ["provider_id", "status", "updated_at", "id"],
    )
    op.drop_index("ix_bookings_provider_id_status", table_name="bookings")


def downgrade():
    op.create_index("ix_bookings_provider_id_status", "bookings", ["provider_id", "status"])
    op.drop_index("ix_bookings_provider_id_status_updated_at_id", table_name="bookings")
    op.drop_index("ix_bookings_status_window_start_id", table_name="bookings")
    # SQLite (3.35+) drops a column in place; the triggers do not name these columns.
    op.drop_column("bookings", "customer_phone")
    op.drop_column("users", "time_zone")

"""list order indexes: the archive's order (latest change first), with and without a status

Every list reads a page by position through an index on its order, so a deep page costs what
the first does: the archive by (updated_at, id), filtered by status through (status,
updated_at, id), which also finds the failed bookings still on the board.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 19:10:00.000000

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


# Plain CREATE INDEX, not a batch operation: on SQLite a batch may rebuild the table, which would
# drop its triggers.
def upgrade():
    op.create_index("ix_bookings_updated_at_id", "bookings", ["updated_at", "id"])
    op.create_index("ix_bookings_status_updated_at_id", "bookings", ["status", "updated_at", "id"])


def downgrade():
    op.drop_index("ix_bookings_status_updated_at_id", table_name="bookings")
    op.drop_index("ix_bookings_updated_at_id", table_name="bookings")

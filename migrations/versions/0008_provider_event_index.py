"""a provider's booking events by action and time

How long a provider has been idle (the picker's explanations, the dispatcher's choice) is the
time of their latest event that ended their work; how their last offers ended (lapses in a row)
reads their latest accept, reject and expire-offer events. Both look a provider's events up by
(provider_id, action, created_at) instead of reading the whole log.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 22:00:00.000000

"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


# Plain CREATE INDEX, not a batch operation: on SQLite a batch would rebuild the table and drop
# its append-only triggers.
def upgrade():
    op.create_index(
        "ix_booking_events_provider_id_action_created_at",
        "booking_events",
        ["provider_id", "action", "created_at"],
    )


def downgrade():
    op.drop_index("ix_booking_events_provider_id_action_created_at", table_name="booking_events")

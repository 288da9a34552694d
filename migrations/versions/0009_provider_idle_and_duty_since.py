"""providers remember since when they have been idle and on or off duty

A dispatcher (a person, or the SYSTEM dispatcher every few seconds) picks among every provider
by how long each has been idle. Deriving that from the event logs on every pick costs a look-up
per provider; instead providers.idle_since is written in the transaction that ends a provider's
work (or puts them back on duty), and providers.duty_since in the one that changes their duty.
Existing providers take both from their history.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 00:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The events that ended a provider's work when this revision was written: a completion, and
# every action that released the provider.
WORK_ENDED = (
    "cancel",
    "complete",
    "expire-offer",
    "force-cancel",
    "mark-failed",
    "reject",
    "retry",
)

providers = sa.table(
    "providers",
    sa.column("id", sa.Integer),
    sa.column("idle_since", sa.DateTime(timezone=True)),
    sa.column("duty_since", sa.DateTime(timezone=True)),
)
users = sa.table("users", sa.column("id", sa.Integer), sa.column("created_at", sa.DateTime))
booking_events = sa.table(
    "booking_events",
    sa.column("provider_id", sa.Integer),
    sa.column("action", sa.String),
    sa.column("created_at", sa.DateTime),
)
duty_events = sa.table(
    "provider_duty_events",
    sa.column("provider_id", sa.Integer),
    sa.column("on_duty", sa.Boolean),
    sa.column("created_at", sa.DateTime),
)


def upgrade():
    op.add_column("providers", sa.Column("idle_since", sa.DateTime(timezone=True)))
    op.add_column("providers", sa.Column("duty_since", sa.DateTime(timezone=True)))
    connection = op.get_bind()
    since: dict[int, dict] = {}
    for provider_id, created_at in connection.execute(
        sa.select(users.c.id, users.c.created_at).join(providers, providers.c.id == users.c.id)
    ):
        since[provider_id] = {"idle": created_at, "duty": None}

    def later(provider_id, key, at):
        if at is not None and provider_id in since:
            held = since[provider_id][key]
            since[provider_id][key] = at if held is None else max(held, at)

    ended = (
        sa.select(booking_events.c.provider_id, sa.func.max(booking_events.c.created_at))
        .where(booking_events.c.action.in_(WORK_ENDED))
        .group_by(booking_events.c.provider_id)
    )
    for provider_id, at in connection.execute(ended):
        later(provider_id, "idle", at)
    came_on = (
        sa.select(duty_events.c.provider_id, sa.func.max(duty_events.c.created_at))
        .where(duty_events.c.on_duty == sa.true())
        .group_by(duty_events.c.provider_id)
    )
    for provider_id, at in connection.execute(came_on):
        later(provider_id, "idle", at)
    changed = sa.select(duty_events.c.provider_id, sa.func.max(duty_events.c.created_at)).group_by(
        duty_events.c.provider_id
    )
    for provider_id, at in connection.execute(changed):
        later(provider_id, "duty", at)
    if since:
        connection.execute(
            providers.update()
            .where(providers.c.id == sa.bindparam("provider_id"))
            .values(idle_since=sa.bindparam("idle"), duty_since=sa.bindparam("duty")),
            [{"provider_id": key, **value} for key, value in since.items()],
        )


def downgrade():
    op.drop_column("providers", "duty_since")
    op.drop_column("providers", "idle_since")

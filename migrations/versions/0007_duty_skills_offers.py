"""duty and skills, offers that expire, automation that can be paused

Providers go on and off duty (providers.on_duty), each change recorded in provider_duty_events,
append-only as booking events are. The services a provider does (provider_services, names from
the catalog). An assigned booking's offer lapses at bookings.offer_expires_at; booking events
may record its lapse ('expire-offer'). dispatch_settings holds one row: whether automation is
paused, which every process reads.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 21:35:00.000000

"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ACTIONS_BEFORE = (
    "'accept', 'assign', 'cancel', 'complete', 'create', 'force-assign', 'force-cancel', "
    "'mark-failed', 'reject', 'retry'"
)
ACTIONS = ACTIONS_BEFORE + ", 'expire-offer'"
ACTION_CHECK = "ck_booking_events_action_known"
# The SQLite guards of booking_events, as revision 0001 created them (a rebuilt table loses them).
SQLITE_EVENT_GUARDS = {
    "booking_events_no_update": "BEFORE UPDATE ON booking_events",
    "booking_events_no_delete": "BEFORE DELETE ON booking_events",
}
SQLITE_DUTY_GUARDS = {
    "provider_duty_events_no_update": "BEFORE UPDATE ON provider_duty_events",
    "provider_duty_events_no_delete": "BEFORE DELETE ON provider_duty_events",
}
POSTGRES_DUTY_GUARDS = {
    "provider_duty_events_no_change": "BEFORE UPDATE OR DELETE ON {} FOR EACH ROW",
    "provider_duty_events_no_truncate": "BEFORE TRUNCATE ON {} FOR EACH STATEMENT",
}


def upgrade():
    op.add_column(
        "providers", sa.Column("on_duty", sa.Boolean(), server_default=sa.true(), nullable=False)
    )
    op.add_column("bookings", sa.Column("offer_expires_at", sa.DateTime(timezone=True)))
    op.create_table(
        "provider_services",
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(["provider_id"], ["providers.id"]),
        sa.PrimaryKeyConstraint("provider_id", "service"),
    )
    op.create_index("ix_provider_services_service", "provider_services", ["service"])
    op.create_table(
        "provider_duty_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("on_duty", sa.Boolean(), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "actor_role IN ('CUSTOMER', 'PROVIDER', 'ADMIN', 'SYSTEM')",
            name=op.f("ck_provider_duty_events_actor_role_known"),
        ),
        sa.CheckConstraint(
            "source IN ('web', 'api', 'system')", name=op.f("ck_provider_duty_events_source_known")
        ),
        sa.ForeignKeyConstraint(["provider_id"], ["providers.id"]),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_provider_duty_events_provider_id_id", "provider_duty_events", ["provider_id", "id"]
    )
    op.create_table(
        "dispatch_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("changed_by", sa.Integer(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_dispatch_settings_one_row")),
        sa.ForeignKeyConstraint(["changed_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO dispatch_settings (id, paused) VALUES (1, false)")
    _set_action_check(ACTIONS)
    _guard_duty_events()


def downgrade():
    _set_action_check(ACTIONS_BEFORE)  # fails, changing nothing, if an offer has lapsed
    op.drop_table("dispatch_settings")
    if op.get_bind().dialect.name == "postgresql":
        for name in POSTGRES_DUTY_GUARDS:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON provider_duty_events")
    op.drop_index("ix_provider_duty_events_provider_id_id", table_name="provider_duty_events")
    op.drop_table("provider_duty_events")
    op.drop_index("ix_provider_services_service", table_name="provider_services")
    op.drop_table("provider_services")
    op.drop_column("bookings", "offer_expires_at")
    op.drop_column("providers", "on_duty")


def _set_action_check(actions: str) -> None:
    """booking_events.action limited to these. SQLite changes a constraint by rebuilding the
    table, which drops its triggers: the append-only guards are created again."""
    with op.batch_alter_table("booking_events", schema=None) as batch_op:
        batch_op.drop_constraint(op.f(ACTION_CHECK), type_="check")
        batch_op.create_check_constraint(op.f(ACTION_CHECK), sa.text(f"action IN ({actions})"))
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_guards(SQLITE_EVENT_GUARDS)


def _guard_duty_events() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, when in POSTGRES_DUTY_GUARDS.items():
            on_table = when.format("provider_duty_events")
            op.execute(
                f"CREATE TRIGGER {name} {on_table} EXECUTE FUNCTION ops_portal_refuse_change()"
            )
    else:
        _sqlite_guards(SQLITE_DUTY_GUARDS)


def _sqlite_guards(guards: dict[str, str]) -> None:
    for name, when in guards.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute(
            f"CREATE TRIGGER {name} {when} BEGIN "
            f"SELECT RAISE(ABORT, '{name}: the audit trail is append-only'); END"
        )

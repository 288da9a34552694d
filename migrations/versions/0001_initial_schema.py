"""initial schema: users, profiles, bookings, append-only events, API tokens

Revision ID: 0001
Revises:
Create Date: 2026-11-24 13:18:25.379288

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("is_enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("session_version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('ADMIN', 'CUSTOMER', 'PROVIDER', 'SYSTEM')",
            name=op.f("ck_users_role_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["id"], ["users.id"], name=op.f("fk_customers_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    op.create_table(
        "providers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.ForeignKeyConstraint(["id"], ["users.id"], name=op.f("fk_providers_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_providers")),
    )
    op.create_table(
        "bookings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("assignment_forced", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("customer_name", sa.String(length=120), nullable=False),
        sa.Column("service", sa.String(length=80), nullable=False),
        sa.Column("address", sa.String(length=300), server_default="", nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('ASSIGNED', 'CANCELLED', 'COMPLETED', 'FAILED', 'IN_PROGRESS', "
            "'PENDING', 'REJECTED')",
            name=op.f("ck_bookings_status_known"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_bookings_version_positive")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_bookings_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_bookings_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bookings")),
    )
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bookings_customer_id_created_at",
            ["customer_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_bookings_provider_id_status", ["provider_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_bookings_status_created_at", ["status", "created_at"], unique=False
        )
        batch_op.create_index(
            "uq_bookings_one_active_per_provider",
            ["provider_id"],
            unique=True,
            sqlite_where=sa.text("status IN ('ASSIGNED', 'IN_PROGRESS') AND assignment_forced = 0"),
            postgresql_where=sa.text(
                "status IN ('ASSIGNED', 'IN_PROGRESS') AND NOT assignment_forced"
            ),
        )

    op.create_table(
        "booking_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("forced", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "actor_role IN ('ADMIN', 'CUSTOMER', 'PROVIDER', 'SYSTEM')",
            name=op.f("ck_booking_events_actor_role_known"),
        ),
        sa.CheckConstraint(
            "source IN ('api', 'system', 'web')",
            name=op.f("ck_booking_events_source_known"),
        ),
        sa.CheckConstraint(
            "to_status IN ('ASSIGNED', 'CANCELLED', 'COMPLETED', 'FAILED', 'IN_PROGRESS', "
            "'PENDING', 'REJECTED')",
            name=op.f("ck_booking_events_to_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_booking_events_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["bookings.id"],
            name=op.f("fk_booking_events_booking_id_bookings"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_booking_events_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_events")),
    )
    with op.batch_alter_table("booking_events", schema=None) as batch_op:
        batch_op.create_index("ix_booking_events_booking_id_id", ["booking_id", "id"], unique=False)

    _create_append_only_guards()


def downgrade():
    _drop_append_only_guards()
    with op.batch_alter_table("booking_events", schema=None) as batch_op:
        batch_op.drop_index("ix_booking_events_booking_id_id")

    op.drop_table("booking_events")
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_bookings_one_active_per_provider",
            sqlite_where=sa.text("status IN ('ASSIGNED', 'IN_PROGRESS') AND assignment_forced = 0"),
            postgresql_where=sa.text(
                "status IN ('ASSIGNED', 'IN_PROGRESS') AND NOT assignment_forced"
            ),
        )
        batch_op.drop_index("ix_bookings_status_created_at")
        batch_op.drop_index("ix_bookings_provider_id_status")
        batch_op.drop_index("ix_bookings_customer_id_created_at")

    op.drop_table("bookings")
    op.drop_table("providers")
    op.drop_table("customers")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_user_id"))

    op.drop_table("api_tokens")
    op.drop_table("users")


# Events are append-only and bookings are never deleted: the database itself refuses it.
SQLITE_GUARDS = {
    "booking_events_no_update": "BEFORE UPDATE ON booking_events",
    "booking_events_no_delete": "BEFORE DELETE ON booking_events",
    "bookings_no_delete": "BEFORE DELETE ON bookings",
}
POSTGRES_GUARDS = {
    "booking_events_no_change": "BEFORE UPDATE OR DELETE ON booking_events FOR EACH ROW",
    "booking_events_no_truncate": "BEFORE TRUNCATE ON booking_events FOR EACH STATEMENT",
    "bookings_no_delete": "BEFORE DELETE ON bookings FOR EACH ROW",
    "bookings_no_truncate": "BEFORE TRUNCATE ON bookings FOR EACH STATEMENT",
}


def _create_append_only_guards():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION ops_portal_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% on % is not allowed: the audit trail is append-only',
                    TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
            END
            $$
            """
        )
        for name, when in POSTGRES_GUARDS.items():
            op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION ops_portal_refuse_change()")
    else:
        for name, when in SQLITE_GUARDS.items():
            op.execute(
                f"CREATE TRIGGER {name} {when} BEGIN "
                f"SELECT RAISE(ABORT, '{name}: the audit trail is append-only'); END"
            )


def _drop_append_only_guards():
    if op.get_bind().dialect.name == "postgresql":
        for name, when in POSTGRES_GUARDS.items():
            table = when.split(" ON ")[1].split()[0]
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS ops_portal_refuse_change()")
    else:
        for name in SQLITE_GUARDS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")

"""SQLAlchemy models. They change state; only services commit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .domain.lifecycle import ACTIVE, Action, BookingFacts, Role, Source, Status
from .extensions import db


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator):
    """Timezone-aware UTC in and out, on SQLite (which stores no zone) and PostgreSQL alike."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _in(column: str, values) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in sorted(values))})"


def enum_type(enum: type, length: int = 16) -> sa.Enum:
    """A StrEnum stored as its value in a VARCHAR (not a native database enum, so adding a value
    needs no type migration) and read back as the enum member. Each table states the values it
    allows in a CHECK constraint of its own (`_in`), so the constraint is the migrations'."""
    return sa.Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


ACTIVE_SQL = _in("status", ACTIVE)


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (sa.CheckConstraint(_in("role", Role), name="role_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    role: Mapped[Role] = mapped_column(enum_type(Role))
    # Null for SYSTEM accounts: they act through API tokens only.
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    is_enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True, server_default=sa.true())
    # Bumped by logout and password change; sessions carrying an older one are dead.
    session_version: Mapped[int] = mapped_column(default=1, server_default="1")
    # The IANA zone the person reads and writes times in; null: the app's DISPLAY_TIMEZONE.
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.is_enabled and self.role != Role.SYSTEM

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"


class Customer(db.Model):
    """A user's customer profile; its id is the user's id, so a customer's actor_id is their
    customer_id."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    user: Mapped[User] = relationship(lazy="joined", innerjoin=True)

    @property
    def name(self) -> str:
        return self.user.name


class Provider(db.Model):
    """A user's provider profile; its id is the user's id, so a provider's actor_id is their
    provider_id."""

    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    # An inactive provider keeps their history but can no longer be assigned work.
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True, server_default=sa.true())
    # Off duty: not offered work (a dispatcher may still force-assign). Each change is recorded
    # in provider_duty_events.
    on_duty: Mapped[bool] = mapped_column(sa.Boolean, default=True, server_default=sa.true())
    # Since when they have had no work: the end of their last job or offer, or their coming on
    # duty (their account's creation before either), written in the same transaction. A
    # dispatcher offers work to the longest idle first. None: never written (rows made outside
    # the services), read as the account's creation.
    idle_since: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    # The latest change of on_duty (None: never changed).
    duty_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "unnested": joined from a booking or an event (an outer join), the user is one more LEFT
    # OUTER JOIN, not a nested "(providers JOIN users)", which SQLite builds in full for every
    # query that loads a booking.
    user: Mapped[User] = relationship(lazy="joined", innerjoin="unnested")

    @property
    def name(self) -> str:
        return self.user.name


class Booking(db.Model):
    __tablename__ = "bookings"
    __table_args__ = (
        sa.CheckConstraint(_in("status", Status), name="status_known"),
        sa.CheckConstraint("version >= 1", name="version_positive"),
        sa.Index("ix_bookings_status_created_at", "status", "created_at"),
        # A provider's bookings by status; their finished jobs, the latest first.
        sa.Index(
            "ix_bookings_provider_id_status_updated_at_id",
            "provider_id",
            "status",
            "updated_at",
            "id",
        ),
        sa.Index("ix_bookings_customer_id_created_at", "customer_id", "created_at"),
        # The archive's order (the latest change first), with and without a status filter, and
        # the failed bookings still on the board.
        sa.Index("ix_bookings_updated_at_id", "updated_at", "id"),
        sa.Index("ix_bookings_status_updated_at_id", "status", "updated_at", "id"),
        # The board's lanes: the soonest window first.
        sa.Index("ix_bookings_status_window_start_id", "status", "window_start", "id"),
        # Backstop of the availability rule, in the database: one non-forced active booking per
        # provider.
        sa.Index(
            "uq_bookings_one_active_per_provider",
            "provider_id",
            unique=True,
            sqlite_where=sa.text(f"{ACTIVE_SQL} AND assignment_forced = 0"),
            postgresql_where=sa.text(f"{ACTIVE_SQL} AND NOT assignment_forced"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[Status] = mapped_column(enum_type(Status), default=Status.PENDING)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"))
    provider_id: Mapped[int | None] = mapped_column(sa.ForeignKey("providers.id"))
    # True while the current assignment came from a force-assign (it may double-book).
    assignment_forced: Mapped[bool] = mapped_column(
        sa.Boolean, default=False, server_default=sa.false()
    )
    customer_name: Mapped[str] = mapped_column(sa.String(120))
    service: Mapped[str] = mapped_column(sa.String(80))
    address: Mapped[str] = mapped_column(sa.String(300), default="", server_default="")
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notes: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    # While ASSIGNED: when the provider's offer lapses unless they accept or reject it first.
    offer_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Optional; shown to the booking's provider as a tap-to-call link.
    customer_phone: Mapped[str] = mapped_column(sa.String(32), default="", server_default="")
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # Cards show customer_name (kept on the booking) and the provider's name: only the provider
    # is joined when bookings are loaded.
    customer: Mapped[Customer] = relationship()
    provider: Mapped[Provider | None] = relationship(lazy="joined")
    events: Mapped[list[BookingEvent]] = relationship(
        back_populates="booking", order_by="BookingEvent.id", lazy="select"
    )

    # Optimistic-lock backstop: an UPDATE that finds another version raises StaleDataError.
    __mapper_args__: ClassVar[dict] = {"version_id_col": version}

    @property
    def facts(self) -> BookingFacts:
        return BookingFacts(self.status, self.customer_id, self.provider_id)


class BookingEvent(db.Model):
    """One state change. Append-only: database triggers refuse UPDATE and DELETE."""

    __tablename__ = "booking_events"
    __table_args__ = (
        sa.CheckConstraint(_in("action", Action), name="action_known"),
        # Null on create passes too: a CHECK that is unknown for NULL holds.
        sa.CheckConstraint(_in("from_status", Status), name="from_status_known"),
        sa.CheckConstraint(_in("to_status", Status), name="to_status_known"),
        sa.CheckConstraint(_in("actor_role", Role), name="actor_role_known"),
        sa.CheckConstraint(_in("source", Source), name="source_known"),
        sa.Index("ix_booking_events_booking_id_id", "booking_id", "id"),
        # A provider's latest event of some kinds: when their work last ended, how their last
        # offers ended.
        sa.Index(
            "ix_booking_events_provider_id_action_created_at",
            "provider_id",
            "action",
            "created_at",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(sa.ForeignKey("bookings.id"))
    action: Mapped[Action] = mapped_column(enum_type(Action))
    from_status: Mapped[Status | None] = mapped_column(enum_type(Status))
    to_status: Mapped[Status] = mapped_column(enum_type(Status))
    actor_role: Mapped[Role] = mapped_column(enum_type(Role))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    provider_id: Mapped[int | None] = mapped_column(sa.ForeignKey("providers.id"))
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    forced: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    source: Mapped[Source] = mapped_column(enum_type(Source, length=8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    booking: Mapped[Booking] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship(lazy="joined")
    provider: Mapped[Provider | None] = relationship(lazy="joined")


class ProviderService(db.Model):
    """A service (a name from the catalog) that a provider does."""

    __tablename__ = "provider_services"
    __table_args__ = (sa.Index("ix_provider_services_service", "service"),)

    provider_id: Mapped[int] = mapped_column(sa.ForeignKey("providers.id"), primary_key=True)
    service: Mapped[str] = mapped_column(sa.String(80), primary_key=True)


class ProviderDutyEvent(db.Model):
    """A provider going on or off duty: who, when and why. Append-only, as booking events are."""

    __tablename__ = "provider_duty_events"
    __table_args__ = (
        sa.CheckConstraint(_in("actor_role", Role), name="actor_role_known"),
        sa.CheckConstraint(_in("source", Source), name="source_known"),
        sa.Index("ix_provider_duty_events_provider_id_id", "provider_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(sa.ForeignKey("providers.id"))
    on_duty: Mapped[bool] = mapped_column(sa.Boolean)
    actor_role: Mapped[Role] = mapped_column(enum_type(Role))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    reason: Mapped[str | None] = mapped_column(sa.String(500))
    source: Mapped[Source] = mapped_column(enum_type(Source, length=8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor: Mapped[User | None] = relationship(lazy="joined")


class DispatchSettings(db.Model):
    """The one row of settings every process of the app reads: whether automation is paused."""

    __tablename__ = "dispatch_settings"
    __table_args__ = (sa.CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    paused: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    changed_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiToken(db.Model):
    """A bearer token, stored as its SHA-256 (tokens are random, so no salt or slow hash needed)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(lazy="joined", innerjoin=True)


class IdempotencyKey(db.Model):
    """A client's Idempotency-Key for one user and endpoint, and the first answer it got.

    Claimed (in flight) before the request runs; completed with the response in the same
    transaction as the change it made, so a replay can never disagree with the database."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "endpoint", "key", name="uq_idempotency_keys_scope"),
        sa.Index("ix_idempotency_keys_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    endpoint: Mapped[str] = mapped_column(sa.String(200))
    key: Mapped[str] = mapped_column(sa.String(255))
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    response_status: Mapped[int | None] = mapped_column()
    response_body: Mapped[str | None] = mapped_column(sa.Text)
    response_headers: Mapped[str | None] = mapped_column(sa.Text)  # JSON object
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

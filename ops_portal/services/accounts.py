"""Accounts: users with roles, their customer/provider profiles, passwords and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

from ..domain.errors import InvalidInput, NotFound
from ..domain.lifecycle import Actor, Role, Source
from ..domain.schedule import check_zone
from ..domain.text import has_control_characters
from ..extensions import db
from ..models import ApiToken, Customer, Provider, ProviderService, User, utcnow
from . import skills  # a module, not its names: skills reads bookings.rules
from .transactions import write_transaction

TOKEN_PREFIX = "ops_"
MAX_EMAIL = 254


def password_hasher() -> PasswordHasher:
    config = current_app.config
    return PasswordHasher(
        time_cost=config["ARGON2_TIME_COST"],
        memory_cost=config["ARGON2_MEMORY_COST"],
        parallelism=config["ARGON2_PARALLELISM"],
    )


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return raw, hash_token(raw)


@dataclass(frozen=True)
class NewUser:
    email: str
    name: str
    role: Role
    password: str | None = None
    services: tuple[str, ...] = ()  # a provider's, from the catalog; none: every service


def validate_new_user(email, name, role, password=None, services=None) -> NewUser:
    if not isinstance(email, str) or "@" not in email.strip() or len(email.strip()) > MAX_EMAIL:
        raise InvalidInput(
            f"email must be an address like name@example.com, got {email!r}", field="email"
        )
    if has_control_characters(email):
        raise InvalidInput("email must not contain control characters", field="email")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 120:
        raise InvalidInput("name is required (at most 120 characters)", field="name")
    if has_control_characters(name):
        raise InvalidInput("name must not contain control characters", field="name")
    try:
        role = Role(str(role).strip().upper())
    except ValueError:
        raise InvalidInput(f"role must be one of {', '.join(Role)}, got {role!r}") from None
    if password is not None and password != "":
        if role is Role.SYSTEM:
            raise InvalidInput("SYSTEM accounts have no password; they act through API tokens")
        if len(password) < 8:
            raise InvalidInput("password must be at least 8 characters")
    chosen = tuple(skills.parse_services(services))
    if chosen and role is not Role.PROVIDER:
        raise InvalidInput("only providers have services", field="services")
    return NewUser(email.strip().lower(), name.strip(), role, password or None, chosen)


def create_users(new_users: list[NewUser], *, with_tokens: bool) -> list[tuple[User, str | None]]:
    """Create many users (and their profiles and tokens) in one transaction."""
    emails = [u.email for u in new_users]
    if len(set(emails)) != len(emails):
        seen, dupes = set(), set()
        for e in emails:
            (dupes if e in seen else seen).add(e)
        raise InvalidInput(f"duplicate emails in the input: {', '.join(sorted(dupes))}")
    hasher = password_hasher() if any(u.password for u in new_users) else None
    rows = [
        {
            "email": u.email,
            "name": u.name,
            "role": u.role.value,
            "password_hash": hasher.hash(u.password) if u.password else None,
            "is_enabled": True,
            "session_version": 1,
            "created_at": utcnow(),
        }
        for u in new_users
    ]
    with write_transaction() as session:
        taken = set()
        for chunk_start in range(0, len(emails), 500):
            chunk = emails[chunk_start : chunk_start + 500]
            taken.update(session.scalars(sa.select(User.email).where(User.email.in_(chunk))))
        if taken:
            raise InvalidInput(f"already registered: {', '.join(sorted(taken))}")
        ids = list(
            session.scalars(sa.insert(User).returning(User.id, sort_by_parameter_order=True), rows)
        )
        customers = [
            {"id": i} for i, u in zip(ids, new_users, strict=True) if u.role is Role.CUSTOMER
        ]
        providers = [
            {"id": i, "active": True}
            for i, u in zip(ids, new_users, strict=True)
            if u.role is Role.PROVIDER
        ]
        if customers:
            session.execute(sa.insert(Customer), customers)
        if providers:
            session.execute(sa.insert(Provider), providers)
        services = [
            {"provider_id": i, "service": service}
            for i, u in zip(ids, new_users, strict=True)
            for service in u.services
        ]
        if services:
            session.execute(sa.insert(ProviderService), services)
        tokens: list[str | None] = [None] * len(ids)
        if with_tokens:
            token_rows = []
            for index, user_id in enumerate(ids):
                raw, digest = new_token()
                tokens[index] = raw
                token_rows.append(
                    {"user_id": user_id, "token_hash": digest, "created_at": utcnow()}
                )
            session.execute(sa.insert(ApiToken), token_rows)
    users: dict[int, User] = {}
    for chunk_start in range(0, len(ids), 1000):
        chunk = ids[chunk_start : chunk_start + 1000]
        users.update(
            {u.id: u for u in db.session.scalars(sa.select(User).where(User.id.in_(chunk)))}
        )
    return [(users[i], token) for i, token in zip(ids, tokens, strict=True)]


def create_user(email, name, role, password=None, *, with_token=False) -> tuple[User, str | None]:
    return create_users([validate_new_user(email, name, role, password)], with_tokens=with_token)[0]


def issue_token(email: str) -> str:
    """A new API token for the user; only its hash is stored."""
    with write_transaction() as session:
        user = user_by_email(email)
        if user is None:
            raise NotFound(f"No user {email}")
        raw, digest = new_token()
        session.add(ApiToken(user_id=user.id, token_hash=digest))
    return raw


# How stale a token's recorded last use may get: recording every use would turn every read
# into a write (and, on SQLite, into a wait for the write lock).
LAST_USED_RESOLUTION = timedelta(minutes=5)


def actor_for_token(raw: str, source: Source = Source.API) -> Actor | None:
    """The actor a bearer token stands for, or None if it is unknown, revoked or disabled.
    Records when the token was last used (to within LAST_USED_RESOLUTION)."""
    if not raw or len(raw) > 200:
        return None
    row = db.session.execute(
        sa.select(User.id, User.role, ApiToken.id.label("token_id"), ApiToken.last_used_at)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(
            ApiToken.token_hash == hash_token(raw),
            ApiToken.revoked_at.is_(None),
            User.is_enabled.is_(True),
        )
    ).first()
    if row is None:
        return None
    now = utcnow()
    if row.last_used_at is None or row.last_used_at < now - LAST_USED_RESOLUTION:
        with write_transaction() as session:
            session.execute(
                sa.update(ApiToken).where(ApiToken.id == row.token_id).values(last_used_at=now)
            )
    return Actor(row.role, row.id, source)


def set_provider_services(email: str, services) -> tuple[User, list[str]]:
    """An operator sets the services of the provider with this email (the command line)."""
    user = user_by_email(email)
    if user is None or user.role is not Role.PROVIDER:
        raise NotFound(f"No provider with email {email}")
    operator = Actor(Role.ADMIN, None, Source.SYSTEM)
    return user, skills.set_services(operator, user.id, services)


def revoke_tokens(email: str) -> int:
    """Revoke every live API token of the user; returns how many."""
    with write_transaction() as session:
        user = user_by_email(email)
        if user is None:
            raise NotFound(f"No user {email}")
        result = session.execute(
            sa.update(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    return result.rowcount


def user_by_email(email: str) -> User | None:
    """The account with this email; None for text no account can have (NUL would otherwise
    reach PostgreSQL, which refuses it with a driver error)."""
    if has_control_characters(email) or len(email) > 4 * MAX_EMAIL:
        return None
    return db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))


def check_password(user: User | None, password: str) -> bool:
    """Constant-ish time: a missing user still costs one hash verification."""
    hasher = password_hasher()
    stored = user.password_hash if user is not None else None
    try:
        if stored is None:
            hasher.hash(password)
            return False
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(email: str, password: str):
    """The user for a correct email and password (never for SYSTEM or disabled accounts)."""
    user = user_by_email(email or "")
    if not check_password(user, password or ""):
        return None
    if user is None or not user.is_active:
        return None
    if password_hasher().check_needs_rehash(user.password_hash):
        # The hashing parameters were raised since this hash was made: upgrade it now, while
        # the plain password is at hand (the only moment it ever is).
        with write_transaction() as session:
            session.execute(
                sa.update(User)
                .where(User.id == user.id)
                .values(password_hash=password_hasher().hash(password))
            )
        user = db.session.get(User, user.id)
    return user


def end_sessions(user_id: int) -> None:
    """Invalidate every session of the user (logout, password change)."""
    with write_transaction() as session:
        session.execute(
            sa.update(User)
            .where(User.id == user_id)
            .values(session_version=User.session_version + 1)
        )


def set_time_zone(user_id: int, time_zone: str | None) -> None:
    """The zone a person reads and writes times in (an IANA name); None or "" for the app's."""
    time_zone = check_zone(time_zone) if time_zone else None
    with write_transaction() as session:
        updated = session.execute(
            sa.update(User).where(User.id == user_id).values(time_zone=time_zone)
        ).rowcount
        if not updated:
            raise NotFound(f"No user {user_id}")

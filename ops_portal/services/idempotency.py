"""Idempotent writes (the semantics payment APIs use): a client's key, scoped to the user and
endpoint, gets one execution; repeats within 24 hours replay its first answer.

The key's row is written inside the transaction that makes the change and stores its answer,
so the three commit together or not at all: a request that dies (its worker killed, its
database gone) leaves nothing behind, and the client's retry simply runs. A concurrent repeat
waits for the first request: on PostgreSQL at the key's unique index (its INSERT blocks until
the first commits or rolls back), on SQLite at the write lock every write transaction takes
first. It then replays the first answer, or runs if the first rolled back. Only when the first
is still running after the wait does the repeat answer 409 (PostgreSQL); on SQLite a lock held
past the busy timeout is a 503 like any other, and the retry is as safe."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..domain.errors import ConflictInFlight, IdempotencyKeyReused, InvalidInput
from ..models import IdempotencyKey, utcnow
from .transactions import write_transaction

KEY_TTL = timedelta(hours=24)
# What a key may be; the OpenAPI document publishes this same pattern.
KEY_PATTERN = r"^[A-Za-z0-9_.:~+/=-]{1,255}$"
# PostgreSQL's code for a lock wait that ran past lock_timeout.
LOCK_NOT_AVAILABLE = "55P03"


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Taken:
    """The key for this request: a new row to record the answer in, or the answer to replay."""

    key_id: int | None
    replay: StoredResponse | None


def check_key(key: str) -> str:
    if not re.fullmatch(KEY_PATTERN, key, re.ASCII):
        raise InvalidInput(
            "Idempotency-Key must be 1 to 255 characters of letters, digits and -_.:~+/= "
            "(a UUID is a good choice)"
        )
    return key


def take(
    session: Session,
    user_id: int,
    endpoint: str,
    key: str,
    request_hash: str,
    *,
    wait_seconds: float,
) -> Taken:
    """Inside the caller's write transaction: the first answer given to this key, or a new row
    for it (uncommitted, so invisible to everyone until the caller's change commits with it)."""
    check_key(key)
    scope = (
        IdempotencyKey.user_id == user_id,
        IdempotencyKey.endpoint == endpoint,
        IdempotencyKey.key == key,
    )
    with _lock_wait_bounded(session, wait_seconds):
        row = session.execute(
            sa.select(IdempotencyKey.id, IdempotencyKey.created_at, IdempotencyKey.completed_at)
            .where(*scope)
            .with_for_update()
        ).first()
        if row is not None and (row.created_at < utcnow() - KEY_TTL or row.completed_at is None):
            # Expired, or a claim without an answer (earlier versions committed the claim
            # first, and a request that died left it behind): the key starts a new life.
            session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.id == row.id))
            row = None
        if row is None:
            key_id = _insert(session, user_id, endpoint, key, request_hash)
            if key_id is not None:
                return Taken(key_id, None)
            # Another request with this key committed while this one waited at the index.
    stored = session.scalars(sa.select(IdempotencyKey).where(*scope)).one()
    if stored.request_hash != request_hash:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request body; "
            "use a new key for a new request"
        )
    return Taken(
        None,
        StoredResponse(
            stored.response_status, stored.response_body or "", json.loads(stored.response_headers)
        ),
    )


def record(session: Session, key_id: int, status: int, body: str, headers: dict) -> None:
    """Store the answer in the key's row, in the transaction that made the change."""
    session.execute(
        sa.update(IdempotencyKey)
        .where(IdempotencyKey.id == key_id)
        .values(
            response_status=status,
            response_body=body,
            response_headers=json.dumps(headers),
            completed_at=utcnow(),
        )
    )


def purge_expired() -> int:
    """Delete keys older than 24 hours; returns how many."""
    with write_transaction() as session:
        result = session.execute(
            sa.delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - KEY_TTL)
        )
    return result.rowcount


def _insert(session: Session, user_id, endpoint, key, request_hash) -> int | None:
    """The new row's id, or None when a row for the key already exists (committed meanwhile).
    ON CONFLICT DO NOTHING: on PostgreSQL it waits for an uncommitted row of the same key, and
    then inserts (that request rolled back) or does nothing (it committed)."""
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    statement = (
        dialect.insert(IdempotencyKey)
        .values(
            user_id=user_id,
            endpoint=endpoint,
            key=key,
            request_hash=request_hash,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["user_id", "endpoint", "key"])
        .returning(IdempotencyKey.id)
    )
    return session.execute(statement).scalar_one_or_none()


class _lock_wait_bounded:
    """On PostgreSQL, bound how long the statements inside wait for another transaction's lock
    on the key (its uncommitted row): past `seconds`, the first request is still running and
    this one answers 409. The services' own row locks keep their unbounded wait."""

    def __init__(self, session: Session, seconds: float):
        self.session = session
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self.milliseconds = max(1, int(seconds * 1000))

    def __enter__(self):
        if self.postgres:
            self.session.execute(sa.text(f"SET LOCAL lock_timeout = {self.milliseconds}"))
        return self

    def __exit__(self, error_type, error, _traceback):
        if error is None:
            if self.postgres:
                self.session.execute(sa.text("SET LOCAL lock_timeout TO DEFAULT"))
            return False
        if isinstance(error, sa.exc.OperationalError) and (
            getattr(error.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE
        ):
            raise ConflictInFlight(
                "A request with this Idempotency-Key is still being processed; retry shortly"
            ) from error
        return False

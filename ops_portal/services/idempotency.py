"""Idempotent writes (the semantics payment APIs use): a client's key, scoped to the user and
endpoint, gets one execution; repeats replay its first answer.

A key is claimed in a short transaction of its own, so a concurrent repeat sees it in flight
(409). The answer is stored by `complete` inside the transaction that makes the change, so the
stored answer and the database can never disagree. Keys live 24 hours."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..domain.errors import ConflictInFlight, IdempotencyKeyReused, InvalidInput
from ..extensions import db
from ..models import IdempotencyKey, utcnow
from .transactions import write_transaction

KEY_TTL = timedelta(hours=24)
# A claim still in flight after this long belongs to a request that died (worker killed
# mid-request); its key may be taken over so the client's retry can run.
ABANDONED_AFTER = timedelta(minutes=5)
# What a key may be; the OpenAPI document publishes this same pattern.
KEY_PATTERN = r"^[A-Za-z0-9_.:~+/=-]{1,255}$"


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Claim:
    key_id: int
    replay: StoredResponse | None  # set when the key already has an answer


def check_key(key: str) -> str:
    if not re.fullmatch(KEY_PATTERN, key, re.ASCII):
        raise InvalidInput(
            "Idempotency-Key must be 1 to 255 characters of letters, digits and -_.:~+/= "
            "(a UUID is a good choice)"
        )
    return key


def claim(user_id: int, endpoint: str, key: str, request_hash: str) -> Claim:
    """Claim the key for this request, or learn that it was answered or is in flight."""
    check_key(key)
    try:
        return _claim(user_id, endpoint, key, request_hash)
    except IntegrityError:
        # A concurrent request inserted the same key first; its claim is now visible.
        return _claim(user_id, endpoint, key, request_hash)


def _claim(user_id: int, endpoint: str, key: str, request_hash: str) -> Claim:
    with write_transaction() as session:
        row = session.scalar(
            sa.select(IdempotencyKey)
            .where(
                IdempotencyKey.user_id == user_id,
                IdempotencyKey.endpoint == endpoint,
                IdempotencyKey.key == key,
            )
            .with_for_update()
        )
        now = utcnow()
        if row is not None and row.created_at < now - KEY_TTL:
            session.delete(row)  # expired: the key starts a new life
            session.flush()
            row = None
        if row is None:
            row = IdempotencyKey(
                user_id=user_id,
                endpoint=endpoint,
                key=key,
                request_hash=request_hash,
                created_at=now,
            )
            session.add(row)
            session.flush()
            return Claim(row.id, None)
        if row.request_hash != request_hash:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used with a different request body; "
                "use a new key for a new request"
            )
        if row.completed_at is None:
            if row.created_at < now - ABANDONED_AFTER:
                row.created_at = now
                return Claim(row.id, None)
            raise ConflictInFlight(
                "A request with this Idempotency-Key is still being processed; retry shortly"
            )
        return Claim(
            row.id,
            StoredResponse(
                row.response_status,
                row.response_body or "",
                json.loads(row.response_headers or "{}"),
            ),
        )


def complete(key_id: int, status: int, body: str, headers: dict[str, str]) -> None:
    """Store the answer; call inside the transaction that made the change."""
    db.session.execute(
        sa.update(IdempotencyKey)
        .where(IdempotencyKey.id == key_id)
        .values(
            response_status=status,
            response_body=body,
            response_headers=json.dumps(headers),
            completed_at=utcnow(),
        )
    )


def release(key_id: int) -> None:
    """Forget a claim whose request failed without an answer worth replaying (5xx)."""
    with write_transaction() as session:
        session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.id == key_id))


def purge_expired() -> int:
    """Delete keys older than 24 hours; returns how many."""
    with write_transaction() as session:
        result = session.execute(
            sa.delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - KEY_TTL)
        )
    return result.rowcount

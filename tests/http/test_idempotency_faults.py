"""Idempotency keys that a fault cannot strand, on SQLite and PostgreSQL.

The key's row is written in the transaction that makes the change and stores its answer, so:
- a worker killed mid-request, or a database that fails mid-request, leaves nothing behind, and
  the client's retry with the same key gets a definitive answer at once, applied exactly once
  (a refusal too is answered, stored and replayed);
- a repeat that arrives while the first request is still running waits for it, then replays its
  answer (or runs, if the first rolled back); past the wait it answers 409 on PostgreSQL, and on
  SQLite (where the wait is for the write lock) 503 with Retry-After, and its retry runs.

"Another request still running" is a real second connection holding a real transaction open; a
real gunicorn worker is killed with SIGKILL; a real PostgreSQL backend is terminated. Nothing
sleeps: the waits are bounded polls for a state the database or the server reports.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import threading
from contextlib import contextmanager

import pytest
import requests
import sqlalchemy as sa

from ops_portal.config import normalize_database_url
from ops_portal.domain.lifecycle import Status
from ops_portal.models import Booking, IdempotencyKey, utcnow
from tests.support.api import CREATE_BODY, new_key
from tests.support.builders import booking_in, count_rows, event_actions, key_rows
from tests.support.databases import make_app
from tests.support.pages import AuthActions, Page, PageClient, press
from tests.support.server import READY_WITHIN, fresh_session, wait_for

pytestmark = pytest.mark.server

# What each action answers when it runs on an ASSIGNED booking: accept goes through; complete
# is refused (the job has not started), and a refusal is an answer to keep like any other.
OUTCOMES = {
    "accept": (200, ["create", "assign", "accept"]),
    "complete": (400, ["create", "assign"]),
}


class OtherTransaction:
    """A transaction of another process on the test's database, begun and ended by hand."""

    def __init__(self, database_url: str):
        self.engine = sa.create_engine(
            normalize_database_url(database_url),
            isolation_level="AUTOCOMMIT",  # BEGIN, COMMIT and ROLLBACK are ours to send
            poolclass=sa.pool.NullPool,
        )
        self.connection = self.engine.connect()
        self.sqlite = self.engine.dialect.name == "sqlite"
        # What PostgreSQL reports about other backends is read outside this transaction, which
        # would see the activity of the moment it began for as long as it lasts.
        self.observer = None if self.sqlite else self.engine.connect()

    def begin(self) -> None:
        # On SQLite the write lock itself, from the first statement, as every writer takes it.
        self.connection.exec_driver_sql("BEGIN IMMEDIATE" if self.sqlite else "BEGIN")

    def lock_booking(self, booking_id: int) -> None:
        """Begin, and hold the booking as a dispatcher's transaction would: its row on
        PostgreSQL, the write lock on SQLite."""
        self.begin()
        if not self.sqlite:
            self.connection.execute(
                sa.text("SELECT id FROM bookings WHERE id = :id FOR UPDATE"), {"id": booking_id}
            )

    def write_key(self, user_id: int, endpoint: str, key: str, body: bytes, answer: dict):
        """Begin, and write a key's row with its answer, as a first request does before its
        commit."""
        self.begin()
        self.connection.execute(
            sa.insert(IdempotencyKey.__table__).values(
                user_id=user_id,
                endpoint=endpoint,
                key=key,
                request_hash=hashlib.sha256(body).hexdigest(),
                response_status=201,
                response_body=json.dumps(answer),
                response_headers=json.dumps({"Content-Type": "application/json"}),
                created_at=utcnow(),
                completed_at=utcnow(),
            )
        )

    def waiting_backends(self) -> list[int]:
        """PostgreSQL backends of this database waiting for a lock."""
        return list(
            self.observer.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
            ).scalars()
        )

    def holds_a_new_key_row(self, backend: int) -> bool:
        """The backend's transaction has inserted into idempotency_keys (not committed)."""
        return bool(
            self.observer.execute(
                sa.text(
                    "SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE l.pid = :pid AND c.relname = 'idempotency_keys' "
                    "AND l.mode = 'RowExclusiveLock' AND l.granted"
                ),
                {"pid": backend},
            ).first()
        )

    def terminate(self, backend: int) -> None:
        """End a PostgreSQL backend, as a database restart ends every connection."""
        self.observer.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})

    def commit(self) -> None:
        self.connection.exec_driver_sql("COMMIT")

    def rollback(self) -> None:
        self.connection.exec_driver_sql("ROLLBACK")

    def close(self) -> None:
        self.connection.close()
        if self.observer is not None:
            self.observer.close()
        self.engine.dispose()


@pytest.fixture
def other(app, database_url):
    transaction = OtherTransaction(database_url)
    yield transaction
    with contextlib.suppress(sa.exc.DBAPIError):  # nothing may be open any more
        transaction.rollback()
    transaction.close()


def the_waiting_request(other: OtherTransaction) -> int:
    """The backend of the one request blocked behind `other` (PostgreSQL)."""
    [backend] = wait_for(other.waiting_backends, "a request waiting for the held lock")
    return backend


@contextmanager
def in_background(call):
    """Run call() in a thread; the block gets a function returning its result or exception."""
    outcome: list = []

    def run():
        try:
            outcome.append(call())
        except Exception as exc:  # noqa: BLE001  (the outcome is what the test inspects)
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def result():
        thread.join(timeout=2 * READY_WITHIN)
        assert not thread.is_alive(), "the request never ended"
        return outcome[0]

    yield result
    thread.join(timeout=2 * READY_WITHIN)


def api_post(server, path: str, token: str, key: str, body: dict | None = None):
    """A request on a connection of its own, given long enough to wait out any held lock."""
    return server.post(None, path, token, body, key=key, timeout=2 * READY_WITHIN)


def assert_acted_once(server, path, token, key, booking_id, action) -> None:
    """The retry gets the definitive answer at once; a second retry replays it; the booking
    took the action exactly once (or, refused, not at all); one key row holds the answer."""
    status, history = OUTCOMES[action]
    retry = api_post(server, path, token, key)
    assert retry.status_code == status, retry.text
    assert "Idempotent-Replayed" not in retry.headers
    again = api_post(server, path, token, key)
    assert again.status_code == status and again.headers["Idempotent-Replayed"] == "true"
    assert again.content == retry.content
    fresh_session()
    assert event_actions(booking_id) == history
    [row] = key_rows()
    assert (row.key, row.response_status) == (key, status)


# ------------------------------------------------------------------------------ faults


@pytest.mark.parametrize("action", OUTCOMES)
def test_a_retry_after_the_worker_was_killed_mid_request_acts_once_at_once(
    app, cast, start_server, other, action
):
    server = start_server()  # its own: one of its workers is killed
    booking_id = booking_in(cast, Status.ASSIGNED).id
    path, key, token = f"/api/bookings/{booking_id}/{action}", new_key(), cast.tokens["provider"]
    fresh_session()
    other.lock_booking(booking_id)

    with in_background(lambda: api_post(server, path, token, key)) as outcome:
        worker = server.worker_serving(path)
        if not other.sqlite:
            # Killed inside its transaction: the key's row is written, the change not yet.
            backend = the_waiting_request(other)
            assert other.holds_a_new_key_row(backend)
        os.kill(worker, signal.SIGKILL)
        assert isinstance(outcome(), requests.ConnectionError)
    other.rollback()

    assert_acted_once(server, path, token, key, booking_id, action)


@pytest.mark.parametrize("action", OUTCOMES)
def test_a_retry_after_the_database_failed_mid_request_acts_once_at_once(
    app, cast, start_server, other, action
):
    # On SQLite the fault is the write lock held past the busy timeout.
    server = start_server(SQLITE_BUSY_TIMEOUT="0.5")
    booking_id = booking_in(cast, Status.ASSIGNED).id
    path, key, token = f"/api/bookings/{booking_id}/{action}", new_key(), cast.tokens["provider"]
    fresh_session()
    other.lock_booking(booking_id)

    with in_background(lambda: api_post(server, path, token, key)) as outcome:
        if not other.sqlite:
            backend = the_waiting_request(other)
            assert other.holds_a_new_key_row(backend)
            other.terminate(backend)
        failed = outcome()
    other.rollback()

    assert failed.status_code == 503, failed.text
    assert int(failed.headers["Retry-After"]) > 0
    assert "nothing was changed" in failed.json()["detail"]
    fresh_session()
    assert key_rows() == []  # the failed request left its key free
    assert_acted_once(server, path, token, key, booking_id, action)


# --------------------------------------------------------------------- a first still running


def repeat_of_a_running_first(server, cast, other, key: str, answer: dict, body=CREATE_BODY):
    """A create whose key's first request is still running (`other` wrote the key's row and
    has not committed), sent from another thread; the block runs once the repeat is waiting."""
    raw = json.dumps(CREATE_BODY).encode()
    other.write_key(cast.owner.user_id, "POST /api/bookings/", key, raw, answer)
    return in_background(
        lambda: api_post(server, "/api/bookings/", cast.tokens["owner"], key, body)
    )


def wait_until_waiting(server, other: OtherTransaction) -> None:
    """The repeat waits for the first: on PostgreSQL at the key's unique index (the database
    reports the lock wait); on SQLite at the write lock, which the worker that began the
    request cannot get past while `other` holds it."""
    if other.sqlite:
        server.worker_serving("/api/bookings/")
    else:
        the_waiting_request(other)


def test_a_repeat_waits_for_the_first_request_and_replays_its_answer(app, cast, server, other):
    key, first_answer = new_key(), {"answered_by": "the first request"}

    with repeat_of_a_running_first(server, cast, other, key, first_answer) as outcome:
        wait_until_waiting(server, other)
        other.commit()
        repeat = outcome()

    assert repeat.status_code == 201, repeat.text
    assert repeat.headers["Idempotent-Replayed"] == "true"
    assert repeat.json() == first_answer
    assert count_rows(IdempotencyKey) == 1
    assert key_rows()[0].response_body == json.dumps(first_answer)


def test_a_repeat_runs_when_the_first_request_rolled_back(app, cast, server, other):
    key = new_key()

    with repeat_of_a_running_first(server, cast, other, key, {"never": "committed"}) as outcome:
        wait_until_waiting(server, other)
        other.rollback()
        repeat = outcome()

    assert repeat.status_code == 201, repeat.text
    assert "Idempotent-Replayed" not in repeat.headers
    fresh_session()
    assert event_actions(repeat.json()["id"]) == ["create"]
    [row] = key_rows()
    assert json.loads(row.response_body) == repeat.json()


def test_a_waiting_repeat_with_another_body_is_refused_with_422_once_the_first_commits(
    app, cast, server, other
):
    key = new_key()
    other_body = {**CREATE_BODY, "notes": "ring twice"}

    with repeat_of_a_running_first(server, cast, other, key, {}, body=other_body) as outcome:
        wait_until_waiting(server, other)
        other.commit()
        repeat = outcome()

    assert repeat.status_code == 422, repeat.text
    assert "different request body" in repeat.json()["detail"]
    fresh_session()
    assert count_rows(Booking) == 0


def test_a_repeat_past_the_wait_is_told_to_retry_and_its_retry_runs(app, cast, start_server, other):
    server = start_server(IDEMPOTENCY_WAIT_SECONDS="0.3", SQLITE_BUSY_TIMEOUT="0.3")
    key, raw = new_key(), json.dumps(CREATE_BODY).encode()
    other.write_key(cast.owner.user_id, "POST /api/bookings/", key, raw, {"never": "committed"})

    waited = api_post(server, "/api/bookings/", cast.tokens["owner"], key, CREATE_BODY)
    other.rollback()
    retry = api_post(server, "/api/bookings/", cast.tokens["owner"], key, CREATE_BODY)

    if other.sqlite:  # a write lock held past the busy timeout: the database is busy
        assert waited.status_code == 503 and int(waited.headers["Retry-After"]) > 0
    else:  # the key's own first request is still running
        assert waited.status_code == 409, waited.text
        assert "still being processed" in waited.json()["detail"]
    assert retry.status_code == 201, retry.text
    assert "Idempotent-Replayed" not in retry.headers
    fresh_session()
    assert event_actions(retry.json()["id"]) == ["create"]
    assert len(key_rows()) == 1


# --------------------------------------------------------------------- a page's form keys


def test_a_card_form_key_follows_the_same_rules_as_an_api_key(database_url, people, other):
    """The hidden idempotency_key of a card's form: while a first press is still running past
    the wait, the card says so (PostgreSQL: 409 in the card; SQLite: the database is busy, 503),
    nothing is done, and the next press of the same form acts once."""
    impatient = make_app(database_url, SQLITE_BUSY_TIMEOUT=0.3, IDEMPOTENCY_WAIT_SECONDS=0.3)
    impatient.test_client_class = PageClient
    phone = impatient.test_client()
    assert AuthActions(phone).login("provider").status_code == 303
    booking_id = booking_in(people, Status.ASSIGNED).id
    form = Page(phone.get("/provider/")).form(booking_id, "accept")
    scope = f"POST /provider/bookings/{booking_id}/accept (htmx)"
    fresh_session()
    other.write_key(people.provider.user_id, scope, form.hidden["idempotency_key"], b"", {})

    waited = press(phone, form, htmx=True)
    other.rollback()
    again = press(phone, form, htmx=True)

    if other.sqlite:
        assert waited.status_code == 503 and int(waited.headers["Retry-After"]) > 0
    else:
        assert waited.status_code == 409
        assert "still being worked on" in Page(waited).card_error(booking_id)
        assert Page(waited).card_status(booking_id) == Status.ASSIGNED
    assert again.status_code == 200, again.get_data(as_text=True)
    assert Page(again).card_status(booking_id) == Status.IN_PROGRESS
    assert event_actions(booking_id) == ["create", "assign", "accept"]
    [row] = key_rows()
    assert (row.endpoint, row.response_status) == (scope, 200)

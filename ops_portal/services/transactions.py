"""One write transaction per service call: all or nothing, and serialized where it must be.

SQLite: a write transaction starts with BEGIN IMMEDIATE, so it holds the database's write lock
from its first statement (no read-then-upgrade deadlocks between gunicorn workers); waiting for
the lock is bounded by the busy timeout. Writers take turns before they begin (WriterTurn), so
the next one starts as soon as the last one commits. PostgreSQL: services lock the booking and
provider rows they decide on (SELECT ... FOR UPDATE), plus a partial unique index as a backstop.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from ..domain.errors import NotFound, ProviderBusy, StaleBooking
from ..extensions import db

_write_intent: ContextVar[bool] = ContextVar("write_intent", default=False)


class WriterTurn:
    """Whose turn it is to write to a SQLite database.

    A writer that finds the database locked waits in SQLite's busy handler, which sleeps in
    steps of up to 100 ms: under load, writers would spend most of their time asleep while the
    lock stands free. So writers queue before they begin: the threads of a process on a lock
    (each handed the turn the moment the last one ends), the processes on an exclusive flock of
    a file beside the database, tried every half millisecond. Either wait is bounded by the busy
    timeout, then fails as a locked database does (503). The flock is released by the kernel if
    its process dies."""

    POLL_SECONDS = 0.0005

    def __init__(self, database_path: str | None, timeout: float):
        self.timeout = timeout
        self.lock = threading.Lock()
        self.path = f"{database_path}-writer" if database_path else None
        self._fd: int | None = None

    @contextmanager
    def __call__(self) -> Iterator[None]:
        deadline = time.monotonic() + self.timeout
        if not self.lock.acquire(timeout=self.timeout):
            raise _locked_database()
        try:
            if self.path is not None:
                self._lock_file(deadline)
            try:
                yield
            finally:
                if self.path is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self.lock.release()

    def _lock_file(self, deadline: float) -> None:
        if self._fd is None:  # opened once per process, by the thread holding the lock
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _locked_database() from None
                time.sleep(self.POLL_SECONDS)


def _locked_database() -> sa.exc.OperationalError:
    return sa.exc.OperationalError(
        "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
    )


# The writer turn of each SQLite engine (a process's forked children open their own files).
_writer_turns: weakref.WeakKeyDictionary[sa.Engine, WriterTurn] = weakref.WeakKeyDictionary()


def configure_engine(engine: sa.Engine, *, busy_timeout: float = 15.0) -> None:
    """SQLite pragmas, explicit BEGINs (pysqlite's own transaction handling is bypassed) and
    the writers' turns."""
    if engine.dialect.name != "sqlite":
        return
    database = engine.url.database
    on_disk = database and database != ":memory:" and not database.startswith("file:")
    _writer_turns[engine] = WriterTurn(database if on_disk else None, busy_timeout)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE" if _write_intent.get() else "BEGIN")


@contextmanager
def write_transaction(*, keep_loaded: bool = False) -> Iterator[Session]:
    """Commit everything done inside once at the end; roll all of it back on any exception.

    Inside another write_transaction (an idempotent request wrapping a service call) this one
    joins it as a savepoint: its work is flushed and commits with the outer one, and if it
    fails its own part is undone at once, so the outer transaction can still record the
    refusal and commit.

    keep_loaded: objects keep the state this transaction committed instead of being expired
    (and reloaded later, when another request may already have changed them again)."""
    session = db.session
    if _write_intent.get():
        with _domain_errors():
            savepoint = session.begin_nested()
            try:
                yield session
                session.flush()
            except BaseException:
                savepoint.rollback()
                raise
            savepoint.commit()
        return
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("write_transaction() entered with unflushed changes in the session")
    engine = session.get_bind()
    if engine.dialect.name == "sqlite":
        # A read transaction the request began (loading the user) cannot become a writer
        # without risking a deadlock: end it, so the write one begins with the write lock.
        # PostgreSQL's read committed reads the latest rows at every statement, and the rows a
        # service decides on are read again under their locks: the request goes on in the
        # transaction it has, on the connection it has.
        session.rollback()
    turn = _writer_turns.get(engine)
    token = _write_intent.set(True)
    try:
        # The turn ends after the commit or the rollback, never while the transaction is open.
        with turn() if turn is not None else nullcontext():
            try:
                with _domain_errors():
                    yield session
                    if keep_loaded:
                        actual = session()  # the request's Session behind the scoped proxy
                        previous, actual.expire_on_commit = actual.expire_on_commit, False
                        try:
                            session.commit()
                        finally:
                            actual.expire_on_commit = previous
                    else:
                        session.commit()
            except BaseException:
                session.rollback()
                raise
    finally:
        _write_intent.reset(token)


@contextmanager
def _domain_errors() -> Iterator[None]:
    """Database refusals that have a business meaning, as domain errors."""
    try:
        yield
    except StaleDataError as exc:
        raise StaleBooking("The booking changed while this request was applied; reload it") from exc
    except IntegrityError as exc:
        message = str(exc.orig)
        # PostgreSQL names the index; SQLite names the column of the same partial unique index.
        if "uq_bookings_one_active_per_provider" in message or "bookings.provider_id" in message:
            raise ProviderBusy("Provider is busy") from exc
        raise


def locked_row(session: Session, model, row_id: int, what: str):
    """The row, locked for this transaction (SELECT … FOR UPDATE on PostgreSQL; SQLite's write
    lock already serializes writers). Locking a provider serializes the changes to them (assigns,
    duty), so a check that follows sees every earlier one."""
    # populate_existing: a row this session read earlier is read again, under the lock.
    row = session.execute(
        sa.select(model)
        .where(model.id == row_id)
        .with_for_update(of=model)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"No {what} {row_id}")
    return row

"""Each process's one listener on the change feed, and the streams waiting on it.

The listener (a thread; a greenlet under gevent's patched threading) reads the changes past its
cursor and keeps the latest few thousand in memory; each stream waits on the hub, never on the
database, and is woken when something new arrives, which it passes on only if its person hears
of it. On SQLite the listener reads every LIVE_POLL_SECONDS; on PostgreSQL it LISTENs and reads
when a NOTIFY arrives (and every ten polls anyway), catching up by id after every reconnect, so
a notification lost with a connection loses nothing. The database is read by one connection per
process, however many streams are open."""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from dataclasses import dataclass

from flask import Flask

from ..domain.access import Change, ChangeKind, hears_of
from ..domain.lifecycle import Actor
from ..extensions import db
from ..services import changes
from ..services.changes import Cursor

log = logging.getLogger(__name__)

CHANNEL = "ops_portal_changes"  # what migration 0010's triggers NOTIFY
# Changes kept in memory: a stream that reconnects with an older Last-Event-ID is told to
# redraw at once, as it cannot be told whether it missed something of its own.
HISTORY = 5000
RETRY_AFTER_FAILURE = (0.5, 10.0)  # the listener's backoff after a failed read, first and most
GAP_SECONDS = 10.0  # an id missing this long below ones read belongs to a rolled-back insert
# Streams wait on this many events, woken one after the other with a pause for the process's
# other requests between them: a page asked for while thousands of streams are told of a change
# waits for one group's telling, not for all of them.
SHARDS = 16
PAGES_FIRST_SECONDS = 0.05  # how long a group of streams may wait for the pages in progress


@dataclass
class Position:
    """Where a stream is in the hub's changes: the sequence number of the last one it looked
    at, and the cursor it last told its page."""

    seen: int
    told: Cursor
    epoch: int  # the hub's, when the stream last looked (a rewound log starts a new one)
    shard: int = 0  # which of the hub's wake-up events it waits on


class Settled:
    """How far one log has been read, as a low-water mark: every id up to `low` has been read,
    or given up on. On PostgreSQL an id is drawn when its row is inserted, not when it commits,
    so a later id may be read while an earlier one is still to commit: the ids read above the
    mark wait in `above`, the ones missing below them in `missing` (since when), and the mark
    moves up over those read and over those missing for GAP_SECONDS (their transaction rolled
    back: the id is never used). On SQLite, one writer at a time, the mark is simply the
    latest id read."""

    def __init__(self, low: int = 0):
        self.low = low
        self.above: set[int] = set()
        self.missing: dict[int, float] = {}

    def is_new(self, change_id: int) -> bool:
        return change_id > self.low and change_id not in self.above

    def settle(self, read: list[int], now: float) -> None:
        self.above.update(read)
        top = max(self.above, default=self.low)
        for change_id in range(self.low + 1, top + 1):
            if change_id not in self.above:
                self.missing.setdefault(change_id, now)
        while True:
            following = self.low + 1
            if following in self.above:
                self.above.discard(following)
            elif following in self.missing and now - self.missing[following] > GAP_SECONDS:
                pass
            else:
                break
            self.missing.pop(following, None)
            self.low = following


class Hub:
    def __init__(self, app: Flask):
        self.app = app
        self.lock = threading.Lock()
        self.recent: list[tuple[int, Change]] = []  # (sequence number, change), oldest first
        self.sequence = 0  # of the latest change kept
        self.epoch = 0  # one more each time the logs were found rewound (a restore)
        # How far each log has been read; None until the listener's first read.
        self.settled: dict[ChangeKind, Settled] | None = None
        self.floor = Cursor()  # the changes kept are all of those past this cursor
        self.streams = 0
        self.closed = False
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._started = threading.Event()
        self._woken = [threading.Event() for _ in range(SHARDS)]  # set, then replaced
        self._opened = itertools.count()
        self.pages_in_flight = 0  # this process's requests under way, streams and polls aside

    @property
    def cursor(self) -> Cursor | None:
        """How far this process has read the logs (each log's low-water mark)."""
        if self.settled is None:
            return None
        return Cursor(self.settled[ChangeKind.BOOKING].low, self.settled[ChangeKind.DUTY].low)

    # ------------------------------------------------------------------ streams' side

    def start(self, timeout: float = 10.0) -> None:
        """Starts the listener of this process, once (again in a forked child), and waits for
        its first read of the logs."""
        with self.lock:
            if self._pid == os.getpid() and self._thread is not None:
                alive = True
            else:
                alive = False
                self._pid = os.getpid()
                self._started = threading.Event()
                self._thread = threading.Thread(target=self._listen, name="live-listener")
                self._thread.daemon = True
                self._thread.start()
        if not alive or not self._started.is_set():
            self._started.wait(timeout)

    def open(self, actor: Actor, after: Cursor | None) -> Position | None:
        """A stream's place, having read up to `after` (None: the page has everything so far);
        None when the process holds LIVE_MAX_STREAMS already."""
        self.start()
        with self.lock:
            if self.streams >= self.app.config["LIVE_MAX_STREAMS"]:
                return None
            self.streams += 1
            shard = next(self._opened) % SHARDS
            current = self.cursor or Cursor()
            # A page drawn past what this process has read (another process drew it a moment
            # ago) is told of the rest as it comes.
            if after is None or after.covers(current):
                told = current if after is None else after
                return Position(self.sequence, told, self.epoch, shard)
            # What they missed is told at once: when it is no longer known (older than the
            # changes kept), or when they hear of any of it.
            if not after.covers(self.floor) or self._missed(actor, after):
                return Position(self.sequence, _UNTOLD, self.epoch, shard)
            return Position(self.sequence, after, self.epoch, shard)

    def close(self, _position: Position) -> None:
        with self.lock:
            self.streams -= 1

    def news(self, actor: Actor, position: Position, timeout: float) -> Cursor | None:
        """Waits up to `timeout` for a change the actor hears of past `position`; the cursor to
        tell (its page redraws), or None (nothing for them: a heartbeat is due, or the hub is
        closing)."""
        deadline = time.monotonic() + timeout
        while True:
            # Taken before looking: a change kept meanwhile sets it, so none is slept through.
            woken = self._woken[position.shard]
            with self.lock:
                if position.epoch != self.epoch:  # the logs were rewound: start over
                    position.epoch, position.told = self.epoch, _UNTOLD
                if position.told is _UNTOLD:
                    position.told = self.cursor or Cursor()
                    return position.told
                heard = self._heard_since(actor, position.seen)
                position.seen = self.sequence
                if heard:
                    position.told = self.cursor
                    return position.told
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return None
            woken.wait(left)

    def shut(self) -> None:
        """Ends every stream of this process (a worker shutting down): each closes, and the
        browser reconnects after the random wait the stream began with, to a worker still
        serving."""
        with self.lock:
            self.closed = True
            woken = self._wake()
        self._ring(woken)

    def _wake(self) -> list[threading.Event]:
        """Called holding the lock: the events every stream waiting is to be woken by (ring
        them once the lock is let go), replaced by the next generation's. An event set once
        wakes thousands of waiters at the cost of one each (a condition would hand its lock to
        each waiter in turn)."""
        woken, self._woken = self._woken, [threading.Event() for _ in range(SHARDS)]
        return woken

    def _ring(self, woken: list[threading.Event]) -> None:
        """Wakes the streams group by group; between groups, the pages this process is serving
        go first (for at most PAGES_FIRST_SECONDS): a person waiting for a page is served
        before a doorbell, which is a few milliseconds later for it."""
        for index, event in enumerate(woken):
            if index:
                waited_until = time.monotonic() + PAGES_FIRST_SECONDS
                time.sleep(0.0005)  # a turn for the requests waiting: a pass of the loop
                while self.pages_in_flight > 0 and time.monotonic() < waited_until:
                    time.sleep(0.002)
            event.set()

    def page_began(self) -> None:
        self.pages_in_flight += 1

    def page_ended(self) -> None:
        self.pages_in_flight = max(0, self.pages_in_flight - 1)

    def _heard_since(self, actor: Actor, seen: int) -> bool:
        if not self.recent or seen >= self.sequence:
            return False
        first = self.recent[0][0]
        start = max(0, seen + 1 - first)
        return any(hears_of(actor, change) for _, change in self.recent[start:])

    def _missed(self, actor: Actor, after: Cursor) -> bool:
        """Whether a change the actor hears of is past `after`: the latest changes first, up to
        the first one of each kind that `after` has read (those before it are read too)."""
        kinds_left = {ChangeKind.BOOKING, ChangeKind.DUTY}
        for _, change in reversed(self.recent):
            if change.kind not in kinds_left:
                continue
            if after.has_read(change):
                kinds_left.discard(change.kind)
                if not kinds_left:
                    return False
            elif hears_of(actor, change):
                return True
        return False

    # ------------------------------------------------------------------ the listener

    def _listen(self) -> None:
        backoff = RETRY_AFTER_FAILURE[0]
        while not self.closed:
            try:
                with self.app.app_context():
                    if self.settled is None:
                        self._begin()
                    engine = db.engine
                    if engine.dialect.name == "postgresql":
                        self._listen_postgresql(engine)
                    else:
                        self._poll()
                backoff = RETRY_AFTER_FAILURE[0]
            except Exception:
                log.exception("live: reading the change feed failed; again in %.1f s", backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, RETRY_AFTER_FAILURE[1])

    def _begin(self) -> None:
        """The logs' end now, and the latest changes before it (so a page reconnecting after a
        restart is told to redraw only if something it hears of changed meanwhile)."""
        try:
            end = changes.latest_cursor()
            floor = Cursor(max(0, end.bookings - HISTORY // 2), max(0, end.duty - HISTORY // 2))
            known = changes.changes_after(floor, limit=HISTORY // 2)
        finally:
            db.session.remove()
        with self.lock:
            self.floor = floor
            self._keep(known)  # no stream waits yet: nothing to wake
            self._settle_at(end)
        self._started.set()

    def _read(self) -> None:
        settled = self.settled
        late = tuple(settled[kind].missing for kind in ChangeKind)
        try:
            found = changes.changes_after(self.cursor, late=late)
            found = [c for c in found if settled[c.kind].is_new(c.id)]
            # Nothing new: were the logs rewound (a database restored from a backup)?
            end = None if found else changes.latest_cursor()
        finally:
            db.session.remove()  # the connection goes back to the pool between reads
        woken = []
        with self.lock:
            if end is not None and not end.covers(self.cursor):
                self.recent.clear()
                self.floor = end
                self._settle_at(end)
                self.epoch += 1  # every stream is told to redraw, as of the logs' end
                woken = self._wake()
            else:
                now = time.monotonic()
                for kind in ChangeKind:
                    settled[kind].settle([c.id for c in found if c.kind is kind], now)
                if found:
                    woken = self._keep(found)
        self._ring(woken)

    def _settle_at(self, end: Cursor) -> None:
        """Called holding the lock: everything up to `end` counts as read."""
        self.settled = {
            ChangeKind.BOOKING: Settled(end.bookings),
            ChangeKind.DUTY: Settled(end.duty),
        }

    def _keep(self, found: list[Change]) -> list[threading.Event]:
        """Called holding the lock: the changes found join those kept; the events that wake
        the streams waiting (_wake)."""
        for change in found:
            self.sequence += 1
            self.recent.append((self.sequence, change))
        if len(self.recent) > 2 * HISTORY:
            dropped = self.recent[: len(self.recent) - HISTORY]
            del self.recent[: len(dropped)]
            for _, change in dropped:
                self.floor = self.floor.past(change)
        return self._wake()

    def _poll(self) -> None:
        interval = self.app.config["LIVE_POLL_SECONDS"]
        while not self.closed:
            self._read()
            time.sleep(interval)

    def _listen_postgresql(self, engine) -> None:
        import psycopg

        url = engine.url.set(drivername="postgresql")
        safety = 10 * self.app.config["LIVE_POLL_SECONDS"]
        with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self._read()  # what was appended while no one listened
            while not self.closed:
                # Any notification (or none for `safety` seconds): read past the cursor. The
                # payload (an id) only wakes the listener; the read finds every change.
                for _ in conn.notifies(timeout=safety, stop_after=1):
                    pass
                self._read()


# A stream that must be told at once (what it missed is no longer known, or it may have been).
_UNTOLD = Cursor(-1, -1)

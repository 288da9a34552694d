"""SQLite writers take turns before they begin (services.transactions.WriterTurn): the threads
of a process on a lock, processes on an flock of a file beside the database. A turn is handed
on when the last one ends, a wait is bounded by the busy timeout, and a process that dies holding
the turn gives it up (the kernel releases its flock)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import pytest
import sqlalchemy as sa

from ops_portal.services.transactions import WriterTurn

HOLD_AND_WAIT = """
import sys
from ops_portal.services.transactions import WriterTurn
with WriterTurn(sys.argv[1], timeout=5)():
    print("holding", flush=True)
    sys.stdin.read()  # until killed
"""


def test_a_writer_waits_for_the_turn_and_gets_it_when_the_last_one_ends(tmp_path):
    database = str(tmp_path / "db.sqlite3")
    # Two turns on one file stand for two processes: flocks of separate opens exclude each other.
    first, second = WriterTurn(database, timeout=30), WriterTurn(database, timeout=30)
    order: list[str] = []
    waiting = threading.Event()

    def second_writer():
        waiting.set()
        with second():
            order.append("second writes")

    with first():
        thread = threading.Thread(target=second_writer)
        thread.start()
        waiting.wait(10)
        order.append("first writes")
    thread.join(30)
    assert order == ["first writes", "second writes"]


def test_threads_of_one_process_take_turns_one_at_a_time(tmp_path):
    turn = WriterTurn(str(tmp_path / "db.sqlite3"), timeout=30)
    inside, most = [0], [0]
    lock = threading.Lock()

    def write():
        for _ in range(50):
            with turn():
                with lock:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                with lock:
                    inside[0] -= 1

    threads = [threading.Thread(target=write) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert most[0] == 1


def test_a_wait_past_the_busy_timeout_fails_as_a_locked_database(tmp_path):
    database = str(tmp_path / "db.sqlite3")
    holder, waiter = WriterTurn(database, timeout=30), WriterTurn(database, timeout=0.05)
    with holder(), pytest.raises(sa.exc.OperationalError, match="database is locked"), waiter():
        pass
    with waiter():  # free again
        pass


def test_a_process_killed_while_it_holds_the_turn_gives_it_up(tmp_path):
    database = str(tmp_path / "db.sqlite3")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_WAIT, database],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(sa.exc.OperationalError), WriterTurn(database, timeout=0.05)():
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        with WriterTurn(database, timeout=10)():
            pass
    finally:
        holder.kill()
        holder.wait(10)

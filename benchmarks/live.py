"""The live pages under load: N open streams of the dispatch board against a real gunicorn on
loopback (gevent workers, as gunicorn.conf.py serves production), a change every few hundred
ms, and what it costs.

    python -m benchmarks.live [--db sqlite|postgresql] [--streams 2000] [--workers 1]
                              [--seconds 30] [--change-every 0.3] [--requests 60]
    make bench-live [DB=postgresql] [BENCH_ARGS="--streams 500"]

On a scratch copy of the smallest benchmark dataset (the changes are real rows), in order:
1. idle: the board (/admin/) and the provider's queue (/provider/) read with no stream open;
   each worker's RSS and (PostgreSQL) the server's connections to the database;
2. N streams of /live/board opened by benchmarks/streams.py (a process of its own, gevent, all
   with the admin's session cookie); RSS and connections again;
3. a writer in this process makes a change every --change-every seconds for --seconds (a
   customer's booking created, then cancelled, through the services), noting when each
   commit returned, while the same pages are read again; each stream notes when the change's
   event arrived: delivery = arrival - commit, and who missed what;
4. a restart: SIGHUP to gunicorn (new workers, the old ones end their streams); when each
   stream got back in, honouring the `retry:` it was sent; then one last change, which every
   stream must be told.
Prints the figures with PASS/FAIL beside each target (nothing fails the run) and writes them
to benchmarks/results/live_<db>.json.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests
import sqlalchemy as sa

from ops_portal import create_app
from ops_portal.config import normalize_database_url
from ops_portal.domain.lifecycle import Action
from ops_portal.extensions import db
from ops_portal.models import BookingEvent
from ops_portal.services import accounts, bookings

from . import dataset, reads
from .__main__ import RESULTS, git, machine, verdict
from .server import ROOT, Server, raise_open_files_limit

TARGETS = {
    "delivery_p95_ms": 500,  # arrival - commit, to every stream of one worker
    "fan_out_streams": 1000,  # ... with at least this many streams per worker
    "streams_per_worker": 2000,
    "kb_per_stream": 25,  # a worker's RSS with the streams open, less without, per stream
    "page_p95_ratio": 1.2,  # a page's p95 with the streams open and changes flowing / idle
    "restart_spread_s": 5.0,  # first to last reconnect after a restart
}
# A worker's connections with streams open may reach its pool's size (SQLAlchemy's default of
# 5 kept: a burst of streams opening loads their users at once) and its listener's one, but no
# more, however many streams it holds.
CONNECTIONS_PER_WORKER = 5 + 1
STREAM_PATH = "/live/board"
PAGES = ("board", "provider queue")  # reads.READS by name: /admin/ and /provider/
# The server's PostgreSQL connections carry this application_name, to be counted apart.
SERVER_TAG = "ops-bench-live"
CAP_REFUSAL = "Too many live pages on this server"  # the first line of the cap's 503
WAIT_PER_STREAM = 0.05  # seconds allowed per stream for them all to open (or reopen), beyond
WAIT_AT_LEAST = 30.0  # ... this much
SETTLE = 2.0  # seconds given to the last change's events before counting who got it


# ---------------------------------------------------------------------------------- the streams


class StreamClient:
    """benchmarks/streams.py as a child process: N streams of `path` with `cookie`."""

    def __init__(self, base_url: str, path: str, cookie: str, count: int, folder: Path):
        self.count = count
        self.report_path = folder / "streams.json"
        command = [sys.executable, "-m", "benchmarks.streams", base_url, path, cookie]
        self.process = subprocess.Popen(
            [*command, str(count), str(self.report_path)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _ask(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f"the stream client exited with {self.process.wait()}")
        return json.loads(answer)

    def status(self) -> dict:
        return self._ask("status")

    def wait_until(self, ready, what: str) -> float:
        """Until ready(status) (bounded: WAIT_AT_LEAST, more for many streams); the seconds it
        took."""
        began = time.monotonic()
        deadline = began + max(WAIT_AT_LEAST, WAIT_PER_STREAM * self.count)
        while time.monotonic() < deadline:
            status = self.status()
            if ready(status):
                return time.monotonic() - began
            time.sleep(0.1)  # polling another process's state, bounded by the deadline
        raise RuntimeError(f"not seen in time: {what} (last status {status})")

    def stop(self) -> list[dict]:
        """Every stream's record (benchmarks.streams.Record, as a dict)."""
        self._ask("stop")
        self.process.wait(timeout=30)
        return json.loads(self.report_path.read_text())

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


# ---------------------------------------------------------------------------------- the writer


class Writer:
    """Changes made in this process through the services, as any other process of the app
    would: the dataset's customer creates a booking, then cancels it (so the board stays the
    same size), and so on. Each change: its booking event's id and when its commit returned."""

    def __init__(self, database_url: str, info: dict):
        self.app = create_app(
            {"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": dataset.SECRET_KEY}
        )
        with self.app.app_context():
            self.actor = accounts.actor_for_token(info["accounts"]["customer"]["token"])
            db.session.remove()
        self.open_booking: int | None = None
        self.changes: list[tuple[int, float]] = []

    def change(self) -> tuple[int, float]:
        with self.app.app_context():
            if self.open_booking is None:
                booking = bookings.create_booking(
                    self.actor, service="Leaking tap", address="1 Live Lane"
                )
                self.open_booking = booking.id
            else:
                booking = bookings.perform_action(self.actor, self.open_booking, Action.CANCEL)
                self.open_booking = None
            committed = time.time()
            event_id = db.session.scalar(
                sa.select(sa.func.max(BookingEvent.id)).where(BookingEvent.booking_id == booking.id)
            )
            db.session.remove()
        self.changes.append((event_id, committed))
        return event_id, committed

    def run(self, count: int, every: float) -> threading.Thread:
        """`count` changes, one every `every` seconds on a fixed schedule, in a thread."""

        def write():
            began = time.monotonic()
            for index in range(count):
                time.sleep(max(0.0, began + index * every - time.monotonic()))
                self.change()

        thread = threading.Thread(target=write, name="live-writer", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        with self.app.app_context():
            db.engine.dispose()


# ---------------------------------------------------------------------------------- the run


def run_live(
    database_url: str,
    info: dict,
    *,
    streams: int = 2000,
    workers: int = 1,
    changes: int = 100,
    change_every: float = 0.3,
    page_requests: int = 60,
    streams_apart: bool = False,
    log=print,
) -> dict:
    """The whole run against the dataset at `database_url` (written to: give a scratch copy);
    every figure, as written to the JSON file. `streams_apart`: the streams are served by a
    gunicorn of their own (as a proxy routing /live/ elsewhere would), the pages by another."""
    raise_open_files_limit()  # for gunicorn, which inherits it
    postgresql = sa.make_url(database_url).get_backend_name() == "postgresql"
    served_url = database_url
    if postgresql:
        served_url = (
            sa.make_url(database_url)
            .update_query_dict({"application_name": SERVER_TAG})
            .render_as_string(hide_password=False)
        )
    connections = ServerConnections(database_url) if postgresql else None
    writer = Writer(database_url, info)
    folder = Path(tempfile.mkdtemp(prefix="ops-bench-live-"))
    client = None
    try:
        with contextlib.ExitStack() as servers:
            server = servers.enter_context(Server(served_url, workers=workers, gevent=True))
            streaming = server
            if streams_apart:
                apart = Server(served_url, workers=workers, gevent=True)
                streaming = servers.enter_context(apart)
            readers = reads.Readers(server.base_url, info, roles=("admin", "provider"))
            admin = readers.logged_in["admin"]
            # Each worker's hub started (its listener reading the logs) before the baseline.
            for _ in range(4 * workers):
                poll = streaming.url(STREAM_PATH + "/poll")
                requests.get(poll, cookies=admin.cookies, timeout=30)
            log(f"Idle: {len(PAGES)} pages x {page_requests} requests, no stream open")
            idle_pages = read_pages(readers, page_requests)
            idle = {"rss_kb": streaming.worker_rss_kb(), "connections": _count(connections)}

            log(f"Opening {streams:,} streams of {STREAM_PATH} ...")
            cookie = "; ".join(f"{c.name}={c.value}" for c in admin.cookies)
            client = StreamClient(streaming.base_url, STREAM_PATH, cookie, streams, folder)
            open_seconds = client.wait_until(
                lambda status: status["open"] == streams, f"{streams} streams open"
            )
            time.sleep(1.0)  # the handshakes' garbage collected, pools back to their size
            opened = {"rss_kb": streaming.worker_rss_kb(), "connections": _count(connections)}

            log(f"Changes: {changes} x every {change_every:g} s, pages read meanwhile")
            cpu_before = _cpu_seconds(streaming.worker_pids(), client.process.pid)
            writing = writer.run(changes, change_every)
            busy_pages = read_pages(readers, page_requests)
            writing.join()
            cpu = _cpu_seconds(streaming.worker_pids(), client.process.pid)
            cpu_per_change_ms = {
                side: round((cpu[side] - cpu_before[side]) * 1000 / changes, 1) for side in cpu
            }
            time.sleep(SETTLE)
            flowing = {"rss_kb": streaming.worker_rss_kb(), "connections": _count(connections)}
            steady = client.status()

            log("Restart: SIGHUP ...")
            restarted_at = time.time()
            streaming.restart_workers()
            client.wait_until(
                lambda status: status["ended_once"] == streams and status["open"] == streams,
                f"{streams} streams ended once and open again",
            )
            last_change = writer.change()
            time.sleep(SETTLE)
            records = client.stop()
            server_rss_max_mb = max(server.max_rss_mb, streaming.max_rss_mb)
    finally:
        if client is not None:
            client.kill()
        shutil.rmtree(folder, ignore_errors=True)
        writer.close()
        if connections is not None:
            connections.close()
    return figures(
        records,
        streams=streams,
        workers=workers,
        changes=writer.changes[:-1],
        last_change=last_change,
        restarted_at=restarted_at,
        open_seconds=open_seconds,
        memory={"idle": idle, "open": opened, "flowing": flowing},
        pages={"idle": idle_pages, "streaming": busy_pages},
        status_before_restart=steady,
        cpu_per_change_ms=cpu_per_change_ms,
        server_rss_max_mb=server_rss_max_mb,
    )


def read_pages(readers: reads.Readers, requests: int) -> dict:
    """Each page of PAGES, `requests` sequential requests after 3 warm-up ones."""
    by_name = {read.name: read for read in reads.READS}
    return {
        name: reads.summarize(
            reads.sample(readers, by_name[name], requests=requests, clients=1, warmup=3)
        )
        for name in PAGES
    }


class ServerConnections:
    """The server's connections to its PostgreSQL database, counted by application_name."""

    def __init__(self, database_url: str):
        self.engine = sa.create_engine(
            normalize_database_url(database_url),
            isolation_level="AUTOCOMMIT",
            poolclass=sa.NullPool,
        )

    def count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = :tag"
                ),
                {"tag": SERVER_TAG},
            ).scalar()

    def close(self) -> None:
        self.engine.dispose()


def _cpu_seconds(worker_pids: list[int], client_pid: int) -> dict[str, float]:
    """CPU seconds (user + system) so far of the server's workers together, and the client's."""

    def of(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    return {"server": sum(of(pid) for pid in worker_pids), "client": of(client_pid)}


def _count(connections: ServerConnections | None) -> int | None:
    return connections.count() if connections is not None else None


# ---------------------------------------------------------------------------------- figures


def figures(records: list[dict], *, streams: int, workers: int, changes, last_change, **run):
    """Every figure of the run from the streams' records and what the benchmark noted."""
    arrivals = [_arrivals(record) for record in records]
    latencies, got_per_change, first_ms, fan_out_ms = [], [], [], []
    for event_id, committed in changes:
        told = [_told_at(arrival, event_id) for arrival in arrivals]
        told = [when for when in told if when is not None]
        latencies += [(when - committed) * 1000 for when in told]
        got_per_change.append(len(told))
        if told:
            # Where the time goes: until the first stream is told (the listener's read), and
            # from the first to the last (the fan-out).
            first_ms.append((min(told) - committed) * 1000)
            fan_out_ms.append((max(told) - min(told)) * 1000)
    missed = len(changes) * streams - len(latencies)
    delivery = {
        "changes": len(changes),
        "streams": streams,
        "deliveries": len(latencies),
        "missed": missed,
        "streams_that_got_every_change": sum(
            all(_told_at(arrival, event_id) is not None for event_id, _ in changes)
            for arrival in arrivals
        ),
        "fewest_streams_told_of_a_change": min(got_per_change, default=None),
    }
    if first_ms:
        delivery["first_stream_p50_ms"] = round(reads.percentile(first_ms, 0.5), 1)
        delivery["fan_out_p50_ms"] = round(reads.percentile(fan_out_ms, 0.5), 1)
        delivery["fan_out_max_ms"] = round(max(fan_out_ms), 1)
    if latencies:
        delivery.update(
            {
                f"{name}_ms": round(reads.percentile(latencies, q), 1)
                for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
            }
        )

    memory = run.pop("memory")
    idle_kb = sum(memory["idle"]["rss_kb"].values())
    per_stream = {
        phase: round((sum(memory[phase]["rss_kb"].values()) - idle_kb) / streams, 2)
        for phase in ("open", "flowing")
    }

    restarted_at = run.pop("restarted_at")
    reconnects, attempts_after, too_soon = [], Counter(), 0
    for record in records:
        back = [opened for opened in record["opened"] if opened > restarted_at]
        ended = [(when, retry) for when, retry in record["ended"] if when > restarted_at]
        if back:
            reconnects.append(back[0])
            # A browser waits the retry it was sent before it reconnects: so must the client.
            too_soon += bool(ended) and back[0] - ended[0][0] < ended[0][1] / 1000
        for when, status, reason in record["attempts"]:
            if when > restarted_at:
                attempts_after[_status_class(status, reason)] += 1
    all_attempts = Counter(
        _status_class(status, reason)
        for record in records
        for _, status, reason in record["attempts"]
    )
    restart = {
        "streams_back": len(reconnects),
        "first_reconnect_s": round(min(reconnects) - restarted_at, 2) if reconnects else None,
        "last_reconnect_s": round(max(reconnects) - restarted_at, 2) if reconnects else None,
        "spread_s": round(max(reconnects) - min(reconnects), 2) if reconnects else None,
        "attempts_after": dict(attempts_after),
        "streams_back_before_their_retry": too_soon,
        "retry_ms_range": _range(retry for record in records for _, retry in record["ended"]),
        "streams_told_of_the_change_after": sum(
            _told_at(arrival, last_change[0]) is not None for arrival in arrivals
        ),
    }
    pages = run.pop("pages")
    page_ratios = {
        name: round(pages["streaming"][name]["p95_ms"] / pages["idle"][name]["p95_ms"], 2)
        for name in PAGES
    }
    return {
        "streams": streams,
        "workers": workers,
        "delivery": delivery,
        "memory": {
            "rss_kb": {phase: taken["rss_kb"] for phase, taken in memory.items()},
            "kb_per_stream": per_stream,
            "server_rss_max_mb": run.pop("server_rss_max_mb"),
        },
        "connections": {phase: taken["connections"] for phase, taken in memory.items()},
        "pages": {**pages, "p95_ratio": page_ratios},
        "restart": restart,
        "attempts": dict(all_attempts),
        "open_seconds": round(run.pop("open_seconds"), 2),
        **run,
    }


def _arrivals(record: dict) -> tuple[list[int], list[float]]:
    """A stream's events as (the highest booking event id told so far, at each event; when each
    arrived), for a bisection by id."""
    highest, told, times = 0, [], []
    for arrived, event_id in record["events"]:
        highest = max(highest, int(event_id.split("-")[0]))
        told.append(highest)
        times.append(arrived)
    return told, times


def _told_at(arrival: tuple[list[int], list[float]], event_id: int) -> float | None:
    """When the stream was first told a cursor past booking event `event_id` (None: never)."""
    told, times = arrival
    index = bisect.bisect_left(told, event_id)
    return times[index] if index < len(told) else None


def _status_class(status, reason: str) -> str:
    if status == "error":
        return "connection error"
    if status == 503 and reason == CAP_REFUSAL:
        return "503 (the cap)"
    return str(status) if status < 500 else f"{status} (5xx: {reason[:60]})"


def _range(values) -> list | None:
    found = [value for value in values if value is not None]
    return [min(found), max(found)] if found else None


# ---------------------------------------------------------------------------------- the summary


def targets(report: dict) -> list[tuple[str, str, bool | None]]:
    """(target, measured, PASS/FAIL/None) for each target of the issue."""
    delivery, memory, restart = report["delivery"], report["memory"], report["restart"]
    per_worker = report["streams"] / report["workers"]
    p95 = delivery.get("p95_ms")
    # The fan-out target is for a worker with many streams: a smaller run is not judged.
    judged = p95 is not None and per_worker >= TARGETS["fan_out_streams"]
    kb = max(memory["kb_per_stream"].values())
    connections = report["connections"]
    most = None if connections["idle"] is None else max(connections["open"], connections["flowing"])
    bound = CONNECTIONS_PER_WORKER * report["workers"]
    other_5xx = sum(
        count
        for status, count in restart["attempts_after"].items()
        if "5xx" in status or status == "connection error"
    )
    lines = [
        (
            f"delivery p95 ≤ {TARGETS['delivery_p95_ms']} ms "
            f"(≥ {TARGETS['fan_out_streams']:,} streams a worker)",
            f"{p95} ms to {per_worker:,.0f} streams a worker",
            p95 <= TARGETS["delivery_p95_ms"] if judged else None,
        ),
        (
            "every stream told of every change",
            f"{delivery['missed']} missed of {delivery['changes'] * report['streams']:,}",
            delivery["missed"] == 0,
        ),
        (
            f"≥ {TARGETS['streams_per_worker']:,} streams a worker, "
            f"≤ {TARGETS['kb_per_stream']} KB RSS each",
            f"{per_worker:,.0f} streams, {kb} KB each",
            per_worker >= TARGETS["streams_per_worker"] and kb <= TARGETS["kb_per_stream"],
        ),
        (
            f"PostgreSQL connections do not grow with streams (≤ {bound}: pools and listeners)",
            "-" if most is None else f"{connections['idle']} idle, {most} with streams",
            None if most is None else most <= bound,
        ),
    ]
    for name in PAGES:
        idle, busy = (report["pages"][phase][name]["p95_ms"] for phase in ("idle", "streaming"))
        ratio = report["pages"]["p95_ratio"][name]
        lines.append(
            (
                f"{name} p95 within {TARGETS['page_p95_ratio'] - 1:.0%} of idle",
                f"{idle} → {busy} ms (x{ratio})",
                ratio <= TARGETS["page_p95_ratio"],
            )
        )
    lines.append(
        (
            f"restart: reconnects spread ≥ {TARGETS['restart_spread_s']:g} s, no 5xx past the cap",
            f"{restart['spread_s']} s, {other_5xx} 5xx/errors",
            restart["spread_s"] is not None
            and restart["spread_s"] >= TARGETS["restart_spread_s"]
            and other_5xx == 0,
        )
    )
    lines.append(
        (
            "every stream back and told of the change after",
            f"{restart['streams_back']} back, {restart['streams_told_of_the_change_after']} told",
            restart["streams_back"] == report["streams"]
            and restart["streams_told_of_the_change_after"] == report["streams"],
        )
    )
    return lines


def print_summary(report: dict) -> None:
    delivery, memory, restart = report["delivery"], report["memory"], report["restart"]
    print(f"\nLive: {report['streams']:,} streams of {STREAM_PATH}, {report['workers']} worker(s)")
    print(f"  opened in {report['open_seconds']} s; answers to every attempt: {report['attempts']}")
    print(
        f"  delivery of {delivery['changes']} changes: p50 {delivery.get('p50_ms')} ms, "
        f"p95 {delivery.get('p95_ms')} ms, p99 {delivery.get('p99_ms')} ms, "
        f"max {delivery.get('max_ms')} ms; {delivery['deliveries']:,} delivered, "
        f"{delivery['missed']} missed; {delivery['streams_that_got_every_change']:,} streams "
        f"got every change; the fewest told of one change: "
        f"{delivery['fewest_streams_told_of_a_change']}"
    )
    print(
        f"  where the time goes: to the first stream p50 {delivery.get('first_stream_p50_ms')} "
        f"ms, first to last stream p50 {delivery.get('fan_out_p50_ms')} ms (max "
        f"{delivery.get('fan_out_max_ms')}); CPU per change: {report['cpu_per_change_ms']} ms"
    )
    rss = {phase: sum(kb.values()) // 1024 for phase, kb in memory["rss_kb"].items()}
    print(
        f"  worker RSS (MB, all workers): idle {rss['idle']}, streams open {rss['open']}, "
        f"changes flowing {rss['flowing']}; per stream: {memory['kb_per_stream']} KB"
    )
    connections = report["connections"]
    if connections["idle"] is not None:
        print(f"  server's PostgreSQL connections: {connections}")
    for name in PAGES:
        idle, busy = (report["pages"][phase][name] for phase in ("idle", "streaming"))
        print(
            f"  {name:<15} p50 {idle['p50_ms']} → {busy['p50_ms']} ms, "
            f"p95 {idle['p95_ms']} → {busy['p95_ms']} ms (idle → streams open, changes flowing)"
        )
    print(
        f"  restart: {restart['streams_back']:,} streams back, from "
        f"{restart['first_reconnect_s']} s to {restart['last_reconnect_s']} s after SIGHUP "
        f"(spread {restart['spread_s']} s; retry sent {restart['retry_ms_range']} ms); "
        f"answers since: {restart['attempts_after']}"
    )
    print("\nTargets:")
    checks = []
    for what, value, ok in targets(report):
        print(f"  {verdict(ok):<5} {what:<66} {value}")
        checks.append({"target": what, "value": value, "pass": ok})
    report["targets"] = checks


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.live", description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--size", type=int, default=2_000, help="the dataset's bookings")
    parser.add_argument("--postgres-url", default=dataset.DEFAULT_POSTGRES_URL)
    parser.add_argument("--streams", type=int, default=2_000)
    parser.add_argument("--workers", type=int, default=1, help="gunicorn (gevent) workers")
    parser.add_argument("--seconds", type=float, default=30, help="how long changes flow")
    parser.add_argument("--change-every", type=float, default=0.3, help="seconds")
    parser.add_argument("--requests", type=int, default=60, help="timed requests per page")
    parser.add_argument("--out", help="the JSON file (default benchmarks/results/live_<db>.json)")
    parser.add_argument(
        "--streams-apart",
        action="store_true",
        help="serve the streams by a gunicorn of their own and the pages by another",
    )
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse(argv)
    began = time.monotonic()
    url, info = dataset.ensure(args.db, args.size, postgres_url=args.postgres_url)
    settings = {key: value for key, value in vars(args).items() if key != "postgres_url"}
    report = {"machine": machine(args), "git": git(), "settings": settings}
    with dataset.scratch_copy(
        url, f"ops_bench_{args.size}_live", postgres_url=args.postgres_url
    ) as scratch:
        report |= run_live(
            scratch,
            info,
            streams=args.streams,
            workers=args.workers,
            changes=max(1, round(args.seconds / args.change_every)),
            change_every=args.change_every,
            page_requests=args.requests,
            streams_apart=args.streams_apart,
        )
    report["machine"]["load_average_after"] = os.getloadavg()
    print_summary(report)
    out = Path(args.out) if args.out else RESULTS / f"live_{args.db}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"\nWritten: {out} ({time.monotonic() - began:.0f} s in all)")


if __name__ == "__main__":
    main(sys.argv[1:])

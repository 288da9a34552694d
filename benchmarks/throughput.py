"""Lifecycle throughput: client threads against the server, each looping one booking through
create → assign → accept → complete over the JSON API; and the database's own ceiling for the
same transactions, without the app.

The app: N client threads (each with a customer and a provider of its own, the admin shared)
run for a warm-up and then T seconds; cycles and requests completed in those T seconds count.
Every answer must be 2xx; failures are counted and shown.

The ceiling: the statements the app sends for one cycle are captured once (the benchmark's
counting hook, in process) and printed; then the same statements run straight against the
database, N clients at once: on SQLite, N processes with sqlite3 on the same file (WAL, BEGIN
IMMEDIATE, as the app); on PostgreSQL, pgbench running a script of them. Run on a scratch
copy of the dataset, which they leave a few thousand bookings larger.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from .reads import REQUEST_TIMEOUT, percentile

# The seed app's figure recorded when this benchmark was written (2 workers, 8 client threads,
# this machine); the seed app is not in this repository, so it cannot be measured again here.
SEED_CYCLES_PER_SECOND = 17.7
BOOKING_BODY = {"service": "Plumbing", "address": "4 Mill Lane", "notes": "Benchmark cycle"}


# ---------------------------------------------------------------------------------- the app


def run_cycle(post, account: dict, admin_token: str) -> None:
    """One booking through its lifecycle; `post(path, token, body)` raises on a refusal."""
    booking = post("/api/bookings/", account["customer_token"], BOOKING_BODY)
    path = f"/api/bookings/{booking['id']}"
    post(f"{path}/assign", admin_token, {"provider_id": account["provider_id"]})
    post(f"{path}/accept", account["provider_token"], {})
    post(f"{path}/complete", account["provider_token"], {})


class Refused(Exception):
    pass


def run_throughput(
    base_url: str, info: dict, *, clients: int = 8, seconds: float = 20, warmup: float = 3
) -> dict:
    accounts = info["threads"]
    if clients > len(accounts):
        raise ValueError(f"the dataset has accounts for {len(accounts)} client threads")
    admin_token = info["accounts"]["admin"]["token"]
    began = time.monotonic()
    measure_from, end = began + warmup, began + warmup + seconds
    lock = threading.Lock()
    latencies: list[float] = []  # ms, of requests begun in the measured window
    cycles, failures = [0], []

    def client(account):
        session = requests.Session()

        def post(path, token, body):
            start = time.monotonic()
            answer = session.post(
                base_url + path,
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=REQUEST_TIMEOUT,
            )
            if start >= measure_from:
                with lock:
                    latencies.append((time.monotonic() - start) * 1000)
            if not 200 <= answer.status_code < 300:
                raise Refused(f"{answer.status_code} POST {path}: {answer.text[:200]}")
            return answer.json()

        while time.monotonic() < end:
            try:
                run_cycle(post, account, admin_token)
            except (Refused, requests.RequestException) as error:
                with lock:
                    failures.append(str(error))
                continue
            finished = time.monotonic()
            if measure_from <= finished <= end:
                with lock:
                    cycles[0] += 1

    threads = [
        threading.Thread(target=client, args=(account,), daemon=True)
        for account in accounts[:clients]
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=warmup + seconds + 4 * REQUEST_TIMEOUT)
    return {
        "clients": clients,
        "seconds": seconds,
        "cycles": cycles[0],
        "cycles_per_second": round(cycles[0] / seconds, 1),
        "requests_per_second": round(len(latencies) / seconds, 1),
        "p50_ms": round(percentile(latencies, 0.5), 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 0.95), 1) if latencies else None,
        "failures": len(failures),
        "failure_examples": failures[:5],
    }


def capture_cycle(database_url: str, info: dict) -> list[tuple[str, str, list[str]]]:
    """The statements the app sends for one cycle: (method, path, statements) per request,
    through the benchmark's counting hook, in this process. The second of two cycles: the first
    one's extra work (tokens' last use recorded, connections opened) is not per cycle."""
    from ops_portal import create_app
    from ops_portal.extensions import db

    from .dataset import SECRET_KEY
    from .wsgi import CountStatements

    sink: list = []
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": SECRET_KEY})
    app.wsgi_app = CountStatements(app.wsgi_app, sink=sink)
    client = app.test_client()

    def post(path, token, body):
        answer = client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
        if not 200 <= answer.status_code < 300:
            raise Refused(f"{answer.status_code} POST {path}: {answer.get_data(as_text=True)}")
        return answer.get_json()

    for _ in range(2):
        sink.clear()
        run_cycle(post, info["threads"][0], info["accounts"]["admin"]["token"])
    with app.app_context():
        db.engine.dispose()
    return list(sink)


def describe_cycle(captured) -> str:
    lines = []
    for method, path, statements in captured:
        lines.append(f"  {method} {re.sub(r'/[0-9]+', '/<id>', path)}: {len(statements)}")
        for statement in statements:
            text = " ".join(statement.split())
            lines.append(f"      {text[:150]}{' …' if len(text) > 150 else ''}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- the ceiling


# One cycle's statements as the app sends them (compare capture_cycle's list), written once for
# both ceilings: per request, the token lookup; then the write transaction, which reads (and on
# PostgreSQL locks) the booking with its provider, checks the provider on assign, updates the
# booking, appends the event and reads the booking's events for the answer. On SQLite the token
# is read in a transaction of its own, ended before the write one begins with the write lock; on
# PostgreSQL the request's one transaction goes on. Columns the app names one by one are
# `table.*` here: the same rows and columns. Parameters are `:name` (sqlite3's named style and
# pgbench's variables alike); {slots} are where the two databases differ.
TOKEN = (
    "SELECT users.id, users.role, api_tokens.id, api_tokens.last_used_at FROM users "
    "JOIN api_tokens ON api_tokens.user_id = users.id "
    "WHERE {token} AND api_tokens.revoked_at IS NULL AND users.is_enabled"
)
CUSTOMER = (
    "SELECT customers.id, users.* FROM customers JOIN users ON users.id = customers.id "
    "WHERE customers.id = :customer_id"
)
NEW_BOOKING = (
    "INSERT INTO bookings (status, customer_id, provider_id, assignment_forced, customer_name, "
    "service, address, window_start, window_end, notes, version, created_at, updated_at) "
    "VALUES ('PENDING', :customer_id, NULL, false, 'Benchmark customer', 'Plumbing', "
    "'4 Mill Lane', NULL, NULL, 'Benchmark cycle', 1, {now}, {now}) RETURNING id AS booking_id"
)
NEW_EVENT = (
    "INSERT INTO booking_events (booking_id, action, from_status, to_status, actor_role, "
    "actor_id, provider_id, reason, forced, source, created_at) "
    "VALUES (:booking_id, '{action}', {source}, '{target}', '{role}', :{actor}_id, {provider}, "
    "NULL, false, 'api', {now})"
)
BOOKING = (
    "SELECT bookings.*, providers.id, providers.active, pu.* FROM bookings "
    "LEFT OUTER JOIN providers ON providers.id = bookings.provider_id "
    "LEFT OUTER JOIN users AS pu ON pu.id = providers.id WHERE bookings.id = :booking_id"
)
EVENTS = (
    "SELECT booking_events.*, au.*, pu.*, providers.id, providers.active FROM booking_events "
    "LEFT OUTER JOIN users AS au ON au.id = booking_events.actor_id "
    "LEFT OUTER JOIN providers ON providers.id = booking_events.provider_id "
    "LEFT OUTER JOIN users AS pu ON pu.id = providers.id "
    "WHERE booking_events.booking_id = :booking_id ORDER BY booking_events.id"
)
PROVIDER = (
    "SELECT providers.id, providers.active, users.* FROM providers "
    "JOIN users ON users.id = providers.id WHERE providers.id = :provider_id"
)
BUSY = (
    "SELECT bookings.id FROM bookings WHERE bookings.provider_id = :provider_id "
    "AND bookings.status IN ('ASSIGNED', 'IN_PROGRESS') ORDER BY bookings.id"
)
MOVE = (
    "UPDATE bookings SET status = '{target}'{assign}, version = {next}, updated_at = {now} "
    "WHERE bookings.id = :booking_id AND bookings.version = {version}"
)

# Where they differ: SQLite takes the write lock at BEGIN IMMEDIATE, after the token's read
# transaction ends; PostgreSQL locks rows, in the transaction the token lookup began. pgbench
# cannot hash a token, so it finds each by its user (one index lookup either way).
SQLITE = {
    "token_then_write": ["ROLLBACK", "BEGIN IMMEDIATE"],
    "lock": "",
    "token": "api_tokens.token_hash = :{who}_token_hash",
    "now": ":now",
}
POSTGRESQL = {
    "token_then_write": [],
    "lock": " FOR UPDATE OF {table}",
    "token": "api_tokens.user_id = :{who}_id",
    "now": "now()",
}


def cycle_statements(dialect: dict) -> list[str]:
    """The statements of one cycle, in order, for SQLITE or POSTGRESQL."""
    now = dialect["now"]

    def request(who: str) -> list[str]:
        """The token lookup, then the write transaction's beginning."""
        token = TOKEN.format(token=dialect["token"].format(who=who))
        return ["BEGIN", token, *dialect["token_then_write"]]

    def transition(who, action, source, target, version):
        assign = action == "assign"
        checks = [PROVIDER + dialect["lock"].format(table="providers"), BUSY] if assign else []
        return [
            *request(who),
            BOOKING + dialect["lock"].format(table="bookings"),
            *checks,
            MOVE.format(
                target=target,
                assign=", provider_id = :provider_id" if assign else "",
                next=version + 1,
                version=version,
                now=now,
            ),
            NEW_EVENT.format(
                action=action,
                source=f"'{source}'",
                target=target,
                role=who.upper(),
                actor=who,
                provider=":provider_id",
                now=now,
            ),
            EVENTS,
            "COMMIT",
        ]

    create = [
        *request("customer"),
        CUSTOMER,
        NEW_BOOKING.format(now=now),
        NEW_EVENT.format(
            action="create",
            source="NULL",
            target="PENDING",
            role="CUSTOMER",
            actor="customer",
            provider="NULL",
            now=now,
        ),
        "COMMIT",
    ]
    return [
        *create,
        *transition("admin", "assign", "PENDING", "ASSIGNED", 1),
        *transition("provider", "accept", "ASSIGNED", "IN_PROGRESS", 2),
        *transition("provider", "complete", "IN_PROGRESS", "COMPLETED", 3),
    ]


# ---------------------------------------------------------------------------------- SQLite


def sqlite_connect(path: str):
    """A connection as the app's engine makes one (ops_portal.services.transactions), in
    autocommit mode: the statements carry their own BEGINs."""
    import sqlite3

    db = sqlite3.connect(path, timeout=15, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def sqlite_cycle(db, account: dict, admin: dict, turn=None) -> int:
    """One cycle of cycle_statements(SQLITE) on `db`; returns the new booking's id. `turn` (the
    app's WriterTurn for this file) is taken for each write transaction, as the app takes it."""
    params = {
        "customer_id": account["customer_id"],
        "provider_id": account["provider_id"],
        "admin_id": admin["id"],
    }
    for who, token in (
        ("customer", account["customer_token"]),
        ("provider", account["provider_token"]),
        ("admin", admin["token"]),
    ):
        params[f"{who}_token_hash"] = hashlib.sha256(token.encode()).hexdigest()
    held = None
    for statement in cycle_statements(SQLITE):
        if statement.startswith("BEGIN"):  # one time for a transaction's writes, as the app
            params["now"] = datetime.now(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        if statement == "BEGIN IMMEDIATE" and turn is not None:
            held = turn()
            held.__enter__()
        rows = db.execute(statement, params).fetchall()
        if statement.endswith("AS booking_id"):
            params["booking_id"] = rows[0][0]
        if statement == "COMMIT" and held is not None:
            held.__exit__(None, None, None)
            held = None
    return params["booking_id"]


def _sqlite_client(path, account, admin, barrier, warmup, seconds, results) -> None:
    from ops_portal.services.transactions import WriterTurn

    db = sqlite_connect(path)
    turn = WriterTurn(path, timeout=15)
    barrier.wait()
    began = time.monotonic()
    measure_from, end = began + warmup, began + warmup + seconds
    cycles = 0
    while time.monotonic() < end:
        sqlite_cycle(db, account, admin, turn)
        if measure_from <= time.monotonic() <= end:
            cycles += 1
    db.close()
    results.put(cycles)


def sqlite_ceiling(path: str, info: dict, *, clients: int, seconds: float, warmup: float) -> dict:
    """Cycles a second with the app's statements straight on the file, `clients` processes."""
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(clients, timeout=120), spawn.Queue()
    admin = info["accounts"]["admin"]
    processes = [
        spawn.Process(
            target=_sqlite_client,
            args=(path, account, admin, barrier, warmup, seconds, results),
            daemon=True,
        )
        for account in info["threads"][:clients]
    ]
    for process in processes:
        process.start()
    counts, deadline = [], time.monotonic() + warmup + seconds + 180
    try:
        while len(counts) < clients:
            try:
                counts.append(results.get(timeout=1))
            except queue.Empty:
                if any(p.exitcode for p in processes) or time.monotonic() > deadline:
                    raise RuntimeError("a sqlite3 ceiling client failed or hung") from None
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    cycles = sum(counts)
    return {
        "tool": f"sqlite3, {clients} processes",
        "cycles": cycles,
        "cycles_per_second": round(cycles / seconds, 1),
    }


# ---------------------------------------------------------------------------------- PostgreSQL


def pgbench_script() -> str:
    """cycle_statements as a pgbench script: each client (:client_id) has a customer and a
    provider of its own; the new booking's id goes into :booking_id."""
    lines = [
        "\\set customer_id :customer_base + :client_id",
        "\\set provider_id :provider_base + :client_id",
    ]
    for statement in cycle_statements(POSTGRESQL):
        gets = statement.endswith("AS booking_id")
        lines.append(statement + (" \\gset" if gets else ";"))
    return "\n".join(lines) + "\n"


def pgbench_ceiling(database_url: str, info: dict, *, clients: int, seconds: float) -> dict:
    """Cycles a second with the app's statements straight on the database, pgbench clients
    (prepared statements, as psycopg prepares the statements a connection repeats)."""
    threads = info["threads"][:clients]
    if len(threads) < clients:
        raise ValueError(f"the dataset has accounts for {len(info['threads'])} clients")
    customers = [t["customer_id"] for t in threads]
    providers = [t["provider_id"] for t in threads]
    for ids in (customers, providers):
        if ids != list(range(ids[0], ids[0] + clients)):
            raise ValueError("pgbench needs the threads' accounts to have consecutive ids")
    folder = Path(tempfile.mkdtemp(prefix="ops-bench-pgbench-"))
    script = folder / "cycle.sql"
    script.write_text(pgbench_script())
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    command = ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", "2"]
    command += ["-T", str(int(seconds)), "-f", str(script)]
    command += ["-D", f"customer_base={customers[0]}", "-D", f"provider_base={providers[0]}"]
    command += ["-D", f"admin_id={info['accounts']['admin']['id']}", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    shutil.rmtree(folder, ignore_errors=True)
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", done.stdout)
    failed = re.search(r"number of failed transactions: ([0-9]+)", done.stdout)
    if done.returncode != 0 or tps is None:
        raise RuntimeError(f"pgbench failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return {
        "tool": f"pgbench -M prepared -c {clients} -j 2",
        "cycles_per_second": round(float(tps.group(1)), 1),
        "failures": int(failed.group(1)) if failed else 0,
    }

"""The benchmark suite (benchmarks/), at a tiny size: the generated dataset obeys the app's own
rules (every booking's events a legal walk of LIFECYCLE ending at its status, version = number
of events, one active non-forced booking per provider), its login accounts and tokens work, the
ceiling's hand-written statements make a real cycle, the reads run against a real gunicorn, and
the live benchmark's streams are each told of every change and come back after a restart.
On SQLite and, when OPS_PORTAL_TEST_POSTGRES_URL is set, on PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from itertools import pairwise

import pytest
import sqlalchemy as sa

from benchmarks import dataset, live, reads, throughput
from benchmarks.server import Server
from ops_portal.domain.lifecycle import ACTIVE, LIFECYCLE, Action, Relation, Role, Status
from ops_portal.extensions import db
from ops_portal.live.views import RETRY_MS
from ops_portal.models import ApiToken, Booking, BookingEvent, Customer, Provider, User
from ops_portal.services import accounts
from tests.support.databases import (
    BACKENDS,
    POSTGRES_URL,
    create_postgres_database,
    drop_postgres_database,
    make_app,
)

TINY = dataset.Shape(bookings=60, providers=12, customers=30)


@pytest.fixture(scope="module", params=BACKENDS)
def tiny(request, tmp_path_factory):
    """A tiny benchmark dataset of each backend: (database URL, its info), built once."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('bench') / 'tiny.sqlite3'}"
    else:
        url = create_postgres_database("ops_bench_test")
    try:
        yield url, dataset.build(url, TINY)
    finally:
        if request.param == "postgresql":
            drop_postgres_database(url)


@pytest.fixture
def tiny_app(tiny):
    app = make_app(tiny[0])
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def rows(model, *order):
    return db.session.execute(sa.select(model.__table__).order_by(*order)).all()


def assert_legal_chain(booking, events) -> None:
    """The events are what the service layer writes: a walk of LIFECYCLE from create, the
    provider involved in each, and the booking as the last one left it."""
    assert (events[0].action, events[0].from_status) == (Action.CREATE, None)
    held, forced = None, False
    for previous, event in pairwise([None, *events]):
        rule = LIFECYCLE[event.action]
        if previous is not None:
            assert event.from_status == previous.to_status, event
            assert event.from_status in rule.sources, event
            assert event.created_at > previous.created_at, event
        assert event.to_status == rule.target, event
        assert event.actor_role in rule.roles, event
        assert event.forced == rule.forced, event
        if rule.takes_provider:
            assert event.provider_id is not None, event
            held, forced = event.provider_id, rule.forced
        else:
            assert event.provider_id == held, event  # the provider the booking held
            if rule.releases_provider:
                held, forced = None, False
        if rule.relation is Relation.ASSIGNED:
            assert event.actor_id == event.provider_id, event
        if Role.CUSTOMER in rule.roles:
            assert event.actor_id == booking.customer_id, event
        if event.actor_role is Role.SYSTEM:
            assert event.actor_id is None, event
    assert booking.status == events[-1].to_status
    assert booking.version == len(events)
    assert booking.created_at == events[0].created_at
    assert booking.updated_at == events[-1].created_at
    assert (booking.provider_id, booking.assignment_forced) == (held, forced)


def test_every_booking_has_a_legal_event_chain_and_providers_one_active_job(tiny, tiny_app):
    _, info = tiny
    bookings = rows(Booking, Booking.id)
    events = defaultdict(list)
    for event in rows(BookingEvent, BookingEvent.id):
        events[event.booking_id].append(event)
    for booking in bookings:
        assert_legal_chain(booking, events[booking.id])

    providers = {p.id: p.active for p in rows(Provider)}
    active = [b for b in bookings if b.status in ACTIVE]
    held = Counter(b.provider_id for b in active if not b.assignment_forced)
    assert held and max(held.values()) == 1, "one non-forced active booking per provider"
    assert not [b for b in active if not providers[b.provider_id]], "inactive providers are idle"
    assert list(providers.values()).count(False) == 1  # 2% of 12, at least one

    statuses = Counter(b.status for b in bookings)
    expected = Counter(info["counts"])
    expected[Status.ASSIGNED] += expected.pop("FORCED")
    assert statuses == expected
    assert len(bookings) == TINY.bookings
    assert sum(len(chain) for chain in events.values()) == info["events"]


def test_the_tables_hold_the_shape_asked_for(tiny, tiny_app):
    _, info = tiny
    threads = len(info["threads"])
    assert threads == TINY.providers // 4
    counts = {
        model: db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (User, Customer, Provider, ApiToken)
    }
    assert counts == {
        User: 1 + TINY.providers + TINY.customers,
        Customer: TINY.customers,
        Provider: TINY.providers,
        ApiToken: 3 + 2 * threads,
    }


def test_the_benchmark_accounts_log_in_and_their_tokens_work(tiny, tiny_app):
    _, info = tiny
    for role, account in info["accounts"].items():
        user = accounts.user_by_email(account["email"])
        assert (user.id, user.role) == (account["id"], Role(role.upper()))
        assert accounts.check_password(user, info["password"])
        assert accounts.actor_for_token(account["token"]).user_id == account["id"]
    for thread in info["threads"]:
        assert accounts.actor_for_token(thread["customer_token"]).user_id == thread["customer_id"]
        assert accounts.actor_for_token(thread["provider_token"]).user_id == thread["provider_id"]
    # The provider has a job on now and a history; the customer's booking waits.
    provider = info["accounts"]["provider"]["id"]
    theirs = Counter(b.status for b in rows(Booking) if b.provider_id == provider)
    assert theirs[Status.IN_PROGRESS] == 1 and theirs[Status.COMPLETED] >= 1
    pending = db.session.get(Booking, info["pending_booking_id"])
    assert pending.status is Status.PENDING
    assert pending.customer_id == info["accounts"]["customer"]["id"]
    # The throughput threads' providers are free to take work.
    busy = {b.provider_id for b in rows(Booking) if b.status in ACTIVE}
    assert not busy & {thread["provider_id"] for thread in info["threads"]}


def test_the_ceilings_statements_take_a_booking_through_a_legal_cycle(tmp_path):
    path = tmp_path / "ceiling.sqlite3"
    info = dataset.build(f"sqlite:///{path}", TINY)
    connection = throughput.sqlite_connect(str(path))
    booking_id = throughput.sqlite_cycle(connection, info["threads"][0], info["accounts"]["admin"])
    connection.close()

    app = make_app(f"sqlite:///{path}")
    with app.app_context():
        booking = db.session.execute(
            sa.select(Booking.__table__).where(Booking.id == booking_id)
        ).one()
        events = db.session.execute(
            sa.select(BookingEvent.__table__)
            .where(BookingEvent.booking_id == booking_id)
            .order_by(BookingEvent.id)
        ).all()
        assert [e.action for e in events] == ["create", "assign", "accept", "complete"]
        assert_legal_chain(booking, events)
        db.engine.dispose()
    assert "FOR UPDATE OF bookings" in throughput.pgbench_script()


@pytest.mark.server
def test_the_reads_run_against_a_real_server(tiny):
    url, info = tiny
    with Server(url, workers=1, threads=2) as server:
        results = reads.run_reads(
            server.base_url, info, requests_per_client=2, warmup=1, log=lambda line: None
        )
        assert server.max_rss_mb is None or server.max_rss_mb > 0
        # Sizes side by side, taking turns: here the same server twice, two rounds of one.
        compared = reads.compare_reads(
            {1: (server.base_url, info), 2: (server.base_url, info)},
            requests_per_client=2,
            rounds=2,
            warmup=1,
            reads=reads.READS[:3],
            log=lambda line: None,
        )
    results = json.loads(json.dumps(results))
    assert set(results) == {read.name for read in reads.READS}
    for name, result in results.items():
        assert result["status"] == "ok", (name, result)
        assert result["requests"] == 2 and result["p50_ms"] > 0 and result["bytes"] > 0
        assert isinstance(result["statements"], int) and result["statements"] > 0, result
    assert set(compared) == {1, 2}
    for by_name in compared.values():
        assert list(by_name) == [read.name for read in reads.READS[:3]]
        for name, result in by_name.items():
            assert result["status"] == "ok" and result["requests"] == 2, (name, result)


@pytest.mark.server
def test_the_live_benchmark_tells_every_stream_of_every_change_and_restarts(tiny):
    url, info = tiny
    streams, changes = 50, 5
    # The benchmark writes: on a copy, as the tiny dataset is shared by this module's tests.
    name = f"ops_bench_live_{uuid.uuid4().hex[:8]}"
    with dataset.scratch_copy(url, name, postgres_url=POSTGRES_URL) as scratch:
        report = live.run_live(
            scratch,
            info,
            streams=streams,
            changes=changes,
            change_every=0.3,
            page_requests=3,
            log=lambda line: None,
        )
    report = json.loads(json.dumps(report))

    delivery = report["delivery"]
    assert delivery["changes"] == changes and delivery["deliveries"] == streams * changes
    assert delivery["missed"] == 0
    assert delivery["streams_that_got_every_change"] == streams
    assert delivery["fewest_streams_told_of_a_change"] == streams
    assert delivery["p50_ms"] <= delivery["p95_ms"] <= delivery["p99_ms"] <= delivery["max_ms"]
    assert report["attempts"] == {"200": 2 * streams}, "each opened once, and once more after"

    memory = report["memory"]
    for phase in ("idle", "open", "flowing"):
        assert len(memory["rss_kb"][phase]) == 1, memory  # one worker, the same one throughout
        assert all(kb > 0 for kb in memory["rss_kb"][phase].values())
    assert set(memory["kb_per_stream"]) == {"open", "flowing"}
    connections = report["connections"]
    if scratch.startswith("sqlite"):
        assert set(connections.values()) == {None}
    else:
        # The hub's listener and the pages' pool: no connection held by a stream.
        assert all(count >= 1 for count in connections.values()), connections
        assert max(connections.values()) < streams, connections

    for phase in ("idle", "streaming"):
        for name in live.PAGES:
            page = report["pages"][phase][name]
            assert page["status"] == "ok" and page["requests"] == 3, page

    restart = report["restart"]
    assert restart["streams_back"] == streams
    assert restart["streams_told_of_the_change_after"] == streams
    assert restart["attempts_after"] == {"200": streams}
    # Every stream waited the retry it was sent before reconnecting.
    low, high = restart["retry_ms_range"]
    assert RETRY_MS[0] <= low <= high <= RETRY_MS[1]
    assert restart["first_reconnect_s"] >= RETRY_MS[0] / 1000
    assert restart["streams_back_before_their_retry"] == 0
    between = restart["last_reconnect_s"] - restart["first_reconnect_s"]
    assert abs(restart["spread_s"] - between) <= 0.02  # each rounded to 0.01 s

    verdicts = {target: ok for target, _, ok in live.targets(report)}
    assert verdicts["every stream told of every change"] is True
    assert verdicts["every stream back and told of the change after"] is True

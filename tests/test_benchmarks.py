"""The benchmark suite (benchmarks/), at a tiny size: the generated dataset obeys the app's own
rules (every booking's events a legal walk of LIFECYCLE ending at its status, version = number
of events, one active non-forced booking per provider), its login accounts and tokens work, the
ceiling's hand-written statements make a real cycle, the reads run against a real gunicorn, and
the live benchmark's streams are each told of every change and come back after a restart.
The dispatch simulation runs a tiny day: every booking settles through legal chains, by the
dispatcher's rules, and its figures agree with the log counted in SQL; the figures and the
fairness measures are checked by hand on a written log. On SQLite and, when
OPS_PORTAL_TEST_POSTGRES_URL is set, on PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
import sqlalchemy as sa

from benchmarks import dataset, dispatch_sim, live, provider_list, reads, throughput
from benchmarks.server import Server
from ops_portal.domain.lifecycle import ACTIVE, LIFECYCLE, Action, Relation, Role, Status
from ops_portal.extensions import db
from ops_portal.live.views import RETRY_MS
from ops_portal.models import (
    ApiToken,
    Booking,
    BookingEvent,
    Customer,
    Provider,
    ProviderDutyEvent,
    User,
)
from ops_portal.services import accounts, dispatcher
from tests.support.databases import (
    BACKENDS,
    POSTGRES_URL,
    create_postgres_database,
    drop_postgres_database,
    make_app,
)

TINY = dataset.Shape(bookings=60, providers=12, customers=30)


@contextlib.contextmanager
def new_database(backend: str, tmp_path_factory, name: str):
    """The URL of a new, empty database of `backend` (a PostgreSQL one is dropped after)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp(name) / f'{name}.sqlite3'}"
        return
    url = create_postgres_database(f"ops_{name}_test")
    try:
        yield url
    finally:
        drop_postgres_database(url)


@contextlib.contextmanager
def app_context_on(url: str):
    app = make_app(url)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def tiny(request, tmp_path_factory):
    """A tiny benchmark dataset of each backend: (database URL, its info), built once."""
    with new_database(request.param, tmp_path_factory, "bench") as url:
        yield url, dataset.build(url, TINY)


@pytest.fixture
def tiny_app(tiny):
    with app_context_on(tiny[0]) as app:
        yield app


def rows(model, *order):
    return db.session.execute(sa.select(model.__table__).order_by(*order)).all()


def assert_legal_chain(booking, events, *, in_time_order: bool = True) -> None:
    """The events are what the service layer writes: a walk of LIFECYCLE from create, the
    provider involved in each, and the booking as the last one left it. `in_time_order`: each
    event later than the one before (not so for a dispatcher's pass, stamped with its start)."""
    assert (events[0].action, events[0].from_status) == (Action.CREATE, None)
    held, forced = None, False
    for previous, event in pairwise([None, *events]):
        rule = LIFECYCLE[event.action]
        if previous is not None:
            assert event.from_status == previous.to_status, event
            assert event.from_status in rule.sources, event
            assert event.created_at > previous.created_at or not in_time_order, event
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
def test_the_provider_list_is_read_from_todays_app_and_the_app_before_the_scale_work(tiny):
    url, info = tiny
    before = provider_list.export(provider_list.BASELINE)
    with (
        Server(url, workers=1, threads=2) as today,
        Server(url, workers=1, threads=2, checkout=before) as baseline,
    ):
        measured = reads.compare_reads(
            {("today", 1): (today.base_url, info), ("baseline", 1): (baseline.base_url, info)},
            requests_per_client=2,
            rounds=1,
            warmup=1,
            reads=[provider_list.LIST],
            log=lambda line: None,
        )
    now, then = (measured[(app, 1)][provider_list.LIST.name] for app in ("today", "baseline"))
    assert now["status"] == then["status"] == "ok", (now, then)
    # The older app answers each provider without the fields duty brought (on_duty, busy_with).
    assert then["bytes"] < now["bytes"]


def test_todays_multiple_of_the_seed_scales_the_baselines_by_the_lists_speed(capsys):
    def read(p50_ms):
        return {"p50_ms": p50_ms, "p95_ms": p50_ms, "bytes": 1024, "statements": 3}

    figures = {
        "today": {1_000: read(16.0), 5_000: read(40.0), 9_000: read(70.0)},
        "baseline": {1_000: read(10.0), 5_000: read(50.0)},
    }
    args = provider_list.parse(["--providers", "1000,5000,9000"])
    assert provider_list.summarize(args, figures) == {"1000": 20.0, "5000": 50.0}
    printed = capsys.readouterr().out
    assert "PASS  1,000 providers: 20x" in printed and "9,000 providers: no baseline" in printed


# ---------------------------------------------------------------------------------- dispatch sim

# A tiny day: 30 bookings in an hour, about nine seconds of real time. Short jobs, so that ten
# providers keep up; one lapse is enough to be put off duty, so flaky ones are, and come back.
TINY_DAY = dispatch_sim.Settings(
    providers=10,
    customers=20,
    bookings=30,
    hours=1,
    speed=400,
    pass_interval=0.1,
    poll_interval=0.02,
    lapses_before_off_duty=1,
    drain_hours=1,
    behaviours=(
        dispatch_sim.Behaviour("steady", 0.5, 1.0, 0.0, (10, 30), (5, 5), 5),
        dispatch_sim.Behaviour("choosy", 0.3, 0.5, 0.5, (20, 60), (3, 8), 5),
        dispatch_sim.Behaviour("flaky", 0.2, 0.3, 0.1, (20, 60), (3, 8), 5),
    ),
)


@pytest.fixture(scope="module", params=BACKENDS)
def simulated_day(request, tmp_path_factory):
    """TINY_DAY simulated on a new database of each backend: (its URL, the report), run once."""
    with new_database(request.param, tmp_path_factory, "sim") as url:
        yield url, dispatch_sim.simulate(url, TINY_DAY)


@pytest.fixture
def day_app(simulated_day):
    with app_context_on(simulated_day[0]) as app:
        yield app


def test_jobs_spread_and_gini_on_hand_examples():
    # Mean 2.5; the absolute differences over all 16 ordered pairs sum to 20: 1.25 / (2 × 2.5).
    assert dispatch_sim.fairness([4, 1, 3, 2]) == {
        "providers": 4,
        "min": 1,
        "max": 4,
        "max_minus_min": 3,
        "gini": 0.25,
    }
    assert dispatch_sim.gini([0, 0, 0, 4]) == 0.75  # 24 / 16 pairs = 1.5, over 2 × 1
    assert dispatch_sim.gini([5, 5, 5]) == 0.0
    assert dispatch_sim.gini([0, 0]) == 0.0  # nobody worked: nobody was favoured
    assert dispatch_sim.gini([]) is None
    assert dispatch_sim.fairness([])["max_minus_min"] is None


def test_the_figures_of_a_hand_written_log():
    t0 = datetime(2030, 1, 1, tzinfo=UTC)

    def at(seconds):
        return t0 + timedelta(seconds=seconds)

    E = dispatch_sim.LogEvent
    events = [
        # Offered to 11, who let it lapse (20 s after its 300 s deadline); then 12 accepts.
        E(1, "create", None, at(0), "PENDING", None),
        E(1, "assign", 11, at(60), "ASSIGNED", None),
        E(1, "expire-offer", 11, at(380), "REJECTED", "Not answered in time"),
        E(1, "assign", 12, at(400), "ASSIGNED", None),
        E(1, "accept", 12, at(430), "IN_PROGRESS", None),
        E(1, "complete", 12, at(4000), "COMPLETED", None),
        # Rejected by 13, then accepted by 11.
        E(2, "create", None, at(10), "PENDING", None),
        E(2, "assign", 13, at(100), "ASSIGNED", None),
        E(2, "reject", 13, at(150), "REJECTED", None),
        E(2, "assign", 11, at(500), "ASSIGNED", None),
        E(2, "accept", 11, at(520), "IN_PROGRESS", None),
        # Offered by a pass that began a second before the booking came.
        E(3, "create", None, at(600), "PENDING", None),
        E(3, "assign", 14, at(599), "ASSIGNED", None),
        E(3, "accept", 14, at(660), "IN_PROGRESS", None),
        E(4, "create", None, at(700), "PENDING", None),
        E(4, "mark-failed", None, at(1700), "FAILED", "No eligible provider for 15 min"),
    ]
    duty_changes = [
        dispatch_sim.DutyChange(13, False, at(200)),
        dispatch_sim.DutyChange(13, True, at(2000)),
    ]
    classes = {11: "steady", 12: "steady", 13: "steady", 14: "choosy"}

    found = dispatch_sim.figures(
        events, duty_changes, classes, fair_class="steady", offer_timeout=300, speed=10
    )

    assert found["bookings"] == 4
    assert found["final_status"] == {"COMPLETED": 1, "FAILED": 1, "IN_PROGRESS": 2}
    assert found["failed_share"] == 0.25
    assert found["failed_reasons"] == {"No eligible provider for 15 min": 1}
    assert found["offers_per_booking"] == {"mean": 1.25, "p95": 2.0, "max": 2, "total": 5}
    assert found["offer_outcomes"] == {"accept": 3, "expire-offer": 1, "reject": 1}
    # Created → first offer: 60, 90 and -1 s; created → accept: 430, 510 and 60 s.
    assert (found["time_to_assign_s"]["min"], found["time_to_assign_s"]["p50"]) == (-1, 60)
    assert found["time_to_assign_s"]["max"] == 90
    assert found["time_to_accept_s"]["p50"] == 430 and found["time_to_accept_s"]["max"] == 510
    assert found["expiry_lag_s"]["max"] == 20 and found["expiry_lag_real_s"]["max"] == 2
    assert found["events_stamped_before_the_previous"] == 1
    # 13 went off duty: 11 and 12 (a job each) were the equally available ones.
    assert found["providers_put_off_duty"] == 1
    assert found["jobs"]["equally_available"] == {
        "class": "steady",
        "providers": 2,
        "min": 1,
        "max": 1,
        "max_minus_min": 0,
        "gini": 0.0,
    }
    # Everyone: 1, 1, 0, 1 jobs.
    assert found["jobs"]["all"]["gini"] == 0.25
    assert found["jobs"]["by_class"]["steady"]["max_minus_min"] == 1


def test_a_simulated_day_settles_every_booking_through_the_dispatchers_rules(
    simulated_day, day_app
):
    _, report = simulated_day
    assert report["run"]["settled"]
    booked = rows(Booking, Booking.id)
    assert len(booked) == TINY_DAY.bookings
    assert {b.status for b in booked} <= {Status.COMPLETED, Status.FAILED}
    assert Counter(b.status for b in booked)[Status.COMPLETED] > 0
    chains = defaultdict(list)
    for event in rows(BookingEvent, BookingEvent.id):
        chains[event.booking_id].append(event)
    most = dispatcher.Policy().offers_before_failing
    for booking in booked:
        chain = chains[booking.id]
        assert_legal_chain(booking, chain, in_time_order=False)
        offered_to = [e.provider_id for e in chain if e.action is Action.ASSIGN]
        assert len(offered_to) == len(set(offered_to)) <= most, chain  # nobody offered it twice
        assert all(e.actor_role is Role.SYSTEM for e in chain if e.action is Action.ASSIGN)
    # One lapse put a provider off duty (automation); each came back on by themselves (unless
    # the day ended first).
    changes = rows(ProviderDutyEvent, ProviderDutyEvent.id)
    assert changes, "a flaky provider let an offer lapse"
    by_provider = defaultdict(list)
    for change in changes:
        by_provider[change.provider_id].append((change.on_duty, change.actor_role))
    off_then_on = [(False, Role.SYSTEM), (True, Role.PROVIDER)]
    for log in by_provider.values():
        assert log == [off_then_on[index % 2] for index in range(len(log))], log


def test_a_simulated_days_figures_agree_with_the_log_counted_in_sql(simulated_day, day_app):
    _, report = simulated_day
    found = report["figures"]

    def count(*where):
        return db.session.scalar(sa.select(sa.func.count()).select_from(BookingEvent).where(*where))

    offers = count(BookingEvent.action.in_([Action.ASSIGN, Action.FORCE_ASSIGN]))
    lapses = count(BookingEvent.action == Action.EXPIRE_OFFER)
    assert lapses > 0, "the flaky providers let offers lapse"
    assert found["offers_per_booking"]["total"] == offers == report["dispatcher"]["offered"]
    assert found["offers_per_booking"]["mean"] == round(offers / TINY_DAY.bookings, 3)
    assert found["expiry_lag_s"]["count"] == lapses == report["dispatcher"]["expired"]
    assert found["expiry_lag_s"]["min"] >= 0  # never expired before its deadline
    failed = count(BookingEvent.action == Action.MARK_FAILED)
    assert found["failed_share"] == round(failed / TINY_DAY.bookings, 4)
    assert found["final_status"].get(Status.FAILED, 0) == failed == report["dispatcher"]["failed"]

    accepted = dict(
        db.session.execute(
            sa.select(BookingEvent.provider_id, sa.func.count())
            .where(BookingEvent.action == Action.ACCEPT)
            .group_by(BookingEvent.provider_id)
        ).all()
    )
    assert found["time_to_accept_s"]["count"] == sum(accepted.values())
    went_off = set(db.session.scalars(sa.select(ProviderDutyEvent.provider_id)))
    steady = [
        user.id
        for user in rows(User, User.id)
        if user.email.startswith("steady-") and user.id not in went_off
    ]
    jobs = [accepted.get(provider, 0) for provider in steady]
    assert found["jobs"]["equally_available"] == {
        "class": "steady",
        **dispatch_sim.fairness(jobs),
    }
    assert found["jobs"]["equally_available"]["providers"] == len(steady)
    assert json.loads(json.dumps(report, default=str))["figures"] == json.loads(
        json.dumps(found, default=str)
    )


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

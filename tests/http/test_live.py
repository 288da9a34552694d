"""Live pages against a real gunicorn as gunicorn.conf.py serves it (gevent workers), on SQLite
and PostgreSQL: each stream rings for what its person may see and for nothing else, a
reconnect with Last-Event-ID is told what it missed, a blocked page's poll answers 204 until
something changes, a full process refuses a stream with 503 and a random Retry-After, streams
beat and end by themselves and end at once when their worker stops, and none holds a database
connection. On a threaded worker, pages are not live and a stream is refused with 204.

The changes are made in this process, through the services, on the server's database: the
server learns of them as it would of any other process's."""

from __future__ import annotations

import signal

import pytest
import sqlalchemy as sa

from ops_portal.domain.lifecycle import Action, Status
from ops_portal.extensions import db
from ops_portal.services import bookings, changes, duty
from ops_portal.services.changes import Cursor
from tests.support.builders import booking_in
from tests.support.live import LIVE_SETTINGS, EventStream, logged_in
from tests.support.server import fresh_session, wait_for

pytestmark = pytest.mark.server

# Where each person's page listens.
STREAMS = {
    "admin": "/live/board",
    "owner": "/live/bookings",
    "other_customer": "/live/bookings",
    "provider": "/live/queue",
    "other_provider": "/live/queue",
}
QUIET = 1.0  # seconds a stream is given to (wrongly) ring for a change it must not hear of


def latest() -> Cursor:
    """The end of both logs as this process's session sees them now."""
    fresh_session()
    return changes.latest_cursor()


@pytest.fixture
def live_server(start_server, people):
    """One gevent worker (so every stream shares one hub) with quick heartbeats."""
    return start_server(production=True, WEB_CONCURRENCY="1", **LIVE_SETTINGS)


def open_streams(server, who=STREAMS) -> dict[str, EventStream]:
    return {
        person: EventStream(logged_in(server, person), server.url(path))
        for person, path in who.items()
    }


def test_each_stream_rings_for_what_its_person_may_see_and_nothing_else(live_server, people):
    streams = open_streams(live_server)
    assert {person: s.status for person, s in streams.items()} == dict.fromkeys(STREAMS, 200)
    pat, quinn = people.provider.user_id, people.other_provider.user_id

    # Each step: a change to make, which log it lands in, and who hears of it (and admin).
    def booking_change(act, *hearers):
        return act, "bookings", {"admin", *hearers}

    def duty_change(act, *hearers):
        return act, "duty", {"admin", *hearers}

    ids = {}

    def create(who):
        ids[who] = bookings.create_booking(people.by_name(who), service="Leaking tap").id

    steps = [
        booking_change(lambda: create("owner"), "owner"),
        booking_change(lambda: create("other_customer"), "other_customer"),
        booking_change(
            lambda: bookings.perform_action(
                people.admin, ids["owner"], Action.ASSIGN, provider_id=pat
            ),
            "owner",
            "provider",
        ),
        booking_change(
            lambda: bookings.perform_action(
                people.admin, ids["other_customer"], Action.ASSIGN, provider_id=quinn
            ),
            "other_customer",
            "other_provider",
        ),
        # Taken from Pat and given to Quinn: both hear of it (the event names only Quinn).
        booking_change(
            lambda: bookings.perform_action(
                people.admin, ids["owner"], Action.FORCE_ASSIGN, provider_id=quinn, reason="Near"
            ),
            "owner",
            "provider",
            "other_provider",
        ),
        duty_change(lambda: duty.set_duty(people.provider, pat, False), "provider"),
        booking_change(
            lambda: bookings.perform_action(people.other_provider, ids["other_customer"], "reject"),
            "other_customer",
            "other_provider",
        ),
    ]
    heard = {person: [] for person in STREAMS}
    for index, (act, log, hearers) in enumerate(steps):
        act()
        change_id = getattr(latest(), log)
        for person in sorted(hearers):
            event = streams[person].next()
            assert event is not None, f"{person} was not told of step {index}"
            told = Cursor.parse(event.id)
            # Told of this step, not of one before it that they must not hear of.
            assert getattr(told, log) >= change_id, (person, index, event)
            assert event.name == "changed" and event.data == event.id
            heard[person].append(index)
    for person, stream in streams.items():
        assert stream.next(within=QUIET) is None, f"{person} was told of something not theirs"
        stream.close()
    assert heard == {
        "admin": list(range(len(steps))),
        "owner": [0, 2, 4],
        "other_customer": [1, 3, 6],
        "provider": [2, 4, 5],
        "other_provider": [3, 4, 6],
    }


def test_a_reconnect_is_told_what_it_missed_and_only_that(live_server, people):
    admin, owner = logged_in(live_server, "admin"), logged_in(live_server, "owner")
    board = EventStream(admin, live_server.url("/live/board"))
    first = booking_in(people, Status.PENDING).id
    told = board.next()
    assert told is not None and Cursor.parse(told.id).bookings == latest().bookings
    board.close()

    # Missed while away: told at once on reconnecting, with the cursor past it.
    bookings.perform_action(people.owner, first, "cancel")
    back = EventStream(admin, live_server.url("/live/board"), last_event_id=told.id)
    caught_up = back.next()
    assert caught_up is not None and Cursor.parse(caught_up.id).bookings == latest().bookings
    back.close()

    # Nothing missed since: nothing told, only heartbeats.
    again = EventStream(admin, live_server.url("/live/board"), last_event_id=caught_up.id)
    assert again.next(within=QUIET) is None and again.comments >= 1
    again.close()

    # A customer away while only someone else's booking changed is told nothing.
    mine = EventStream(owner, live_server.url("/live/bookings"), last_event_id=caught_up.id)
    bookings.create_booking(people.other_customer, service="Leaking tap")
    assert mine.next(within=QUIET) is None
    mine.close()
    # The `after` a page was drawn at serves as well as Last-Event-ID.
    drawn_at = live_server.url(f"/live/bookings?after={caught_up.id}")
    bookings.create_booking(people.owner, service="Leaking tap")
    later = EventStream(owner, drawn_at)
    assert later.next() is not None
    later.close()


def test_a_blocked_pages_poll_answers_204_until_something_of_theirs_changes(live_server, people):
    owner, admin = logged_in(live_server, "owner"), logged_in(live_server, "admin")
    start = str(latest())
    poll = live_server.url("/live/bookings/poll")
    assert owner.get(poll, params={"after": start}).status_code == 204
    bookings.create_booking(people.other_customer, service="Leaking tap")
    board_poll = live_server.url("/live/board/poll")
    wait_for(  # the hub has read it: a board's poll is told
        lambda: admin.get(board_poll, params={"after": start}).status_code == 200,
        "the board's poll to be told",
    )
    assert owner.get(poll, params={"after": start}).status_code == 204  # not theirs
    bookings.create_booking(people.owner, service="Leaking tap")
    told = wait_for(
        lambda: (answer := owner.get(poll, params={"after": start})).status_code == 200 and answer,
        "the owner's poll to be told",
    )
    assert Cursor.parse(told.text).bookings == latest().bookings
    assert told.headers["Cache-Control"] == "no-store"
    assert owner.get(poll, params={"after": "nonsense"}).status_code in (400, 422)


def test_a_full_process_refuses_a_stream_with_503_and_a_random_retry_after(start_server, people):
    server = start_server(
        production=True, WEB_CONCURRENCY="1", LIVE_MAX_STREAMS="2", **LIVE_SETTINGS
    )
    admin = logged_in(server, "admin")
    board = server.url("/live/board")
    held = [EventStream(admin, board) for _ in range(2)]
    refused = admin.get(board)
    assert refused.status_code == 503
    assert 5 <= int(refused.headers["Retry-After"]) <= 30
    held[0].close()  # noticed at its next heartbeat

    def served() -> EventStream | None:
        stream = EventStream(admin, board)
        return stream if stream.status == 200 else None

    wait_for(served, "a stream served once one closed").close()
    held[1].close()


def test_streams_beat_set_a_random_retry_and_end_by_themselves(start_server, people):
    server = start_server(production=True, LIVE_STREAM_SECONDS="1", **LIVE_SETTINGS)
    admin = logged_in(server, "admin")
    stream = EventStream(admin, server.url("/live/board"))
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    assert stream.headers["Cache-Control"] == "no-store"
    assert stream.ended.wait(10), "a stream did not end by itself"
    assert 2000 <= stream.retry_ms <= 8000 and stream.ready  # its first lines
    assert stream.comments >= 1


def test_a_worker_told_to_stop_ends_its_streams_at_once(start_server, people):
    server = start_server(production=True, **LIVE_SETTINGS)
    stream = EventStream(logged_in(server, "admin"), server.url("/live/board"))
    server.process.send_signal(signal.SIGTERM)
    # Well within the graceful timeout (10 s) a cut-off stream would have waited for.
    assert stream.ended.wait(5), "the stream was not ended when its worker stopped"
    stream.session.close()  # its kept-alive connection would hold the worker's graceful exit
    server.process.wait(timeout=15)


def test_streams_hold_no_database_connection(start_server, people, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server to count connections on")
    named = f"{database_url}{'&' if '?' in database_url else '?'}application_name=live-server"
    server = start_server(production=True, WEB_CONCURRENCY="1", DATABASE_URL=named, **LIVE_SETTINGS)

    def connections() -> dict[str, int]:
        """The server's connections to the database, by state."""
        with db.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT state, count(*) FROM pg_stat_activity "
                    "WHERE application_name = 'live-server' GROUP BY state"
                )
            )
            return dict(rows.all())

    admin = logged_in(server, "admin")
    EventStream(admin, server.url("/live/board")).close()  # the listener has started
    before = sum(connections().values())
    streams = [EventStream(admin, server.url("/live/board")) for _ in range(30)]
    held = connections()
    # The worker's pool may have grown (it keeps up to 5 idle), never by a connection a stream.
    assert sum(held.values()) - before < 5, held
    assert "idle in transaction" not in held, held
    for stream in streams:
        stream.close()


def test_on_a_threaded_worker_pages_are_not_live_and_streams_answer_204(server, people):
    admin = logged_in(server, "admin")
    board = admin.get(server.url("/admin/"))
    assert 'id="live"' not in board.text and 'hx-trigger="every 15s,' in board.text
    assert admin.get(server.url("/live/board")).status_code == 204


def test_a_change_committed_after_a_later_one_is_still_told(live_server, people, database_url):
    """PostgreSQL draws an id when a row is inserted, not when it commits: a change may commit
    after one with a higher id has been read. It is told all the same."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite writes one transaction at a time: ids commit in order")
    board = EventStream(logged_in(live_server, "admin"), live_server.url("/live/board"))
    with db.engine.connect() as slow:  # draws its id first, commits last
        slow.execute(
            sa.text(
                "INSERT INTO provider_duty_events "
                "(provider_id, on_duty, actor_role, actor_id, reason, source, created_at) "
                "VALUES (:p, false, 'ADMIN', :a, 'Slow', 'web', now())"
            ),
            {"p": people.provider.user_id, "a": people.admin.user_id},
        )
        duty.set_duty(people.admin, people.other_provider.user_id, False)
        first = board.next()
        assert first is not None and Cursor.parse(first.id).duty == 0  # the slow one is below
        slow.commit()
    second = board.next()
    assert second is not None, "the change committed late was never told"
    assert Cursor.parse(second.id).duty == latest().duty
    board.close()


def test_a_stopping_workers_poll_still_tells_what_changed(start_server, people):
    # A page's keep-alive connection stays with its worker while that worker drains (a restart,
    # a deploy): its polls are still answered there, after its hub has stopped listening.
    server = start_server(production=True, WEB_CONCURRENCY="1", **LIVE_SETTINGS)
    admin = logged_in(server, "admin")
    poll = server.url("/live/board/poll")
    start = str(latest())
    assert admin.get(poll, params={"after": start}).status_code == 204
    old_worker = server.worker_serving("/live/board/poll")
    server.process.send_signal(signal.SIGHUP)  # new workers; the old one stops
    wait_for(lambda: len(list(server.ready.iterdir())) == 2, "the new worker")
    booking_in(people, Status.PENDING)
    answer = admin.get(poll, params={"after": start})
    polled_by = [m.name for m in server.begun.iterdir() if "/live/board/poll" in m.read_text()]
    assert polled_by == [str(old_worker)]  # both polls: the worker now stopping
    assert answer.status_code == 200
    assert Cursor.parse(answer.text).bookings == latest().bookings

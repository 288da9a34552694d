"""The SYSTEM dispatcher under real concurrency: three `flask dispatch run` processes at once
beside a real gunicorn, on SQLite and on PostgreSQL, while through the API a customer books
(and now and then cancels), a person at the board assigns by hand, and providers answer their
offers at the deadline itself: each accept is sent within AIM of its offer's deadline, so that
it races the offer's expiry by a dispatcher.

Afterwards the events (the truth) must show that no provider ever held two active bookings;
that every offer was ended by exactly one event before the next offer, and never made to a
provider who had turned that booking down; that every raced accept had exactly one outcome
(a 200 and an accept event before the deadline, or a 409 and the offer's expiry at or after
it); unbroken chains; no 5xx; and that every offer, expiry and failure was made by exactly one
dispatcher process, each of which made offers.

Rounds: OPS_PORTAL_DISPATCH_RACE_ROUNDS raced accepts per database, 20 by default and 100 in
the long profile. The only waiting is the scenario's own, all of it bounded: a provider waits
for the deadline they aim at (real time: offers lapse after a second), and everyone looks again
a moment later at what others bring about.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
import requests
import sqlalchemy as sa

from ops_portal.domain.lifecycle import ACTIVE, LIFECYCLE, TURNED_DOWN, Action, Role, Status
from ops_portal.extensions import db
from ops_portal.models import Booking, BookingEvent
from ops_portal.services import accounts
from ops_portal.services.dispatcher import OFFERS, OPEN_STATUSES
from tests.support.builders import assert_event_chain, double_booked_providers
from tests.support.server import (
    BARRIER_TIMEOUT,
    REQUEST_TIMEOUT,
    Server,
    assert_no_server_errors,
    describe,
    fresh_session,
    race,
    wait_for,
)

pytestmark = pytest.mark.server

# Raced accepts per database: a CI run's worth by default, 100 in the long profile.
ROUNDS = int(os.environ.get("OPS_PORTAL_DISPATCH_RACE_ROUNDS", "20"))
DISPATCHERS = 3
PASS_EVERY = 0.1  # seconds between a dispatcher's passes: the least `dispatch run` allows
OFFER_SECONDS = 1  # an offer lapses this long after it is made
# Lapses never put a provider off duty here: every provider races every round.
SETTINGS = {"OFFER_TIMEOUT_SECONDS": str(OFFER_SECONDS), "LAPSES_BEFORE_OFF_DUTY": "0"}
AIM = 0.15  # an accept is sent up to this many seconds before or after the deadline, uniformly
PROVIDERS = 5
REJECT_SHARE = 0.15  # offers a provider rejects at once instead of racing the deadline
CANCEL_SHARE = 0.05  # looks at an open booking after which its customer cancels it
UNFINISHED = PROVIDERS + 2  # bookings the customer keeps under way: more than can be placed
PROVIDER_LOOKS_EVERY = 0.05  # seconds between a provider's looks at their queue
PEOPLE_LOOK_EVERY = 0.1  # seconds between the customer's looks, and the person's at the board
# For the whole workload: race() waits a request's timeout beyond this for a thread to end.
RUN_WITHIN = BARRIER_TIMEOUT + REQUEST_TIMEOUT

FINISHED = (Status.COMPLETED, Status.CANCELLED, Status.FAILED)
# What may follow an offer, ending it: its provider's answer or its lapse, or a person's cancel,
# failure or reassignment (every action from ASSIGNED).
ENDS_AN_OFFER = frozenset(a for a, rule in LIFECYCLE.items() if Status.ASSIGNED in rule.sources)
# What ends a provider's hold on a booking: the job done, or the booking taken from them.
RELEASES = frozenset(
    {Action.COMPLETE} | {a for a, rule in LIFECYCLE.items() if rule.releases_provider}
)
# The answers each kind of request may get in this workload; anything else is a failure.
EXPECTED_ANSWERS = {
    "look": {200},
    "create": {201},
    "cancel": {200, 409},  # 409: a dispatcher offered it meanwhile
    "assign": {200, 403, 409},  # 403: the provider was taken meanwhile; 409: the booking was
    "reject": {200, 409},  # 409: the offer lapsed before the provider looked
    "accept": {200, 409},
    "complete": {200},
}


@dataclass
class RacedAccept:
    provider_id: int
    booking_id: int
    version: int  # the booking's version as the offer left it: its assign is event `version`
    deadline: datetime
    sent: float  # seconds after the deadline the accept was sent (negative: before it)
    response: requests.Response


@dataclass
class Workload:
    """What the threads share: the rounds left, the customer's bookings under way, every
    answer the server gave and every raced accept."""

    rounds_left: int
    until: float  # time.monotonic() by which everyone stops
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)
    unfinished: list[int] = field(default_factory=list)
    answers: list[tuple[str, requests.Response]] = field(default_factory=list)
    races: list[RacedAccept] = field(default_factory=list)

    def going(self) -> bool:
        return not self.done.is_set() and time.monotonic() < self.until

    def record(self, kind: str, response: requests.Response) -> requests.Response:
        with self.lock:
            self.answers.append((kind, response))
        return response

    def take_round(self) -> bool:
        """A round for the caller to race, if any is left; the last one ends the workload."""
        with self.lock:
            if self.rounds_left == 0:
                return False
            self.rounds_left -= 1
            if self.rounds_left == 0:
                self.done.set()
            return True

    def bookings_under_way(self) -> list[int]:
        with self.lock:
            return list(self.unfinished)

    def until_done(self, run):
        """`run`, which stops everyone if it fails (the failure is race()'s to report)."""

        def call(session):
            try:
                run(session)
            except BaseException:
                self.done.set()
                raise

        return call


# ---------------------------------------------------------------------------------- the people


def provider(server: Server, work: Workload, provider_id: int, token: str, seed: int):
    """Watches their queue; rejects some offers at once, answers the rest at the deadline, and
    completes each job they win."""

    def run(session):
        rng = random.Random(seed)
        answered: set[tuple[int, int]] = set()  # (booking, version): each offer answered once
        while work.going():
            queue = server.get(session, f"/api/providers/{provider_id}/bookings", token)
            work.record("look", queue)
            offers = [
                b
                for b in (queue.json() if queue.status_code == 200 else [])
                if b["status"] == Status.ASSIGNED and (b["id"], b["version"]) not in answered
            ]
            if not offers:
                time.sleep(PROVIDER_LOOKS_EVERY)  # until a dispatcher makes an offer
                continue
            offer = offers[0]
            answered.add((offer["id"], offer["version"]))
            path, seen = f"/api/bookings/{offer['id']}", {"version": offer["version"]}
            if rng.random() < REJECT_SHARE:
                work.record("reject", server.post(session, f"{path}/reject", token, seen))
                continue
            if not work.take_round():
                return
            deadline = datetime.fromisoformat(offer["offer_expires_at"])
            wait = (deadline - datetime.now(UTC)).total_seconds() + rng.uniform(-AIM, AIM)
            assert wait <= OFFER_SECONDS + AIM, f"an offer lapsing in {wait} s: {offer}"
            time.sleep(max(wait, 0))  # the scenario itself: answering at the deadline
            sent = (datetime.now(UTC) - deadline).total_seconds()
            answer = work.record("accept", server.post(session, f"{path}/accept", token, seen))
            with work.lock:
                work.races.append(
                    RacedAccept(provider_id, offer["id"], offer["version"], deadline, sent, answer)
                )
            if answer.status_code == 200:
                done = {"version": offer["version"] + 1}
                work.record("complete", server.post(session, f"{path}/complete", token, done))

    return run


def customer(server: Server, work: Workload, token: str, seed: int):
    """Keeps UNFINISHED bookings under way: books a new one when one finishes, and now and
    then cancels one still waiting for a provider (on the version seen)."""

    def run(session):
        rng = random.Random(seed)
        while work.going():
            for booking_id in work.bookings_under_way():
                seen = work.record(
                    "look", server.get(session, f"/api/bookings/{booking_id}", token)
                )
                booking = seen.json() if seen.status_code == 200 else {}
                if booking.get("status") in FINISHED:
                    with work.lock:
                        work.unfinished.remove(booking_id)
                elif booking.get("status") in OPEN_STATUSES and rng.random() < CANCEL_SHARE:
                    body = {"version": booking["version"], "reason": "Plans changed"}
                    path = f"/api/bookings/{booking_id}/cancel"
                    work.record("cancel", server.post(session, path, token, body))
            for _ in range(UNFINISHED - len(work.bookings_under_way())):
                body = {"service": "Leaking tap", "address": f"{rng.randrange(1, 999)} Race Road"}
                created = work.record("create", server.post(session, "/api/bookings/", token, body))
                if created.status_code == 201:
                    with work.lock:
                        work.unfinished.append(created.json()["id"])
            time.sleep(PEOPLE_LOOK_EVERY)  # before looking at the bookings again

    return run


def person_at_the_board(server: Server, work: Workload, token: str, seed: int):
    """Picks a booking under way; if it waits for a provider, assigns it by hand to the first
    one the picker offers (never one who turned it down), on the version seen."""

    def run(session):
        rng = random.Random(seed)
        while work.going():
            time.sleep(PEOPLE_LOOK_EVERY)  # between looks at the board
            under_way = work.bookings_under_way()
            if not under_way:
                continue
            booking_id = rng.choice(under_way)
            seen = work.record("look", server.get(session, f"/api/bookings/{booking_id}", token))
            if seen.status_code != 200 or seen.json()["status"] not in OPEN_STATUSES:
                continue
            path = f"/api/bookings/{booking_id}/candidates"
            found = work.record("look", server.get(session, path, token))
            eligible = [
                c["provider_id"]
                for c in (found.json()["candidates"] if found.status_code == 200 else [])
                if c["eligible"]
            ]
            if eligible:
                body = {"provider_id": eligible[0], "version": seen.json()["version"]}
                path = f"/api/bookings/{booking_id}/assign"
                work.record("assign", server.post(session, path, token, body))

    return run


# ---------------------------------------------------------------------------------- the checks


def events_per_booking() -> dict[int, int]:
    fresh_session()
    query = sa.select(BookingEvent.booking_id, sa.func.count()).group_by(BookingEvent.booking_id)
    return dict(db.session.execute(query).all())


def all_events() -> list[sa.Row]:
    """Every event's facts the checks read, as rows (they outlive the session), oldest first."""
    fresh_session()
    e = BookingEvent
    columns = (e.id, e.booking_id, e.action, e.provider_id, e.actor_role, e.forced, e.created_at)
    return list(db.session.execute(sa.select(*columns).order_by(e.id)))


def assert_no_provider_ever_held_two(events: list[sa.Row]) -> None:
    """Replays every provider's events in the order they were committed (ids: on SQLite writers
    take turns; on PostgreSQL an assign reads the provider's bookings, under the provider's
    lock, only after the release of their last one committed): an offer makes them hold the
    booking, its acceptance keeps it, a release or completion lets it go. Nobody may be offered
    a booking while holding one, and the replay must end where the table is."""
    holding: dict[int, set[int]] = defaultdict(set)
    for event in events:
        held = holding[event.provider_id]
        if event.action in OFFERS:
            assert not held, f"event {event.id} offered #{event.booking_id} to a holder of {held}"
            held.add(event.booking_id)
        elif event.action in RELEASES and event.provider_id is not None:
            assert event.booking_id in held, f"event {event.id} released a booking not held"
            held.remove(event.booking_id)
    fresh_session()
    active = defaultdict(set)
    for provider_id, booking_id in db.session.execute(
        sa.select(Booking.provider_id, Booking.id).where(Booking.status.in_(ACTIVE))
    ):
        active[provider_id].add(booking_id)
    assert {p: held for p, held in holding.items() if held} == active
    assert double_booked_providers() == []


def assert_every_offer_ended_once(events: list[sa.Row]) -> None:
    """Per booking: the event after an offer ends that offer (for its provider), so no booking
    is offered again before its offer ends; and nobody is offered a booking they turned down."""
    by_booking = defaultdict(list)
    for event in events:
        by_booking[event.booking_id].append(event)
    for booking_events in by_booking.values():
        turned_down = set()
        for index, event in enumerate(booking_events):
            if event.action in TURNED_DOWN:
                turned_down.add(event.provider_id)
            if event.action not in OFFERS:
                continue
            assert event.provider_id not in turned_down, f"event {event.id}: offered again"
            if index + 1 < len(booking_events):  # else the offer is still open: ASSIGNED now
                ending = booking_events[index + 1]
                assert ending.action in ENDS_AN_OFFER, f"event {ending.id} follows an offer"
                assert ending.provider_id == event.provider_id, f"event {ending.id}: whose offer?"


def assert_unbroken_chains(events: list[sa.Row]) -> None:
    """Each booking's events chain from status to status, one version each, and their times
    never go back (a dispatcher's pass acts as of its start on the bookings open by then)."""
    counts = Counter(event.booking_id for event in events)
    last_time = {}
    for event in events:
        earlier = last_time.get(event.booking_id, event.created_at)
        assert event.created_at >= earlier, f"event {event.id} is stamped before its previous"
        last_time[event.booking_id] = event.created_at
    fresh_session()
    versions = dict(db.session.execute(sa.select(Booking.id, Booking.version)).all())
    assert versions == dict(counts)
    for booking_id in counts:
        assert_event_chain(booking_id)


def race_outcomes(races: list[RacedAccept], events: list[sa.Row]) -> Counter:
    """Each raced accept had exactly one outcome, the one its answer says: the accept event
    before the deadline (200), or the offer's expiry at or after it (409, saying the offer
    expired, or that the booking has moved on since)."""
    by_booking = defaultdict(list)
    for event in events:
        by_booking[event.booking_id].append(event)
    outcomes = Counter()
    for raced in races:
        offer, ending = by_booking[raced.booking_id][raced.version - 1 : raced.version + 1]
        answer = describe([raced.response])
        assert (offer.action, offer.provider_id) == (Action.ASSIGN, raced.provider_id), answer
        if raced.response.status_code == 200:
            assert ending.action == Action.ACCEPT and ending.created_at < raced.deadline, answer
            # Sent after the deadline, it would have reached the server later still.
            assert raced.sent < 0, answer
            assert raced.response.json()["version"] == raced.version + 1, answer
            outcomes["accepted"] += 1
            continue
        assert raced.response.status_code == 409, answer
        assert ending.action == Action.EXPIRE_OFFER, answer
        assert ending.created_at >= raced.deadline, answer
        detail = raced.response.json()["detail"]
        if detail == f"This offer expired at {raced.deadline:%H:%M} UTC":
            outcomes["refused as expired"] += 1  # before a dispatcher had expired it
        else:
            assert detail.startswith("This booking changed: now "), answer
            assert detail.endswith(f"you acted on version {raced.version})"), answer
            outcomes["refused after the expiry"] += 1
    return outcomes


def dispatchers_claims(summaries: list[list[dict]], events: list[sa.Row]) -> list[Counter]:
    """Every SYSTEM offer, expiry and failure in the events is claimed by exactly one pass of
    one dispatcher process (from their output); what each process did."""
    claimed = Counter()
    done_by = []
    for passes in summaries:
        did = Counter()
        for summary in passes:
            for offer in summary["offered"]:
                claimed[Action.ASSIGN, offer["booking"], offer["provider"]] += 1
            for booking_id in summary["expired"]:
                claimed[Action.EXPIRE_OFFER, booking_id] += 1
            for failure in summary["failed"]:
                claimed[Action.MARK_FAILED, failure["booking"]] += 1
            did.update(
                offered=len(summary["offered"]),
                expired=len(summary["expired"]),
                failed=len(summary["failed"]),
            )
        done_by.append(did)
    by_system = Counter()
    for event in events:
        if event.actor_role == Role.SYSTEM and event.action == Action.ASSIGN:
            by_system[Action.ASSIGN, event.booking_id, event.provider_id] += 1
        elif event.actor_role == Role.SYSTEM:
            by_system[event.action, event.booking_id] += 1
    assert claimed == by_system
    return done_by


# ---------------------------------------------------------------------------------- the test


def test_three_dispatchers_people_and_providers_racing_the_deadline_keep_every_guarantee(
    app, cast, start_server, start_dispatchers
):
    extra = accounts.create_users(
        [
            accounts.validate_new_user(f"racer{n}@example.com", f"Racer {n}", Role.PROVIDER)
            for n in range(PROVIDERS - 2)
        ],
        with_tokens=True,
    )
    providers = {
        cast.provider.user_id: cast.tokens["provider"],
        cast.other_provider.user_id: cast.tokens["other_provider"],
        **{user.id: token for user, token in extra},
    }
    fresh_session()
    server = start_server(**SETTINGS)
    dispatchers = start_dispatchers(DISPATCHERS, PASS_EVERY, **SETTINGS)
    work = Workload(rounds_left=ROUNDS, until=time.monotonic() + RUN_WITHIN)
    started = time.monotonic()

    race(
        server,
        [
            work.until_done(customer(server, work, cast.tokens["owner"], seed=1)),
            work.until_done(person_at_the_board(server, work, cast.tokens["admin"], seed=2)),
            *[
                work.until_done(provider(server, work, provider_id, token, seed=10 + n))
                for n, (provider_id, token) in enumerate(providers.items())
            ],
        ],
    )
    took = time.monotonic() - started
    assert work.rounds_left == 0, f"{ROUNDS - work.rounds_left} of {ROUNDS} rounds in {took:.0f}s"

    def every_raced_offer_ended() -> bool:  # a late accept's offer waits for a dispatcher
        counts = events_per_booking()
        return all(counts[raced.booking_id] > raced.version for raced in work.races)

    wait_for(every_raced_offer_ended, "the end of every raced offer")
    exits = [dispatcher.stop() for dispatcher in dispatchers]
    logs = "\n".join(dispatcher.log() for dispatcher in dispatchers)
    assert exits == [0] * DISPATCHERS, logs
    assert logs.count("dispatcher: stopped") == DISPATCHERS and "Traceback" not in logs, logs

    answers = [response for _, response in work.answers]
    assert_no_server_errors(answers)
    unexpected = [r for kind, r in work.answers if r.status_code not in EXPECTED_ANSWERS[kind]]
    assert not unexpected, describe(unexpected)
    events = all_events()
    assert not any(event.forced for event in events), "this workload forces nothing"
    assert_unbroken_chains(events)
    assert_no_provider_ever_held_two(events)
    assert_every_offer_ended_once(events)
    outcomes = race_outcomes(work.races, events)
    assert sum(outcomes.values()) == ROUNDS
    # Both ways, or the deadline was not raced at all.
    assert 0 < outcomes["accepted"] < ROUNDS, outcomes
    done_by = dispatchers_claims([d.summaries() for d in dispatchers], events)
    assert all(did["offered"] for did in done_by), done_by
    by_hand = sum(1 for kind, r in work.answers if kind == "assign" and r.status_code == 200)
    won = [raced.sent for raced in work.races if raced.response.status_code == 200]
    lost = [raced.sent for raced in work.races if raced.response.status_code != 200]
    print(
        f"dispatcher races ({ROUNDS} in {took:.1f}s): {dict(outcomes)};",
        f"latest won sent {max(won) * 1000:+.0f} ms, earliest lost {min(lost) * 1000:+.0f} ms",
        "from the deadline;",
        f"{sum(e.action in OFFERS for e in events)} offers ({by_hand} by hand),",
        f"{sum(e.action == Action.EXPIRE_OFFER for e in events)} lapsed;",
        "per dispatcher:",
        [dict(did) for did in done_by],
    )

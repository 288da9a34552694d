"""The guarantees under concurrency (docs/lifecycle.md) with real parallel requests: a gunicorn
server with several worker processes, each with several threads, in front of the same SQLite file or
PostgreSQL database the test reads.

Requests of a race are released together by a threading.Barrier; each thread has its own HTTP
session (its own keep-alive connection, so the requests land on different workers). Nothing here
sleeps to make an interleaving happen: the only waiting is the bounded readiness poll of /health.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter, defaultdict

import pytest
import requests
import sqlalchemy as sa

from ops_portal.domain.lifecycle import ACTIVE, LIFECYCLE, Action, Role, Status
from ops_portal.extensions import db
from ops_portal.models import Booking, BookingEvent
from ops_portal.services import accounts, bookings, offers
from tests.support.builders import (
    assert_event_chain,
    booking_in,
    double_booked_providers,
    event_actions,
)
from tests.support.server import (
    REQUEST_TIMEOUT,
    Server,
    assert_no_server_errors,
    describe,
    fresh_session,
    race,
)

pytestmark = pytest.mark.server

RESPONSE_CODES_OF_A_LOSER = {400, 403, 409}


# ---------------------------------------------------------------------------------- helpers


def active_booking_ids(provider_id: int) -> list[int]:
    return list(
        db.session.scalars(
            sa.select(Booking.id)
            .where(Booking.provider_id == provider_id, Booking.status.in_(ACTIVE))
            .order_by(Booking.id)
        )
    )


# ---------------------------------------------------------------------------------- races


def test_twenty_assigns_to_one_provider_exactly_one_wins(app, cast, server):
    booking_ids = [
        bookings.create_booking(cast.owner, service="Boiler check", address=f"{n} Race Rd").id
        for n in range(20)
    ]
    provider_id = cast.provider.user_id
    fresh_session()

    responses = race(
        server,
        [
            lambda s, b=booking_id: server.post(
                s, f"/api/bookings/{b}/assign", cast.tokens["admin"], {"provider_id": provider_id}
            )
            for booking_id in booking_ids
        ],
    )

    assert_no_server_errors(responses)
    assert Counter(r.status_code for r in responses) == {200: 1, 403: 19}, describe(responses)
    for response in responses:
        if response.status_code == 403:
            assert response.json()["detail"] == "Provider is busy"
    (winner,) = [r.json() for r in responses if r.status_code == 200]
    assert winner["status"] == Status.ASSIGNED and winner["provider_id"] == provider_id

    fresh_session()
    assert active_booking_ids(provider_id) == [winner["id"]]
    for booking_id in booking_ids:
        assert_event_chain(booking_id)
        actions = event_actions(booking_id)
        assert actions == (["create", "assign"] if booking_id == winner["id"] else ["create"])
        expected = Status.ASSIGNED if booking_id == winner["id"] else Status.PENDING
        assert db.session.get(Booking, booking_id).status == expected


def test_accepts_racing_force_cancels_on_one_booking_exactly_one_wins(app, cast, server):
    booking = booking_in(cast, Status.ASSIGNED)
    booking_id, seen_version = booking.id, booking.version
    events_before = len(event_actions(booking_id))
    provider_token, admin_token = cast.tokens["provider"], cast.tokens["admin"]
    fresh_session()

    def accept(session):
        body = {"version": seen_version}
        return server.post(session, f"/api/bookings/{booking_id}/accept", provider_token, body)

    def force_cancel(session):
        body = {"version": seen_version, "reason": "customer phoned to cancel"}
        return server.post(session, f"/api/bookings/{booking_id}/force-cancel", admin_token, body)

    calls = [accept, force_cancel] * 10
    responses = race(server, calls)

    assert_no_server_errors(responses)
    codes = [r.status_code for r in responses]
    assert codes.count(200) == 1, describe(responses)
    # Not 403: every loser may act on this booking (the admin always, the provider was assigned
    # to it), so the answer it would get coming second is the stale version's 409 (or 400).
    assert set(codes) - {200} <= {400, 409}, describe(responses)
    winner_index = codes.index(200)
    winner = responses[winner_index].json()
    won_by_accept = calls[winner_index] is accept
    assert winner["status"] == (Status.IN_PROGRESS if won_by_accept else Status.CANCELLED)
    assert winner["version"] == seen_version + 1
    for response in responses:
        if response.status_code == 409:  # the answer says what the booking is now
            body = response.json()
            assert winner["status"] in body["detail"]
            if "booking" in body:  # only for someone who may still see it
                assert body["booking"]["version"] == seen_version + 1
                assert body["booking"]["status"] == winner["status"]

    fresh_session()
    events = event_actions(booking_id)
    assert len(events) == events_before + 1
    assert events[-1] == (Action.ACCEPT if won_by_accept else Action.FORCE_CANCEL)
    assert_event_chain(booking_id)
    stored = db.session.get(Booking, booking_id)
    assert stored.version == seen_version + 1
    expected_active = [booking_id] if won_by_accept else []
    assert active_booking_ids(cast.provider.user_id) == expected_active


def _accept_and_complete_back_to_back(server: Server, token: str, booking_id: int, version: int):
    def accept(session):
        body = {"version": version}
        return server.post(session, f"/api/bookings/{booking_id}/accept", token, body)

    def complete_as_soon_as_possible(session):
        deadline = time.monotonic() + REQUEST_TIMEOUT
        while True:  # busy retry, no sleep: it must follow the accept as closely as it can
            response = server.post(session, f"/api/bookings/{booking_id}/complete", token, {})
            if response.status_code != 400 or time.monotonic() > deadline:
                return response

    return race(server, [accept, complete_as_soon_as_possible])


def test_the_answer_to_a_success_is_the_state_it_made_even_when_the_next_one_follows_at_once(
    app, cast, server
):
    """A 200 shows the booking as *that* request left it. Here the provider's complete is
    retried back to back until the accept lands, so it commits the moment after: an answer
    rebuilt from the database after the commit would often show COMPLETED for the accept."""
    for _trial in range(10):
        booking = booking_in(cast, Status.ASSIGNED)
        booking_id, seen_version = booking.id, booking.version
        fresh_session()

        accepted, completed = _accept_and_complete_back_to_back(
            server, cast.tokens["provider"], booking_id, seen_version
        )

        assert_no_server_errors([accepted, completed])
        both = describe([accepted, completed])
        assert accepted.status_code == 200 and completed.status_code == 200, both
        answer = accepted.json()
        assert (answer["status"], answer["version"]) == (Status.IN_PROGRESS, seen_version + 1), both
        assert accepted.headers["ETag"] == f'"{seen_version + 1}"'
        assert answer["events"][-1]["to_status"] == Status.IN_PROGRESS
        answer = completed.json()
        assert (answer["status"], answer["version"]) == (Status.COMPLETED, seen_version + 2), both
        fresh_session()
        assert_event_chain(booking_id)


# ---------------------------------------------------------------------------------- a busy day


ADMIN_MOVES = (
    (Action.ASSIGN, 6),
    (Action.FORCE_ASSIGN, 2),
    (Action.RETRY, 4),
    (Action.MARK_FAILED, 2),
    (Action.FORCE_CANCEL, 1),
)
SYSTEM_MOVES = ((Action.ASSIGN, 6), (Action.RETRY, 4), (Action.MARK_FAILED, 1))
PROVIDER_MOVES = ((Action.ACCEPT, 5), (Action.REJECT, 3), (Action.COMPLETE, 2))


def _pick(rng: random.Random, moves) -> Action:
    actions, weights = zip(*moves, strict=True)
    return rng.choices(actions, weights)[0]


def test_many_actors_on_many_bookings_keep_every_guarantee(app, cast, server):
    """Dispatchers, automation, providers and customers all at once on shared bookings: no 5xx,
    one version step and one event per successful action, chains unbroken, no provider with two
    non-forced active bookings."""
    extra = accounts.create_users(
        [
            accounts.validate_new_user(f"p{n}@example.com", f"Provider {n}", Role.PROVIDER)
            for n in range(2)
        ],
        with_tokens=True,
    )
    providers = {
        cast.provider.user_id: cast.tokens["provider"],
        cast.other_provider.user_id: cast.tokens["other_provider"],
    }
    providers.update({user.id: token for user, token in extra})
    customers = {
        cast.owner.user_id: cast.tokens["owner"],
        cast.other_customer.user_id: cast.tokens["other_customer"],
    }
    booking_ids = [
        bookings.create_booking(customer, service="Window cleaning", address=f"{n} Busy St").id
        for n, customer in enumerate([cast.owner, cast.other_customer] * 8)
    ]
    fresh_session()
    events_before = db.session.scalar(sa.select(sa.func.count()).select_from(BookingEvent))
    fresh_session()

    provider_ids = list(providers)
    log: list[tuple[Action, int, requests.Response]] = []  # (action, booking, response)
    log_lock = threading.Lock()

    def record(action, booking_id, response):
        with log_lock:
            log.append((action, booking_id, response))

    def dispatcher(seed: int, token: str, moves):
        def run(session):
            rng = random.Random(seed)
            for _ in range(12):
                booking_id = rng.choice(booking_ids)
                action = _pick(rng, moves)
                body: dict = {}
                if action in (Action.ASSIGN, Action.FORCE_ASSIGN):
                    body["provider_id"] = rng.choice(provider_ids)
                if action in (Action.MARK_FAILED, Action.FORCE_ASSIGN, Action.FORCE_CANCEL):
                    body["reason"] = f"{action} by the concurrency test"
                if rng.random() < 0.5:  # half the time act on the version just seen
                    seen = server.get(session, f"/api/bookings/{booking_id}", token)
                    record(None, booking_id, seen)
                    if seen.status_code == 200:
                        body["version"] = seen.json()["version"]
                path = f"/api/bookings/{booking_id}/{action}"
                record(action, booking_id, server.post(session, path, token, body))

        return run

    def provider(seed: int, provider_id: int, token: str):
        def run(session):
            rng = random.Random(seed)
            for _ in range(12):
                queue = server.get(session, f"/api/providers/{provider_id}/bookings", token)
                record(None, None, queue)
                mine = queue.json() if queue.status_code == 200 else []
                action = _pick(rng, PROVIDER_MOVES)
                if mine and rng.random() < 0.8:
                    target = rng.choice(mine)
                    booking_id, body = target["id"], {"version": target["version"]}
                    if rng.random() < 0.5:
                        body = {}  # some clients do not send a version
                else:  # someone else's booking, or one taken from us meanwhile
                    booking_id, body = rng.choice(booking_ids), {}
                path = f"/api/bookings/{booking_id}/{action}"
                record(action, booking_id, server.post(session, path, token, body))

        return run

    def customer(seed: int, token: str):
        def run(session):
            rng = random.Random(seed)
            for _ in range(4):
                booking_id = rng.choice(booking_ids)
                path = f"/api/bookings/{booking_id}/cancel"
                record(Action.CANCEL, booking_id, server.post(session, path, token, {}))

        return run

    calls = [
        dispatcher(1, cast.tokens["admin"], ADMIN_MOVES),
        dispatcher(2, cast.tokens["admin"], ADMIN_MOVES),
        dispatcher(3, cast.tokens["system"], SYSTEM_MOVES),
        dispatcher(4, cast.tokens["system"], SYSTEM_MOVES),
    ]
    for n, (provider_id, token) in enumerate(providers.items()):
        calls += [provider(10 + n, provider_id, token), provider(20 + n, provider_id, token)]
    calls += [customer(30 + n, token) for n, token in enumerate(customers.values())]
    race(server, calls)

    responses = [response for _, _, response in log]
    assert_no_server_errors(responses)
    unexpected = [r for r in responses if r.status_code not in {200} | RESPONSE_CODES_OF_A_LOSER]
    assert not unexpected, describe(unexpected)
    successes = [
        (action, booking_id, r)
        for action, booking_id, r in log
        if action is not None and r.status_code == 200
    ]
    assert successes, "the workload made no successful action at all"
    for action, _booking_id, response in successes:  # each answer shows what its action did
        assert response.json()["status"] == LIFECYCLE[action].target, describe([response])

    fresh_session()
    total_events = db.session.scalar(sa.select(sa.func.count()).select_from(BookingEvent))
    assert total_events == events_before + len(successes)
    versions_by_booking = defaultdict(list)
    for _action, booking_id, response in successes:
        versions_by_booking[booking_id].append(response.json()["version"])
    for booking_id in booking_ids:
        assert_event_chain(booking_id)
        stored = db.session.get(Booking, booking_id)
        # Each success moved the booking exactly one version on, and no two saw the same step.
        assert sorted(versions_by_booking[booking_id]) == list(range(2, stored.version + 1))
        assert len(event_actions(booking_id)) == stored.version
    assert double_booked_providers() == []
    print(
        f"{len(responses)} requests, {len(successes)} transitions:",
        dict(Counter(r.status_code for r in responses)),
    )


# Rounds of the accept-versus-expiry race: a few here, 100 in the long profile.
OFFER_RACE_ROUNDS = int(os.environ.get("OPS_PORTAL_OFFER_RACE_ROUNDS", "5"))


def test_an_accept_and_the_expiry_of_its_offer_at_the_same_instant_have_one_winner(
    app, cast, server
):
    """Each round the provider accepts through the server (its clock: before the deadline)
    while a sweep in this process expires the offer (its clock: at the deadline), released
    together: each alone would succeed, and exactly one does."""
    app.config["LAPSES_BEFORE_OFF_DUTY"] = 0  # the provider stays on duty for every round
    provider_id = cast.provider.user_id
    outcomes = Counter()

    def sweep_at(deadline):
        def call(_session):
            with app.app_context():
                return offers.expire_offers(deadline)

        return call

    for _ in range(OFFER_RACE_ROUNDS):
        booking_id = bookings.create_booking(cast.owner, service="Gutter clearing").id
        assigned = bookings.perform_action(
            cast.admin, booking_id, Action.ASSIGN, provider_id=provider_id
        )
        deadline = assigned.offer_expires_at
        fresh_session()

        accept, expired = race(
            server,
            [
                lambda s, b=booking_id: server.post(
                    s, f"/api/bookings/{b}/accept", cast.tokens["provider"], {}
                ),
                sweep_at(deadline),
            ],
        )

        assert_no_server_errors([accept])
        fresh_session()
        if accept.status_code == 200:
            assert expired == [], "an accepted offer was expired too"
            assert event_actions(booking_id)[-1] == "accept"
            bookings.perform_action(cast.provider, booking_id, Action.COMPLETE)
        else:
            # The sweep won: the provider is no longer assigned, so the accept is refused.
            assert expired == [booking_id], describe([accept])
            assert accept.status_code == 403, describe([accept])
            assert event_actions(booking_id)[-1] == "expire-offer"
        assert event_actions(booking_id)[:3] in (
            ["create", "assign", "accept"],
            ["create", "assign", "expire-offer"],
        )
        assert_event_chain(booking_id)
        outcomes["accepted" if accept.status_code == 200 else "expired"] += 1
    print("offer race:", dict(outcomes))  # pytest -s shows who won how often
    assert sum(outcomes.values()) == OFFER_RACE_ROUNDS

"""Idempotent writes: Idempotency-Key on API POSTs and the pages' hidden `idempotency_key`, on
SQLite and PostgreSQL. One execution per (user, endpoint, key); a repeat replays the first
answer (marked Idempotent-Replayed: true); another body with the same key is 422; keys live 24
hours. Rows are checked in the database, not only the answers. What a fault, or a first request
still running, does to a key: test_idempotency_faults.py."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from ops_portal.domain.lifecycle import Action, Status
from ops_portal.extensions import db
from ops_portal.models import Booking, BookingEvent, IdempotencyKey, utcnow
from ops_portal.services import bookings, idempotency
from tests.support.api import CREATE_BODY, new_key
from tests.support.builders import (
    assert_event_chain,
    booking_in,
    count_bookings,
    count_rows,
    event_actions,
    event_values,
    key_rows,
    snapshot,
)
from tests.support.pages import HOME, Page, press
from tests.support.server import assert_no_server_errors, describe, fresh_session, race

# The promised lifetimes, written out (not read from the code under test, so a change there fails).
KEY_TTL = timedelta(hours=24)


# ------------------------------------------------------------------------------------ helpers


def create_twice(api, key: str | None, *, again_to: str = "/api/bookings/"):
    """The owner's create sent twice with the same key (the second time to `again_to`)."""
    first = api.post("/api/bookings/", as_="owner", json=CREATE_BODY, key=key)
    return first, api.post(again_to, as_="owner", json=CREATE_BODY, key=key)


def set_key_created_at(key: str, when) -> None:
    db.session.rollback()
    with db.session.begin():
        db.session.execute(
            sa.update(IdempotencyKey).where(IdempotencyKey.key == key).values(created_at=when)
        )


def insert_claim(user_id: int, endpoint: str, key: str, raw_body: bytes, created_at) -> None:
    """A claimed, not yet completed key, as a request still running (or one that died) leaves it."""
    db.session.rollback()
    with db.session.begin():
        db.session.add(
            IdempotencyKey(
                user_id=user_id,
                endpoint=endpoint,
                key=key,
                request_hash=hashlib.sha256(raw_body).hexdigest(),
                created_at=created_at,
            )
        )


def assert_replay_of(first, second) -> None:
    assert second.status_code == first.status_code
    assert second.get_data() == first.get_data()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    for name in ("Content-Type", "Location", "ETag"):
        assert second.headers.get(name) == first.headers.get(name), name


# ------------------------------------------------------------------------------------ the API


def test_a_repeated_create_with_the_same_key_makes_one_booking_and_replays_the_first_answer(
    api, cast
):
    key = new_key()
    first, second = create_twice(api, key)

    assert first.status_code == 201, first.get_json()
    assert_replay_of(first, second)
    assert count_rows(Booking) == 1
    assert event_actions(first.get_json()["id"]) == ["create"]


def test_a_retry_to_the_same_route_without_its_trailing_slash_is_the_same_request(api, cast):
    key = new_key()
    first, second = create_twice(api, key, again_to="/api/bookings")

    assert first.status_code == 201, first.get_json()
    assert_replay_of(first, second)
    assert count_rows(Booking) == 1


def test_a_repeated_accept_with_the_same_key_records_one_event(api, cast):
    booking = booking_in(cast, Status.ASSIGNED)
    path, key = f"/api/bookings/{booking.id}/accept", new_key()
    body = {"version": booking.version}

    first, second = (api.post(path, as_="provider", json=body, key=key) for _ in range(2))

    assert first.status_code == 200 and first.get_json()["status"] == Status.IN_PROGRESS
    assert_replay_of(first, second)
    assert event_actions(booking.id) == ["create", "assign", "accept"]
    assert_event_chain(booking.id)


def test_a_refusal_is_replayed_even_after_the_booking_would_now_allow_the_action(api, cast):
    booking = booking_in(cast, Status.ASSIGNED)
    path, key = f"/api/bookings/{booking.id}/complete", new_key()

    refused = api.post(path, as_="provider", json={}, key=key)  # not started yet
    assert refused.status_code == 400, refused.get_json()
    # The booking changes so that the same request would now succeed if it ran again.
    bookings.perform_action(cast.provider, booking.id, Action.ACCEPT)
    repeat = api.post(path, as_="provider", json={}, key=key)

    assert_replay_of(refused, repeat)
    assert event_actions(booking.id) == ["create", "assign", "accept"]
    [row] = key_rows()
    assert (row.response_status, row.completed_at is not None) == (400, True)


def test_the_same_key_with_a_different_body_is_refused_with_422_and_changes_nothing(api, cast):
    key = new_key()
    first = api.post("/api/bookings/", as_="owner", json=CREATE_BODY, key=key)
    other = api.post(
        "/api/bookings/", as_="owner", json={**CREATE_BODY, "address": "2 Other Street"}, key=key
    )

    assert first.status_code == 201
    assert other.status_code == 422, other.get_json()
    assert "different request body" in other.get_json()["detail"]
    assert "Idempotent-Replayed" not in other.headers
    assert count_rows(Booking) == 1
    [row] = key_rows()
    assert row.response_status == 201


def test_the_same_key_on_another_endpoint_or_by_another_user_acts_independently(api, cast):
    key = new_key()
    mine = api.post("/api/bookings/", as_="owner", json=CREATE_BODY, key=key)
    theirs = api.post("/api/bookings/", as_="other_customer", json=CREATE_BODY, key=key)
    booking = booking_in(cast, Status.ASSIGNED)
    accept = api.post(f"/api/bookings/{booking.id}/accept", as_="provider", json={}, key=key)

    assert (mine.status_code, theirs.status_code, accept.status_code) == (201, 201, 200)
    for response in (mine, theirs, accept):
        assert "Idempotent-Replayed" not in response.headers
    assert mine.get_json()["id"] != theirs.get_json()["id"]
    assert theirs.get_json()["customer_id"] == cast.other_customer.user_id
    assert event_actions(booking.id)[-1] == "accept"
    assert count_rows(Booking) == 3
    assert len(key_rows()) == 3


def test_requests_without_a_key_are_each_executed(api, cast):
    first, second = create_twice(api, key=None)

    assert (first.status_code, second.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in second.headers
    assert first.get_json()["id"] != second.get_json()["id"]
    assert count_rows(Booking) == 2
    assert key_rows() == []


@pytest.mark.parametrize(
    "key",
    ["x" * 256, "has space", "semi;colon", "ünïcode", "new\tline", ""],
    ids=["too-long", "space", "semicolon", "unicode", "tab", "empty"],
)
def test_an_invalid_key_is_refused_with_400_and_nothing_is_created(api, cast, key):
    # As the header reaches the server: its bytes, read as Latin-1.
    response = api.post(
        "/api/bookings/", as_="owner", json=CREATE_BODY, key=key.encode("utf-8").decode("latin-1")
    )

    assert response.status_code == 400, response.get_json()
    assert "Idempotency-Key" in response.get_json()["detail"]
    assert count_rows(Booking) == 0
    assert key_rows() == []


def test_the_longest_allowed_key_with_every_allowed_character_works(api, cast):
    key = ("aZ09-_.:~+/=" * 30)[:255]
    first, second = create_twice(api, key)

    assert first.status_code == 201
    assert_replay_of(first, second)
    assert count_rows(Booking) == 1


def test_a_key_older_than_24_hours_starts_a_fresh_request(api, cast):
    key = new_key()
    first = api.post("/api/bookings/", as_="owner", json=CREATE_BODY, key=key)
    set_key_created_at(key, utcnow() - KEY_TTL - timedelta(minutes=1))

    again = api.post("/api/bookings/", as_="owner", json=CREATE_BODY, key=key)

    assert (first.status_code, again.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in again.headers
    assert again.get_json()["id"] != first.get_json()["id"]
    assert count_rows(Booking) == 2
    [row] = key_rows()  # the old key was replaced, not duplicated
    assert row.created_at > utcnow() - timedelta(minutes=1)
    assert json.loads(row.response_body)["id"] == again.get_json()["id"]


def test_a_key_just_under_24_hours_old_is_still_replayed(api, cast):
    key = new_key()
    first = api.post("/api/bookings/", as_="owner", json=CREATE_BODY, key=key)
    set_key_created_at(key, utcnow() - KEY_TTL + timedelta(minutes=5))

    again = api.post("/api/bookings/", as_="owner", json=CREATE_BODY, key=key)

    assert_replay_of(first, again)
    assert count_rows(Booking) == 1


def test_purge_expired_deletes_only_keys_older_than_24_hours(api, cast):
    old, young = new_key(), new_key()
    for key in (old, young):
        assert api.post("/api/bookings/", as_="owner", json=CREATE_BODY, key=key).status_code == 201
    set_key_created_at(old, utcnow() - KEY_TTL - timedelta(seconds=1))
    set_key_created_at(young, utcnow() - KEY_TTL + timedelta(minutes=1))

    assert idempotency.purge_expired() == 1
    assert [row.key for row in key_rows()] == [young]
    assert count_rows(Booking) == 2  # purging keys never touches what they made
    assert idempotency.purge_expired() == 0


def test_flask_idempotency_purge_prints_how_many_keys_it_deleted(app, api, cast):
    keys = [new_key() for _ in range(3)]
    for key in keys:
        assert api.post("/api/bookings/", as_="owner", json=CREATE_BODY, key=key).status_code == 201
    for key in keys[:2]:
        set_key_created_at(key, utcnow() - timedelta(days=2))
    db.session.rollback()  # the command runs in this app context: no open read transaction

    result = app.test_cli_runner().invoke(args=["idempotency", "purge"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"purged": 2}
    assert [row.key for row in key_rows()] == [keys[2]]


def test_a_claim_without_an_answer_is_taken_over_at_once(api, cast):
    """Earlier versions committed a claim before the work and left it behind when a request
    died; such a row is no answer, so the key's next request runs at once (no 409)."""
    key, raw = new_key(), json.dumps(CREATE_BODY).encode()
    left_at = utcnow() - timedelta(seconds=5)
    insert_claim(cast.owner.user_id, "POST /api/bookings/", key, raw, left_at)

    taken_over = api.post("/api/bookings/", as_="owner", data=raw, key=key)
    repeat = api.post("/api/bookings/", as_="owner", data=raw, key=key)

    assert taken_over.status_code == 201, taken_over.get_json()
    assert_replay_of(taken_over, repeat)
    assert count_rows(Booking) == 1
    [row] = key_rows()
    assert row.completed_at is not None and row.created_at > left_at


# ------------------------------------------------------------------------------ atomicity


def test_a_refused_action_stores_its_refusal_and_never_a_success_answer(api, cast):
    booking = booking_in(cast, Status.ASSIGNED)
    before = snapshot(booking.id)
    key = new_key()

    # A stale version: the service refuses after loading and checking the booking.
    response = api.post(
        f"/api/bookings/{booking.id}/accept",
        as_="provider",
        json={"version": booking.version - 1},
        key=key,
    )

    assert response.status_code == 409, response.get_json()
    assert snapshot(booking.id) == before
    [row] = key_rows()
    assert row.response_status == 409
    assert json.loads(row.response_body) == response.get_json()
    assert count_rows(IdempotencyKey, IdempotencyKey.response_status < 300) == 0


def test_every_stored_success_answer_matches_a_change_in_the_database(api, cast):
    created = [
        api.post("/api/bookings/", as_="owner", json=CREATE_BODY, key=new_key()) for _ in range(3)
    ]
    booking_id = created[0].get_json()["id"]
    api.post(
        f"/api/bookings/{booking_id}/assign",
        as_="admin",
        json={"provider_id": cast.provider.user_id},
        key=new_key(),
    )
    api.post(f"/api/bookings/{booking_id}/accept", as_="provider", json={}, key=new_key())
    api.post(f"/api/bookings/{booking_id}/complete", as_="owner", json={}, key=new_key())  # 403

    rows = key_rows()
    assert sorted(row.response_status for row in rows) == [200, 200, 201, 201, 201, 403]
    db.session.rollback()
    for row in rows:
        answer = json.loads(row.response_body)
        if row.response_status >= 300:
            continue
        booking = db.session.get(Booking, answer["id"])
        assert booking is not None, f"stored answer for booking {answer['id']} without the booking"
        # Events as their caller saw them (a customer's carry no action): matched by id.
        stored_events = [e["id"] for e in answer["events"]]
        assert event_values(answer["id"], BookingEvent.id)[: len(stored_events)] == stored_events
    assert event_actions(booking_id) == ["create", "assign", "accept"]


# ------------------------------------------------------------------------------ real parallel


def test_parallel_creates_with_one_key_make_exactly_one_booking(app, cast, start_server):
    # A wait far longer than any create takes, so no repeat gives up on a slow machine.
    server = start_server(IDEMPOTENCY_WAIT_SECONDS="60", SQLITE_BUSY_TIMEOUT="60")
    key, token = new_key(), cast.tokens["owner"]
    fresh_session()

    def create(session):
        return server.post(session, "/api/bookings/", token, CREATE_BODY, key=key)

    responses = race(server, [create] * 12)

    assert_no_server_errors(responses)
    # Every repeat waited for the first and replayed its answer: none was told "in flight".
    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 12}, describe(responses)
    originals = [
        r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    ]
    assert len(originals) == 1, describe(responses)
    for response in responses:
        if response.status_code == 201:
            assert response.content == originals[0].content
    fresh_session()
    assert count_rows(Booking) == 1
    assert event_actions(originals[0].json()["id"]) == ["create"]
    # Once the first is done, every retry is a replay.
    with requests.Session() as session:
        retry = create(session)
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.content == originals[0].content


# ------------------------------------------------------------------------------ the pages


def test_the_provider_queue_forms_carry_a_fresh_hidden_idempotency_key(people, login):
    ids = [
        booking_in(people, Status.ASSIGNED, provider=p).id
        for p in (people.provider, people.other_provider)
    ]
    client = login("provider")

    first, second = Page(client.get(HOME["provider"])), Page(client.get(HOME["provider"]))

    keys = []
    for page in (first, second):
        for action in ("accept", "reject"):
            key = page.form(ids[0], action).hidden.get("idempotency_key")
            assert key and idempotency.check_key(key) == key
            keys.append(key)
    assert len(set(keys)) == len(keys), "each form drawn must get its own key"


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
def test_pressing_the_same_queue_form_twice_acts_once(people, login, htmx):
    booking = booking_in(people, Status.ASSIGNED).id
    before = snapshot(booking)
    client = login("provider")
    form = Page(client.get(HOME["provider"])).form(booking, "accept")

    first = press(client, form, htmx=htmx)
    second = press(client, form, htmx=htmx)  # a double tap, or a retry over a flaky network

    assert first.status_code == (200 if htmx else 303), first.get_data(as_text=True)
    assert_replay_of(first, second)
    status, version, _, events = snapshot(booking)
    assert (status, version, events) == (Status.IN_PROGRESS, before[1] + 1, before[3] + 1)
    assert event_actions(booking)[-1] == "accept"


def test_the_same_form_pressed_again_without_its_key_is_refused_as_stale(people, login):
    """The control: without the key, the second press runs and is refused (the version moved),
    so the replay above is the key's doing, not the version check's."""
    booking = booking_in(people, Status.ASSIGNED).id
    client = login("provider")
    form = Page(client.get(HOME["provider"])).form(booking, "accept")
    form.hidden.pop("idempotency_key")

    first = press(client, form, htmx=True)
    second = press(client, form, htmx=True)

    assert first.status_code == 200
    assert second.status_code == 409 and "Idempotent-Replayed" not in second.headers
    assert count_bookings() == 1
    assert event_actions(booking) == ["create", "assign", "accept"]

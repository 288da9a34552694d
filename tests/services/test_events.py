"""The audit trail and all-or-nothing writes (docs/lifecycle.md): events are append-only in
the database itself, chains never break, refusals write nothing, a failure midway leaves no
trace, and a stale version is refused."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from ops_portal.domain.errors import (
    DomainError,
    InvalidInput,
    NotFound,
    NotPermitted,
    ProviderBusy,
    StaleBooking,
    TransitionNotAllowed,
)
from ops_portal.domain.lifecycle import (
    ACTIVE,
    BOOKING_ACTIONS,
    LIFECYCLE,
    TERMINAL,
    Action,
    Actor,
    Deadline,
    Role,
    Status,
    allowed_actions,
)
from ops_portal.extensions import db
from ops_portal.http.errors import status_for
from ops_portal.models import Booking, BookingEvent
from ops_portal.services import bookings, providers
from tests.support.builders import assert_event_chain, booking_in, booking_state
from tests.support.people import ACTOR_KINDS


def total_events() -> int:
    db.session.rollback()
    count = db.session.scalar(sa.select(sa.func.count()).select_from(BookingEvent))
    db.session.rollback()
    return count


# ------------------------------------------------------------------ append-only, in the database

TAMPERING = {
    "update-event": "UPDATE booking_events SET reason = 'tampered' WHERE booking_id = :id",
    "update-event-status": "UPDATE booking_events SET to_status = 'PENDING' WHERE booking_id = :id",
    "delete-event": "DELETE FROM booking_events WHERE booking_id = :id",
    "delete-booking": "DELETE FROM bookings WHERE id = :id",
}


@pytest.mark.parametrize("statement", list(TAMPERING.values()), ids=list(TAMPERING))
def test_database_refuses_to_change_the_audit_trail(cast, statement):
    booking = booking_in(cast, Status.COMPLETED)
    before = booking_state(booking.id)

    with pytest.raises(sa.exc.DBAPIError) as refused:
        db.session.execute(sa.text(statement), {"id": booking.id})
        db.session.commit()
    # The append-only guard refused it, not some other constraint.
    assert "append-only" in str(refused.value.orig)
    db.session.rollback()

    assert booking_state(booking.id) == before
    assert_event_chain(booking.id)


def test_database_refuses_to_delete_events_through_the_orm(cast):
    booking = booking_in(cast, Status.ASSIGNED)
    before = booking_state(booking.id)
    event = db.session.scalars(
        sa.select(BookingEvent).where(BookingEvent.booking_id == booking.id)
    ).first()
    db.session.delete(event)
    with pytest.raises(sa.exc.DBAPIError):
        db.session.commit()
    db.session.rollback()
    assert booking_state(booking.id) == before


def test_postgresql_refuses_to_truncate_the_audit_trail(cast):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's; SQLite has none")
    booking = booking_in(cast, Status.PENDING)
    before = booking_state(booking.id)
    for table in ("booking_events", "bookings"):
        with pytest.raises(sa.exc.DBAPIError) as refused:
            db.session.execute(sa.text(f"TRUNCATE {table} CASCADE"))
            db.session.commit()
        assert "append-only" in str(refused.value.orig)
        db.session.rollback()
    assert booking_state(booking.id) == before


# ---------------------------------------------------------------------- chains


def test_event_chains_stay_unbroken_across_a_long_random_walk(cast):
    """~200 seeded random requests over a few bookings: mostly plausible ones, some wild (wrong
    actor, wrong status, stale version, busy provider, no reason). Every answer agrees with the
    table, and every booking's chain and version account for exactly its successes."""
    rng = random.Random(20261124)
    actors = [cast.by_name(kind) for kind in ACTOR_KINDS]
    provider_ids = [cast.provider.user_id, cast.other_provider.user_id]
    live = [booking_in(cast, Status.PENDING).id for _ in range(4)]
    successes = {booking_id: 0 for booking_id in live}
    outcomes: dict[str, int] = {}

    for _ in range(200):
        booking_id = rng.choice(live)
        booking = db.session.get(Booking, booking_id)
        facts, version = booking.facts, booking.version
        if rng.random() < 0.7:
            choices = [(a, act) for act in actors for a in allowed_actions(facts, act)]
            action, actor = rng.choice(choices)
        else:
            action, actor = rng.choice(BOOKING_ACTIONS), rng.choice(actors)
        rule = LIFECYCLE[action]
        provider_id = rng.choice(provider_ids) if rule.takes_provider else None
        reason = rng.choice([None, "walk reason", "walk reason"])
        expected_version = rng.choice([None] * 5 + [version] * 4 + [version - 1])
        busy = provider_id is not None and bool(
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(Booking)
                .where(Booking.provider_id == provider_id, Booking.status.in_(ACTIVE))
            )
        )
        should_succeed = (
            action in allowed_actions(facts, actor)
            and expected_version in (None, version)
            and bool(reason or not rule.reason_required)
            and not (rule.checks_availability and busy)
            and not (
                rule.takes_provider and facts.status in ACTIVE and facts.provider_id == provider_id
            )
        )
        # An offer is expired once its deadline has come: the walk's clock moves there for it.
        deadline = booking.offer_expires_at if rule.offer_deadline is Deadline.AFTER else None
        try:
            done = bookings.perform_action(
                actor,
                booking_id,
                action,
                provider_id=provider_id,
                reason=reason,
                expected_version=expected_version,
                now=deadline,
            )
        except DomainError as error:
            assert not should_succeed, f"{action} by {actor} refused: {error.detail}"
            outcomes[type(error).__name__] = outcomes.get(type(error).__name__, 0) + 1
        else:
            assert should_succeed, f"{action} by {actor} on {facts} should have been refused"
            assert done.status == rule.target
            successes[booking_id] += 1
            outcomes["ok"] = outcomes.get("ok", 0) + 1
            if done.status in TERMINAL:  # keep a few live bookings in play
                live.remove(booking_id)
                fresh = booking_in(cast, Status.PENDING).id
                live.append(fresh)
                successes[fresh] = 0
        db.session.expire_all()
        assert_one_unforced_active_booking_per_provider()

    # The walk went places: many moves, and every kind of refusal.
    assert outcomes.get("ok", 0) >= 80, outcomes
    for kind in ("NotPermitted", "TransitionNotAllowed", "StaleBooking", "ProviderBusy"):
        assert outcomes.get(kind, 0) >= 1, outcomes
    assert len(successes) > 4, "some bookings ran to the end of their lifecycle"
    for booking_id, moves in successes.items():
        assert_event_chain(booking_id)
        *_row, version, _updated, events = booking_state(booking_id)
        assert len(events) == 1 + moves
        assert version == len(events)


def assert_one_unforced_active_booking_per_provider() -> None:
    """No provider holds two active bookings unless a force-assign made it so."""
    rows = db.session.execute(
        sa.select(Booking.provider_id, sa.func.count())
        .where(Booking.status.in_(ACTIVE), Booking.assignment_forced.is_(False))
        .group_by(Booking.provider_id)
    ).all()
    assert all(count <= 1 for _, count in rows), rows


def test_event_times_are_timezone_aware_utc(cast):
    started = datetime.now(UTC)
    booking = booking_in(cast, Status.COMPLETED)
    db.session.rollback()
    db.session.expire_all()
    if db.engine.dialect.name == "postgresql":
        # Whatever the connection's zone, times come back as the same instants in UTC.
        db.session.execute(sa.text("SET TIME ZONE 'Pacific/Auckland'"))
    events = db.session.scalars(
        sa.select(BookingEvent).where(BookingEvent.booking_id == booking.id)
    ).all()
    stored = db.session.get(Booking, booking.id)
    assert len(events) == 4
    for value in [e.created_at for e in events] + [stored.created_at, stored.updated_at]:
        assert value.tzinfo is not None
        assert value.utcoffset() == timedelta(0)
        assert started - timedelta(seconds=5) <= value <= datetime.now(UTC)
    assert [e.created_at for e in events] == sorted(e.created_at for e in events)
    assert events[0].created_at == stored.created_at
    assert events[-1].created_at == stored.updated_at
    db.session.rollback()


def test_naive_times_are_refused_rather_than_guessed(cast):
    with pytest.raises(InvalidInput):
        bookings.create_booking(
            cast.owner, service="Cleaning", window_start=datetime(2030, 1, 1, 9, 0)
        )
    assert total_events() == 0


# ---------------------------------------------------------------------- refusals write nothing

REFUSALS = {
    # name: (status to start from, actor kind, action, kwargs, expected error)
    "wrong-role": (
        Status.PENDING,
        "provider",
        Action.ASSIGN,
        {"provider_id": "other"},
        NotPermitted,
    ),
    "not-the-owner": (Status.PENDING, "other_customer", Action.CANCEL, {}, NotPermitted),
    "not-assigned": (Status.ASSIGNED, "other_provider", Action.ACCEPT, {}, NotPermitted),
    "wrong-status": (Status.IN_PROGRESS, "owner", Action.CANCEL, {}, TransitionNotAllowed),
    "terminal": (Status.COMPLETED, "admin", Action.FORCE_CANCEL, {}, TransitionNotAllowed),
    "no-reason": (Status.ASSIGNED, "admin", Action.MARK_FAILED, {"reason": "  "}, InvalidInput),
    "busy": (Status.PENDING, "admin", Action.ASSIGN, {"provider_id": "busy"}, ProviderBusy),
    "no-provider": (Status.PENDING, "admin", Action.ASSIGN, {"provider_id": 99_999}, NotFound),
    "stale": (Status.ASSIGNED, "provider", Action.ACCEPT, {"expected_version": 1}, StaleBooking),
    "reason-too-long": (
        Status.ASSIGNED,
        "admin",
        Action.FORCE_CANCEL,
        {"reason": "x" * 501},
        InvalidInput,
    ),
    "provider-not-taken": (
        Status.ASSIGNED,
        "provider",
        Action.ACCEPT,
        {"provider_id": "other"},
        InvalidInput,
    ),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_a_refused_action_writes_no_event_and_changes_nothing(cast, name):
    start, kind, action, kwargs, error_type = REFUSALS[name]
    if kwargs.get("provider_id") == "busy":
        booking_in(cast, Status.ASSIGNED, provider=cast.other_provider)
        kwargs = {**kwargs, "provider_id": cast.other_provider.user_id}
    if kwargs.get("provider_id") == "other":
        kwargs = {**kwargs, "provider_id": cast.other_provider.user_id}
    booking = booking_in(cast, start)
    before, events_before = booking_state(booking.id), total_events()

    with pytest.raises(error_type):
        bookings.perform_action(cast.by_name(kind), booking.id, action, **kwargs)

    assert booking_state(booking.id) == before
    assert total_events() == events_before


# ---------------------------------------------------------------------- all or nothing


def test_a_failure_while_writing_the_event_rolls_back_the_whole_action(cast):
    """The event insert fails after the booking row was updated (an actor whose account does not
    exist breaks the event's foreign key): neither the booking change nor the event remains."""
    booking = booking_in(cast, Status.IN_PROGRESS)
    before, events_before = booking_state(booking.id), total_events()
    ghost_admin = Actor(Role.ADMIN, 10_000)

    with pytest.raises(sa.exc.IntegrityError):
        bookings.perform_action(ghost_admin, booking.id, Action.FORCE_CANCEL, reason="ghost")

    assert booking_state(booking.id) == before
    assert total_events() == events_before
    rows = {p.id: p for p in providers.providers_with_availability(cast.admin)}
    assert rows[cast.provider.user_id].active_count == 1
    # The session is usable afterwards and the same action by a real admin goes through.
    done = bookings.perform_action(cast.admin, booking.id, Action.FORCE_CANCEL, reason="real")
    assert done.status == Status.CANCELLED
    assert_event_chain(booking.id)


@pytest.mark.parametrize(
    "odd_actor, refusal",
    [
        # A foreign key: the event's actor is no account. The database refuses the event.
        (lambda cast: Actor(Role.ADMIN, 999_999), sa.exc.IntegrityError),
        # An unknown source: the enum column refuses it before the database sees it.
        (lambda cast: Actor(Role.ADMIN, cast.admin.user_id, source="fax"), sa.exc.StatementError),
    ],
    ids=["unknown-actor", "unknown-source"],
)
def test_an_event_the_database_rejects_leaves_the_booking_as_it_was(cast, odd_actor, refusal):
    """An event that cannot be written undoes the assignment it records too."""
    booking = booking_in(cast, Status.PENDING)
    before, events_before = booking_state(booking.id), total_events()

    with pytest.raises(refusal):
        bookings.perform_action(
            odd_actor(cast), booking.id, Action.ASSIGN, provider_id=cast.provider.user_id
        )

    assert booking_state(booking.id) == before
    assert total_events() == events_before
    rows = {p.id: p for p in providers.providers_with_availability(cast.admin)}
    assert rows[cast.provider.user_id].active_count == 0


# ---------------------------------------------------------------------- stale versions


def test_an_action_on_a_stale_version_is_refused_with_the_current_state(cast):
    booking = booking_in(cast, Status.ASSIGNED)
    seen = booking.version
    bookings.perform_action(cast.provider, booking.id, Action.ACCEPT, expected_version=seen)
    before = booking_state(booking.id)

    # An admin acting on the page as it was before the accept.
    with pytest.raises(StaleBooking) as refused:
        bookings.perform_action(
            cast.admin, booking.id, Action.FORCE_CANCEL, reason="late", expected_version=seen
        )

    assert status_for(refused.value) == 409
    assert refused.value.booking.status == Status.IN_PROGRESS
    assert refused.value.booking.version == seen + 1
    assert booking_state(booking.id) == before


@pytest.mark.parametrize("offset", [-1, 1])
def test_only_the_current_version_is_accepted(cast, offset):
    booking = booking_in(cast, Status.ASSIGNED)
    current = booking.version
    before = booking_state(booking.id)
    with pytest.raises(StaleBooking):
        bookings.perform_action(
            cast.provider, booking.id, Action.ACCEPT, expected_version=current + offset
        )
    assert booking_state(booking.id) == before
    done = bookings.perform_action(
        cast.provider, booking.id, Action.ACCEPT, expected_version=current
    )
    assert done.version == current + 1


def test_a_stale_refusal_does_not_reveal_the_booking_to_someone_who_may_not_see_it(cast):
    booking = booking_in(cast, Status.ASSIGNED)
    before = booking_state(booking.id)
    with pytest.raises(DomainError) as refused:
        bookings.perform_action(
            cast.other_customer, booking.id, Action.CANCEL, expected_version=booking.version - 1
        )
    assert status_for(refused.value) in (403, 409)
    assert refused.value.booking is None
    assert Status.ASSIGNED.value not in refused.value.detail
    assert booking_state(booking.id) == before


def test_an_action_decides_on_the_booking_as_it_is_under_its_lock_not_as_last_read(cast, app):
    """A request that read the booking earlier (a page's read check) and then acts on it acts
    on the row as it now is: another request's change in between is seen, whatever this
    session remembers of the booking."""
    booking = booking_in(cast, Status.PENDING)
    assert bookings.get_booking(cast.admin, booking.id).status is Status.PENDING

    def elsewhere():  # another request: its own app context, session and connection
        with app.app_context():
            bookings.perform_action(cast.admin, booking.id, Action.MARK_FAILED, reason="gone")

    other = threading.Thread(target=elsewhere)
    other.start()
    other.join(30)
    with pytest.raises(TransitionNotAllowed, match="it is FAILED"):
        bookings.perform_action(
            cast.admin, booking.id, Action.ASSIGN, provider_id=cast.provider.user_id
        )
    assert [e.action for e in bookings.booking_events(cast.admin, booking.id)][-1] == "mark-failed"

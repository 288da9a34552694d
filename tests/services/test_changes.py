"""The change feed live pages are told from: every appended booking event and duty change past a
cursor, with whom it concerns; who hears of what (access.hears_of); the cursor's text; and on
PostgreSQL the notification the appending transaction sends, delivered at its commit and never
after a rollback."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa

from ops_portal.domain.access import Change, ChangeKind, hears_of
from ops_portal.domain.errors import InvalidInput
from ops_portal.domain.lifecycle import Action, Actor, Role
from ops_portal.extensions import db
from ops_portal.live.hub import CHANNEL
from ops_portal.services import bookings, changes, duty
from ops_portal.services.changes import Cursor


def test_the_feed_names_whom_each_change_concerns_the_provider_it_was_taken_from_too(cast):
    pat, quinn = cast.provider.user_id, cast.other_provider.user_id
    start = changes.latest_cursor()
    booking = bookings.create_booking(cast.owner, service="Leaking tap").id
    bookings.perform_action(cast.admin, booking, Action.ASSIGN, provider_id=pat)
    bookings.perform_action(
        cast.admin, booking, Action.FORCE_ASSIGN, provider_id=quinn, reason="Closer"
    )
    duty.set_duty(cast.provider, pat, False)

    found = changes.changes_after(start)

    owner = cast.owner.user_id
    assert [(c.kind, c.customer_id, c.provider_ids) for c in found] == [
        (ChangeKind.BOOKING, owner, frozenset()),
        (ChangeKind.BOOKING, owner, {pat}),
        (ChangeKind.BOOKING, owner, {pat, quinn}),  # the event names Quinn only
        (ChangeKind.DUTY, None, {pat}),
    ]
    end = changes.latest_cursor()
    moved = start
    for change in found:
        moved = moved.past(change)
    assert moved == end and changes.changes_after(end) == []
    assert changes.changes_after(start, limit=1)[0] == found[0]


def test_each_person_hears_of_their_own_and_a_dispatcher_of_everything():
    booking = Change(ChangeKind.BOOKING, 7, customer_id=1, provider_ids=frozenset({3}))
    duty_change = Change(ChangeKind.DUTY, 2, customer_id=None, provider_ids=frozenset({4}))
    heard = {
        actor: (hears_of(actor, booking), hears_of(actor, duty_change))
        for actor in (
            Actor(Role.ADMIN, 9),
            Actor.system(),
            Actor(Role.CUSTOMER, 1),
            Actor(Role.CUSTOMER, 2),
            Actor(Role.PROVIDER, 3),
            Actor(Role.PROVIDER, 4),
        )
    }
    assert list(heard.values()) == [
        (True, True),
        (True, True),
        (True, False),  # a customer hears nothing of duty
        (False, False),
        (True, False),
        (False, True),
    ]


def test_news_for_a_person_is_what_they_hear_of_past_their_cursor(cast):
    start = changes.latest_cursor()
    bookings.create_booking(cast.other_customer, service="Leaking tap")
    assert changes.news_for(cast.owner, start) is None
    bookings.create_booking(cast.owner, service="Leaking tap")
    assert changes.news_for(cast.owner, start) == changes.latest_cursor()


@pytest.mark.parametrize("text", ["", "12", "1-2-3", "a-1", "-1-2", "1- 2", "9" * 19 + "-1"])
def test_a_cursor_is_two_whole_numbers(text):
    with pytest.raises(InvalidInput, match="after must look like 1234-56"):
        Cursor.parse(text)


def test_a_cursor_reads_back_as_written():
    assert Cursor.parse(str(Cursor(1234, 56))) == Cursor(1234, 56)
    assert Cursor(3, 5).covers(Cursor(3, 4)) and not Cursor(3, 5).covers(Cursor(4, 0))


def test_postgresql_notifies_listeners_at_commit_and_never_after_a_rollback(cast):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no NOTIFY: its listener reads the logs a few times a second")
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        with db.engine.connect() as conn:  # an event appended, then rolled back
            conn.execute(
                sa.text(
                    "INSERT INTO provider_duty_events "
                    "(provider_id, on_duty, actor_role, actor_id, source, created_at) "
                    "VALUES (:p, false, 'ADMIN', :a, 'web', now())"
                ),
                {"p": cast.provider.user_id, "a": cast.admin.user_id},
            )
            conn.rollback()
        assert list(listener.notifies(timeout=0.2)) == []

        booking = bookings.create_booking(cast.owner, service="Leaking tap").id
        duty.set_duty(cast.admin, cast.provider.user_id, False)

        told = [n.payload for n in listener.notifies(timeout=5, stop_after=2)]
        event_id = changes.latest_cursor().bookings
        assert told == [f"booking:{event_id}", f"duty:{changes.latest_cursor().duty}"]
        assert bookings.get_booking(cast.admin, booking).events[-1].id == event_id

"""The SYSTEM dispatcher's policy, one pass at a time with the clock given: the soonest window
first, to the longest idle of the eligible providers, never to one who turned the booking down or
is off duty; a booking offered N times or with nobody eligible past a wait is failed for a person
to take up; a paused automation does nothing."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from ops_portal.domain.lifecycle import Action, Status
from ops_portal.extensions import db
from ops_portal.models import Booking, BookingEvent, utcnow
from ops_portal.services import automation, bookings, dispatcher, duty, offers
from tests.support.builders import event_values

POLICY = dispatcher.Policy(offers_before_failing=3, no_provider_wait=timedelta(minutes=15))


def book(cast, *, hours_ahead: int) -> int:
    start = utcnow() + timedelta(hours=hours_ahead)
    return bookings.create_booking(
        cast.owner, service="Leaking tap", window_start=start, window_end=start + timedelta(hours=2)
    ).id


def state(booking_id: int) -> tuple[Status, int | None]:
    db.session.rollback()
    row = db.session.execute(
        sa.select(Booking.status, Booking.provider_id).where(Booking.id == booking_id)
    ).one()
    return row.status, row.provider_id


def last_reason(booking_id: int) -> str:
    db.session.rollback()
    return db.session.scalars(
        sa.select(BookingEvent.reason)
        .where(BookingEvent.booking_id == booking_id)
        .order_by(BookingEvent.id.desc())
    ).first()


def test_the_soonest_window_goes_to_the_longest_idle_provider_and_the_reason_says_why(cast):
    pat, quinn = cast.provider.user_id, cast.other_provider.user_id
    # Pat finished a job a moment ago; Quinn has been idle since the accounts were made.
    done = book(cast, hours_ahead=1)
    bookings.perform_action(cast.admin, done, Action.ASSIGN, provider_id=pat)
    bookings.perform_action(cast.provider, done, Action.ACCEPT)
    bookings.perform_action(cast.provider, done, Action.COMPLETE)
    later, sooner = book(cast, hours_ahead=30), book(cast, hours_ahead=3)

    summary = dispatcher.run_pass(utcnow(), POLICY)

    assert [o["booking"] for o in summary.offered] == [sooner, later]
    assert state(sooner) == (Status.ASSIGNED, quinn)  # the longest idle first
    assert state(later) == (Status.ASSIGNED, pat)
    assert last_reason(sooner).startswith("longest idle of 2 eligible: idle ")
    assert last_reason(later).startswith("longest idle of 1 eligible: idle ")
    # Nothing is offered twice: the next pass finds nothing open.
    assert dispatcher.run_pass(utcnow(), POLICY).offered == []


def test_never_to_a_provider_who_turned_it_down_or_is_off_duty(cast):
    pat, quinn = cast.provider.user_id, cast.other_provider.user_id
    booking = book(cast, hours_ahead=2)
    bookings.perform_action(cast.admin, booking, Action.ASSIGN, provider_id=quinn)
    bookings.perform_action(cast.other_provider, booking, Action.REJECT)
    duty.set_duty(cast.provider, pat, False, reason="Lunch")

    assert dispatcher.run_pass(utcnow(), POLICY).offered == []
    assert state(booking) == (Status.REJECTED, None)

    duty.set_duty(cast.provider, pat, True)
    dispatcher.run_pass(utcnow(), POLICY)
    assert state(booking) == (Status.ASSIGNED, pat)


def test_after_n_offers_without_acceptance_a_person_takes_it_up(cast):
    booking = book(cast, hours_ahead=2)
    policy = dispatcher.Policy(offers_before_failing=2)
    for provider in (cast.provider, cast.other_provider):
        bookings.perform_action(cast.admin, booking, Action.ASSIGN, provider_id=provider.user_id)
        bookings.perform_action(provider, booking, Action.REJECT)

    summary = dispatcher.run_pass(utcnow(), policy)

    assert state(booking) == (Status.FAILED, None)
    assert summary.failed == [{"booking": booking, "reason": "Offered 2 times without acceptance"}]


def test_with_nobody_eligible_past_the_wait_it_fails_and_not_before(cast):
    for provider in (cast.provider, cast.other_provider):
        duty.set_duty(provider, provider.user_id, False)
    booking = book(cast, hours_ahead=2)

    dispatcher.run_pass(utcnow() + timedelta(minutes=14), POLICY)
    assert state(booking) == (Status.PENDING, None)

    dispatcher.run_pass(utcnow() + timedelta(minutes=16), POLICY)
    assert state(booking) == (Status.FAILED, None)
    assert last_reason(booking) == "No eligible provider for 15 min"


def test_a_booking_that_opened_after_the_pass_began_waits_for_the_next_pass(app, cast):
    """Another dispatcher lets an offer lapse while this pass, begun a moment earlier, is under
    way: offered as of this pass's `now`, the booking's assignment would be stamped before the
    lapse it follows, and its offer would count from before the booking was open."""
    pat, quinn = cast.provider.user_id, cast.other_provider.user_id
    booking = book(cast, hours_ahead=2)
    offered_at = utcnow()
    bookings.perform_action(cast.admin, booking, Action.ASSIGN, provider_id=pat, now=offered_at)
    lapsed_at = offered_at + timedelta(seconds=app.config["OFFER_TIMEOUT_SECONDS"])
    assert offers.expire_offers(lapsed_at) == [booking]

    begun_earlier = lapsed_at - timedelta(milliseconds=5)
    assert dispatcher.run_pass(begun_earlier, POLICY).offered == []
    assert state(booking) == (Status.REJECTED, None)

    dispatcher.run_pass(lapsed_at, POLICY)
    assert state(booking) == (Status.ASSIGNED, quinn)
    times = event_values(booking, BookingEvent.created_at)
    assert times == sorted(times)


def test_a_paused_automation_does_nothing_until_resumed(cast):
    booking = book(cast, hours_ahead=2)
    automation.set_paused(cast.admin, True)

    assert dispatcher.run_pass(utcnow(), POLICY).paused
    assert state(booking) == (Status.PENDING, None)

    automation.set_paused(cast.admin, False)
    dispatcher.run_pass(utcnow(), POLICY)
    assert state(booking)[0] == Status.ASSIGNED


def test_a_pass_with_a_clock_offers_each_booking_as_of_the_time_it_offers_it(cast):
    """A pass that takes a while stamps each offer with its own time, so its deadline counts
    from when it was made, not from when the pass began."""
    first, second = book(cast, hours_ahead=2), book(cast, hours_ahead=3)
    start = utcnow()
    ticks = iter([start - timedelta(seconds=5), start + timedelta(seconds=40)])

    dispatcher.run_pass(start, POLICY, clock=lambda: next(ticks))

    db.session.rollback()
    offered_at = dict(
        db.session.execute(
            sa.select(BookingEvent.booking_id, BookingEvent.created_at).where(
                BookingEvent.action == Action.ASSIGN
            )
        ).all()
    )
    assert offered_at == {first: start, second: start + timedelta(seconds=40)}
    deadline = db.session.scalar(sa.select(Booking.offer_expires_at).where(Booking.id == second))
    assert deadline == start + timedelta(seconds=40 + 300)

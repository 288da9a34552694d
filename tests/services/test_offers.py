"""Offers that expire: an assignment is an offer with a deadline, which decides whether its
provider may still answer or automation may expire it; lapsed offers are remembered like
rejections, and a provider who lets several lapse in a row goes off duty. The clock is moved,
never waited for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from ops_portal.domain.errors import OfferExpired, OfferStillOpen
from ops_portal.domain.lifecycle import Action, Actor, Status
from ops_portal.extensions import db
from ops_portal.models import Booking, Provider
from ops_portal.services import bookings, dispatch, duty, offers
from tests.support.builders import assert_event_chain, event_actions, read_booking

NOON = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
OFFER_TIME = timedelta(seconds=300)  # the default OFFER_TIMEOUT_SECONDS
SYSTEM = Actor.system()


def offered(cast, provider: Actor | None = None, *, at: datetime = NOON) -> int:
    """A new booking of the owner's, offered to `provider` (Pat) at `at`."""
    booking = bookings.create_booking(cast.owner, service="Leaking tap", now=at - OFFER_TIME)
    provider = provider or cast.provider
    bookings.perform_action(
        cast.admin, booking.id, Action.ASSIGN, provider_id=provider.user_id, now=at
    )
    return booking.id


def state(booking_id: int) -> tuple:
    """Status, provider and the offer's deadline, read fresh."""
    return read_booking(booking_id, Booking.status, Booking.provider_id, Booking.offer_expires_at)[
        :3
    ]


def on_duty(provider_id: int) -> bool:
    db.session.rollback()
    return db.session.scalar(sa.select(Provider.on_duty).where(Provider.id == provider_id))


def test_an_assignment_is_an_offer_until_its_deadline_and_leaving_assigned_ends_it(cast):
    booking_id = offered(cast)
    assert state(booking_id) == ("ASSIGNED", cast.provider.user_id, NOON + OFFER_TIME)

    later = NOON + timedelta(minutes=2)
    bookings.perform_action(
        cast.admin,
        booking_id,
        Action.FORCE_ASSIGN,
        provider_id=cast.other_provider.user_id,
        reason="Closer",
        now=later,
    )
    assert state(booking_id) == ("ASSIGNED", cast.other_provider.user_id, later + OFFER_TIME)

    bookings.perform_action(cast.other_provider, booking_id, Action.ACCEPT, now=later)
    assert state(booking_id) == ("IN_PROGRESS", cast.other_provider.user_id, None)


def test_the_offer_time_is_configurable(app, cast):
    app.config["OFFER_TIMEOUT_SECONDS"] = 45
    assert state(offered(cast))[2] == NOON + timedelta(seconds=45)


def test_an_answer_after_the_deadline_is_refused_saying_when_it_expired(cast):
    booking_id = offered(cast)
    for action in (Action.ACCEPT, Action.REJECT):
        with pytest.raises(OfferExpired) as refused:
            bookings.perform_action(cast.provider, booking_id, action, now=NOON + OFFER_TIME)
        assert refused.value.detail == "This offer expired at 12:05 UTC"
    assert state(booking_id)[0] == "ASSIGNED"
    assert event_actions(booking_id) == ["create", "assign"]

    just_before = NOON + OFFER_TIME - timedelta(microseconds=1)
    bookings.perform_action(cast.provider, booking_id, Action.ACCEPT, now=just_before)
    assert state(booking_id)[0] == "IN_PROGRESS"


def test_an_offer_cannot_be_expired_before_its_deadline(cast):
    booking_id = offered(cast)
    with pytest.raises(OfferStillOpen) as refused:
        bookings.perform_action(SYSTEM, booking_id, Action.EXPIRE_OFFER, now=NOON + OFFER_TIME / 2)
    assert refused.value.detail == "This offer is open until 12:05 UTC"
    assert event_actions(booking_id) == ["create", "assign"]


def test_expire_offers_expires_the_overdue_ones_and_leaves_the_rest(cast):
    overdue = offered(cast, at=NOON)
    open_still = offered(cast, cast.other_provider, at=NOON + timedelta(minutes=3))

    expired = offers.expire_offers(NOON + OFFER_TIME + timedelta(seconds=1))

    assert expired == [overdue]
    assert state(overdue) == ("REJECTED", None, None)
    assert state(open_still)[0] == "ASSIGNED"
    assert event_actions(overdue) == ["create", "assign", "expire-offer"]
    assert_event_chain(overdue)
    lapse = bookings.booking_events(cast.admin, overdue)[-1]
    assert (lapse.actor_role, lapse.provider_id) == ("SYSTEM", cast.provider.user_id)
    assert lapse.reason == offers.LAPSE_REASON
    assert offers.expire_offers(NOON + OFFER_TIME + timedelta(seconds=2)) == []


def test_an_offer_answered_after_it_was_found_overdue_is_skipped_not_an_error(cast, monkeypatch):
    accepted = offered(cast)
    lapsed = offered(cast, cast.other_provider)
    found = offers.overdue_offers(NOON + OFFER_TIME)
    assert found == [accepted, lapsed]
    # The provider answered in time, between the sweep's read and its expiry.
    bookings.perform_action(cast.provider, accepted, Action.ACCEPT, now=NOON + OFFER_TIME / 2)
    monkeypatch.setattr(offers, "overdue_offers", lambda now: found)

    assert offers.expire_offers(NOON + OFFER_TIME) == [lapsed]
    assert state(accepted)[0] == "IN_PROGRESS"
    assert event_actions(accepted) == ["create", "assign", "accept"]


def test_a_provider_who_let_an_offer_lapse_is_not_offered_that_booking_again(cast):
    booking_id = offered(cast)
    offers.expire_offers(NOON + OFFER_TIME)

    assert dispatch.rejected_by(booking_id) == [cast.provider.user_id]
    eligible = {p.id for p in dispatch.eligible_providers(booking_id)}
    assert cast.provider.user_id not in eligible
    assert cast.other_provider.user_id in eligible


def lapse(cast, at: datetime) -> int:
    booking_id = offered(cast, at=at)
    assert offers.expire_offers(at + OFFER_TIME) == [booking_id]
    return booking_id


def test_three_lapses_in_a_row_put_the_provider_off_duty_with_the_reason(cast):
    pat = cast.provider.user_id
    lapse(cast, NOON)
    lapse(cast, NOON + timedelta(minutes=10))
    assert on_duty(pat)

    third = NOON + timedelta(minutes=20)
    lapse(cast, third)

    assert not on_duty(pat)
    [change] = duty.duty_log(pat)
    assert (change.on_duty, change.actor_role, change.actor_id) == (False, "SYSTEM", None)
    assert change.reason == "Let 3 offers lapse in a row"
    assert change.created_at == third + OFFER_TIME


def test_an_answer_between_lapses_breaks_the_run(cast):
    pat = cast.provider.user_id
    lapse(cast, NOON)
    lapse(cast, NOON + timedelta(minutes=10))
    answered = offered(cast, at=NOON + timedelta(minutes=20))
    bookings.perform_action(
        cast.provider, answered, Action.REJECT, now=NOON + timedelta(minutes=21)
    )
    lapse(cast, NOON + timedelta(minutes=30))
    lapse(cast, NOON + timedelta(minutes=40))

    assert on_duty(pat)
    assert offers.last_outcomes(pat, 3) == [Action.EXPIRE_OFFER, Action.EXPIRE_OFFER, Action.REJECT]
    lapse(cast, NOON + timedelta(minutes=50))
    assert not on_duty(pat)


def test_a_provider_back_on_duty_starts_a_fresh_run_of_lapses(cast):
    pat = cast.provider.user_id
    for minutes in (0, 10, 20):
        lapse(cast, NOON + timedelta(minutes=minutes))
    assert not on_duty(pat)
    duty.set_duty(cast.provider, pat, True, now=NOON + timedelta(minutes=30))

    lapse(cast, NOON + timedelta(minutes=40))
    lapse(cast, NOON + timedelta(minutes=50))
    assert on_duty(pat)  # two lapses since they came back, not five in a row
    assert offers.last_outcomes(pat, 3) == [Action.EXPIRE_OFFER, Action.EXPIRE_OFFER]
    lapse(cast, NOON + timedelta(minutes=60))
    assert not on_duty(pat)


def test_the_number_of_lapses_is_configurable(app, cast):
    app.config["LAPSES_BEFORE_OFF_DUTY"] = 1
    lapse(cast, NOON)
    assert not on_duty(cast.provider.user_id)
    assert duty.duty_log(cast.provider.user_id)[0].reason == "Let 1 offer lapse in a row"


def test_an_expired_booking_is_rejected_for_its_customer_and_can_be_offered_again(cast):
    booking_id = lapse(cast, NOON)
    seen = bookings.get_booking(cast.owner, booking_id)
    assert seen.status == Status.REJECTED
    bookings.perform_action(
        cast.admin,
        booking_id,
        Action.ASSIGN,
        provider_id=cast.other_provider.user_id,
        now=NOON + timedelta(minutes=6),
    )
    assert state(booking_id)[2] == NOON + timedelta(minutes=11)

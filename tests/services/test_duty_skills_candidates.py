"""Assign refuses an off-duty provider and one who doesn't do the service (force-assign may);
every provider's standing for a booking, with the clock moved."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from ops_portal.domain.errors import InvalidInput, ProviderOffDuty, ServiceNotOffered
from ops_portal.domain.lifecycle import Action, Status
from ops_portal.extensions import db
from ops_portal.models import Provider, utcnow
from ops_portal.services import bookings, dispatch, duty, skills
from tests.support.builders import booking_in

# After everyone's creation, so duty times decide idleness.
NOON = (utcnow() + timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)


def test_assign_refuses_an_off_duty_provider_and_force_assign_overrides(cast):
    booking = booking_in(cast, Status.PENDING)
    pat = cast.provider.user_id
    duty.set_duty(cast.provider, pat, False, reason="Lunch")
    with pytest.raises(ProviderOffDuty, match="Provider is off duty"):
        bookings.perform_action(cast.admin, booking.id, Action.ASSIGN, provider_id=pat)
    forced = bookings.perform_action(
        cast.admin, booking.id, Action.FORCE_ASSIGN, provider_id=pat, reason="Only one near"
    )
    assert forced.status == Status.ASSIGNED and forced.provider_id == pat


def test_assign_refuses_a_provider_who_doesnt_do_the_service(cast):
    booking = booking_in(cast, Status.PENDING)
    pat = cast.provider.user_id
    skills.set_services(cast.admin, pat, "Window cleaning; Plumbing")
    with pytest.raises(ServiceNotOffered, match=f"Pat Provider doesn't do {booking.service}"):
        bookings.perform_action(cast.admin, booking.id, Action.ASSIGN, provider_id=pat)
    skills.set_services(cast.admin, pat, [booking.service])
    assigned = bookings.perform_action(cast.admin, booking.id, Action.ASSIGN, provider_id=pat)
    assert assigned.provider_id == pat


def test_an_unknown_service_refuses_the_whole_list(cast):
    with pytest.raises(InvalidInput, match="Unknown service: Juggling"):
        skills.set_services(cast.admin, cast.provider.user_id, "Plumbing;Juggling")
    assert skills.services_of(cast.admin, cast.provider.user_id) == []


def test_candidates_say_why_with_the_clock_moved(cast):
    booking = booking_in(cast, Status.REJECTED)  # Pat rejected it
    pat, quinn = cast.provider.user_id, cast.other_provider.user_id
    duty.set_duty(cast.admin, quinn, False, now=NOON)
    _, found = dispatch.candidates(cast.admin, booking.id)
    by_id = {c.provider.id: c for c in found}
    later = NOON + timedelta(minutes=42)
    assert by_id[quinn].reason(later, UTC) == "off duty since 12:00"
    assert not by_id[quinn].eligible and not by_id[pat].eligible
    assert by_id[pat].assignable and by_id[pat].turned_down[0] == "reject"
    assert by_id[pat].reason(later, UTC).startswith("available, idle")
    assert "rejected this booking at" in by_id[pat].reason(later, UTC)

    duty.set_duty(cast.admin, quinn, True, now=NOON + timedelta(minutes=1))
    _, found = dispatch.candidates(cast.admin, booking.id)
    first = found[0]
    assert first.provider.id == quinn and first.eligible
    assert first.reason(later, UTC) == "available, idle 41 min"


def idle_and_duty_since(provider_id: int):
    db.session.rollback()
    provider = db.session.get(Provider, provider_id, populate_existing=True)
    return provider.idle_since, provider.duty_since


def test_a_provider_is_idle_from_the_end_of_their_work_or_their_return_to_duty(cast):
    """The provider row's idle_since moves in the transaction that ends their work (a
    completion, a rejection, a reassignment away) or puts them back on duty; nothing else moves
    it. The dispatcher and the picker read it."""
    pat, quinn = cast.provider.user_id, cast.other_provider.user_id
    first = bookings.create_booking(cast.owner, service="Leaking tap", now=NOON).id
    second = bookings.create_booking(cast.owner, service="Leaking tap", now=NOON).id

    def at(minutes: int):
        return NOON + timedelta(minutes=minutes)

    bookings.perform_action(cast.admin, first, Action.ASSIGN, provider_id=pat, now=at(1))
    bookings.perform_action(cast.provider, first, Action.ACCEPT, now=at(2))
    before = idle_and_duty_since(pat)
    assert before[0] < NOON  # an offer and its acceptance are not an end of work
    bookings.perform_action(cast.provider, first, Action.COMPLETE, now=at(60))
    assert idle_and_duty_since(pat) == (at(60), None)

    bookings.perform_action(cast.admin, second, Action.ASSIGN, provider_id=quinn, now=at(61))
    bookings.perform_action(
        cast.admin, second, Action.FORCE_ASSIGN, provider_id=pat, reason="Closer", now=at(62)
    )
    assert idle_and_duty_since(quinn)[0] == at(62)  # reassigned away: idle from then
    assert idle_and_duty_since(pat)[0] == at(60)  # given work: still their last end of work
    bookings.perform_action(cast.provider, second, Action.REJECT, now=at(63))
    assert idle_and_duty_since(pat)[0] == at(63)

    duty.set_duty(cast.admin, quinn, False, now=at(70))
    assert idle_and_duty_since(quinn) == (at(62), at(70))  # off duty: not idle on duty
    duty.set_duty(cast.admin, quinn, True, now=at(80))
    assert idle_and_duty_since(quinn) == (at(80), at(80))  # the time off does not count

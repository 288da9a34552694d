"""Assign refuses an off-duty provider and one who doesn't do the service (force-assign may);
every provider's standing for a booking, with the clock moved."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from ops_portal.domain.errors import InvalidInput, ProviderOffDuty, ServiceNotOffered
from ops_portal.domain.lifecycle import Action, Status
from ops_portal.models import utcnow
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

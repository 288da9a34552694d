"""Provider availability (docs/lifecycle.md): computed from bookings; assign needs an AVAILABLE,
active provider; force-assign bypasses availability; releasing actions free the provider."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ops_portal.domain.errors import NotFound, NotPermitted, ProviderBusy, TransitionNotAllowed
from ops_portal.domain.lifecycle import Action, Availability, Status
from ops_portal.extensions import db
from ops_portal.http.errors import status_for
from ops_portal.models import Booking, Provider
from ops_portal.services import bookings, dispatch, providers
from tests.support.builders import assert_event_chain, booking_in, booking_state


def availability_of(cast, provider_id: int) -> Availability:
    db.session.expire_all()
    rows = {p.id: p for p in providers.providers_with_availability(cast.admin)}
    return rows[provider_id].availability


def active_count_of(cast, provider_id: int) -> int:
    db.session.expire_all()
    rows = {p.id: p for p in providers.providers_with_availability(cast.admin)}
    return rows[provider_id].active_count


def deactivate(provider_id: int) -> None:
    db.session.execute(sa.update(Provider).where(Provider.id == provider_id).values(active=False))
    db.session.commit()


# ------------------------------------------------------------------------------------ assign


@pytest.mark.parametrize("busy_with", [Status.ASSIGNED, Status.IN_PROGRESS])
def test_assign_to_busy_provider_is_refused(cast, busy_with):
    booking_in(cast, busy_with)  # cast.provider is now BUSY
    assert availability_of(cast, cast.provider.user_id) is Availability.BUSY
    pending = booking_in(cast, Status.PENDING)
    before = booking_state(pending.id)

    with pytest.raises(ProviderBusy) as refused:
        bookings.perform_action(
            cast.admin, pending.id, Action.ASSIGN, provider_id=cast.provider.user_id
        )

    assert refused.value.detail == "Provider is busy"
    assert status_for(refused.value) == 403
    assert booking_state(pending.id) == before
    assert active_count_of(cast, cast.provider.user_id) == 1


def test_assign_by_system_to_available_provider_makes_them_busy(cast):
    pending = booking_in(cast, Status.PENDING)
    assert availability_of(cast, cast.provider.user_id) is Availability.AVAILABLE

    bookings.perform_action(
        cast.system, pending.id, Action.ASSIGN, provider_id=cast.provider.user_id
    )

    assert availability_of(cast, cast.provider.user_id) is Availability.BUSY
    assert availability_of(cast, cast.other_provider.user_id) is Availability.AVAILABLE


def test_inactive_provider_cannot_be_assigned_even_by_force(cast):
    pending = booking_in(cast, Status.PENDING)
    deactivate(cast.other_provider.user_id)
    assert availability_of(cast, cast.other_provider.user_id) is Availability.INACTIVE
    before = booking_state(pending.id)

    for actor, action in ((cast.admin, Action.ASSIGN), (cast.admin, Action.FORCE_ASSIGN)):
        with pytest.raises(NotPermitted) as refused:
            bookings.perform_action(
                actor, pending.id, action, provider_id=cast.other_provider.user_id, reason="r"
            )
        assert status_for(refused.value) == 403
        assert not isinstance(refused.value, ProviderBusy)
        assert booking_state(pending.id) == before


@pytest.mark.parametrize("action", [Action.ASSIGN, Action.FORCE_ASSIGN])
def test_assign_to_unknown_provider_is_not_found(cast, action):
    pending = booking_in(cast, Status.PENDING)
    before = booking_state(pending.id)
    # An id nobody has, and a customer's id: neither is a provider.
    for provider_id in (10_000, cast.owner.user_id):
        with pytest.raises(NotFound) as refused:
            bookings.perform_action(cast.admin, pending.id, action, provider_id=provider_id)
        assert status_for(refused.value) == 404
        assert booking_state(pending.id) == before


def test_assign_needs_a_provider_id(cast):
    from ops_portal.domain.errors import InvalidInput

    pending = booking_in(cast, Status.PENDING)
    before = booking_state(pending.id)
    with pytest.raises(InvalidInput) as refused:
        bookings.perform_action(cast.admin, pending.id, Action.ASSIGN)
    assert status_for(refused.value) == 400
    assert booking_state(pending.id) == before


# ------------------------------------------------------------------------------------ force-assign


def test_force_assign_to_busy_provider_double_books_and_marks_the_event_forced(cast):
    busy = booking_in(cast, Status.ASSIGNED)
    pending = booking_in(cast, Status.PENDING)

    booking = bookings.perform_action(
        cast.admin,
        pending.id,
        Action.FORCE_ASSIGN,
        provider_id=cast.provider.user_id,
        reason="urgent, only Pat is near",
    )

    assert booking.status == Status.ASSIGNED
    assert booking.provider_id == cast.provider.user_id
    assert booking.assignment_forced is True
    event = bookings.booking_events(cast.admin, pending.id)[-1]
    assert (event.action, event.forced, event.provider_id) == (
        "force-assign",
        True,
        cast.provider.user_id,
    )
    assert event.reason == "urgent, only Pat is near"
    assert active_count_of(cast, cast.provider.user_id) == 2
    queue = bookings.provider_queue(cast.provider, cast.provider.user_id)
    assert {b.id for b in queue} == {busy.id, pending.id}
    # The normal assignment stays unforced.
    assert db.session.get(Booking, busy.id).assignment_forced is False


def test_force_assign_from_assigned_reassigns_and_frees_the_previous_provider(cast):
    booking = booking_in(cast, Status.ASSIGNED)
    assert availability_of(cast, cast.provider.user_id) is Availability.BUSY

    bookings.perform_action(
        cast.admin,
        booking.id,
        Action.FORCE_ASSIGN,
        provider_id=cast.other_provider.user_id,
        reason="Pat is stuck in traffic",
    )

    booking = bookings.get_booking(cast.admin, booking.id)
    assert booking.provider_id == cast.other_provider.user_id
    assert availability_of(cast, cast.provider.user_id) is Availability.AVAILABLE
    assert availability_of(cast, cast.other_provider.user_id) is Availability.BUSY
    assert bookings.provider_queue(cast.admin, cast.provider.user_id) == []
    # The previous provider can take other work the normal way again.
    other = booking_in(cast, Status.PENDING)
    bookings.perform_action(cast.admin, other.id, Action.ASSIGN, provider_id=cast.provider.user_id)
    assert_event_chain(booking.id)


def test_force_assign_to_the_provider_already_assigned_changes_nothing(cast):
    booking = booking_in(cast, Status.ASSIGNED)
    before = booking_state(booking.id)
    with pytest.raises(TransitionNotAllowed) as refused:
        bookings.perform_action(
            cast.admin, booking.id, Action.FORCE_ASSIGN, provider_id=cast.provider.user_id
        )
    assert status_for(refused.value) == 400
    assert booking_state(booking.id) == before


def test_normal_assign_is_refused_while_a_forced_booking_keeps_the_provider_busy(cast):
    first = booking_in(cast, Status.ASSIGNED)
    forced = booking_in(cast, Status.PENDING)
    bookings.perform_action(
        cast.admin, forced.id, Action.FORCE_ASSIGN, provider_id=cast.provider.user_id
    )
    # The first (unforced) job goes away; the forced one still keeps the provider busy.
    bookings.perform_action(cast.provider, first.id, Action.REJECT, reason="cannot make it")
    assert availability_of(cast, cast.provider.user_id) is Availability.BUSY

    later = booking_in(cast, Status.PENDING)
    with pytest.raises(ProviderBusy):
        bookings.perform_action(
            cast.admin, later.id, Action.ASSIGN, provider_id=cast.provider.user_id
        )
    assert active_count_of(cast, cast.provider.user_id) == 1


# ------------------------------------------------------------------------------------ releasing

# (action, the status it starts from, who does it)
RELEASES = [
    (Action.CANCEL, Status.ASSIGNED, "owner"),
    (Action.REJECT, Status.ASSIGNED, "provider"),
    (Action.FORCE_CANCEL, Status.ASSIGNED, "admin"),
    (Action.FORCE_CANCEL, Status.IN_PROGRESS, "admin"),
    (Action.MARK_FAILED, Status.ASSIGNED, "admin"),
    (Action.MARK_FAILED, Status.IN_PROGRESS, "system"),
    (Action.COMPLETE, Status.IN_PROGRESS, "provider"),
]


@pytest.mark.parametrize(
    "action, start, kind",
    [pytest.param(*r, id=f"{r[0].value}-from-{r[1].value}") for r in RELEASES],
)
def test_releasing_action_frees_the_provider(cast, action, start, kind):
    booking = booking_in(cast, start)
    assert availability_of(cast, cast.provider.user_id) is Availability.BUSY

    bookings.perform_action(cast.by_name(kind), booking.id, action, reason="done with it")

    assert availability_of(cast, cast.provider.user_id) is Availability.AVAILABLE
    assert bookings.provider_queue(cast.admin, cast.provider.user_id) == []
    booking = bookings.get_booking(cast.admin, booking.id)
    if action is Action.COMPLETE:
        assert booking.provider_id == cast.provider.user_id  # who did the job
    else:
        assert booking.provider_id is None
        # The event keeps who it was.
        assert bookings.booking_events(cast.admin, booking.id)[-1].provider_id == (
            cast.provider.user_id
        )
    # Free means free: a normal assign of new work succeeds.
    other = booking_in(cast, Status.PENDING)
    bookings.perform_action(cast.admin, other.id, Action.ASSIGN, provider_id=cast.provider.user_id)
    assert availability_of(cast, cast.provider.user_id) is Availability.BUSY


@pytest.mark.parametrize("start", [Status.REJECTED, Status.FAILED])
def test_retry_returns_the_booking_to_pending_without_a_provider(cast, start):
    booking = booking_in(cast, start)
    bookings.perform_action(cast.system, booking.id, Action.RETRY)

    booking = bookings.get_booking(cast.admin, booking.id)
    assert (booking.status, booking.provider_id) == (Status.PENDING, None)
    assert availability_of(cast, cast.provider.user_id) is Availability.AVAILABLE
    # Back in the pool: it can be assigned to the same provider again.
    bookings.perform_action(
        cast.admin, booking.id, Action.ASSIGN, provider_id=cast.provider.user_id
    )
    assert_event_chain(booking.id)


def test_completed_booking_keeps_its_provider(cast):
    booking = booking_in(cast, Status.COMPLETED)
    assert booking.provider_id == cast.provider.user_id
    assert availability_of(cast, cast.provider.user_id) is Availability.AVAILABLE
    # The provider who did the job can still see it; nobody else's provider can.
    assert bookings.get_booking(cast.provider, booking.id).id == booking.id
    with pytest.raises(NotPermitted):
        bookings.get_booking(cast.other_provider, booking.id)


def test_reject_remembers_every_provider_who_rejected(cast):
    booking = booking_in(cast, Status.REJECTED)
    assert booking.provider_id is None
    assert dispatch.rejected_by(booking.id) == [cast.provider.user_id]

    bookings.perform_action(
        cast.admin, booking.id, Action.ASSIGN, provider_id=cast.other_provider.user_id
    )
    bookings.perform_action(cast.other_provider, booking.id, Action.REJECT, reason="too far")
    assert dispatch.rejected_by(booking.id) == [cast.provider.user_id, cast.other_provider.user_id]
    # Neither provider is held by the rejected booking.
    assert availability_of(cast, cast.provider.user_id) is Availability.AVAILABLE
    assert availability_of(cast, cast.other_provider.user_id) is Availability.AVAILABLE


def test_eligible_providers_are_active_available_and_have_not_rejected_the_booking(cast):
    from ops_portal.services import accounts

    (third, _), (fourth, _) = (
        accounts.create_user(f"{name}@example.com", name.title(), "PROVIDER")
        for name in ("ria", "sol")
    )
    rejected = booking_in(cast, Status.REJECTED)  # cast.provider rejected it
    booking_in(cast, Status.ASSIGNED, provider=cast.other_provider)  # other_provider is busy
    deactivate(fourth.id)

    eligible = dispatch.eligible_providers(rejected.id)

    assert [p.id for p in eligible] == [third.id]
    assert all(p.availability is Availability.AVAILABLE for p in eligible)
    # A booking nobody rejected may go to the rejecter of another one.
    fresh = booking_in(cast, Status.PENDING)
    assert {p.id for p in dispatch.eligible_providers(fresh.id)} == {
        third.id,
        cast.provider.user_id,
    }


# ------------------------------------------------------------------------------------ reads


def test_provider_queue_shows_the_job_in_progress_first_then_windowless_ones_as_they_came(cast):
    booking_in(cast, Status.COMPLETED)  # finished work is not in the queue
    first = booking_in(cast, Status.PENDING)
    second = booking_in(cast, Status.PENDING)
    third = booking_in(cast, Status.PENDING)
    for booking in (first, second, third):
        bookings.perform_action(
            cast.admin, booking.id, Action.FORCE_ASSIGN, provider_id=cast.provider.user_id
        )
    bookings.perform_action(cast.provider, third.id, Action.ACCEPT)

    queue = bookings.provider_queue(cast.provider, cast.provider.user_id)
    assert [b.id for b in queue] == [third.id, first.id, second.id]


@pytest.mark.parametrize("kind", ["owner", "provider"])
def test_only_dispatchers_see_the_provider_list(cast, kind):
    with pytest.raises(NotPermitted) as refused:
        providers.providers_with_availability(cast.by_name(kind))
    assert status_for(refused.value) == 403


def test_providers_see_only_their_own_queue(cast):
    with pytest.raises(NotPermitted):
        bookings.provider_queue(cast.other_provider, cast.provider.user_id)
    with pytest.raises(NotPermitted):
        bookings.provider_queue(cast.owner, cast.provider.user_id)
    assert bookings.provider_queue(cast.system, cast.provider.user_id) == []

from ops_portal.domain.lifecycle import Status
from ops_portal.services import bookings
from tests.support.builders import assert_event_chain, booking_in


def test_a_booking_walks_from_pending_to_completed_with_one_event_per_step(cast):
    booking = booking_in(cast, Status.COMPLETED)
    assert booking.status == Status.COMPLETED
    assert booking.provider_id == cast.provider.user_id
    events = bookings.booking_events(cast.admin, booking.id)
    assert [e.action for e in events] == ["create", "assign", "accept", "complete"]
    assert booking.version == 4
    assert_event_chain(booking.id)

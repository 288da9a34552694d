"""Time in the service layer, with a moved clock: a window that has begun is refused, the
provider's queue and the board's lanes read the soonest window first (bookings without one
last, and a lane's pages by position across both), and the board narrows to late bookings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ops_portal.domain.errors import WindowPassed
from ops_portal.domain.lifecycle import Action, Status
from ops_portal.models import Booking
from ops_portal.services import bookings
from ops_portal.services.bookings import BoardFilter, Cursor
from tests.support.builders import count_bookings

NOW = datetime(2031, 3, 4, 12, 0, tzinfo=UTC)


def book(cast, start: datetime | None, hours: int = 2) -> Booking:
    """A booking of `cast.owner` requested a day before its window (or NOW, without one)."""
    return bookings.create_booking(
        cast.owner,
        service="Leaking tap",
        window_start=start,
        window_end=start and start + timedelta(hours=hours),
        now=(start - timedelta(days=1)) if start else NOW,
    )


def test_a_window_that_has_begun_by_the_request_is_refused(cast):
    start = NOW + timedelta(hours=1)
    with pytest.raises(WindowPassed, match="That time has passed"):
        bookings.create_booking(cast.owner, window_start=start, now=start)
    with pytest.raises(WindowPassed):
        bookings.create_booking(cast.owner, window_start=start, now=start + timedelta(minutes=1))
    assert count_bookings() == 0
    booking = bookings.create_booking(
        cast.owner, window_start=start, now=start - timedelta(seconds=1)
    )
    assert booking.status is Status.PENDING


def test_the_queue_shows_the_job_in_progress_first_then_the_soonest_window(cast):
    later = book(cast, NOW + timedelta(days=3))
    anytime = book(cast, None)
    soonest = book(cast, NOW + timedelta(days=1))
    started = book(cast, NOW + timedelta(days=5))
    provider = cast.provider.user_id
    for booking in (later, anytime, soonest, started):
        bookings.perform_action(
            cast.admin, booking.id, Action.FORCE_ASSIGN, provider_id=provider, reason="test"
        )
    bookings.perform_action(cast.provider, started.id, Action.ACCEPT)

    queue = bookings.provider_queue(cast.provider, provider)

    assert [b.id for b in queue] == [started.id, soonest.id, later.id, anytime.id]


def test_a_lane_lists_the_soonest_window_first_and_pages_across_bookings_without_one(cast):
    starts = [NOW + timedelta(days=d) for d in (4, 1, 3, 1, 2)]
    dated = [book(cast, start) for start in starts]
    undated = [book(cast, None) for _ in range(3)]
    expected = [b.id for b in sorted(dated, key=lambda b: (b.window_start, b.id))]
    expected += [b.id for b in undated]

    def lane(cursor: Cursor):
        return bookings.lane(cast.admin, Status.PENDING, now=NOW, cursor=cursor, per_page=3)

    # Forward from the start, page by page (the second page crosses into the undated run).
    seen, window = [], lane(Cursor())
    while True:
        seen += [b.id for b in window.items]
        if not window.has_next:
            break
        window = lane(Cursor(after=window.last_id))
    assert seen == expected

    # Backward from the end, page by page.
    seen, window = [], lane(Cursor(end=True))
    while True:
        seen = [b.id for b in window.items] + seen
        if not window.has_previous:
            break
        window = lane(Cursor(before=window.first_id))
    assert seen == expected

    board = {lane.status: lane for lane in bookings.board_lanes(cast.admin, now=NOW)}
    assert [b.id for b in board[Status.PENDING].items] == expected


def test_the_board_narrowed_to_late_shows_only_bookings_late_at_that_moment(cast):
    soon = book(cast, NOW + timedelta(hours=1))
    tomorrow = book(cast, NOW + timedelta(days=1))
    book(cast, None)
    in_progress = book(cast, NOW + timedelta(hours=2), hours=1)
    bookings.perform_action(
        cast.admin, in_progress.id, Action.ASSIGN, provider_id=cast.provider.user_id
    )
    bookings.perform_action(cast.provider, in_progress.id, Action.ACCEPT)
    late_only = BoardFilter(late_only=True)

    def late_ids(now: datetime) -> set[int]:
        lanes = bookings.board_lanes(cast.admin, now=now, narrowed=late_only)
        counts = bookings.lane_counts(cast.admin, now=now, narrowed=late_only)
        assert {lane.status: lane.count for lane in lanes} == counts
        return {b.id for lane in lanes for b in lane.items}

    assert late_ids(NOW) == set()
    # The first window has begun (nobody started it); the job in progress has not yet ended.
    assert late_ids(NOW + timedelta(hours=2, minutes=30)) == {soon.id}
    assert late_ids(NOW + timedelta(hours=3)) == {soon.id, in_progress.id}
    assert late_ids(NOW + timedelta(days=1)) == {soon.id, in_progress.id, tomorrow.id}
    lane = bookings.lane(
        cast.admin, Status.PENDING, now=NOW + timedelta(days=2), narrowed=late_only
    )
    assert [b.id for b in lane.items] == [soon.id, tomorrow.id]

"""The time rules of a booking, with the clock as a parameter: a window that has begun is
refused, when a booking is late in each status, and how a wait reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ops_portal.domain.errors import WindowPassed
from ops_portal.domain.lifecycle import Status
from ops_portal.domain.schedule import (
    ARRIVAL_SLOTS,
    check_window_ahead,
    duration_words,
    is_late,
    waited,
)

START = datetime(2031, 3, 4, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=2)
BEFORE, DURING, AFTER = START - timedelta(minutes=1), START + timedelta(minutes=1), END


def test_a_window_that_has_begun_is_refused_and_one_ahead_is_not():
    check_window_ahead(START, BEFORE)
    check_window_ahead(None, AFTER)  # "any time" never passes
    for now in (START, DURING, AFTER):
        with pytest.raises(WindowPassed, match="That time has passed") as refused:
            check_window_ahead(START, now)
        assert refused.value.field == "window_start"


# status -> late (before the window, during it, once it has ended)
LATE = {
    Status.PENDING: (False, True, True),
    Status.ASSIGNED: (False, True, True),
    Status.REJECTED: (False, True, True),
    Status.IN_PROGRESS: (False, False, True),
    Status.COMPLETED: (False, False, False),
    Status.CANCELLED: (False, False, False),
    Status.FAILED: (False, False, False),
}


@pytest.mark.parametrize("status", list(Status))
def test_a_booking_is_late_once_its_window_begins_unstarted_or_ends_unfinished(status):
    moments = (BEFORE, DURING, AFTER)
    assert tuple(is_late(status, START, END, now) for now in moments) == LATE[status]
    assert not any(is_late(status, None, None, now) for now in moments)


def test_a_wait_reads_in_minutes_hours_then_days():
    since = START
    assert waited(since, since) == "under a minute"
    assert waited(since, since + timedelta(seconds=59)) == "under a minute"
    assert waited(since, since + timedelta(seconds=60)) == "1 min"
    assert waited(since, since + timedelta(minutes=42)) == "42 min"
    assert waited(since, since + timedelta(hours=3, minutes=59)) == "3 h"
    assert waited(since, since + timedelta(days=5)) == "5 days"


def test_a_measured_time_reads_to_the_second_then_the_minute_then_in_days():
    assert duration_words(None) == "—"
    assert duration_words(timedelta(seconds=40)) == "40 s"
    assert duration_words(timedelta(minutes=3, seconds=20)) == "3 min"
    assert duration_words(timedelta(hours=1, minutes=5)) == "1 h 5 min"
    assert duration_words(timedelta(days=3, hours=2)) == "3 days"


def test_the_preset_windows_are_two_hours_from_eight_to_eight():
    assert [f"{s:%H:%M}-{e:%H:%M}" for s, e in ARRIVAL_SLOTS] == [
        "08:00-10:00",
        "10:00-12:00",
        "12:00-14:00",
        "14:00-16:00",
        "16:00-18:00",
        "18:00-20:00",
    ]

"""Time rules of a booking: its arrival window may not have begun when it is requested, the
preset windows a customer picks from, when a booking is late, how long it has waited, and the
time zones a person may read times in. Every rule takes `now`; none reads the clock."""

from __future__ import annotations

import math
from datetime import datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from .errors import InvalidInput, WindowPassed
from .lifecycle import Status

# The preset arrival windows of a day: two hours each, from 08:00 to 20:00.
ARRIVAL_SLOTS: tuple[tuple[time, time], ...] = tuple(
    (time(hour), time(hour + 2)) for hour in range(8, 20, 2)
)

# Which edge of its window a booking is late after, by status: one still waiting for its
# provider to start is late once the window has begun; one in progress, once it has ended.
# Statuses not named here are never late (nobody is due to do anything at a set time).
LATE_AFTER: dict[Status, str] = {
    Status.PENDING: "window_start",
    Status.ASSIGNED: "window_start",
    Status.REJECTED: "window_start",
    Status.IN_PROGRESS: "window_end",
}

# Offered first on the profile page, before every other zone.
COMMON_ZONES: tuple[str, ...] = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "Europe/Madrid",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
)


def check_window_ahead(window_start: datetime | None, now: datetime) -> None:
    """A window must still lie ahead: one that has begun cannot be kept."""
    if window_start is not None and window_start <= now:
        raise WindowPassed("That time has passed", field="window_start")


def is_late(status: Status, window_start, window_end, now: datetime) -> bool:
    """The booking's window has begun while nobody started it, or ended while it is not done."""
    edge = LATE_AFTER.get(status)
    if edge is None:
        return False
    due = window_start if edge == "window_start" else window_end
    return due is not None and due <= now


def waited(since: datetime, now: datetime) -> str:
    """How long something has waited since `since`, in wait_words."""
    return wait_words(now - since)


def wait_words(length: timedelta) -> str:
    """A wait as a person says it: "under a minute", "2 min", "3 h", "4 days" (never more than
    it is: a booking made seconds ago has not waited a minute). Coarser than duration_words: a
    wait is read at a glance, and the same on a card and in the board's figures."""
    seconds = max(0, int(length.total_seconds()))
    if seconds < 60:
        return "under a minute"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 48 * 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def duration_words(value: timedelta | None) -> str:
    """A measured time as a person says it, to the minute under two days: "40 s", "3 min",
    "1 h 5 min", "3 days"; "—" for none (a median of nothing)."""
    if value is None:
        return "—"
    seconds = round(value.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours = seconds // 60, seconds // 3600
    if hours >= 48:
        return f"{hours // 24} days"
    return f"{minutes} min" if hours == 0 else f"{hours} h {minutes % 60} min"


def time_left(seconds: int) -> str:
    """What is left of an offer, as its countdown says it: "4 min left", "40 s left",
    "expired" (static/js/app.js counts down in the same words)."""
    if seconds <= 0:
        return "expired"
    if seconds < 60:
        return f"{seconds} s left"
    return f"{seconds // 60} min left"


def seconds_until(deadline: datetime, now: datetime) -> int:
    """Whole seconds from `now` to `deadline`, rounded up (0 once it has come)."""
    return max(0, math.ceil((deadline - now).total_seconds()))


@cache
def all_zones() -> tuple[str, ...]:
    """Every IANA zone this machine knows, the common ones first."""
    rest = sorted(available_timezones() - set(COMMON_ZONES))
    return (*COMMON_ZONES, *rest)


def check_zone(name) -> str:
    if not isinstance(name, str) or name not in all_zones():
        raise InvalidInput("Choose a time zone from the list", field="time_zone")
    return name


def zone_of(name: str | None, default: str) -> ZoneInfo:
    """A person's zone: their own, else the app's."""
    return ZoneInfo(name or default)


def slot_window(day, slot: tuple[time, time], zone: ZoneInfo) -> tuple[datetime, datetime]:
    start, end = slot
    return datetime.combine(day, start, zone), datetime.combine(day, end, zone)


# Choices of a time of day, every half hour: a list is 24-hour whatever the browser's locale.
TIMES_OF_DAY: tuple[time, ...] = tuple(
    (datetime.min + timedelta(minutes=30 * step)).time() for step in range(48)
)

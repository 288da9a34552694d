"""Bookings: the lifecycle actions (every commit) and the reads (board, search, queue, lists).

`rules` says what a request may contain, `actions` changes bookings, `queries` reads them; the
names below are the package's interface, so callers need not know which module holds what."""

from .actions import create_booking, open_action, perform_action
from .paging import Cursor, Window
from .queries import (
    BOARD_LANES,
    BoardFilter,
    Explanation,
    Lane,
    board_lanes,
    booking_events,
    booking_for_card,
    customer_bookings,
    every_found_booking,
    find_bookings,
    get_booking,
    lane,
    lane_counts,
    latest_reasons,
    provider_history,
    provider_queue,
)
from .rules import DEFAULT_SERVICE

__all__ = [
    "BOARD_LANES",
    "DEFAULT_SERVICE",
    "BoardFilter",
    "Cursor",
    "Explanation",
    "Lane",
    "Window",
    "board_lanes",
    "booking_events",
    "booking_for_card",
    "create_booking",
    "customer_bookings",
    "every_found_booking",
    "find_bookings",
    "get_booking",
    "lane",
    "lane_counts",
    "latest_reasons",
    "open_action",
    "perform_action",
    "provider_history",
    "provider_queue",
]

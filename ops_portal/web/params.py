"""Query parameters the pages share."""

from __future__ import annotations

from flask import request

from ..domain.errors import InvalidInput
from ..domain.numbers import LARGEST_ID, parse_whole_number
from ..services.bookings import Cursor

CURSOR_ARGS = ("after", "before", "end")


def cursor_arg() -> Cursor:
    """Where a page of a list starts: `after` or `before` a booking id, or at the `end`; none of
    them is the start. Anything but ASCII digits is refused (400) rather than quietly read as
    the first page."""
    marks = {}
    for name in ("after", "before"):
        raw = request.args.get(name, "")
        if raw != "":
            marks[name] = parse_whole_number(raw, field=name, ceiling=LARGEST_ID)
    end = request.args.get("end", "")
    if end not in ("", "1"):
        raise InvalidInput("end must be 1")
    return Cursor(after=marks.get("after"), before=marks.get("before"), end=end == "1")

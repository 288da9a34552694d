"""Query parameters the pages share."""

from __future__ import annotations

from flask import request

from ..domain.numbers import LARGEST_ID, parse_whole_number


def page_number_arg() -> int:
    """The `page` query parameter: absent or empty is the first page; anything but ASCII
    digits is refused (400) rather than quietly read as page 1. Past the last page is an empty
    page."""
    raw = request.args.get("page", "")
    return 1 if raw == "" else parse_whole_number(raw, field="page", ceiling=LARGEST_ID)

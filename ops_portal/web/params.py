"""Query parameters the pages share."""

from __future__ import annotations

from flask import request

from ..domain.errors import InvalidInput


def page_number_arg() -> int:
    """The `page` query parameter: absent or empty is the first page; anything but ASCII
    digits is refused (400) rather than quietly read as page 1. Past the last page is an empty
    page (the service bounds it, so no offset overflows the database)."""
    raw = request.args.get("page", "")
    if raw == "":
        return 1
    if not (raw.isascii() and raw.isdigit()):
        raise InvalidInput("page must be a positive whole number", field="page")
    # int() refuses strings past 4300 digits; any page past 10**12 is past the end anyway.
    digits = raw.lstrip("0") or "0"
    return int(digits) if len(digits) <= 12 else 10**12

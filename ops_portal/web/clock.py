"""The time of the request and the zone of the person reading it: a page computes every "late"
and "waiting" from one `now`, and shows every time in the person's own zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app, g
from flask_login import current_user

from ..domain.schedule import zone_of
from ..models import utcnow


def request_now() -> datetime:
    """The time of this request, read once, so every card of a page agrees."""
    if "now" not in g:
        g.now = utcnow()
    return g.now


def display_zone() -> ZoneInfo:
    """The zone the person reads and types times in: their own, else the app's
    DISPLAY_TIMEZONE."""
    if "display_zone" not in g:
        own = current_user.time_zone if current_user.is_authenticated else None
        g.display_zone = zone_of(own, current_app.config["DISPLAY_TIMEZONE"])
    return g.display_zone

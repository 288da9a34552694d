"""Template helpers every page uses: times in the display zone, the buttons a person may press
on a card, and where each button posts."""

from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo

from flask import Flask, current_app, g, request, url_for
from flask_login import current_user

from ..domain.lifecycle import (
    LIFECYCLE,
    STATUS_WORDS,
    Action,
    allowed_actions,
)
from .cards import card_messages, latest_reason, orphan_card_messages
from .forms import CONFIRMED_ACTIONS, DANGER_ACTIONS
from .gates import current_actor, home_url
from .params import CURSOR_ARGS


def register_template_helpers(app: Flask) -> None:
    zone = ZoneInfo(app.config["DISPLAY_TIMEZONE"])

    @app.template_filter("local_time")
    def local_time(value, fmt: str = "%a %d %b %Y, %H:%M") -> str:
        if value is None:
            return ""
        local = value.astimezone(zone)
        return f"{local.strftime(fmt)} {local.tzname()}"

    @app.template_filter("window")
    def time_window(booking) -> str:
        start, end = booking.window_start, booking.window_end
        if start is None:
            return "Any time"
        if end is None:
            return local_time(start)
        start_local, end_local = start.astimezone(zone), end.astimezone(zone)
        if start_local.date() == end_local.date():
            return f"{start_local:%a %d %b %Y, %H:%M}–{end_local:%H:%M} {end_local.tzname()}"
        return f"{local_time(start)} – {local_time(end)}"

    @app.context_processor
    def web_helpers():
        return {
            "new_idempotency_key": lambda: uuid.uuid4().hex,
            "detail_url": detail_url,
            "page_url": page_url,
            "action_needs_input": action_needs_input,
            "action_is_danger": action_is_danger,
            "LIFECYCLE": LIFECYCLE,
            "Action": Action,
            "STATUS_WORDS": STATUS_WORDS,
            "CONFIRMED_ACTIONS": CONFIRMED_ACTIONS,
            "actions_for": actions_for,
            "action_url": action_url,
            "timeline_url": timeline_url,
            "card_messages": card_messages,
            "latest_reason": latest_reason,
            "orphan_card_messages": orphan_card_messages,
            "home_url": home_url,
        }


def actions_for(booking) -> list[Action]:
    """The buttons the person sees on this booking's card: what the table allows them now."""
    if not current_user.is_authenticated:
        return []
    return allowed_actions(booking.facts, current_actor())


def booking_urls() -> str:
    """Where this blueprint's booking URLs begin ("/admin/bookings/"), built by the router once
    a request: a board draws a few hundred of them, and building each costs more than the
    card it sits in."""
    if "booking_urls" not in g:
        timeline = url_for(f"{request.blueprint}.booking_timeline", booking_id=1)
        g.booking_urls = timeline.removesuffix("1/timeline")
    return g.booking_urls


def action_url(booking, action: Action) -> str:
    return f"{booking_urls()}{booking.id}/{action.value}"


def timeline_url(booking) -> str:
    return f"{booking_urls()}{booking.id}/timeline"


def page_url(**cursor) -> str:
    """This list page's URL at another position, keeping its filters."""
    args = {k: v for k, v in request.args.items() if k not in CURSOR_ARGS}
    return url_for(request.endpoint, **request.view_args, **args, **cursor)


def action_needs_input(action: Action) -> bool:
    """A provider, a reason or a confirmation: the action opens a form before it is sent."""
    rule = LIFECYCLE[action]
    return rule.takes_provider or rule.asks_reason or action in CONFIRMED_ACTIONS


def action_is_danger(action: Action) -> bool:
    return action in DANGER_ACTIONS


def detail_url(booking) -> str | None:
    if f"{request.blueprint}.booking_detail" not in current_app.view_functions:
        return None
    return f"{booking_urls()}{booking.id}"

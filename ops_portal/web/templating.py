"""Template helpers every page uses: times in the person's zone, whether a booking is late and
how long it has waited, the buttons a person may press on a card, and where each button posts."""

from __future__ import annotations

import uuid
from urllib.parse import quote_plus

from flask import Flask, current_app, g, request, url_for
from flask_login import current_user

from ..domain.access import SeenEvent, events_seen_by, sees_customer_phone, sees_internal
from ..domain.lifecycle import (
    LIFECYCLE,
    OWNER_NEXT_STEPS,
    STATUS_WORDS,
    Action,
    Relation,
    Role,
    Status,
    allowed_actions,
    is_related,
    status_words,
)
from ..domain.schedule import (
    duration_words,
    is_late,
    seconds_until,
    time_left,
    wait_words,
    waited,
)
from ..services.bookings import BOARD_LANES
from ..services.bookings.rules import dial_string
from .cards import card_messages, latest_reason, orphan_card_messages
from .clock import display_zone, request_now
from .forms import CONFIRMED_ACTIONS, DANGER_ACTIONS
from .gates import current_actor, home_url
from .params import CURSOR_ARGS


def register_template_helpers(app: Flask) -> None:
    @app.template_filter("local_time")
    def local_time(value, fmt: str = "%a %d %b %Y, %H:%M") -> str:
        if value is None:
            return ""
        local = value.astimezone(display_zone())
        return f"{local.strftime(fmt)} {local.tzname()}"

    @app.template_filter("window")
    def time_window(booking) -> str:
        start, end = booking.window_start, booking.window_end
        if start is None:
            return "Any time"
        if end is None:
            return local_time(start)
        zone = display_zone()
        start_local, end_local = start.astimezone(zone), end.astimezone(zone)
        if start_local.date() == end_local.date():
            return f"{start_local:%a %d %b %Y, %H:%M}–{end_local:%H:%M} {end_local.tzname()}"
        return f"{local_time(start)} – {local_time(end)}"

    app.add_template_filter(time_left, "time_left")

    app.add_template_filter(duration_words, "duration")
    app.add_template_filter(wait_words, "wait")

    @app.template_filter("percent")
    def percent(share) -> str:
        return "—" if share is None else f"{share:.0%}"

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
            "events_seen": events_seen,
            "sees_internal": lambda: sees_internal(current_actor()),
            "action_url": action_url,
            "timeline_url": timeline_url,
            "card_messages": card_messages,
            "latest_reason": latest_reason,
            "orphan_card_messages": orphan_card_messages,
            "home_url": home_url,
            "is_late": booking_is_late,
            "display_zone_name": lambda: display_zone().key,
            "local_now": lambda: request_now().astimezone(display_zone()),
            "waiting": waiting,
            "offer_seconds_left": offer_seconds_left,
            "BOARD_LANES": BOARD_LANES,
            "status_in_words": status_in_words,
            "maps_url": maps_url,
            "phone_shown": phone_shown,
            "dial_string": dial_string,
            "next_step": next_step,
        }


def actions_for(booking) -> list[Action]:
    """The buttons the person sees on this booking's card: what the table allows them now."""
    if not current_user.is_authenticated:
        return []
    return allowed_actions(booking.facts, current_actor())


def booking_is_late(booking) -> bool:
    return is_late(booking.status, booking.window_start, booking.window_end, request_now())


def waiting(booking) -> str:
    """How long the booking has waited in its status ("3 h")."""
    return waited(booking.updated_at, request_now())


def offer_seconds_left(booking) -> int | None:
    """Seconds left of the booking's offer, for its provider and dispatchers; None when it is no
    offer, or the person is its customer (who waits for a provider, not for a deadline)."""
    if booking.status != Status.ASSIGNED or booking.offer_expires_at is None:
        return None
    if not current_user.is_authenticated or current_user.role == Role.CUSTOMER:
        return None
    return seconds_until(booking.offer_expires_at, request_now())


def status_in_words(booking) -> str:
    """The card's badge: what the status says to the person looking (domain.lifecycle)."""
    if not current_user.is_authenticated:
        return STATUS_WORDS[booking.status]
    return status_words(booking.facts, current_actor())


MAPS_SEARCH = "https://www.google.com/maps/search/?api=1&query="


def maps_url(address: str) -> str:
    """A search for the address in Google Maps: phones open it in their maps app."""
    return MAPS_SEARCH + quote_plus(address)


def phone_shown(booking) -> bool:
    return bool(booking.customer_phone) and sees_customer_phone(booking.facts, current_actor())


def next_step(booking) -> str | None:
    """What happens next, for the customer who owns the booking (their card offers to request
    it again)."""
    if not current_user.is_authenticated:
        return None
    if not is_related(booking.facts, current_actor(), Relation.OWNER):
        return None
    return OWNER_NEXT_STEPS.get(booking.status)


def events_seen(booking) -> list[SeenEvent]:
    """The booking's timeline as the person may see it: the rule the API's events follow too."""
    return events_seen_by(current_actor(), booking.events)


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
    return (
        rule.takes_provider
        or rule.asks_reason
        or bool(rule.reason_presets)
        or action in CONFIRMED_ACTIONS
    )


def action_is_danger(action: Action) -> bool:
    return action in DANGER_ACTIONS


def detail_url(booking) -> str | None:
    if f"{request.blueprint}.booking_detail" not in current_app.view_functions:
        return None
    return f"{booking_urls()}{booking.id}"

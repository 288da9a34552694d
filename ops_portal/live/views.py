"""Live pages: a server-sent-events stream per page that says only "this changed, as of cursor
N" for what its person may see, and a cheap poll that says the same (204: nothing) for a page
whose stream is blocked. The page then redraws its own region through htmx, as it always did.

Streams wait on the process's hub, holding no database connection, and are served only by a
cooperative (gevent) worker: a thread of a sync or threaded worker held for ten minutes would
be one fewer for everyone's pages, so there the stream answers 204 (the browser stops asking)
and pages keep their plain region poll."""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import wraps

from flask import Blueprint, Flask, Response, current_app, g, request, url_for
from flask_login import current_user

from ..domain.access import Read, require_read
from ..domain.lifecycle import Actor, Role
from ..extensions import csrf, db
from ..services import changes
from ..services.changes import Cursor
from ..web.gates import current_actor
from .hub import Hub, Position


@dataclass(frozen=True)
class LivePage:
    role: Role
    read: Read
    page: str  # the endpoint of the page it rings for


# The live pages, by the name in their stream's URL.
LIVE_PAGES = {
    "board": LivePage(Role.ADMIN, Read.DISPATCH_BOARD, "admin.board"),
    "queue": LivePage(Role.PROVIDER, Read.WORK_QUEUE, "provider.queue"),
    "bookings": LivePage(Role.CUSTOMER, Read.OWN_BOOKINGS, "customer.index"),
}
RETRY_MS = (2000, 8000)  # a browser reconnects after a random wait in this range
RETRY_AFTER_S = (5, 30)  # what a refused stream (the process is full) is told to wait

live = Blueprint("live", __name__, url_prefix="/live")


def register_live(app: Flask) -> None:
    app.extensions["live_hub"] = Hub(app)
    csrf.exempt(live)  # GETs only
    app.register_blueprint(live)

    @app.context_processor
    def live_helpers():
        return {"live_settings": live_settings, "region_trigger": region_trigger}

    # The hub lets the pages under way go before a group of its streams (Hub._ring).
    @app.before_request
    def page_began():
        if request.blueprint != "live":
            g.page_counted = True
            hub().page_began()

    @app.teardown_request
    def page_ended(_error=None):
        if g.pop("page_counted", False):
            hub().page_ended()


def hub() -> Hub:
    return current_app.extensions["live_hub"]


def streams_served() -> bool:
    """Whether this worker can hold streams: gevent has made its sockets cooperative."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("socket"))


def live_page(name: str) -> Callable:
    """Marks a page view as live: the end of the change feed is read before the page reads
    its data (so a change in between is told, never missed), for the page to start its
    stream from."""

    def decorate(view):
        @wraps(view)
        def page(*args, **kwargs):
            if streams_served():
                g.live = (name, changes.latest_cursor())
            return view(*args, **kwargs)

        return page

    return decorate


def live_settings() -> dict | None:
    """What a live page's template needs (None: the page is not live here): its stream, its
    fallback poll, the cursor it was drawn at, and how often it polls."""
    if "live" not in g:
        return None
    name, cursor = g.live
    config = current_app.config
    return {
        "stream": url_for(f"live.{name}", after=str(cursor)),
        "poll": url_for(f"live.{name}_poll"),
        "cursor": str(cursor),
        "fallback_seconds": config["LIVE_FALLBACK_POLL_SECONDS"],
        "safety_seconds": config["LIVE_SAFETY_POLL_SECONDS"],
    }


def region_trigger(plain_seconds: int) -> str:
    """A page region's hx-trigger: redrawn when told (the doorbell, an action), and polled
    every `plain_seconds` where pages are not live, else every LIVE_SAFETY_POLL_SECONDS as a
    safety net (never, at 0)."""
    seconds = current_app.config["LIVE_SAFETY_POLL_SECONDS"] if streams_served() else plain_seconds
    told = "bookings-changed from:body"
    return f"every {seconds}s, {told}" if seconds else told


def _person(page: str) -> Actor | Response:
    """The person the stream or poll is for, allowed to see the page it is for; else the
    answer to give (401 without a session: the page's next redraw takes them to log in)."""
    spec = LIVE_PAGES[page]
    if not current_user.is_authenticated:
        # As any region of the page would answer (the script redraws one, which leads there).
        login = url_for("auth.login", next=url_for(spec.page))
        return Response("Log in again\n", 401, {"HX-Redirect": login}, mimetype="text/plain")
    if current_user.role != spec.role:
        return Response("Not your page\n", 403, mimetype="text/plain")
    actor = current_actor()
    require_read(actor, spec.read, actor.user_id)
    return actor


def _after() -> Cursor | None:
    """What the page has read: Last-Event-ID on a reconnect, else the `after` it was drawn at."""
    raw = request.headers.get("Last-Event-ID") or request.args.get("after")
    return Cursor.parse(raw) if raw else None


def _refused_for_now() -> Response:
    response = Response("Too many live pages on this server\n", 503, mimetype="text/plain")
    response.headers["Retry-After"] = str(random.randint(*RETRY_AFTER_S))
    return response


def stream(page: str):
    """The page's doorbell: an event `ready` at once, then an event `changed` with the cursor
    as id and data whenever something its person hears of changes; a comment every
    LIVE_HEARTBEAT_SECONDS."""
    actor = _person(page)
    if isinstance(actor, Response):
        return actor
    after = _after()
    if not streams_served():
        return Response(status=204)  # an EventSource answered 204 stops reconnecting
    # What waits holds no connection: not even while a fresh worker's listener makes its first
    # read (a restart's thousands of reconnects would hold the whole pool, the listener's turn
    # included).
    db.session.remove()
    position = hub().open(actor, after)
    if position is None:
        return _refused_for_now()
    config = current_app.config
    body = _events(
        hub(),
        actor,
        position,
        heartbeat=config["LIVE_HEARTBEAT_SECONDS"],
        # Spread, so that streams opened together do not all end together.
        lasts=config["LIVE_STREAM_SECONDS"] * random.uniform(0.9, 1.1),
    )
    response = Response(body, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # a proxy that honours it passes events on
    return response


def _events(
    live_hub: Hub, actor: Actor, position: Position, *, heartbeat: float, lasts: float
) -> Iterator[str]:
    ends = time.monotonic() + lasts
    try:
        # `ready` first: a page that never receives it is behind a proxy that holds the
        # stream back, and polls instead.
        yield f"retry: {random.randint(*RETRY_MS)}\nevent: ready\ndata: \n\n"
        while not live_hub.closed:
            left = ends - time.monotonic()
            if left <= 0:
                return
            told = live_hub.news(actor, position, min(heartbeat, left))
            if told is not None:
                yield f"id: {told}\nevent: changed\ndata: {told}\n\n"
            elif not live_hub.closed:
                yield ": still here\n\n"
    finally:
        live_hub.close(position)


def poll(page: str):
    """The fallback of a page whose stream is blocked: 204 when nothing its person hears of
    changed past `after`, else 200 with the cursor to redraw at (text/plain)."""
    actor = _person(page)
    if isinstance(actor, Response):
        return actor
    after = _after() or Cursor()
    # The hub knows, without a query; but not once this worker is stopping: its hub listens no
    # more, and a page's keep-alive connection still brings its polls here until it exits.
    if streams_served() and not hub().closed:
        db.session.remove()
        position = hub().open(actor, after)
        if position is None:
            return _refused_for_now()
        try:
            told = hub().news(actor, position, timeout=0)
        finally:
            hub().close(position)
    else:
        told = changes.news_for(actor, after)
    if told is None:
        return Response(status=204)
    return Response(str(told), mimetype="text/plain", headers={"Cache-Control": "no-store"})


def _register(name: str) -> None:
    """The page's two routes: live.<name> (the stream) and live.<name>_poll."""

    def page_stream():
        return stream(name)

    def page_poll():
        return poll(name)

    page_stream.__name__, page_poll.__name__ = name, f"{name}_poll"
    live.add_url_rule(f"/{name}", view_func=page_stream, methods=["GET"])
    live.add_url_rule(f"/{name}/poll", view_func=page_poll, methods=["GET"])


for _name in LIVE_PAGES:
    _register(_name)

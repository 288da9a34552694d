"""Admin pages: the dispatch board (lanes, provider panel), each lane's full list and the
archive."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, abort, g, render_template, request, url_for

from ..domain.catalog import SERVICES
from ..domain.lifecycle import Role, Status
from ..models import utcnow
from ..services import bookings, providers
from ..web.actions import register_booking_actions
from ..web.gates import fragment_of, gate_blueprint
from ..web.params import cursor_arg

admin = Blueprint("admin", __name__, url_prefix="/admin")
gate_blueprint(admin, Role.ADMIN)


def board_filter(args) -> bookings.BoardFilter:
    """The board's filter from a query string (?q=…&service=…&late=1)."""
    return bookings.BoardFilter(
        search=args.get("q", ""), service=args.get("service", ""), late_only=args.get("late") == "1"
    )


def board_regions_oob() -> str:
    """What else an action changes on the board: lane counts (of the board as the person has
    it filtered: htmx names the page it was sent from) and the provider panel."""
    page = urlsplit(request.headers.get("HX-Current-URL", ""))
    narrowed = (
        board_filter({k: v[0] for k, v in parse_qs(page.query).items()})
        if page.path == url_for("admin.board")
        else bookings.BoardFilter()
    )
    return render_template(
        "admin/_board_oob.html",
        counts=bookings.lane_counts(g.actor, now=utcnow(), narrowed=narrowed),
        panel=providers.provider_panel(g.actor),
    )


register_booking_actions(admin, bookings.get_booking, extras=board_regions_oob)


def _render_board(template: str):
    narrowed = board_filter(request.args)
    return render_template(
        template,
        lanes=bookings.board_lanes(g.actor, now=utcnow(), narrowed=narrowed),
        panel=providers.provider_panel(g.actor),
        narrowed=narrowed,
        services=SERVICES,
    )


@admin.get("/")
def board():
    """The dispatch board: what needs doing, the soonest window first, and who is free."""
    return _render_board("admin/board.html")


@admin.get("/board")
@fragment_of("admin.board")
def board_regions():
    """The board's lanes and provider panel, for the page's own polling."""
    return _render_board("admin/_board.html")


@admin.get("/lanes/<lane_name>")
def lane(lane_name: str):
    """Every booking of one lane of the board, the soonest window first."""
    try:
        status = Status(lane_name.upper())
    except ValueError:
        abort(404)
    narrowed = board_filter(request.args)
    window = bookings.lane(g.actor, status, now=utcnow(), narrowed=narrowed, cursor=cursor_arg())
    return render_template("admin/lane.html", status=status, window=window, narrowed=narrowed)


@admin.get("/archive")
def archive():
    """Completed, cancelled and failed bookings: search, filter, pages."""
    search = request.args.get("q", "")
    status = request.args.get("status") or None
    window = bookings.archive(g.actor, search=search, status=status, cursor=cursor_arg())
    return render_template(
        "admin/archive.html",
        window=window,
        search=search,
        status=status,
        statuses=bookings.ARCHIVE_STATUSES,
    )


@admin.get("/bookings/<int:booking_id>")
def booking_detail(booking_id: int):
    """Any booking with its timeline."""
    return render_template(
        "bookings/detail.html", booking=bookings.get_booking(g.actor, booking_id)
    )

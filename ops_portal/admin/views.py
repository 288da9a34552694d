"""Admin pages: the dispatch board (lanes, provider panel, today's figures), each lane's full
list, the list of every booking with its search, the reports page, and CSV downloads."""

from __future__ import annotations

from datetime import date, datetime

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from ..domain.catalog import SERVICES
from ..domain.errors import InvalidInput
from ..domain.lifecycle import Role, Status
from ..http.htmx import is_htmx
from ..live import live_page
from ..models import utcnow
from ..services import automation, bookings, duty, metrics, providers, skills
from ..web.actions import register_booking_actions
from ..web.cards import read_reasons
from ..web.clock import display_zone, request_now
from ..web.exports import (
    ARCHIVE_COLUMNS,
    TIMELINE_COLUMNS,
    archive_rows,
    csv_download,
    timeline_rows,
)
from ..web.forms import AutomationForm, DutyForm, ServicesForm
from ..web.gates import fragment_of, gate_blueprint
from ..web.params import cursor_arg
from ..web.regions import page_cards, page_regions

admin = Blueprint("admin", __name__, url_prefix="/admin")
gate_blueprint(admin, Role.ADMIN)


def board_filter(args) -> bookings.BoardFilter:
    """The board's filter from a query string (?q=…&service=…&late=1)."""
    return bookings.BoardFilter(
        search=args.get("q", ""), service=args.get("service", ""), late_only=args.get("late") == "1"
    )


@page_regions("admin.board")
def board_oob_regions(_booking, _view_args, query) -> str:
    """What else an action changes on the board: lane counts (of the board as the person has
    it filtered) and the provider panel."""
    return render_template(
        "admin/_board_oob.html",
        counts=bookings.lane_counts(g.actor, now=utcnow(), narrowed=board_filter(query)),
        panel=providers.provider_panel(g.actor),
    )


register_booking_actions(admin, bookings.get_booking)
page_cards("admin.board", compact=True, card_heading=3)


def _render_board(template: str, **extra):
    narrowed = board_filter(request.args)
    lanes = bookings.board_lanes(g.actor, now=utcnow(), narrowed=narrowed)
    read_reasons(booking for lane in lanes for booking in lane.items)
    return render_template(
        template,
        automation=automation.automation_state(),
        lanes=lanes,
        panel=providers.provider_panel(g.actor),
        narrowed=narrowed,
        services=SERVICES,
        **extra,
    )


def today() -> tuple[datetime, datetime]:
    """Today in the person's zone, from its midnight to now."""
    now = request_now()
    return metrics.day_span(now.astimezone(display_zone()).date(), display_zone())[0], now


def todays_figures() -> metrics.DispatchMetrics:
    since, now = today()
    return metrics.dispatch_metrics(g.actor, since=since, until=now)


@admin.get("/")
@live_page("board")
def board():
    """The dispatch board: today's figures, what needs doing (the soonest window first), and
    who is free."""
    return _render_board("admin/board.html", figures=todays_figures())


@admin.post("/automation")
def set_automation():
    """Pause (paused=1) or resume (paused=0) the SYSTEM dispatcher, for every process."""
    form = AutomationForm()
    if not form.validate():
        raise InvalidInput(" ".join(form.paused.errors), field="paused")
    state = automation.set_paused(g.actor, form.paused.data == "1")
    if is_htmx():
        return render_template("admin/_automation.html", automation=state)
    return redirect(url_for("admin.board"), 303)


@admin.get("/board")
@fragment_of("admin.board")
def board_regions():
    """The board's lanes and provider panel, for the page's own redraws, with today's figures
    and the automation switch beside them."""
    return _render_board("admin/_board_redraw.html", figures=todays_figures())


@admin.get("/lanes/<lane_name>")
def lane(lane_name: str):
    """Every booking of one lane of the board, the soonest window first."""
    try:
        status = Status(lane_name.upper())
    except ValueError:
        abort(404)
    narrowed = board_filter(request.args)
    window = bookings.lane(g.actor, status, now=utcnow(), narrowed=narrowed, cursor=cursor_arg())
    read_reasons(window.items)
    return render_template("admin/lane.html", status=status, window=window, narrowed=narrowed)


@admin.get("/archive")
def archive():
    """Every booking, the latest change first: search, status filter, pages."""
    search = request.args.get("q", "")
    status = request.args.get("status", "")
    try:
        window = bookings.find_bookings(g.actor, search=search, status=status, cursor=cursor_arg())
    except InvalidInput as refused:
        if refused.field != "status":
            raise
        # Said beside the filter, which keeps what was typed.
        return render_template(
            "admin/archive.html", window=None, search=search, status=status, refused=refused
        ), 400
    read_reasons(window.items)
    return render_template("admin/archive.html", window=window, search=search, status=status)


@admin.get("/bookings/<int:booking_id>")
def booking_detail(booking_id: int):
    """Any booking with its timeline."""
    return render_template(
        "bookings/detail.html", booking=bookings.get_booking(g.actor, booking_id)
    )


@admin.get("/providers/<int:provider_id>")
def provider_detail(provider_id: int):
    """One provider: availability, duty (with its log: who, when, why) and services."""
    return _render_provider(provider_id, ServicesForm())


def _render_provider(provider_id: int, form: ServicesForm, status: int = 200):
    page = providers.provider_page(g.actor, provider_id)
    if not form.is_submitted():
        form.services.data = page.services
    return render_template("admin/provider.html", page=page, form=form, services=SERVICES), status


@admin.post("/providers/<int:provider_id>/duty")
def provider_duty(provider_id: int):
    """Put a provider on or off duty: the provider panel redrawn for htmx, else back to the
    provider's page or the board (`next`)."""
    form = DutyForm()
    if not form.validate():
        raise InvalidInput("Choose on or off duty, then try again.")
    duty.set_duty(g.actor, provider_id, form.on_duty.data == "on", reason=form.reason.data)
    if is_htmx():
        return render_template(
            "admin/_provider_panel.html", panel=providers.provider_panel(g.actor)
        )
    back = url_for("admin.provider_detail", provider_id=provider_id)
    return redirect(back if request.form.get("next") == "provider" else url_for("admin.board"), 303)


@admin.post("/providers/<int:provider_id>/services")
def provider_services(provider_id: int):
    """Set the services a provider does; back to their page."""
    form = ServicesForm()
    if not form.validate():
        raise InvalidInput("This form has expired; reload the page and try again.")
    try:
        chosen = skills.set_services(g.actor, provider_id, form.services.data)
    except InvalidInput as refused:
        form.services.errors = [refused.detail]
        return _render_provider(provider_id, form, 400)
    flash(
        f"Services saved: {', '.join(chosen)}." if chosen else "Services saved: every service.",
        "success",
    )
    return redirect(url_for("admin.provider_detail", provider_id=provider_id), 303)


@admin.get("/archive.csv")
def archive_csv():
    """Every booking the archive's search and status filter find, as a CSV file."""
    found = bookings.every_found_booking(
        g.actor, search=request.args.get("q", ""), status=request.args.get("status", "")
    )
    return csv_download("bookings.csv", ARCHIVE_COLUMNS, archive_rows(found))


@admin.get("/bookings/<int:booking_id>/timeline.csv")
def booking_timeline_csv(booking_id: int):
    """One booking's timeline as a dispatcher reads it, as a CSV file."""
    events = bookings.booking_events(g.actor, booking_id)
    return csv_download(
        f"booking-{booking_id}-timeline.csv", TIMELINE_COLUMNS, timeline_rows(events)
    )


@admin.get("/reports")
def reports():
    """A day of dispatch in charts: outcomes by hour, time to accept, jobs per provider."""
    zone = display_zone()
    typed_day = request.args.get("day", "")
    try:
        day = parse_day(typed_day) if typed_day else request_now().astimezone(zone).date()
    except InvalidInput as refused:
        # Said beside the field, which keeps what was typed.
        return render_template(
            "admin/reports.html", day=request_now().date(), typed_day=typed_day, refused=refused
        ), 400
    since, until = metrics.day_span(day, zone)
    return render_template(
        "admin/reports.html",
        day=day,
        typed_day=day.isoformat(),
        outcomes=list(metrics.OUTCOMES),
        hours=metrics.outcomes_by_hour(g.actor, since=since, until=until, zone=zone),
        accepts=metrics.accept_times(g.actor, since=since, until=until),
        jobs=metrics.jobs_per_provider(g.actor, since=since, until=until),
    )


def parse_day(text: str) -> date:
    """A day as a date field sends it (2030-03-01), or a sentence saying what is wrong."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"“{text[:40]}” is not a day: choose one from the calendar, or type it as "
            "2030-03-01 (year, month, day).",
            field="day",
        ) from None

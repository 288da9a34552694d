"""What the role blueprints share: who is acting, the role gate, the one booking-action view,
and how a booking card answers (a fragment for htmx, a 303 for a plain form)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    get_flashed_messages,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from .domain.errors import DomainError, InvalidInput, StaleBooking
from .domain.lifecycle import (
    LIFECYCLE,
    Action,
    Actor,
    Availability,
    Role,
    Source,
    Status,
    allowed_actions,
)
from .extensions import login_manager
from .idempotent import idempotent
from .services import bookings
from .web_forms import CONFIRMED_ACTIONS, ActionForm

HOME_ENDPOINT = {
    Role.CUSTOMER: "customer.index",
    Role.PROVIDER: "provider.queue",
    Role.ADMIN: "admin.board",
}
CARD_MESSAGE_CATEGORY = "card-{}"

STATUS_WORDS = {
    Status.PENDING: "Waiting for a provider",
    Status.ASSIGNED: "Provider assigned",
    Status.IN_PROGRESS: "In progress",
    Status.COMPLETED: "Completed",
    Status.REJECTED: "Rejected by provider",
    Status.CANCELLED: "Cancelled",
    Status.FAILED: "Failed",
}


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def current_actor() -> Actor:
    return Actor(Role(current_user.role), current_user.id, Source.WEB)


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


def home_url(role: Role | str) -> str:
    return url_for(HOME_ENDPOINT[Role(role)])


def gate_blueprint(blueprint: Blueprint, role: Role) -> None:
    """Anonymous → the login page (401 + HX-Redirect for htmx); another role → 403."""

    @blueprint.before_request
    def require_role():
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if current_user.role != role:
            abort(403)
        g.actor = current_actor()


# ------------------------------------------------------------------------------ card answers


def card_response(
    booking,
    *,
    status: int = 200,
    error: str | None = None,
    extras: Callable[[], str] | None = None,
):
    """The booking card alone (plus any out-of-band regions) for htmx."""
    html = render_template("bookings/_card.html", booking=booking, card_error=error)
    if extras is not None:
        html += extras()
    return make_response(html, status)


def card_messages(booking_id: int) -> list[str]:
    """Errors flashed for one card by a plain (non-htmx) form post."""
    g.setdefault("cards_shown", set()).add(booking_id)
    return get_flashed_messages(category_filter=[CARD_MESSAGE_CATEGORY.format(booking_id)])


def orphan_card_messages() -> list[str]:
    """Card errors whose card this page does not show (the job left the provider's queue, the
    booking is on another page): they become alerts naming the booking instead of vanishing.
    Call after the page's cards are rendered."""
    shown = {str(booking_id) for booking_id in g.get("cards_shown", ())}
    prefix = CARD_MESSAGE_CATEGORY.format("")
    return [
        f"Booking #{category[len(prefix) :]}: {message}"
        for category, message in get_flashed_messages(with_categories=True)
        if category.startswith(prefix) and category[len(prefix) :] not in shown
    ]


def register_booking_actions(
    blueprint: Blueprint,
    load_booking: Callable[[Actor, int], object],
    extras: Callable[[], str] | None = None,
) -> None:
    """POST /bookings/<id>/<action> on a role blueprint: one view for every role."""

    @blueprint.post("/bookings/<int:booking_id>/<action_name>")
    def booking_action(booking_id: int, action_name: str):
        """Apply one lifecycle action from a booking card's form."""
        try:
            action = Action(action_name)
        except ValueError:
            abort(404)
        if action is Action.CREATE:
            abort(404)
        g.acting_on = (booking_id, load_booking)  # from here on, refusals show in the card
        return apply_action(booking_id, action)

    @idempotent
    def apply_action(booking_id: int, action: Action):
        form = ActionForm.for_action(action)
        if not form.validate():
            raise InvalidInput(form.first_error())
        booking = bookings.perform_action(
            g.actor,
            booking_id,
            action,
            provider_id=form.provider_id.data if LIFECYCLE[action].takes_provider else None,
            reason=form.reason.data or None,
            expected_version=form.version.data,
        )
        if is_htmx():
            response = card_response(booking, extras=extras)
            # Then let the page redraw its lists, so the card moves to where it now belongs.
            response.headers["HX-Trigger-After-Settle"] = "bookings-changed"
            return response
        flash(
            f"Booking #{booking.id}: {LIFECYCLE[action].label.lower()} done — now "
            f"{STATUS_WORDS[Status(booking.status)].lower()}.",
            "success",
        )
        return redirect(home_url(g.actor.role), 303)


def alert_response(message: str, status: int):
    """An htmx answer that lands in the page's alert region instead of the swap target."""
    response = make_response(render_template("_alert.html", message=message, level="error"), status)
    response.headers["HX-Retarget"] = "#alerts"
    response.headers["HX-Reswap"] = "afterbegin"
    return response


def _in_words(error: DomainError, booking) -> str:
    """The message for a person: a stale page is explained without version numbers."""
    if isinstance(error, StaleBooking):
        return (
            f"This booking changed: now {booking.status}. It was updated after this page was "
            "shown, so nothing was done; check it before acting again."
        )
    return error.detail


def page_error(detail: str, status: int):
    """An error on a page: an alert for htmx (never a whole page swapped into a card), else
    the error page."""
    if is_htmx():
        return alert_response(detail, status)
    return render_template("error.html", status=status, detail=detail), status


def page_error_handler(error: DomainError, status: int):
    """Domain errors on pages: inside the card acted on, else an error page."""
    acting_on = g.get("acting_on")
    if acting_on is not None and request.method == "POST":
        booking_id, load_booking = acting_on
        try:
            booking = load_booking(g.actor, booking_id)
        except DomainError:
            booking = None
        if is_htmx():
            if booking is not None:
                return card_response(booking, status=status, error=_in_words(error, booking))
            return alert_response(error.detail, status)
        category = CARD_MESSAGE_CATEGORY.format(booking_id) if booking is not None else "error"
        flash(_in_words(error, booking) if booking is not None else error.detail, category)
        return redirect(home_url(g.actor.role), 303)
    return page_error(error.detail, status)


# ------------------------------------------------------------------------------ template helpers


def register_web(app: Flask) -> None:
    app.extensions["ops_portal.page_error_handler"] = page_error_handler

    def page_http_error(error: HTTPException):
        status = error.code or 500
        if status < 400:  # redirects raised as exceptions pass through untouched
            return error
        return page_error(error.description or error.name, status)

    app.extensions["ops_portal.page_http_error"] = page_http_error

    @app.errorhandler(CSRFError)
    def csrf_failed(error: CSRFError):
        return page_error(
            "This form has expired or did not come from this site; reload the page and try again.",
            400,
        )

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
        def actions_for(booking) -> list[Action]:
            if not current_user.is_authenticated:
                return []
            return allowed_actions(booking.facts, current_actor())

        def action_url(booking, action: Action) -> str:
            return url_for(
                f"{request.blueprint}.booking_action",
                booking_id=booking.id,
                action_name=action.value,
            )

        def page_url(number: int) -> str:
            args = {**request.view_args, **request.args.to_dict(), "page": number}
            return url_for(request.endpoint, **args)

        def provider_choices(action: Action):
            """Providers for the assign pickers: AVAILABLE ones for assign; every active one
            (busy ones marked) for force-assign. One query per request, however many cards."""
            if "provider_choices" not in g:
                g.provider_choices = bookings.providers_with_availability(current_actor())
            if action is Action.ASSIGN:
                return [p for p in g.provider_choices if p.availability == Availability.AVAILABLE]
            return [p for p in g.provider_choices if p.active]

        def detail_url(booking) -> str | None:
            endpoint = f"{request.blueprint}.booking_detail"
            if endpoint not in current_app.view_functions:
                return None
            return url_for(endpoint, booking_id=booking.id)

        return {
            "new_idempotency_key": lambda: uuid.uuid4().hex,
            "detail_url": detail_url,
            "page_url": page_url,
            "provider_choices": provider_choices,
            "LIFECYCLE": LIFECYCLE,
            "Action": Action,
            "STATUS_WORDS": STATUS_WORDS,
            "CONFIRMED_ACTIONS": CONFIRMED_ACTIONS,
            "actions_for": actions_for,
            "action_url": action_url,
            "card_messages": card_messages,
            "orphan_card_messages": orphan_card_messages,
            "home_url": home_url,
            "Status": Status,
        }

    @app.after_request
    def htmx_aware_caching(response):
        # Pages answer htmx with a fragment and a browser with a whole page: caches must keep
        # them apart, and fragments (per person, always changing) are not kept at all.
        if request.blueprint not in ("api", "health"):
            response.vary.add("HX-Request")
        if is_htmx():
            response.headers["Cache-Control"] = "no-store"
        return response

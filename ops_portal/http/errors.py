"""The one place where domain errors, HTTP errors and database faults become responses: JSON
`{"error", "detail"}` for the API, an alert (htmx) or the error page for the pages."""

from __future__ import annotations

from flask import Flask, Response, current_app, jsonify, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from ..domain.errors import (
    ConflictInFlight,
    DomainError,
    IdempotencyKeyReused,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    NotPermitted,
    OfferDeadline,
    StaleBooking,
    TransitionNotAllowed,
    WindowPassed,
)
from ..extensions import db
from .htmx import alert_response, is_htmx

# Most specific first: ProviderBusy is a NotPermitted, so it needs no row of its own; a window
# that has passed is well-formed input the rules refuse (422), unlike malformed input (400).
STATUS_FOR_ERROR: tuple[tuple[type[DomainError], int], ...] = (
    (NotAuthenticated, 401),
    (WindowPassed, 422),
    (InvalidInput, 400),
    (TransitionNotAllowed, 400),
    (NotPermitted, 403),
    (NotFound, 404),
    (StaleBooking, 409),
    (OfferDeadline, 409),
    (ConflictInFlight, 409),
    (IdempotencyKeyReused, 422),
)

RETRY_AFTER_SECONDS = 5
# Database faults that mean "not now" (unreachable, locked past the busy timeout), not "bug".
UNAVAILABLE_ERRORS = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
)
UNAVAILABLE_DETAIL = (
    "The database is unavailable right now; nothing was changed. Try again shortly."
)


def status_for(error: DomainError) -> int:
    for error_type, status in STATUS_FOR_ERROR:
        if isinstance(error, error_type):
            return status
    return 400


def wants_json() -> bool:
    return request.blueprint in ("api", "health") or request.path.startswith("/api/")


def json_error(status: int, error: str, detail: str, **extra) -> Response:
    """The API's error body (ErrorSchema): `error` for machines, `detail` for people."""
    response = jsonify({"error": error, "detail": detail, **extra})
    response.status_code = status
    return response


def error_page(detail: str, status: int):
    """An error on a page: an alert for htmx (never a whole page swapped into a card), else
    the error page."""
    if is_htmx():
        return alert_response(detail, status)
    return render_template("error.html", status=status, detail=detail), status


def page_refusal(error: DomainError):
    """A domain error on a page: the error page, or an alert for htmx. (The API answers its own
    in JSON, api.errors; a refused card action shows inside its card, web.cards.)"""
    return error_page(error.detail, status_for(error))


def unavailable_response():
    """A database fault: 503 with a retry hint, never a stack trace."""
    if wants_json():
        response = json_error(503, "unavailable", UNAVAILABLE_DETAIL)
    else:
        response = Response(
            render_template("error.html", status=503, detail=UNAVAILABLE_DETAIL), status=503
        )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(DomainError, page_refusal)

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException):
        status = error.code or 500
        if status < 400:  # redirects raised as exceptions pass through untouched
            return error
        if not wants_json():
            return error_page(error.description or error.name, status)
        name = error.name.lower().replace(" ", "_")
        response = json_error(status, name, error.description or error.name)
        for header in ("Allow", "Retry-After"):
            if header in error.get_response().headers:
                response.headers[header] = error.get_response().headers[header]
        return response

    @app.errorhandler(CSRFError)
    def csrf_failed(error: CSRFError):
        # A form from a page whose session has ended (its token went with the session) is
        # answered as that: the person is told to log in again, not that the form is forged.
        if not current_user.is_authenticated and request.endpoint != "auth.login":
            return current_app.login_manager.unauthorized()
        return error_page(
            "This form has expired or did not come from this site; reload the page and try again.",
            400,
        )

    def handle_database_unavailable(error):
        db.session.rollback()
        app.logger.warning("database unavailable: %s", error)
        return unavailable_response()

    for error_type in UNAVAILABLE_ERRORS:
        app.register_error_handler(error_type, handle_database_unavailable)

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception):
        app.logger.exception("unhandled error")
        db.session.rollback()
        detail = "Something went wrong on our side; nothing was changed."
        if wants_json():
            return json_error(500, "internal_error", detail)
        return render_template("error.html", status=500, detail=detail), 500

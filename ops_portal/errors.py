"""The one place where domain errors, HTTP errors and database faults become responses."""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template, request
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from .domain.errors import (
    ConflictInFlight,
    DomainError,
    IdempotencyKeyReused,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    NotPermitted,
    StaleBooking,
    TransitionNotAllowed,
)
from .extensions import db

# Most specific first: ProviderBusy is a NotPermitted, so it needs no row of its own.
STATUS_FOR_ERROR: tuple[tuple[type[DomainError], int], ...] = (
    (NotAuthenticated, 401),
    (InvalidInput, 400),
    (TransitionNotAllowed, 400),
    (NotPermitted, 403),
    (NotFound, 404),
    (StaleBooking, 409),
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


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def handle_domain_error(error: DomainError):
        status = status_for(error)
        if wants_json():
            extra = {}
            if error.booking is not None:
                from .api.schemas import booking_only

                extra["booking"] = booking_only.dump(error.booking)
            response = json_error(status, error.code, error.detail, **extra)
            if status == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="ops-portal"'
            return response
        page_handler = app.extensions.get("ops_portal.page_error_handler")
        if page_handler is not None:
            return page_handler(error, status)
        return render_template("error.html", status=status, detail=error.detail), status

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException):
        if wants_json():
            name = error.name.lower().replace(" ", "_")
            response = json_error(error.code or 500, name, error.description or error.name)
            for header in ("Allow", "Retry-After"):
                if header in error.get_response().headers:
                    response.headers[header] = error.get_response().headers[header]
            return response
        page_handler = app.extensions.get("ops_portal.page_http_error")
        return page_handler(error) if page_handler is not None else error

    def handle_database_unavailable(error):
        db.session.rollback()
        app.logger.warning("database unavailable: %s", error)
        detail = "The database is unavailable right now; nothing was changed. Try again shortly."
        if wants_json():
            response = json_error(503, "unavailable", detail)
        else:
            response = Response(
                render_template("error.html", status=503, detail=detail), status=503
            )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

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

"""How the API answers a refusal: JSON `{"error", "detail"}` with the status the one mapping
gives, and the booking as it now is when the refusal concerns one the caller may see."""

from __future__ import annotations

from flask import g

from ..domain.errors import DomainError
from ..http.errors import json_error, status_for
from .schemas import SeenBooking, booking_only


def json_refusal(error: DomainError):
    status = status_for(error)
    extra = {}
    if error.booking is not None and "actor" in g:
        extra["booking"] = booking_only.dump(SeenBooking(error.booking, g.actor))
    if getattr(error, "field", None):
        extra["field"] = error.field
    response = json_error(status, error.code, error.detail, **extra)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="ops-portal"'
    return response


def register_refusals(blueprint) -> None:
    """Refusals raised by the API's views and its authentication answer as JSON."""
    blueprint.register_error_handler(DomainError, json_refusal)

"""Domain errors with business names. One place (ops_portal.http.errors) maps them to
HTTP answers."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any


class DomainError(Exception):
    """A request the rules refuse. `booking` (when set) is the booking as it now is; `code` names
    the kind of refusal for machines (the API's `error` field)."""

    code = "refused"

    def __init__(self, detail: str, *, booking: Any = None):
        super().__init__(detail)
        self.detail = detail
        self.booking = booking


class InvalidInput(DomainError):
    """The request itself is malformed: a missing, mistyped or out-of-range field. `field`
    (when known) names it, so a form can show the message beside it."""

    code = "invalid_input"

    def __init__(self, detail: str, *, booking: Any = None, field: str | None = None):
        super().__init__(detail, booking=booking)
        self.field = field


class WindowPassed(InvalidInput):
    """A booking asked for an arrival window that has already begun."""

    code = "window_passed"


class TransitionNotAllowed(DomainError):
    """The lifecycle table has no such move from the booking's current status."""

    code = "transition_not_allowed"


class NotPermitted(DomainError):
    """The actor's role or relation to the booking does not allow this."""

    code = "not_permitted"


class ProviderBusy(NotPermitted):
    """Assign to a provider who is not AVAILABLE."""

    code = "provider_busy"


class ProviderOffDuty(NotPermitted):
    """Assign to a provider who is off duty (a force-assign may still)."""

    code = "provider_off_duty"


class ServiceNotOffered(NotPermitted):
    """Assign to a provider who does not do the booking's service."""

    code = "service_not_offered"


class OfferDeadline(DomainError):
    """An action the offer's deadline does not allow now. The deadline is told in the zone of
    whoever reads it (`worded`); `detail` tells it in UTC."""

    words = ""  # "{time}" is the deadline's time of day

    def __init__(self, deadline: datetime, *, booking: Any = None):
        self.deadline = deadline
        super().__init__(self.worded(UTC) + " UTC", booking=booking)

    def worded(self, zone: tzinfo) -> str:
        return self.words.format(time=self.deadline.astimezone(zone).strftime("%H:%M"))


class OfferExpired(OfferDeadline):
    """A provider answers an offer after its deadline: it has lapsed."""

    code = "offer_expired"
    words = "This offer expired at {time}"


class OfferStillOpen(OfferDeadline):
    """The offer is expired before its deadline: its provider may still answer."""

    code = "offer_still_open"
    words = "This offer is open until {time}"


class NotFound(DomainError):
    """No such booking, provider or user."""

    code = "not_found"


class StaleBooking(DomainError):
    """The client acted on a version of the booking that is no longer current."""

    code = "stale_booking"


class ConflictInFlight(DomainError):
    """A request with the same idempotency key is still being processed."""

    code = "conflict_in_flight"


class NotAuthenticated(DomainError):
    """No valid credentials (API: a missing, unknown or revoked bearer token)."""

    code = "not_authenticated"


class IdempotencyKeyReused(DomainError):
    """An Idempotency-Key already used for a request with a different body."""

    code = "idempotency_key_reused"

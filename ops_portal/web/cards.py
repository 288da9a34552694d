"""How a booking card answers an action: the card for htmx (with the refusal inside it), the
regions of the page that show the booking too, and what was done in the page's live region;
or a 303 back to the person's home with the message flashed for that card."""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import flash, g, get_flashed_messages, make_response, redirect, render_template

from ..domain.errors import ConflictInFlight, DomainError, OfferDeadline, StaleBooking
from ..domain.lifecycle import Action, Actor, confirmation
from ..http.errors import status_for
from ..http.htmx import alert_response, is_htmx
from ..services import bookings
from .clock import display_zone
from .gates import current_actor, home_url
from .regions import cards_of_sending_page, regions_of_sending_page

CARD_MESSAGE_CATEGORY = "card-{}"
# Loads the booking for the card of the person who acted on it (see services.bookings).
LoadBooking = Callable[[Actor, int], object]


def card_response(booking, *, status: int = 200, error: str | None = None, done: str = ""):
    """The booking card for htmx, with the other regions of the sending page that show the
    booking (out of band) and, when an action went through, what it did."""
    html = render_template(
        "bookings/_card.html", booking=booking, card_error=error, **cards_of_sending_page()
    )
    html += regions_of_sending_page(booking)
    if done:
        html += render_template("_confirmation.html", confirmation=done, oob=True)
    return make_response(html, status)


def action_done(booking, action: Action):
    """The answer to an action that went through."""
    done = confirmation(action, booking.id, booking.provider.name if booking.provider else None)
    if is_htmx():
        response = card_response(booking, done=done)
        # Then the page redraws its lists, so the card moves to where it now belongs, and puts
        # the focus back on the card (or on where it went).
        acted = {"id": booking.id, "status": booking.status}
        response.headers["HX-Trigger-After-Settle"] = json.dumps(
            {"bookings-changed": None, "booking-acted": acted}
        )
        return response
    flash(f"{done}.", "success")
    return redirect(home_url(g.actor.role), 303)


def action_refused(error: DomainError, booking_id: int, load_booking: LoadBooking):
    """The answer to a refused action: inside the card acted on, which shows the booking as it
    now is; an alert when the person may no longer see that booking at all."""
    status = status_for(error)
    try:
        booking = load_booking(g.actor, booking_id)
    except DomainError:
        booking = None
    if is_htmx():
        if booking is None:
            return alert_response(error.detail, status)
        return card_response(booking, status=status, error=refusal_in_words(error, booking))
    if booking is None:
        flash(error.detail, "error")
    else:
        flash(refusal_in_words(error, booking), CARD_MESSAGE_CATEGORY.format(booking_id))
    return redirect(home_url(g.actor.role), 303)


def refusal_in_words(error: DomainError, booking) -> str:
    """The message for a person: a stale page is explained without version numbers, a press
    still being worked on without idempotency keys, an offer's deadline in the person's zone."""
    if isinstance(error, StaleBooking):
        return (
            f"This booking changed: now {booking.status}. It was updated after this page was "
            "shown, so nothing was done; check it before acting again."
        )
    if isinstance(error, ConflictInFlight):
        return (
            "Your earlier press of this button is still being worked on; wait a moment, then "
            "press again (it will not be done twice)."
        )
    if isinstance(error, OfferDeadline):
        return f"{error.worded(display_zone())}."
    return error.detail


def read_reasons(shown) -> None:
    """Reads why each rejected or failed booking of a page's cards is so, once for them all
    (latest_reason answers from it)."""
    g.setdefault("latest_reasons", {}).update(bookings.latest_reasons(current_actor(), list(shown)))


def latest_reason(booking) -> bookings.Explanation | None:
    """Why a rejected or failed booking's card says it is so, to a dispatcher; a card the page
    did not read it for (an action's answer, a booking's page) reads its own."""
    known = g.setdefault("latest_reasons", {})
    if booking.id not in known:
        known.update(bookings.latest_reasons(current_actor(), [booking]))
    return known[booking.id]


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

"""The one booking-action view every role blueprint mounts: POST /bookings/<id>/<action>.

It parses the card's form, calls the service once, and answers with the card. A refusal is
caught here and shown inside the card that was pressed (the card component re-renders itself,
as contact-app's archive component does); nothing else decides where it appears."""

from __future__ import annotations

from flask import Blueprint, abort, g

from ..domain.errors import DomainError, InvalidInput
from ..domain.lifecycle import LIFECYCLE, Action
from ..http.idempotency import idempotent
from ..services import bookings
from .cards import Extras, LoadBooking, action_done, action_refused
from .forms import ActionForm


def register_booking_actions(
    blueprint: Blueprint, load_booking: LoadBooking, extras: Extras | None = None
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
        try:
            return apply_action(booking_id, action)
        except DomainError as refusal:  # the form's key refused (in flight, or reused)
            return action_refused(refusal, booking_id, load_booking)

    @idempotent
    def apply_action(booking_id: int, action: Action):
        try:
            booking = perform_from_form(booking_id, action)
        except DomainError as refusal:  # an answer too: stored with the form's key
            return action_refused(refusal, booking_id, load_booking)
        return action_done(booking, action, extras)


def perform_from_form(booking_id: int, action: Action):
    form = ActionForm.for_action(action)
    if not form.validate():
        raise InvalidInput(form.first_error())
    return bookings.perform_action(
        g.actor,
        booking_id,
        action,
        provider_id=form.provider_id.data if LIFECYCLE[action].takes_provider else None,
        reason=form.reason.data or None,
        expected_version=form.version.data,
    )

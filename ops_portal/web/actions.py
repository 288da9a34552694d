"""The booking-action views every role blueprint mounts at /bookings/<id>/<action>: GET draws
the action's form inside its card (the provider picker, a reason, a confirmation), POST applies
it.

POST parses the card's form, calls the service once, and answers with the card. A refusal is
caught here and shown inside the card that was pressed (the card component re-renders itself,
as contact-app's archive component does); nothing else decides where it appears."""

from __future__ import annotations

from flask import Blueprint, abort, g, render_template, request

from ..domain.errors import DomainError, InvalidInput, TransitionNotAllowed
from ..domain.lifecycle import LIFECYCLE, Action
from ..http.errors import status_for
from ..http.htmx import is_htmx
from ..http.idempotency import idempotent
from ..services import bookings, dispatch
from .cards import LoadBooking, action_done, action_refused, card_response
from .clock import display_zone, request_now
from .forms import ActionForm
from .regions import page_cards, page_regions


def register_booking_actions(blueprint: Blueprint, load_booking: LoadBooking) -> None:
    """POST /bookings/<id>/<action> on a role blueprint: one view for every role."""
    # The booking's own pages (bookings/detail.html) show its timeline and name its status in
    # their heading too.
    booking_pages = (
        f"{blueprint.name}.booking_detail",
        f"{blueprint.name}.booking_timeline",
        f"{blueprint.name}.booking_action_form",
    )
    page_regions(*booking_pages)(booking_page_regions)
    page_cards(*booking_pages, timeline_open=True)

    @blueprint.get("/bookings/<int:booking_id>/timeline")
    def booking_timeline(booking_id: int):
        """A booking's timeline: the fragment a card fetches when it is opened, else the
        booking's page with the timeline open."""
        booking = bookings.get_booking(g.actor, booking_id)
        if is_htmx():
            return render_template("bookings/_timeline.html", booking=booking)
        return render_template("bookings/detail.html", booking=booking)

    @blueprint.get("/bookings/<int:booking_id>/<action_name>")
    def booking_action_form(booking_id: int, action_name: str):
        """One action's form, open in its booking's card: the fragment for htmx, else the
        booking's page."""
        action = action_named(action_name)
        try:
            booking = bookings.open_action(g.actor, booking_id, action)
        except TransitionNotAllowed as moved_on:
            # The booking moved on since its card was drawn: the card as it now is, saying why,
            # in place of the form (other refusals are error pages, as for any page).
            if not is_htmx():
                return render_template(
                    "bookings/detail.html", booking=moved_on.booking, card_error=moved_on.detail
                ), status_for(moved_on)
            response = card_response(
                moved_on.booking, status=status_for(moved_on), error=moved_on.detail
            )
            response.headers["HX-Retarget"] = f"#booking-{booking_id}"
            response.headers["HX-Reswap"] = "outerHTML"
            return response
        picker = (
            dispatch.provider_picker(
                g.actor,
                booking.id,
                action,
                request.args.get("q", ""),
                now=request_now(),
                zone=display_zone(),
            )
            if LIFECYCLE[action].takes_provider
            else None
        )
        if is_htmx():
            return render_template(
                "bookings/_action_details.html", booking=booking, action=action, picker=picker
            )
        return render_template(
            "bookings/detail.html", booking=booking, open_action=action, picker=picker
        )

    @blueprint.post("/bookings/<int:booking_id>/<action_name>")
    def booking_action(booking_id: int, action_name: str):
        """Apply one lifecycle action from a booking card's form."""
        action = action_named(action_name)
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
        return action_done(booking, action)


def booking_page_regions(booking, view_args: dict, _query) -> str:
    """A booking's page: its heading says the booking's status."""
    if view_args.get("booking_id") != booking.id:
        return ""
    return render_template("bookings/_detail_head.html", booking=booking, oob=True)


def action_named(name: str) -> Action:
    """The action a URL names; creating is not an action on a booking (404 like any other)."""
    try:
        action = Action(name)
    except ValueError:
        abort(404)
    if action is Action.CREATE:
        abort(404)
    return action


def perform_from_form(booking_id: int, action: Action):
    form = ActionForm.for_action(action)
    if not form.validate():
        raise InvalidInput(form.first_error())
    return bookings.perform_action(
        g.actor,
        booking_id,
        action,
        provider_id=form.provider_id.data if LIFECYCLE[action].takes_provider else None,
        reason=form.given_reason(),
        expected_version=form.version.data,
    )

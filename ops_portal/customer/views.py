"""Customer pages: parse, call one service, render."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from ..domain.errors import InvalidInput
from ..domain.lifecycle import Role
from ..live import live_page
from ..services import bookings
from ..web.actions import register_booking_actions
from ..web.gates import fragment_of, gate_blueprint
from ..web.params import cursor_arg
from .forms import NewBookingForm

customer = Blueprint("customer", __name__, url_prefix="/customer")
gate_blueprint(customer, Role.CUSTOMER)
register_booking_actions(customer, bookings.get_booking)


@customer.get("/")
@live_page("bookings")
def index():
    """My bookings, newest first."""
    window = bookings.customer_bookings(g.actor, cursor=cursor_arg())
    return render_template("customer/index.html", window=window)


@customer.get("/bookings")
@fragment_of("customer.index")
def bookings_region():
    """My bookings alone (the same page of them), for the page's own polling."""
    window = bookings.customer_bookings(g.actor, cursor=cursor_arg())
    return render_template("customer/_bookings.html", window=window)


@customer.route("/bookings/new", methods=["GET", "POST"])
def new_booking():
    """Request a job; `?again=<id>` starts from an earlier booking of mine."""
    again = request.args.get("again", type=int)
    if again is not None and request.method == "GET":
        form = NewBookingForm.again(bookings.get_booking(g.actor, again))
    else:
        form = NewBookingForm()
    if form.validate_on_submit():
        start, end = form.window()
        try:
            booking = bookings.create_booking(
                g.actor,
                service=form.service.data,
                address=form.address.data,
                window_start=start,
                window_end=end,
                notes=form.notes.data or "",
                customer_phone=form.customer_phone.data or "",
            )
        except InvalidInput as error:
            # The service's rules (no control characters, a window still ahead, …): beside
            # the field, with the form kept for correcting, as WTForms' own messages are.
            if error.field == "window_start":
                field = form.window_field()
            elif error.field in form:
                field = form[error.field]
            else:
                raise
            message = error.detail[:1].upper() + error.detail[1:]  # "Notes must not …"
            field.errors = [*field.errors, message]
        else:
            flash(f"Booking #{booking.id} requested: we are finding you a provider.", "success")
            return redirect(url_for("customer.index"), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("customer/new.html", form=form, again=again), status


@customer.get("/bookings/<int:booking_id>")
def booking_detail(booking_id: int):
    """One of my bookings with its timeline."""
    booking = bookings.get_booking(g.actor, booking_id)
    return render_template("bookings/detail.html", booking=booking)

"""Provider pages: the work queue (accept, reject with a reason, complete), a page for each job,
and the history of jobs finished."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for

from ..domain.lifecycle import Role
from ..domain.numbers import LARGEST_ID, parse_whole_number
from ..http.htmx import is_htmx
from ..live import live_page
from ..services import bookings, duty, providers
from ..web.actions import register_booking_actions
from ..web.forms import DutyForm
from ..web.gates import fragment_of, gate_blueprint
from ..web.params import cursor_arg
from ..web.regions import page_cards

provider = Blueprint("provider", __name__, url_prefix="/provider")
gate_blueprint(provider, Role.PROVIDER)
register_booking_actions(provider, bookings.booking_for_card)
# The queue's cards stand under its sections' headings.
page_cards("provider.queue", card_heading=3)


@provider.get("/")
@live_page("queue")
def queue():
    """My work queue: the current job first."""
    items = bookings.provider_queue(g.actor, g.actor.user_id)
    me = providers.provider_availability(g.actor, g.actor.user_id)
    return render_template("provider/queue.html", items=items, me=me)


@provider.post("/duty")
def set_duty():
    """Go on or off duty: the toggle redrawn for htmx, else back to the queue."""
    form = DutyForm()
    if form.validate():
        duty.set_duty(g.actor, g.actor.user_id, form.on_duty.data == "on", reason=form.reason.data)
    me = providers.provider_availability(g.actor, g.actor.user_id)
    if is_htmx():
        error = None if not form.errors else "Choose on or off duty, then try again."
        status = 400 if error else 200
        return render_template("provider/_duty.html", me=me, error=error), status
    return redirect(url_for("provider.queue"), 303)


@provider.get("/queue")
@fragment_of("provider.queue")
def queue_items():
    """The queue and the duty toggle, for the page's own redraws; `shown` names the jobs the
    page showed, so the answer can say in a sentence what changed."""
    shown = [
        parse_whole_number(raw, field="shown", ceiling=LARGEST_ID)
        for raw in request.args.getlist("shown")
    ]
    items = bookings.provider_queue(g.actor, g.actor.user_id)
    me = providers.provider_availability(g.actor, g.actor.user_id)
    return render_template("provider/_queue_redraw.html", items=items, shown=shown, me=me)


@provider.get("/bookings/<int:booking_id>")
def booking_detail(booking_id: int):
    """One of my jobs, now or finished, with its timeline."""
    booking = bookings.get_booking(g.actor, booking_id)
    return render_template("bookings/detail.html", booking=booking)


@provider.get("/history")
def history():
    """The jobs I finished, the latest first."""
    window = bookings.provider_history(g.actor, g.actor.user_id, cursor=cursor_arg())
    return render_template("provider/history.html", window=window)

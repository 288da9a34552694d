"""Provider pages: the work queue (accept, reject with a reason, complete)."""

from __future__ import annotations

from flask import Blueprint, g, render_template, request

from ..domain.lifecycle import Role
from ..domain.numbers import LARGEST_ID, parse_whole_number
from ..services import bookings
from ..web.actions import register_booking_actions
from ..web.gates import gate_blueprint

provider = Blueprint("provider", __name__, url_prefix="/provider")
gate_blueprint(provider, Role.PROVIDER)
register_booking_actions(provider, bookings.booking_for_card)


@provider.get("/")
def queue():
    """My work queue: the current job first."""
    items = bookings.provider_queue(g.actor, g.actor.user_id)
    return render_template("provider/queue.html", items=items)


@provider.get("/queue")
def queue_items():
    """The queue alone, for the page's own polling; `shown` names the jobs the page showed, so
    the answer can say in a sentence what changed."""
    shown = [
        parse_whole_number(raw, field="shown", ceiling=LARGEST_ID)
        for raw in request.args.getlist("shown")
    ]
    items = bookings.provider_queue(g.actor, g.actor.user_id)
    return render_template("provider/_queue.html", items=items, shown=shown)

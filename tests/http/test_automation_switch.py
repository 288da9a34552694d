"""The board's automation switch: a dispatcher pauses and resumes the SYSTEM dispatcher for every
process; while paused a pass places nothing; bad input is refused."""

from __future__ import annotations

import re

from ops_portal.domain.lifecycle import Status
from ops_portal.extensions import db
from ops_portal.models import utcnow
from ops_portal.services import automation, bookings, dispatcher
from tests.support.pages import HTMX, Page


def paused() -> bool:
    db.session.rollback()  # read what the requests committed
    return automation.automation_state().paused


def test_a_dispatcher_pauses_and_resumes_automation_from_the_board(people, login):
    admin = login("admin")
    board = Page(admin.get("/admin/"))
    assert "Automation: <strong>on</strong>" in board.html
    booking = bookings.create_booking(people.owner, service="Leaking tap")

    sent = admin.post("/admin/automation", data={"csrf_token": board.csrf_token, "paused": "1"})
    assert sent.status_code == 303 and paused()
    assert "Automation: <strong>paused</strong>" in Page(admin.get("/admin/")).html
    assert dispatcher.run_pass(utcnow()).paused
    assert bookings.get_booking(people.admin, booking.id).status == Status.PENDING

    resumed = admin.post(
        "/admin/automation", data={"csrf_token": board.csrf_token, "paused": "0"}, headers=HTMX
    )
    assert resumed.status_code == 200 and "Pause automation" in resumed.text
    assert not paused()
    assert dispatcher.run_pass(utcnow()).offered


def test_the_switch_refuses_anything_but_1_or_0(login):
    admin = login("admin")
    board = Page(admin.get("/admin/"))
    refused = admin.post(
        "/admin/automation", data={"csrf_token": board.csrf_token, "paused": "yes"}
    )
    assert refused.status_code == 400 and "paused must be 1 or 0" in refused.text
    assert not paused()


def test_a_board_redraw_brings_the_switch_and_todays_figures_as_they_are_now(people, login):
    """Another dispatcher paused automation and a customer booked: the board's next redraw (the
    live page's, or its safety poll's) carries the switch and the figures beside its lanes."""
    admin = login("admin")
    automation.set_paused(people.admin, True)
    bookings.create_booking(people.owner, service="Leaking tap")

    redraw = admin.get("/admin/board", headers=HTMX).text
    switch = re.search(r'<form[^>]*id="automation"[^>]*>', redraw)[0]
    figures = re.search(r'<section[^>]*id="metrics"[^>]*>', redraw)[0]
    assert 'hx-swap-oob="true"' in switch and 'hx-swap-oob="true"' in figures
    assert "Automation: <strong>paused</strong>" in redraw
    assert re.search(r"<dt>Waiting</dt><dd>1\b", redraw)

"""Duty and services on the pages: a provider's toggle on their queue (with and without htmx), a
dispatcher's on the board's panel and the provider's page, the duty log, the services form, and
the assign picker saying why each provider can or cannot take a booking."""

from __future__ import annotations

import re

import sqlalchemy as sa

from ops_portal.domain.lifecycle import Status
from ops_portal.extensions import db
from ops_portal.models import Provider
from ops_portal.services import duty, skills
from tests.support.builders import booking_in
from tests.support.pages import HTMX, Page


def services_of(cast, provider_id: int) -> list[str]:
    db.session.rollback()
    return skills.services_of(cast.admin, provider_id)


def on_duty(provider_id: int) -> bool:
    db.session.rollback()
    return db.session.scalar(sa.select(Provider.on_duty).where(Provider.id == provider_id))


def test_a_provider_goes_off_and_on_duty_with_the_queue_pages_toggle_without_javascript(
    people, login
):
    pat = login("provider")
    page = Page(pat.get("/provider/"))
    assert "You're on duty" in page.text and "Go off duty" in page.text

    sent = pat.post("/provider/duty", data={"csrf_token": page.csrf_token, "on_duty": "off"})
    assert sent.status_code == 303 and sent.headers["Location"].endswith("/provider/")
    assert not on_duty(people.provider.user_id)
    again = Page(pat.get("/provider/"))
    assert "You're off duty" in again.text and "Go on duty" in again.text

    redrawn = Page(
        pat.post(
            "/provider/duty", data={"csrf_token": page.csrf_token, "on_duty": "on"}, headers=HTMX
        )
    )
    assert redrawn.status == 200 and redrawn.is_fragment
    assert "You're on duty" in redrawn.text
    assert on_duty(people.provider.user_id)
    log = duty.duty_log(people.provider.user_id)
    assert [(e.on_duty, e.actor_role, e.source) for e in log] == [
        (False, "PROVIDER", "web"),
        (True, "PROVIDER", "web"),
    ]


def test_a_dispatcher_sets_a_provider_off_duty_from_the_board_and_reads_the_duty_log(people, login):
    admin = login("admin")
    board = Page(admin.get("/admin/"))
    assert "0 off duty" in board.text
    pat = people.provider.user_id
    answer = Page(
        admin.post(
            f"/admin/providers/{pat}/duty",
            data={"csrf_token": board.csrf_token, "on_duty": "off", "reason": "Van broke down"},
            headers=HTMX,
        )
    )
    assert answer.status == 200 and answer.is_fragment
    assert "1 off duty" in answer.text and "Off duty" in answer.text

    detail = Page(admin.get(f"/admin/providers/{pat}"))
    assert "Pat Provider is off duty." in detail.text
    assert "Van broke down" in detail.text and "(dispatcher)" in detail.text

    back = admin.post(
        f"/admin/providers/{pat}/duty",
        data={"csrf_token": board.csrf_token, "on_duty": "on", "next": "provider"},
    )
    assert back.status_code == 303 and back.headers["Location"].endswith(f"/admin/providers/{pat}")
    assert on_duty(pat)


def test_a_dispatcher_sets_a_providers_services_and_an_unknown_one_is_refused_keeping_the_ticks(
    people, login
):
    admin = login("admin")
    pat = people.provider.user_id
    page = Page(admin.get(f"/admin/providers/{pat}"))
    saved = admin.post(
        f"/admin/providers/{pat}/services",
        data={"csrf_token": page.csrf_token, "services": ["Plumbing", "Leaking tap"]},
    )
    assert saved.status_code == 303
    assert services_of(people, pat) == ["Plumbing", "Leaking tap"]
    assert (
        "Services saved: Plumbing, Leaking tap." in Page(admin.get(f"/admin/providers/{pat}")).text
    )

    refused = Page(
        admin.post(
            f"/admin/providers/{pat}/services",
            data={"csrf_token": page.csrf_token, "services": ["Tiling", "Juggling"]},
        )
    )
    assert refused.status == 400 and "Unknown service: Juggling" in refused.text
    assert 'value="Tiling" checked' in refused.html
    assert services_of(people, pat) == ["Plumbing", "Leaking tap"]


def test_the_assign_picker_says_why_each_provider_can_or_cannot_take_the_booking(people, login):
    booking = booking_in(people, Status.PENDING)  # Home cleaning
    pat, quinn = people.provider.user_id, people.other_provider.user_id
    skills.set_services(people.admin, quinn, ["Plumbing"])
    admin = login("admin")
    picker = Page(admin.get(f"/admin/bookings/{booking.id}/assign", headers=HTMX))
    assert "Pat Provider — available, idle" in picker.text
    assert "Quinn Provider — available, idle" in picker.text
    assert f"doesn't do {booking.service}" in picker.text
    assert f'<option value="{quinn}" disabled>' in picker.html
    assert f'<option value="{pat}">' in picker.html


def test_the_queues_redraw_brings_the_duty_a_dispatcher_set_meanwhile(people, login):
    pat = login("provider")
    assert "Go off duty" in pat.get("/provider/").text
    duty.set_duty(people.admin, people.provider.user_id, False, reason="Van in the garage")

    redraw = Page(pat.get("/provider/queue", headers=HTMX))
    toggle = re.search(r'<form[^>]*id="duty"[^>]*>', redraw.html)[0]
    assert 'hx-swap-oob="true"' in toggle and "duty-off" in toggle
    assert "Go on duty" in redraw.html

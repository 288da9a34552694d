"""Sessions that end cleanly: after a logout in another tab, an expired or a disabled session,
the next poll leads to the login page, which says "You were logged out" and comes back to the
page the person was on (never to an htmx fragment); an action says the session ended, for the
card that was pressed; `next` names only pages, and a fragment opened without htmx redirects to
its page. Through the Flask test client, CSRF on, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from ops_portal.domain.lifecycle import Action, Status
from ops_portal.extensions import db
from ops_portal.models import User
from ops_portal.services import accounts
from tests.support.builders import booking_in
from tests.support.pages import HTMX, AuthActions, Page, redirect_target, split_url

LOGGED_OUT = "You were logged out"
SESSION_ENDED = "Your session has ended"
CSRF_MESSAGE = "This form has expired"


@pytest.mark.parametrize(
    ("who", "next_", "lands_on"),
    [
        ("admin", "/admin/board", "/admin/"),  # the board's poll fragment: its page
        ("admin", "/admin/board?q=Zoe&service=Plumbing", "/admin/?q=Zoe&service=Plumbing"),
        ("admin", "/admin/?q=Zoe", "/admin/?q=Zoe"),
        ("admin", "/admin/archive", "/admin/archive"),
        ("provider", "/provider/queue", "/provider/"),  # the queue's poll fragment
        ("admin", "/api/bookings/1", "/admin/"),  # not a page: home
        ("admin", "/health", "/admin/"),
        ("admin", "/login?next=/admin/archive", "/admin/"),
        ("admin", "/no/such/page", "/admin/"),
        ("admin", "//evil.example/admin/", "/admin/"),
        ("admin", "https://evil.example/admin/", "/admin/"),
    ],
)
def test_login_returns_only_to_a_full_page(auth, who, next_, lands_on):
    response = auth.login(who, next=next_)
    assert response.status_code == 303
    assert response.headers["Location"] == lands_on


@pytest.mark.parametrize(
    ("who", "fragment", "page"),
    [
        ("admin", "/admin/board", "/admin/"),
        ("admin", "/admin/board?service=Plumbing", "/admin/?service=Plumbing"),
        ("provider", "/provider/queue", "/provider/"),
    ],
)
def test_a_fragment_opened_without_htmx_redirects_to_its_page(login, who, fragment, page):
    client = login(who)
    response = client.get(fragment)
    assert response.status_code == 302
    assert response.headers["Location"] == page
    page_answer = client.get(fragment, follow_redirects=True)
    assert "<html" in page_answer.get_data(as_text=True)
    # ... while htmx still gets the fragment
    assert "<html" not in client.get(fragment, headers=HTMX).get_data(as_text=True)


def test_a_visitor_sent_to_log_in_from_a_fragment_returns_to_its_page(app, people):
    client = app.test_client()
    path, query = redirect_target(client.get("/admin/board?q=Zoe"))
    assert (path, query["next"]) == ("/login", ["/admin/?q=Zoe"])
    assert LOGGED_OUT not in client.get("/login").get_data(as_text=True)  # never logged in


def end_session(client, people, how: str) -> None:
    """End the client's session the way a person meets it."""
    if how == "logout in another tab":  # the same browser: the same cookies
        AuthActions(client).logout()
    elif how == "ended elsewhere":  # a password change or "log out everywhere" elsewhere
        accounts.end_sessions(people.admin.user_id)
    else:  # the account was disabled
        db.session.get(User, people.admin.user_id).is_enabled = False
        db.session.commit()


HOW = ["logout in another tab", "ended elsewhere", "account disabled"]


@pytest.mark.parametrize("how", HOW)
def test_a_poll_after_the_session_ended_leads_to_login_and_back_to_the_page(login, people, how):
    client = login("admin")
    end_session(client, people, how)
    poll = client.get(
        "/admin/board?q=Zoe",
        headers={**HTMX, "HX-Current-URL": "http://localhost/admin/?q=Zoe"},
    )
    assert poll.status_code == 401
    path, query = split_url(poll.headers["HX-Redirect"])
    assert (path, query) == ("/login", {"next": ["/admin/?q=Zoe"]})
    login_page = client.get(poll.headers["HX-Redirect"]).get_data(as_text=True)
    assert LOGGED_OUT in login_page
    assert LOGGED_OUT not in client.get("/login").get_data(as_text=True)  # said once
    if how == "account disabled":
        return
    back = AuthActions(client).login("admin", next="/admin/?q=Zoe")
    assert back.headers["Location"] == "/admin/?q=Zoe"


@pytest.mark.parametrize("how", HOW)
def test_an_action_after_the_session_ended_says_so_for_its_card(login, people, how):
    client = login("admin")
    board = Page(client.get("/admin/"))
    booking_id = booking_in(people, Status.REJECTED).id
    end_session(client, people, how)
    response = client.post(
        f"/admin/bookings/{booking_id}/retry",
        data={"csrf_token": board.csrf_token, "confirm": "y"},
        headers={**HTMX, "HX-Current-URL": "http://localhost/admin/?service=Plumbing"},
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 401
    assert SESSION_ENDED in body and CSRF_MESSAGE not in body
    assert 'class="card-error"' in body  # the card's error slot, not the page's alerts
    assert "HX-Retarget" not in response.headers and "HX-Redirect" not in response.headers
    assert "/login?next=/admin/?service%3DPlumbing" in body


def test_a_plain_form_post_after_the_session_ended_leads_to_login_and_back(login, people):
    client = login("admin")
    board = Page(client.get("/admin/"))
    booking_id = booking_in(people, Status.REJECTED).id
    AuthActions(client).logout()
    response = client.post(
        f"/admin/bookings/{booking_id}/retry",
        data={"csrf_token": board.csrf_token, "confirm": "y"},
        headers={"Referer": "http://localhost/admin/lanes/rejected"},
    )
    path, query = redirect_target(response)
    assert (path, query) == ("/login", {"next": ["/admin/lanes/rejected"]})
    assert LOGGED_OUT in client.get(response.headers["Location"]).get_data(as_text=True)


def test_a_forged_form_from_a_live_session_still_hears_about_the_form(login, people):
    client = login("admin")
    booking_id = booking_in(people, Status.REJECTED).id
    response = client.post(
        f"/admin/bookings/{booking_id}/{Action.RETRY.value}",
        data={"csrf_token": "forged", "confirm": "y"},
        headers=HTMX,
    )
    assert response.status_code == 400
    assert CSRF_MESSAGE in response.get_data(as_text=True)

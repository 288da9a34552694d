"""Who may open which page (docs/access.md): every page × every role and anonymous, through
the Flask test client with real logins; and the login / logout pages themselves."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ops_portal.domain.lifecycle import (
    ACTIVE,
    BOOKING_ACTIONS,
    LIFECYCLE,
    TERMINAL,
    Actor,
    BookingFacts,
    Role,
    Status,
    allowed_actions,
)
from ops_portal.extensions import db
from ops_portal.models import User
from tests.support.builders import booking_in, snapshot
from tests.support.pages import HOME, HTMX, AuthActions, Page, redirect_target, split_url
from tests.support.people import PASSWORD, PERSON

# Every page, by the role whose page it is; {own} is a booking of the customer "owner".
PAGES = {
    "/customer/": "owner",
    "/customer/bookings/new": "owner",
    "/customer/bookings/{own}": "owner",
    "/provider/": "provider",
    "/provider/queue": "provider",
    "/admin/": "admin",
    "/admin/board": "admin",
    "/admin/archive": "admin",
    "/admin/bookings/{own}": "admin",
}
# Regions a page polls, htmx-only: asked without htmx (or as a login's `next`) they mean their page.
FRAGMENT_PAGES = {
    "/provider/queue": "/provider/",
    "/admin/board": "/admin/",
    "/customer/bookings": "/customer/",
}


@pytest.fixture
def own_booking(people):
    """A booking of the customer "owner", assigned to "provider" (so every page has content)."""
    return booking_in(people, Status.ASSIGNED).id


def page_urls(booking_id: int) -> dict[str, str]:
    return {url.format(own=booking_id): role for url, role in PAGES.items()}


def test_every_page_answers_200_to_its_own_role_and_403_to_the_others(login, own_booking):
    pages = page_urls(own_booking)
    answers, expected = {}, {}
    for visitor in ("owner", "provider", "admin"):
        client = login(visitor)
        for url, owner in pages.items():
            headers = HTMX if url in FRAGMENT_PAGES else {}
            answers[visitor, url] = client.get(url, headers=headers).status_code
            expected[visitor, url] = 200 if owner == visitor else 403
    assert answers == expected


def test_anonymous_visitors_are_sent_to_log_in_with_the_page_to_come_back_to(auth, own_booking):
    for url in page_urls(own_booking):
        response = auth.client.get(url)
        path, query = redirect_target(response)
        assert (path, query.get("next")) == ("/login", [FRAGMENT_PAGES.get(url, url)]), url


def test_anonymous_htmx_requests_get_401_and_an_hx_redirect_to_the_login_page(auth, own_booking):
    for url in page_urls(own_booking):
        response = auth.client.get(url, headers=HTMX)
        assert response.status_code == 401, url
        path, query = split_url(response.headers["HX-Redirect"])
        assert (path, query.get("next")) == ("/login", [FRAGMENT_PAGES.get(url, url)]), url


def test_logging_in_from_the_redirect_lands_on_the_page_first_asked_for(auth):
    _, query = redirect_target(auth.client.get("/customer/bookings/new?from=mail"))
    response = auth.login("owner", next=query["next"][0])
    assert redirect_target(response)[0] == "/customer/bookings/new"
    assert response.headers["Location"] == "/customer/bookings/new?from=mail"
    assert auth.client.get(response.headers["Location"]).status_code == 200


def test_a_customer_gets_403_on_another_customers_booking_and_never_sees_its_card(
    login, own_booking
):
    other = login("other_customer")
    refused = Page(other.get(f"/customer/bookings/{own_booking}"))
    assert refused.status == 403
    assert own_booking not in refused.card_ids
    assert "Olive" not in refused.text and "1 Test St" not in refused.text
    assert own_booking not in Page(other.get("/customer/")).card_ids
    assert own_booking in Page(login("owner").get("/customer/")).card_ids


def test_a_booking_that_does_not_exist_is_a_404_page_not_a_server_error(login):
    admin = login("admin")
    for booking_id in (999_999, 2**31, 10**30):
        response = admin.get(f"/admin/bookings/{booking_id}")
        assert response.status_code == 404, booking_id
        assert "<html" in response.get_data(as_text=True)


def test_a_provider_sees_only_the_jobs_assigned_to_them_in_their_queue(people, login):
    finished = booking_in(people, Status.COMPLETED).id  # keeps provider_id, but is not work
    mine = booking_in(people, Status.ASSIGNED).id
    theirs = booking_in(people, Status.IN_PROGRESS, provider=people.other_provider).id
    waiting = booking_in(people, Status.PENDING).id
    queues = {
        who: [
            Page(login(who).get(url, headers=headers)).card_ids
            for url, headers in (("/provider/", {}), ("/provider/queue", HTMX))
        ]
        for who in ("provider", "other_provider")
    }
    assert queues == {"provider": [[mine], [mine]], "other_provider": [[theirs], [theirs]]}
    assert waiting and finished  # made, and in nobody's queue


def test_a_provider_with_nothing_assigned_is_told_so(login):
    page = Page(login("provider").get("/provider/"))
    assert page.status == 200 and page.card_ids == []
    assert "Nothing assigned to you right now" in page.text


# ------------------------------------------------------------------------------ login and logout


def test_a_wrong_password_is_refused_with_a_message_and_logs_nobody_in(auth):
    response = auth.login("owner", password="not the password")
    page = Page(response)
    assert page.status == 400
    assert "Wrong email or password." in page.text
    assert redirect_target(auth.client.get("/customer/"))[0] == "/login"


def test_an_unknown_email_gets_the_same_answer_as_a_wrong_password(auth):
    unknown = Page(auth.login("nobody@example.com"))
    wrong = Page(auth.login("owner", password="not the password"))
    assert unknown.status == wrong.status == 400
    assert "Wrong email or password." in unknown.text


def test_a_login_post_without_the_csrf_token_is_refused(auth):
    response = auth.client.post(
        "/login", data={"email": PERSON["owner"].email, "password": PASSWORD}
    )
    assert response.status_code == 400
    assert redirect_target(auth.client.get("/customer/"))[0] == "/login"


def test_login_refuses_a_next_that_leaves_the_site_and_goes_home_instead(app, people):
    for next_url in (
        "//evil.com/",
        "/\\evil.com",
        "https://evil.com/customer/",
        "javascript:alert(1)",
        "/\t/evil.com",
        "evil.com",
        "",
    ):
        response = AuthActions(app.test_client()).login("owner", next=next_url)
        assert response.status_code == 303, next_url
        assert response.headers["Location"] == HOME["owner"], next_url


def test_login_follows_a_local_next_path(auth):
    response = auth.login("admin", next="/admin/archive?status=CANCELLED")
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/archive?status=CANCELLED"


def test_each_role_lands_on_its_own_home_page_after_login(app, people):
    for who in ("owner", "provider", "admin"):
        auth = AuthActions(app.test_client())
        response = auth.login(who)
        assert response.headers["Location"] == HOME[who]
        assert auth.client.get(HOME[who]).status_code == 200
        # Already logged in, the login page sends them home too.
        assert auth.client.get("/login").headers["Location"] == HOME[who]


def test_the_session_cookie_is_http_only_and_same_site_lax(auth):
    cookie = auth.login("owner").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_logout_is_post_only(login):
    client = login("owner")
    assert client.get("/logout").status_code == 405
    assert client.get("/customer/").status_code == 200


def test_logout_without_the_csrf_token_is_refused_and_the_session_lives_on(login):
    client = login("owner")
    assert client.post("/logout").status_code == 400
    assert client.get("/customer/").status_code == 200


def test_logout_ends_the_session_so_a_copy_of_the_old_cookie_no_longer_works(app, login):
    client = login("owner")
    old_cookie = client.get_cookie("session").value
    response = AuthActions(client).logout()
    assert redirect_target(response)[0] == "/login"
    assert ("success", "You are logged out.") in Page(client.get("/login")).alerts
    assert redirect_target(client.get("/customer/"))[0] == "/login"

    replay = app.test_client()
    replay.set_cookie("session", old_cookie)
    assert redirect_target(replay.get("/customer/"))[0] == "/login"


def test_logout_also_ends_a_keep_me_logged_in_cookie(app, auth):
    auth.login("owner", remember=True)
    remembered = auth.client.get_cookie("remember_token")
    assert remembered is not None
    fresh = app.test_client()  # a new browser session carrying only the remember-me cookie
    fresh.set_cookie("remember_token", remembered.value)
    assert fresh.get("/customer/").status_code == 200

    AuthActions(auth.client).logout()

    replay = app.test_client()
    replay.set_cookie("remember_token", remembered.value)
    assert redirect_target(replay.get("/customer/"))[0] == "/login"


def test_logout_ends_every_other_session_of_the_same_account_too(login):
    phone, laptop = login("provider"), login("provider")
    AuthActions(phone).logout()
    assert redirect_target(laptop.get("/provider/"))[0] == "/login"


def test_a_system_account_cannot_log_in_even_with_a_password_hash_in_the_database(auth):
    from ops_portal.services.accounts import password_hasher

    assert auth.login("system", password=PASSWORD).status_code == 400
    # SYSTEM accounts are created without a password; even a stray hash must not open the pages.
    db.session.execute(
        sa.update(User)
        .where(User.email == PERSON["system"].email)
        .values(password_hash=password_hasher().hash(PASSWORD))
    )
    db.session.commit()
    response = auth.login("system", password=PASSWORD)
    assert response.status_code == 400
    assert "Wrong email or password." in Page(response).text
    for url in ("/customer/", "/provider/", "/admin/"):
        assert redirect_target(auth.client.get(url))[0] == "/login"


# ------------------------------------------------------------------------ buttons from the table


def test_every_card_shows_exactly_the_buttons_the_lifecycle_table_allows_its_viewer(people, login):
    # Made in this order so each provider is free when a booking needs them.
    made = {
        status: booking_in(people, status, provider=people.by_name(provider)).id
        for status, provider in [
            (Status.COMPLETED, "provider"),
            (Status.CANCELLED, "provider"),
            (Status.PENDING, "provider"),
            (Status.REJECTED, "provider"),
            (Status.FAILED, "provider"),
            (Status.ASSIGNED, "provider"),
            (Status.IN_PROGRESS, "other_provider"),
        ]
    }
    facts = {
        status: BookingFacts(status, people.owner.user_id, snapshot(booking_id)[2])
        for status, booking_id in made.items()
    }
    pages = {
        "owner": ["/customer/", *[f"/customer/bookings/{b}" for b in made.values()]],
        "provider": ["/provider/"],
        "other_provider": ["/provider/"],
        "admin": ["/admin/", "/admin/archive", *[f"/admin/bookings/{b}" for b in made.values()]],
    }
    shown, expected = {}, {}
    for viewer, urls in pages.items():
        client = login(viewer)
        person = people.by_name(viewer)
        for url in urls:
            page = Page(client.get(url))
            assert page.status == 200, url
            for status, booking_id in made.items():
                if booking_id in page.card_ids:
                    shown.setdefault((viewer, status), {})[url] = page.actions(booking_id)
        for status, booking_id in made.items():
            actor = Actor(person.role, person.user_id)
            allowed = {a.value for a in allowed_actions(facts[status], actor)}
            where = {
                "owner": ["/customer/", f"/customer/bookings/{booking_id}"],
                "admin": [
                    *(["/admin/"] if status not in TERMINAL else []),
                    # The bookings list has every booking; failed ones are on the board too.
                    "/admin/archive",
                    f"/admin/bookings/{booking_id}",
                ],
            }.get(viewer)
            if where is None:  # a provider: their queue holds exactly their current jobs
                mine = status in ACTIVE and facts[status].provider_id == person.user_id
                where = ["/provider/"] if mine else []
                assert mine or not allowed, f"{viewer} may act on a booking not in their queue"
            if where:
                expected[viewer, status] = {url: allowed for url in where}
    assert shown == expected
    shown_actions = [actions for by_url in shown.values() for actions in by_url.values()]
    # Not vacuous: between them, the cards offer every action of the table a person may take
    # (automation's own, like expiring an offer, has no button).
    by_people = {a.value for a in BOOKING_ACTIONS if LIFECYCLE[a].roles - {Role.SYSTEM}}
    assert set().union(*shown_actions) == by_people
    # A customer never sees another customer's booking, in any status.
    other = login("other_customer")
    assert not set(made.values()) & set(Page(other.get("/customer/")).card_ids)
    for booking_id in made.values():
        assert other.get(f"/customer/bookings/{booking_id}").status_code == 403

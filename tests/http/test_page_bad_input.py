"""Hostile input on every page form, query string and id-taking URL (the pages, not the API).

Each case is its own parametrized test, so a failure names the form, the field and the value.
A refusal must be a 4xx with a message a person can read, never a 500, and must change nothing;
legitimate unicode (names, addresses, notes, reasons) must be accepted and shown back escaped.
The booking actions are derived from the lifecycle table, not listed by hand.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from markupsafe import escape

from ops_portal.domain.lifecycle import BOOKING_ACTIONS, LIFECYCLE, Action, Role, Status
from ops_portal.extensions import db
from ops_portal.models import Booking, BookingEvent
from ops_portal.services import accounts
from ops_portal.web.forms import CONFIRMED_ACTIONS
from tests.support.builders import booking_in, booking_state, count_bookings
from tests.support.pages import HOME, Page, booking_form
from tests.support.people import PASSWORD, PERSON

# Text a person may well type: must be stored as typed and shown back escaped.
LEGIT_TEXT = {
    "emoji": "Ring twice 🔔 the dog 🐕 is friendly",
    "rtl-marks": "\u200fשלום\u200e flat 3",
    "combining-marks": "Cafe\u0301 Zo\u0308e",
    "umlaut-name": "Ünal Öztürk",
    "html-metacharacters": '<b>bold</b> & "quotes" <script>alert(1)</script>',
    "tab": "gate\tcode 1234",
}
# A browser sends every newline typed into a <textarea> as CRLF; it is stored as "\n".
WINDOWS_NEWLINES = ("first line\r\nsecond line", "first line\nsecond line")

# Control characters (C0 other than tab and newline, DEL, C1): refused, never stored.
# PostgreSQL refuses NUL in text outright, the classic driver error behind a 500.
HOSTILE_TEXT = {
    "nul": "12 Canal\x00Street",
    "bell": "12 Canal\x07Street",
    "escape-sequence": "\x1b[31mred",
    "lone-carriage-return": "12 Canal\rStreet",
    "delete": "12 Canal\x7fStreet",
    "c1-next-line": "12 Canal\x85Street",
}
# Over MAX_CONTENT_LENGTH (64 KiB) in a form body: 413 before any view runs.
TOO_LARGE = "x" * 100_000
# Ids a URL or form may carry that name no row: past PostgreSQL's bigint, zero, negative, junk.
BAD_IDS = {
    "huge": str(10**20),
    "past-int32": str(2**31),
    "zero": "0",
    "negative": "-1",
    "non-numeric": "abc",
    "decimal": "1.5",
    "fullwidth-digits": "\uff11",
    "nul": "1\x00",
}
REFUSED = (400, 404, 413, 422)
REASON_FORM = Action.REJECT  # the provider's reject form: every control character is tried on it
ROLE_PEOPLE = {Role.CUSTOMER: "owner", Role.PROVIDER: "provider", Role.ADMIN: "admin"}
BLUEPRINT = {"owner": "customer", "provider": "provider", "admin": "admin"}


def assert_refused(response, *statuses: int) -> Page:
    """A 4xx page with a message (never a 500, never a bare status line)."""
    page = Page(response)
    assert page.status in (statuses or REFUSED), (page.status, page.text[:300])
    assert page.text.strip(), "the refusal says nothing"
    return page


def event_count() -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(BookingEvent))


def escaped(text: str) -> str:
    """How Jinja's autoescape writes `text` into a page."""
    return str(escape(text))


# ------------------------------------------------------------------------------ login


def login_post(auth, *, drop: str | None = None, next_url: str | None = None, **fields):
    token = Page(auth.client.get("/login")).csrf_token
    data = {"email": PERSON["owner"].email, "password": PASSWORD, "csrf_token": token, **fields}
    if drop:
        del data[drop]
    url = "/login" if next_url is None else "/login?" + f"next={next_url}"
    return auth.client.post(url, data=data)


def is_logged_in(client) -> bool:
    return client.get("/customer/").status_code == 200


LOGIN_CASES = {
    **{f"email-{name}": {"email": value} for name, value in HOSTILE_TEXT.items()},
    # The password is only ever hashed, never stored or queried: the classic two suffice.
    **{f"password-{name}": {"password": HOSTILE_TEXT[name]} for name in ("nul", "bell")},
    "email-unicode-unknown": {"email": "ünal@exämple.com"},
    "email-emoji": {"email": "🐕@example.com"},
    "email-crlf": {"email": "olive@example.com\r\nBcc: x@example.com"},
    "email-255-characters": {"email": "o" * 243 + "@example.com"},
    "password-1025-characters": {"password": "p" * 1025},
    "missing-email": {"drop": "email"},
    "missing-password": {"drop": "password"},
    "missing-csrf-token": {"drop": "csrf_token"},
}


@pytest.mark.parametrize("case", LOGIN_CASES)
def test_login_refuses_hostile_input_with_400_and_logs_nobody_in(auth, case):
    response = login_post(auth, **LOGIN_CASES[case])
    page = assert_refused(response, 400)
    assert "<form" in page.html or "expired" in page.text  # the form again, or the CSRF page
    assert not is_logged_in(auth.client)


def test_login_refuses_a_body_over_the_size_limit_with_413(auth):
    assert_refused(login_post(auth, password=TOO_LARGE), 413)
    assert not is_logged_in(auth.client)


@pytest.mark.parametrize("name", ["nul", "crlf", "huge"])
def test_login_with_a_hostile_next_still_logs_in_and_goes_home(auth, name):
    value = {"nul": "/admin/%00", "crlf": "/x%0d%0aSet-Cookie:%20a=b", "huge": "/" + "n" * 5000}
    response = login_post(auth, next_url=value[name])
    assert response.status_code == 303
    location = response.headers["Location"]
    assert "\r" not in location and "\n" not in location and "\x00" not in location
    assert location in (HOME["owner"], value[name])


# ------------------------------------------------------------------------------ new booking


FREE_TEXT_FIELDS = ("address", "notes")
NEW_BOOKING_BAD = {
    **{(field, name): value for field in FREE_TEXT_FIELDS for name, value in HOSTILE_TEXT.items()},
    **{
        (field, name): value
        for field in ("service", "day", "start", "end")
        for name, value in {
            "nul": "\x00",
            "emoji": "🐕",
            "rtl": "\u202e09:00",
            "huge-number": str(10**20),
        }.items()
    },
    ("day", "impossible-date"): "2031-02-30",
    ("day", "year-99999"): "99999-01-01",
    ("start", "25-oclock"): "25:00",
    ("service", "not-offered"): "Alchemy",
    ("address", "301-characters"): "a" * 301,
    ("notes", "2001-characters"): "n" * 2001,
    **{(field, "missing"): None for field in ("service", "address", "day", "start", "end")},
}


@pytest.mark.parametrize("field,name", NEW_BOOKING_BAD)
def test_new_booking_form_redisplays_with_the_message_beside_the_field(people, login, field, name):
    owner = login("owner")
    value = NEW_BOOKING_BAD[field, name]
    data = booking_form(owner, **{field: value})[1]

    page = assert_refused(owner.post("/customer/bookings/new", data=data), 400)

    assert page.field_error(field), f"no message beside {field}: {page.text[:300]}"
    assert 'action="/customer/bookings/new"' in page.html  # the form again, to correct
    assert count_bookings() == 0 and event_count() == 0


def test_new_booking_form_refuses_a_body_over_the_size_limit_with_413(people, login):
    owner = login("owner")
    assert_refused(
        owner.post("/customer/bookings/new", data=booking_form(owner, notes=TOO_LARGE)[1]), 413
    )
    assert count_bookings() == 0


def stored_booking() -> Booking:
    db.session.rollback()
    return db.session.scalars(sa.select(Booking)).one()


@pytest.mark.parametrize("field", FREE_TEXT_FIELDS)
@pytest.mark.parametrize("name", LEGIT_TEXT)
def test_new_booking_form_accepts_unicode_and_shows_it_back_escaped(people, login, field, name):
    owner = login("owner")
    value = LEGIT_TEXT[name]

    response = owner.post("/customer/bookings/new", data=booking_form(owner, **{field: value})[1])

    assert response.status_code == 303, Page(response).text[:300]
    booking = stored_booking()
    assert getattr(booking, field) == value
    for url in ("/customer/", f"/customer/bookings/{booking.id}"):
        shown = owner.get(url).get_data(as_text=True)
        assert escaped(value) in shown, url
        assert "<script>alert(1)" not in shown


@pytest.mark.parametrize("field", FREE_TEXT_FIELDS)
def test_new_booking_form_stores_a_browsers_crlf_newlines_as_newlines(people, login, field):
    owner = login("owner")
    typed, stored = WINDOWS_NEWLINES
    response = owner.post("/customer/bookings/new", data=booking_form(owner, **{field: typed})[1])
    assert response.status_code == 303, Page(response).text[:300]
    assert getattr(stored_booking(), field) == stored


def test_a_customer_named_in_unicode_sees_their_name_and_admins_see_it_on_the_card(app, people):
    from tests.support.pages import AuthActions

    name = "Ünal Öztürk 🧹 \u200fשלום"
    accounts.create_user("unal@example.com", name, Role.CUSTOMER, PASSWORD)
    client = app.test_client()
    assert AuthActions(client).login("unal@example.com").status_code == 303
    assert escaped(name) in client.get("/customer/").get_data(as_text=True)
    client.post("/customer/bookings/new", data=booking_form(client)[1])
    admin = app.test_client()
    AuthActions(admin).login("admin")
    assert escaped(name) in admin.get("/admin/").get_data(as_text=True)


# ------------------------------------------------------------------------------ booking actions


def source_status(action: Action) -> Status:
    """The first status (in the table's order) the action may start from."""
    return next(status for status in Status if status in LIFECYCLE[action].sources)


def acting_person(action: Action) -> str:
    return next(
        ROLE_PEOPLE[role]
        for role in Role
        if role in LIFECYCLE[action].roles and role in ROLE_PEOPLE
    )


def valid_action_data(form, action: Action, people) -> dict:
    """What a person fills in to make the form valid: a reason, a free provider, the tick."""
    rule = LIFECYCLE[action]
    data = {**form.hidden, **form.checkboxes}
    if rule.asks_reason:
        data["reason"] = "Customer asked"
    if rule.takes_provider:
        data["provider_id"] = str(people.other_provider.user_id)
    return data


def action_cases(action: Action) -> dict[str, dict]:
    """Bad variants of one action's form: field -> value overrides (None drops the field).
    Every form parses its fields alike, so the full set of hostile values is tried on one form
    (REASON_FORM); every other form gets the classics and the fields its own rule asks for."""
    rule = LIFECYCLE[action]
    cases = {
        "reason-nul": {"reason": HOSTILE_TEXT["nul"]},
        "version-huge": {"version": BAD_IDS["huge"]},
    }
    if action is REASON_FORM:
        cases |= {f"reason-{name}": {"reason": value} for name, value in HOSTILE_TEXT.items()}
        cases |= {f"version-{name}": {"version": value} for name, value in BAD_IDS.items()}
        cases |= {
            "version-not-current": {"version": "999"},
            "csrf-token-missing": {"csrf_token": None},
            "idempotency-key-nul": {"idempotency_key": "key\x00"},
            "idempotency-key-300-characters": {"idempotency_key": "k" * 300},
            "reason-501-characters": {"reason": "r" * 501},
        }
    if rule.asks_reason:
        cases |= {"reason-missing": {"reason": None}, "reason-blank": {"reason": " \n\t "}}
    if action in CONFIRMED_ACTIONS:
        cases["confirm-missing"] = {"confirm": None}
    if rule.takes_provider:
        bad_ids = (
            BAD_IDS
            if action is Action.ASSIGN
            else {name: BAD_IDS[name] for name in ("huge", "non-numeric")}
        )
        cases |= {f"provider-{name}": {"provider_id": value} for name, value in bad_ids.items()}
        cases |= {
            "provider-missing": {"provider_id": None},
            "provider-is-a-customer": {"provider_id": "people.owner"},
            "provider-is-an-admin": {"provider_id": "people.admin"},
        }
    return cases


# The actions a person takes through a card's form (automation's own have none).
FORM_ACTIONS = tuple(a for a in BOOKING_ACTIONS if LIFECYCLE[a].roles & set(ROLE_PEOPLE))
ACTION_CASES = [(action.value, case) for action in FORM_ACTIONS for case in action_cases(action)]


def prepared_action(people, login, action: Action):
    """A booking the action applies to, its actor's client, and the card's form data."""
    booking_id = booking_in(people, source_status(action)).id
    who = acting_person(action)
    client = login(who)
    form = Page(client.get(HOME[who])).form(booking_id, action.value)
    return booking_id, client, form, valid_action_data(form, action, people)


@pytest.mark.parametrize("action", FORM_ACTIONS, ids=str)
def test_each_action_form_filled_in_properly_is_applied(people, login, action):
    """The baseline the bad-input cases spoil one field of: without it they prove nothing."""
    booking_id, client, form, data = prepared_action(people, login, action)
    response = client.post(form.action, data=data)
    assert response.status_code == 303, Page(response).text[:300]
    assert booking_state(booking_id)[0] == LIFECYCLE[action].target


def spoiled(data: dict, overrides: dict, people) -> dict:
    data = dict(data)
    for name, value in overrides.items():
        if value is None:
            data.pop(name, None)
        elif value.startswith("people."):
            data[name] = str(people.by_name(value.removeprefix("people.")).user_id)
        else:
            data[name] = value
    return data


def assert_form_post_refused_with_a_message(client, response, booking_id: int) -> None:
    """A plain form post: an error page, or (for a refusal about the booking) back to the home
    page with the message in the card or in an alert."""
    if response.status_code != 303:
        assert_refused(response)
        return
    home = Page(client.get(response.headers["Location"]))
    messages = [message for level, message in home.alerts if level == "error"]
    if booking_id in home.card_ids and home.card_error(booking_id):
        messages.append(home.card_error(booking_id))
    assert messages, f"no message on {response.headers['Location']}: {home.text[:300]}"


@pytest.mark.parametrize("action_name,case", ACTION_CASES)
def test_each_action_form_refuses_bad_input_and_changes_nothing(people, login, action_name, case):
    action = Action(action_name)
    booking_id, client, form, data = prepared_action(people, login, action)
    data = spoiled(data, action_cases(action)[case], people)
    before, bookings_before = booking_state(booking_id), count_bookings()

    # As a browser without JavaScript posts it, then as htmx does (each keeps its own
    # idempotency answer, so the second is not a replay of the first). The plain post's
    # message is read first: a card drawn for htmx would take its flashed message.
    assert_form_post_refused_with_a_message(client, client.post(form.action, data=data), booking_id)
    swapped = client.post(form.action, data=data, headers={"HX-Request": "true"})
    page = assert_refused(swapped, 400, 403, 404, 409, 413, 422)
    assert page.is_fragment  # the card with the error inside, or an alert for the page
    assert page.card_error(booking_id) if booking_id in page.card_ids else page.alerts
    assert booking_state(booking_id) == before
    assert count_bookings() == bookings_before


def test_an_action_body_over_the_size_limit_is_413_and_changes_nothing(people, login):
    booking_id, client, form, data = prepared_action(people, login, Action.REJECT)
    before = booking_state(booking_id)
    assert_refused(client.post(form.action, data={**data, "reason": TOO_LARGE}), 413)
    assert booking_state(booking_id) == before


REASON_CASES = [
    *((REASON_FORM, name) for name in LEGIT_TEXT),
    *((action, "windows-newlines") for action in FORM_ACTIONS if LIFECYCLE[action].asks_reason),
]


@pytest.mark.parametrize("action,name", REASON_CASES, ids=[f"{a}-{n}" for a, n in REASON_CASES])
def test_action_reasons_accept_unicode_and_the_timeline_shows_them_escaped(
    people, login, action, name
):
    booking_id, client, form, data = prepared_action(people, login, action)
    typed, stored = (
        WINDOWS_NEWLINES if name == "windows-newlines" else (LEGIT_TEXT[name], LEGIT_TEXT[name])
    )

    response = client.post(form.action, data={**data, "reason": typed})

    assert response.status_code == 303, Page(response).text[:300]
    db.session.rollback()
    reason = db.session.scalar(
        sa.select(BookingEvent.reason)
        .where(BookingEvent.booking_id == booking_id)
        .order_by(BookingEvent.id.desc())
        .limit(1)
    )
    assert reason == stored
    detail = login("admin").get(f"/admin/bookings/{booking_id}").get_data(as_text=True)
    assert escaped(stored) in detail


# ------------------------------------------------------------------------------ ids in URLs


@pytest.mark.parametrize("who", ["owner", "admin"])
@pytest.mark.parametrize("name", BAD_IDS)
def test_a_booking_page_with_a_bad_id_is_404_not_a_server_error(people, login, who, name):
    booking_in(people, Status.PENDING)
    client = login(who)
    response = client.get(f"/{BLUEPRINT[who]}/bookings/{BAD_IDS[name]}")
    page = assert_refused(response, 404)
    assert not page.is_fragment


# The booking id is parsed by the route, before the action is known: one action per role.
@pytest.mark.parametrize("action", [Action.CANCEL, Action.ACCEPT, Action.ASSIGN], ids=str)
@pytest.mark.parametrize("name", ["huge", "zero", "non-numeric", "fullwidth-digits"])
def test_an_action_on_a_bad_booking_id_is_404_and_changes_nothing(people, login, action, name):
    booking_id, client, form, data = prepared_action(people, login, action)
    before = booking_state(booking_id)
    url = form.action.replace(f"/bookings/{booking_id}/", f"/bookings/{BAD_IDS[name]}/")
    assert_refused(client.post(url, data=data, headers={"HX-Request": "true"}), 404)
    assert booking_state(booking_id) == before


@pytest.mark.parametrize("name", ["unknown", "create", "ASSIGN", "nul", "emoji"])
def test_an_unknown_action_name_is_404(people, login, name):
    booking_id, client, form, data = prepared_action(people, login, Action.ASSIGN)
    before = booking_state(booking_id)
    value = {
        "unknown": "teleport",
        "create": "create",
        "ASSIGN": "ASSIGN",
        "nul": "assign%00",
        "emoji": "🐕",
    }[name]
    url = form.action.replace("/assign", f"/{value}")
    assert_refused(client.post(url, data=data), 404)
    assert booking_state(booking_id) == before


# ------------------------------------------------------------------------------ query strings


PAGE_PARAMETERS = {**BAD_IDS, "empty": "", "many-digits": "9" * 400}
# Well-formed numbers that name no booking (0, or past any id that can exist).
NO_SUCH_BOOKING = {"huge", "past-int32", "many-digits", "zero"}


@pytest.mark.parametrize("url", ["/customer/", "/admin/archive", "/admin/lanes/pending"])
@pytest.mark.parametrize("position", ["after", "before"])
@pytest.mark.parametrize("name", PAGE_PARAMETERS)
def test_a_list_position_is_a_booking_number_or_a_400(people, login, url, position, name):
    # On the first page of each of these lists.
    booking_in(people, Status.PENDING if "lanes" in url else Status.COMPLETED)
    client = login("owner" if url.startswith("/customer") else "admin")
    page = Page(client.get(url, query_string={position: PAGE_PARAMETERS[name]}))
    if name == "empty":  # an empty box means the first page, as no parameter does
        assert page.status == 200 and page.card_ids
    elif name in NO_SUCH_BOOKING:
        assert_refused(page.response, 400)
        assert "to page from" in page.text
    else:
        assert_refused(page.response, 400)
        assert f"{position} must be a positive whole number" in page.text


@pytest.mark.parametrize("value", ["0", "yes", "11", "\x00"])
def test_a_list_end_is_1_or_a_400(people, login, value):
    page = Page(login("admin").get("/admin/archive", query_string={"end": value}))
    assert_refused(page.response, 400)
    assert "end must be 1" in page.text


def test_a_list_takes_one_position_at_most(people, login):
    page = Page(login("admin").get("/admin/archive?after=1&before=2"))
    assert_refused(page.response, 400)
    assert "at most one of after, before and end" in page.text


ARCHIVE_QUERIES = {
    **{f"q-{name}": {"q": value} for name, value in HOSTILE_TEXT.items()},
    **{f"status-{name}": {"status": value} for name, value in HOSTILE_TEXT.items()},
    "q-121-characters": {"q": "q" * 121},
    "q-100k-characters": {"q": TOO_LARGE},
    "q-huge-booking-number": {"q": "#" + str(10**20)},
    "status-unknown": {"status": "DONE"},
}


@pytest.mark.parametrize("case", ARCHIVE_QUERIES)
def test_the_archive_refuses_a_hostile_search_or_filter_with_400(people, login, case):
    admin = login("admin")
    response = admin.get("/admin/archive", query_string=ARCHIVE_QUERIES[case])
    if case == "q-huge-booking-number":  # no such booking: an empty result, not an error
        assert response.status_code == 200
        return
    page = assert_refused(response, 400)
    assert not page.is_fragment


@pytest.mark.parametrize("name", LEGIT_TEXT)
def test_the_archive_search_takes_unicode_and_shows_it_back_escaped(people, login, name):
    admin = login("admin")
    response = admin.get("/admin/archive", query_string={"q": LEGIT_TEXT[name]})
    assert response.status_code == 200
    assert escaped(LEGIT_TEXT[name]) in response.get_data(as_text=True)

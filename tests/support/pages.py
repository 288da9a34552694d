"""What the page tests share: the people of tests.support.people with passwords, a login helper
in the style of flaskr's `AuthActions`, a client that gives every request its own app context,
and a reader for the cards and forms a page renders."""

from __future__ import annotations

import contextvars
import html as html_lib
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask.testing import FlaskClient
from jinja2.bccache import Bucket, BytecodeCache

from tests.support.people import PASSWORD, PERSON, Cast, create_cast

HOME = {
    "owner": "/customer/",
    "other_customer": "/customer/",
    "provider": "/provider/",
    "other_provider": "/provider/",
    "admin": "/admin/",
}
HTMX = {"HX-Request": "true"}


# ------------------------------------------------------------------------------ clients


class PageClient(FlaskClient):
    """Runs every request in a fresh context, so it gets its own app context — `g`, the
    logged-in user, the cached CSRF token and the database session — as it would in
    production. (Flask reuses an app context that is already pushed, and the `app` fixture
    keeps one pushed for the test's own queries: without this, `g` leaks between requests.)"""

    def open(self, *args, **kwargs):
        response = contextvars.Context().run(self._open_and_read, *args, **kwargs)
        response.client = self  # so a Page can follow the links it shows (Page.form)
        return response

    def _open_and_read(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        if response.is_streamed and response.mimetype != "text/event-stream":
            # A download streamed row by row: read while its request's context is there.
            response.make_sequence()
        return response


class SharedBytecodeCache(BytecodeCache):
    """Compiled templates kept for the whole test session: every test builds a new app, and
    compiling the templates again for each one would be most of the run time. Keyed by the
    template's name and source checksum, so an edited template is compiled afresh."""

    store: ClassVar[dict[str, bytes]] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.store:
            bucket.bytecode_from_string(self.store[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.store[bucket.key] = bucket.bytecode_to_string()


@pytest.fixture
def people(app) -> Cast:
    """The cast with passwords instead of API tokens, so they can log in through the pages;
    the app's test client is a PageClient."""
    app.test_client_class = PageClient
    app.jinja_env.bytecode_cache = SharedBytecodeCache()
    return create_cast(password=PASSWORD, with_tokens=False)


class AuthActions:
    """Log in and out through the real forms, CSRF token included (flaskr's AuthActions)."""

    def __init__(self, client: FlaskClient):
        self.client = client

    def login(
        self,
        who: str = "owner",
        password: str = PASSWORD,
        next: str | None = None,
        remember: bool = False,
    ):
        email = PERSON[who].email if who in PERSON else who
        url = "/login" + ("?" + urlencode({"next": next}) if next is not None else "")
        token = Page(self.client.get(url)).csrf_token
        data = {"email": email, "password": password, "csrf_token": token}
        return self.client.post(url, data={**data, "remember": "y"} if remember else data)

    def logout(self):
        token = Page(self.client.get("/", follow_redirects=True)).csrf_token
        return self.client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(app, people):
    """An anonymous client and its AuthActions."""
    return AuthActions(app.test_client())


@pytest.fixture
def login(app, people):
    """login("admin") -> a client of its own (its own cookie jar), logged in as that person."""

    def log_in(who: str) -> FlaskClient:
        client = app.test_client()
        response = AuthActions(client).login(who)
        assert response.status_code == 303, response.get_data(as_text=True)
        return client

    return log_in


def split_url(url: str) -> tuple[str, dict[str, list[str]]]:
    """A local URL's path and query; fails for one that names a host."""
    parts = urlsplit(url)
    assert not parts.scheme and not parts.netloc, url
    return parts.path, parse_qs(parts.query)


def redirect_target(response) -> tuple[str, dict[str, list[str]]]:
    """A redirect's path and its query."""
    assert response.status_code in (302, 303), response.status_code
    return split_url(response.headers["Location"])


# ------------------------------------------------------------------------------ reading pages


@dataclass
class Form:
    action: str
    attrs: dict[str, str | None]
    card_id: int | None  # the booking card the form sits in
    hidden: dict[str, str] = field(default_factory=dict)
    checkboxes: dict[str, str] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)  # every field the form offers
    options: dict[str, list[str]] = field(default_factory=dict)  # select -> option values
    page: str = ""  # the URL of the page the person pressed it on (htmx's HX-Current-URL)


class _FormReader(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._card: int | None = None
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "article" and (attrs.get("id") or "").startswith("booking-"):
            self._card = int(attrs["id"].removeprefix("booking-"))
        elif tag == "form":
            self._form = Form(attrs.get("action") or "", attrs, self._card)
            self.forms.append(self._form)
        elif self._form is None or not (name or tag == "option"):
            return
        elif tag == "input":
            self._form.names.add(name)
            kind = attrs.get("type", "text")
            if kind == "hidden":
                self._form.hidden[name] = attrs.get("value") or ""
            elif kind == "checkbox":
                self._form.checkboxes[name] = attrs.get("value") or "on"
        elif tag in ("select", "textarea"):
            self._form.names.add(name)
            if tag == "select":
                self._select = name
                self._form.options[name] = []
        elif tag == "option" and self._select:
            self._form.options[self._select].append(attrs.get("value") or "")

    def handle_endtag(self, tag):
        if tag == "article":
            self._card = None
        elif tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None


def _text(fragment: str) -> str:
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


class Page:
    """What a response shows: cards, their buttons and errors, forms, alerts."""

    def __init__(self, response):
        self.response = response
        self.status = response.status_code
        self.html = response.get_data(as_text=True)
        reader = _FormReader()
        reader.feed(self.html)
        self.forms = reader.forms

    @property
    def text(self) -> str:
        return _text(self.html)

    @property
    def is_fragment(self) -> bool:
        return "<html" not in self.html.lower()

    @property
    def card_ids(self) -> list[int]:
        return [int(n) for n in re.findall(r'<article\b[^>]*\bid="booking-(\d+)"', self.html)]

    def card(self, booking_id: int) -> str | None:
        found = re.search(
            rf'<article\b[^>]*\bid="booking-{booking_id}".*?</article>', self.html, re.DOTALL
        )
        return found.group(0) if found else None

    def card_status(self, booking_id: int) -> str:
        return re.search(r'data-status="([A-Z_]+)"', self.card(booking_id)).group(1)

    def card_error(self, booking_id: int) -> str | None:
        found = re.search(r'<p class="card-error"[^>]*>(.*?)</p>', self.card(booking_id), re.DOTALL)
        return _text(found.group(1)) if found else None

    def actions(self, booking_id: int) -> set[str]:
        """The actions the card offers (a form, or a link to one), by their class
        `action-<name>`."""
        return set(re.findall(r'class="action action-([a-z-]+)[" ]', self.card(booking_id)))

    def action_link(self, booking_id: int, action: str) -> str | None:
        """The card's link to an action's form (actions that need a provider, a reason or a
        confirmation open a form first)."""
        found = re.search(
            rf'<a class="action action-{action}\b[^"]*"\s+href="([^"]+)"',
            self.card(booking_id) or "",
        )
        return html_lib.unescape(found.group(1)) if found else None

    def form(self, booking_id: int, action: str) -> Form:
        """The card's form for the action: on the page, or behind the card's link to it (opened
        as a browser without JavaScript would, by following the link)."""
        suffix = f"/bookings/{booking_id}/{action}"
        matches = [
            f
            for f in self.forms
            if f.action.endswith(suffix) and f.attrs.get("method", "get").lower() == "post"
        ]
        link = self.action_link(booking_id, action)
        if not matches and link is not None:
            opened = Page(self.response.client.get(link))
            assert opened.status == 200, (link, opened.status, opened.text[:300])
            # With htmx the form opens inside the card, on this page.
            return replace(opened.form(booking_id, action), page=self.url)
        assert len(matches) == 1, f"{len(matches)} forms for {suffix} on the page"
        assert matches[0].card_id == booking_id, "the form is not inside its booking's card"
        return replace(matches[0], page=self.url)

    @property
    def url(self) -> str:
        request = getattr(self.response, "request", None)
        return request.url if request is not None else ""

    @property
    def csrf_token(self) -> str:
        found = re.search(r'<input\b[^>]*\bname="csrf_token"[^>]*>', self.html)
        assert found, "no CSRF token on the page"
        return re.search(r'value="([^"]+)"', found.group(0)).group(1)

    @property
    def header_csrf_token(self) -> str:
        """The token htmx sends as X-CSRFToken, from <body hx-headers='...'>."""
        return re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', self.html).group(1)

    @property
    def alerts(self) -> list[tuple[str, str]]:
        return [
            (level, _text(message))
            for level, message in re.findall(
                r'<p class="alert alert-(\w+)"[^>]*>(.*?)</p>', self.html, re.DOTALL
            )
        ]

    @property
    def confirmation(self) -> str | None:
        """What the page's live region says the last action did."""
        found = re.search(r'<p id="confirmation"[^>]*>(.*?)</p>', self.html, re.DOTALL)
        return _text(found.group(1)) if found else None

    def field_error(self, field_id: str) -> str | None:
        found = re.search(rf'<p class="field-error" id="{field_id}-error">(.*?)</p>', self.html)
        return _text(found.group(1)) if found else None


def booking_form(client, **changes) -> tuple[Page, dict]:
    """The customer's new-booking page and a valid request from it, with `changes` typed over
    it (a change to None leaves that field out). The day is two days ahead, so it is a later
    day in every time zone."""
    page = Page(client.get("/customer/bookings/new"))
    assert page.status == 200
    data = {
        "csrf_token": page.csrf_token,
        "service": "Plumbing",
        "address": "12 Canal Street",
        "day": (datetime.now(UTC).date() + timedelta(days=2)).isoformat(),
        "slot": "other",
        "start": "09:00",
        "end": "11:30",
        "notes": "Ring twice",
        **changes,
    }
    return page, {name: value for name, value in data.items() if value is not None}


def press(client, form: Form, *, htmx: bool = False, confirm: bool = False, **fields):
    """Submit a form as the page drew it (its hidden CSRF token and version), ticking its
    confirmation box when `confirm`, with `fields` typed into the inputs it offers."""
    unknown = set(fields) - form.names
    assert not unknown, f"the form has no {unknown}"
    data = {**form.hidden, **(form.checkboxes if confirm else {}), **fields}
    headers = {**HTMX, "HX-Current-URL": form.page} if htmx else {}
    return client.post(form.action, data=data, headers=headers)

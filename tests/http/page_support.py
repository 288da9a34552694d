"""What the page tests share: people with passwords, a login helper in the style of flaskr's
`AuthActions`, a client that gives every request its own app context, a reader for the cards
and forms a page renders, and a fast bulk loader of bookings with valid event chains."""

from __future__ import annotations

import contextvars
import html as html_lib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from jinja2.bccache import Bucket, BytecodeCache

from ops_portal.domain.lifecycle import LIFECYCLE, Action, Actor, Role, Source, Status
from ops_portal.extensions import db
from ops_portal.models import Booking, BookingEvent
from tests.conftest import PATH_TO, Cast

PASSWORD = "correct horse battery staple"

# kind -> (email, name, role); the kinds are those of conftest's Cast, so booking_in() works.
PEOPLE = {
    "owner": ("olive@example.com", "Olive Owner", Role.CUSTOMER),
    "other_customer": ("oscar_other@example.com", "Oscar Other", Role.CUSTOMER),
    "provider": ("pat@example.com", "Pat Provider", Role.PROVIDER),
    "other_provider": ("quinn@example.com", "Quinn Provider", Role.PROVIDER),
    "admin": ("ada@example.com", "Ada Admin", Role.ADMIN),
    "system": ("robot@example.com", "Robot", Role.SYSTEM),
}
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
        return contextvars.Context().run(super().open, *args, **kwargs)


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
    """conftest's cast, with passwords, so they can log in through the pages."""
    from ops_portal.services import accounts

    app.test_client_class = PageClient
    app.jinja_env.bytecode_cache = SharedBytecodeCache()
    created = accounts.create_users(
        [
            accounts.validate_new_user(email, name, role, None if role is Role.SYSTEM else PASSWORD)
            for email, name, role in PEOPLE.values()
        ],
        with_tokens=False,
    )
    actors = {
        kind: Actor(role, user.id, Source.API)
        for (kind, (_, _, role)), (user, _) in zip(PEOPLE.items(), created, strict=True)
    }
    return Cast(**actors, tokens={})


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
        email = PEOPLE[who][0] if who in PEOPLE else who
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
        """The action forms on the card, by their class `action-<name>`."""
        return set(re.findall(r'class="action action-([a-z-]+)"', self.card(booking_id)))

    def form(self, booking_id: int, action: str) -> Form:
        suffix = f"/bookings/{booking_id}/{action}"
        matches = [f for f in self.forms if f.action.endswith(suffix)]
        assert len(matches) == 1, f"{len(matches)} forms for {suffix} on the page"
        assert matches[0].card_id == booking_id, "the form is not inside its booking's card"
        return matches[0]

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
    return client.post(form.action, data=data, headers=HTMX if htmx else {})


# ------------------------------------------------------------------------------ database state


def snapshot(booking_id: int) -> tuple:
    """(status, version, provider_id, number of events), read fresh from the database."""
    db.session.rollback()  # end any earlier read: on SQLite (WAL) it would be an old snapshot
    row = db.session.execute(
        sa.select(Booking.status, Booking.version, Booking.provider_id).where(
            Booking.id == booking_id
        )
    ).one()
    events = db.session.scalar(
        sa.select(sa.func.count()).where(BookingEvent.booking_id == booking_id)
    )
    db.session.rollback()
    return (*row, events)


def count_bookings() -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(Booking))


# ------------------------------------------------------------------------------ bulk data

ASSIGNING = (Action.ASSIGN, Action.FORCE_ASSIGN)
ACTOR_FOR_STEP = {
    Action.ASSIGN: "admin",
    Action.FORCE_ASSIGN: "admin",
    Action.ACCEPT: "provider",
    Action.REJECT: "provider",
    Action.COMPLETE: "provider",
    Action.CANCEL: "owner",
    Action.MARK_FAILED: "admin",
}


def bulk_bookings(
    cast: Cast,
    statuses: list[Status],
    *,
    customer: str = "owner",
    providers: tuple[str, ...] = ("provider",),
    customer_name: str | None = None,
    start: datetime | None = None,
) -> list[int]:
    """Insert bookings in the given statuses, each with the event chain of conftest.PATH_TO, in
    one transaction (thousands per second). Active ones are force-assigned, round robin over
    `providers`, so a provider may hold many; a second apart, oldest first."""
    start = start or datetime(2030, 1, 1, 9, tzinfo=UTC)
    customer_actor = cast.by_name(customer)
    name = customer_name or PEOPLE[customer][1]
    plans = []
    for index, status in enumerate(statuses):
        provider = cast.by_name(providers[index % len(providers)])
        active = status in (Status.ASSIGNED, Status.IN_PROGRESS)
        steps = [
            Action.FORCE_ASSIGN if a is Action.ASSIGN and active else a for a in PATH_TO[status]
        ]
        created = start + timedelta(seconds=index)
        plans.append((status, provider, steps, created))
    rows = [
        {
            "status": status.value,
            "customer_id": customer_actor.user_id,
            "provider_id": provider.user_id
            if status in (Status.ASSIGNED, Status.IN_PROGRESS, Status.COMPLETED)
            else None,
            "assignment_forced": status in (Status.ASSIGNED, Status.IN_PROGRESS),
            "customer_name": name,
            "service": "Leaking tap",
            "address": f"{index} Bulk Street",
            "notes": "",
            "version": 1 + len(steps),
            "created_at": created,
            "updated_at": created + timedelta(milliseconds=len(steps)),
        }
        for index, (status, provider, steps, created) in enumerate(plans)
    ]
    db.session.rollback()
    with db.session.begin():
        connection = db.session.connection()  # Core executemany: batched multi-row INSERTs
        ids = list(
            connection.scalars(
                sa.insert(Booking.__table__).returning(
                    Booking.__table__.c.id, sort_by_parameter_order=True
                ),
                rows,
            )
        )
        events = []
        for booking_id, (status, provider, steps, created) in zip(ids, plans, strict=True):
            current = None
            involved = provider.user_id if steps and steps[0] in ASSIGNING else None
            for number, action in enumerate([Action.CREATE, *steps]):
                target = LIFECYCLE[action].target
                actor = (
                    customer_actor
                    if action is Action.CREATE
                    else cast.by_name(ACTOR_FOR_STEP[action])
                )
                events.append(
                    {
                        "booking_id": booking_id,
                        "action": action.value,
                        "from_status": current,
                        "to_status": target.value,
                        "actor_role": actor.role.value,
                        "actor_id": actor.user_id,
                        "provider_id": None if action is Action.CREATE else involved,
                        "reason": "bulk" if action is Action.MARK_FAILED else None,
                        "forced": LIFECYCLE[action].forced,
                        "source": "web",
                        "created_at": created + timedelta(milliseconds=number),
                    }
                )
                current = target.value
            assert current == status.value
        connection.execute(sa.insert(BookingEvent.__table__), events)
    return ids

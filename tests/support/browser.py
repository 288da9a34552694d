"""Browser fixtures: Debian's Chromium driven by Playwright against a real gunicorn server.

Each test gets the backend's server (tests.support.server) on the test's migrated, empty
database, seeded with everyone in PEOPLE. A `Journey` opens browser contexts for the people in
it, saves a screenshot of every page they visit at phone and desktop size under
artifacts/<journey>/<backend>/, checks each of those pictures with axe-core against WCAG 2.2 AA,
and fails the test on any accessibility violation, console error, page error or 5xx that the
journey did not deliberately provoke.

axe-core is a test-only asset (tests/support/assets/, from its npm package), added to the page
as a script: the journey's contexts bypass the app's Content-Security-Policy for that. A test
that holds the app to its policy asks for a journey that keeps it (`journey.keep_csp()`), and
then gets no axe checks.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import sqlalchemy as sa

from ops_portal.domain.lifecycle import Actor, Role
from ops_portal.extensions import db
from ops_portal.services import bookings
from tests.support.people import PASSWORD, PERSON, Cast, Person, create_cast

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
SIZES = {"phone": PHONE, "desktop": DESKTOP}
# The narrowest screen a page must fit without scrolling sideways (WCAG 1.4.10, reflow).
NARROWEST = {"width": 320, "height": 640}

# axe-core, vendored from its npm package with its licence header (MPL-2.0) kept.
AXE = next((Path(__file__).parent / "assets").glob("axe-core-*.min.js"))
# WCAG 2.2 AA: the A and AA rules of each version (2.2 added AA rules only, e.g. target size).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]

# Chromium's log line for an answer with an error status, e.g. the deliberate 409.
REFUSAL_LOG = re.compile(r"Failed to load resource: the server responded with a status of (\d{3})")


# ------------------------------------------------------------------------------ the browser


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless. Skips without it, unless OPS_PORTAL_REQUIRE_BROWSER=1."""
    required = os.environ.get("OPS_PORTAL_REQUIRE_BROWSER") == "1"
    missing = None
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} is not installed"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as exc:  # pragma: no cover - depends on the environment
            missing = f"playwright is not importable: {exc}"
    if missing:
        if required:
            pytest.fail(f"browser tests are required (OPS_PORTAL_REQUIRE_BROWSER=1) but {missing}")
        pytest.skip(missing)
    from playwright.sync_api import expect

    # Auto-waiting bound for every expect(): generous, as a loaded CI machine can be slow.
    expect.set_options(timeout=10_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# ------------------------------------------------------------------------------ the server


@dataclass
class LiveServer:
    url: str
    cast: Cast

    def person(self, kind: str) -> Person:
        return PERSON[kind]

    def user_id(self, kind: str) -> int:
        return self.cast.by_name(kind).user_id

    def api(self, who: str, method: str, path: str, json: dict | None = None) -> dict:
        """Act through the JSON API as one of the people (the world outside the browser)."""
        response = requests.request(
            method,
            self.url + path,
            json=json,
            headers={"Authorization": f"Bearer {self.cast.tokens[who]}"},
            timeout=10,
        )
        assert response.ok, f"{method} {path} → {response.status_code}: {response.text}"
        return response.json()

    def booking_for(self, service: str = "Leaking tap", *, assign_to: str | None = None) -> dict:
        booking = self.api(
            "owner",
            "POST",
            "/api/bookings",
            {
                "service": service,
                "address": "12 Harbour Lane, Flat 3",
                "window_start": "2031-05-06T09:00:00+00:00",
                "window_end": "2031-05-06T11:00:00+00:00",
            },
        )
        if assign_to:
            booking = self.api(
                "admin",
                "POST",
                f"/api/bookings/{booking['id']}/assign",
                {"provider_id": self.user_id(assign_to)},
            )
        return booking

    def late_booking(self, service: str, address: str) -> int:
        """A booking of the owner's whose window began an hour ago, requested a day before it
        (the API refuses a window that has begun, so the service is given that earlier clock)."""
        begun = datetime.now(UTC) - timedelta(hours=1)
        late = bookings.create_booking(
            Actor(Role.CUSTOMER, self.user_id("owner")),
            service=service,
            address=address,
            window_start=begun,
            window_end=begun + timedelta(hours=2),
            now=begun - timedelta(days=1),
        ).id
        db.session.remove()  # nothing of the test's own session stays open beside the server
        return late


def people_served_by(server) -> LiveServer:
    """`server` (tests.support.server) serving the test's database, with everyone in PEOPLE
    given a password (for the browser) and an API token (for the world outside acting through
    the API)."""
    cast = create_cast(password=PASSWORD, with_tokens=True)
    db.session.remove()  # nothing of the test's own session stays open beside the server
    return LiveServer(server.base_url, cast)


@pytest.fixture
def live_server(app, server) -> LiveServer:
    """The backend's shared gunicorn, with everyone in PEOPLE. A module that needs a server of
    its own (the live pages' gevent one) overrides this fixture with people_served_by."""
    return people_served_by(server)


# ------------------------------------------------------------------------------ the pages

# Each role's pages are the blueprint of its name, and the pages every role has (their own
# account). The provider comes last: they accept the booking the pages are drawn for, and the
# others' action forms need it ASSIGNED.
ROLES = ("admin", "customer", "provider")
EVERY_ROLE_BLUEPRINTS = ("account",)
PERSON_FOR_ROLE = {"admin": "admin", "provider": "provider", "customer": "owner"}
# The other arguments of the role pages: an action whose form the role opens on the booking
# (which is ASSIGNED to the provider), and a lane of the board.
PAGE_ARGUMENTS = {
    "admin": {"action_name": "force-assign", "lane_name": "assigned"},
    "provider": {"action_name": "reject"},
    "customer": {"action_name": "cancel"},
}


def role_page_urls(app, booking_id: int) -> dict[str, list[str]]:
    """Every GET page of each role blueprint and of the blueprints every role has, id-taking
    ones filled with a real booking id (and its provider's id)."""
    from ops_portal.models import Booking

    with app.app_context():
        provider_id = db.session.get(Booking, booking_id).provider_id
        db.session.remove()
    urls = app.url_map.bind("localhost")
    pages: dict[str, list[str]] = {role: [] for role in ROLES}
    for rule in app.url_map.iter_rules():
        # Left out: POST-only routes, static files, /api/* and /health (blueprints of their own),
        # auth's pages (the login page is visited anonymously, "/" only redirects), and CSV
        # downloads (files, which a browser saves rather than shows).
        blueprint = rule.endpoint.partition(".")[0]
        owners = ROLES if blueprint in EVERY_ROLE_BLUEPRINTS else (blueprint,)
        if "GET" not in rule.methods or owners[0] not in ROLES or rule.rule.startswith("/api/"):
            continue
        if rule.rule.endswith(".csv"):
            continue
        values = {
            "booking_id": booking_id,
            "provider_id": provider_id,
            **PAGE_ARGUMENTS.get(blueprint, {}),
        }
        url = urls.build(rule.endpoint, {name: values[name] for name in rule.arguments})
        for role in owners:
            pages[role].append(url)
    assert all(pages.values()), pages
    return pages


# ------------------------------------------------------------------------------ axe-core


def page_name(url: str) -> str:
    """The page a URL shows, whichever booking or lane it is of: `/customer/bookings/<id>`."""
    return re.sub(r"/\d+(?=/|$)", "/<id>", urlsplit(url).path)


@dataclass
class AxeSweep:
    """Every page state a journey checked with axe-core, at each size, and what it found."""

    checked: Counter = field(default_factory=Counter)  # (page, state) -> checks (a size each)
    violations: list[str] = field(default_factory=list)

    def check(self, page, state: str, size_name: str) -> None:
        """Run axe-core on the page as it is now; each violation becomes a line that names the
        rule, the elements and where to read about it."""
        if not page.evaluate("() => typeof window.axe === 'object'"):
            page.add_script_tag(path=AXE)
        page.evaluate(
            """tags => {
                window.__axeResults = null;
                axe.run(document, {
                    runOnly: {type: "tag", values: tags}, resultTypes: ["violations"],
                }).then(r => { window.__axeResults = r.violations.map(v => ({
                    id: v.id, impact: v.impact, help: v.help, url: v.helpUrl,
                    targets: v.nodes.map(n => n.target.join(" ")),
                    summary: v.nodes.length ? v.nodes[0].failureSummary : "",
                })); });
            }""",
            AXE_TAGS,
        )
        results = self._results(page)
        where = page_name(page.url)
        self.checked[where, state] += 1
        for found in results:
            targets = ", ".join(found["targets"][:5])
            more = len(found["targets"]) - 5
            self.violations.append(
                f"axe {found['id']} ({found['impact']}) on {where} [{state}, {size_name}]: "
                f"{found['help']} — {targets}{f' and {more} more' if more > 0 else ''}\n"
                f"    {found['summary'].splitlines()[-1].strip() if found['summary'] else ''}\n"
                f"    {found['url']}"
            )

    @staticmethod
    def _results(page, within: float = 60) -> list[dict]:
        """axe-core's answer. axe waits on timers between its rules: on a page whose clock the
        test has paused (`pause_clock`) they fire only when the clock moves, so it is moved on
        a millisecond at a time (far less than any poll's interval) until axe has answered."""
        deadline = time.monotonic() + within
        waited = 0
        while (results := page.evaluate("() => window.__axeResults")) is None:
            assert time.monotonic() < deadline, "axe-core did not answer"
            waited += 1
            if waited > 20:  # half a second of real time: the page's clock is not running
                page.clock.run_for(1)
            else:
                page.wait_for_timeout(25)
        return results

    def add(self, other: AxeSweep) -> None:
        self.checked.update(other.checked)
        self.violations.extend(other.violations)

    def as_data(self) -> dict:
        """As a pytest-xdist worker hands it to the controller (plain lists and strings)."""
        checked = [[where, state, runs] for (where, state), runs in self.checked.items()]
        return {"checked": checked, "violations": self.violations}

    @classmethod
    def from_data(cls, data: dict) -> AxeSweep:
        checked = Counter({(where, state): runs for where, state, runs in data["checked"]})
        return cls(checked, list(data["violations"]))


DATABASE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def axe_summary(sweeps: dict[str, AxeSweep]) -> str:
    """One line for the sweeps of each database (backend name -> sweep): the distinct pages and
    (page, state) pairs checked, and how many checks ran on each database."""
    checked = [key for sweep in sweeps.values() for key in sweep.checked]
    runs = [
        (sum(sweeps[backend].checked.values()), name)
        for backend, name in DATABASE_NAMES.items()
        if backend in sweeps
    ]
    per_database = " and ".join(
        f"{count} {'checks ' if index == 0 else ''}on {name}"
        for index, (count, name) in enumerate(runs)
    )
    again = any(n > len(SIZES) for sweep in sweeps.values() for n in sweep.checked.values())
    violations = sum(len(sweep.violations) for sweep in sweeps.values())
    return (
        f"axe-core {AXE.name.removeprefix('axe-core-').removesuffix('.min.js')} "
        f"({', '.join(AXE_TAGS)}): {len({where for where, _ in checked})} pages, "
        f"{len(set(checked))} page states, each at {' and '.join(SIZES)} size: "
        f"{per_database}"
        f"{' (a state more than one journey reaches is checked in each)' if again else ''}, "
        f"{violations} violations"
    )


# The whole session's checks on each database, summed over its journeys (and, under
# pytest-xdist, over its workers) for the closing summary.
SESSION_SWEEPS: dict[str, AxeSweep] = {}


def pytest_sessionfinish(session):
    """On a pytest-xdist worker: hand the worker's checks to the controller."""
    if hasattr(session.config, "workeroutput"):
        sweeps = {backend: sweep.as_data() for backend, sweep in SESSION_SWEEPS.items()}
        session.config.workeroutput["axe_sweeps"] = sweeps


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """On the pytest-xdist controller: add up the checks of a worker that has finished."""
    for backend, data in getattr(node, "workeroutput", {}).get("axe_sweeps", {}).items():
        SESSION_SWEEPS.setdefault(backend, AxeSweep()).add(AxeSweep.from_data(data))


def pytest_terminal_summary(terminalreporter):
    if SESSION_SWEEPS:
        terminalreporter.write_line(axe_summary(SESSION_SWEEPS))


# ------------------------------------------------------------------------------ journeys


@dataclass
class Journey:
    """The people of one journey, each in their own browser context, and what they saw."""

    browser: object
    server: LiveServer
    folder: Path
    shots: int = 0
    saw_login: bool = False
    problems: list[str] = field(default_factory=list)
    allowed_statuses: set[int] = field(default_factory=set)
    blocked: list = field(default_factory=list)  # URL predicates of the requests it aborts
    contexts: list = field(default_factory=list)
    axe: AxeSweep | None = field(default_factory=AxeSweep)

    def keep_csp(self) -> None:
        """Open the journey's pages under the app's own Content-Security-Policy, which the
        axe-core script would break: such a journey checks no accessibility."""
        assert not self.contexts, "keep_csp() comes before the journey opens any page"
        self.axe = None

    def open(self, who: str, *, phone: bool = False):
        """A page for one of the people; `phone` gives a 390×844 touch viewport."""
        options = (
            {"viewport": PHONE, "is_mobile": True, "has_touch": True, "device_scale_factor": 1}
            if phone
            else {"viewport": DESKTOP}
        )
        context = self.browser.new_context(
            base_url=self.server.url, bypass_csp=self.axe is not None, **options
        )
        context.set_default_timeout(10_000)
        self.contexts.append(context)
        page = context.new_page()
        page.on("console", lambda msg: self._console(who, msg))
        page.on("pageerror", lambda exc: self.problems.append(f"{who}: page error: {exc}"))
        page.on("response", lambda r: self._response(who, r))
        return page

    def log_in(self, page, who: str) -> None:
        from playwright.sync_api import expect

        person = self.server.person(who)
        page.goto("/login")
        if not self.saw_login:  # the same page for everyone: once per journey is enough
            self.saw_login = True
            self.shot(page, f"{who}-login")
        page.get_by_label("Email").fill(person.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.locator(".whoami")).to_contain_text(person.name)

    def expect_refusal(self, status: int) -> None:
        """A deliberate 4xx: Chromium logs it as a console error; that one log is expected."""
        self.allowed_statuses.add(status)

    def block(self, page, matches) -> None:
        """Abort the page's requests whose URL `matches` (a predicate), as a network that drops
        them would, until `unblock`: Chromium logs each as a failed load, which is expected."""
        self.blocked.append(matches)
        page.route(matches, lambda route: route.abort())

    def unblock(self, page, matches) -> None:
        # The failed loads stay expected: their logs may reach the test after this.
        page.unroute(matches)

    def shot(self, page, step: str) -> None:
        """Save the page at phone and desktop size, ending at the page's own size, and check
        it with axe-core at each; first, check that it fits a 320 px wide screen."""
        self.shots += 1
        # Measured, drawn and checked with the stylesheet in: the HTML is parsed (and a
        # locator satisfied) before the page has finished loading it.
        page.wait_for_load_state("load")
        own = page.viewport_size
        page.set_viewport_size(NARROWEST)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        if width > NARROWEST["width"]:
            self.problems.append(
                f"{page_name(page.url)} [{step}] is {width} px wide at {NARROWEST['width']} px: "
                f"it scrolls sideways ({self.widest_elements(page)})"
            )
        sizes = sorted(SIZES.items(), key=lambda item: item[1] == own)
        for size_name, size in sizes:
            if page.viewport_size != size:
                page.set_viewport_size(size)
            page.screenshot(
                path=self.folder / f"{self.shots:02d}-{step}-{size_name}.png",
                full_page=True,
                animations="disabled",
                caret="hide",
            )
            if self.axe is not None:
                self.axe.check(page, step, size_name)

    @staticmethod
    def widest_elements(page) -> str:
        """The elements that reach past the right edge, innermost first, for the message. The
        edge is the screen's (the root's client width): on a phone's viewport the window itself
        widens to the widest content, so window.innerWidth would find nothing past it."""
        return page.evaluate(
            """() => [...document.querySelectorAll("body *")]
                .filter(e => e.getBoundingClientRect().right
                             > document.documentElement.clientWidth + 0.5)
                .reverse().slice(0, 4)
                .map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
                     + (e.classList.length ? "." + [...e.classList].join(".") : ""))
                .join(", ")"""
        )

    def _console(self, who: str, msg) -> None:
        if msg.type != "error":
            return
        where = msg.location.get("url") or ""
        if "net::ERR_FAILED" in msg.text and any(matches(where) for matches in self.blocked):
            return
        refusal = REFUSAL_LOG.search(msg.text)
        if refusal and int(refusal.group(1)) in self.allowed_statuses:
            return
        self.problems.append(f"{who}: console error: {msg.text} ({where})")

    def _response(self, who: str, response) -> None:
        if response.status >= 500:
            self.problems.append(
                f"{who}: {response.status} from {response.request.method} {response.url}"
            )

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def journey(request, browser, live_server, database_url):
    """A journey named after the test; screenshots go to artifacts/<journey>/<backend>/."""
    name = request.node.originalname.removeprefix("test_")
    backend = sa.make_url(database_url).get_backend_name()
    folder = ARTIFACTS / name / backend
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    journey = Journey(browser, live_server, folder)
    try:
        yield journey
    finally:
        journey.close()
    problems = list(journey.problems)
    if journey.axe is not None:
        SESSION_SWEEPS.setdefault(backend, AxeSweep()).add(journey.axe)
        problems.extend(journey.axe.violations)
        print(axe_summary({backend: journey.axe}))
    assert not problems, "the browser reported problems:\n" + "\n".join(problems)


# ------------------------------------------------------------------------------ polls


def start_poll(page, region: str) -> None:
    """Send the polling region's request now, as its `every Ns` trigger would (same element,
    same URL, same swap), instead of waiting out the interval; `poll_handled` waits for htmx
    to have dealt with the answer (swapped it and settled the new content, or decided not to
    swap it). The progress is marked on <body>, where Playwright's expect() can see it on a
    page whose clock is paused too."""
    page.evaluate(
        """region => {
        const elt = document.querySelector(region);
        document.body.dataset.poll = "sent";
        htmx.ajax("GET", elt.getAttribute("hx-get"), {source: elt, target: elt, swap: "outerHTML"})
            .then(() => {  // the answer is dealt with, and swapped or not
                if (document.contains(elt)) {  // not swapped
                    document.body.dataset.poll = "handled";
                    return;
                }
                // A swap is done once htmx has settled the new content (a timer after the
                // swap): only then are its forms htmx's, and a click on one an htmx request.
                document.body.dataset.poll = "swapped";
                document.body.addEventListener(
                    "htmx:afterSettle", () => { document.body.dataset.poll = "handled"; },
                    {once: true});
            });
    }""",
        region,
    )


def poll_handled(page, *, clock_paused: bool = False) -> None:
    """Wait until htmx has dealt with the answer to `start_poll`. On a page whose clock is
    paused, the clock is moved on just enough for htmx to settle a swap (far less than any
    poll's interval, so no poll of the page's own fires)."""
    from playwright.sync_api import expect

    body = page.locator("body")
    if clock_paused:
        expect(body).to_have_attribute("data-poll", re.compile("swapped|handled"))
        page.clock.run_for(100)
    expect(body).to_have_attribute("data-poll", "handled")


def assert_keyboard_focus_stays_clear_of(note, presses: int = 30) -> None:
    """Tabbing on from the acted card while the note (fixed at the foot of the screen) shows:
    no control the focus reaches is drawn under it (WCAG 2.2, focus not obscured)."""
    page = note.page
    for _ in range(presses):
        page.keyboard.press("Tab")
        under = note.evaluate(
            """note => {
                if (!note.textContent) return null;  // gone: nothing can be under it
                // past the page's last control the focus leaves for the browser's own
                if (document.activeElement === document.body) return null;
                const n = note.getBoundingClientRect();
                const f = document.activeElement.getBoundingClientRect();
                const overlaps = f.bottom > n.top && f.top < n.bottom
                    && f.right > n.left && f.left < n.right;
                return overlaps ? document.activeElement.outerHTML.slice(0, 100) : null;
            }"""
        )
        assert under is None, f"focused under the confirmation: {under}"


def pause_clock(page) -> None:
    """Stop the page's clock where it is (installed with page.clock.install() before the page
    loaded): the page's own timers, its polls among them, fire only when the test moves the
    clock on."""
    page.clock.pause_at(page.evaluate("Date.now()"))


def choose_provider(picker, name: str) -> None:
    """Pick a provider in an assign or force-assign picker, whose options say why beside each
    name ("Pat Provider — available, idle 3 min")."""
    option = picker.locator("option", has_text=name).first
    picker.select_option(value=option.get_attribute("value"))

"""Browser fixtures: Debian's Chromium driven by Playwright against a real gunicorn server.

Each test gets its own server on a migrated, empty database of each backend (the `database_url`
fixture), seeded with one account per role. A `Journey` opens browser contexts for the people in
it, saves a screenshot of every page they visit at phone and desktop size under
artifacts/<journey>/<backend>/, and fails the test on any console error, page error or 5xx that
the journey did not deliberately provoke.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests.conftest import make_app

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
GUNICORN = Path(sys.executable).parent / "gunicorn"

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
SERVER_SECRET_KEY = "browser-test-secret-key"
PASSWORD = "correct horse battery"

# Chromium's log line for an answer with an error status, e.g. the deliberate 409.
REFUSAL_LOG = re.compile(r"Failed to load resource: the server responded with a status of (\d{3})")


@dataclass(frozen=True)
class Person:
    key: str
    email: str
    name: str
    role: str
    id: int = 0
    token: str = ""


PEOPLE = [
    Person("customer", "olive@example.com", "Olive Owner", "CUSTOMER"),
    Person("provider", "pat@example.com", "Pat Provider", "PROVIDER"),
    Person("other_provider", "quinn@example.com", "Quinn Provider", "PROVIDER"),
    Person("admin", "ada@example.com", "Ada Admin", "ADMIN"),
]


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed_people(database_url: str) -> dict[str, Person]:
    """One account per role, with a password (for the browser) and an API token (for the
    outside world acting through the API)."""
    from ops_portal.extensions import db
    from ops_portal.services import accounts

    app = make_app(database_url)
    with app.app_context():
        created = accounts.create_users(
            [accounts.validate_new_user(p.email, p.name, p.role, PASSWORD) for p in PEOPLE],
            with_tokens=True,
        )
        people = {
            p.key: Person(p.key, p.email, p.name, p.role, user.id, token)
            for p, (user, token) in zip(PEOPLE, created, strict=True)
        }
        db.session.remove()
        db.engine.dispose()
    return people


@dataclass
class LiveServer:
    url: str
    people: dict[str, Person]
    log: Path

    def api(self, who: str, method: str, path: str, json: dict | None = None) -> dict:
        """Act through the JSON API as one of the people (the world outside the browser)."""
        response = requests.request(
            method,
            self.url + path,
            json=json,
            headers={"Authorization": f"Bearer {self.people[who].token}"},
            timeout=10,
        )
        assert response.ok, f"{method} {path} → {response.status_code}: {response.text}"
        return response.json()

    def booking_for(self, service: str = "Leaking tap", *, assign_to: str | None = None) -> dict:
        booking = self.api(
            "customer",
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
                {"provider_id": self.people[assign_to].id},
            )
        return booking


@pytest.fixture
def live_server(database_url, tmp_path):
    """`gunicorn -w 2 -k gthread` serving the app on the test's database."""
    port = free_port()
    log = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": SERVER_SECRET_KEY,
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_COST": "1024",
    }
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            [
                str(GUNICORN),
                "-w",
                "2",
                "-k",
                "gthread",
                "--threads",
                "4",
                "-b",
                f"127.0.0.1:{port}",
                "--graceful-timeout",
                "0",
                "ops_portal:create_app()",
            ],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        people = seed_people(database_url)  # while the workers boot
        wait_until_healthy(process, url, log)
        yield LiveServer(url, people, log)
    finally:
        process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown: nothing to drain
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    server_log = log.read_text(errors="replace")
    assert "Traceback" not in server_log, f"the server logged an exception:\n{server_log}"


def wait_until_healthy(process: subprocess.Popen, url: str, log: Path, attempts: int = 150) -> None:
    """Poll /health (bounded): each failed attempt waits on the process itself, so a server
    that dies while starting is reported at once with its log."""
    for _ in range(attempts):
        try:
            if requests.get(url + "/health", timeout=5).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or workers still booting
            pass
        try:
            process.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(
            f"gunicorn exited with {process.returncode}:\n{log.read_text(errors='replace')}"
        )
    pytest.fail(f"gunicorn did not become healthy:\n{log.read_text(errors='replace')}")


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
    contexts: list = field(default_factory=list)

    def open(self, who: str, *, phone: bool = False):
        """A page for one of the people; `phone` gives a 390×844 touch viewport."""
        options = (
            {"viewport": PHONE, "is_mobile": True, "has_touch": True, "device_scale_factor": 1}
            if phone
            else {"viewport": DESKTOP}
        )
        context = self.browser.new_context(base_url=self.server.url, **options)
        context.set_default_timeout(10_000)
        self.contexts.append(context)
        page = context.new_page()
        page.on("console", lambda msg: self._console(who, msg))
        page.on("pageerror", lambda exc: self.problems.append(f"{who}: page error: {exc}"))
        page.on("response", lambda r: self._response(who, r))
        return page

    def log_in(self, page, who: str) -> None:
        from playwright.sync_api import expect

        person = self.server.people[who]
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

    def shot(self, page, step: str) -> None:
        """Save the page at phone and desktop size, ending at the page's own size."""
        self.shots += 1
        own = page.viewport_size
        sizes = sorted((("phone", PHONE), ("desktop", DESKTOP)), key=lambda item: item[1] == own)
        for size_name, size in sizes:
            if page.viewport_size != size:
                page.set_viewport_size(size)
            page.screenshot(
                path=self.folder / f"{self.shots:02d}-{step}-{size_name}.png",
                full_page=True,
                animations="disabled",
                caret="hide",
            )

    def _console(self, who: str, msg) -> None:
        if msg.type != "error":
            return
        refusal = REFUSAL_LOG.search(msg.text)
        if refusal and int(refusal.group(1)) in self.allowed_statuses:
            return
        self.problems.append(f"{who}: console error: {msg.text} ({msg.location.get('url')})")

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
    assert not journey.problems, "the browser reported problems:\n" + "\n".join(journey.problems)

"""A newcomer follows the README in real Chromium: `make run` loads the demo with
`flask --app ops_portal demo --url http://HOST:PORT/` (run here as a process of its own on the
test's fresh, migrated database, served by the backend's gunicorn) and prints where to go, who is
who and the password; they open that address and log in as the README's dispatcher, provider
and customer in turn, and each lands on their own page with demo bookings due from today on.
The dispatcher's printed API token works too."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest
import requests

from tests.support.browser import LiveServer
from tests.support.people import PrintedDemo, read_printed_demo, readme_demo_people
from tests.support.server import REQUEST_TIMEOUT, ROOT, app_environment

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips these tests (or fails them when required)
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.server]

# Where each of the README's people lands after logging in: the path, the page's heading, and
# the bookings it lists.
LANDINGS = {
    "dispatcher": ("/admin/", "Dispatch board", ".lane article.card"),
    "provider": ("/provider/", "My work queue", "#queue article.card"),
    "customer": ("/customer/", "My bookings", "article.card"),
}
# The demo's windows run from the day it is loaded to a week later (README).
DEMO_DAYS = 7


@pytest.fixture
def live_server(app, server):
    """The backend's shared server on the test's empty database, without the people of the
    other journeys: the demo fills it (overrides tests.support.browser's)."""
    return LiveServer(server.base_url, cast=None)


def load_demo(database_url: str, server_url: str) -> PrintedDemo:
    """`flask --app ops_portal demo --url <server>/`, as `make run` runs it (after migrating)."""
    command = [sys.executable, "-m", "flask", "--app", "ops_portal", "demo", "--url"]
    done = subprocess.run(
        [*command, f"{server_url}/"],
        cwd=ROOT,
        env=app_environment(database_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return read_printed_demo(done.stdout)


def window_days(cards) -> list[date]:
    """The day of each card's arrival window, as the card shows it ("Wed 06 May 2031, 09:00–…")."""
    when = cards.locator(".card-facts > div").filter(has=cards.page.get_by_text("When", exact=True))
    return [
        datetime.strptime(text.partition(",")[0], "%a %d %b %Y").date()
        for text in when.locator("dd").all_inner_texts()
    ]


def test_a_newcomer_logs_in_as_each_person_the_readme_names_and_finds_demo_work(
    journey, database_url
):
    demo = load_demo(database_url, journey.server.url)
    people = readme_demo_people()
    assert set(people) == set(LANDINGS)
    # The demo's days and the pages' times are in UTC (DISPLAY_TIMEZONE's default).
    today = datetime.now(UTC).date()

    for does, email in people.items():
        printed_as, name, _ = demo.accounts[email]
        assert printed_as == does  # the README and the printed table agree on who is who
        page = journey.open(does, phone=does == "provider")  # the queue is built for a phone
        page.goto(demo.login_url)
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(demo.password)
        page.get_by_role("button", name="Log in").click()

        path, heading, listed = LANDINGS[does]
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        expect(page).to_have_url(demo.login_url.removesuffix("/login") + path)
        expect(page.locator(".whoami")).to_contain_text(name)
        cards = page.locator(listed)
        expect(cards.first).to_be_visible()
        days = window_days(cards)
        assert len(days) == cards.count(), "every card says when"
        assert all(today <= day <= today + timedelta(days=DEMO_DAYS) for day in days), (
            f"{does}: windows on {sorted(set(days))}, today is {today}"
        )
        journey.shot(page, f"{does}-lands")

    dispatcher_token = demo.accounts[people["dispatcher"]][2]
    providers = requests.get(
        journey.server.url + "/api/admin/providers",
        headers={"Authorization": f"Bearer {dispatcher_token}"},
        timeout=REQUEST_TIMEOUT,
    )
    assert providers.status_code == 200, providers.text
    assert {provider["name"] for provider in providers.json()} == {
        name for does, name, _ in demo.accounts.values() if does == "provider"
    }

"""Live pages in real headless Chromium, against gunicorn as gunicorn.conf.py serves it (gevent
workers), on SQLite and PostgreSQL, with the regions' safety poll switched off: only the stream,
or its fallback poll, redraws a page. A dispatcher's board (desktop), a provider's queue (phone)
and a customer's bookings, each in a browser context of its own, show what the others do; a
page whose stream is blocked, or cut as soon as it opens, says so and still shows a change
through the poll, and recovers when the stream is let through; after the workers restart
(SIGHUP) every page resynchronises by itself. The journey fails on any 5xx a page saw, and the
server on any error in its log.

How long a change takes to show is measured in the pages: a MutationObserver notes the page's
Date.now() when what the test waits for first appears. The action's answer is on the same clock
(this machine's wall clock): time.time() once the API answered, or, for a click, when Chromium
had the whole answer to the form's POST (its own timing of the request). Playwright's waits
poll; the page's note does not depend on how soon the test looked. The figures are printed
(pytest -s: p50 and p95 per database), not asserted; OPS_PORTAL_LIVE_ROUNDS=N runs N lives of
a booking (four changes each: booked, assigned, accepted, completed) instead of 3."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from benchmarks.reads import percentile
from tests.support.browser import choose_provider, people_served_by
from tests.support.server import wait_for

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips these tests (or fails them when required)
    expect = PlaywrightTimeout = None

pytestmark = [pytest.mark.browser, pytest.mark.server]

ROUNDS = int(os.environ.get("OPS_PORTAL_LIVE_ROUNDS", "3"))
FALLBACK_SECONDS = 5  # LIVE_FALLBACK_POLL_SECONDS's default: how often a blocked page polls
# Only the live stream, or its fallback poll, redraws a region: no safety poll to hide behind.
SETTINGS = {"LIVE_SAFETY_POLL_SECONDS": "0", "LIVE_FALLBACK_POLL_SECONDS": str(FALLBACK_SECONDS)}
# Where each person's page listens.
STREAMS = {"board": "/live/board", "provider": "/live/queue", "customer": "/live/bookings"}
SHOWN_WITHIN = 10.0  # the bound of each wait for a change to show (the target is far less)

# Notes in the page when what a test waits for first shows: window.liveWatch(key, selector,
# text, gone) watches for an element matching `selector` whose text contains `text` (or, gone,
# for there being none), and notes its Date.now() in window.liveSeen[key].
WATCHER = """() => {
    if (window.liveWatch) return;
    const watches = [];
    window.liveSeen = {};
    function check() {
        for (let i = watches.length - 1; i >= 0; i--) {
            const w = watches[i];
            const found = [...document.querySelectorAll(w.selector)]
                .some(e => !w.text || e.textContent.includes(w.text));
            if (found !== w.gone) {
                window.liveSeen[w.key] = Date.now();
                watches.splice(i, 1);
            }
        }
    }
    new MutationObserver(check).observe(document.documentElement, {
        subtree: true, childList: true, characterData: true, attributes: true,
    });
    window.liveWatch = (key, selector, text, gone) => {
        watches.push({key, selector, text, gone});
        check();
    };
}"""


@dataclass
class Sight:
    """What one of the people waits to see on their page: an element matching `selector` whose
    text contains `text`, or (gone) none."""

    who: str
    page: object
    selector: str
    text: str | None = None
    gone: bool = False


@dataclass
class Stopwatch:
    """Watches pages for sights and keeps, for each change, the seconds from its answer to each
    other page showing it."""

    seen: list[tuple[str, str, float]] = field(default_factory=list)  # (change, who, seconds)
    armed: int = 0

    def arm(self, sight: Sight) -> str:
        key = str(self.armed)
        self.armed += 1
        sight.page.evaluate(WATCHER)
        sight.page.evaluate(
            "([key, selector, text, gone]) => window.liveWatch(key, selector, text, gone)",
            [key, sight.selector, sight.text, sight.gone],
        )
        return key

    def shown_at(self, sight: Sight, key: str, within: float = SHOWN_WITHIN) -> float:
        """When the page first showed the sight, on the wall clock (a bounded wait)."""
        try:
            sight.page.wait_for_function(
                "key => key in window.liveSeen", arg=key, polling=50, timeout=within * 1000
            )
        except PlaywrightTimeout:
            pytest.fail(
                f"the {sight.who}'s page did not show {sight.selector!r} "
                f"(text {sight.text!r}, gone: {sight.gone}) within {within} s"
            )
        return sight.page.evaluate("key => window.liveSeen[key]", key) / 1000

    def change(self, name: str, act, sights: list[Sight], within: float = SHOWN_WITHIN) -> None:
        """act(), which returns when its answer came on the wall clock, and each sight awaited
        (within `within` seconds) and timed from then."""
        keys = [self.arm(sight) for sight in sights]
        answered = act()
        for sight, key in zip(sights, keys, strict=True):
            shown = self.shown_at(sight, key, within)
            # Another page can show a change a moment before the acting one has read the
            # whole answer to it: that counts as at once.
            self.seen.append((name, sight.who, max(0.0, shown - answered)))

    def report(self, title: str) -> str:
        """p50 and p95 of every sighting, and the median of each person's."""
        values = [seconds for _, _, seconds in self.seen]
        lines = [
            f"{title}: {len(values)} sightings, p50 {percentile(values, 0.5):.3f} s, "
            f"p95 {percentile(values, 0.95):.3f} s, max {max(values):.3f} s"
        ]
        for who in sorted({who for _, who, _ in self.seen}):
            theirs = [seconds for _, someone, seconds in self.seen if someone == who]
            lines.append(f"  {who}: p50 {percentile(theirs, 0.5):.3f} s of {len(theirs)}")
        return "\n".join(lines)


def answered(page, act) -> float:
    """act() on the page, which posts a form: when the browser had the whole answer, on the
    wall clock (Chromium's own timing of the request)."""
    with page.expect_response(lambda response: response.request.method == "POST") as posted:
        act()
    response = posted.value
    assert response.ok, f"{response.status} from {response.url}"
    response.finished()
    timing = response.request.timing
    return (timing["startTime"] + timing["responseEnd"]) / 1000


def card(booking_id: int, within: str) -> str:
    return f"{within} #booking-{booking_id}"


def badge(booking_id: int, within: str) -> str:
    return f"{within} #booking-{booking_id} [data-testid=status]"


# ------------------------------------------------------------------------------ the server


@pytest.fixture
def gevent_server(start_server):
    """Gunicorn as gunicorn.conf.py runs it: two gevent workers, so a page's stream and the
    actions it hears of may be served by different processes, each with its own hub."""
    return start_server(production=True, **SETTINGS)


@pytest.fixture
def live_server(app, gevent_server):
    """The journey's people on the gevent server (overrides tests.support.browser's)."""
    return people_served_by(gevent_server)


def open_live(journey, who: str, *, phone: bool = False):
    """`who` logged in, on the live page that logging in takes them to."""
    page = journey.open(who, phone=phone)
    journey.log_in(page, who)
    expect(page.locator("#live")).to_have_count(1)
    return page


def through_api(server, who: str, path: str, body: dict) -> tuple[dict, float]:
    """A POST through the API as `who`: its answer, and when it came (the wall clock)."""
    answer = server.api(who, "POST", path, body)
    return answer, time.time()


def book(server, address: str) -> tuple[int, float]:
    """The owner books: the booking's id, and when the answer came."""
    answer, answered = through_api(
        server, "owner", "/api/bookings", {"service": "Boiler", "address": address}
    )
    return answer["id"], answered


def backend(database_url: str) -> str:
    return sa.make_url(database_url).get_backend_name()


# ------------------------------------------------------------------------------ the tests


def test_a_change_one_person_makes_shows_on_the_others_pages(journey, database_url):
    board = open_live(journey, "admin")
    phone = open_live(journey, "provider", phone=True)
    mine = open_live(journey, "owner")
    stopwatch = Stopwatch()

    for round_ in range(ROUNDS):
        # The booking's id is not known before it is made: its card is told by its address.
        address = f"{round_ + 1} Live Lane"
        booked = []

        def book_one(address=address, booked=booked):
            booking_id, answered = book(journey.server, address)
            booked.append(booking_id)
            return answered

        stopwatch.change(
            f"{round_}: booked",
            book_one,
            [
                Sight("board", board, ".lane-pending article.card", address),
                Sight("customer", mine, "#my-bookings article.card", address),
            ],
        )
        (booking_id,) = booked
        expect(mine.locator(badge(booking_id, "#my-bookings"))).to_have_text(
            "Waiting for a provider"
        )

        pending = board.locator(card(booking_id, ".lane-pending"))

        def assign(pending=pending):
            pending.locator("a.action-assign").click()
            details = pending.locator("details.action-assign")
            choose_provider(details.get_by_label("Provider"), "Pat Provider")
            return answered(board, details.get_by_role("button", name="Assign").click)

        stopwatch.change(
            f"{round_}: assigned",
            assign,
            [
                Sight("provider", phone, badge(booking_id, "#queue"), "New job — accept"),
                Sight("customer", mine, badge(booking_id, "#my-bookings"), "Provider assigned"),
            ],
        )
        expect(board.locator(card(booking_id, ".lane-assigned"))).to_be_visible()
        if round_ == 0:
            journey.shot(phone, "provider-new-job-shown-live")

        job = phone.locator(card(booking_id, "#queue"))
        stopwatch.change(
            f"{round_}: accepted",
            lambda job=job: answered(phone, job.get_by_role("button", name="Accept").tap),
            [
                Sight("board", board, card(booking_id, ".lane-in_progress")),
                Sight("customer", mine, badge(booking_id, "#my-bookings"), "In progress"),
            ],
        )
        expect(job.get_by_test_id("status")).to_have_text("In progress")

        def complete(job=job):
            job.locator("a.action-complete").tap()
            details = job.locator("details.action-complete")
            details.get_by_role("checkbox").check()
            return answered(phone, details.get_by_role("button", name="Complete").tap)

        stopwatch.change(
            f"{round_}: completed",
            complete,
            [
                Sight("board", board, card(booking_id, "#board"), gone=True),
                Sight("customer", mine, badge(booking_id, "#my-bookings"), "Completed"),
            ],
        )
        expect(job).to_have_count(0)

    print(
        "\n"
        + stopwatch.report(
            f"live pages on {backend(database_url)}, {4 * ROUNDS} changes, safety poll off"
        )
    )


def stream_of(page_path: str):
    """A URL matcher for a page's stream alone (/live/board, not /live/board/poll)."""
    return lambda url: urlsplit(url).path == page_path


def test_a_page_whose_stream_is_blocked_says_so_and_polls_until_it_opens_again(
    journey, database_url
):
    # The board's stream never gets through (route.abort: only the stream; its poll, at
    # /live/board/poll, does). The customer's is cut as soon as it opens, as a stopping worker
    # cuts it, and its browser is told to come back in a minute: the page must not count on it.
    board = journey.open("admin")
    blocked = stream_of("/live/board")
    journey.block(board, blocked)
    mine = journey.open("owner")
    cut = stream_of("/live/bookings")
    mine.route(
        cut,
        lambda route: route.fulfill(
            status=200, content_type="text/event-stream", body="retry: 60000\n\n"
        ),
    )
    polled = {"board": [], "customer": []}
    for who, page in (("board", board), ("customer", mine)):
        page.on(
            "response",
            lambda r, who=who: urlsplit(r.url).path.endswith("/poll") and polled[who].append(r),
        )
    journey.log_in(board, "admin")
    journey.log_in(mine, "owner")
    for page in (board, mine):
        expect(page.locator("#live-notice")).to_have_text(
            f"Live updates can't reach this page: it checks for changes every {FALLBACK_SECONDS} s."
        )
        expect(page.locator("#live-notice")).to_be_visible()

    stopwatch = Stopwatch()
    stopwatch.change(
        "booked, stream blocked",
        lambda: book(journey.server, "1 Blocked Road")[1],
        [
            Sight("board", board, ".lane-pending article.card", "1 Blocked Road"),
            Sight("customer", mine, "#my-bookings article.card", "1 Blocked Road"),
        ],
        # One poll's interval, and the redraw it asks for.
        within=FALLBACK_SECONDS + 1,
    )
    for who in polled:
        assert any(r.status == 200 for r in polled[who]), f"the {who}'s poll was not told"
    journey.shot(board, "board-stream-blocked")

    # Let through, the board's stream opens at the browser's next try: the notice goes.
    journey.unblock(board, blocked)
    expect(board.locator("#live-notice")).to_be_hidden()
    stopwatch.change(
        "booked, stream open again",
        lambda: book(journey.server, "2 Open Road")[1],
        [Sight("board", board, ".lane-pending article.card", "2 Open Road")],
    )
    print("\n" + stopwatch.report(f"blocked streams on {backend(database_url)}"))


def test_after_the_workers_restart_every_page_resynchronises_by_itself(
    journey, gevent_server, database_url
):
    server = journey.server
    pages = {
        "board": open_live(journey, "admin"),
        "provider": open_live(journey, "provider", phone=True),
        "customer": open_live(journey, "owner"),
    }
    reopened = {who: [] for who in pages}
    stopwatch = Stopwatch()

    def restart_then_book():
        # SIGHUP: gunicorn starts new workers on the same listening socket and stops the old
        # ones, which end their streams at once. The booking is made once every page has lost
        # its stream, before it has opened another.
        with contextlib.ExitStack() as waiting:
            for who, page in pages.items():
                waiting.enter_context(
                    page.expect_event(
                        "requestfinished",
                        lambda request, who=who: stream_of(STREAMS[who])(request.url),
                        timeout=SHOWN_WITHIN * 1000,
                    )
                )
            gevent_server.process.send_signal(signal.SIGHUP)
        for who, page in pages.items():
            page.on(
                "request",
                lambda r, who=who: stream_of(STREAMS[who])(r.url) and reopened[who].append(r),
            )
        booking_id, answered = book(server, "1 Restart Row")
        booked.append(booking_id)
        return answered

    booked = []
    stopwatch.change(
        "booked while no page had its stream",
        restart_then_book,
        [
            Sight("board", pages["board"], ".lane-pending article.card", "1 Restart Row"),
            Sight("customer", pages["customer"], "#my-bookings article.card", "1 Restart Row"),
        ],
    )
    (booking_id,) = booked
    wait_for(
        lambda: len(list(gevent_server.ready.iterdir())) == 2 * gevent_server.workers,
        "the new workers",
    )
    stopwatch.change(
        "assigned once the new workers serve",
        lambda: through_api(
            server,
            "admin",
            f"/api/bookings/{booking_id}/assign",
            {"provider_id": server.user_id("provider")},
        )[1],
        [
            Sight("board", pages["board"], card(booking_id, ".lane-assigned")),
            Sight("provider", pages["provider"], badge(booking_id, "#queue"), "New job"),
            Sight(
                "customer",
                pages["customer"],
                badge(booking_id, "#my-bookings"),
                "Provider assigned",
            ),
        ],
    )
    # Each page is live again: its stream reopened, and the notice, if it showed, is gone.
    for who, page in pages.items():
        expect(page.locator("#live-notice")).to_be_hidden(timeout=SHOWN_WITHIN * 1000)
        assert reopened[who], f"the {who}'s page did not open its stream again"
    print("\n" + stopwatch.report(f"a restart on {backend(database_url)}"))

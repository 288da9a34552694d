"""Reading live pages' streams from tests: a person logged in to a real server over HTTP, and
a stream read in a thread of its own, its events handed over on a queue (waits are bounded)."""

from __future__ import annotations

import contextlib
import queue
import re
import threading
from dataclasses import dataclass, field

import requests

from tests.support.people import PASSWORD, PERSON
from tests.support.server import REQUEST_TIMEOUT, Server

# The hub's streams, as the tests run them: heartbeats often enough that a reader notices a
# close at once, and SQLite's listener reading the logs every 50 ms.
LIVE_SETTINGS = {"LIVE_HEARTBEAT_SECONDS": "0.5", "LIVE_POLL_SECONDS": "0.05"}


def logged_in(server: Server, who: str) -> requests.Session:
    """A browser-like session of `who` (a kind of PERSON) on the server."""
    session = requests.Session()
    login = session.get(server.url("/login"), timeout=REQUEST_TIMEOUT)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login.text)[1]
    answer = session.post(
        server.url("/login"),
        data={"email": PERSON[who].email, "password": PASSWORD, "csrf_token": token},
        timeout=REQUEST_TIMEOUT,
        allow_redirects=False,
    )
    assert answer.status_code == 303, answer.text[:300]
    return session


@dataclass
class Event:
    id: str | None
    name: str | None
    data: str | None


@dataclass
class EventStream:
    """A stream opened by `session` (its cookies, and Last-Event-ID when given): its status,
    headers, the `retry:` it set and whether its `ready` event came; its other events as they
    arrive; comments counted."""

    session: requests.Session
    url: str
    last_event_id: str | None = None
    status: int = 0
    headers: dict = field(default_factory=dict)
    retry_ms: int | None = None
    comments: int = 0
    ready: bool = False  # the stream's first event came
    ended: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self):
        self._events: queue.Queue[Event] = queue.Queue()
        self._opened = threading.Event()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self._opened.wait(REQUEST_TIMEOUT), f"{self.url} did not answer"

    def _read(self) -> None:
        headers = {"Accept": "text/event-stream"}
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        try:
            with self.session.get(
                self.url, headers=headers, stream=True, timeout=REQUEST_TIMEOUT
            ) as answer:
                self.status, self.headers = answer.status_code, dict(answer.headers)
                self._opened.set()
                fields: dict[str, str] = {}
                for line in answer.iter_lines(decode_unicode=True):
                    if self._closing.is_set():
                        return
                    if line.startswith(":"):
                        self.comments += 1
                    elif line.startswith("retry:"):
                        self.retry_ms = int(line.split(":", 1)[1])
                    elif line:
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
                    elif fields:
                        event = Event(fields.get("id"), fields.get("event"), fields.get("data"))
                        if event.name == "ready":
                            self.ready = True
                        else:
                            self._events.put(event)
                        fields = {}
        except requests.RequestException:
            pass  # the server went away: `ended` says so
        finally:
            self._opened.set()
            self.ended.set()

    def next(self, within: float = 10.0) -> Event | None:
        """The next event, or None if none came `within` seconds."""
        with contextlib.suppress(queue.Empty):
            return self._events.get(timeout=within)
        return None

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=5)

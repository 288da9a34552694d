"""The live benchmark's client: one process holding N server-sent-events streams on gevent
greenlets (one OS thread), each over a raw socket, as a browser's EventSource would: it sends
the session cookie, honours the `retry:` the server sent before reconnecting (and a refusal's
Retry-After), and sends Last-Event-ID on a reconnect.

    python -m benchmarks.streams URL PATH COOKIE STREAMS REPORT_FILE

It runs apart from benchmarks/live.py so that parsing thousands of streams does not delay the
benchmark's own clock (the writer's commit times, the page reads). Commands come one a line on
stdin: `status` answers a JSON line (streams open, and how many have ended at least once);
`stop` closes every stream, writes every stream's record to REPORT_FILE (JSON) and exits.
Times are wall-clock (time.time()), comparable with the benchmark process's.
"""

from gevent import monkey

monkey.patch_all()

import contextlib  # noqa: E402  (after patching, as gevent requires)
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import gevent  # noqa: E402
from gevent import socket  # noqa: E402
from gevent.event import Event  # noqa: E402
from gevent.fileobject import FileObject  # noqa: E402
from gevent.lock import BoundedSemaphore  # noqa: E402

from .server import raise_open_files_limit  # noqa: E402

OPENING_AT_ONCE = 100  # handshakes in flight while the streams first open
CONNECT_TIMEOUT = 30.0
READ_TIMEOUT = 120.0  # well above the heartbeat: a silent stream this long is dead
DEFAULT_RETRY_MS = 3000  # what EventSource waits before the server has set `retry:`


@dataclass
class Record:
    """What one stream saw, every time in seconds since the epoch."""

    # [time, HTTP status or "error", why: a refusal's first line, the error]
    attempts: list = field(default_factory=list)
    opened: list = field(default_factory=list)  # times it began reading a 200's events
    # [time, the retry in ms it was last sent] each time the server closed an open stream
    ended: list = field(default_factory=list)
    events: list = field(default_factory=list)  # [arrival time, event id]
    retry_ms: int | None = None  # the latest `retry:` sent
    comments: int = 0


class Stream:
    def __init__(self, host: str, port: int, path: str, cookie: str):
        self.address = (host, port)
        self.request_head = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: {cookie}\r\n"
            "Accept: text/event-stream\r\nCache-Control: no-cache\r\n"
        )
        self.record = Record()
        self.last_event_id: str | None = None
        self.open = False
        self.socket: socket.socket | None = None

    def hold(self, stopping: Event, opening: BoundedSemaphore) -> None:
        """Open (the first time, once `opening` has room), read until the server ends the
        stream, wait as told, reconnect; until stopped."""
        while not stopping.is_set():
            retry_after_ms = None
            try:
                first = opening if not self.record.attempts else contextlib.nullcontext()
                retry_after_ms = self._connect_and_read(first)
            except OSError as error:
                if not stopping.is_set():  # else it is our own close
                    self.record.attempts.append([time.time(), "error", str(error)])
            finally:
                self.open = False
                if self.socket is not None:
                    self.socket.close()
                    self.socket = None
            # As EventSource: the retry the stream set (read during the stream just ended).
            stopping.wait((retry_after_ms or self.record.retry_ms or DEFAULT_RETRY_MS) / 1000)

    def _connect_and_read(self, handshake) -> int | None:
        """One connection, its handshake (up to the response's head) within `handshake`: the
        stream's events until it ends; a refusal's Retry-After in ms (None: wait the retry the
        stream set)."""
        with handshake:
            self.socket = sock = socket.create_connection(self.address, timeout=CONNECT_TIMEOUT)
            head = self.request_head
            if self.last_event_id:
                head += f"Last-Event-ID: {self.last_event_id}\r\n"
            sock.sendall((head + "\r\n").encode())
            sock.settimeout(READ_TIMEOUT)
            buffer = b""
            while b"\r\n\r\n" not in buffer:
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("closed before the response's head")
                buffer += data
        raw_head, _, buffer = buffer.partition(b"\r\n\r\n")
        status_line, *header_lines = raw_head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in header_lines)
        }
        if status != 200:
            # Its first line says why (the cap's 503 from another one).
            length = int(headers.get("content-length", "0"))
            while len(buffer) < min(length, 200):
                data = sock.recv(65536)
                if not data:
                    break
                buffer += data
            reason = buffer[:200].decode(errors="replace").split("\n", 1)[0]
            self.record.attempts.append([time.time(), status, reason])
            retry_after = headers.get("retry-after")
            return int(retry_after) * 1000 if retry_after and retry_after.isdigit() else None
        self.record.attempts.append([time.time(), status, ""])
        if headers.get("transfer-encoding", "").lower() != "chunked":
            raise ConnectionError("expected a chunked event stream")
        self.open = True
        self.record.opened.append(time.time())
        self._read_events(sock, buffer)
        self.record.ended.append([time.time(), self.record.retry_ms])
        return None

    def _read_events(self, sock: socket.socket, buffer: bytes) -> None:
        """De-chunks the body and parses its events until the last chunk or the close."""
        text = ""
        while True:
            # A whole chunk: its size line, its data, its CRLF.
            line_end = buffer.find(b"\r\n")
            size = int(buffer[:line_end], 16) if line_end >= 0 else -1
            if size == 0:
                return
            if size < 0 or len(buffer) < line_end + 2 + size + 2:
                data = sock.recv(65536)
                if not data:
                    return
                buffer += data
                continue
            text += buffer[line_end + 2 : line_end + 2 + size].decode()
            buffer = buffer[line_end + 2 + size + 2 :]
            *blocks, text = text.split("\n\n")
            arrived = time.time()
            for block in blocks:
                self._event(block, arrived)

    def _event(self, block: str, arrived: float) -> None:
        fields = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                self.record.comments += 1
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        if "retry" in fields:
            self.record.retry_ms = int(fields["retry"])
        if "id" in fields:
            self.last_event_id = fields["id"]
            self.record.events.append([arrived, fields["id"]])


def main(argv: list[str]) -> None:
    base_url, path, cookie, count, report_file = argv
    raise_open_files_limit()
    url = urlsplit(base_url)
    streams = [Stream(url.hostname, url.port, path, cookie) for _ in range(int(count))]
    stopping = Event()
    opening = BoundedSemaphore(OPENING_AT_ONCE)
    holders = [gevent.spawn(stream.hold, stopping, opening) for stream in streams]

    commands = FileObject(sys.stdin, "r")
    for command in commands:
        if command.strip() == "status":
            status = {
                "open": sum(stream.open for stream in streams),
                "ended_once": sum(bool(stream.record.ended) for stream in streams),
                "attempts": sum(len(stream.record.attempts) for stream in streams),
            }
            print(json.dumps(status), flush=True)
        elif command.strip() == "stop":
            break
    stopping.set()
    for stream in streams:
        if stream.socket is not None:
            stream.socket.close()
    gevent.joinall(holders, timeout=10)
    with open(report_file, "w") as out:
        json.dump([asdict(stream.record) for stream in streams], out)
    print(json.dumps({"written": report_file}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

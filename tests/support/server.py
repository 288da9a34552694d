"""A real gunicorn serving the app on the test's database, and real dispatcher processes beside
it, for the tests that need real processes and real sockets: the races, the faults of
idempotency, and the browser.

`server`: the backend's server, started once per session (per xdist worker) and shared by the
tests that need no settings of their own. It serves the session's database, which is reset in
place before each test (the server's connections then see the fresh contents). Before each test
it forgets the requests it has seen; after it, it waits until every request it began has ended
and fails the test on an exception in its log.

`start_server(**settings)`: a server of the test's own, with these environment settings (or
because the test breaks it: a killed worker, a terminated database backend), stopped when the
test ends.

`start_dispatchers(count, interval, **settings)`: that many `flask dispatch run` processes at
once on the test's database (the SYSTEM dispatcher, as production runs it beside the server),
stopped by the test with SIGTERM to check how they end, or else when it ends.

Gunicorn runs `-w 4 -k gthread --threads 4` (or, for the live pages, as gunicorn.conf.py has it:
gevent workers), on a socket bound and listening before it starts
(fd://N: no window in which another program could take the port), without the control socket
(the default one in $HOME would be shared by parallel servers). Each worker leaves a mark when it
has loaded the app, so a server is ready only when all of them can take part in a race; and a
line for each request it begins and ends, so a test knows which worker serves a request and when
the server is idle. Servers are stopped with SIGINT, gunicorn's quick shutdown (nothing is left
to drain once a test is done), and their process group is then killed, so that no worker that
hung on its way out outlives the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from ops_portal.extensions import db

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 4
THREADS = 4
READY_WITHIN = 30.0  # seconds for gunicorn to answer /health, and for any awaited state
REQUEST_TIMEOUT = 30.0  # above the SQLite busy timeout (15 s): a lock wait ends as 503, not here
BARRIER_TIMEOUT = 30.0
SERVER_ENV = {
    "SECRET_KEY": "server-test-secret",
    "ARGON2_TIME_COST": "1",
    "ARGON2_MEMORY_COST": "1024",
}
HOOKS = """\
import pathlib
READY, BEGUN, ENDED = (pathlib.Path(p) for p in {folders!r})


def _mark(folder, worker, req):
    with open(folder / str(worker.pid), "a") as mark:
        mark.write(req.path + "\\n")


def post_worker_init(worker):
    (READY / str(worker.pid)).touch()


def pre_request(worker, req):
    _mark(BEGUN, worker, req)


def post_request(worker, req, environ, resp):
    _mark(ENDED, worker, req)
"""


def wait_for(condition, what, within: float = READY_WITHIN):
    """Wait (bounded) until condition() reports a state another process brings about; returns
    what it reported. `what` names the state, or is a function saying it (and what the log
    shows) when the wait fails."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)  # polling a state another process reports, bounded by `within`
    pytest.fail(f"not seen within {within}s: {what() if callable(what) else what}")


def _lines(folder: Path) -> list[str]:
    return [line for mark in folder.iterdir() for line in mark.read_text().splitlines()]


# Each a file per worker pid: a worker that has loaded the app (gunicorn's post_worker_init);
# a line per request it began (pre_request) and per request it ended (post_request).
MARK_FOLDERS = ("workers-ready", "requests-begun", "requests-ended")


@dataclass
class Server:
    base_url: str
    folder: Path  # the log, the hooks and the marks
    process: subprocess.Popen
    workers: int = WORKERS
    log_offset: int = 0  # where this test's part of the log begins

    def __post_init__(self):
        self.log_path = self.folder / "gunicorn.log"
        self.ready, self.begun, self.ended = (self.folder / name for name in MARK_FOLDERS)

    def worker_serving(self, path: str) -> int:
        """The pid of the worker that began serving a request for `path` (bounded wait)."""

        def serving() -> int | None:
            for mark in self.begun.iterdir():
                if path in mark.read_text().splitlines():
                    return int(mark.name)
            return None

        return wait_for(serving, lambda: f"a worker serving {path}:\n{self.log()}")

    def log(self) -> str:
        """What the server logged during this test."""
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as log:
            log.seek(self.log_offset)
            return log.read().decode(errors="replace")

    def assert_no_errors_logged(self) -> None:
        log = self.log()
        assert "Traceback" not in log and "unhandled error" not in log, log

    def forget_requests(self) -> None:
        """A new test begins: the marks of earlier requests and the log so far are not its."""
        for folder in (self.begun, self.ended):
            for mark in folder.iterdir():
                mark.unlink()
        self.log_offset = self.log_path.stat().st_size

    def wait_until_idle(self) -> None:
        """Every request the server began has ended (bounded wait): nothing of this test is
        still running when the next one resets the database."""
        wait_for(
            lambda: len(_lines(self.begun)) <= len(_lines(self.ended)),
            lambda: f"the end of every request begun:\n{self.log()}",
        )

    def url(self, path: str) -> str:
        return self.base_url + path

    def post(
        self,
        session: requests.Session | None,
        path: str,
        token: str,
        body: dict | None = None,
        *,
        key: str | None = None,
        timeout: float = REQUEST_TIMEOUT,
    ):
        """POST `body` (JSON, {} by default) with the bearer token (and an Idempotency-Key), on
        the session's connection or, without one, a connection of its own."""
        headers = {"Authorization": f"Bearer {token}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return (session or requests).post(
            self.url(path),
            json=body if body is not None else {},
            headers=headers,
            timeout=timeout,
        )

    def get(self, session: requests.Session, path: str, token: str):
        return session.get(
            self.url(path), headers={"Authorization": f"Bearer {token}"}, timeout=REQUEST_TIMEOUT
        )

    def stop(self) -> None:
        """SIGINT, gunicorn's quick shutdown: the workers are told to quit at once, and one that
        has not exited within the graceful timeout is killed by the arbiter. A worker can hang
        while it exits (its quit is a SystemExit raised from the signal handler, wherever its
        main thread was), so whatever is left of the server's process group then goes too."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=15)


def _listening_socket() -> socket.socket:
    """A socket already bound to a free port and listening, handed to gunicorn (fd://N)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.set_inheritable(True)
    return listener


def app_environment(database_url: str, **settings: str) -> dict[str, str]:
    """The environment of a process of the app (a server, a dispatcher) on `database_url`,
    with these settings."""
    return {
        **os.environ,
        **SERVER_ENV,
        "DATABASE_URL": database_url,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        **settings,
    }


# The hooks of a server run with the repository's own gunicorn.conf.py (its settings and its
# hooks, then the test's marks).
PRODUCTION_HOOKS = """\
exec(compile(open({config!r}).read(), {config!r}, "exec"))
_production_post_worker_init = post_worker_init
{hooks}
_marks_post_worker_init = post_worker_init


def post_worker_init(worker):
    _production_post_worker_init(worker)
    _marks_post_worker_init(worker)
"""


def start_gunicorn(
    database_url: str, folder: Path, *, production: bool = False, **settings: str
) -> Server:
    """Gunicorn serving `database_url`, with these environment settings; returns once every
    worker has loaded the app and /health answers. `production`: as gunicorn.conf.py serves
    it (gevent workers, WEB_CONCURRENCY of them, its graceful timeout), instead of 4 workers of
    4 threads."""
    env = app_environment(database_url, **settings)
    marks = [folder / name for name in MARK_FOLDERS]
    for mark_folder in marks:
        mark_folder.mkdir()
    hooks = folder / "gunicorn_hooks.py"
    marking = HOOKS.format(folders=tuple(str(m) for m in marks))
    if production:
        config = str(ROOT / "gunicorn.conf.py")
        marking = PRODUCTION_HOOKS.format(config=config, hooks=marking)
    hooks.write_text(marking)
    with _listening_socket() as listener, open(folder / "gunicorn.log", "ab") as log:
        port = listener.getsockname()[1]
        command = [sys.executable, "-m", "gunicorn", "-c", str(hooks), "ops_portal:create_app()"]
        if not production:
            command += ["-w", str(WORKERS), "-k", "gthread", "--threads", str(THREADS)]
            # A test's server has nothing to drain when it stops: a worker gets 1 s to quit.
            command += ["--graceful-timeout", "1"]
        command += ["-b", f"fd://{listener.fileno()}", "--no-control-socket"]
        # Connections opened before a barrier must still be open when it releases them.
        command += ["--keep-alive", str(int(BARRIER_TIMEOUT))]
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            pass_fds=(listener.fileno(),),
            start_new_session=True,  # a process group of its own, for stop() to end whole
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    # The child holds its own copies of the socket and the log; ours are closed.
    workers = int(env.get("WEB_CONCURRENCY", "2")) if production else WORKERS
    server = Server(f"http://127.0.0.1:{port}", folder, process, workers)
    try:
        _wait_until_ready(server)
    except BaseException:
        server.stop()  # never leave a server behind, whatever went wrong
        raise
    return server


def _wait_until_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"gunicorn exited with {server.process.returncode}:\n{server.log()}")
        try:
            answered = requests.get(server.url("/health"), timeout=2).status_code == 200
            if answered and len(list(server.ready.iterdir())) >= server.workers:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass  # workers still booting (connections wait in the listen backlog)
        time.sleep(0.1)  # readiness polling only, bounded by READY_WITHIN
    pytest.fail(f"gunicorn did not answer /health within {READY_WITHIN}s:\n{server.log()}")


@dataclass
class Dispatcher:
    """A `flask --app ops_portal dispatch run` process: on stdout a JSON summary of each pass
    that did something (the bookings it expired, offered and failed), on stderr its log."""

    process: subprocess.Popen
    output_path: Path
    log_path: Path

    def summaries(self) -> list[dict]:
        """The summaries of its passes, in order (complete once it has stopped: its stdout is a
        file, flushed at exit)."""
        return [json.loads(line) for line in self.output_path.read_text().splitlines()]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until_passing(self) -> None:
        """Until it has loaded the app and begun its passes (bounded)."""

        def passing() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"the dispatcher exited with {self.process.returncode}:\n{self.log()}")
            return "dispatcher: a pass every" in self.log()

        wait_for(passing, lambda: f"the dispatcher's first pass:\n{self.log()}")

    def stop(self) -> int:
        """SIGTERM, which ends it after the pass under way; its exit status (bounded wait: a
        process that does not stop is killed, and the status says so)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=READY_WITHIN)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=READY_WITHIN)


def launch_dispatcher(database_url: str, folder: Path, interval: float, **settings: str):
    """A dispatcher process on `database_url` with these environment settings, a pass every
    `interval` seconds, its output and log in `folder`; Dispatcher.wait_until_passing tells
    when it has begun."""
    command = [sys.executable, "-m", "flask", "--app", "ops_portal", "dispatch", "run"]
    command += ["--interval", str(interval)]
    output_path, log_path = folder / "passes.jsonl", folder / "dispatcher.log"
    with open(output_path, "wb") as output, open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=app_environment(database_url, **settings),
            start_new_session=True,  # a terminal's Ctrl-C goes to pytest alone, which stops it
            stdout=output,
            stderr=log,
        )
    return Dispatcher(process, output_path, log_path)


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def shared_servers(tmp_path_factory):
    """database URL -> the server shared by the session's tests on that database."""
    servers: dict[str, Server] = {}
    yield servers
    for running in servers.values():
        running.stop()
    for running in servers.values():
        running.assert_no_errors_logged()


@pytest.fixture
def server(app, database_url, shared_servers, tmp_path_factory):
    """A real gunicorn (4 worker processes x 4 threads) serving the test's database: the
    backend's shared one. Depends on `app`, so the test's own app context outlives it."""
    if database_url not in shared_servers:
        folder = tmp_path_factory.mktemp("server")
        shared_servers[database_url] = start_gunicorn(database_url, folder)
    shared = shared_servers[database_url]
    shared.forget_requests()
    yield shared
    shared.wait_until_idle()
    shared.assert_no_errors_logged()


@pytest.fixture
def start_server(app, database_url, tmp_path):
    """start_server(**settings): a real gunicorn (4 worker processes x 4 threads; with
    production=True, as gunicorn.conf.py has it) of this test's own, serving its database with
    these environment settings. Depends on `app`, so it is stopped before the database is
    emptied or its engine disposed."""
    started: list[Server] = []

    def start(*, production: bool = False, **settings: str) -> Server:
        folder = tmp_path / f"server-{len(started)}"
        folder.mkdir()
        started.append(start_gunicorn(database_url, folder, production=production, **settings))
        return started[-1]

    try:
        yield start
    finally:
        for running in started:
            running.stop()
    for running in started:
        running.assert_no_errors_logged()


@pytest.fixture
def start_dispatchers(app, database_url, tmp_path):
    """start_dispatchers(count, interval, **settings): `count` dispatcher processes on this
    test's database at once, each a pass every `interval` seconds, with these environment
    settings. A test stops them itself to check how they ended (Dispatcher.stop); any still
    running when it ends are stopped then. Depends on `app`, as start_server does."""
    started: list[Dispatcher] = []

    def start(count: int, interval: float, **settings: str) -> list[Dispatcher]:
        for _ in range(count):  # all launched before any is awaited: they load the app at once
            folder = tmp_path / f"dispatcher-{len(started)}"
            folder.mkdir()
            started.append(launch_dispatcher(database_url, folder, interval, **settings))
        for dispatcher in started[-count:]:
            dispatcher.wait_until_passing()
        return started[-count:]

    try:
        yield start
    finally:
        for running in started:
            running.stop()
    for running in started:
        assert "Traceback" not in running.log(), running.log()


# ---------------------------------------------------------------------------------- helpers


def race(server: Server, calls):
    """Run each call(session) in its own thread, all released at once; return their responses.

    Every thread first opens its connection (GET /health), so what the barrier releases is the
    request itself, not a TCP handshake; each thread has its own keep-alive connection, so the
    requests land on different workers."""
    barrier = threading.Barrier(len(calls), timeout=BARRIER_TIMEOUT)
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            with requests.Session() as session:
                session.get(server.url("/health"), timeout=REQUEST_TIMEOUT).raise_for_status()
                barrier.wait()
                results[index] = call(session)
        except BaseException as exc:  # noqa: BLE001  (reported by the main thread)
            barrier.abort()
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, c), daemon=True) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=BARRIER_TIMEOUT + 2 * REQUEST_TIMEOUT)
        assert not thread.is_alive(), "a request thread hung"
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:  # the cause, not the BrokenBarrierError it gave the others
        raise next(
            (e for e in errors if not isinstance(e, threading.BrokenBarrierError)), errors[0]
        )
    return results


def describe(responses) -> str:
    return "\n".join(
        f"{r.status_code} {r.request.method} {r.request.url}: {r.text[:300]}" for r in responses
    )


def assert_no_server_errors(responses) -> None:
    failures = [r for r in responses if r.status_code >= 500]
    assert not failures, describe(failures)


def fresh_session() -> None:
    """Forget everything the test's own session has seen or holds (a SQLite read snapshot)."""
    db.session.expire_all()
    db.session.remove()

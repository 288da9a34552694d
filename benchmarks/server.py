"""A real gunicorn serving benchmarks/wsgi.py on 127.0.0.1, with every worker's memory sampled.

Gunicorn runs gthread workers, or with `gevent=True` as production serves it: gunicorn.conf.py
(gevent workers, its graceful timeout and hooks), live pages included. It gets a socket already
bound to a free port and listening (fd://N), as the tests' servers do, with gunicorn's own
backlog, so that thousands of streams opening at once are not dropped at the door. The server
is ready once /health answers and every worker has loaded the app. A sampler thread reads each
worker's VmRSS (the master's children, from /proc) every 0.1 s until the server stops;
`max_rss_mb` is the largest seen. Stopping: SIGTERM (gunicorn's graceful shutdown), then
whatever is left of its process group is killed.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
READY_WITHIN = 60.0  # seconds: a worker loads the app, and the first /health answers
SAMPLE_EVERY = 0.1
BACKLOG = 2048  # gunicorn's default, for the sockets it binds itself


class Server:
    def __init__(
        self,
        database_url: str,
        *,
        workers: int = 2,
        threads: int = 4,
        gevent: bool = False,
        checkout: Path | None = None,
        **env: str,
    ):
        self.database_url = database_url
        # Another checkout of the repository whose app to serve (an older commit, to compare
        # with): its ops_portal comes first on the path, this benchmark's wsgi module after.
        self.checkout = checkout
        self.workers, self.threads, self.gevent = workers, threads, gevent
        self.env = env
        self.folder = Path(tempfile.mkdtemp(prefix="ops-bench-server-"))
        self.ready_dir = self.folder / "ready"
        self.ready_dir.mkdir()
        self.log_path = self.folder / "gunicorn.log"
        self.process: subprocess.Popen | None = None
        self.base_url = ""
        self.rss_kb: dict[int, int] = {}  # the largest VmRSS seen, per worker pid
        self._stopping = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    # ------------------------------------------------------------------------------ start, stop

    def start(self) -> Server:
        env = {
            **os.environ,
            "SECRET_KEY": "benchmark-secret",
            "DATABASE_URL": self.database_url,
            "BENCH_READY_DIR": str(self.ready_dir),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            **self.env,
        }
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(BACKLOG)
        listener.set_inheritable(True)
        with listener, open(self.log_path, "ab") as log:
            port = listener.getsockname()[1]
            command = [sys.executable, "-m", "gunicorn", "benchmarks.wsgi:app"]
            if self.gevent:
                command += ["-c", str(ROOT / "gunicorn.conf.py"), "-w", str(self.workers)]
            else:
                command += ["-w", str(self.workers), "-k", "gthread"]
                command += ["--threads", str(self.threads), "--graceful-timeout", "5"]
            command += ["-b", f"fd://{listener.fileno()}", "--no-control-socket"]
            command += ["--log-level", "warning"]
            self.process = subprocess.Popen(
                command,
                cwd=self.checkout or ROOT,
                env=env,
                pass_fds=(listener.fileno(),),
                start_new_session=True,  # a process group of its own, for stop() to end whole
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.base_url = f"http://127.0.0.1:{port}"
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        self._sampler.start()
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_WITHIN
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log()}")
            with contextlib.suppress(requests.ConnectionError, requests.Timeout):
                healthy = requests.get(self.base_url + "/health", timeout=5).status_code == 200
                if healthy and len(list(self.ready_dir.iterdir())) >= self.workers:
                    return
            time.sleep(0.1)  # polling readiness, bounded by READY_WITHIN
        raise RuntimeError(f"gunicorn was not ready within {READY_WITHIN} s:\n{self.log()}")

    def stop(self) -> None:
        self._stopping.set()
        if self._sampler.is_alive():
            self._sampler.join(timeout=5)
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=15)
        if "Traceback" in self.log():
            print(f"gunicorn logged errors: see {self.log_path}", file=sys.stderr)
        else:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------------------ figures

    def restart_workers(self) -> None:
        """SIGHUP: gunicorn starts new workers and stops the old ones gracefully."""
        self.process.send_signal(signal.SIGHUP)

    def worker_rss_kb(self) -> dict[int, int]:
        """Each worker's VmRSS now, by pid."""
        found = {pid: _vm_rss_kb(pid) for pid in self.worker_pids()}
        return {pid: rss for pid, rss in found.items() if rss is not None}

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []

    def _sample(self) -> None:
        while not self._stopping.wait(SAMPLE_EVERY):
            for pid in self.worker_pids():
                rss = _vm_rss_kb(pid)
                if rss is not None and rss > self.rss_kb.get(pid, 0):
                    self.rss_kb[pid] = rss

    @property
    def max_rss_mb(self) -> float | None:
        return round(max(self.rss_kb.values()) / 1024, 1) if self.rss_kb else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def url(self, path: str) -> str:
        return self.base_url + path


def raise_open_files_limit() -> int:
    """The soft limit on open files raised to the hard one (a process holding thousands of
    streams needs a descriptor for each; gunicorn started after this inherits it); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _vm_rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None  # the worker exited between listing and reading
    return None

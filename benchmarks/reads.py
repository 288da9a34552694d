"""Page and API reads against a running server: latency, response size and SQL statements.

READS below is the one table of what is measured; edit it to measure more. Pages are read as
people read them: logged in through the real /login form (its CSRF token, then email and
password). API reads send the dataset's bearer tokens. Each read gets a few warm-up requests,
then K timed ones from each client thread.

A read that answers anything but 2xx is reported as failed, with its status.

    python -m benchmarks.reads --db sqlite --size 2000 [--requests 30] [--clients 1]
"""

from __future__ import annotations

import argparse
import html
import json
import re
import statistics
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import requests

HTMX = {"HX-Request": "true"}
REQUEST_TIMEOUT = 60.0
PAGE_ROLES = ("admin", "provider", "customer")


@dataclass(frozen=True)
class Read:
    name: str
    # Who reads: a page role logged in through /login ("admin", "provider", "customer"), or
    # "api:<role>" with that account's bearer token.
    who: str
    # The path, formatted with the dataset's facts (pending_booking_id, provider_id,
    # customer_id, rare_surname), or a function finding it with that reader's session.
    path: str | Callable[[requests.Session, dict], str]
    headers: dict[str, str] = field(default_factory=dict)


def last_page(path: str) -> Callable[[requests.Session, dict], str]:
    """A list's last page: the rel="last" link of its first page (the first page itself if it
    has no other)."""

    def find(session: requests.Session, facts: dict) -> str:
        first = session.get(facts["base_url"] + path, timeout=REQUEST_TIMEOUT).text
        link = re.search(r"<a\b[^>]*\brel=\"last\"[^>]*>", first)
        href = link and re.search(r"\bhref=\"([^\"]*)\"", link.group(0))
        return html.unescape(href.group(1)) if href else path

    return find


READS: list[Read] = [
    Read("board", "admin", "/admin/"),
    Read("board region", "admin", "/admin/board", HTMX),
    Read("board search", "admin", "/admin/?q=Plumbing"),
    Read("board service", "admin", "/admin/?service=Plumbing"),
    Read("lane full list", "admin", "/admin/lanes/pending"),
    Read("lane last page", "admin", last_page("/admin/lanes/pending")),
    Read("archive first", "admin", "/admin/archive"),
    Read("archive deep", "admin", last_page("/admin/archive")),
    Read("archive search name", "admin", "/admin/archive?q={rare_surname}"),
    Read("archive search word", "admin", "/admin/archive?q=Plumbing"),
    Read("archive cancelled", "admin", "/admin/archive?status=CANCELLED"),
    Read("booking (admin)", "admin", "/admin/bookings/{pending_booking_id}"),
    Read("booking (customer)", "customer", "/customer/bookings/{pending_booking_id}"),
    Read("timeline (htmx)", "admin", "/admin/bookings/{pending_booking_id}/timeline", HTMX),
    Read("provider queue", "provider", "/provider/"),
    Read("provider queue region", "provider", "/provider/queue", HTMX),
    Read("provider history", "provider", "/provider/history"),
    Read("provider history oldest", "provider", last_page("/provider/history")),
    Read("customer list", "customer", "/customer/"),
    Read("customer list oldest", "customer", last_page("/customer/")),
    Read("assign picker", "admin", "/admin/bookings/{pending_booking_id}/assign"),
    Read("assign picker htmx", "admin", "/admin/bookings/{pending_booking_id}/assign", HTMX),
    Read(
        "force-assign picker htmx",
        "admin",
        "/admin/bookings/{pending_booking_id}/force-assign",
        HTMX,
    ),
    Read("api booking", "api:customer", "/api/bookings/{pending_booking_id}"),
    Read("api events", "api:customer", "/api/bookings/{pending_booking_id}/events"),
    Read("api provider bookings", "api:provider", "/api/providers/{provider_id}/bookings"),
    Read("api providers", "api:admin", "/api/admin/providers"),
]


# ---------------------------------------------------------------------------------- sessions


def login(base_url: str, email: str, password: str) -> requests.Session:
    """A session logged in through the real form: GET /login for its CSRF token, then POST."""
    session = requests.Session()
    form = session.get(base_url + "/login", timeout=REQUEST_TIMEOUT)
    form.raise_for_status()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form.text)
    if token is None:
        raise RuntimeError("no csrf_token on the login page")
    answer = session.post(
        base_url + "/login",
        data={"csrf_token": token.group(1), "email": email, "password": password},
        allow_redirects=False,
        timeout=REQUEST_TIMEOUT,
    )
    if answer.status_code != 303:
        raise RuntimeError(f"login as {email} answered {answer.status_code}")
    return session


class Readers:
    """The dataset's accounts, logged in once; each client thread gets a session of its own
    carrying the same cookies or token."""

    def __init__(self, base_url: str, info: dict, roles=PAGE_ROLES):
        self.base_url, self.info = base_url, info
        self.logged_in = {
            role: login(base_url, info["accounts"][role]["email"], info["password"])
            for role in roles
        }

    def session(self, who: str) -> requests.Session:
        session = requests.Session()
        if who.startswith("api:"):
            token = self.info["accounts"][who.removeprefix("api:")]["token"]
            session.headers["Authorization"] = f"Bearer {token}"
        else:
            session.cookies.update(self.logged_in[who].cookies)
        return session

    def facts(self) -> dict:
        info = self.info
        return {
            "base_url": self.base_url,
            "pending_booking_id": info["pending_booking_id"],
            "provider_id": info["accounts"]["provider"]["id"],
            "customer_id": info["accounts"]["customer"]["id"],
            "rare_surname": info["rare_surname"],
        }


# ---------------------------------------------------------------------------------- measuring


def percentile(values: list[float], q: float) -> float:
    """The q-th quantile (0..1), interpolated between the nearest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def measure(
    readers: Readers, read: Read, *, requests_per_client: int, clients: int, warmup: int
) -> dict:
    """`read`'s figures: warm-up requests, then `requests_per_client` timed ones from each of
    `clients` threads."""
    result = sample(readers, read, requests=requests_per_client, clients=clients, warmup=warmup)
    return summarize(result)


def sample(readers: Readers, read: Read, *, requests: int, clients: int, warmup: int) -> dict:
    """The timed requests' samples (status, ms, bytes, statements) under "samples", beside
    the path read; "status" "failed" when the first request fails."""
    facts = readers.facts()
    first_session = readers.session(read.who)
    find = read.path if callable(read.path) else lambda _, facts: read.path.format(**facts)
    path = find(first_session, facts)
    result = {"who": read.who, "path": path, "samples": []}
    url = readers.base_url + path

    def get(session):
        began = time.perf_counter()
        answer = session.get(
            url, headers=read.headers, allow_redirects=False, timeout=REQUEST_TIMEOUT
        )
        elapsed = (time.perf_counter() - began) * 1000
        statements = answer.headers.get("X-Bench-Statements")
        return answer, elapsed, int(statements) if statements is not None else None

    answer, _, _ = get(first_session)
    if not answer.ok:
        return {**result, "status": "failed", "http_status": answer.status_code}
    for _ in range(warmup - 1):
        get(first_session)

    samples = result["samples"]
    lock = threading.Lock()

    def client(session):
        for _ in range(requests):
            answer, ms, statements = get(session)
            with lock:
                samples.append((answer.status_code, ms, len(answer.content), statements))

    sessions = [first_session] + [readers.session(read.who) for _ in range(clients - 1)]
    threads = [threading.Thread(target=client, args=(s,), daemon=True) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=requests * REQUEST_TIMEOUT)
    return {**result, "status": "ok"}


def summarize(result: dict) -> dict:
    """A read's figures from its samples."""
    samples = result.pop("samples")
    if result["status"] == "failed":
        return result
    failures = [status for status, *_ in samples if not 200 <= status < 300]
    latencies = [ms for _, ms, _, _ in samples]
    statements = [n for *_, n in samples if n is not None]
    return {
        **result,
        "status": "failed" if failures else "ok",
        "failures": len(failures),
        "requests": len(samples),
        "p50_ms": round(percentile(latencies, 0.5), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "bytes": round(statistics.median(size for _, _, size, _ in samples)),
        "statements": round(statistics.median(statements)) if statements else None,
        "statements_range": [min(statements), max(statements)] if statements else None,
    }


def run_reads(
    base_url: str,
    info: dict,
    *,
    requests_per_client: int = 30,
    clients: int = 1,
    warmup: int = 3,
    reads: list[Read] = READS,
    log=print,
) -> dict[str, dict]:
    """Every read of `reads` against the server at base_url; name -> figures."""
    readers = Readers(base_url, info)
    results = {}
    for read in reads:
        results[read.name] = result = measure(
            readers, read, requests_per_client=requests_per_client, clients=clients, warmup=warmup
        )
        log(describe(read.name, result))
    return results


def compare_reads(
    servers: dict[Hashable, tuple[str, dict]],
    *,
    requests_per_client: int = 30,
    clients: int = 1,
    warmup: int = 3,
    rounds: int = 5,
    reads: list[Read] = READS,
    log=print,
) -> dict[Hashable, dict[str, dict]]:
    """Every read of `reads` against servers of several sizes (size, or any key naming a
    server, -> base URL and dataset info) at once, taking turns: each read's timed requests
    come in `rounds` rounds, each round reading every size, so that a machine whose speed
    drifts during the run (a shared one's does) weighs on every size alike and their ratio
    stays true. size -> name -> figures."""
    readers = {size: Readers(base_url, info) for size, (base_url, info) in servers.items()}
    results: dict[Hashable, dict[str, dict]] = {size: {} for size in servers}
    per_round = max(1, requests_per_client // rounds)
    for read in reads:
        taken = {size: None for size in servers}
        for turn in range(rounds):
            for size, reader in readers.items():
                if taken[size] is not None and taken[size]["status"] == "failed":
                    continue
                got = sample(
                    reader,
                    read,
                    requests=per_round,
                    clients=clients,
                    warmup=warmup if turn == 0 else 0,
                )
                if taken[size] is None or got["status"] == "failed":
                    taken[size] = got
                else:
                    taken[size]["samples"].extend(got["samples"])
        for size in servers:
            results[size][read.name] = result = summarize(taken[size])
            label = f"{size:>8,}" if isinstance(size, int) else " ".join(map(str, size))
            log(f"{label} " + describe(read.name, result).lstrip())
    return results


def describe(name: str, result: dict) -> str:
    head = f"  {name:<24} {result['path'][:44]:<44}"
    if "p50_ms" not in result:
        return f"{head} FAILED: HTTP {result.get('http_status')}"
    failed = f"  FAILED {result['failures']}" if result["failures"] else ""
    return (
        f"{head} p50 {result['p50_ms']:7.1f} ms  p95 {result['p95_ms']:7.1f} ms  "
        f"{result['bytes'] / 1024:6.1f} KB  {result['statements']} statements{failed}"
    )


def main(argv=None) -> None:
    from . import dataset
    from .server import Server

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--size", type=int, default=2_000)
    parser.add_argument("--postgres-url", default=dataset.DEFAULT_POSTGRES_URL)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--out", help="write the figures as JSON to this file")
    args = parser.parse_args(argv)
    url, info = dataset.ensure(args.db, args.size, postgres_url=args.postgres_url)
    with Server(url) as server:
        results = run_reads(
            server.base_url, info, requests_per_client=args.requests, clients=args.clients
        )
        print(f"  worker RSS max {server.max_rss_mb} MB")
    if args.out:
        with open(args.out, "w") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()

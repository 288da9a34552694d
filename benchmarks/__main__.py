"""The whole benchmark: `python -m benchmarks` (make bench; make bench DB=postgresql).

For each size: the dataset (built or reused) and a fresh gunicorn serving it; every read of
benchmarks/reads.py against all of them, taking turns (reads.compare_reads). Then, on a scratch
copy of the largest dataset: the lifecycle throughput, the statements of one cycle, and the
database's ceiling for them. Prints the sizes side by side with the targets' PASS/FAIL, and
writes every figure to benchmarks/results/<db>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from . import dataset, reads, throughput
from .server import Server

RESULTS = Path(__file__).resolve().parent / "results"

# What the pages and the lifecycle should reach (PASS/FAIL columns; nothing fails the run).
TARGETS = {
    "p50_ms": 50,  # each read's median, at every size
    "ratio": 1.5,  # each read's median at the largest size / at the smallest
    "board_kb": 150,  # the dispatch board's HTML
    "rss_mb": 150,  # any gunicorn worker, at any time
    "seed_multiple": 3,  # lifecycle cycles/s, against the seed app's recorded figure
    "ceiling_share": 0.5,  # of the database's own ceiling (PostgreSQL)
}


def counts(text: str) -> list[int]:
    """A comma-separated list of counts ("2000,200_000"), smallest first: an option's type."""
    return sorted(int(part.replace("_", "")) for part in text.split(","))


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--sizes", type=counts, default="2000,200000", help="bookings, a,b,...")
    parser.add_argument("--postgres-url", default=dataset.DEFAULT_POSTGRES_URL)
    parser.add_argument("--rebuild", action="store_true", help="regenerate the datasets")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per client")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up requests per read")
    parser.add_argument("--clients", type=int, default=1, help="client threads per read")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--throughput-clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20, help="throughput duration")
    parser.add_argument("--out", help="the JSON file (default benchmarks/results/<db>.json)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse(argv)
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(args),
        "git": git(),
        "settings": {key: value for key, value in vars(args).items() if key != "postgres_url"},
        "datasets": {},
        "reads": {},
        "rss_mb": {},
    }
    infos = {}
    for size in args.sizes:
        url, info = dataset.ensure(
            args.db, size, postgres_url=args.postgres_url, rebuild=args.rebuild
        )
        infos[size] = (url, info)
        report["datasets"][size] = {
            "events": info["events"],
            "counts": info["counts"],
            "build_seconds": info["seconds"],
        }
    sizes = " and ".join(f"{size:,}" for size in args.sizes)
    print(
        f"\nReads, {sizes} bookings side by side "
        f"({args.workers} workers x {args.threads} threads each):"
    )
    with contextlib.ExitStack() as stack:
        servers = {
            size: stack.enter_context(Server(url, workers=args.workers, threads=args.threads))
            for size, (url, _) in infos.items()
        }
        report["reads"] = reads.compare_reads(
            {size: (servers[size].base_url, infos[size][1]) for size in args.sizes},
            requests_per_client=args.requests,
            clients=args.clients,
            warmup=args.warmup,
        )
        for size, server in servers.items():
            report["rss_mb"][f"reads {size}"] = server.max_rss_mb
    if not args.skip_throughput:
        report["throughput"] = lifecycle(args, *infos[args.sizes[-1]])
    report["machine"]["load_average_after"] = os.getloadavg()
    print_summary(args, report)
    out = Path(args.out) if args.out else RESULTS / f"{args.db}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"\nWritten: {out}")


def lifecycle(args, url: str, info: dict) -> dict:
    """Throughput, the statements of a cycle and the ceiling, on a scratch copy of the dataset
    (the cached one stays as built)."""
    size = info["size"]
    with dataset.scratch_copy(
        url, f"ops_bench_{size}_scratch", postgres_url=args.postgres_url
    ) as scratch:
        clients, seconds = args.throughput_clients, args.seconds
        print(
            f"\nLifecycle throughput, {size:,} bookings: {clients} client threads, "
            f"{args.workers} workers x {args.threads} threads, {seconds:g} s after a 3 s warm-up"
        )
        with Server(scratch, workers=args.workers, threads=args.threads) as server:
            app = throughput.run_throughput(server.base_url, info, clients=clients, seconds=seconds)
            rss = server.max_rss_mb
        print(f"  app: {app['cycles_per_second']} cycles/s, {app['failures']} failures")
        for example in app["failure_examples"]:
            print(f"    {example}")
        captured = throughput.capture_cycle(scratch, info)
        print("\nThe statements of one cycle (per request: how many, then each):")
        print(throughput.describe_cycle(captured))
        print(f"\nThe database's ceiling for them, {clients} clients, {seconds:g} s:")
        if args.db == "sqlite":
            ceiling = throughput.sqlite_ceiling(
                sa.make_url(scratch).database, info, clients=clients, seconds=seconds, warmup=3
            )
        else:
            ceiling = throughput.pgbench_ceiling(scratch, info, clients=clients, seconds=seconds)
        print(f"  {ceiling['tool']}: {ceiling['cycles_per_second']} cycles/s")
    return {
        "size": size,
        "app": app,
        "rss_mb": rss,
        "ceiling": ceiling,
        "statements_per_request": [
            {"request": f"{method} {path}", "statements": statements}
            for method, path, statements in captured
        ],
        "seed_cycles_per_second_recorded": throughput.SEED_CYCLES_PER_SECOND,
    }


# ---------------------------------------------------------------------------------- the summary


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("PASS" if ok else "FAIL")


def print_summary(args, report) -> None:
    small, large = args.sizes[0], args.sizes[-1]
    by_size = report["reads"]
    print(f"\nReads on {args.db}: {small:,} vs {large:,} bookings (ms; p50 target ≤ 50 ms)")
    header = (
        f"{'read':<24}{'p50 small':>10}{'p50 large':>10}{'ratio':>7}{'p95 large':>10}"
        f"{'KB large':>10}{'stmts s/l':>11}  {'p50':<6}{'ratio':<6}"
    )
    print(header)
    print("-" * len(header))
    checks = report["checks"] = {"reads": {}}
    for name in by_size[large]:
        one, other = by_size[small][name], by_size[large][name]
        if "p50_ms" not in one or "p50_ms" not in other:
            state = other["status"] if other["status"] != "ok" else one["status"]
            print(f"{name:<24}{state:>10}{'':>10}{'':>7}{'':>10}{'':>10}{'':>11}")
            continue
        ratio = other["p50_ms"] / one["p50_ms"] if small != large else None
        fast = max(one["p50_ms"], other["p50_ms"]) <= TARGETS["p50_ms"]
        scales = None if ratio is None else ratio <= TARGETS["ratio"]
        checks["reads"][name] = {"p50": fast, "ratio": scales}
        failed = "  (failures!)" if one["failures"] or other["failures"] else ""
        statements = f"{one['statements']}/{other['statements']}"
        print(
            f"{name:<24}{one['p50_ms']:>10.1f}{other['p50_ms']:>10.1f}"
            f"{f'{ratio:.2f}' if ratio else '-':>7}{other['p95_ms']:>10.1f}"
            f"{other['bytes'] / 1024:>10.1f}{statements:>11}  "
            f"{verdict(fast):<6}{verdict(scales):<6}{failed}"
        )
    rss = max((mb for mb in report["rss_mb"].values() if mb), default=None)
    if report.get("throughput"):
        rss = max(rss or 0, report["throughput"]["rss_mb"] or 0)
    board = by_size[large].get("board", {})
    board_kb = board["bytes"] / 1024 if "bytes" in board else None
    lines = [
        (
            f"dispatch board HTML ≤ {TARGETS['board_kb']} KB",
            f"{board_kb:.1f} KB" if board_kb is not None else "absent",
            None if board_kb is None else board_kb <= TARGETS["board_kb"],
        ),
        (
            f"worker RSS max ≤ {TARGETS['rss_mb']} MB",
            f"{rss} MB",
            None if rss is None else rss <= TARGETS["rss_mb"],
        ),
    ]
    passed = sum(1 for c in checks["reads"].values() if c["p50"])
    lines.insert(
        0,
        (
            f"each read p50 ≤ {TARGETS['p50_ms']} ms",
            f"{passed} of {len(checks['reads'])} reads",
            passed == len(checks["reads"]),
        ),
    )
    if small != large:
        passed = sum(1 for c in checks["reads"].values() if c["ratio"])
        lines.insert(
            1,
            (
                f"each read's p50 ratio {large:,}/{small:,} ≤ {TARGETS['ratio']}",
                f"{passed} of {len(checks['reads'])} reads",
                passed == len(checks["reads"]),
            ),
        )
    lifecycle = report.get("throughput")
    if lifecycle:
        app, ceiling = lifecycle["app"], lifecycle["ceiling"]
        seed = throughput.SEED_CYCLES_PER_SECOND
        share = app["cycles_per_second"] / ceiling["cycles_per_second"]
        print(
            f"\nLifecycle on {args.db}, {lifecycle['size']:,} bookings, "
            f"{app['clients']} client threads, {app['seconds']:g} s:"
        )
        print(
            f"  app:      {app['cycles_per_second']} cycles/s, {app['requests_per_second']} "
            f"requests/s, request p50 {app['p50_ms']} ms, p95 {app['p95_ms']} ms, "
            f"{app['failures']} failures"
        )
        print(f"  ceiling:  {ceiling['cycles_per_second']} cycles/s ({ceiling['tool']})")
        print(f"  app / ceiling: {share:.0%}")
        print(
            f"  app / the seed app's {seed} cycles/s (recorded when this benchmark was written, "
            f"not measured here): {app['cycles_per_second'] / seed:.2f}x"
        )
        lines.append(
            (
                f"throughput ≥ {TARGETS['seed_multiple']}x the seed's recorded {seed} cycles/s",
                f"{app['cycles_per_second']} cycles/s",
                app["cycles_per_second"] >= TARGETS["seed_multiple"] * seed,
            )
        )
        lines.append(
            (
                f"throughput ≥ {TARGETS['ceiling_share']:.0%} of the ceiling (PostgreSQL)",
                f"{share:.0%}",
                share >= TARGETS["ceiling_share"] if args.db == "postgresql" else None,
            )
        )
        lines.append(
            ("every lifecycle answer 2xx", f"{app['failures']} failures", not app["failures"])
        )
    print("\nTargets:")
    for what, value, ok in lines:
        print(f"  {verdict(ok):<5} {what:<58} {value}")
    checks["targets"] = [{"target": what, "value": value, "pass": ok} for what, value, ok in lines]


# ---------------------------------------------------------------------------------- context


def machine(args) -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg(),
        "sqlite": sqlite3.sqlite_version,
    }
    with contextlib.suppress(OSError, StopIteration):  # a machine without /proc/cpuinfo
        info["cpu"] = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    if args.db == "postgresql":
        from ops_portal.config import normalize_database_url

        engine = sa.create_engine(normalize_database_url(args.postgres_url))
        with engine.connect() as conn:
            info["postgresql"] = conn.exec_driver_sql("SHOW server_version").scalar()
        engine.dispose()
    return info


def git() -> dict:
    def run(*command):
        done = subprocess.run(["git", *command], capture_output=True, text=True, cwd=RESULTS.parent)
        return done.stdout.strip()

    return {
        "commit": run("rev-parse", "HEAD"),
        "branch": run("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(run("status", "--porcelain", "--untracked-files=no")),
    }


if __name__ == "__main__":
    began = time.monotonic()
    main(sys.argv[1:])
    print(f"({time.monotonic() - began:.0f} s in all)")

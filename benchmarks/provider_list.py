"""The provider list at 1,000 and 5,000 providers: `python -m benchmarks.provider_list`
(make bench-providers; DB=postgresql for PostgreSQL).

The dispatchers' list of every provider with availability (GET /api/admin/providers, the seed's
contract) is the one read whose answer grows with the number of providers rather than with a
page. Two datasets of 2,000 bookings differ only in their providers (1,000 and 5,000 by
default); each is served by a real gunicorn and the list is read from both in turns, as the
main benchmark reads its sizes. Printed: p50 and p95, size and statements per request, the
cost per 1,000 providers, and the multiple of the seed app's list time at the same sizes.

The seed app is not in this repository. When the scale work began, this list ran 32 times as
fast as the seed's at 1,000 providers and 40 times at 5,000 (the figures the scale issue
records). So the app as it was then (BASELINE, the commit before the scale work, exported from
this repository's history into benchmarks/.data/) is served beside today's on the same datasets
and read in the same turns; today's multiple of the seed's is that multiple scaled by how much
faster or slower the list has become since: 32 × baseline p50 / today's p50. Target: 20 or more.
`--baseline none` measures today's app alone.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import tarfile
from datetime import UTC, datetime
from pathlib import Path

from . import dataset, reads
from .__main__ import RESULTS, counts, machine
from .__main__ import git as run_git
from .server import Server

BOOKINGS = 2_000
LIST = next(read for read in reads.READS if read.name == "api providers")

TARGET_SEED_MULTIPLE = 20
# At the scale issue's start: how many times as fast as the seed's the list ran, by providers.
SEED_MULTIPLE_AT_BASELINE = {1_000: 32, 5_000: 40}
BASELINE = "6e7f272"


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.provider_list", description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--providers", type=counts, default="1000,5000", help="comma-separated")
    parser.add_argument("--postgres-url", default=dataset.DEFAULT_POSTGRES_URL)
    parser.add_argument("--rebuild", action="store_true", help="regenerate the datasets")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per size")
    parser.add_argument("--baseline", default=BASELINE, help="a commit to compare with, or none")
    parser.add_argument("--out", help="default benchmarks/results/providers_<db>.json")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse(argv)
    infos = {
        count: dataset.ensure(
            args.db, BOOKINGS, providers=count, postgres_url=args.postgres_url, rebuild=args.rebuild
        )
        for count in args.providers
    }
    the_machine = machine(args)  # its load average before the run
    baseline = None if args.baseline == "none" else export(args.baseline)
    print(f"\nThe provider list, {BOOKINGS:,} bookings, by number of providers:")
    apps = {"today": None, **({"baseline": baseline} if baseline else {})}
    with contextlib.ExitStack() as stack:
        servers = {
            (app, count): stack.enter_context(Server(url, checkout=checkout))
            for app, checkout in apps.items()
            for count, (url, _) in infos.items()
        }
        measured = reads.compare_reads(
            {key: (server.base_url, infos[key[1]][1]) for key, server in servers.items()},
            requests_per_client=args.requests,
            reads=[LIST],
        )
    figures = {
        app: {count: measured[(app, count)][LIST.name] for count in args.providers} for app in apps
    }
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**the_machine, "load_average_after": os.getloadavg()},
        "git": run_git(),
        "db": args.db,
        "bookings": BOOKINGS,
        "baseline": args.baseline,
        "providers": figures,
        "seed_multiple": summarize(args, figures),
    }
    out = Path(args.out) if args.out else RESULTS / f"providers_{args.db}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nWritten: {out}")


def export(commit: str) -> Path:
    """The app at `commit`, exported from this repository's history (once) into the data folder."""
    folder = dataset.DATA / f"checkout-{commit}"
    if not (folder / "ops_portal").is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit, "ops_portal", "templates", "static"],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            check=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
    return folder


def summarize(args, figures: dict[str, dict[int, dict]]) -> dict:
    """Prints each app's figures by size and today's multiple of the seed's; returns those."""
    print(
        f"\n{'app':<10}{'providers':>10}{'p50 ms':>9}{'p95 ms':>9}{'KB':>8}{'stmts':>7}"
        f"{'ms/1,000':>10}"
    )
    for app, by_count in figures.items():
        for count, result in by_count.items():
            if "p50_ms" not in result:
                print(f"{app:<10}{count:>10,}  FAILED: HTTP {result.get('http_status')}")
                continue
            print(
                f"{app:<10}{count:>10,}{result['p50_ms']:>9.1f}{result['p95_ms']:>9.1f}"
                f"{result['bytes'] / 1024:>8.1f}{result['statements']:>7}"
                f"{result['p50_ms'] / count * 1000:>10.1f}"
            )
    multiples = {}
    print(f"\nToday's multiple of the seed's list time (target ≥ {TARGET_SEED_MULTIPLE}x):")
    for count, today in figures["today"].items():
        then = figures.get("baseline", {}).get(count, {})
        if count not in SEED_MULTIPLE_AT_BASELINE or "p50_ms" not in then or "p50_ms" not in today:
            print(f"  -     {count:,} providers: no baseline to scale from")
            continue
        multiple = SEED_MULTIPLE_AT_BASELINE[count] * then["p50_ms"] / today["p50_ms"]
        multiples[str(count)] = round(multiple, 1)
        print(
            f"  {'PASS' if multiple >= TARGET_SEED_MULTIPLE else 'FAIL':<5} {count:,} providers: "
            f"{multiple:.0f}x ({SEED_MULTIPLE_AT_BASELINE[count]}x at {args.baseline}, whose list "
            f"took {then['p50_ms']:.1f} ms; today's {today['p50_ms']:.1f} ms)"
        )
    return multiples


if __name__ == "__main__":
    main()

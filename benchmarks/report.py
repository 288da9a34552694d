"""The latest figures of benchmarks/results/<db>.json as the README's table.

python -m benchmarks.report           # print the table
python -m benchmarks.report --write   # put it into README.md between its markers
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE.parent / "README.md"
BEGIN, END = "<!-- benchmarks:begin -->", "<!-- benchmarks:end -->"
DATABASES = ("sqlite", "postgresql")
NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def _load(db: str) -> dict | None:
    path = RESULTS / f"{db}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _ms(value) -> str:
    return "–" if value is None else f"{value:.1f}"


def table() -> str:
    runs = {db: run for db in DATABASES if (run := _load(db)) is not None}
    if not runs:
        return "No results yet: run `make bench`."
    first = next(iter(runs.values()))
    small, large = (str(size) for size in first["settings"]["sizes"])
    head = ["read"]
    for db in runs:
        name = NAMES[db]
        head += [f"{name} p50 ms ({int(small):,} → {int(large):,})", f"{name} ratio"]
    head += ["KB", "statements (" + " / ".join(NAMES[db] for db in runs) + ")"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for read in first["reads"][large]:
        cells, sizes, statements = [read], [], []
        for run in runs.values():
            before, after = run["reads"][small].get(read, {}), run["reads"][large].get(read, {})
            p50_small, p50_large = before.get("p50_ms"), after.get("p50_ms")
            ratio = p50_large / p50_small if p50_small and p50_large else None
            cells.append(f"{_ms(p50_small)} → {_ms(p50_large)}")
            cells.append("–" if ratio is None else f"{ratio:.2f}")
            sizes.append(after.get("bytes", 0) / 1024)
            statements.append(str(after.get("statements", "–")))
        cells += [f"{max(sizes):.1f}", " / ".join(statements)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for db, run in runs.items():
        throughput = run.get("throughput") or {}
        app, ceiling = throughput.get("app", {}), throughput.get("ceiling", {})
        seed = throughput.get("seed_cycles_per_second_recorded")
        rss = max((value for value in run.get("rss_mb", {}).values() if value), default=None)
        parts = [f"**{NAMES[db]}**: worker RSS at most {rss:.0f} MB" if rss else f"**{NAMES[db]}**"]
        if app:
            parts.append(
                f"lifecycle {app['cycles_per_second']} cycles/s "
                f"(request p50 {app['p50_ms']} ms, p95 {app['p95_ms']} ms, "
                f"{app['failures']} failures)"
            )
            if seed:
                parts.append(
                    f"{app['cycles_per_second'] / seed:.1f}× the seed app's recorded {seed}"
                )
            if ceiling.get("cycles_per_second"):
                share = app["cycles_per_second"] / ceiling["cycles_per_second"]
                parts.append(
                    f"{share:.0%} of the database's own {ceiling['cycles_per_second']} cycles/s "
                    f"({ceiling['tool']})"
                )
        machine = run["machine"]
        load = machine.get("load_average_before") or []
        parts.append(
            f"commit {run['git']['commit'][:7]}, {machine.get('cpus')} CPUs, load average "
            + (f"{load[0]:.1f}" if load else "unknown")
            + " before the run"
        )
        lines.append("- " + "; ".join(parts) + ".")
    return "\n".join(lines)


def write_readme(path: Path = README) -> None:
    text = path.read_text()
    before, _, rest = text.partition(BEGIN)
    _, _, after = rest.partition(END)
    if not rest:
        raise SystemExit(f"{path} has no {BEGIN} … {END} markers")
    path.write_text(f"{before}{BEGIN}\n{table()}\n{END}{after}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="update README.md")
    args = parser.parse_args(argv)
    if args.write:
        write_readme()
    else:
        print(table())


if __name__ == "__main__":
    main()

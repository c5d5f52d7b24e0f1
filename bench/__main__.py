"""Run the benchmark suite: `python -m bench` (= `make bench`).

    python -m bench                      # 1k and 10k stories, a few minutes on 2 cores
    python -m bench --full               # adds 100k stories (the targets are set at 100k)
    python -m bench --only handlers,e2e  # some of: handlers e2e ingest summarizer memory
    python -m bench --sizes 1k,100k      # corpus sizes for handlers, e2e and memory

Prints one table, merges each benchmark's numbers into bench/results.json and draws PNG
charts into bench/out/. Generated corpora are cached in bench/out/cache/ (git-ignored);
delete that folder to rebuild them. Each benchmark also runs alone: python -m bench.<name>.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from bench import e2e, handlers, ingest, memory, summarizer
from bench.common import (
    OUT_DIR,
    RESULTS_PATH,
    BenchResult,
    Row,
    format_table,
    merge_results,
    parse_sizes,
)

ALL: Final = ("handlers", "e2e", "ingest", "summarizer", "memory")


def _charts(results: dict[str, BenchResult]) -> list[Path]:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    plots: dict[str, Callable[[BenchResult, Path], None]] = {
        "handlers": handlers.plot,
        "e2e": e2e.plot,
        "ingest": ingest.plot,
        "summarizer": summarizer.plot,
    }
    for name, draw in plots.items():
        if name in results:
            path = OUT_DIR / f"{name}.png"
            draw(results[name], path)
            written.append(path)
    if "memory" in results:
        seed_rows = [
            row
            for row in results.get("ingest", BenchResult("")).rows
            if row.bench.startswith("memory")
        ]
        path = OUT_DIR / "memory.png"
        memory.plot(results["memory"], path, seed_rows)
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--full", action="store_true", help="add 100k stories to --sizes")
    parser.add_argument("--sizes", default="1k,10k", help="corpus sizes (handlers, e2e, memory)")
    parser.add_argument("--ingest-sizes", default="1k,10k", help="articles per newsbot seed")
    parser.add_argument("--only", default=",".join(ALL), help=f"comma list of {', '.join(ALL)}")
    parser.add_argument("--repeats", type=int, default=200, help="handlers: timed updates/round")
    parser.add_argument("--updates", type=int, default=1000, help="e2e: updates per burst")
    parser.add_argument("--rounds", type=int, default=3, help="repeats whose median is shown")
    parser.add_argument("--articles", type=int, default=100, help="summarizer: texts per corpus")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-charts", action="store_true")
    args = parser.parse_args(argv)
    sizes = parse_sizes(args.sizes)
    if args.full and 100_000 not in sizes:
        sizes.append(100_000)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in ALL]
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(unknown)}")
    runners: dict[str, Callable[[], BenchResult]] = {
        "handlers": lambda: handlers.run(
            sizes, repeats=args.repeats, rounds=args.rounds, seed=args.seed
        ),
        "e2e": lambda: e2e.run(sizes, updates=args.updates, rounds=args.rounds, seed=args.seed),
        "ingest": lambda: ingest.run(parse_sizes(args.ingest_sizes), rounds=1, seed=args.seed),
        "summarizer": lambda: summarizer.run(
            articles=args.articles, rounds=args.rounds, seed=args.seed
        ),
        "memory": lambda: memory.run(sizes, rounds=args.rounds, seed=args.seed),
    }
    results: dict[str, BenchResult] = {}
    began = time.perf_counter()
    for name in ALL:
        if name not in chosen:
            continue
        started = time.perf_counter()
        results[name] = runners[name]()
        merge_results(results[name])
        print(f"  ({name}: {time.perf_counter() - started:.0f} s)")
    rows: list[Row] = [row for result in results.values() for row in result.rows]
    print()
    print(format_table(rows))
    missed = [row for row in rows if row.ok is False]
    print(
        f"\n{len(missed)} target(s) missed; numbers in {RESULTS_PATH}; "
        f"total {time.perf_counter() - began:.0f} s"
    )
    if not args.no_charts:
        for path in _charts(results):
            print(f"chart: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

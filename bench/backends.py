"""SQLite against PostgreSQL: `python -m bench.backends [--sizes 100k] [--parts handlers,ingest]`.

The same measurements on both backends over the same corpus (bench.store's generator, cached
in bench/out/cache/): the PostgreSQL copy is made for the run with `newsbot db copy` into a
server started by tests/pg_server.py (pgserver or the system's PostgreSQL, default settings:
every commit waits for the disk, where SQLite in WAL mode with synchronous=NORMAL does not).

- handlers: in-process handler latency (bench.handlers: the real Application, no network),
  p50/p99 per command;
- ingest: `newsbot seed` of 1,000 typical articles into a store already holding the corpus,
  stories per second (each run starts from a fresh copy: SQLite file copy, or
  CREATE DATABASE ... TEMPLATE on PostgreSQL).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from pathlib import Path
from typing import Final

from bench import handlers
from bench.common import (
    JSON,
    BenchResult,
    Row,
    corpus_db,
    median,
    parse_sizes,
    report,
    size_label,
    working_copy,
)

NAME: Final = "backends"
PARTS: Final = ("handlers", "ingest")
SEED_ARTICLES: Final = 1000


async def _admin(url: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def postgres_corpus(n: int, seed: int) -> Iterator[tuple[str, str]]:
    """(server URL, URL of a database holding the n-story corpus) for the block."""
    from bot.cli_db import copy_stories
    from storage.backend import sqlite_url
    from tests.pg_server import database_url, start_server

    source = corpus_db(n, seed)
    server = start_server()
    try:
        name = f"corpus_{n}"
        asyncio.run(_admin(server.url, f'CREATE DATABASE "{name}"'))
        url = database_url(server.url, name)
        print(f"  copying the {size_label(n)} corpus into PostgreSQL ({server.how})...")
        began = time.perf_counter()
        copied = asyncio.run(copy_stories(sqlite_url(source), url, batch_size=500))
        if not copied.complete:
            raise RuntimeError(f"the copy is incomplete: {copied}")
        print(f"  copied in {time.perf_counter() - began:.0f} s")
        yield server.url, url
    finally:
        server.stop()


def _handlers(path: Path, n: int, seed: int, rounds: int, url: str | None) -> dict[str, JSON]:
    per_round, _ = asyncio.run(
        handlers.measure_size(path, n, repeats=200, rounds=rounds, seed=seed, database_url=url)
    )
    return {command: handlers.median_summary(runs) for command, runs in per_round.items()}


def _seed_runs(
    database: Callable[[], AbstractContextManager[dict[str, str]]], rounds: int, seed: int
) -> list[JSON]:
    from bench.ingest import articles, seed_once

    source = articles(SEED_ARTICLES, seed + 1, "file")
    runs = []
    for _ in range(rounds):
        with database() as env:
            runs.append(seed_once(source, 1, database=env))
    return runs


@contextmanager
def _sqlite_copy(corpus: Path) -> Iterator[dict[str, str]]:
    with working_copy(corpus) as path:
        yield {"DATABASE_PATH": str(path)}


_copies = itertools.count()


@contextmanager
def _postgres_copy(server_url: str, template: str) -> Iterator[dict[str, str]]:
    from tests.pg_server import database_url

    name = f"seed_{next(_copies)}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield {"DATABASE_URL": database_url(server_url, name)}
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE "{name}"'))


def run(
    sizes: Sequence[int],
    *,
    parts: Sequence[str] = PARTS,
    rounds: int = 3,
    seed: int = 7,
) -> BenchResult:
    result = BenchResult(NAME, partial=bool(set(PARTS) - set(parts)))
    data: JSON = {"rounds": rounds, "sizes": {}}
    for n in sizes:
        label = size_label(n)
        measured: JSON = {}
        data["sizes"][str(n)] = measured
        corpus = corpus_db(n, seed)
        with postgres_corpus(n, seed) as (server_url, pg_url):
            copies = {
                "sqlite": partial(_sqlite_copy, corpus),
                "postgres": partial(_postgres_copy, server_url, f"corpus_{n}"),
            }
            for backend, url in (("sqlite", None), ("postgres", pg_url)):
                if "handlers" in parts:
                    print(f"backends: handlers on {backend}, {label} stories...")
                    with working_copy(corpus) as path:
                        summaries = _handlers(path, n, seed, rounds, url)
                    measured[f"handlers/{backend}"] = summaries
                    for command, summary in summaries.items():
                        result.rows.append(
                            Row(
                                bench=f"{backend} {command}",
                                size=label,
                                metric="p99",
                                value=summary["p99_ms"],
                                unit="ms",
                                target=f"< {handlers.TARGET_P99_MS:g}",
                                ok=summary["p99_ms"] < handlers.TARGET_P99_MS,
                                note=f"p50 {summary['p50_ms']:.2f}",
                            )
                        )
                if "ingest" in parts:
                    print(f"backends: seed of {SEED_ARTICLES} articles on {backend}, {label}...")
                    runs = _seed_runs(copies[backend], rounds, seed)
                    measured[f"ingest/{backend}"] = runs
                    rate = median([r["per_s"] for r in runs])
                    result.rows.append(
                        Row(
                            bench=f"{backend} seed of {SEED_ARTICLES}",
                            size=label,
                            metric="stories/s",
                            value=rate,
                            unit="/s",
                            note="runs " + ", ".join(f"{r['per_s']:.0f}" for r in runs),
                        )
                    )
    result.data = data
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.backends", description=__doc__)
    parser.add_argument("--sizes", default="100k")
    parser.add_argument("--parts", default="handlers,ingest")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    result = run(
        parse_sizes(args.sizes),
        parts=[part.strip() for part in args.parts.split(",")],
        rounds=args.rounds,
        seed=args.seed,
    )
    report(result, write=not args.no_write)


if __name__ == "__main__":
    main()

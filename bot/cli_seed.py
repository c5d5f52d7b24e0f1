"""`newsbot seed`: bulk ingest from files, folders, globs, URLs or stdin."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import Progress

from bot.seed_inputs import STREAMED_SUFFIXES, expand_inputs
from bot.settings import Settings
from ingest.report import IngestError, IngestReport, Rejected

if TYPE_CHECKING:
    from ingest.pipeline import Ingestor, ProgressCallback

# SQLite page cache per connection while seeding, in KiB (serving uses 16 MB): the seed's
# reads are the candidate searches, which the OS's file cache serves as well. At 10k
# articles it took the seed's peak RSS from 226 to 201 MB at the same speed (158 stories/s).
_SEED_PAGE_CACHE_KIB = 4_000
# A seed that added at least this share of the stored stories compacts the full-text index:
# the rewrite reads and writes the whole index, so a small seed into a large store skips it.
_COMPACT_SHARE = 0.1
# The cyclic garbage collector's youngest-generation threshold while seeding (CPython's
# default is 700 container allocations). A seed keeps tens of thousands of containers alive
# (cached candidate vectors, the vocabulary), and every tenth young collection walks an older
# generation: at the default a 10k seed ran 2,650 collections, 22 of them full, for 2.2 s of
# the main process's time, all of it holding the GIL the ranking needs. At 10,000 it ran 163
# (one full) for 0.8 s, peak RSS within 1 MB; at 50,000, 4 for 0.06 s, but the peak grew by
# 2 MB (cyclic garbage waits longer): what the seed frees, reference counting frees.
_SEED_GC_THRESHOLD = 10_000


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "seed",
        help="store stories from files, folders, globs, URLs or - (stdin)",
        description="Ingest stories in bulk. Exit 0: all stored or skipped as duplicates; "
        "1: some were rejected; 2: usage error.",
    )
    parser.add_argument("inputs", nargs="+", metavar="PATH_OR_URL")
    parser.add_argument(
        "--if-empty", action="store_true", help="do nothing when the database has stories"
    )
    parser.add_argument("--quiet", action="store_true", help="print only the final report")
    parser.add_argument("--workers", type=int, default=None, help="processes for summarising")


async def _seed(
    targets: list[str], args: argparse.Namespace, settings: Settings, err: Console
) -> int:
    from bot.ingestor import make_ingestor
    from storage.backend import is_postgres_url, open_store, sqlite_path

    url = settings.store_url
    if not is_postgres_url(url):
        sqlite_path(url).parent.mkdir(parents=True, exist_ok=True)
    store = await open_store(url, page_cache_kib=_SEED_PAGE_CACHE_KIB, readers=2)
    try:
        if args.if_empty and await store.count() > 0:
            if not args.quiet:
                err.print("The database already has stories; not seeding.", markup=False)
            return 0
        ingestor = make_ingestor(store, settings, workers=args.workers)
        report = IngestReport()
        show_progress = not args.quiet and err.is_terminal
        with Progress(console=err, disable=not show_progress, transient=True) as progress:
            for target in targets:
                task = progress.add_task(target[-40:], total=None)
                report.merge(await _seed_one(ingestor, target, partial(progress.advance, task)))
                progress.remove_task(task)
        if report.added and len(report.added) >= _COMPACT_SHARE * await store.count():
            # A bulk load leaves the full-text index in several pieces that every search
            # then reads; one rewrite costs less than the serving bot's searches would.
            await store.compact_search_index()
    finally:
        await store.close()
    _print_report(report, Console())
    return 0 if report.ok else 1


async def _seed_one(ingestor: Ingestor, target: str, progress: ProgressCallback) -> IngestReport:
    try:
        if target.startswith(("http://", "https://")):
            return await ingestor.ingest_url(target)
        if target == "-":
            data = await asyncio.to_thread(sys.stdin.buffer.read)
            return await ingestor.ingest_bytes(
                data, origin="stdin", progress=progress, trusted=True
            )
        path = Path(target)
        if path.suffix.lower() in STREAMED_SUFFIXES:
            # Read a batch at a time: a bulk file can be far larger than what fits in memory.
            lines = await asyncio.to_thread(path.open, "rb")
            with lines:
                return await ingestor.ingest_jsonl(lines, origin=target, progress=progress)
        data = await asyncio.to_thread(path.read_bytes)
        return await ingestor.ingest_bytes(
            data, filename=path.name, origin=target, progress=progress, trusted=True
        )
    except (IngestError, OSError) as exc:
        return IngestReport(rejected=[Rejected(target, str(exc))])


def _print_report(report: IngestReport, out: Console) -> None:
    out.print(
        f"added {len(report.added)}, duplicates skipped {len(report.duplicates)}, "
        f"rejected {len(report.rejected)}",
        markup=False,
    )
    for rejected in report.rejected[:50]:
        out.print(f"  rejected {rejected.location}: {rejected.reason}", markup=False)
    if len(report.rejected) > 50:
        out.print(f"  ... and {len(report.rejected) - 50} more", markup=False)


def run(args: argparse.Namespace, settings: Settings) -> int:
    err = Console(stderr=True)
    targets = list(expand_inputs(args.inputs))
    missing = [t for t in targets if t != "-" and "://" not in t and not Path(t).is_file()]
    if missing:
        err.print(f"newsbot seed: no such file: {missing[0]}", markup=False)
        return 2
    with _fewer_collections():
        return asyncio.run(_seed(targets, args, settings, err))


@contextmanager
def _fewer_collections() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(_SEED_GC_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)

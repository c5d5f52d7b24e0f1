"""`newsbot seed`: bulk ingest from files, folders, globs, URLs or stdin."""

from __future__ import annotations

import argparse
import asyncio
import glob
import sys
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import Progress

from bot.settings import Settings
from ingest.report import IngestError, IngestReport, Rejected

if TYPE_CHECKING:
    from ingest.pipeline import Ingestor, ProgressCallback

# Local inputs at least this large (about 75 typical articles) are summarised in the process
# pool (ingest.pipeline.POOL_THRESHOLD), so its server is worth starting before the imports.
_EARLY_POOL_BYTES = 256_000
# SQLite page cache per connection while seeding, in KiB (serving uses 16 MB): the seed's
# reads are the candidate searches, which the OS's file cache serves as well. At 10k
# articles it took the seed's peak RSS from 226 to 201 MB at the same speed (158 stories/s).
_SEED_PAGE_CACHE_KIB = 4_000

STREAMED_SUFFIXES = {".jsonl", ".ndjson"}
SUFFIXES = {".txt", ".md", ".markdown", ".json", ".xml", ".rss", ".atom", ".html", ".htm"}
SUFFIXES |= STREAMED_SUFFIXES


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


def expand_inputs(inputs: list[str]) -> Iterator[str]:
    """Files as given, folders recursively (known suffixes), globs expanded; URLs and - kept."""
    for item in inputs:
        if item == "-" or item.startswith(("http://", "https://")):
            yield item
            continue
        path = Path(item)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                # A folder's README describes the files; it is not a story.
                if (
                    child.is_file()
                    and child.suffix.lower() in SUFFIXES
                    and not child.name.upper().startswith("README")
                ):
                    yield str(child)
        elif path.exists():
            yield item
        else:
            matches = sorted(glob.glob(item, recursive=True))
            yield from matches if matches else [item]


def start_pool_early(argv: Sequence[str]) -> None:
    """Start the summarising pool's server now if `newsbot seed ARGV` will use the pool.

    Called before the command's imports (the pipeline's alone are about 0.4 s), which the
    server then does side by side with this process instead of after it. Only `--workers`
    and the local inputs' sizes are looked at; the real parser reports any usage error.
    """
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--workers")
    known, rest = early.parse_known_args(argv)
    if known.workers is not None and known.workers.strip() == "1":
        return
    named = [item for item in rest if not item.startswith("-")]
    files = [Path(item) for item in expand_inputs(named) if "://" not in item]
    if sum(path.stat().st_size for path in files if path.is_file()) >= _EARLY_POOL_BYTES:
        from ingest.pool import start_early

        start_early()


async def _seed(
    targets: list[str], args: argparse.Namespace, settings: Settings, err: Console
) -> int:
    from bot.ingestor import make_ingestor
    from storage.backend import is_postgres_url, open_store, sqlite_path

    url = settings.store_url
    if not is_postgres_url(url):
        sqlite_path(url).parent.mkdir(parents=True, exist_ok=True)
    store = await open_store(url, page_cache_kib=_SEED_PAGE_CACHE_KIB)
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
    return asyncio.run(_seed(targets, args, settings, err))

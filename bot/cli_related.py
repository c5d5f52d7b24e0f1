"""`newsbot related`: a stored story's related stories, by id or URL, as JSON or a list."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from ingest.pipeline import RELATED_LIMIT, RelatedIndexer
from storage.backend import StoryRepository, is_postgres_url, open_store, sqlite_path, sqlite_url
from storage.errors import StoreError
from storage.models import Story


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "related",
        help="print the stories related to stored stories (by id or URL)",
        description="Print each story's stored related list, best first (ranked now if it "
        "has none yet). Exit 0: every REF found; 1: some were not; 2: usage error.",
    )
    parser.add_argument("refs", nargs="+", metavar="REF", help="a story id or URL")
    parser.add_argument("--json", action="store_true", help="one JSON object per REF")
    parser.add_argument(
        "--limit",
        type=_limit,
        default=RELATED_LIMIT,
        help=f"related stories per REF (1-{RELATED_LIMIT}, default {RELATED_LIMIT})",
    )
    parser.add_argument(
        "--db",
        default=None,
        help="database file or URL (default: DATABASE_URL, else DATABASE_PATH)",
    )


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= RELATED_LIMIT:
        raise argparse.ArgumentTypeError(f"must be 1-{RELATED_LIMIT}, got {value}")
    return value


async def _find(store: StoryRepository, ref: str) -> Story | None:
    text = ref.strip()
    if text.isascii() and text.isdecimal():
        return await store.get(int(text))
    return await store.get_by_url(text)


async def related_json(store: StoryRepository, ref: str, limit: int) -> dict[str, Any]:
    """The object printed for one REF: the story and its related list, or an error."""
    story = await _find(store, ref)
    if story is None:
        return {"ref": ref, "error": f"no stored story with id or URL {ref!r}"}
    entries = await store.related_of(story.id, limit)
    if not entries and await store.related_computed_at(story.id) is None:
        await RelatedIndexer(store).refresh([story.id])
        entries = await store.related_of(story.id, limit)
    return {
        "ref": ref,
        "id": story.id,
        "url": story.url,
        "title": story.title,
        "related": [
            {
                "id": entry.story.id,
                "url": entry.story.url,
                "title": entry.story.title,
                "score": entry.score,
                "copies": list(entry.copies),
                "outlets": list(entry.outlets),
            }
            for entry in entries
        ],
    }


def _print_readable(result: dict[str, Any], out: TextIO) -> None:
    if "error" in result:
        print(f"{result['ref']}: {result['error']}", file=out)
        return
    url = f"  {result['url']}" if result["url"] else ""
    print(f"#{result['id']} {result['title']}{url}", file=out)
    if not result["related"]:
        print("  nothing related found yet", file=out)
    for n, item in enumerate(result["related"], start=1):
        outlets = f" [{', '.join(item['outlets'])}]" if len(item["outlets"]) > 1 else ""
        print(f"  {n:2}. #{item['id']} {item['title']} ({item['score']:.3f}){outlets}", file=out)
        if item["url"]:
            print(f"      {item['url']}", file=out)


async def _run(args: argparse.Namespace, url: str, out: TextIO) -> int:
    found_all = True
    async with await open_store(url) as store:
        for ref in args.refs:
            result = await related_json(store, ref, args.limit)
            found_all = found_all and "error" not in result
            if args.json:
                print(json.dumps(result, ensure_ascii=False), file=out)
            else:
                _print_readable(result, out)
    return 0 if found_all else 1


def run(args: argparse.Namespace, store_url: str | None, out: TextIO | None = None) -> int:
    """Run the command; `--db` (a file or URL) wins over `store_url` (the settings')."""
    url = store_url
    if args.db is not None:
        url = args.db if "://" in args.db else sqlite_url(Path(args.db))
    if url is None:
        print("newsbot related: no database: pass --db or set DATABASE_URL", file=sys.stderr)
        return 2
    try:
        if not is_postgres_url(url) and not sqlite_path(url).is_file():
            print(f"newsbot related: no database at {sqlite_path(url)}", file=sys.stderr)
            return 2
        return asyncio.run(_run(args, url, out or sys.stdout))
    except StoreError as exc:
        print(f"newsbot related: {exc}", file=sys.stderr)
        return 2

"""`newsbot db copy --from URL --to URL`: copy a whole store to another, either way.

Either URL may be ``sqlite:///path`` or ``postgresql://...``. The copy is:

- idempotent: stories already in the destination (same URL or fingerprint) are skipped, so
  running it twice copies nothing the second time;
- resumable: after each committed batch the last copied source id is recorded in the
  destination's meta table, and a new run starts after it (from the beginning, harmlessly, if
  that story is gone from the source);
- checked: at the end every source story must be accounted for (copied or already there),
  every chat copied, and the destination must hold at least as many stories and chats as the
  source; exit 1 otherwise.

Stories are copied in ingest (id) order, keeping their ingest times, so links between stories
resolve on the destination (by the copied story's new id, or by URL). Then, through a map of
source to destination story ids (bot.db_copy): relatedness features and related lists,
chats with their time zone, digest time and subscriptions, and the delivery marks (pushed
and digested through which story), so no subscriber is sent an old story again. The
copy's own resume points are the only meta entries not copied.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TextIO

from rich.console import Console
from rich.progress import Progress

from bot import db_copy
from storage.backend import StoryRepository, open_store, open_subscriptions
from storage.errors import StoreError, UnknownStoryError
from storage.models import NewStory, Story

__all__ = ["CopyReport", "add_parser", "copy_stories", "progress_key", "run"]

DEFAULT_BATCH = 200
_SCAN_PAGE = 500


@dataclass(frozen=True, slots=True)
class CopyReport:
    source_stories: int
    copied: int
    already_there: int
    skipped_as_done: int  # before the resume point, not looked at again
    destination_stories: int
    related_lists: int = 0
    source_chats: int = 0
    chats: int = 0
    destination_chats: int = 0

    @property
    def complete(self) -> bool:
        accounted = self.copied + self.already_there + self.skipped_as_done
        return (
            accounted == self.source_stories
            and self.destination_stories >= self.source_stories
            and self.chats == self.source_chats
            and self.destination_chats >= self.source_chats
        )


class _SettableClock:
    """The destination's clock: copied related lists keep (about) when they were computed."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment


def progress_key(source_url: str) -> str:
    """The destination meta key holding the resume point for copies from this source."""
    digest = hashlib.sha256(source_url.encode()).hexdigest()[:16]
    return f"db_copy.{digest}.last_source_id"


async def _ids_in_ingest_order(source: StoryRepository) -> list[int]:
    # Ids grow with ingestion, and a stored link can only point at a story stored before it,
    # so copying in id order puts every link target in the destination before its link.
    ids: list[int] = []
    cursor: int | None = None
    while True:
        page = await source.latest(_SCAN_PAGE, older_than=cursor)
        if not page:
            break
        ids.extend(story.id for story in page)
        cursor = page[-1].id
    return sorted(ids)


def _as_new(story: Story, id_map: dict[int, int]) -> NewStory:
    # A link's story id is a source id: keep it only if that story's copy is known, else let
    # the destination resolve the link by URL.
    links = tuple(
        replace(link, story_id=None if link.story_id is None else id_map.get(link.story_id))
        for link in story.links
    )
    return NewStory(
        title=story.title,
        body=story.body,
        cleaned_text=story.cleaned_text,
        summary=story.summary,
        algorithm=story.algorithm,
        fingerprint=story.fingerprint,
        url=story.url,
        source=story.source,
        language=story.language,
        published_at=story.published_at,
        links=links,
        ingested_at=story.ingested_at,
    )


def _runs(stories: Sequence[Story]) -> list[list[Story]]:
    """Consecutive stories to add together, split where a story links to one in its own
    run: that link's target needs its new id before the linking story is added."""
    runs: list[list[Story]] = []
    in_run: set[int] = set()
    for story in stories:
        linked = {link.story_id for link in story.links}
        if runs and not linked & in_run:
            runs[-1].append(story)
        else:
            runs.append([story])
            in_run = set()
        in_run.add(story.id)
    return runs


async def copy_stories(
    source_url: str,
    destination_url: str,
    *,
    batch_size: int = DEFAULT_BATCH,
    on_batch: Callable[[int, int], None] | None = None,
) -> CopyReport:
    """Copy every story from source to destination; see the module docstring."""
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    clock = _SettableClock()
    key = progress_key(source_url)
    async with (
        await open_store(source_url) as source,
        await open_store(destination_url, clock=clock) as destination,
    ):
        ids = await _ids_in_ingest_order(source)
        resume = await destination.get_meta(key)
        start = 0
        if resume is not None and resume.isdecimal() and int(resume) in ids:
            start = ids.index(int(resume)) + 1
        id_map: dict[int, int] = {}
        copied = already = 0
        for offset in range(start, len(ids), batch_size):
            chunk = ids[offset : offset + batch_size]
            found = await source.get_many(chunk)
            stories = [found[story_id] for story_id in chunk if story_id in found]
            for run in _runs(stories):
                results = await destination.add_many([_as_new(s, id_map) for s in run])
                for story, result in zip(run, results, strict=True):
                    id_map[story.id] = result.story_id
                    if result.created:
                        copied += 1
                    else:
                        already += 1
            # Deleted from the source since the scan: nothing to copy, but accounted for.
            already += len(chunk) - len(stories)
            await destination.set_meta(key, str(chunk[-1]))
            if on_batch is not None:
                on_batch(offset + len(chunk), len(ids))
        # Cheap to redo, so done in full on every run: what names a story goes through the
        # id map, rebuilt from the stores themselves (a resumed run has no earlier map).
        story_map = await db_copy.map_story_ids(source, destination, ids)
        related = await db_copy.copy_related(source, destination, story_map, clock.set)
        await db_copy.copy_push_mark(source, destination, story_map)
        source_subs = await open_subscriptions(source_url)
        try:
            destination_subs = await open_subscriptions(destination_url)
            try:
                chats = await db_copy.copy_chats(source_subs, destination_subs, story_map)
                source_chats = await source_subs.count_chats()
                destination_chats = await destination_subs.count_chats()
            finally:
                await destination_subs.close()
        finally:
            await source_subs.close()
        return CopyReport(
            source_stories=len(ids),
            copied=copied,
            already_there=already,
            skipped_as_done=start,
            destination_stories=await destination.count(),
            related_lists=related,
            source_chats=source_chats,
            chats=chats,
            destination_chats=destination_chats,
        )


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `newsbot db copy`."""
    parser = subparsers.add_parser(
        "db",
        help="database tools (copy stories between SQLite and PostgreSQL)",
        description="Database tools.",
    )
    commands = parser.add_subparsers(dest="db_command", metavar="DB_COMMAND", required=True)
    copy = commands.add_parser(
        "copy",
        help="copy a whole store (stories, related lists, chats) to another",
        description="Copy every story (with links), related list, chat and subscription from "
        "--from to --to, e.g. SQLite to PostgreSQL. Idempotent and resumable. Exit 0: "
        "everything is in the destination; 1: the counts do not add up or a store failed; "
        "2: usage error.",
    )
    copy.add_argument("--from", dest="source", required=True, metavar="URL")
    copy.add_argument("--to", dest="destination", required=True, metavar="URL")
    copy.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="stories per batch")


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run `newsbot db copy`; returns the exit code."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    if args.source == args.destination:
        print("newsbot db copy: --from and --to are the same store", file=err)
        return 2
    if args.batch < 1:
        print("newsbot db copy: --batch must be at least 1", file=err)
        return 2
    console = Console(file=err)
    try:
        with Progress(console=console, disable=not console.is_terminal, transient=True) as bar:
            task = bar.add_task("copying stories", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = asyncio.run(
                copy_stories(args.source, args.destination, batch_size=args.batch, on_batch=advance)
            )
    except (StoreError, UnknownStoryError) as exc:
        print(f"newsbot db copy: {exc}", file=err)
        return 1
    print(
        f"source stories: {report.source_stories}; copied: {report.copied}; already there: "
        f"{report.already_there}; done by an earlier run: {report.skipped_as_done}; "
        f"destination stories: {report.destination_stories}; related lists: "
        f"{report.related_lists}; chats: {report.chats} of {report.source_chats} "
        f"(destination {report.destination_chats})",
        file=out,
    )
    if not report.complete:
        print("newsbot db copy: counts do not add up; run it again", file=err)
        return 1
    return 0

"""What `newsbot db copy` moves after the stories: related lists, chats and delivery marks.

Story ids differ between the two stores (each numbers its own stories, and a story may
already have been in the destination under another id), so everything that names a story
goes through a `StoryIdMap` built by matching each source story to its destination copy by
URL, else by content fingerprint, exactly as the store's duplicate check does.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Final

from storage.backend import StoryRepository
from storage.models import RelatedRow, Story
from storage.subscriptions import PUSH_MARK_KEY, SubscriptionRepository

__all__ = ["StoryIdMap", "copy_chats", "copy_push_mark", "copy_related", "map_story_ids"]

PAGE: Final = 500


class StoryIdMap:
    """Source story id -> destination story id, for the stories both stores hold."""

    def __init__(self, pairs: dict[int, int]) -> None:
        self.pairs = pairs
        self._sources = sorted(pairs)
        # The newest destination id among the sources up to each position, for mark().
        self._newest = list(itertools.accumulate((pairs[s] for s in self._sources), max))

    def get(self, source_id: int) -> int | None:
        return self.pairs.get(source_id)

    def mark(self, source_mark: int) -> int:
        """A "stories after id N" mark in destination ids: the copy of the newest story at
        or before the source mark (0 if none), so nothing already delivered is new again."""
        at = bisect.bisect_right(self._sources, source_mark)
        return self._newest[at - 1] if at else 0


async def _destination_ids(
    destination: StoryRepository, stories: Sequence[Story]
) -> dict[int, int]:
    by_url = await destination.ids_by_url(story.url for story in stories if story.url)
    found: dict[int, int] = {}
    for story in stories:
        target = by_url.get(story.url) if story.url else None
        if target is None:
            target = await destination.find_duplicate(None, story.fingerprint)
        if target is not None:
            found[story.id] = target
    return found


async def map_story_ids(
    source: StoryRepository, destination: StoryRepository, source_ids: Sequence[int]
) -> StoryIdMap:
    """Match every source story to its copy in the destination."""
    pairs: dict[int, int] = {}
    for start in range(0, len(source_ids), PAGE):
        found = await source.get_many(source_ids[start : start + PAGE])
        pairs.update(await _destination_ids(destination, list(found.values())))
    return StoryIdMap(pairs)


def _mapped_row(row: RelatedRow, ids: StoryIdMap) -> RelatedRow | None:
    target = ids.get(row.related_id)
    if target is None:
        return None
    copies = tuple(c for c in (ids.get(copy) for copy in row.copies) if c is not None)
    return replace(row, related_id=target, copies=copies)


async def copy_related(
    source: StoryRepository,
    destination: StoryRepository,
    ids: StoryIdMap,
    set_clock: Callable[[datetime], None],
) -> int:
    """Copy relatedness features and related lists; returns how many lists were written.

    Each page's lists are stamped with the oldest computation time among them, so the
    refresh job never takes a copied list for fresher than it is.
    """
    written = 0
    source_ids = sorted(ids.pairs)
    for start in range(0, len(source_ids), PAGE):
        chunk = source_ids[start : start + PAGE]
        features = await source.features_of(chunk)
        await destination.put_features(
            [
                replace(row, story_id=target)
                for story_id, row in features.items()
                if (target := ids.get(story_id)) is not None
            ]
        )
        lists = await source.related_rows(chunk)
        computed = [
            row.related_at
            for story_id, row in features.items()
            if story_id in lists and row.related_at is not None
        ]
        if not lists:
            continue
        if computed:
            set_clock(min(computed))
        mapped: dict[int, list[RelatedRow]] = {}
        for story_id, rows in lists.items():
            target = ids.get(story_id)
            if target is not None:
                mapped[target] = [m for r in rows if (m := _mapped_row(r, ids)) is not None]
        await destination.replace_related(mapped)
        written += len(mapped)
    return written


async def copy_chats(
    source: SubscriptionRepository, destination: SubscriptionRepository, ids: StoryIdMap
) -> int:
    """Copy every chat with its settings and subscriptions; returns how many."""
    copied = 0
    after: int | None = None
    while records := await source.export_chats(after, PAGE):
        await destination.import_chats(
            [replace(record, digest_after=ids.mark(record.digest_after)) for record in records]
        )
        copied += len(records)
        after = records[-1].chat_id
    return copied


async def copy_push_mark(
    source: StoryRepository, destination: StoryRepository, ids: StoryIdMap
) -> bool:
    """Carry "pushed through story N" over, so subscribers are not sent old stories again."""
    mark = await source.get_meta(PUSH_MARK_KEY)
    if mark is None or not mark.isdecimal():
        return False
    await destination.set_meta(PUSH_MARK_KEY, str(ids.mark(int(mark))))
    return True

"""`newsbot db copy` of a whole 1k-story SQLite database to PostgreSQL and back: nothing lost.

Stories (with links), relatedness features, related lists, chats with their settings and
subscriptions, and the delivery marks must all arrive, with story ids translated.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.cli_db import copy_stories
from bot.db_copy import StoryIdMap
from ingest.pipeline import RelatedIndexer
from storage.backend import StoryRepository, open_store, open_subscriptions, sqlite_url
from storage.models import NewStory
from storage.subscriptions import PUSH_MARK_KEY, ChatRecord
from tests.storage_builders import T0, FakeClock, make_story

STORIES = 1000
TOPICS = ("harbour bridge cables", "election night count", "river flood warning", "wheat harvest")


def _story(n: int) -> NewStory:
    topic = TOPICS[n % len(TOPICS)]
    text = f"Kelby {topic} update {n}. The {topic} story continues with detail {n % 37}."
    return make_story(n, title=f"{topic.title()} {n}", cleaned_text=text)


async def _fill(url: str) -> None:
    clock = FakeClock(now=T0, step=timedelta(0))
    async with await open_store(url, clock=clock) as store:
        for batch in range(0, STORIES, 100):
            clock.now = T0 + timedelta(minutes=batch)
            await store.add_many([_story(n) for n in range(batch, batch + 100)])
        await store.delete(5)  # ids need not be dense
        indexer = RelatedIndexer(store)
        while await indexer.backfill(500):
            pass
        await indexer.refresh(list(range(1, 301)))
        subs = await open_subscriptions(url)
        try:
            await subs.start_push_mark()
            await subs.subscribe(-1001, "harbour bridge")
            await subs.subscribe(-1001, "")
            await subs.subscribe(42, "flood")
            await subs.set_timezone(42, "Asia/Tokyo")
            await subs.set_digest(42, 7 * 60, done_for="2024-05-01")
            await subs.subscribe(43, "")
        finally:
            await subs.close()
        # Stories after the marks: new to the subscribers, in both databases.
        await store.add_many([_story(n) for n in range(STORIES, STORIES + 3)])


async def _snapshot(url: str) -> dict[str, Any]:
    """Everything the copy must keep, with story ids replaced by fingerprints."""
    async with await open_store(url) as store:
        stories = await _all(store)
        fp = {story.id: story.fingerprint for story in stories}
        features = await store.features_of(fp)
        lists = await store.related_rows(fp)
        subs = await open_subscriptions(url)
        try:
            chats: list[ChatRecord] = await subs.export_chats(None, 100)
        finally:
            await subs.close()
        mark = await store.get_meta(PUSH_MARK_KEY)
        return {
            "stories": sorted(
                (s.fingerprint, s.title, s.summary, s.url, tuple(link.url for link in s.links))
                for s in stories
            ),
            "features": {fp[i]: (r.version, json.loads(r.features)) for i, r in features.items()},
            "lists": {
                fp[i]: [(fp[r.related_id], round(r.score, 6), [fp[c] for c in r.copies])
                        for r in rows]
                for i, rows in lists.items()
            },
            "chats": [
                (c.chat_id, c.timezone, c.digest_minute, c.last_digest_on, fp.get(c.digest_after),
                 c.subscriptions)
                for c in chats
            ],
            "push_mark": None if mark is None else fp.get(int(mark)),
        }  # fmt: skip


async def _all(store: StoryRepository) -> list[Any]:
    stories, cursor = [], None
    while page := await store.latest(500, older_than=cursor):
        stories.extend(page)
        cursor = page[-1].id
    return stories


async def test_a_1k_story_database_round_trips_through_postgresql(
    pg_url: str, tmp_path: Path
) -> None:
    first, back = sqlite_url(tmp_path / "first.db"), sqlite_url(tmp_path / "back.db")
    await _fill(first)
    before = await _snapshot(first)
    assert len(before["stories"]) == STORIES + 2
    assert len(before["lists"]) >= 250 and len(before["features"]) == STORIES + 2 - 3
    assert len(before["chats"]) == 3 and before["push_mark"] is not None

    there = await copy_stories(first, pg_url, batch_size=128)
    assert there.complete and there.copied == STORIES + 2
    assert (there.chats, there.related_lists) == (3, len(before["lists"]))
    assert await _snapshot(pg_url) == before

    home = await copy_stories(pg_url, back)
    assert home.complete and home.copied == STORIES + 2
    assert await _snapshot(back) == before

    # Idempotent: a second run copies no story and changes nothing.
    again = await copy_stories(first, pg_url, batch_size=128)
    assert (again.copied, again.destination_stories, again.destination_chats) == (0, 1002, 3)
    assert await _snapshot(pg_url) == before


def test_marks_translate_to_the_copy_of_the_newest_story_at_or_before_them() -> None:
    ids = StoryIdMap({1: 10, 2: 11, 4: 15, 9: 30})
    assert [ids.mark(m) for m in (0, 1, 3, 4, 8, 9, 100)] == [0, 10, 11, 15, 15, 30, 30]
    assert StoryIdMap({}).mark(5) == 0

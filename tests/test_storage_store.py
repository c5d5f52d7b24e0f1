"""StoryStore on real SQLite files: round trips, dedup, pagination, delete, stats, concurrency."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import suppress
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import pytest

from storage import AddResult, Link, StoreError, StoryStore, UnknownStoryError
from tests.storage_builders import T0, FakeClock, make_story, open_store, raw_connection


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[StoryStore]:
    async with await open_store(tmp_path / "news.db") as opened:
        yield opened


# -- round trip ----------------------------------------------------------------------------


async def test_add_get_round_trip_with_links_and_datetimes(tmp_path: Path) -> None:
    clock = FakeClock()
    published = datetime(2024, 4, 30, 8, 15, 30, 123456, tzinfo=timezone(timedelta(hours=2)))
    links = tuple(Link(title=f"link {i}", snippet=f"s{i}", url=f"https://l/{i}") for i in range(7))
    new = make_story(1, published_at=published, links=links, summary=("Ünïcödé ✓.", "Two."))
    async with await open_store(tmp_path / "news.db", clock) as store:
        result = await store.add(new)
        assert result.created
        story = await store.get(result.story_id)
    assert story is not None
    assert story.id == result.story_id
    assert (story.title, story.body, story.cleaned_text) == (new.title, new.body, new.cleaned_text)
    assert (story.url, story.source, story.language) == (new.url, new.source, new.language)
    assert (story.algorithm, story.fingerprint) == (new.algorithm, new.fingerprint)
    assert story.summary == ("Ünïcödé ✓.", "Two.")
    assert story.links == links
    assert story.published_at == published
    assert story.published_at is not None and story.published_at.tzinfo is not None
    assert story.ingested_at == T0
    assert story.ingested_at.tzinfo is not None


async def test_naive_datetimes_are_taken_as_utc(store: StoryStore) -> None:
    result = await store.add(make_story(1, published_at=datetime(2024, 1, 2, 3, 4, 5)))
    story = await store.get(result.story_id)
    assert story is not None
    assert story.published_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


async def test_get_missing_returns_none(store: StoryStore) -> None:
    assert await store.get(12345) is None
    assert await store.get_by_url("https://nowhere.example") is None
    assert await store.get_by_url("  ") is None


async def test_get_by_url(store: StoryStore) -> None:
    result = await store.add(make_story(3))
    story = await store.get_by_url("https://news.example/3")
    assert story is not None and story.id == result.story_id


async def test_ids_by_url_finds_only_stored_urls(store: StoryStore) -> None:
    first = await store.add(make_story(1, url="https://example.com/a"))
    second = await store.add(make_story(2, url="https://example.com/b"))
    found = await store.ids_by_url(
        ["https://example.com/a", " https://example.com/b ", "https://example.com/c", None, ""]
    )
    assert found == {
        "https://example.com/a": first.story_id,
        " https://example.com/b ": second.story_id,
    }
    assert await store.ids_by_url([]) == {}


async def test_story_without_url_or_links(store: StoryStore) -> None:
    first = await store.add(make_story(1, url=None, links=()))
    # A blank URL means "no URL", so it must not collide with the first story.
    second = await store.add(make_story(2, url="", links=()))
    assert first.created and second.created
    story = await store.get(second.story_id)
    assert story is not None and story.url is None and story.links == ()


async def test_link_to_a_stored_story_is_resolved_by_url(store: StoryStore) -> None:
    target = await store.add(make_story(1))
    link = Link(title="see also", url="https://news.example/1")
    stale = Link(title="gone", story_id=999_999)
    source = await store.add(make_story(2, links=(link, stale)))
    story = await store.get(source.story_id)
    assert story is not None
    assert [item.story_id for item in story.links] == [target.story_id, None]


# -- dedup ---------------------------------------------------------------------------------


async def test_dedup_by_url_and_by_fingerprint(store: StoryStore) -> None:
    original = await store.add(make_story(1))
    same_url = await store.add(make_story(2, url="https://news.example/1"))
    same_fingerprint = await store.add(make_story(3, fingerprint="fp-1"))
    assert original.created
    assert same_url == AddResult(story_id=original.story_id, created=False)
    assert same_fingerprint == AddResult(story_id=original.story_id, created=False)
    assert await store.count() == 1
    assert await store.find_duplicate("https://news.example/1", "other") == original.story_id
    assert await store.find_duplicate(None, "fp-1") == original.story_id
    assert await store.find_duplicate("https://news.example/9", "fp-9") is None


async def test_re_adding_is_idempotent(store: StoryStore) -> None:
    batch = [make_story(i) for i in range(5)]
    first = await store.add_many(batch)
    again = await store.add_many(batch)
    assert all(result.created for result in first)
    assert again == [AddResult(story_id=r.story_id, created=False) for r in first]
    assert (await store.stats()).links == 10


async def test_duplicates_inside_one_batch(store: StoryStore) -> None:
    stored = await store.add(make_story(0))
    results = await store.add_many(
        [
            make_story(1),
            make_story(2, url="https://news.example/1"),  # same URL as the first in the batch
            make_story(3, fingerprint="fp-1"),  # same fingerprint as the first in the batch
            make_story(4, fingerprint="fp-0"),  # duplicate of the story already stored
            make_story(5),
        ]
    )
    first = results[0].story_id
    assert [r.created for r in results] == [True, False, False, False, True]
    assert [r.story_id for r in results[1:4]] == [first, first, stored.story_id]
    assert await store.count() == 3


async def test_add_many_is_all_or_nothing(store: StoryStore) -> None:
    # A NULL title breaks a NOT NULL constraint halfway through the batch.
    broken = make_story(3, title=cast(Any, None))
    with pytest.raises(StoreError):
        await store.add_many([make_story(1), make_story(2), broken, make_story(4)])
    assert await store.count() == 0
    assert (await store.stats()).links == 0
    # The writer is usable afterwards.
    assert (await store.add(make_story(1))).created


async def test_add_many_empty(store: StoryStore) -> None:
    assert await store.add_many([]) == []


# -- latest --------------------------------------------------------------------------------


async def test_latest_orders_by_published_then_ingested(tmp_path: Path) -> None:
    clock = FakeClock(now=T0)
    async with await open_store(tmp_path / "news.db", clock) as store:
        old = await store.add(make_story(1, published_at=T0 - timedelta(days=3)))
        fresh = await store.add(make_story(2))  # no published_at: ingested time T0 + 1s
        future = await store.add(make_story(3, published_at=T0 + timedelta(hours=1)))
        page = await store.latest(10)
    assert [s.id for s in page] == [future.story_id, fresh.story_id, old.story_id]


async def test_latest_keyset_pagination_round_trip_with_ties(tmp_path: Path) -> None:
    clock = FakeClock(now=T0, step=timedelta(0))  # every story has the same sort key
    async with await open_store(tmp_path / "news.db", clock) as store:
        tied = await store.add_many([make_story(i) for i in range(7)])
        others = await store.add_many(
            [make_story(100 + i, published_at=T0 - timedelta(minutes=i + 1)) for i in range(6)]
        )
        everything = await store.latest(100)
        expected = [r.story_id for r in reversed(tied)] + [r.story_id for r in others]
        assert [s.id for s in everything] == expected

        pages: list[list[int]] = []
        cursor: int | None = None
        while True:
            page = await store.latest(3, older_than=cursor)
            if not page:
                break
            pages.append([s.id for s in page])
            cursor = page[-1].id
        assert [i for p in pages for i in p] == expected
        assert all(len(p) == 3 for p in pages[:-1])

        # Walking back with newer_than from the last page gives the same pages, newest first.
        back: list[list[int]] = [pages[-1]]
        while True:
            page = await store.latest(3, newer_than=back[0][0])
            if not page:
                break
            back.insert(0, [s.id for s in page])
        assert [i for p in back for i in p] == expected

        # Stable: asking again gives the same answer.
        assert [s.id for s in await store.latest(3, older_than=pages[0][-1])] == pages[1]


async def test_latest_between_two_cursors(store: StoryStore) -> None:
    ids = [r.story_id for r in await store.add_many([make_story(i) for i in range(10)])]
    newest_first = ids[::-1]
    page = await store.latest(100, older_than=newest_first[1], newer_than=newest_first[6])
    assert [s.id for s in page] == newest_first[2:6]
    assert await store.latest(2, newer_than=newest_first[0]) == []


async def test_latest_with_a_deleted_cursor_raises(store: StoryStore) -> None:
    results = await store.add_many([make_story(i) for i in range(3)])
    gone = results[1].story_id
    assert await store.delete(gone)
    with pytest.raises(UnknownStoryError) as raised:
        await store.latest(5, older_than=gone)
    assert raised.value.story_id == gone


async def test_latest_rejects_bad_limits(store: StoryStore) -> None:
    with pytest.raises(ValueError, match="limit"):
        await store.latest(0)


async def test_latest_page_query_uses_the_index(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    async with await open_store(path) as store:
        await store.add_many([make_story(i) for i in range(20)])
    with raw_connection(path) as conn:
        plan = " | ".join(
            row[3]
            for row in conn.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM stories AS s WHERE (s.sort_key, s.id) < "
                "(SELECT sort_key, id FROM stories WHERE id = 5) "
                "ORDER BY s.sort_key DESC, s.id DESC LIMIT 10"
            )
        )
    assert "USING INDEX stories_latest" in plan or "USING COVERING INDEX stories_latest" in plan
    assert "TEMP B-TREE" not in plan


# -- delete, stats, meta -------------------------------------------------------------------


async def test_delete_cascades_to_links_and_search(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    async with await open_store(path) as store:
        keep, gone = await store.add_many(
            [make_story(1), make_story(2, title="Zeppelin over the harbour")]
        )
        pointing = await store.add(
            make_story(3, links=(Link(title="x", url="https://news.example/2"),))
        )
        assert [h.story.id for h in await store.search("zeppelin")] == [gone.story_id]
        assert await store.delete(gone.story_id)
        assert not await store.delete(gone.story_id)
        assert await store.get(gone.story_id) is None
        with pytest.raises(StoreError):
            await store.search("")
        assert await store.search("zeppelin") == []
        still = await store.get(pointing.story_id)
        assert still is not None and still.links[0].story_id is None
        stats = await store.stats()
        assert (stats.stories, stats.links) == (2, 3)
        assert await store.get(keep.story_id) is not None
    with raw_connection(path) as conn:
        assert conn.execute(
            "SELECT count(*) FROM links WHERE story_id = ?", (gone.story_id,)
        ).fetchone() == (0,)
        conn.execute("INSERT INTO stories_fts (stories_fts) VALUES ('integrity-check')")


async def test_deleted_ids_are_not_reused(store: StoryStore) -> None:
    first = await store.add(make_story(1))
    await store.delete(first.story_id)
    second = await store.add(make_story(2))
    assert second.story_id > first.story_id


async def test_stats(tmp_path: Path) -> None:
    clock = FakeClock(now=T0)
    async with await open_store(tmp_path / "news.db", clock) as store:
        empty = await store.stats()
        assert (empty.stories, empty.sources, empty.links, empty.last_ingest) == (0, 0, 0, None)
        await store.add_many([make_story(1, source="a"), make_story(2, source="b")])
        await store.add_many([make_story(3, source="a"), make_story(4, source=None, links=())])
        stats = await store.stats()
        assert (stats.stories, stats.sources, stats.links) == (4, 2, 6)
        assert stats.last_ingest == T0 + timedelta(seconds=1)
        assert stats.database_bytes > 0
        assert await store.count() == 4
        for story_id in (1, 3):
            await store.delete(story_id)
        assert (await store.stats()).sources == 1


async def test_meta(store: StoryStore) -> None:
    assert await store.get_meta("cursor") is None
    await store.set_meta("cursor", "1")
    await store.set_meta("cursor", "two")
    assert await store.get_meta("cursor") == "two"


# -- connections ---------------------------------------------------------------------------


async def test_reads_do_not_wait_for_an_open_write_transaction(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    async with await open_store(path) as store:
        existing = await store.add(make_story(1, title="Visible harbour story"))
        other = sqlite3.connect(path, isolation_level=None, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute(
                "UPDATE stories SET title = 'Uncommitted harbour' WHERE id = ?",
                (existing.story_id,),
            )
            # While the write lock is held elsewhere, every read answers from the last commit.
            story = await store.get(existing.story_id)
            assert story is not None and story.title == "Visible harbour story"
            assert [s.id for s in await store.latest(5)] == [existing.story_id]
            assert [h.story.id for h in await store.search("visible")] == [existing.story_id]
            assert await store.search("uncommitted") == []
            assert await store.count() == 1
            other.execute("COMMIT")
        finally:
            other.close()
        story = await store.get(existing.story_id)
        assert story is not None and story.title == "Uncommitted harbour"


async def test_concurrent_writers_in_one_process(store: StoryStore) -> None:
    results = await asyncio.gather(
        *(store.add_many([make_story(10 * i + j) for j in range(10)]) for i in range(5))
    )
    assert sum(len(batch) for batch in results) == 50
    assert await store.count() == 50


async def test_cancelled_writes_leave_the_store_usable(store: StoryStore) -> None:
    # Each read hands the loop to the writing task for a while, so cancelling after a
    # different number of reads catches it at different points: before BEGIN, mid-batch...
    for reads in range(8):
        batch = [make_story(1000 * reads + i) for i in range(50)]
        task = asyncio.create_task(store.add_many(batch))
        for _ in range(reads):
            await store.get_meta("anything")
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        before = await store.count()
        assert before % 50 == 0  # the batch is stored whole or not at all
        assert (await store.add(make_story(10**6 + reads))).created
        assert await store.count() == before + 1
        await store.delete((await store.latest(1))[0].id)


async def test_closed_store_raises_store_error(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "news.db")
    await store.close()
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.get(1)
    with pytest.raises(StoreError, match="closed"):
        await store.add(make_story(1))

"""The story store on both backends: lookups, batches, pagination, delete, stats, concurrency.

`store` and `open_repo` (tests/conftest.py) run each test once on a real SQLite file and once
on a real PostgreSQL schema. The few tests about SQLite itself (query plans, the reader and
writer connections, the FTS5 index) open a StoryStore on tmp_path and say why. Cases shared
word for word with tests/test_storage_backends.py live only there.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import suppress
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from storage import Link, StoreError, UnknownStoryError
from storage import repository as sqlite_module
from storage.backend import StoryRepository
from storage.backend import open_store as open_url
from storage.repository import PAGE_CACHE_KIB, StoryStore
from tests.conftest import OpenRepo
from tests.storage_builders import T0, FakeClock, make_story, open_store, raw_connection

# -- lookups -------------------------------------------------------------------------------


async def test_get_missing_returns_none(store: StoryRepository) -> None:
    assert await store.get(12345) is None
    assert await store.get_by_url("https://nowhere.example") is None
    assert await store.get_by_url("  ") is None


async def test_get_by_url(store: StoryRepository) -> None:
    result = await store.add(make_story(3))
    story = await store.get_by_url("https://news.example/3")
    assert story is not None and story.id == result.story_id


async def test_ids_by_url_finds_only_stored_urls(store: StoryRepository) -> None:
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


# -- batches -------------------------------------------------------------------------------


async def test_add_many_is_all_or_nothing(store: StoryRepository) -> None:
    # A NULL title breaks a NOT NULL constraint halfway through the batch.
    broken = make_story(3, title=cast(Any, None))
    with pytest.raises(StoreError):
        await store.add_many([make_story(1), make_story(2), broken, make_story(4)])
    assert await store.count() == 0
    assert (await store.stats()).links == 0
    # The writer is usable afterwards.
    assert (await store.add(make_story(1))).created


async def test_add_many_empty(store: StoryRepository) -> None:
    assert await store.add_many([]) == []


# -- latest --------------------------------------------------------------------------------


async def test_latest_with_a_deleted_cursor_raises(store: StoryRepository) -> None:
    results = await store.add_many([make_story(i) for i in range(3)])
    gone = results[1].story_id
    assert await store.delete(gone)
    with pytest.raises(UnknownStoryError) as raised:
        await store.latest(5, older_than=gone)
    assert raised.value.story_id == gone


async def test_latest_page_query_uses_the_index(tmp_path: Path) -> None:
    # SQLite-only: reads SQLite's EXPLAIN QUERY PLAN through a raw sqlite3 connection.
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


# -- delete, stats -------------------------------------------------------------------------


async def test_delete_cascades_to_links_and_search(tmp_path: Path) -> None:
    # SQLite-only: checks the links rows and the FTS5 index through a raw sqlite3 connection.
    # The repository-level part runs on both backends in tests/test_storage_backends.py.
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


async def test_stats(open_repo: OpenRepo) -> None:
    async with await open_repo(FakeClock(now=T0)) as store:
        empty = await store.stats()
        assert (empty.stories, empty.sources, empty.links, empty.last_ingest) == (0, 0, 0, None)
        first = await store.add_many([make_story(1, source="a"), make_story(2, source="b")])
        second = await store.add_many(
            [make_story(3, source="a"), make_story(4, source=None, links=())]
        )
        stats = await store.stats()
        assert (stats.stories, stats.sources, stats.links) == (4, 2, 6)
        assert stats.last_ingest == T0 + timedelta(seconds=1)
        assert stats.database_bytes > 0
        assert await store.count() == 4
        # Both stories of source "a" go: "b" is left, and a story without a source is none.
        for result in (first[0], second[0]):
            await store.delete(result.story_id)
        assert (await store.stats()).sources == 1


# -- connections ---------------------------------------------------------------------------


async def test_reads_do_not_wait_for_an_open_write_transaction(tmp_path: Path) -> None:
    # SQLite-only: holds SQLite's write lock from a raw sqlite3 connection, to show the
    # store's reader connection answers from the last commit (WAL) meanwhile.
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


async def test_cancelled_writes_leave_the_store_usable(store: StoryRepository) -> None:
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


async def test_closed_store_raises_store_error(open_repo: OpenRepo) -> None:
    store = await open_repo()
    await store.close()
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await store.get(1)
    with pytest.raises(StoreError, match="closed"):
        await store.add(make_story(1))


async def test_sqlite_page_cache_is_sized_per_open(tmp_path: Path) -> None:
    async def cache_sizes(store: StoryStore) -> list[int]:
        read = await store._read("PRAGMA cache_size")
        async with store._transaction() as conn:
            written = list(await conn.execute_fetchall("PRAGMA cache_size"))
        return [int(read[0][0]), int(written[0][0])]

    async with await StoryStore.open(tmp_path / "default.db") as store:
        assert await cache_sizes(store) == [-PAGE_CACHE_KIB, -PAGE_CACHE_KIB]
    url = f"sqlite:///{tmp_path / 'small.db'}"
    async with await open_url(url, page_cache_kib=4_000) as small:
        assert isinstance(small, StoryStore)
        assert await cache_sizes(small) == [-4_000, -4_000]
    with pytest.raises(ValueError, match="page_cache_kib"):
        await StoryStore.open(tmp_path / "bad.db", page_cache_kib=-1)


async def test_sqlite_reads_go_to_the_least_busy_of_several_readers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite-only: PostgreSQL has its own pool. `newsbot seed` opens two readers so that a
    # chunk's searches run beside the reads of the chunk before it.
    url = f"sqlite:///{tmp_path / 'news.db'}"
    served: list[int] = []
    release = asyncio.Event()

    def recorded(n: int, execute: Any) -> Any:
        async def read(sql: str, params: Any = ()) -> Any:
            served.append(n)
            if n == 0:
                # The first reader holds its read until released.
                await release.wait()
            return await execute(sql, params)

        return read

    async with await open_url(url, readers=2) as store:
        assert isinstance(store, StoryStore)
        await store.add(make_story(1))
        for n, reader in enumerate(store._readers):
            monkeypatch.setattr(reader, "execute_fetchall", recorded(n, reader.execute_fetchall))
        first = asyncio.ensure_future(store.get(1))
        # The second read must not queue behind the first, held in the first reader (the
        # timeout only turns a hang into a failure).
        second = await asyncio.wait_for(store.get(1), 30)
        release.set()
        assert (await first) == second is not None
        assert served == [0, 1]
        # Idle again: reads go back to the first reader.
        await store.get(1)
        assert served == [0, 1, 0]
    with pytest.raises(StoreError, match="closed"):
        await store.get(1)
    with pytest.raises(ValueError, match="readers"):
        await StoryStore.open(tmp_path / "bad.db", readers=0)


async def test_sqlite_open_waits_for_another_process_creating_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite-only. Another connection holds a write lock on a new rollback-journal file: the
    # switch to WAL is refused at once, without SQLite's busy handler, so open() retries.
    path = tmp_path / "news.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE early (x)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO early VALUES (1)")
    waits: list[int] = []

    async def other_finishes() -> None:
        waits.append(1)
        other.execute("COMMIT")

    monkeypatch.setattr(sqlite_module, "_wait_for_lock", other_finishes)
    try:
        async with await StoryStore.open(path) as store:
            assert (await store.add(make_story(1))).created
        assert waits == [1]

        # A lock held past the busy timeout is an error, not a hang.
        other.execute("PRAGMA journal_mode = DELETE")
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO early VALUES (2)")
        monkeypatch.setattr(sqlite_module, "_BUSY_TIMEOUT_MS", 0)
        with pytest.raises(StoreError, match="locked"):
            await StoryStore.open(path)
    finally:
        other.close()

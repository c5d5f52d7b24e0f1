"""Schema migrations: from an empty file, from version 1, and refusing newer schemas."""

from __future__ import annotations

from pathlib import Path

import aiosqlite
import pytest

from storage import StoreError, StoryStore
from storage.schema import (
    FTS_CRISISMERGE,
    HEAD_VERSION,
    MIGRATIONS,
    Migration,
    migrate,
    user_version,
)
from tests.storage_builders import make_story, open_store, raw_connection


def _tables(path: Path) -> set[str]:
    with raw_connection(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_schema WHERE type IN ('table', 'index')")
        return {row[0] for row in rows}


def _version(path: Path) -> int:
    with raw_connection(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


async def test_open_creates_parent_dirs_and_applies_all_migrations(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "news.db"
    async with await open_store(path) as store:
        assert await store.count() == 0
    assert _version(path) == HEAD_VERSION
    assert {"stories", "links", "stories_fts", "meta", "stories_latest"} <= _tables(path)
    with raw_connection(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_reopening_at_head_is_a_no_op_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    async with await open_store(path) as store:
        first = await store.add(make_story(1))
    async with await open_store(path) as store:
        assert await store.count() == 1
        assert (await store.add(make_story(1))).story_id == first.story_id
    assert _version(path) == HEAD_VERSION


async def test_migrating_from_version_1_to_head_keeps_stories(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await migrate(conn, MIGRATIONS[:1]) == 1
        # A story written by version-1 code, bypassing the store on purpose.
        await conn.execute(
            "INSERT INTO stories (title, url, language, ingested_at, sort_key, body,"
            " cleaned_text, summary, algorithm, sentence_count, fingerprint)"
            " VALUES ('Old story', 'https://old.example', 'english', 0, 0, 'b', 'old words',"
            " '[\"One.\"]', 'lead', 1, 'fp-old')"
        )
    assert _version(path) == 1
    async with await StoryStore.open(path) as store:
        story = await store.get_by_url("https://old.example")
        assert story is not None
        assert story.summary == ("One.",)
        assert [hit.story.id for hit in await store.search("old words")] == [story.id]
        assert await store.count() == 1
    assert _version(path) == HEAD_VERSION


async def test_later_migrations_apply_in_order_to_a_version_1_database(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    async with await open_store(path) as store:
        await store.add(make_story(1))
    # Stand-ins for migrations later issues will append.
    future = (
        *MIGRATIONS,
        Migration(
            version=HEAD_VERSION + 1,
            description="add a column",
            statements=("ALTER TABLE stories ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0",),
        ),
        Migration(
            version=HEAD_VERSION + 2,
            description="backfill using the previous step",
            statements=("UPDATE stories SET pinned = 1",),
        ),
    )
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await migrate(conn, future) == HEAD_VERSION + 2
        rows = list(await conn.execute_fetchall("SELECT pinned FROM stories"))
        assert [row[0] for row in rows] == [1]
        # Running again changes nothing.
        assert await migrate(conn, future) == HEAD_VERSION + 2


async def test_a_failing_migration_rolls_back_and_leaves_the_version(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    async with await open_store(path):
        pass
    broken = (
        *MIGRATIONS,
        Migration(
            version=HEAD_VERSION + 1,
            description="half good, half broken",
            statements=("CREATE TABLE extra (x INTEGER)", "NOT VALID SQL"),
        ),
    )
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        with pytest.raises(StoreError, match="migration failed"):
            await migrate(conn, broken)
        assert await user_version(conn) == HEAD_VERSION
    assert "extra" not in _tables(path)


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    async with await open_store(path):
        pass
    with raw_connection(path) as conn:
        conn.execute(f"PRAGMA user_version = {HEAD_VERSION + 5}")
    with pytest.raises(StoreError, match="refusing"):
        await StoryStore.open(path)


async def test_migrations_must_be_numbered_in_order(tmp_path: Path) -> None:
    gap = (*MIGRATIONS, Migration(version=HEAD_VERSION + 2, description="gap", statements=()))
    async with aiosqlite.connect(tmp_path / "x.db", isolation_level=None) as conn:
        with pytest.raises(StoreError, match="1, 2, 3"):
            await migrate(conn, gap)


async def test_a_file_that_is_not_a_database_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        await StoryStore.open(path)


def _fts_config(path: Path) -> dict[str, int]:
    with raw_connection(path) as conn:
        return {str(k): int(v) for k, v in conn.execute("SELECT k, v FROM stories_fts_config")}


async def test_full_text_index_merges_segments_sooner_on_new_and_migrated_stores(
    tmp_path: Path,
) -> None:
    fresh = tmp_path / "fresh.db"
    async with await open_store(fresh):
        pass
    assert _fts_config(fresh)["crisismerge"] == FTS_CRISISMERGE

    old = tmp_path / "old.db"
    async with aiosqlite.connect(old, isolation_level=None) as conn:
        assert await migrate(conn, MIGRATIONS[:4]) == 4
    assert "crisismerge" not in _fts_config(old)
    async with await open_store(old) as store:
        added = await store.add(make_story(1))
        assert [hit.story.id for hit in await store.search("item1")] == [added.story_id]
    assert _fts_config(old)["crisismerge"] == FTS_CRISISMERGE
    assert _version(old) == HEAD_VERSION

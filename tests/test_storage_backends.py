"""The story repository's behaviour, run on both backends: SQLite and a real PostgreSQL.

Every test takes `open_repo`, which opens a store on an empty database of the backend the test
is parametrised with. The PostgreSQL server is started once per session (tests/pg_server.py);
without one the PostgreSQL cases skip locally, but fail when CI is set.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest

from bot.cli_db import add_parser as add_db_parser
from bot.cli_db import copy_stories
from bot.cli_db import run as run_db
from storage import AddResult, Link, QueryError, SearchHit, StoreError, UnknownStoryError
from storage import postgres as pg_module
from storage import repository as sqlite_module
from storage.backend import StoryRepository, open_store, sqlite_path, sqlite_url
from storage.models import NewStory, Story
from storage.postgres import PostgresStoryStore
from storage.postgres_schema import HEAD_VERSION
from storage.repository import SEARCH_COUNT_CAP, StoryStore
from tests.conftest import OpenRepo
from tests.storage_builders import T0, FakeClock, make_story


def _ids(hits: list[SearchHit]) -> list[int]:
    return [hit.story.id for hit in hits]


# -- choosing the backend ------------------------------------------------------------------


async def test_open_store_picks_the_backend_by_url(store_url: str, backend: str) -> None:
    async with await open_store(store_url) as store:
        expected = StoryStore if backend == "sqlite" else PostgresStoryStore
        assert isinstance(store, expected)


def test_sqlite_urls() -> None:
    assert sqlite_path("sqlite:///data/newsbot.db") == Path("data/newsbot.db")
    assert sqlite_path("sqlite:////var/lib/news.db") == Path("/var/lib/news.db")
    assert sqlite_url(Path("/var/lib/news.db")) == "sqlite:////var/lib/news.db"
    for bad in ("sqlite:///", "sqlite://x.db", "sqlite:///dir/"):
        with pytest.raises(StoreError):
            sqlite_path(bad)


@pytest.mark.parametrize("url", ["mysql://h/db", "news.db", "", "http://x"])
async def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(StoreError, match="unsupported database URL"):
        await open_store(url)


async def test_unreachable_postgres_is_a_store_error_without_the_password() -> None:
    port = _closed_port()
    url = f"postgresql://newsbot:s3cret@127.0.0.1:{port}/newsbot"
    with pytest.raises(StoreError) as raised:
        await open_store(url)
    assert "s3cret" not in str(raised.value)


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- round trip ----------------------------------------------------------------------------


async def test_add_get_round_trip_with_links_and_datetimes(open_repo: OpenRepo) -> None:
    clock = FakeClock()
    published = datetime(2024, 4, 30, 8, 15, 30, 123456, tzinfo=timezone(timedelta(hours=2)))
    links = tuple(Link(title=f"link {i}", snippet=f"s{i}", url=f"https://l/{i}") for i in range(7))
    new = make_story(1, published_at=published, links=links, summary=("Ünïcödé ✓.", "Two."))
    async with await open_repo(clock) as store:
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


async def test_naive_datetimes_are_taken_as_utc(store: StoryRepository) -> None:
    result = await store.add(make_story(1, published_at=datetime(2024, 1, 2, 3, 4, 5)))
    story = await store.get(result.story_id)
    assert story is not None
    assert story.published_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


async def test_get_missing_and_by_url(store: StoryRepository) -> None:
    assert await store.get(12345) is None
    assert await store.get_by_url("https://nowhere.example") is None
    assert await store.get_by_url("  ") is None
    result = await store.add(make_story(3))
    story = await store.get_by_url("https://news.example/3")
    assert story is not None and story.id == result.story_id
    many = await store.get_many([result.story_id, 999_999, result.story_id])
    assert list(many) == [result.story_id]
    assert await store.get_many([]) == {}


async def test_story_without_url_or_links(store: StoryRepository) -> None:
    first = await store.add(make_story(1, url=None, links=()))
    # A blank URL means "no URL", so it must not collide with the first story.
    second = await store.add(make_story(2, url="", links=()))
    assert first.created and second.created
    story = await store.get(second.story_id)
    assert story is not None and story.url is None and story.links == ()


async def test_link_to_a_stored_story_is_resolved_by_url(store: StoryRepository) -> None:
    target = await store.add(make_story(1))
    link = Link(title="see also", url="https://news.example/1")
    stale = Link(title="gone", story_id=999_999)
    source = await store.add(make_story(2, links=(link, stale)))
    story = await store.get(source.story_id)
    assert story is not None
    assert [item.story_id for item in story.links] == [target.story_id, None]


# -- dedup ---------------------------------------------------------------------------------


async def test_dedup_by_url_and_by_fingerprint(store: StoryRepository) -> None:
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


async def test_re_adding_is_idempotent(store: StoryRepository) -> None:
    batch = [make_story(i) for i in range(5)]
    first = await store.add_many(batch)
    again = await store.add_many(batch)
    assert all(result.created for result in first)
    assert again == [AddResult(story_id=r.story_id, created=False) for r in first]
    assert (await store.stats()).links == 10


async def test_duplicates_inside_one_batch(store: StoryRepository) -> None:
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


async def test_add_many_is_all_or_nothing(store: StoryRepository) -> None:
    broken = make_story(3, title=cast(Any, None))
    with pytest.raises(StoreError) as raised:
        await store.add_many([make_story(1), make_story(2), broken, make_story(4)])
    assert not isinstance(raised.value, asyncpg.PostgresError | sqlite3.Error)
    assert await store.count() == 0
    assert (await store.stats()).links == 0
    assert (await store.add(make_story(1))).created
    assert await store.add_many([]) == []


async def test_concurrent_writers(store: StoryRepository) -> None:
    results = await asyncio.gather(
        *(store.add_many([make_story(10 * i + j) for j in range(10)]) for i in range(5))
    )
    assert sum(len(batch) for batch in results) == 50
    assert await store.count() == 50


async def test_concurrent_duplicate_batches_store_each_story_once(store: StoryRepository) -> None:
    batch = [make_story(i) for i in range(20)]
    results = await asyncio.gather(*(store.add_many(batch) for _ in range(4)))
    assert await store.count() == 20
    ids = {tuple(r.story_id for r in batch_results) for batch_results in results}
    assert len(ids) == 1
    assert sum(r.created for batch_results in results for r in batch_results) == 20


# -- latest --------------------------------------------------------------------------------


async def test_latest_orders_by_published_then_ingested(open_repo: OpenRepo) -> None:
    async with await open_repo(FakeClock(now=T0)) as store:
        old = await store.add(make_story(1, published_at=T0 - timedelta(days=3)))
        fresh = await store.add(make_story(2))  # no published_at: ingested time T0 + 1s
        future = await store.add(make_story(3, published_at=T0 + timedelta(hours=1)))
        page = await store.latest(10)
    assert [s.id for s in page] == [future.story_id, fresh.story_id, old.story_id]


async def test_latest_keyset_pagination_round_trip_with_ties(open_repo: OpenRepo) -> None:
    clock = FakeClock(now=T0, step=timedelta(0))  # every story has the same sort key
    async with await open_repo(clock) as store:
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

        back: list[list[int]] = [pages[-1]]
        while True:
            page = await store.latest(3, newer_than=back[0][0])
            if not page:
                break
            back.insert(0, [s.id for s in page])
        assert [i for p in back for i in p] == expected
        assert [s.id for s in await store.latest(3, older_than=pages[0][-1])] == pages[1]


async def test_latest_between_two_cursors(store: StoryRepository) -> None:
    ids = [r.story_id for r in await store.add_many([make_story(i) for i in range(10)])]
    newest_first = ids[::-1]
    page = await store.latest(100, older_than=newest_first[1], newer_than=newest_first[6])
    assert [s.id for s in page] == newest_first[2:6]
    assert await store.latest(2, newer_than=newest_first[0]) == []


async def test_latest_with_a_deleted_cursor_raises(store: StoryRepository) -> None:
    results = await store.add_many([make_story(i) for i in range(3)])
    gone = results[1].story_id
    assert await store.delete(gone)
    with pytest.raises(UnknownStoryError) as raised:
        await store.latest(5, older_than=gone)
    assert raised.value.story_id == gone
    with pytest.raises(UnknownStoryError):
        await store.latest(5, newer_than=gone)


async def test_latest_rejects_bad_limits(store: StoryRepository) -> None:
    with pytest.raises(ValueError, match="limit"):
        await store.latest(0)


# -- delete, stats, meta -------------------------------------------------------------------


async def test_delete_cascades_to_links_and_search(store: StoryRepository) -> None:
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
    assert await store.search("zeppelin") == []
    still = await store.get(pointing.story_id)
    assert still is not None and still.links[0].story_id is None
    stats = await store.stats()
    assert (stats.stories, stats.links) == (2, 3)
    assert await store.get(keep.story_id) is not None


async def test_deleted_ids_are_not_reused(store: StoryRepository) -> None:
    first = await store.add(make_story(1))
    await store.delete(first.story_id)
    second = await store.add(make_story(2))
    assert second.story_id > first.story_id


async def test_stats(open_repo: OpenRepo) -> None:
    async with await open_repo(FakeClock(now=T0)) as store:
        empty = await store.stats()
        assert (empty.stories, empty.sources, empty.links, empty.last_ingest) == (0, 0, 0, None)
        added = await store.add_many([make_story(1, source="a"), make_story(2, source="b")])
        await store.add_many([make_story(3, source="a"), make_story(4, source=None, links=())])
        stats = await store.stats()
        assert (stats.stories, stats.sources, stats.links) == (4, 2, 6)
        assert stats.last_ingest == T0 + timedelta(seconds=1)
        assert stats.database_bytes > 0
        assert await store.count() == 4
        await store.delete(added[1].story_id)
        assert (await store.stats()).sources == 1


async def test_meta(store: StoryRepository) -> None:
    assert await store.get_meta("cursor") is None
    await store.set_meta("cursor", "1")
    await store.set_meta("cursor", "two")
    assert await store.get_meta("cursor") == "two"


async def test_closed_store_raises_store_error(open_repo: OpenRepo) -> None:
    store = await open_repo()
    await store.close()
    await store.close()
    with pytest.raises(StoreError):
        await store.get(1)


# -- search --------------------------------------------------------------------------------


@pytest.fixture
async def searchable(store: StoryRepository) -> StoryRepository:
    await store.add_many(
        [
            make_story(1, title="Harbour bridge reopens", cleaned_text="Traffic is back."),
            make_story(2, title="Council meeting", cleaned_text="The harbour was discussed."),
            make_story(3, title="Weather", cleaned_text="Rain over the bridge tomorrow."),
            make_story(4, title="Title: x marks the spot", cleaned_text="Treasure maps."),
            make_story(5, title="Drop tables", cleaned_text="Furniture stories are popular."),
        ]
    )
    return store


async def test_title_match_beats_body_match(searchable: StoryRepository) -> None:
    hits = await searchable.search("harbour")
    assert _ids(hits) == [1, 2]
    assert hits[0].score > hits[1].score > 0


async def test_all_terms_then_any_term(searchable: StoryRepository) -> None:
    assert _ids(await searchable.search("harbour bridge")) == [1]
    assert set(_ids(await searchable.search("bridge furniture"))) == {1, 3, 5}
    assert await searchable.count_search("bridge furniture") == 3


async def test_stemming_case_and_no_match(searchable: StoryRepository) -> None:
    assert _ids(await searchable.search("RAINING")) == [3]
    assert await searchable.search("zeppelin") == []
    assert await searchable.count_search("zeppelin") == 0


async def test_offset_pages_through_results(searchable: StoryRepository) -> None:
    everything = _ids(await searchable.search("harbour"))
    paged = _ids(await searchable.search("harbour", limit=1)) + _ids(
        await searchable.search("harbour", limit=1, offset=1)
    )
    assert paged == everything
    assert await searchable.search("harbour", offset=10) == []
    with pytest.raises(ValueError, match="offset"):
        await searchable.search("harbour", offset=-1)


HOSTILE = [
    '"',
    "NEAR(",
    "*",
    "a AND",
    "(((",
    "🦄",
    "",
    "title:x",
    "'; DROP TABLE stories; --",
    "   ",
    "harbour OR",
    "NOT harbour",
    "-harbour",
    "harbour or",
    "^harbour",
    "harbour*",
    '"harbour',
    "harbour & !bridge | <->",
    "harbour:*",
    "'harbour':A",
    "cleaned_text:treasure",
    "{title cleaned_text}: harbour",
    "NEAR(harbour bridge, 2)",
    "AND OR NOT",
    "\x00harbour",
    "\\",
    "a" * 5000,
    "word " * 500,
]


@pytest.mark.parametrize("query", HOSTILE)
async def test_hostile_queries_never_leak_driver_errors(
    searchable: StoryRepository, query: str
) -> None:
    try:
        hits = await searchable.search(query)
        count = await searchable.count_search(query)
        await searchable.search_any([query])
        await searchable.search_any_ids([query])
    except QueryError as exc:
        assert str(exc)
        assert not isinstance(exc, sqlite3.Error | asyncpg.PostgresError)
    else:
        assert isinstance(hits, list)
        assert 0 <= count <= SEARCH_COUNT_CAP
    assert await searchable.count() == 5


@pytest.mark.parametrize("query", ["", "   ", "🦄", "(((", "*", '"', "🦄 ✓ — …"])
async def test_queries_without_words_raise_query_error(
    searchable: StoryRepository, query: str
) -> None:
    with pytest.raises(QueryError):
        await searchable.search(query)
    with pytest.raises(QueryError):
        await searchable.count_search(query)


async def test_hostile_queries_are_searched_as_plain_words(searchable: StoryRepository) -> None:
    assert _ids(await searchable.search("title:x")) == [4]
    assert _ids(await searchable.search("'; DROP TABLE stories; --")) == [5]
    assert _ids(await searchable.search("NEAR(harbour bridge)")) == [1]
    assert _ids(await searchable.search("harbour*")) == [1, 2]
    assert _ids(await searchable.search("-harbour")) == [1, 2]


async def test_search_any_for_related_stories(searchable: StoryRepository) -> None:
    hits = await searchable.search_any(["harbour", "rain"], exclude_id=1)
    assert set(_ids(hits)) == {2, 3}
    assert set(await searchable.search_any_ids(["harbour", "rain"], exclude_id=1)) == {2, 3}
    assert await searchable.search_any([]) == []
    assert await searchable.search_any(["🦄", "()"]) == []
    assert _ids(await searchable.search_any(['title:"x"'], limit=1)) == [4]


async def test_search_results_carry_whole_stories(searchable: StoryRepository) -> None:
    (hit,) = await searchable.search("treasure")
    assert hit.story.summary and hit.story.links
    assert hit.story == await searchable.get(hit.story.id)


async def test_only_the_newest_matches_are_ranked_when_there_are_many(
    searchable: StoryRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in (sqlite_module, pg_module):
        monkeypatch.setattr(module, "RANK_WINDOW", 1)
    assert _ids(await searchable.search("bridge")) == [3]
    assert await searchable.count_search("bridge") == 2
    for module in (sqlite_module, pg_module):
        monkeypatch.setattr(module, "RANK_WINDOW", 2)
    assert _ids(await searchable.search("bridge")) == [1, 3]


async def test_count_search_is_capped(store: StoryRepository) -> None:
    stories = [make_story(i, cleaned_text="common word") for i in range(SEARCH_COUNT_CAP + 5)]
    await store.add_many(stories)
    assert await store.count_search("common") == SEARCH_COUNT_CAP
    assert len(await store.search("common", limit=50)) == 50


async def test_paging_meets_every_match_once_however_few_are_ranked(
    store: StoryRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    titles = ["Harbour news", "Other", "Harbour again", "Else", "Harbour third", "More"]
    await store.add_many(
        [make_story(i, title=t, cleaned_text="harbour " * i) for i, t in enumerate(titles, 1)]
    )
    # PostgreSQL ranks at most RANK_BUDGET rows; the rest follow, newest first.
    monkeypatch.setattr(pg_module, "RANK_BUDGET", 1)
    pages = [_ids(await store.search("harbour", limit=2, offset=k)) for k in (0, 2, 4, 6)]
    seen = [story_id for page in pages for story_id in page]
    assert sorted(seen) == list(range(1, 7))
    # Title matches (the strong tier) come first on both backends.
    assert set(seen[:3]) == {1, 3, 5}


async def test_the_window_reaches_back_to_old_matches(
    store: StoryRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = [make_story(i, cleaned_text=f"zephyr sighting {i}") for i in range(1, 4)]
    filler = [make_story(i, cleaned_text="nothing to see") for i in range(4, 604)]
    await store.add_many(old + filler)
    for module in (sqlite_module, pg_module):
        monkeypatch.setattr(module, "RANK_WINDOW", 2)
        monkeypatch.setattr(module, "PRUNE_SAMPLE", 50)
    # No zephyr among the newest stories: PostgreSQL widens its id range until it finds
    # the newest RANK_WINDOW of them, or has searched the whole store.
    assert sorted(_ids(await store.search("zephyr"))) == [2, 3]
    assert sorted(_ids(await store.search_any(["zephyr", "unicorn"]))) == [2, 3]
    # A word in every story: the first range already holds the window.
    assert sorted(_ids(await store.search("nothing"))) == [602, 603]


# -- PostgreSQL schema ---------------------------------------------------------------------


async def test_postgres_migrations_run_once_and_are_recorded(pg_url: str) -> None:
    async with await PostgresStoryStore.open(pg_url) as store:
        await store.add(make_story(1))
    # Several workers opening at once: the advisory lock lets one migrate, the rest wait.
    stores = await asyncio.gather(*(PostgresStoryStore.open(pg_url) for _ in range(4)))
    for opened in stores:
        assert await opened.count() == 1
        await opened.close()
    conn = await asyncpg.connect(pg_url)
    try:
        rows = await conn.fetch("SELECT version FROM schema_version ORDER BY version")
        assert [row[0] for row in rows] == list(range(1, HEAD_VERSION + 1))
        await conn.execute("INSERT INTO schema_version (version, description) VALUES (99, 'x')")
    finally:
        await conn.close()
    with pytest.raises(StoreError, match="refusing to open"):
        await PostgresStoryStore.open(pg_url)


async def test_postgres_fresh_databases_migrate_concurrently(pg_url: str) -> None:
    stores = await asyncio.gather(*(PostgresStoryStore.open(pg_url) for _ in range(3)))
    for opened in stores:
        await opened.close()
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM schema_version") == HEAD_VERSION
    finally:
        await conn.close()


async def test_postgres_term_frequencies_follow_story_features(pg_url: str) -> None:
    async with await PostgresStoryStore.open(pg_url) as store:
        a, b = await store.add_many([make_story(1), make_story(2)])
    conn = await asyncpg.connect(pg_url)
    try:
        insert = "INSERT INTO story_features (story_id, version, features) VALUES ($1, 1, $2)"
        await conn.execute(insert, a.story_id, '{"terms": {"x": 1, "y": 2}, "entities": {}}')
        await conn.execute(insert, b.story_id, '{"terms": {"x": 3}, "entities": {"e:z": 1}}')
        df = "SELECT term, df FROM term_df ORDER BY term"
        assert [tuple(r) for r in await conn.fetch(df)] == [("e:z", 1), ("x", 2), ("y", 1)]
        await conn.execute(
            "UPDATE story_features SET features = $2 WHERE story_id = $1",
            a.story_id,
            '{"terms": {"w": 1}, "entities": {}}',
        )
        assert [tuple(r) for r in await conn.fetch(df)] == [("e:z", 1), ("w", 1), ("x", 1)]
        await conn.execute("DELETE FROM stories WHERE id = $1", b.story_id)
        assert [tuple(r) for r in await conn.fetch(df)] == [("w", 1)]
    finally:
        await conn.close()


# -- newsbot db copy -----------------------------------------------------------------------


def _fifty_stories() -> list[NewStory]:
    # Ten ingest batches of five; some stories link to earlier ones, some have no URL.
    stories: list[NewStory] = []
    for n in range(50):
        links: tuple[Link, ...] = make_story(n).links
        if n % 7 == 3:
            links = (*links, Link(title="earlier", url=f"https://news.example/{n - 3}"))
        stories.append(
            make_story(
                n,
                url=None if n % 10 == 9 else f"https://news.example/{n}",
                published_at=None if n % 3 else T0 - timedelta(hours=n),
                source=f"outlet{n % 4}",
                links=links,
            )
        )
    return stories


def _comparable(story: Story, ids: dict[int, int]) -> tuple[object, ...]:
    """A story without its id; link targets are mapped through ids (source -> copy)."""
    links = tuple(
        (link.title, link.snippet, link.url, link.outlet, ids.get(link.story_id or -1))
        for link in story.links
    )
    return (
        story.title, story.body, story.cleaned_text, story.summary, story.algorithm,
        story.fingerprint, story.url, story.source, story.language, story.published_at,
        story.ingested_at, links,
    )  # fmt: skip


async def _all_stories(url: str) -> list[Story]:
    async with await open_store(url) as store:
        return await store.latest(1000)


async def _assert_same_stories(source_url: str, copy_url: str) -> None:
    source, copy = await _all_stories(source_url), await _all_stories(copy_url)
    by_fingerprint = {story.fingerprint: story.id for story in copy}
    ids = {story.id: by_fingerprint[story.fingerprint] for story in source}
    assert sorted(_comparable(s, {v: v for v in ids.values()}) for s in copy) == sorted(
        _comparable(s, ids) for s in source
    )
    linked = [link for story in copy for link in story.links if link.story_id is not None]
    assert len(linked) == sum(1 for n in range(50) if n % 7 == 3)


async def test_db_copy_round_trip_sqlite_postgres_sqlite(pg_url: str, tmp_path: Path) -> None:
    first, back = sqlite_url(tmp_path / "first.db"), sqlite_url(tmp_path / "back.db")
    clock = FakeClock(now=T0, step=timedelta(0))
    async with await open_store(first, clock=clock) as store:
        for batch in range(10):
            clock.now = T0 + timedelta(minutes=batch)
            await store.add_many(_fifty_stories()[batch * 5 : batch * 5 + 5])
        await store.delete(3)  # ids need not be dense

    there = await copy_stories(first, pg_url, batch_size=7)
    assert (there.source_stories, there.copied, there.already_there) == (49, 49, 0)
    assert there.complete and there.destination_stories == 49
    await _assert_same_stories(first, pg_url)

    again = await copy_stories(first, pg_url, batch_size=7)
    assert (again.copied, again.skipped_as_done, again.destination_stories) == (0, 49, 49)
    assert again.complete

    home = await copy_stories(pg_url, back, batch_size=100)
    assert (home.copied, home.destination_stories) == (49, 49) and home.complete
    await _assert_same_stories(first, back)
    # Searching works on the copies.
    async with await open_store(back) as store:
        assert len(await store.search("story")) == 10


async def test_db_copy_resumes_after_a_failure(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = sqlite_url(tmp_path / "source.db")
    async with await open_store(source) as store:
        await store.add_many(_fifty_stories())
    real_add_many = PostgresStoryStore.add_many

    async def failing_add_many(self: PostgresStoryStore, stories: Any) -> list[AddResult]:
        if any(story.fingerprint == "fp-25" for story in stories):
            raise StoreError("the network went away")
        return await real_add_many(self, stories)

    monkeypatch.setattr(PostgresStoryStore, "add_many", failing_add_many)
    with pytest.raises(StoreError, match="network"):
        await copy_stories(source, pg_url, batch_size=10)
    monkeypatch.setattr(PostgresStoryStore, "add_many", real_add_many)
    async with await open_store(pg_url) as store:
        # Two whole batches, and part of the third (its runs before story 25).
        assert 20 <= await store.count() < 26

    resumed = await copy_stories(source, pg_url, batch_size=10)
    assert (resumed.skipped_as_done, resumed.destination_stories) == (20, 50)
    assert resumed.copied + resumed.already_there == 30 and resumed.copied >= 25
    assert resumed.complete
    await _assert_same_stories(source, pg_url)


def test_db_copy_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, target = sqlite_url(tmp_path / "a.db"), sqlite_url(tmp_path / "b.db")

    async def fill() -> None:
        async with await open_store(source) as store:
            await store.add_many([make_story(i) for i in range(5)])

    asyncio.run(fill())
    parser = argparse.ArgumentParser()
    add_db_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["db", "copy", "--from", source, "--to", target])
    assert run_db(args) == 0
    assert "copied: 5" in capsys.readouterr().out
    assert run_db(args) == 0
    assert "copied: 0" in capsys.readouterr().out
    same = parser.parse_args(["db", "copy", "--from", source, "--to", source])
    assert run_db(same) == 2
    broken = parser.parse_args(["db", "copy", "--from", "mysql://x/y", "--to", target])
    assert run_db(broken) == 1
    assert "unsupported database URL" in capsys.readouterr().err

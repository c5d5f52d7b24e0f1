"""Related-story storage on both backends: features, term frequencies, related lists, link
matching, frequent-word pruning, job leases, and the real ingest pipeline end to end.

The same cases run on SQLite and on a real PostgreSQL (tests/conftest.py starts one server
per session; each test gets a fresh schema).
"""

from __future__ import annotations

import asyncio
import json
from contextlib import suppress
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest

from bot.jobs import RelatedRefresh
from ingest.pipeline import Ingestor, RelatedIndexer
from ingest.prepare import FEATURES_VERSION
from storage import postgres as pg_module
from storage import repository as sqlite_module
from storage.backend import StoryRepository, open_store, sqlite_url
from storage.models import RelatedRow, StoredFeatures
from storage.postgres import PostgresStoryStore
from storage.postgres_schema import PG_MIGRATIONS, migrate
from storage.repository import StoryStore
from tests.conftest import OpenRepo
from tests.storage_builders import FakeClock, make_story
from tests.test_related_store import CHILE, CHILE_COPY, CHILE_FOLLOW_UP, FILLER, HAITI, jsonl


def _features(terms: dict[str, int], entities: dict[str, int] | None = None) -> str:
    return json.dumps({"key": 0, "terms": terms, "entities": entities or {}, "signature": []})


async def _add(store: StoryRepository, *numbers: int, **changes: Any) -> list[int]:
    results = await store.add_many([make_story(n, **changes) for n in numbers])
    return [result.story_id for result in results]


# -- features and document frequencies -------------------------------------------------------


async def test_features_round_trip_and_missing(store: StoryRepository) -> None:
    a, b, c = await _add(store, 1, 2, 3)
    assert await store.missing_features(1, 10) == [c, b, a]
    await store.put_features(
        [StoredFeatures(a, 1, _features({"x": 1})), StoredFeatures(b, 2, _features({"y": 2}))]
    )
    stored = await store.features_of([a, b, c, a])
    assert set(stored) == {a, b}
    assert (stored[a].story_id, stored[a].version, stored[a].related_at) == (a, 1, None)
    # PostgreSQL's jsonb may respace the text: compare values.
    assert json.loads(stored[a].features) == json.loads(_features({"x": 1}))
    assert await store.missing_features(1, 10) == [c, b]
    assert await store.missing_features(1, 1) == [c]
    assert await store.features_of([]) == {}
    with pytest.raises(ValueError):
        await store.missing_features(1, 0)


async def test_feature_versions_name_stored_features_only(store: StoryRepository) -> None:
    a, b, c = await _add(store, 1, 2, 3)
    await store.put_features(
        [StoredFeatures(a, 1, _features({"x": 1})), StoredFeatures(b, 2, _features({"y": 2}))]
    )
    assert await store.feature_versions([a, b, c, a]) == {a: 1, b: 2}
    await store.put_features([StoredFeatures(a, 3, _features({"x": 2}))])
    assert await store.delete(b)
    assert await store.feature_versions([a, b, c]) == {a: 3}
    assert await store.feature_versions([]) == {}


async def test_put_features_replaces_skips_deleted_and_keeps_the_last_of_a_batch(
    store: StoryRepository,
) -> None:
    a, b = await _add(store, 1, 2)
    assert await store.delete(b)
    await store.put_features(
        [
            StoredFeatures(a, 1, _features({"old": 1})),
            StoredFeatures(b, 1, _features({"gone": 1})),
            StoredFeatures(a, 2, _features({"new": 1})),
        ]
    )
    stored = await store.features_of([a, b])
    assert list(stored) == [a]
    assert stored[a].version == 2
    assert json.loads(stored[a].features)["terms"] == {"new": 1}
    counts = await store.corpus_counts(["old", "new", "gone"])
    assert (counts.docs, counts.df) == (1, {"new": 1})


async def test_features_given_with_new_stories_are_stored(store: StoryRepository) -> None:
    (a,) = await _add(store, 1, features=_features({"x": 2}, {"n:kelby": 1}), features_version=3)
    (b,) = await _add(store, 2)
    stored = await store.features_of([a, b])
    assert list(stored) == [a]
    assert stored[a].version == 3
    counts = await store.corpus_counts(["x", "n:kelby"])
    assert (counts.docs, counts.df) == (1, {"x": 1, "n:kelby": 1})


async def test_corpus_counts_follow_inserts_updates_and_deletes(store: StoryRepository) -> None:
    a, b, c = await _add(store, 1, 2, 3)
    assert await store.corpus_counts(["x"]) == await store.corpus_counts([])
    assert (await store.corpus_counts([])).docs == 0
    await store.put_features(
        [
            StoredFeatures(a, 1, _features({"x": 1, "y": 2})),
            StoredFeatures(b, 1, _features({"x": 3}, {"n:z": 1})),
            StoredFeatures(c, 1, _features({"x": 1}, {"y:2010": 1})),
        ]
    )
    keys = ["x", "y", "n:z", "y:2010", "w", "never"]
    counts = await store.corpus_counts(keys)
    assert (counts.docs, counts.df) == (3, {"x": 3, "y": 1, "n:z": 1, "y:2010": 1})
    # Updating features moves the frequencies.
    await store.put_features([StoredFeatures(a, 1, _features({"w": 1}))])
    counts = await store.corpus_counts(keys)
    assert (counts.docs, counts.df) == (3, {"x": 2, "w": 1, "n:z": 1, "y:2010": 1})
    # Deleting a story takes its features' keys away; keys at zero vanish.
    assert await store.delete(b)
    assert await store.delete(c)
    counts = await store.corpus_counts(keys)
    assert (counts.docs, counts.df) == (1, {"w": 1})
    # related_at changes (a list ranked) do not touch the frequencies.
    await store.replace_related({a: []})
    assert (await store.corpus_counts(keys)).df == {"w": 1}


# -- related lists ---------------------------------------------------------------------------


async def test_replace_related_round_trip(store: StoryRepository, clock: FakeClock) -> None:
    a, b, c, d = await _add(store, 1, 2, 3, 4)
    await store.put_features([StoredFeatures(i, 1, _features({})) for i in (a, b, c, d)])
    assert await store.related_computed_at(a) is None
    assert await store.related_rows([a]) == {}
    computed = clock.now
    await store.replace_related(
        {
            a: [
                RelatedRow(b, 0.9, copies=(c,), outlets=("Outlet B", "Outlet C")),
                RelatedRow(d, 0.4, outlets=("Ünïcode Outlet",)),
            ],
            b: [RelatedRow(a, 0.9)],
        }
    )
    assert await store.related_computed_at(a) == computed
    assert await store.related_computed_at(b) == computed
    assert await store.related_computed_at(c) is None
    assert await store.related_computed_at(999) is None
    assert await store.related_rows([a, b, c]) == {
        a: [
            RelatedRow(b, 0.9, copies=(c,), outlets=("Outlet B", "Outlet C")),
            RelatedRow(d, 0.4, outlets=("Ünïcode Outlet",)),
        ],
        b: [RelatedRow(a, 0.9)],
    }
    related = await store.related_of(a)
    assert [(e.story.id, e.rank, e.score, e.copies) for e in related] == [
        (b, 1, 0.9, (c,)),
        (d, 2, 0.4, ()),
    ]
    assert related[0].story == await store.get(b)
    assert related[0].outlets == ("Outlet B", "Outlet C")
    assert [e.story.id for e in await store.related_of(a, limit=1)] == [b]
    # Replacing a list replaces it whole.
    await store.replace_related({a: [RelatedRow(c, 0.5)]})
    assert await store.related_rows([a]) == {a: [RelatedRow(c, 0.5)]}
    again = await store.related_computed_at(a)
    assert again is not None and again > computed
    assert (await store.related_rows([b]))[b] == [RelatedRow(a, 0.9)]


async def test_related_lists_forget_deleted_stories(store: StoryRepository) -> None:
    a, b, c, d = await _add(store, 1, 2, 3, 4)
    await store.replace_related({a: [RelatedRow(b, 0.9, copies=(c, d)), RelatedRow(d, 0.5)]})
    # A copy deleted later drops out of its entry; an entry's story takes the entry away.
    assert await store.delete(c)
    assert [e.copies for e in await store.related_of(a)] == [(d,), ()]
    assert await store.delete(d)
    assert await store.related_rows([a]) == {a: [RelatedRow(b, 0.9)]}
    # Rows naming stories already deleted are skipped.
    await store.replace_related({a: [RelatedRow(c, 0.9), RelatedRow(b, 0.8)]})
    assert await store.related_rows([a]) == {a: [RelatedRow(b, 0.8)]}
    assert [(e.story.id, e.rank) for e in await store.related_of(a)] == [(b, 2)]
    with pytest.raises(ValueError):
        await store.related_of(a, limit=0)


async def test_a_deleted_storys_own_list_is_not_written(store: StoryRepository) -> None:
    a, b = await _add(store, 1, 2)
    assert await store.delete(b)
    await store.replace_related({a: [RelatedRow(b, 0.5)], b: [RelatedRow(a, 1.0)]})
    assert await store.related_rows([a, b]) == {}
    assert await store.related_computed_at(b) is None


async def test_recent_ids_pick_stale_lists_least_recent_first(
    store: StoryRepository, clock: FakeClock
) -> None:
    (old,) = await _add(store, 1)
    clock.now += timedelta(days=5)
    since = clock.now
    a, b, c = await _add(store, 2, 3, 4)
    await store.put_features([StoredFeatures(i, 1, _features({})) for i in (old, a, b, c)])
    assert await store.recent_ids(since, 10) == [c, b, a]
    await store.replace_related({b: []})
    clock.now += timedelta(minutes=1)
    await store.replace_related({a: []})
    # Never ranked first, then the oldest ranking.
    assert await store.recent_ids(since, 10) == [c, b, a]
    assert await store.recent_ids(since, 2) == [c, b]
    cut = clock.now
    clock.now += timedelta(minutes=1)
    await store.replace_related({c: []})
    assert await store.recent_ids(since, 10, stale_before=cut) == [b, a]
    assert await store.recent_ids(since, 10, stale_before=cut - timedelta(seconds=30)) == [b]
    wider = since - timedelta(days=6)
    assert await store.recent_ids(wider, 10, stale_before=cut) == [old, b, a]
    assert await store.recent_ids(clock.now + timedelta(days=1), 10) == []


# -- matching links and URLs -----------------------------------------------------------------


async def test_match_links_by_url_and_title(store: StoryRepository) -> None:
    a, _b = await _add(store, 1, 2, title="Harbour Bridge Reopens")
    (c,) = await _add(store, 3, title="Council meeting")
    by_url, by_title = await store.match_links(
        [" https://news.example/3 ", "https://news.example/missing", ""],
        ["harbour bridge   REOPENS", "council MEETING", "Nothing stored", ""],
    )
    assert by_url == {"https://news.example/3": c}
    # The oldest story wins a shared title; keys are the stored titles case-folded.
    assert by_title == {"harbour bridge reopens": a, "council meeting": c}
    assert await store.match_links([], []) == ({}, {})


async def test_ids_by_url_keys_by_the_url_as_given(store: StoryRepository) -> None:
    a, b = await _add(store, 1, 2)
    found = await store.ids_by_url(
        [" https://news.example/1", "https://news.example/2", "https://news.example/9", None, ""]
    )
    assert found == {" https://news.example/1": a, "https://news.example/2": b}
    assert await store.ids_by_url([]) == {}


# -- frequent-word pruning -------------------------------------------------------------------


async def test_any_word_queries_drop_words_most_stories_share(
    store: StoryRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in (sqlite_module, pg_module):
        monkeypatch.setattr(module, "PRUNE_MIN_STORIES", 8)
    ids = await _add(store, *range(1, 9), cleaned_text="The ferry company announced fares.")
    (rare,) = await _add(store, 9, cleaned_text="A lighthouse keeper saw the ferry.")
    # "ferry" is in every story: with a rarer word left it is dropped, so only "lighthouse"
    # decides; alone it stays.
    assert [h.story.id for h in await store.search_any(["ferry", "lighthouse"])] == [rare]
    assert await store.search_any_ids(["ferry", "lighthouse"]) == [rare]
    assert len(await store.search_any(["ferry"], limit=20)) == len(ids) + 1
    assert await store.count_search("ferry lighthouse") == 1
    # A word no story has is "rare" too: the frequent one is still dropped.
    assert await store.count_search("ferry parliament") == 0


# -- job leases ------------------------------------------------------------------------------


async def test_claim_run_is_won_once_per_period_across_stores(
    open_repo: OpenRepo, clock: FakeClock
) -> None:
    clock.step = timedelta(0)
    first, second = await open_repo(), await open_repo()
    try:
        leases = [first, second]
        every = timedelta(minutes=10)

        async def claim_all(name: str = "refresh") -> list[bool]:
            return sorted(await asyncio.gather(*(s.claim_run(name, every) for s in leases * 4)))

        assert await claim_all() == [False] * 7 + [True]
        # Another job has its own lease.
        assert await claim_all("digest") == [False] * 7 + [True]
        clock.now += every - timedelta(seconds=1)
        assert await claim_all() == [False] * 8
        clock.now += timedelta(seconds=1)
        assert await claim_all() == [False] * 7 + [True]
        assert await first.get_meta("job.refresh.last_run") == clock.now.isoformat()
    finally:
        await first.close()
        await second.close()


# -- concurrent writers on PostgreSQL ----------------------------------------------------------


async def test_concurrent_feature_writers_do_not_deadlock(pg_url: str) -> None:
    # Each batch's first story has the keys the other worker's batch takes last. Counted row
    # by row (migration 2's triggers) the workers lock term_df rows in opposite orders: this
    # test deadlocked in 3 runs of 3 on a schema stopped at migration 3. Migration 4 sorts.
    first = await PostgresStoryStore.open(pg_url)
    second = await PostgresStoryStore.open(pg_url)
    try:
        ids = await _add(first, *range(1, 201))
        a_keys = {f"a{j}": 1 for j in range(100)}
        b_keys = {f"b{j}": 1 for j in range(100)}

        async def write(store: PostgresStoryStore, mine: list[int], flip: bool) -> None:
            head, tail = (b_keys, a_keys) if flip else (a_keys, b_keys)
            for one, two in zip(mine[::2], mine[1::2], strict=True):
                await store.put_features(
                    [
                        StoredFeatures(one, 1, _features(head)),
                        StoredFeatures(two, 1, _features(tail)),
                    ]
                )

        await asyncio.gather(write(first, ids[:100], True), write(second, ids[100:], False))
        counts = await first.corpus_counts(["a0", "b99"])
        assert (counts.docs, counts.df) == (200, {"a0": 100, "b99": 100})
    finally:
        await first.close()
        await second.close()


async def test_concurrent_list_replacements_take_turns(pg_url: str) -> None:
    first = await PostgresStoryStore.open(pg_url)
    second = await PostgresStoryStore.open(pg_url)
    try:
        ids = await _add(first, *range(1, 7))
        owner, others = ids[0], ids[1:]
        for _ in range(10):
            await asyncio.gather(
                first.replace_related({owner: [RelatedRow(i, 0.5) for i in others]}),
                second.replace_related({owner: [RelatedRow(i, 0.4) for i in others[::-1]]}),
            )
        rows = (await first.related_rows([owner]))[owner]
        assert len(rows) == len(others)
        assert len({row.score for row in rows}) == 1
    finally:
        await first.close()
        await second.close()


# -- the real ingest pipeline on both backends -----------------------------------------------


def _ingestor(store: StoryRepository) -> Ingestor:
    # Ingestor is typed as taking StoryStore; it only calls StoryRepository methods.
    return Ingestor(
        cast(StoryStore, store),
        algorithm="lead",
        sentences=2,
        max_chars=None,
        max_story_chars=100_000,
        related=True,
    )


async def _related_by_url(
    store: StoryRepository,
) -> dict[str, list[tuple[str, float, tuple[str, ...]]]]:
    """Every stored list as URL -> [(related URL, score, outlets)], for comparing backends."""
    lists = {}
    for story in await store.latest(50):
        assert story.url is not None
        lists[story.url] = [
            (str(entry.story.url), round(entry.score, 6), entry.outlets)
            for entry in await store.related_of(story.id)
        ]
    return lists


async def _ingest_everything(store: StoryRepository, clock: FakeClock) -> None:
    records = [CHILE, CHILE_COPY, HAITI, *FILLER]
    report = await _ingestor(store).ingest_bytes(jsonl(*records), filename="a.jsonl")
    assert report.rejected == []
    # A later batch joins its neighbours' lists; then the refresh job re-ranks everything.
    report = await _ingestor(store).ingest_bytes(jsonl(CHILE_FOLLOW_UP), filename="b.jsonl")
    assert len(report.added) == 1
    clock.now += timedelta(minutes=11)
    job = RelatedRefresh(clock=clock, window=timedelta(days=1))
    indexer = RelatedIndexer(cast(StoryStore, store))
    result = await job.run(cast(StoryStore, store), indexer)
    assert result.refreshed == len(records) + 1


async def test_ingest_gives_the_same_related_lists_on_both_backends(
    tmp_path: Path, pg_url: str
) -> None:
    found = []
    for url in (sqlite_url(tmp_path / "news.db"), pg_url):
        clock = FakeClock()
        async with await open_store(url, clock=clock) as store:
            await _ingest_everything(store, clock)
            assert await store.missing_features(FEATURES_VERSION, 10) == []
            found.append(await _related_by_url(store))
    on_sqlite, on_postgres = found
    assert on_sqlite == on_postgres
    # The three Chile stories list one another; the rest share too little.
    assert sum(1 for entries in on_postgres.values() if entries) == 3
    follow_up = on_postgres[CHILE_FOLLOW_UP["url"]]
    assert follow_up[0][0] in (CHILE["url"], CHILE_COPY["url"])
    assert set(follow_up[0][2]) == {"Andes Times", "Pacific Wire"}


async def test_postgres_migration_4_keeps_the_counts_of_a_version_3_database(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        assert await migrate(conn, PG_MIGRATIONS[:3]) == 3
        async with PostgresStoryStore(pg_url, await asyncpg.create_pool(pg_url)) as old:
            a, b = await _add(old, 1, 2)
            await old.put_features(
                [
                    StoredFeatures(a, 1, _features({"x": 1}, {"n:z": 1})),
                    StoredFeatures(b, 1, _features({"x": 2})),
                ]
            )
        async with await PostgresStoryStore.open(pg_url) as store:
            counts = await store.corpus_counts(["x", "n:z"])
            assert (counts.docs, counts.df) == (2, {"x": 2, "n:z": 1})
            assert await store.delete(a)
            counts = await store.corpus_counts(["x", "n:z"])
            assert (counts.docs, counts.df) == (1, {"x": 1})
    finally:
        await conn.close()


async def test_cancelled_related_writes_leave_lists_whole(store: StoryRepository) -> None:
    ids = await _add(store, *range(1, 31))
    owner, others = ids[0], ids[1:]
    await store.replace_related({owner: [RelatedRow(i, 0.1) for i in others]})
    # Each read hands the loop to the writing task for a while, so cancelling after a
    # different number of reads catches it at different points.
    for reads in range(6):
        score = 0.2 + reads / 10
        writes = asyncio.gather(
            store.replace_related({owner: [RelatedRow(i, score) for i in others]}),
            store.put_features([StoredFeatures(i, 1, _features({f"k{reads}": 1})) for i in ids]),
        )
        for _ in range(reads):
            await store.get_meta("anything")
        writes.cancel()
        with suppress(asyncio.CancelledError):
            await writes
        rows = (await store.related_rows([owner]))[owner]
        assert len(rows) == len(others)
        assert len({row.score for row in rows}) == 1
        counts = await store.corpus_counts([f"k{reads}"])
        assert counts.df in ({}, {f"k{reads}": len(ids)})
        assert counts.docs in (0, len(ids))
    await store.replace_related({owner: [RelatedRow(others[0], 1.0)]})
    assert await store.related_rows([owner]) == {owner: [RelatedRow(others[0], 1.0)]}


async def test_compacting_the_search_index_keeps_every_story_findable(
    store: StoryRepository,
) -> None:
    # One write transaction each: on SQLite, three pieces of index to merge.
    ids = [(await _add(store, n))[0] for n in (1, 2, 3)]
    await store.compact_search_index()
    for n, story_id in zip((1, 2, 3), ids, strict=True):
        assert [hit.story.id for hit in await store.search(f"item{n}")] == [story_id]
    await store.compact_search_index()
    assert await store.count() == 3

"""The store's bulk-ingest shortcuts give the same answers as the plain paths they replace.

search_any_ids_many() against one search_any_ids() call each (both backends); SQLite's
grouped term_df upsert in add_many (schema migration 4) against a recount of the stored
features, across put_features, updates, deletes, rollbacks and an upgrade from version 3;
features_of()'s shared related_at conversion.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from storage import StoreError, StoryStore
from storage import repository as sqlite_module
from storage.backend import StoryRepository
from storage.models import NewStory, RelatedRow, StoredFeatures
from storage.schema import MIGRATIONS, migrate
from tests.storage_builders import FakeClock, make_story, open_store, raw_connection

_WORDS = ["walrus", "otter", "harbour", "bridge", "storm", "council", "market", "river"]


def _corpus_story(i: int) -> NewStory:
    # Overlapping word sets, "common" in every story: many ties and near-ties for bm25, and
    # one word frequent enough to be pruned.
    words = [_WORDS[(i + k) % len(_WORDS)] for k in range(1 + i % 3)]
    title = " ".join(words[:1] if i % 2 else ["Item", str(i)])
    return make_story(i + 1, title=title, cleaned_text=" ".join(["common", *words]) + ".")


_QUERIES: list[tuple[list[str], int | None]] = [
    (["walrus", "otter"], None),
    (["common", "walrus"], 3),
    (["harbour", "bridge", "storm", "common"], None),
    ([], None),
    (["🦄", "()"], None),
    (["common"], 5),
    (["river", "market", "council"], 2),
    (["walrus", "otter"], None),
    (['title:"x"', "storm"], 1),
    (["absent"], None),
]


@pytest.fixture
async def corpus(store: StoryRepository, monkeypatch: pytest.MonkeyPatch) -> StoryRepository:
    monkeypatch.setattr(sqlite_module, "PRUNE_MIN_STORIES", 10)
    await store.add_many([_corpus_story(i) for i in range(40)])
    return store


@pytest.mark.parametrize("limit", [1, 3, 50])
async def test_many_searches_answer_as_one_call_each(corpus: StoryRepository, limit: int) -> None:
    one_each = [
        await corpus.search_any_ids(terms, limit, exclude_id=exclude) for terms, exclude in _QUERIES
    ]
    assert any(one_each), "the corpus should match some queries"
    assert await corpus.search_any_ids_many(_QUERIES, limit) == one_each


async def test_many_searches_edge_cases(corpus: StoryRepository) -> None:
    assert await corpus.search_any_ids_many([]) == []
    assert await corpus.search_any_ids_many([([], None), (["()"], 1)]) == [[], []]
    with pytest.raises(ValueError, match="limit"):
        await corpus.search_any_ids_many(_QUERIES, 0)


async def test_frequent_word_counts_give_the_same_answers_from_a_fresh_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite-only: the frequent-word verdicts and their cache are the SQLite store's own.
    monkeypatch.setattr(sqlite_module, "PRUNE_MIN_STORIES", 10)
    async with await open_store(tmp_path / "news.db") as store:
        await store.add_many([_corpus_story(i) for i in range(40)])
        one_each = [
            await store.search_any_ids(terms, 5, exclude_id=exclude) for terms, exclude in _QUERIES
        ]
    # A fresh store: no verdicts cached, so every word of every query is counted at once.
    async with await open_store(tmp_path / "news.db") as store:
        assert await store.search_any_ids_many(_QUERIES, 5) == one_each


async def test_reads_of_any_number_of_words_or_urls_use_a_few_fixed_statements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite keeps each distinct statement text prepared (128 a connection); texts built
    # for each count of words held 20 MB by the end of a 10k-story seed.
    monkeypatch.setattr(sqlite_module, "PRUNE_MIN_STORIES", 10)
    texts: set[str] = set()
    read = StoryStore._read

    async def recording(self: StoryStore, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        texts.add(sql)
        return await read(self, sql, params)

    monkeypatch.setattr(StoryStore, "_read", recording)
    async with await open_store(tmp_path / "news.db") as store:
        await store.add_many([_corpus_story(i) for i in range(40)])
        for n in range(2, 9):
            # New words each round, so none has a cached verdict and all n are counted.
            words = [f"{word}{n}" for word in _WORDS[:n]]
            await store.search_any_ids_many([(words, None)], 5)
            await store.ids_by_url([f"https://example.com/{n}/{k}" for k in range(n)])
        counted = len(texts)
        await store.search_any_ids_many([([f"{w}x" for w in _WORDS], None)], 5)
        await store.ids_by_url([f"https://example.com/x/{k}" for k in range(30)])
    assert len(texts) == counted


# -- term_df under add_many's grouped upsert (SQLite) --------------------------------------


def _features(terms: dict[str, int], entities: dict[str, int] | None = None) -> str:
    return json.dumps({"key": 0, "terms": terms, "entities": entities or {}, "signature": []})


def _recount(path: Path) -> tuple[int, dict[str, int]]:
    """term_df as migration 2's per-row triggers define it, recounted from story_features."""
    with raw_connection(path) as conn:
        rows = conn.execute(
            """
            SELECT key, count(*) FROM (
                SELECT k.key FROM story_features AS f, json_each(f.features, '$.terms') AS k
                UNION ALL
                SELECT k.key FROM story_features AS f, json_each(f.features, '$.entities') AS k)
             GROUP BY key
            """
        ).fetchall()
        docs = conn.execute("SELECT count(*) FROM story_features").fetchone()[0]
        return int(docs), {str(key): int(df) for key, df in rows}


def _stored(path: Path) -> tuple[int, dict[str, int]]:
    with raw_connection(path) as conn:
        docs = conn.execute("SELECT value FROM counters WHERE name = 'feature_docs'").fetchone()
        rows = conn.execute("SELECT term, df FROM term_df").fetchall()
        assert conn.execute("SELECT count(*) FROM term_df_deferred").fetchone()[0] == 0
        return int(docs[0]), {str(term): int(df) for term, df in rows}


def _featured(n: int, terms: dict[str, int], entities: dict[str, int] | None = None) -> NewStory:
    return make_story(n, features=_features(terms, entities), features_version=1)


async def test_add_many_counts_document_frequencies_exactly(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    async with await open_store(path) as store:
        first = await store.add_many(
            [
                _featured(1, {"quake": 2, "chile": 1}, {"n:chile": 1}),
                _featured(2, {"quake": 1}),
                make_story(3),  # no features: counted later, by put_features
                _featured(1, {"ignored": 1}),  # a duplicate of story 1: not stored again
                # A key that is both a term and an entity counts once for each, as in
                # migration 2's trigger.
                _featured(4, {"both": 1}, {"both": 1}),
            ]
        )
        assert [r.created for r in first] == [True, True, True, False, True]
        expected = (3, {"quake": 2, "chile": 1, "n:chile": 1, "both": 2})
        assert _stored(path) == _recount(path) == expected

        await store.add_many([_featured(10 + i, {"quake": 1, f"k{i}": 1}) for i in range(30)])
        assert _stored(path) == _recount(path)

        # put_features inserts (story 3) and updates (story 2) still count row by row.
        await store.put_features(
            [
                StoredFeatures(first[2].story_id, 1, _features({"chile": 1, "new": 1})),
                StoredFeatures(first[1].story_id, 2, _features({"flood": 1})),
            ]
        )
        assert _stored(path) == _recount(path)
        assert _stored(path)[1]["quake"] == 31

        assert await store.delete(first[0].story_id)
        assert _stored(path) == _recount(path)
        assert "n:chile" not in _stored(path)[1]


async def test_a_failed_add_many_leaves_term_df_untouched(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    async with await open_store(path) as store:
        await store.add_many([_featured(1, {"quake": 1})])
        before = _stored(path)
        broken = make_story(3, features="not json", features_version=1)
        with pytest.raises(StoreError):
            await store.add_many([_featured(2, {"quake": 1}), broken])
        assert _stored(path) == before == _recount(path)
        # The deferral did not outlive the failed transaction: single inserts still count.
        await store.add_many([_featured(4, {"quake": 1})])
        assert _stored(path) == _recount(path) == (2, {"quake": 2})


async def test_version_3_databases_upgrade_with_exact_counts(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await migrate(conn, MIGRATIONS[:3]) == 3
    # Stored by version-3 code: the old per-row trigger counts these.
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute(
            "INSERT INTO stories (title, url, language, ingested_at, sort_key, body,"
            " cleaned_text, summary, algorithm, sentence_count, fingerprint)"
            " VALUES ('Old', 'https://old.example', 'english', 0, 0, 'b', 'old words',"
            " '[\"One.\"]', 'lead', 1, 'fp-old')"
        )
        await conn.execute(
            "INSERT INTO story_features (story_id, version, features) VALUES (1, 1, ?)",
            (_features({"quake": 1, "old": 1}),),
        )
    assert _recount(path) == (1, {"quake": 1, "old": 1})
    async with await StoryStore.open(path) as store:
        assert _stored(path) == (1, {"quake": 1, "old": 1})
        await store.add_many([_featured(2, {"quake": 1}), _featured(3, {"new": 2})])
        assert _stored(path) == _recount(path) == (3, {"quake": 2, "old": 1, "new": 1})
        assert await store.delete(1)
        assert _stored(path) == _recount(path) == (2, {"quake": 1, "new": 1})


# -- features_of ---------------------------------------------------------------------------


async def test_features_of_converts_shared_related_times(store: StoryRepository) -> None:
    a, b, c = (r.story_id for r in await store.add_many([make_story(n) for n in (1, 2, 3)]))
    await store.put_features([StoredFeatures(i, 1, _features({"x": 1})) for i in (a, b, c)])
    await store.replace_related({a: [RelatedRow(b, 1.0)], b: [RelatedRow(a, 1.0)]})
    rows = await store.features_of([a, b, c, 999])
    assert set(rows) == {a, b, c}
    assert rows[a].related_at is not None
    assert rows[a].related_at == rows[b].related_at
    assert rows[c].related_at is None
    assert rows[c] == StoredFeatures(c, 1, _features({"x": 1}))


async def test_features_of_keeps_distinct_related_times(tmp_path: Path) -> None:
    clock = FakeClock(step=timedelta(0))
    async with await StoryStore.open(tmp_path / "news.db", clock=clock) as store:
        a, b = (r.story_id for r in await store.add_many([make_story(n) for n in (1, 2)]))
        await store.put_features([StoredFeatures(i, 1, _features({"x": 1})) for i in (a, b)])
        await store.replace_related({a: []})
        first = clock.now
        clock.now += timedelta(seconds=1)
        await store.replace_related({b: []})
        rows = await store.features_of([a, b])
    assert (rows[a].related_at, rows[b].related_at) == (first, first + timedelta(seconds=1))

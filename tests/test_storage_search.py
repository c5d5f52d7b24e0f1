"""Full-text search on both backends: ranking, AND-then-OR fallback, hostile input, counting,
related stories, frequent words; and the FTS5 query sanitiser on its own.

`store` (tests/conftest.py) runs each search test once on a real SQLite file and once on a
real PostgreSQL schema. Tests about SQLite itself say why they open a StoryStore directly.
Cases shared word for word with tests/test_storage_backends.py live only there.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import NewStory, QueryError, SearchHit, StoreError, fts
from storage import postgres as pg_module
from storage import repository as sqlite_module
from storage.backend import StoryRepository
from storage.repository import SEARCH_COUNT_CAP
from tests.conftest import OpenRepo
from tests.storage_builders import make_story, open_store


@pytest.fixture
async def store(store: StoryRepository) -> StoryRepository:
    """The backend's store (tests/conftest.py) holding five small stories."""
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


def _set_on_both_backends(monkeypatch: pytest.MonkeyPatch, name: str, value: int) -> None:
    # Each store module reads its own copy of the tuning constant.
    for module in (sqlite_module, pg_module):
        monkeypatch.setattr(module, name, value)


def _ids(hits: list[SearchHit]) -> list[int]:
    return [hit.story.id for hit in hits]


async def test_title_match_beats_body_match(store: StoryRepository) -> None:
    hits = await store.search("harbour")
    assert _ids(hits) == [1, 2]
    assert hits[0].score > hits[1].score


async def test_all_terms_are_required_when_possible(store: StoryRepository) -> None:
    assert _ids(await store.search("harbour bridge")) == [1]


async def test_falls_back_to_any_term(store: StoryRepository) -> None:
    hits = await store.search("bridge furniture")
    assert set(_ids(hits)) == {1, 3, 5}
    assert await store.count_search("bridge furniture") == 3


async def test_stemming_and_case(store: StoryRepository) -> None:
    assert _ids(await store.search("RAINING")) == [3]


async def test_no_match_is_an_empty_list(store: StoryRepository) -> None:
    assert await store.search("zeppelin") == []
    assert await store.count_search("zeppelin") == 0


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
    "^harbour",
    "harbour*",
    '"harbour',
    "cleaned_text:treasure",
    "{title cleaned_text}: harbour",
    "NEAR(harbour bridge, 2)",
    "AND OR NOT",
    "\x00harbour",
    "a" * 5000,
    "word " * 500,
]


@pytest.mark.parametrize("query", HOSTILE)
async def test_hostile_queries_never_leak_driver_errors(store: StoryRepository, query: str) -> None:
    try:
        hits = await store.search(query)
        count = await store.count_search(query)
    except QueryError as exc:
        assert str(exc)
        assert not isinstance(exc, sqlite3.Error | asyncpg.PostgresError)
    else:
        assert isinstance(hits, list)
        assert 0 <= count <= SEARCH_COUNT_CAP
    assert await store.count() == 5


async def test_hostile_queries_are_searched_as_plain_words(store: StoryRepository) -> None:
    assert _ids(await store.search("title:x")) == [4]
    assert _ids(await store.search("'; DROP TABLE stories; --")) == [5]
    assert _ids(await store.search("NEAR(harbour bridge)")) == [1]
    assert _ids(await store.search("harbour*")) == [1, 2]


async def test_query_error_is_a_store_error() -> None:
    assert issubclass(QueryError, StoreError)


async def test_search_any_for_related_stories(store: StoryRepository) -> None:
    hits = await store.search_any(["harbour", "rain"], exclude_id=1)
    assert set(_ids(hits)) == {2, 3}
    assert await store.search_any([]) == []
    assert await store.search_any(["🦄", "()"]) == []
    assert _ids(await store.search_any(['title:"x"'], limit=1)) == [4]


# -- strong matches first ------------------------------------------------------------------


async def _add_tier_stories(store: StoryRepository) -> None:
    # Walrus in the title of 1, 4 and 6; in long bodies only of 2, 3, 5 and 7 (one of them
    # repeating it, which bm25 alone could rank above a title).
    filler = " ".join(f"word{k}" for k in range(40))
    await store.add_many(
        [
            make_story(1, title="Walrus seen", cleaned_text=f"{filler} end."),
            make_story(2, title="Harbour", cleaned_text=f"A walrus. {filler}."),
            make_story(3, title="Beach", cleaned_text="Walrus walrus walrus walrus."),
            make_story(4, title="Walrus again", cleaned_text=f"{filler} more."),
            make_story(5, title="Coast", cleaned_text=f"{filler} walrus otter."),
            make_story(6, title="A walrus", cleaned_text=f"Otter {filler}."),
            make_story(7, title="Ice", cleaned_text=f"{filler} walrus once."),
        ]
    )


@pytest.fixture
async def tiers(open_repo: OpenRepo) -> AsyncIterator[StoryRepository]:
    async with await open_repo() as opened:
        await _add_tier_stories(opened)
        yield opened


async def test_title_matches_rank_before_body_matches(tiers: StoryRepository) -> None:
    ranked = _ids(await tiers.search("walrus", limit=10))
    assert set(ranked[:3]) == {1, 4, 6}
    assert set(ranked[3:]) == {2, 3, 5, 7}
    assert _ids(await tiers.search_any(["walrus"], limit=10)) == ranked


async def test_pages_across_the_tiers_neither_repeat_nor_skip(tiers: StoryRepository) -> None:
    whole = _ids(await tiers.search("walrus", limit=10))
    pages = [_ids(await tiers.search("walrus", limit=2, offset=k)) for k in range(0, 8, 2)]
    assert [story for page in pages for story in page] == whole


async def test_an_excluded_strong_match_does_not_shorten_the_page(tiers: StoryRepository) -> None:
    hits = _ids(await tiers.search_any(["walrus"], limit=3, exclude_id=4))
    assert len(hits) == 3
    assert 4 not in hits
    assert set(hits[:2]) == {1, 6}


async def test_two_of_the_words_rank_before_one(tiers: StoryRepository) -> None:
    # 5 holds both words in its body, 6 both with walrus in its title; the rest one word.
    ranked = _ids(await tiers.search_any(["otter", "walrus"], limit=10))
    assert set(ranked[:4]) == {1, 4, 5, 6}
    assert ranked[0] == 6
    assert len(ranked) == 7


async def test_long_word_lists_are_ranked_without_tiers(tiers: StoryRepository) -> None:
    hits = await tiers.search_any(["walrus", "otter", "seal", "gull", "puffin"], limit=10)
    assert len(hits) == 7
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


# -- the sanitiser on its own --------------------------------------------------------------


def test_tokenize_mirrors_unicode61() -> None:
    assert fts.tokenize('title:"x" (a OR b)*') == ["title", "x", "a", "OR", "b"]
    assert fts.tokenize("Crème brûlée, ĀĒĪ; 東京 🦄") == ["Crème", "brûlée", "ĀĒĪ", "東京"]
    assert fts.tokenize("snake_case don't") == ["snake", "case", "don", "t"]
    assert fts.tokenize("Same same SAME") == ["Same"]


def test_query_terms_drop_bare_operators_unless_alone() -> None:
    assert fts.query_terms("cats AND dogs") == ["cats", "dogs"]
    assert fts.query_terms("and or") == ["and", "or"]
    assert fts.query_terms("NOT") == ["NOT"]
    assert len(fts.query_terms(" ".join(f"w{i}" for i in range(100)))) == fts.MAX_TERMS


@pytest.fixture(scope="module")
def fts_conn() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE VIRTUAL TABLE t USING fts5(title, body,"
        " tokenize = 'porter unicode61 remove_diacritics 2')"
    )
    conn.execute("INSERT INTO t VALUES ('hello world', 'body text')")
    yield conn
    conn.close()


@settings(max_examples=300, database=None, deadline=None)
@given(st.text())
def test_any_text_gives_a_valid_fts_expression_or_query_error(
    fts_conn: sqlite3.Connection, text: str
) -> None:
    try:
        terms = fts.query_terms(text)
    except QueryError:
        return
    expressions = [fts.all_of(terms), fts.any_of(terms), fts.in_column("title", terms)]
    if len(terms) > 1:
        expressions.append(fts.any_two_of(terms))
    for expression in expressions:
        fts_conn.execute("SELECT rowid FROM t WHERE t MATCH ?", (expression,)).fetchall()


def test_any_two_of_and_in_column_match_what_they_say(fts_conn: sqlite3.Connection) -> None:
    def matches(expression: str) -> bool:
        return bool(fts_conn.execute("SELECT 1 FROM t WHERE t MATCH ?", (expression,)).fetchall())

    assert matches(fts.any_two_of(["hello", "nothing", "text"]))
    assert not matches(fts.any_two_of(["hello", "nothing", "else"]))
    assert matches(fts.in_column("title", ["nothing", "world"]))
    assert not matches(fts.in_column("title", ["body", "text"]))


# -- frequent words in "any of these words" queries ----------------------------------------


def _corpus_story(i: int) -> NewStory:
    # "common" is in every story, "half" in the first ten; "walrus" and "otter" in one each.
    words = ["common"]
    if i < 10:
        words.append("half")
    if i == 7:
        words.append("walrus")
    if i == 3:
        words.append("otter")
    return make_story(i + 1, title=f"Item {i}", cleaned_text=" ".join(words) + ".")


def _skewed_corpus() -> list[NewStory]:
    return [_corpus_story(i) for i in range(20)]


@pytest.fixture
async def skewed(
    open_repo: OpenRepo, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[StoryRepository]:
    _set_on_both_backends(monkeypatch, "PRUNE_MIN_STORIES", 10)
    async with await open_repo() as opened:
        await opened.add_many(_skewed_corpus())
        yield opened


async def test_frequent_words_are_dropped_when_rarer_ones_remain(skewed: StoryRepository) -> None:
    # Story 8 holds the rare word: it is found, and not drowned by the 19 "common" stories.
    assert _ids(await skewed.search_any(["common", "walrus"])) == [8]
    assert await skewed.search_any_ids(["common", "half", "walrus"]) == [8]
    assert set(_ids(await skewed.search_any(["walrus", "COMMON", "otter"]))) == {4, 8}
    assert await skewed.search_any_ids(["walrus"], exclude_id=8) == []


async def test_queries_of_only_frequent_words_are_still_answered(skewed: StoryRepository) -> None:
    assert len(await skewed.search_any(["common", "half"], limit=50)) == 20
    assert len(await skewed.search_any_ids(["common", "half"], limit=50)) == 20
    assert len(await skewed.search("common half", limit=50)) == 10


async def test_search_keeps_all_words_and_prunes_only_its_any_word_fallback(
    skewed: StoryRepository,
) -> None:
    # All words match in story 8: a frequent word only narrows an all-words search.
    assert _ids(await skewed.search("common walrus")) == [8]
    assert await skewed.count_search("common walrus") == 1
    # Past the end of the all-words matches is an empty page, not the fallback.
    assert await skewed.search("common walrus", offset=1) == []
    # No story has all three: any word, without the one in every story.
    assert set(_ids(await skewed.search("common walrus otter"))) == {4, 8}
    assert await skewed.count_search("common walrus otter") == 2
    assert await skewed.search("common walrus otter", offset=2) == []


async def test_verdicts_are_redone_as_the_store_grows(skewed: StoryRepository) -> None:
    assert _ids(await skewed.search_any(["walrus", "half"])) == [8]
    # Twenty more walrus stories: now it is the frequent word and "otter" the rare one.
    await skewed.add_many([make_story(100 + i, cleaned_text="walrus again.") for i in range(20)])
    assert _ids(await skewed.search_any(["walrus", "otter"])) == [4]


async def test_shares_are_measured_over_the_newest_stories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite-only: only the SQLite store samples the newest PRUNE_SAMPLE stories; PostgreSQL
    # counts a word's share over the whole table.
    monkeypatch.setattr(sqlite_module, "PRUNE_MIN_STORIES", 10)
    monkeypatch.setattr(sqlite_module, "PRUNE_SAMPLE", 10)
    async with await open_store(tmp_path / "news.db") as skewed:
        await skewed.add_many(_skewed_corpus())
        # "half" is in half the store but in none of the newest ten stories: there it is rare.
        hits = await skewed.search_any(["half", "walrus"], limit=50)
    assert set(_ids(hits)) == set(range(1, 11))
    assert _ids(hits)[0] == 8


async def test_related_candidate_searches_prune_at_a_lower_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite-only: RELATED_TERM_SHARE is the SQLite store's (PostgreSQL ranks its candidates
    # another way). "tide" is in 4 of 20 stories: common for a related-story search (over
    # 15%), not for a reader's search (under 25%).
    monkeypatch.setattr(sqlite_module, "PRUNE_MIN_STORIES", 10)

    def text(i: int) -> str:
        return "Filler tide." if i < 4 else "Filler walrus." if i == 9 else "Filler."

    stories = [make_story(i + 1, title=f"Item {i}", cleaned_text=text(i)) for i in range(20)]
    async with await open_store(tmp_path / "news.db") as store:
        await store.add_many(stories)
        assert sorted(_ids(await store.search_any(["tide", "walrus"], limit=50))) == [
            1,
            2,
            3,
            4,
            10,
        ]
        assert await store.search_any_ids(["tide", "walrus"], limit=50) == [10]


async def test_small_stores_keep_every_word(store: StoryRepository) -> None:
    # Below PRUNE_MIN_STORIES: "harbour" is in two of these five stories and still counts.
    # (Not "the": PostgreSQL's english configuration drops it as a stop word.)
    assert set(_ids(await store.search_any(["harbour", "treasure"]))) == {1, 2, 4}

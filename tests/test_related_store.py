"""Stored related lists: computed at ingest, kept current, refreshed, migrated from v1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from bot.jobs import REFRESH_JOB, RelatedRefresh
from bot.services import NewsApp, NewsContext
from ingest.pipeline import Ingestor, RelatedIndexer
from ingest.prepare import FEATURES_VERSION, load_features
from storage.backend import StoryRepository
from storage.models import RelatedRow, StoredFeatures
from storage.repository import StoryStore
from storage.schema import MIGRATIONS, migrate
from summarize.related import CorpusStats, Vectors
from tests.storage_builders import FakeClock, raw_connection

CHILE = {
    "title": "Magnitude 8.8 earthquake strikes central Chile",
    "text": (
        "A magnitude 8.8 earthquake struck off the coast of central Chile on Saturday, "
        "killing at least 300 people. The quake hit near Concepcion, the second largest city "
        "in Chile. President Michelle Bachelet declared a state of catastrophe. Tsunami "
        "warnings were issued across the Pacific as far as Hawaii and Japan."
    ),
    "url": "https://andes.example/chile-quake",
    "source": "Andes Times",
    "published_at": "2010-02-27T08:00:00+00:00",
}
# The same report from another outlet, a few words changed: a copy to fold.
CHILE_COPY = CHILE | {
    "text": CHILE["text"].replace("killing at least 300", "leaving at least 300 dead and")
    + " Officials said the toll would rise.",
    "url": "https://pacificwire.example/chile",
    "source": "Pacific Wire",
    "published_at": "2010-02-27T09:30:00+00:00",
}
CHILE_FOLLOW_UP = {
    "title": "Chile earthquake death toll rises as Concepcion searches rubble",
    "text": (
        "Rescuers in Concepcion searched collapsed buildings on Sunday as the death toll "
        "from the magnitude 8.8 earthquake in Chile rose above 700. President Michelle "
        "Bachelet sent troops to keep order in Concepcion, where looting broke out. The "
        "Pacific tsunami warnings were lifted."
    ),
    "url": "https://southern.example/concepcion",
    "source": "Southern Post",
    "published_at": "2010-02-28T12:00:00+00:00",
}
# The hard negative: the same kind of event, another place and another year.
HAITI = {
    "title": "Magnitude 7.2 earthquake strikes southwestern Haiti",
    "text": (
        "A magnitude 7.2 earthquake struck southwestern Haiti on Saturday, killing at least "
        "300 people. The quake hit near Les Cayes. Prime Minister Ariel Henry declared a "
        "state of emergency. Tsunami warnings were briefly issued for the Caribbean coast."
    ),
    "url": "https://caribbean.example/haiti-quake",
    "source": "Caribbean Daily",
    "published_at": "2021-08-14T15:00:00+00:00",
}
FILLER = [
    {
        "title": "Harbour bridge reopens after cable repairs",
        "text": "The harbour bridge in Kelby reopened on Monday after engineers replaced "
        "its cables. Traffic returned to normal within hours.",
        "url": "https://kelby.example/bridge",
        "source": "Kelby Courier",
    },
    {
        "title": "Mayor wins second term in Lindenfield election",
        "text": "Voters in Lindenfield re-elected the mayor on Sunday with 54 percent of "
        "the vote. Turnout was the highest in a decade.",
        "url": "https://linden.example/election",
        "source": "Lindenfield Post",
    },
]


def jsonl(*records: dict[str, Any]) -> bytes:
    return "\n".join(json.dumps(record) for record in records).encode()


def make_ingestor(store: StoryRepository, *, related: bool = True) -> Ingestor:
    return Ingestor(
        store,
        algorithm="lead",
        sentences=2,
        max_chars=None,
        max_story_chars=100_000,
        related=related,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[StoryStore]:
    opened = await StoryStore.open(tmp_path / "news.db", clock=clock)
    try:
        yield opened
    finally:
        await opened.close()


async def ingest(
    store: StoryRepository, *records: dict[str, Any], related: bool = True
) -> list[int]:
    report = await make_ingestor(store, related=related).ingest_bytes(
        jsonl(*records), filename="stories.jsonl"
    )
    assert report.rejected == []
    return report.added


async def ids_by_url(store: StoryRepository, *records: dict[str, Any]) -> list[int]:
    found = []
    for record in records:
        story = await store.get_by_url(record["url"])
        assert story is not None
        found.append(story.id)
    return found


async def test_ingest_stores_features_and_related_lists(store: StoryStore) -> None:
    added = await ingest(store, CHILE, CHILE_FOLLOW_UP, HAITI, *FILLER)
    assert len(added) == 5
    features = await store.features_of(added)
    assert set(features) == set(added)
    assert {row.version for row in features.values()} == {FEATURES_VERSION}
    assert all(row.related_at is not None for row in features.values())
    chile, follow_up = await ids_by_url(store, CHILE, CHILE_FOLLOW_UP)
    related = await store.related_of(chile)
    assert related, "every story with shared words gets a list"
    assert related[0].story.id == follow_up
    assert [entry.rank for entry in related] == sorted(entry.rank for entry in related)
    assert related[0].score >= related[-1].score


async def test_hard_negative_ranks_below_the_same_event(store: StoryStore) -> None:
    await ingest(store, CHILE, HAITI, CHILE_FOLLOW_UP, *FILLER)
    chile, haiti, follow_up = await ids_by_url(store, CHILE, HAITI, CHILE_FOLLOW_UP)
    order = [entry.story.id for entry in await store.related_of(follow_up)]
    assert order[0] == chile
    if haiti in order:
        assert order.index(haiti) > order.index(chile)
        scores = {entry.story.id: entry.score for entry in await store.related_of(follow_up)}
        assert scores[haiti] < scores[chile]


async def test_copies_from_two_outlets_fold_into_one_entry(store: StoryStore) -> None:
    await ingest(store, CHILE, CHILE_COPY, CHILE_FOLLOW_UP, HAITI, *FILLER)
    chile, copy, follow_up = await ids_by_url(store, CHILE, CHILE_COPY, CHILE_FOLLOW_UP)
    related = await store.related_of(follow_up)
    heads = [entry.story.id for entry in related]
    assert (chile in heads) != (copy in heads), "one entry for both copies"
    entry = related[heads.index(chile if chile in heads else copy)]
    assert set(entry.copies) == {chile, copy} - {entry.story.id}
    assert set(entry.outlets) == {"Andes Times", "Pacific Wire"}
    # A copy deleted later drops out of the entry.
    assert await store.delete(entry.copies[0])
    (again,) = [e for e in await store.related_of(follow_up) if e.story.id == entry.story.id]
    assert again.copies == ()


async def test_a_new_story_joins_its_neighbours_lists(store: StoryStore) -> None:
    await ingest(store, CHILE, *FILLER)
    (chile,) = await ids_by_url(store, CHILE)
    before = [entry.story.id for entry in await store.related_of(chile)]
    (follow_up,) = await ingest(store, CHILE_FOLLOW_UP)
    after = [entry.story.id for entry in await store.related_of(chile)]
    assert follow_up not in before
    assert after[0] == follow_up


async def test_corpus_stats_follow_adds_and_deletes(store: StoryStore, tmp_path: Path) -> None:
    added = await ingest(store, CHILE, CHILE_FOLLOW_UP, HAITI, *FILLER)

    async def expected() -> CorpusStats:
        stored = await store.features_of(added)
        return CorpusStats.of(load_features(i, row.features) for i, row in stored.items())

    def actual() -> tuple[int, dict[str, int]]:
        with raw_connection(tmp_path / "news.db") as conn:
            docs = conn.execute("SELECT value FROM counters WHERE name = 'feature_docs'")
            rows = conn.execute("SELECT term, df FROM term_df").fetchall()
            return int(docs.fetchone()[0]), dict(rows)

    stats = await expected()
    assert actual() == (5, stats.df)
    counts = await store.corpus_counts(["earthquak", "n:chile", "never-seen"])
    assert counts.docs == 5
    assert counts.df == {"earthquak": 3, "n:chile": 2}

    (haiti,) = await ids_by_url(store, HAITI)
    assert await store.delete(haiti)
    added.remove(haiti)
    stats = await expected()
    assert actual() == (4, stats.df)
    assert (await store.corpus_counts(["earthquak"])).df == {"earthquak": 2}
    with raw_connection(tmp_path / "news.db") as conn:
        left = conn.execute("SELECT count(*) FROM related WHERE related_id = ?", (haiti,))
        assert left.fetchone()[0] == 0


async def test_refresh_job_ranks_recent_stale_lists_only(
    store: StoryStore, clock: FakeClock
) -> None:
    added = await ingest(store, CHILE, CHILE_FOLLOW_UP, HAITI, *FILLER, related=False)
    assert await store.related_rows(added) == {}
    job = RelatedRefresh(clock=clock, every=timedelta(minutes=10), window=timedelta(days=3))
    indexer = RelatedIndexer(store)

    first = await job.run(store, indexer)
    assert (first.backfilled, first.refreshed) == (0, 5)
    rows = await store.related_rows(added)
    chile, follow_up = await ids_by_url(store, CHILE, CHILE_FOLLOW_UP)
    assert rows[chile][0].related_id == follow_up

    # Just refreshed: nothing is stale yet.
    assert (await job.run(store, indexer)).refreshed == 0
    clock.now += timedelta(minutes=11)
    assert (await job.run(store, indexer)).refreshed == 5
    # Out of the window: left alone.
    clock.now += timedelta(days=4)
    assert (await job.run(store, indexer)).refreshed == 0


async def test_refresh_job_runs_per_run_at_a_time(store: StoryStore, clock: FakeClock) -> None:
    await ingest(store, CHILE, CHILE_FOLLOW_UP, HAITI, *FILLER, related=False)
    job = RelatedRefresh(clock=clock, per_run=2)
    indexer = RelatedIndexer(store)
    assert [(await job.run(store, indexer)).refreshed for _ in range(4)] == [2, 2, 1, 0]


async def test_refresh_job_is_scheduled_and_its_callback_refreshes(bot: NewsApp) -> None:
    assert bot.job_queue is not None
    assert [job.name for job in bot.job_queue.get_jobs_by_name(REFRESH_JOB)] == [REFRESH_JOB]
    services = bot.bot_data.services
    added = await ingest(services.store, CHILE, CHILE_FOLLOW_UP, related=False)
    await RelatedRefresh()(NewsContext(bot))
    rows = await services.store.related_rows(added)
    assert rows[added[0]][0].related_id == added[1]


async def test_v1_database_with_stories_migrates_and_backfills(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await migrate(conn, MIGRATIONS[:1]) == 1
        for n, record in enumerate((CHILE, CHILE_FOLLOW_UP, HAITI, *FILLER)):
            await conn.execute(
                "INSERT INTO stories (title, url, source, language, ingested_at, sort_key,"
                " body, cleaned_text, summary, algorithm, sentence_count, fingerprint)"
                " VALUES (?, ?, ?, 'english', 0, 0, ?, ?, '[\"One.\"]', 'lead', 1, ?)",
                (
                    record["title"],
                    record["url"],
                    record["source"],
                    record["text"],
                    record["text"],
                    f"fp-{n}",
                ),
            )
    clock = FakeClock()
    async with await StoryStore.open(path, clock=clock) as store:
        assert len(await store.missing_features(FEATURES_VERSION, 10)) == 5
        assert (await store.corpus_counts([])).docs == 0
        chile, follow_up = await ids_by_url(store, CHILE, CHILE_FOLLOW_UP)
        # /related's fallback for a story without a list: computes features on the way.
        lists = await RelatedIndexer(store).refresh([chile])
        assert lists[chile][0].related_id == follow_up
        assert (await store.related_of(chile))[0].story.id == follow_up
        # The job computes the rest; these version-1 stories say they were ingested at
        # the epoch, so only a window reaching back to it covers them.
        missing = len(await store.missing_features(FEATURES_VERSION, 10))
        job = RelatedRefresh(clock=clock, window=timedelta(days=366 * 60))
        result = await job.run(store, RelatedIndexer(store))
        assert result.backfilled == missing
        assert await store.missing_features(FEATURES_VERSION, 10) == []
        assert (await store.corpus_counts([])).docs == 5
        assert result.refreshed == 4  # all but the list ranked just now


async def test_batches_summarised_ahead_store_and_rank_in_order(
    store: StoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batch n + 1 is summarised while batch n is stored and ranked: a URL repeated in a later
    # batch is still reported as a duplicate of the story stored first, in input order.
    monkeypatch.setattr("ingest.pipeline.BATCH_SIZE", 2)
    again = CHILE | {"title": "Chile quake, again"}
    report = await make_ingestor(store).ingest_bytes(
        jsonl(CHILE, HAITI, CHILE_FOLLOW_UP, again, *FILLER), filename="stories.jsonl"
    )
    assert report.rejected == []
    chile, haiti, follow_up = await ids_by_url(store, CHILE, HAITI, CHILE_FOLLOW_UP)
    assert report.added[:3] == [chile, haiti, follow_up]
    assert [d.existing_id for d in report.duplicates] == [chile]
    related = await store.related_of(chile)
    assert related[0].story.id == follow_up


async def test_the_refresh_job_runs_once_a_period_however_many_workers_schedule_it(
    bot: NewsApp,
) -> None:
    services = bot.bot_data.services
    first = await ingest(services.store, CHILE, CHILE_FOLLOW_UP, related=False)
    await RelatedRefresh()(NewsContext(bot))
    assert set(await services.store.related_rows(first)) == set(first)
    # Another worker's run in the same period finds the job already claimed.
    later = await ingest(services.store, HAITI, related=False)
    await RelatedRefresh()(NewsContext(bot))
    assert await services.store.related_rows(later) == {}


# -- the vectors an ingest keeps between batches ------------------------------------------


def count_parsed(monkeypatch: pytest.MonkeyPatch) -> list[int | str]:
    """Records the stories whose stored features are parsed into vectors."""
    parsed: list[int | str] = []
    original = CorpusStats.vectors_from_json

    def spy(self: CorpusStats, key: int | str, data: dict[str, Any]) -> Vectors:
        parsed.append(key)
        return original(self, key, data)

    monkeypatch.setattr(CorpusStats, "vectors_from_json", spy)
    return parsed


async def test_later_batches_reuse_the_vectors_of_earlier_ones(
    store: StoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = count_parsed(monkeypatch)
    ingestor = make_ingestor(store)
    first = (await ingestor.ingest_bytes(jsonl(CHILE, HAITI, *FILLER), filename="a.jsonl")).added
    parsed.clear()
    second = (
        await ingestor.ingest_bytes(jsonl(CHILE_COPY, CHILE_FOLLOW_UP), filename="b.jsonl")
    ).added
    # The first batch's stories are candidates again, and each new story is parsed once.
    assert sorted(map(int, parsed)) == sorted(second)
    (chile,) = await ids_by_url(store, CHILE)
    related = (await store.related_rows([second[1]]))[second[1]]
    assert chile in {i for row in related for i in (row.related_id, *row.copies)}
    assert chile in first


async def test_kept_vectors_of_rewritten_features_are_not_trusted(
    store: StoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = count_parsed(monkeypatch)
    ingestor = make_ingestor(store)
    await ingestor.ingest_bytes(jsonl(CHILE, HAITI, *FILLER), filename="a.jsonl")
    (chile,) = await ids_by_url(store, CHILE)
    # Another process (older code) rewrote the story's features under another version.
    stored = (await store.features_of([chile]))[chile]
    await store.put_features([StoredFeatures(chile, FEATURES_VERSION - 1, stored.features)])
    parsed.clear()
    (follow_up,) = (await ingestor.ingest_bytes(jsonl(CHILE_FOLLOW_UP), filename="b.jsonl")).added
    assert chile in parsed
    assert await store.feature_versions([chile]) == {chile: FEATURES_VERSION}
    assert (await store.related_rows([follow_up]))[follow_up][0].related_id == chile


async def test_a_round_checks_each_kept_story_once(
    store: StoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One story per chunk, so the second batch's round has several chunks that share
    # candidates kept from the first batch.
    monkeypatch.setattr("ingest.pipeline._RANK_CHUNK", 1)
    ingestor = make_ingestor(store)
    await ingestor.ingest_bytes(jsonl(CHILE, HAITI, *FILLER), filename="a.jsonl")
    asked: list[int] = []
    versions = store.feature_versions

    async def recording(story_ids: Any) -> dict[int, int]:
        story_ids = list(story_ids)
        asked.extend(story_ids)
        return await versions(story_ids)

    monkeypatch.setattr(store, "feature_versions", recording)
    added = (
        await ingestor.ingest_bytes(jsonl(CHILE_COPY, CHILE_FOLLOW_UP), filename="b.jsonl")
    ).added
    assert len(added) == 2
    assert asked
    assert len(asked) == len(set(asked))


async def test_trimming_the_vocabulary_between_batches_keeps_the_lists(
    store: StoryStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = [jsonl(CHILE, HAITI, *FILLER), jsonl(CHILE_COPY), jsonl(CHILE_FOLLOW_UP)]

    async def lists(target: StoryStore) -> dict[int, list[RelatedRow]]:
        ingestor = make_ingestor(target)
        for n, batch in enumerate(batches):
            await ingestor.ingest_bytes(batch, filename=f"{n}.jsonl")
        return await target.related_rows(range(1, 8))

    expected = await lists(store)
    # Every round now starts by forgetting the vector positions and the kept vectors.
    monkeypatch.setattr("summarize.related._MAX_IDS", 10)
    parsed = count_parsed(monkeypatch)
    other = await StoryStore.open(tmp_path / "other.db")
    try:
        assert await lists(other) == expected
    finally:
        await other.close()
    assert len(parsed) > 7

"""The one ingest pipeline (parse, clean, summarise, dedup, store, relate) for the CLI and bot.

Related lists are computed right after each batch is stored (`RelatedIndexer`): candidates
from the store's full-text search for the story's salient terms, re-ranked by
`summarize.related.rank_related` with the store's document frequencies, the best kept.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import islice

import numpy as np
import numpy.typing as npt

from ingest.fetch import check_url, fetch_url
from ingest.pool import pool_context, yield_to_parent
from ingest.prepare import (
    FEATURES_VERSION,
    SummaryOptions,
    features_json,
    prepare_or_reason,
)
from ingest.report import Duplicate, IngestError, IngestReport, Rejected
from storage.backend import StoryRepository
from storage.models import NewStory, RelatedRow, StoredFeatures, Story
from summarize.formats import iter_jsonl, parse_document
from summarize.lru import remember, touch
from summarize.parsed import ParsedStory, ParseProblem
from summarize.related import CorpusStats, IdArray, RelatedHit, Vectors, rank_related
from summarize.similarity import salient_terms
from summarize.summarizers import DEFAULT_ALGORITHM

logger = logging.getLogger(__name__)

# Below this many stories a process pool costs more to start than it saves.
POOL_THRESHOLD = 64
# Stories sent to a pool worker per task: small enough to keep both workers busy to the end
# of a batch, large enough that the round trip per task stops mattering.
_POOL_SLICE = 16
# Also what the related lists of a batch are ranked against: a story's list is computed once
# its whole batch is stored, and later stories only join it as offers (see
# RelatedIndexer._offer_to_neighbours). Smaller first batches to start the pool sooner cost
# ECB+ 0.004 P@5 and 0.008 R@10 in bench.related_store, so batches stay whole.
BATCH_SIZE = 256

ProgressCallback = Callable[[int], None]

# A stored related list keeps this many entries; /related shows fewer.
RELATED_LIMIT = 10
# Below this a candidate shares words with the story but not its event: on samples/ unrelated
# stories score under 0.2 and same-event ones 0.5-0.9. On the eval sets (bench.related_store)
# the floor removes 19 of Emergent's 365 top-5 errors and costs ECB+ 0.001 P@5. Showing
# nothing beats showing noise.
MIN_RELATED_SCORE = 0.2
# Full-text hits re-ranked per story (what bench/related.py measured).
RELATED_CANDIDATES = 50
# Salient words a story's candidate search looks for. bm25 scores each matching story once
# per word, so words cost search time: at 10k stories 10 words took 1.9-2.0 ms a search
# against 2.2-2.5 for 12, and the stored lists on the eval sets (bench.related_store) stayed
# within one top-5 error (Emergent P@5 0.966 -> 0.965, R@10 0.712 -> 0.711; ECB+ the same).
# 8 words cost Emergent 7 more errors.
QUERY_TERMS = 10
# A new story is offered to the lists of at most this many of its best hits. Each offer
# re-ranks a list, about a fifth of an ingest's ranking work at 5. On the eval sets
# (bench.related_store, Emergent; ECB+ did not move) 5, 4, 3 and 2 neighbours gave 347, 344,
# 343 and 335 top-5 errors and R@10 0.711, 0.711, 0.710, 0.710: later stories reach an
# earlier story's list through its best few hits or not at all. At 3 a 10k seed ran 189
# stories/s against 177 at 5, side by side.
NEIGHBOURS = 3
# Stories ranked per round of reads: bounds the candidate features held in memory.
_RANK_CHUNK = 32
# Candidates' vectors kept between rounds (about 1.5 KB each, see summarize.related.Vectors): a
# story is a candidate of many later ones, and each miss reads and parses its stored features
# again. 12,000 keeps all of a 10k seed's; keeping 2,000 parsed DocFeatures (21 KB each) as
# before, index_new at 10k took 9.5 ms a story, against 4.2 now.
_VECTORS_CACHE = 12_000
_NO_POSITIONS: IdArray = np.zeros(0, dtype=np.uint16)


@dataclass(frozen=True, slots=True)
class _Query:
    story_id: int
    terms: list[str]
    features: Vectors


@dataclass(slots=True)
class _Round:
    """The store's counts read so far by one ranking round (a batch's lists and the offers to
    their neighbours).

    The counts do not change while the round runs unless stories or features are stored
    meanwhile, which moves the feature-document count (then the round starts over); so each
    key is read once per round, not once per chunk of stories, and the stories' weighted
    vectors are worked out once per round too.
    """

    docs: int = -1
    df: dict[str, int] = field(default_factory=dict)
    # The vector positions (CorpusStats.ids) whose keys were read, found or not, as a mask:
    # positions stay put through a round, and a chunk's ~30,000 positions are mostly asked
    # already, so they are sifted as numbers before any is turned into its key.
    asked: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=np.bool_))
    # The stories whose keys were all read.
    counted: set[int | str] = field(default_factory=set)
    # The stories whose kept vectors were found current (or were read) this round: a story
    # is a candidate in several chunks of a round, and checking its version once is enough.
    current: set[int] = field(default_factory=set)

    def reset(self) -> None:
        self.docs = -1
        self.df.clear()
        self.asked = np.zeros(0, dtype=np.bool_)
        self.counted.clear()
        self.current.clear()

    def unasked(self, positions: IdArray) -> npt.NDArray[np.intp]:
        """The distinct positions among these whose keys were not read yet, ascending."""
        top = int(positions.max()) if len(positions) else -1
        if top >= len(self.asked):
            grown = np.zeros(max(top + 1, 2 * len(self.asked)), dtype=np.bool_)
            grown[: len(self.asked)] = self.asked
            self.asked = grown
        # A mask the size of the vocabulary, not np.unique: a round's first chunk brings
        # ~250,000 positions, which np.unique sorted in 6 ms and the mask sifts in 0.8.
        wanted = np.zeros(len(self.asked), dtype=np.bool_)
        wanted[positions] = True
        wanted &= ~self.asked
        return np.flatnonzero(wanted)

    def mark_asked(self, positions: npt.NDArray[np.intp]) -> None:
        self.asked[positions] = True


def _stored_features(story: Story) -> StoredFeatures:
    text = features_json(
        story.title,
        story.cleaned_text,
        source=story.source,
        published_at=story.published_at,
        language=story.language,
    )
    return StoredFeatures(story.id, FEATURES_VERSION, text)


def _query_terms(story: NewStory | Story) -> list[str]:
    """The words a story's related-candidate search looks for."""
    return salient_terms(
        story.title, story.cleaned_text, limit=QUERY_TERMS, language=story.language
    )


def _rows(hits: Sequence[RelatedHit]) -> list[RelatedRow]:
    return [
        RelatedRow(
            related_id=int(hit.key),
            score=hit.score,
            copies=tuple(int(key) for key in hit.copies),
            outlets=hit.outlets,
        )
        for hit in hits
    ]


def _rank_all(
    queries: Sequence[_Query],
    pools: Sequence[Sequence[int]],
    features: Mapping[int, Vectors],
    stats: CorpusStats,
    limit: int,
) -> list[list[RelatedRow]]:
    return [
        _rows(
            rank_related(
                query.features,
                [features[i] for i in pool if i in features and i != query.story_id],
                limit=limit,
                stats=stats,
                min_score=MIN_RELATED_SCORE,
            )
        )
        for query, pool in zip(queries, pools, strict=True)
    ]


class RelatedIndexer:
    """Computes, stores and refreshes stories' related lists.

    CPU work (salient terms, parsing features, ranking) runs in a worker thread so the event
    loop keeps answering; reads are batched per chunk of stories.
    """

    def __init__(
        self,
        store: StoryRepository,
        *,
        limit: int = RELATED_LIMIT,
        candidates: int = RELATED_CANDIDATES,
        neighbours: int = NEIGHBOURS,
        lean: bool = False,
    ) -> None:
        self._store = store
        # lean: forget the corpus caches after each refresh (a serving bot ranks a story now
        # and then, and the caches that pay off over an ingest's rounds would only hold memory).
        self._lean = lean
        self._limit = limit
        self._candidates = candidates
        self._neighbours = neighbours
        # One CorpusStats re-based on each round's counts keeps the vector positions, and so
        # the stories' Vectors, between rounds. A round holds the lock from start to end, so
        # two rounds (ingest, the refresh job) never share it and Vectors made in a round stay
        # valid through it (`CorpusStats.trim` runs only between rounds).
        self._corpus = CorpusStats()
        self._corpus_lock = asyncio.Lock()
        # The round whose counts `_corpus` holds.
        self._corpus_round: _Round | None = None
        # Vectors by story id, least recently used dropped first. A story's stored features
        # never change while their version stays (stories are not edited), so the version is
        # all that is checked before using them.
        self._vectors: dict[int, Vectors] = {}

    async def index_new(
        self,
        stored: Sequence[tuple[int, NewStory]],
        terms: Sequence[list[str]] | None = None,
    ) -> None:
        """After a batch is stored: rank each new story's list, then offer the new stories
        to the lists of their best hits (only lists already computed).

        `terms`, one list per story, are their `_query_terms` when already known."""
        if not stored:
            return
        if terms is not None and len(terms) != len(stored):
            raise ValueError(f"{len(terms)} term lists for {len(stored)} stories")

        def texts() -> list[tuple[int, list[str], str]]:
            return [
                (
                    story_id,
                    terms[n] if terms is not None else _query_terms(story),
                    story.features
                    or features_json(
                        story.title,
                        story.cleaned_text,
                        source=story.source,
                        published_at=story.published_at,
                        language=story.language,
                    ),
                )
                for n, (story_id, story) in enumerate(stored)
            ]

        found = await asyncio.to_thread(texts)
        async with self._corpus_lock:
            self._trim()

            def queries() -> list[_Query]:
                # Kept: the new stories are the candidates of the batches that follow.
                return [_Query(i, words, self._load(i, text)) for i, words, text in found]

            counts = _Round()
            lists = await self._rank(await asyncio.to_thread(queries), counts)
            await self._store.replace_related(lists)
            if self._neighbours > 0:
                await self._offer_to_neighbours(lists, counts)

    async def refresh(self, story_ids: Sequence[int]) -> dict[int, list[RelatedRow]]:
        """Recompute and store the related lists of stored stories; returns them by id."""
        stories = await self._store.get_many(story_ids)
        terms = await asyncio.to_thread(
            lambda: {story.id: _query_terms(story) for story in stories.values()}
        )
        async with self._corpus_lock:
            self._trim()
            features = await self._vectors_of(list(stories), None, stories)
            queries = [_Query(i, terms[i], features[i]) for i in stories if i in features]
            lists = await self._rank(queries, _Round())
            await self._store.replace_related(lists)
            if self._lean:
                self._corpus = CorpusStats()
                self._corpus_round = None
                self._vectors.clear()
        return lists

    async def backfill(self, limit: int) -> int:
        """Compute missing or outdated features of up to `limit` stories; returns how many."""
        ids = await self._store.missing_features(FEATURES_VERSION, limit)
        stories = await self._store.get_many(ids)
        rows = await asyncio.to_thread(lambda: [_stored_features(s) for s in stories.values()])
        await self._store.put_features(rows)
        return len(rows)

    def _trim(self) -> None:
        # Call with `_corpus_lock` held, at the start of a round.
        if self._corpus.trim():
            self._vectors.clear()

    async def _vectors_of(
        self,
        ids: Collection[int],
        counts: _Round | None,
        known: Mapping[int, Story] | None = None,
    ) -> dict[int, Vectors]:
        """Vectors of these stories: kept ones whose stored features are still current,
        others parsed from the store, and missing or outdated features computed from the
        stories (`known` ones or read) and stored. Stories deleted meanwhile are left out.

        Call with `_corpus_lock` held.
        """
        # Only kept stories need their version checked: a refresh with nothing kept (a
        # serving bot's) reads each story's features once, as before.
        checked = counts.current if counts is not None else set()
        kept_ids = [i for i in ids if i in self._vectors and i not in checked]
        versions = await self._store.feature_versions(kept_ids) if kept_ids else {}
        out: dict[int, Vectors] = {}
        rest: list[int] = []
        for story_id in ids:
            kept = (
                touch(self._vectors, story_id)
                if story_id in checked or versions.get(story_id) == FEATURES_VERSION
                else None
            )
            if kept is None:
                rest.append(story_id)
            else:
                out[story_id] = kept
        checked.update(out)
        if not rest:
            return out
        stored = await self._store.features_of(rest)
        missing = [i for i in rest if i not in stored or stored[i].version != FEATURES_VERSION]
        stories = dict(known or {})
        if unknown := [i for i in missing if i not in stories]:
            # Stories stored before features existed: read them to compute features once.
            stories.update(await self._store.get_many(unknown))

        def work() -> list[StoredFeatures]:
            computed: list[StoredFeatures] = []
            for story_id in rest:
                row = stored.get(story_id)
                if row is None or row.version != FEATURES_VERSION:
                    story = stories.get(story_id)
                    if story is None:
                        continue
                    row = _stored_features(story)
                    computed.append(row)
                out[story_id] = self._load(story_id, row.features)
            return computed

        computed = await asyncio.to_thread(work)
        # Counted in the corpus stats from now on, like stories ingested by this code.
        await self._store.put_features(computed)
        if computed and counts is not None:
            # Replaced outdated features change counts without moving the document count.
            counts.reset()
        checked.update(out)
        return out

    def _load(self, story_id: int, text: str) -> Vectors:
        """Vectors of features stored as `text`, kept for later rounds."""
        vectors = self._corpus.vectors_from_json(story_id, json.loads(text))
        remember(self._vectors, story_id, vectors, _VECTORS_CACHE)
        return vectors

    async def _stats(self, vectors: Iterable[Vectors], counts: _Round) -> CorpusStats:
        """The store's counts for these stories; call with `_corpus_lock` held."""
        new = [item for item in vectors if item.key not in counts.counted]
        positions = (
            np.concatenate([ids for item in new for ids in (item.terms.ids, item.entities.ids)])
            if new
            else _NO_POSITIONS
        )
        unasked = counts.unasked(positions)
        found = await self._store.corpus_counts(self._corpus.keys_of(unasked))
        if counts.docs not in (-1, found.docs):
            # Stories were stored meanwhile: what was read before may be stale.
            counts.reset()
            unasked = counts.unasked(positions)
            found = await self._store.corpus_counts(self._corpus.keys_of(unasked))
        fresh = counts.docs == -1
        counts.docs = found.docs
        counts.df.update(found.df)
        counts.mark_asked(unasked)
        counts.counted.update(item.key for item in new)
        if fresh or self._corpus_round is not counts or self._corpus.docs != counts.docs:
            self._corpus.rebase(counts.docs, dict(counts.df))
            self._corpus_round = counts
        else:
            self._corpus.extend(found.df)
        return self._corpus

    async def _rank(self, queries: Sequence[_Query], counts: _Round) -> dict[int, list[RelatedRow]]:
        """Rank the queries' lists; call with `_corpus_lock` held."""
        lists: dict[int, list[RelatedRow]] = {}
        chunks = [queries[i : i + _RANK_CHUNK] for i in range(0, len(queries), _RANK_CHUNK)]
        searching = self._search_all(chunks[0]) if chunks else None
        try:
            for n, chunk in enumerate(chunks):
                assert searching is not None
                pools = await searching
                # The next chunk's searches run while this chunk's features are read and it
                # is ranked in a worker thread: SQLite releases the GIL, so with a second
                # reader (or PostgreSQL's pool) searches and ranking take two cores instead
                # of one after the other. Nothing is written during a round, so the
                # results are the same.
                searching = self._search_all(chunks[n + 1]) if n + 1 < len(chunks) else None
                features = await self._vectors_of({i for pool in pools for i in pool}, counts)
                stats = await self._stats(
                    [*features.values(), *(q.features for q in chunk)], counts
                )
                # A thread, not the ingest process pool: shipping ~1,000 candidates'
                # features to a worker per chunk measured slower (bench/related_store.py).
                ranked = await asyncio.to_thread(
                    _rank_all, chunk, pools, features, stats, self._limit
                )
                lists.update(zip((q.story_id for q in chunk), ranked, strict=True))
        finally:
            if searching is not None:
                searching.cancel()
                await asyncio.gather(searching, return_exceptions=True)
        return lists

    def _search_all(self, chunk: Sequence[_Query]) -> asyncio.Future[list[list[int]]]:
        # All of a chunk's searches in one call: the store runs them back to back (SQLite in
        # a few reads, PostgreSQL side by side on its pool) instead of one round trip each.
        return asyncio.ensure_future(
            self._store.search_any_ids_many(
                [(q.terms, q.story_id) for q in chunk], self._candidates
            )
        )

    async def _offer_to_neighbours(
        self, lists: Mapping[int, Sequence[RelatedRow]], counts: _Round
    ) -> None:
        # A new story that ranks among another story's best candidates is offered to that
        # story's list: re-ranking the list's entries (and their copies) with the newcomers
        # is far cheaper than a full recompute and gives the same list unless the newcomers
        # change which stories the full-text search would find. The refresh job redoes
        # recent stories in full. Call with `_corpus_lock` held.
        offers: dict[int, set[int]] = {}
        for story_id, rows in lists.items():
            for row in rows[: self._neighbours]:
                if row.related_id not in lists:
                    offers.setdefault(row.related_id, set()).add(story_id)
        if not offers:
            return
        computed = {
            i: row for i, row in (await self._store.features_of(offers)).items() if row.related_at
        }
        if not computed:
            return
        current = await self._store.related_rows(computed)
        pools: dict[int, list[int]] = {}
        for story_id in computed:
            pool = [i for row in current.get(story_id, []) for i in (row.related_id, *row.copies)]
            pools[story_id] = list(dict.fromkeys([*pool, *sorted(offers[story_id])]))
        features = await self._vectors_of(
            {*computed, *(i for pool in pools.values() for i in pool)}, counts
        )
        queries = [_Query(i, [], features[i]) for i in computed if i in features]
        stats = await self._stats(features.values(), counts)
        ranked = await asyncio.to_thread(
            _rank_all,
            queries,
            [pools[q.story_id] for q in queries],
            features,
            stats,
            self._limit,
        )
        changed = {
            query.story_id: rows
            for query, rows in zip(queries, ranked, strict=True)
            if rows != current.get(query.story_id, [])
        }
        await self._store.replace_related(changed)


def _batches(
    items: Iterable[tuple[str, ParsedStory]], size: int
) -> Iterator[list[tuple[str, ParsedStory]]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


@dataclass(frozen=True, slots=True)
class _Ready:
    """A summarised story and the words its related-story search will look for."""

    story: NewStory
    terms: list[str]


def _prepare_many(stories: Sequence[ParsedStory], options: SummaryOptions) -> list[_Ready | str]:
    """Summarise stories (a story or a reason each) and find their search terms.

    Runs in the pool: the terms cost ~0.5 ms a story, which would otherwise be spent in the
    main process, the one that ranks and stores and so bounds the throughput. One call per
    slice of a batch, since sending each story as its own task costs a round trip per story.
    """
    out: list[_Ready | str] = []
    for parsed in stories:
        outcome = prepare_or_reason(parsed, options)
        if isinstance(outcome, str):
            out.append(outcome)
        else:
            out.append(_Ready(outcome, _query_terms(outcome)))
    return out


# Long enough to be summarised (and to load every table a summary needs), plain English.
_WARM_UP_STORY = ParsedStory(
    title="Council approves new bridge over the river",
    text=(
        "The city council approved a new bridge over the river on Tuesday. "
        "Work is expected to start in the spring and take two years. "
        "Residents said the old crossing was too narrow for buses. "
        "The mayor thanked engineers and neighbours for their patience."
    ),
)


def warm_up() -> None:
    """Prepare one small English story, loading what any first story would load.

    punkt's parameters, the stop words and the country table sumy looks languages up in
    cost a worker about 60 ms on its first story. The pool's server calls this once
    (ingest.pool_warmup), before it forks the workers, which then share all of it.
    """
    _prepare_many([_WARM_UP_STORY], SummaryOptions(DEFAULT_ALGORITHM, 3, None, 10_000))


@dataclass(frozen=True, slots=True)
class _Summarised:
    """A batch after summarising: URL duplicates, and each other story's outcome."""

    duplicates: list[Duplicate]
    locations: list[str]
    outcomes: list[_Ready | str]


class Ingestor:
    """Stores stories from any input the parsers understand."""

    def __init__(
        self,
        store: StoryRepository,
        *,
        algorithm: str,
        sentences: int,
        max_chars: int | None,
        max_story_chars: int,
        max_document_bytes: int = 5_000_000,
        workers: int | None = None,
        related: bool = True,
    ) -> None:
        self._store = store
        self._options = SummaryOptions(algorithm, sentences, max_chars, max_story_chars)
        self._max_document_bytes = max_document_bytes
        self._workers = workers
        # related=False stores stories without related lists (the refresh job or /related
        # computes them later); benchmarks use it to measure what related costs.
        self._related = RelatedIndexer(store) if related else None

    async def ingest_text(self, text: str, *, origin: str = "message") -> IngestReport:
        """Ingest a story pasted as text (a page, plain text, JSON...)."""
        return await self.ingest_bytes(text.encode("utf-8"), filename=None, origin=origin)

    async def ingest_bytes(
        self,
        data: bytes,
        *,
        filename: str | None = None,
        origin: str | None = None,
        progress: ProgressCallback | None = None,
        trusted: bool = False,
    ) -> IngestReport:
        """Ingest a document of any supported format; one bad record never stops the rest.

        `trusted` inputs (an operator's local files) skip the document size cap, which is
        there for what arrives through chats; the per-story cap still applies.
        """
        where = origin or filename or "input"
        if not trusted and len(data) > self._max_document_bytes:
            return IngestReport(
                rejected=[
                    Rejected(
                        where, f"{len(data):,} bytes; the limit is {self._max_document_bytes:,}"
                    )
                ]
            )
        result = await asyncio.to_thread(parse_document, data, filename=filename)
        report = IngestReport(
            rejected=[Rejected(f"{where} {p.location}", p.reason) for p in result.problems]
        )
        labelled = [(f"{where} story {n}", story) for n, story in enumerate(result.stories, 1)]
        report.merge(await self.ingest_parsed(labelled, progress=progress))
        return report

    async def ingest_url(self, url: str) -> IngestReport:
        """Fetch a page and ingest it; IngestError when it cannot be fetched."""
        url = check_url(url)
        data, final_url = await asyncio.to_thread(
            fetch_url, url, max_bytes=self._max_document_bytes
        )
        result = await asyncio.to_thread(parse_document, data, filename=final_url)
        report = IngestReport(rejected=[Rejected(url, p.reason) for p in result.problems])
        stories = [(url, replace(story, url=story.url or final_url)) for story in result.stories]
        if not stories and not report.rejected:
            raise IngestError(f"found no story at {url}")
        report.merge(await self.ingest_parsed(stories))
        return report

    async def ingest_jsonl(
        self,
        lines: Iterable[bytes],
        *,
        origin: str,
        progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """Ingest a JSONL stream (an operator's file) a batch at a time.

        Nothing is read ahead of the batch being summarised, so memory stays flat however
        long the input is, and no document size cap applies.
        """
        report = IngestReport()
        seen = False

        def stories() -> Iterator[tuple[str, ParsedStory]]:
            nonlocal seen
            for location, outcome in iter_jsonl(lines):
                seen = True
                where = f"{origin} {location}"
                if isinstance(outcome, ParseProblem):
                    report.rejected.append(Rejected(where, outcome.reason))
                else:
                    yield where, outcome

        report.merge(await self.ingest_parsed(stories(), progress=progress))
        if not seen:
            report.rejected.append(Rejected(origin, "empty"))
        return report

    async def ingest_parsed(
        self,
        stories: Iterable[tuple[str, ParsedStory]],
        *,
        progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """Summarise and store labelled stories in batches, each batch one transaction.

        `stories` is consumed one batch ahead of the one being stored, in a worker thread
        (reading and parsing a lazy input happens there).
        """
        report = IngestReport()
        batches = _batches(stories, BATCH_SIZE)

        async def next_batch() -> list[tuple[str, ParsedStory]] | None:
            return await asyncio.to_thread(next, batches, None)

        batch = await next_batch()
        if batch is None:
            return report
        use_pool = len(batch) >= POOL_THRESHOLD and (self._workers or 2) > 1
        with self._executor(use_pool) as executor:
            # The next batch is summarised in the pool while this one is stored and ranked
            # here: ranking is single-threaded, so otherwise the pool's cores sit idle.
            upcoming: asyncio.Future[_Summarised] | None = None
            try:
                prepared = await self._prepare_batch(batch, executor)
                while True:
                    following = await next_batch()
                    if following is not None:
                        upcoming = asyncio.ensure_future(self._prepare_batch(following, executor))
                    await self._store_batch(prepared, report)
                    if progress is not None:
                        progress(len(batch))
                    if upcoming is None or following is None:
                        break
                    prepared = await upcoming
                    upcoming = None
                    batch = following
            finally:
                if upcoming is not None:
                    upcoming.cancel()
                    await asyncio.gather(upcoming, return_exceptions=True)
        return report

    def _executor(self, use_pool: bool) -> AbstractContextManager[Executor | None]:
        if not use_pool:
            return nullcontext()
        return ProcessPoolExecutor(
            max_workers=self._workers, mp_context=pool_context(), initializer=yield_to_parent
        )

    async def _prepare_batch(
        self, batch: list[tuple[str, ParsedStory]], executor: Executor | None
    ) -> _Summarised:
        """Skip stories stored under their URL; summarise the rest (a story or a reason)."""
        duplicates: list[Duplicate] = []
        pending: list[tuple[str, ParsedStory]] = []
        # One query per batch: reading whole stories just to test their URLs cost a round trip
        # (and a row of text) per story.
        stored = await self._store.ids_by_url(story.url for _, story in batch)
        for location, story in batch:
            existing = stored.get(story.url) if story.url else None
            if existing is not None:
                duplicates.append(Duplicate(location, existing))
            else:
                pending.append((location, story))
        stories = [story for _, story in pending]
        work = partial(_prepare_many, options=self._options)
        loop = asyncio.get_running_loop()
        outcomes: list[_Ready | str] = []
        if executor is None:
            outcomes = await asyncio.to_thread(work, stories)
        else:
            slices = [stories[i : i + _POOL_SLICE] for i in range(0, len(stories), _POOL_SLICE)]
            for done in await asyncio.gather(
                *(loop.run_in_executor(executor, work, part) for part in slices)
            ):
                outcomes.extend(done)
        return _Summarised(duplicates, [location for location, _ in pending], outcomes)

    async def _store_batch(self, batch: _Summarised, report: IngestReport) -> None:
        """Store a summarised batch in one transaction, then rank the new stories' lists."""
        report.duplicates.extend(batch.duplicates)
        ready: list[tuple[str, _Ready]] = []
        for location, outcome in zip(batch.locations, batch.outcomes, strict=True):
            if isinstance(outcome, str):
                report.rejected.append(Rejected(location, outcome))
            else:
                ready.append((location, outcome))
        results = await self._store.add_many([item.story for _, item in ready])
        created: list[tuple[int, NewStory]] = []
        terms: list[list[str]] = []
        for (location, item), result in zip(ready, results, strict=True):
            if result.created:
                report.added.append(result.story_id)
                created.append((result.story_id, item.story))
                terms.append(item.terms)
            else:
                report.duplicates.append(Duplicate(location, result.story_id))
        if self._related is not None and created:
            try:
                await self._related.index_new(created, terms)
            except Exception:
                # The stories are stored; their lists are recomputed by the refresh job or
                # on first /related, so a ranking failure must not fail the ingest.
                logger.exception("related lists of %d new stories failed", len(created))

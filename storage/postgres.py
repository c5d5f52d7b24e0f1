"""The story store on PostgreSQL: the same public API as StoryStore, on an asyncpg pool.

Open it with ``async with await PostgresStoryStore.open(url) as store: ...``. Every write
runs in one transaction on a pooled connection; reads take any pooled connection and, thanks
to MVCC, never wait for writers, in this process or in other bot workers sharing the database.

Search matches StoryStore's behaviour: the query goes through the same sanitiser
(storage.fts), so only plain words reach the engine; all words must match, else any word; only
the newest RANK_WINDOW matches are ranked, strong matches (a query word in the title) first.
Ranking is ts_rank_cd over a stored tsvector in which the title has weight A and the text
weight D, i.e. a title word counts ten times a body word, as the SQLite bm25 weights do; since
each ranked row costs a read of its whole vector, at most RANK_BUDGET rows are ranked per
query (see _SEARCH_WINDOW).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Final, Self

import asyncpg

from storage import fts
from storage.errors import QueryError, StoreError, UnknownStoryError, translating
from storage.models import (
    AddResult,
    CorpusCounts,
    Link,
    NewStory,
    RelatedRow,
    RelatedStory,
    SearchHit,
    StoredFeatures,
    StoreStats,
    Story,
)
from storage.postgres_schema import TS_CONFIG, PgConnection, migrate
from storage.repository import FREQUENT_TERM_SHARE
from storage.term_cache import TermCache
from storage.values import (
    as_utc,
    clean_url,
    ids_from_json,
    ids_json,
    names_from_json,
    names_json,
    utc_now,
)

__all__ = [
    "PRUNE_MIN_STORIES",
    "PRUNE_SAMPLE",
    "RANK_BUDGET",
    "RANK_WINDOW",
    "SEARCH_COUNT_CAP",
    "PostgresStoryStore",
]

# Same bounds as the SQLite store (see storage.repository).
SEARCH_COUNT_CAP: Final = 1000
RANK_WINDOW = 2000
# At most this many rows are ranked per query, the newest of the tiers the page reaches:
# ranking reads each row's whole search_vector (see _SEARCH_WINDOW).
RANK_BUDGET = 200
# Below this many stories no frequent word is dropped from any-word queries (as in SQLite),
# and a word's share is measured over the newest PRUNE_SAMPLE stories (as in SQLite): the
# whole store would mean reading up to a quarter of it per word.
PRUNE_MIN_STORIES = 500
PRUNE_SAMPLE = 5000
# "Any of these words" queries of up to this many words also rank stories holding two of
# them first, as in SQLite.
_PAIRED_TERMS_MAX: Final = 4
# Search's id range reaches this much further back than the words' shares say it must, and
# is widened at most this many times before it becomes the whole store (see _window).
_WINDOW_SLACK: Final = 1.25
_WINDOW_ATTEMPTS: Final = 3
_MAX_ID: Final = 2**63 - 1
# Up to here the story count for frequent-word pruning is exact; above it, the planner's
# estimate (pg_class.reltuples, kept by autovacuum) is close enough and costs no scan (the
# exact count took 0.6 ms of a 5 ms search at 10k stories).
_EXACT_COUNT_BELOW: Final = 2 * PRUNE_MIN_STORIES


# SQLSTATE classes of errors that a query (not the store) caused: data exceptions (22...)
# and syntax errors (42601), e.g. a malformed tsquery.
_QUERY_SQLSTATES: Final = ("22", "42601")


# Links come back as one JSON array per story, in stored order, so a story and its links are
# read by one statement from one snapshot.
_STORY_COLUMNS: Final = """
    s.id, s.title, s.body, s.cleaned_text, s.summary::text AS summary, s.algorithm,
    s.fingerprint, s.ingested_at, s.url, s.source, s.language, s.published_at,
    (SELECT json_agg(json_build_array(l.title, l.snippet, l.url, l.outlet, l.linked_story_id)
                     ORDER BY l.position)::text
       FROM links AS l WHERE l.story_id = s.id) AS links
"""
_STORY_COLUMN_COUNT: Final = 13

_INSERT_STORY: Final = """
    INSERT INTO stories (
        title, url, source, language, published_at, ingested_at, sort_key,
        body, cleaned_text, summary, algorithm, sentence_count, fingerprint)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13)
    ON CONFLICT DO NOTHING
    RETURNING id
"""

_INSERT_LINK: Final = """
    INSERT INTO links (story_id, position, title, snippet, url, outlet, linked_story_id)
    VALUES ($1, $2, $3, $4, $5, $6, coalesce(
        (SELECT id FROM stories WHERE id = $7::bigint),
        (SELECT id FROM stories WHERE url = $5 AND id != $1)))
"""

_FIND_DUPLICATE: Final = """
    (SELECT id FROM stories WHERE url = $1)
    UNION ALL
    (SELECT id FROM stories WHERE fingerprint = $2)
    LIMIT 1
"""

_CURSOR_KEY: Final = "(SELECT sort_key, id FROM stories WHERE id = ${n})"

# Search runs in two statements, so that no row's search_vector is read unless it is ranked.
#
# ts_rank_cd reads a row's whole search_vector, detoasting and decompressing it (bodies are
# ~3 KB): about 10-20 us a row, so ranking every one of RANK_WINDOW rows took a /search 38 ms
# at 10k stories. And the GIN index hands back matches in no useful order, so finding the
# newest RANK_WINDOW of a word in 40% of 100k stories meant visiting all 40k of them.
#
# _SEARCH_WINDOW finds the newest matches with ids from $3 up to $7 (excluded), a range that
# grows back from the newest story until it holds the window (see _window), from the GIN index
# and the primary key together (a BitmapAnd), without reading any vector. It marks the strong
# ones, as in the SQLite store: a query word in the title (the small inline title_vector,
# migration 5) or, for a few any-word terms, two of them in the story ($2/$4: NULL when there
# is no such tier). $1: the query, $5: an id to leave out (or NULL), $6: how many rows.
_SEARCH_WINDOW: Final = f"""
    WITH q AS MATERIALIZED (
        SELECT websearch_to_tsquery('{TS_CONFIG}', $2::text) AS title_query),
    pairs AS MATERIALIZED (
        SELECT s.id FROM stories AS s
         WHERE s.search_vector @@ websearch_to_tsquery('{TS_CONFIG}', $4::text)
           AND s.id >= $3::bigint AND s.id < $7::bigint)
    SELECT s.id,
           coalesce(s.title_vector @@ q.title_query, false) OR s.id IN (SELECT id FROM pairs)
      FROM stories AS s, q
     WHERE s.search_vector @@ websearch_to_tsquery('{TS_CONFIG}', $1)
       AND s.id >= $3::bigint AND s.id < $7::bigint AND s.id IS DISTINCT FROM $5::bigint
     ORDER BY s.id DESC
     LIMIT $6
"""

# _SEARCH_PAGE ranks the rows flagged in $4 (at most RANK_BUDGET) and orders every candidate
# by tier ($3: 0 strong, 1 weak), ranked before unranked, rank, then newest; $2: the
# candidates, $1: the query, $5/$6: limit/offset.
_PAGE_IDS: Final = f"""
    WITH q AS MATERIALIZED (SELECT websearch_to_tsquery('{TS_CONFIG}', $1) AS query)
    SELECT c.id, c.tier,
           -- CASE evaluates lazily: vectors of unranked rows are never read.
           CASE WHEN c.ranked THEN ts_rank_cd(s.search_vector, q.query) END AS rank
      FROM unnest($2::bigint[], $3::integer[], $4::boolean[]) AS c (id, tier, ranked)
      JOIN stories AS s ON s.id = c.id
     CROSS JOIN q
     ORDER BY 2, 3 DESC NULLS LAST, 1 DESC
     LIMIT $5 OFFSET $6
"""

_SEARCH_PAGE: Final = f"""
    WITH hits AS MATERIALIZED ({_PAGE_IDS})
    SELECT {_STORY_COLUMNS}, coalesce(hits.rank, 0)
      FROM hits JOIN stories AS s ON s.id = hits.id
     ORDER BY hits.tier, hits.rank DESC NULLS LAST, hits.id DESC
"""

_COUNT_SEARCH: Final = f"""
    SELECT count(*) FROM (
        SELECT 1 FROM stories
         WHERE search_vector @@ websearch_to_tsquery('{TS_CONFIG}', $1) LIMIT $2) AS matches
"""


# Features and related lists are written with one statement per call, rows in story order:
# term_df's statement trigger (migration 4) then counts each call's keys in one sorted upsert,
# and concurrent writers lock shared rows in the same order, so they cannot deadlock.
# FOR KEY SHARE keeps the stories from being deleted until commit; stories already deleted are
# skipped rather than failing the batch on the foreign key.
_PUT_FEATURES: Final = """
    WITH live AS (SELECT id FROM stories WHERE id = ANY ($1::bigint[]) FOR KEY SHARE)
    INSERT INTO story_features (story_id, version, features)
    SELECT f.story_id, f.version, f.features
      FROM unnest($1::bigint[], $2::integer[], $3::jsonb[]) AS f (story_id, version, features)
     WHERE f.story_id IN (SELECT id FROM live)
     ORDER BY f.story_id
    ON CONFLICT (story_id) DO UPDATE SET version = excluded.version, features = excluded.features
"""

# Locks the lists' own stories first, in id order: two workers replacing one story's list
# (ingest offering a new neighbour, the refresh job re-ranking) then take turns, and the
# second one's DELETE sees the first one's rows. It also returns the stories still there.
_LOCK_LIST_OWNERS: Final = """
    SELECT id FROM stories WHERE id = ANY ($1::bigint[]) ORDER BY id FOR NO KEY UPDATE
"""

# Rows pointing at a story deleted since the list was ranked are skipped, not a failure.
_INSERT_RELATED: Final = """
    WITH live AS (SELECT id FROM stories WHERE id = ANY ($3::bigint[]) FOR KEY SHARE)
    INSERT INTO related (story_id, rank, related_id, score, copies, outlets)
    SELECT r.story_id, r.rank, r.related_id, r.score, r.copies, r.outlets
      FROM unnest($1::bigint[], $2::integer[], $3::bigint[], $4::float8[], $5::jsonb[],
                  $6::jsonb[]) AS r (story_id, rank, related_id, score, copies, outlets)
     WHERE r.related_id IN (SELECT id FROM live)
"""

# Copies deleted since the list was ranked are dropped on the way out.
_RELATED_COLUMNS: Final = """
    r.rank, r.score, r.outlets::text AS outlets,
    (SELECT coalesce(json_agg(c.value ORDER BY c.n), '[]'::json)::text
       FROM jsonb_array_elements_text(r.copies) WITH ORDINALITY AS c (value, n)
      WHERE EXISTS (SELECT 1 FROM stories WHERE id = c.value::bigint)) AS copies
"""

# One statement, so it is atomic across processes: a concurrent claimer waits on the key's
# unique index (or row lock), then re-checks the WHERE against the winner's committed row.
_CLAIM_RUN: Final = """
    INSERT INTO meta (key, value) VALUES ($1, $2)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value
     WHERE meta.value::timestamptz <= $3::timestamptz
    RETURNING true
"""

# How many of the stories with an id above $1 match one word.
_COUNT_WORD: Final = """
    (SELECT count(*) FROM stories
      WHERE search_vector @@ websearch_to_tsquery('{config}', ${n}) AND id > $1::bigint)
"""


# Connection failures count too: a store that lost its server must not leak OSError.
_DRIVER_ERRORS: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


def _store_error(name: str, exc: BaseException) -> StoreError:
    return StoreError(f"{name} failed: {exc}")


def _search_error(name: str, exc: BaseException) -> StoreError:
    state = str(getattr(exc, "sqlstate", "") or "")
    if isinstance(exc, asyncpg.PostgresError) and state.startswith(_QUERY_SQLSTATES):
        return QueryError(f"the search query could not be used: {exc}")
    return _store_error(name, exc)


# Driver errors become StoreError, so callers never see asyncpg exceptions; in searches,
# errors the search text caused become QueryError.
_translate_errors = translating(_DRIVER_ERRORS, _store_error)
_translate_query_errors = translating(_DRIVER_ERRORS, _search_error)


def _job_key(name: str) -> str:
    return f"job.{name}.last_run"


def _websearch_all(terms: Iterable[str]) -> str:
    # Terms are runs of letters, digits and marks only (storage.fts), so quoting each one
    # is enough to keep websearch syntax ("or", "-", quotes) from applying to user words.
    return " ".join(f'"{term}"' for term in terms)


def _websearch_any(terms: Iterable[str]) -> str:
    return " or ".join(f'"{term}"' for term in terms)


def _websearch_any_two(terms: Sequence[str]) -> str:
    # websearch_to_tsquery binds AND tighter than "or": ("a" & "b") | ("a" & "c") | ...
    return " or ".join(_websearch_all(pair) for pair in itertools.combinations(terms, 2))


def _tiers(words: Sequence[str], *, every: bool) -> tuple[str | None, str | None]:
    """The title and pair queries of the strong tier (see _SEARCH_WINDOW); None: none.

    As in the SQLite store: with every word required, a word in the title; with any word, a
    word in the title or, for up to _PAIRED_TERMS_MAX words, two of them in the story. Longer
    any-word lists (pasted text) have no tiers: a story holding many of the words without any
    in its title must not sink below one that names one word in its title.
    """
    if every or len(words) == 1:
        return _websearch_any(words), None
    if len(words) <= _PAIRED_TERMS_MAX:
        return _websearch_any(words), _websearch_any_two(words)
    return None, None


def _story_from_row(row: asyncpg.Record) -> Story:
    raw_links: list[list[Any]] = json.loads(row[12]) if row[12] else []
    return Story(
        id=int(row[0]),
        title=row[1],
        body=row[2],
        cleaned_text=row[3],
        summary=tuple(json.loads(row[4])),
        algorithm=row[5],
        fingerprint=row[6],
        ingested_at=row[7],
        url=row[8],
        source=row[9],
        language=row[10],
        published_at=row[11],
        links=tuple(
            Link(
                title=title,
                snippet=snippet,
                url=url,
                outlet=outlet,
                story_id=None if linked is None else int(linked),
            )
            for title, snippet, url, outlet, linked in raw_links
        ),
    )


class PostgresStoryStore:
    """Typed async access to stories, their links, full-text search and a small meta table."""

    def __init__(
        self, url: str, pool: asyncpg.Pool, clock: Callable[[], datetime] = utc_now
    ) -> None:
        """Wrap an open pool whose database is migrated; use `open` instead."""
        self._url = url
        self._pool: asyncpg.Pool | None = pool
        self._clock = clock
        self._frequent_terms = TermCache[float]()

    # -- lifecycle -----------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        clock: Callable[[], datetime] = utc_now,
        min_connections: int = 1,
        max_connections: int = 10,
    ) -> PostgresStoryStore:
        """Connect to the database at url (postgresql://...) and bring its schema up to date."""
        pool: asyncpg.Pool | None = None
        try:
            pool = await asyncpg.create_pool(
                url, min_size=min_connections, max_size=max_connections
            )
            async with pool.acquire() as conn:
                await migrate(conn)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, ValueError) as exc:
            if pool is not None:
                pool.terminate()
            raise StoreError(f"cannot open the story store at {_redact(url)}: {exc}") from exc
        except BaseException:
            if pool is not None:
                pool.terminate()
            raise
        return cls(url, pool, clock)

    async def close(self) -> None:
        """Close the pool; safe to call more than once."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def __aenter__(self) -> Self:
        """Enter ``async with``; the store is already open."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the store."""
        await self.close()

    # -- plumbing ------------------------------------------------------------------------

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError("the story store is closed")
        return self._pool

    async def _read(self, sql: str, *params: Any) -> list[asyncpg.Record]:
        return list(await self._require_pool().fetch(sql, *params))

    async def _read_for_ids(self, sql: str, story_ids: Iterable[int]) -> list[asyncpg.Record]:
        """Rows of `sql`, whose one parameter ($1) is these ids, each once; no read at all
        for no ids."""
        ids = list(dict.fromkeys(story_ids))
        if not ids:
            return []
        return await self._read(sql, ids)

    async def _read_by_bitmaps(self, sql: str, *params: Any) -> list[asyncpg.Record]:
        """_read, with plain index scans off, for statements that must use bitmap scans.

        Asked for the newest matches of a common word, the planner walks the primary key
        backwards, testing each row's search_vector: it counts that test as cheap, but it
        reads the whole vector (5 ms at 10k stories for a word in 40% of them, 2 ms as a
        bitmap scan). SET LOCAL ends with the transaction.
        """
        async with self._require_pool().acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL enable_indexscan = off")
            return list(await conn.fetch(sql, *params))

    async def _stories(self, sql: str, *params: Any) -> list[Story]:
        return [_story_from_row(row) for row in await self._read(sql, *params)]

    @staticmethod
    def _check_limit(limit: int, offset: int = 0) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if offset < 0:
            raise ValueError(f"offset must not be negative, got {offset}")

    # -- writes --------------------------------------------------------------------------

    async def add(self, story: NewStory) -> AddResult:
        """Store one story unless it duplicates a stored one (same URL or fingerprint)."""
        (result,) = await self.add_many([story])
        return result

    @_translate_errors
    async def add_many(self, stories: Sequence[NewStory]) -> list[AddResult]:
        """Store stories in one all-or-nothing transaction; duplicates report the existing id."""
        if not stories:
            return []
        now = as_utc(self._clock())
        results: list[AddResult] = []
        link_rows: list[tuple[Any, ...]] = []
        features: list[StoredFeatures] = []
        async with self._require_pool().acquire() as conn, conn.transaction():
            for story in stories:
                ingested = now if story.ingested_at is None else as_utc(story.ingested_at)
                url = clean_url(story.url)
                published = None if story.published_at is None else as_utc(story.published_at)
                story_id = await conn.fetchval(
                    _INSERT_STORY,
                    story.title,
                    url,
                    story.source,
                    story.language,
                    published,
                    ingested,
                    ingested if published is None else published,
                    story.body,
                    story.cleaned_text,
                    json.dumps(list(story.summary), ensure_ascii=False),
                    story.algorithm,
                    story.sentence_count,
                    story.fingerprint,
                )
                if story_id is None:
                    # Earlier stories of this batch are visible here, and so are stories other
                    # workers committed while this insert waited on their unique keys.
                    found = await conn.fetchval(_FIND_DUPLICATE, url, story.fingerprint)
                    if found is None:
                        raise StoreError(
                            f"story {story.title!r} conflicts with a stored one that cannot "
                            "be found"
                        )
                    results.append(AddResult(story_id=int(found), created=False))
                    continue
                results.append(AddResult(story_id=int(story_id), created=True))
                if story.features is not None:
                    features.append(
                        StoredFeatures(int(story_id), story.features_version, story.features)
                    )
                for position, link in enumerate(story.links):
                    link_rows.append(
                        (
                            int(story_id),
                            position,
                            link.title,
                            link.snippet,
                            clean_url(link.url),
                            link.outlet,
                            link.story_id,
                        )
                    )
            if link_rows:
                await conn.executemany(_INSERT_LINK, link_rows)
            if features:
                await self._put_features(conn, features)
        return results

    @_translate_errors
    async def delete(self, story_id: int) -> bool:
        """Remove a story with its links; False if there was no such story."""
        status = await self._require_pool().execute("DELETE FROM stories WHERE id = $1", story_id)
        return status != "DELETE 0"

    @_translate_errors
    async def set_meta(self, key: str, value: str) -> None:
        """Store value under key, replacing any previous value."""
        await self._require_pool().execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            key,
            value,
        )

    @staticmethod
    async def _put_features(conn: PgConnection, rows: Sequence[StoredFeatures]) -> None:
        # One row per story (the last given wins, as SQLite's row-by-row upsert has it): an
        # upsert may not touch one row twice.
        latest = {row.story_id: row for row in rows}
        ordered = [latest[story_id] for story_id in sorted(latest)]
        await conn.execute(
            _PUT_FEATURES,
            [row.story_id for row in ordered],
            [row.version for row in ordered],
            [row.features for row in ordered],
        )

    @_translate_errors
    async def put_features(self, rows: Sequence[StoredFeatures]) -> None:
        """Store (or replace) stories' features; stories deleted meanwhile are skipped."""
        if not rows:
            return
        async with self._require_pool().acquire() as conn, conn.transaction():
            await self._put_features(conn, rows)

    @_translate_errors
    async def replace_related(self, lists: Mapping[int, Sequence[RelatedRow]]) -> None:
        """Replace the related lists of some stories (best first), in one transaction.

        Also records when each list was computed. Entries pointing at stories deleted
        meanwhile are dropped; a deleted story's own list is simply not written.
        """
        if not lists:
            return
        now = as_utc(self._clock())
        async with self._require_pool().acquire() as conn, conn.transaction():
            owners = await conn.fetch(_LOCK_LIST_OWNERS, sorted(lists))
            live = [int(row[0]) for row in owners]
            rows = [
                (story_id, rank, row)
                for story_id in live
                for rank, row in enumerate(lists[story_id], start=1)
            ]
            await conn.execute("DELETE FROM related WHERE story_id = ANY ($1::bigint[])", live)
            if rows:
                await conn.execute(
                    _INSERT_RELATED,
                    [story_id for story_id, _, _ in rows],
                    [rank for _, rank, _ in rows],
                    [row.related_id for _, _, row in rows],
                    [row.score for _, _, row in rows],
                    [ids_json(row.copies) for _, _, row in rows],
                    [names_json(row.outlets) for _, _, row in rows],
                )
            await conn.execute(
                "UPDATE story_features SET related_at = $1 WHERE story_id = ANY ($2::bigint[])",
                now,
                live,
            )

    @_translate_errors
    async def claim_run(self, name: str, every: timedelta) -> bool:
        """Claim scheduled job `name` for now: True for exactly one caller per `every`.

        Atomic across processes sharing the database: of several concurrent callers one gets
        True; the next True comes once the store's clock is `every` past the last claim.
        """
        now = as_utc(self._clock())
        claimed = await self._require_pool().fetchval(
            _CLAIM_RUN, _job_key(name), now.isoformat(), now - every
        )
        return bool(claimed)

    # -- reads ---------------------------------------------------------------------------

    @_translate_errors
    async def ids_by_url(self, urls: Iterable[str | None]) -> dict[str, int]:
        """Ids of the stored stories under these URLs, keyed by the URL as given."""
        wanted = {clean: url for url in urls if url and (clean := clean_url(url)) is not None}
        if not wanted:
            return {}
        rows = await self._read(
            "SELECT url, id FROM stories WHERE url = ANY ($1::text[])", list(wanted)
        )
        return {wanted[url]: int(story_id) for url, story_id in rows}

    @_translate_errors
    async def find_duplicate(self, url: str | None, fingerprint: str) -> int | None:
        """Id of a stored story with this URL or this fingerprint, if any."""
        rows = await self._read(_FIND_DUPLICATE, clean_url(url), fingerprint)
        return int(rows[0][0]) if rows else None

    @_translate_errors
    async def get(self, story_id: int) -> Story | None:
        """The story with this id, links in stored order, or None."""
        stories = await self._stories(
            f"SELECT {_STORY_COLUMNS} FROM stories AS s WHERE s.id = $1", story_id
        )
        return stories[0] if stories else None

    @_translate_errors
    async def get_by_url(self, url: str) -> Story | None:
        """The story stored under this URL, or None."""
        clean = clean_url(url)
        if clean is None:
            return None
        stories = await self._stories(
            f"SELECT {_STORY_COLUMNS} FROM stories AS s WHERE s.url = $1", clean
        )
        return stories[0] if stories else None

    @_translate_errors
    async def get_many(self, story_ids: Iterable[int]) -> dict[int, Story]:
        """The stories with these ids that exist, by id, read in one query."""
        rows = await self._read_for_ids(
            f"SELECT {_STORY_COLUMNS} FROM stories AS s WHERE s.id = ANY($1::bigint[])", story_ids
        )
        return {story.id: story for story in map(_story_from_row, rows)}

    @_translate_errors
    async def latest(
        self, limit: int, *, older_than: int | None = None, newer_than: int | None = None
    ) -> list[Story]:
        """Newest-first page; older_than/newer_than are story ids used as keyset cursors."""
        self._check_limit(limit)
        where: list[str] = []
        params: list[Any] = []
        if older_than is not None:
            params.append(older_than)
            where.append(f"(s.sort_key, s.id) < {_CURSOR_KEY.format(n=len(params))}")
        if newer_than is not None:
            params.append(newer_than)
            where.append(f"(s.sort_key, s.id) > {_CURSOR_KEY.format(n=len(params))}")
        upwards = newer_than is not None and older_than is None
        direction = "ASC" if upwards else "DESC"
        params.append(limit)
        sql = (
            f"SELECT {_STORY_COLUMNS} FROM stories AS s "
            + (f"WHERE {' AND '.join(where)} " if where else "")
            + f"ORDER BY s.sort_key {direction}, s.id {direction} LIMIT ${len(params)}"
        )
        stories = await self._stories(sql, *params)
        if not stories:
            await self._check_cursors(older_than, newer_than)
        return stories[::-1] if upwards else stories

    async def _check_cursors(self, *cursors: int | None) -> None:
        # An empty page is ambiguous: the end of the list, or a cursor that no longer exists.
        for cursor in cursors:
            if cursor is not None and not await self._read(
                "SELECT 1 FROM stories WHERE id = $1", cursor
            ):
                raise UnknownStoryError(cursor)

    async def _story_count_for_pruning(self) -> tuple[int, int]:
        """The number of stories (estimated above _EXACT_COUNT_BELOW) and the newest id."""
        rows = await self._read(
            """
            SELECT greatest(reltuples, 0)::bigint, (SELECT max(id) FROM stories)
              FROM pg_class WHERE oid = 'stories'::regclass
            """
        )
        estimate, newest = (int(rows[0][0]), int(rows[0][1] or 0)) if rows else (0, 0)
        if estimate >= _EXACT_COUNT_BELOW:
            return estimate, newest
        rows = await self._read("SELECT count(*) FROM stories")
        return int(rows[0][0]), newest

    async def _sample(self, words: Sequence[str]) -> tuple[list[float], int]:
        """Each word's share of the newest PRUNE_SAMPLE stories, and the newest id.

        Shares are counted once per word (as the SQLite store counts them) and cached; below
        PRUNE_MIN_STORIES they say too little and are all 0 (no pruning, no id bound).
        """
        stories, newest = await self._story_count_for_pruning()
        if stories < PRUNE_MIN_STORIES:
            return [0.0] * len(words), newest
        cache = self._frequent_terms
        cache.rebase(stories)
        keys = [word.casefold() for word in words]
        known = {key: cache.values[key] for key in keys if key in cache.values}
        missing = [key for key in dict.fromkeys(keys) if key not in known]
        if missing:
            columns = ", ".join(
                _COUNT_WORD.format(config=TS_CONFIG, n=n) for n in range(2, len(missing) + 2)
            )
            counts = await self._read_by_bitmaps(
                f"SELECT {columns}",
                newest - PRUNE_SAMPLE,
                *(_websearch_any([key]) for key in missing),
            )
            # Ids are dense but for deleted stories; a gap only lowers a share, which keeps a
            # word that might have been dropped (never a worse answer, as in SQLite) and
            # widens the window's id range (never a missed match).
            sample = min(stories, PRUNE_SAMPLE)
            for key, count in zip(missing, counts[0], strict=True):
                known[key] = min(int(count) / sample, 1.0)
                cache.put(key, known[key])
        return [known[key] for key in keys], newest

    @staticmethod
    def _without_frequent(words: list[str], shares: list[float]) -> list[str]:
        """words less those in over FREQUENT_TERM_SHARE of the stories, unless none is left.

        It matters more here than in SQLite, since ts_rank_cd has no IDF: a common word would
        weigh as much as a rare name, and fill the window with its matches.
        """
        if len(words) < 2:
            return words
        rare = [w for w, share in zip(words, shares, strict=True) if share <= FREQUENT_TERM_SHARE]
        return rare or words

    async def _window(
        self,
        words: Sequence[str],
        shares: Sequence[float] | None,
        newest: int,
        exclude_id: int | None,
        *,
        every: bool,
    ) -> tuple[list[tuple[int, bool]], bool]:
        """The newest RANK_WINDOW matches, newest first, each with "strong"; and "tiered".

        The id range searched starts where the words' shares say the window should reach
        (for all words the rarest word's share, an upper bound; for any word the commonest's,
        a lower bound), or 4 * RANK_WINDOW back without shares, and widens until the window is
        full or the range is the whole store.
        """
        expression = _websearch_all(words) if every else _websearch_any(words)
        title, pairs = _tiers(words, every=every)
        if shares and not every and len(words) > 1 and all(s > FREQUENT_TERM_SHARE for s in shares):
            # As in SQLite: title matches and pairs of such words fill much of the window.
            title, pairs = None, None
        share = (min(shares) if every else max(shares)) if shares else 0.0
        # Share 0: no shares were sampled, or none of the newest PRUNE_SAMPLE stories has the
        # words (or the store is too small to sample); the range then grows from there.
        reach = RANK_WINDOW / share * _WINDOW_SLACK if share > 0 else 4.0 * RANK_WINDOW
        low, high = max(newest - int(reach), 0), _MAX_ID
        rows: list[asyncpg.Record] = []
        for attempt in itertools.count(1):
            # Each attempt reads only ids older than the last one read: none is read twice.
            rows += await self._read_by_bitmaps(
                _SEARCH_WINDOW,
                expression,
                title,
                low,
                pairs,
                exclude_id,
                RANK_WINDOW - len(rows),
                high,
            )
            if len(rows) >= RANK_WINDOW or low <= 0:
                break
            # Grown as far as the matches found so far say it must, at least fourfold.
            reach = (newest - low) * max(RANK_WINDOW / max(len(rows), 1) * _WINDOW_SLACK, 4)
            low, high = 0 if attempt >= _WINDOW_ATTEMPTS else max(newest - int(reach), 0), low
        return [(int(row[0]), bool(row[1])) for row in rows], title is not None

    async def _page(
        self,
        sql: str,
        words: Sequence[str],
        window: list[tuple[int, bool]],
        tiered: bool,
        limit: int,
        offset: int,
        *,
        every: bool,
    ) -> list[asyncpg.Record]:
        """One page of the window, best first: strong rows, then weak ones (see _PAGE_IDS)."""
        if not window:
            return []
        strong = [story_id for story_id, hit in window if hit or not tiered]
        weak = [story_id for story_id, hit in window if tiered and not hit]
        wanted = limit + offset
        # A page inside the strong tier ranks only strong rows (as in SQLite), and never more
        # than RANK_BUDGET rows, the newest of those the page may reach.
        ranked = set((strong if len(strong) >= wanted else strong + weak)[:RANK_BUDGET])
        candidates = [(i, 0) for i in strong if i in ranked] + [(i, 1) for i in weak if i in ranked]
        unranked = [(i, 0) for i in strong if i not in ranked]
        unranked += [(i, 1) for i in weak if i not in ranked]
        # Rows after the first `wanted` unranked ones can never reach the page.
        flags = [True] * len(candidates) + [False] * min(len(unranked), wanted)
        candidates += unranked[:wanted]
        expression = _websearch_all(words) if every else _websearch_any(words)
        return await self._read(
            sql,
            expression,
            [story_id for story_id, _ in candidates],
            [tier for _, tier in candidates],
            flags,
            limit,
            offset,
        )

    async def _search_rows(
        self, sql: str, query: str, limit: int, offset: int
    ) -> list[asyncpg.Record]:
        """search()'s page: all words if any story has them all, else any of the rarer ones."""
        terms = fts.query_terms(query)
        # No shares sampled: a single word's share would only save the window a second try,
        # and sampling a word not seen before costs about as much.
        _, newest = await self._story_count_for_pruning()
        window, tiered = await self._window(terms, None, newest, None, every=True)
        if window or len(terms) == 1:
            return await self._page(sql, terms, window, tiered, limit, offset, every=True)
        # The window's last attempt searched the whole store: no story has every word.
        shares, newest = await self._sample(terms)
        words = self._without_frequent(terms, shares)
        kept = [shares[terms.index(word)] for word in words]
        window, tiered = await self._window(words, kept, newest, None, every=False)
        return await self._page(sql, words, window, tiered, limit, offset, every=False)

    async def _search_any_rows(
        self, sql: str, terms: Sequence[str], limit: int, exclude_id: int | None
    ) -> list[asyncpg.Record]:
        words = fts.tokenize(" ".join(terms))[: fts.MAX_TERMS]
        if not words:
            return []
        shares, newest = await self._sample(words)
        kept = self._without_frequent(words, shares)
        kept_shares = [shares[words.index(word)] for word in kept]
        window, tiered = await self._window(kept, kept_shares, newest, exclude_id, every=False)
        return await self._page(sql, kept, window, tiered, limit, 0, every=False)

    @_translate_query_errors
    async def search(self, query: str, limit: int = 10, offset: int = 0) -> list[SearchHit]:
        """Best of the newest RANK_WINDOW matches first; all words must match, else any word.

        Matches with a query word in the title rank first (see _SEARCH_WINDOW).
        """
        self._check_limit(limit, offset)
        rows = await self._search_rows(_SEARCH_PAGE, query, limit, offset)
        return [
            SearchHit(story=_story_from_row(row), score=float(row[_STORY_COLUMN_COUNT]))
            for row in rows
        ]

    @_translate_query_errors
    async def search_any(
        self, terms: Sequence[str], limit: int = 10, *, exclude_id: int | None = None
    ) -> list[SearchHit]:
        """Stories matching any term, best of the newest RANK_WINDOW first; [] if none usable.

        Matches with a term in the title, or two of up to four terms, rank first.
        """
        self._check_limit(limit)
        rows = await self._search_any_rows(_SEARCH_PAGE, terms, limit, exclude_id)
        return [
            SearchHit(story=_story_from_row(row), score=float(row[_STORY_COLUMN_COUNT]))
            for row in rows
        ]

    @_translate_query_errors
    async def search_any_ids(
        self, terms: Sequence[str], limit: int = 50, *, exclude_id: int | None = None
    ) -> list[int]:
        """Ids of search_any()'s hits, best first, without reading the stories."""
        self._check_limit(limit)
        rows = await self._search_any_rows(_PAGE_IDS, terms, limit, exclude_id)
        return [int(row[0]) for row in rows]

    async def search_any_ids_many(
        self, queries: Sequence[tuple[Sequence[str], int | None]], limit: int = 50
    ) -> list[list[int]]:
        """search_any_ids(terms, limit, exclude_id=...) for each (terms, exclude_id), in order."""
        # The SQLite store batches to save hops to its one reader thread; here the searches
        # run side by side on the pool's connections, as the ingest's gather did.
        self._check_limit(limit)
        return list(
            await asyncio.gather(
                *(
                    self.search_any_ids(terms, limit, exclude_id=exclude_id)
                    for terms, exclude_id in queries
                )
            )
        )

    @_translate_query_errors
    async def count_search(self, query: str) -> int:
        """How many stories search() would page through, capped at SEARCH_COUNT_CAP."""
        terms = fts.query_terms(query)
        rows = await self._read(_COUNT_SEARCH, _websearch_all(terms), SEARCH_COUNT_CAP)
        count = int(rows[0][0])
        if count or len(terms) == 1:
            return count
        shares, _ = await self._sample(terms)
        any_word = _websearch_any(self._without_frequent(terms, shares))
        rows = await self._read(_COUNT_SEARCH, any_word, SEARCH_COUNT_CAP)
        return int(rows[0][0])

    @_translate_errors
    async def count(self) -> int:
        """Number of stored stories."""
        rows = await self._read("SELECT count(*) FROM stories")
        return int(rows[0][0])

    async def compact_search_index(self) -> None:
        """Nothing to do: a GIN index has no segments, and autovacuum flushes its pending
        list of new entries."""

    @_translate_errors
    async def stats(self) -> StoreStats:
        """Counts, the last ingest time and the database size."""
        rows = await self._read(
            """
            SELECT (SELECT count(*) FROM stories),
                   (SELECT count(DISTINCT source) FROM stories),
                   (SELECT count(*) FROM links),
                   (SELECT ingested_at FROM stories ORDER BY id DESC LIMIT 1),
                   pg_database_size(current_database())
            """
        )
        stories, sources, links, last_ingest, size = rows[0]
        return StoreStats(
            stories=int(stories),
            sources=int(sources),
            links=int(links),
            last_ingest=last_ingest,
            database_bytes=int(size),
        )

    @_translate_errors
    async def get_meta(self, key: str) -> str | None:
        """The value stored under key, or None."""
        rows = await self._read("SELECT value FROM meta WHERE key = $1", key)
        return str(rows[0][0]) if rows else None

    # -- related stories -----------------------------------------------------------------

    @_translate_errors
    async def features_of(self, story_ids: Iterable[int]) -> dict[int, StoredFeatures]:
        """Stored features of these stories (those that have any), in one query.

        The features come back as JSON text equal in value to what was stored, though
        PostgreSQL's jsonb may have reordered keys and spacing.
        """
        rows = await self._read_for_ids(
            "SELECT story_id, version, features::text, related_at FROM story_features "
            "WHERE story_id = ANY ($1::bigint[])",
            story_ids,
        )
        return {
            int(row[0]): StoredFeatures(
                story_id=int(row[0]), version=int(row[1]), features=str(row[2]), related_at=row[3]
            )
            for row in rows
        }

    @_translate_errors
    async def feature_versions(self, story_ids: Iterable[int]) -> dict[int, int]:
        """The version of each of these stories' stored features (those that have any)."""
        rows = await self._read_for_ids(
            "SELECT story_id, version FROM story_features WHERE story_id = ANY ($1::bigint[])",
            story_ids,
        )
        return {int(row[0]): int(row[1]) for row in rows}

    @_translate_errors
    async def missing_features(self, version: int, limit: int) -> list[int]:
        """Newest stories whose features are missing or were written by another version."""
        self._check_limit(limit)
        rows = await self._read(
            """
            SELECT s.id FROM stories AS s
              LEFT JOIN story_features AS f ON f.story_id = s.id
             WHERE f.story_id IS NULL OR f.version != $1
             ORDER BY s.id DESC LIMIT $2
            """,
            version,
            limit,
        )
        return [int(row[0]) for row in rows]

    @_translate_errors
    async def corpus_counts(self, keys: Iterable[str]) -> CorpusCounts:
        """Document frequencies of these feature keys, and the number of stories counted."""
        wanted = list(dict.fromkeys(keys))
        # One statement, so the count and the frequencies come from one snapshot.
        rows = await self._read(
            """
            SELECT (SELECT value FROM counters WHERE name = 'feature_docs'),
                   (SELECT coalesce(json_object_agg(term, df), '{}')::text
                      FROM term_df WHERE term = ANY ($1::text[]))
            """,
            wanted,
        )
        docs, df = rows[0]
        return CorpusCounts(int(docs), {str(k): int(v) for k, v in json.loads(df).items()})

    @_translate_errors
    async def recent_ids(
        self, since: datetime, limit: int, *, stale_before: datetime | None = None
    ) -> list[int]:
        """Stories ingested at or after `since` whose related list is older than
        `stale_before` (or missing), least recently computed first, at most `limit`."""
        self._check_limit(limit)
        stale = None if stale_before is None else as_utc(stale_before)
        rows = await self._read(
            """
            SELECT s.id FROM stories AS s
              LEFT JOIN story_features AS f ON f.story_id = s.id
             WHERE s.ingested_at >= $1
               AND ($2::timestamptz IS NULL OR f.related_at IS NULL OR f.related_at < $2)
             ORDER BY f.related_at ASC NULLS FIRST, s.id DESC
             LIMIT $3
            """,
            as_utc(since),
            stale,
            limit,
        )
        return [int(row[0]) for row in rows]

    @_translate_errors
    async def related_rows(self, story_ids: Iterable[int]) -> dict[int, list[RelatedRow]]:
        """The stored related lists of these stories, best first, without the stories."""
        rows = await self._read_for_ids(
            f"""
            SELECT r.story_id, r.related_id, {_RELATED_COLUMNS} FROM related AS r
             WHERE r.story_id = ANY ($1::bigint[])
             ORDER BY r.story_id, r.rank
            """,
            story_ids,
        )
        lists: dict[int, list[RelatedRow]] = {}
        for story_id, related_id, _rank, score, outlets, copies in rows:
            lists.setdefault(int(story_id), []).append(
                RelatedRow(
                    related_id=int(related_id),
                    score=float(score),
                    copies=ids_from_json(copies),
                    outlets=names_from_json(outlets),
                )
            )
        return lists

    @_translate_errors
    async def related_of(self, story_id: int, limit: int = 10) -> list[RelatedStory]:
        """A story's stored related list, best first, with the related stories."""
        self._check_limit(limit)
        rows = await self._read(
            f"""
            SELECT {_STORY_COLUMNS}, {_RELATED_COLUMNS}
              FROM related AS r JOIN stories AS s ON s.id = r.related_id
             WHERE r.story_id = $1
             ORDER BY r.rank LIMIT $2
            """,
            story_id,
            limit,
        )
        n = _STORY_COLUMN_COUNT
        return [
            RelatedStory(
                story=_story_from_row(row),
                rank=int(row[n]),
                score=float(row[n + 1]),
                outlets=names_from_json(row[n + 2]),
                copies=ids_from_json(row[n + 3]),
            )
            for row in rows
        ]

    @_translate_errors
    async def related_computed_at(self, story_id: int) -> datetime | None:
        """When the story's related list was last computed; None if never."""
        rows = await self._read(
            "SELECT related_at FROM story_features WHERE story_id = $1", story_id
        )
        if not rows or rows[0][0] is None:
            return None
        moment: datetime = rows[0][0]
        return moment

    @_translate_errors
    async def match_links(
        self, urls: Iterable[str], titles: Iterable[str]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Stored story ids by URL, and by title (case-folded keys), for some links."""
        url_list = [u for u in dict.fromkeys(clean_url(u) for u in urls) if u]
        title_list = [t for t in dict.fromkeys(" ".join(t.split()) for t in titles) if t]
        by_url: dict[str, int] = {}
        by_title: dict[str, int] = {}
        if url_list:
            rows = await self._read(
                "SELECT url, id FROM stories WHERE url = ANY ($1::text[])", url_list
            )
            by_url = {str(url): int(found) for url, found in rows}
        if title_list:
            # The oldest story wins a shared title: it is the one the others were copied
            # from. lower(title) is indexed (migration 2); both sides go through the
            # database's lower() so they fold case alike.
            rows = await self._read(
                "SELECT min(title), min(id) FROM stories WHERE lower(title) IN "
                "(SELECT lower(t) FROM unnest($1::text[]) AS t) GROUP BY lower(title)",
                title_list,
            )
            by_title = {str(title).casefold(): int(found) for title, found in rows}
        return by_url, by_title


def _redact(url: str) -> str:
    """The URL without its password, for error messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url

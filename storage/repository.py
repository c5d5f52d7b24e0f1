"""The story store: an async repository over one SQLite file (aiosqlite, WAL mode).

Open it with ``async with await StoryStore.open(path) as store: ...`` (or call
``await store.close()`` yourself). One writer connection takes every write inside
``BEGIN IMMEDIATE`` transactions; a separate read-only connection serves every read, and
because the file is in WAL mode reads never wait for a write in progress.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import (
    AsyncIterator,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager, suppress
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import aiosqlite

from storage import fts
from storage.errors import StoreError, UnknownStoryError
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
from storage.schema import immediate_transaction, migrate, translate_sqlite_errors
from storage.term_cache import TermCache
from storage.values import (
    as_utc,
    clean_url,
    from_micros,
    ids_from_json,
    ids_json,
    names_from_json,
    names_json,
    to_micros,
    utc_now,
)

__all__ = ["RANK_WINDOW", "SEARCH_COUNT_CAP", "StoryStore"]

# count_search() stops counting here: enough for "page 3 of 50+", and bounded in cost.
SEARCH_COUNT_CAP: Final = 1000
# bm25 column weights (title, cleaned_text): a word in the headline says more than one in
# the body.
_TITLE_WEIGHT: Final = 10.0
_TEXT_WEIGHT: Final = 1.0
_BUSY_TIMEOUT_MS: Final = 5000
# Between tries to switch a database another process is creating to WAL.
_LOCK_RETRY_S: Final = 0.02
# About 16 MB of page cache per connection keeps the hot index pages of a 100k-story store
# in memory (what serving is measured with).
PAGE_CACHE_KIB: Final = 16_000


# Links come back as one JSON array per story so that a story and its links are read by a
# single statement, i.e. from one consistent snapshot, without an explicit read transaction.
_STORY_COLUMNS: Final = """
    s.id, s.title, s.body, s.cleaned_text, s.summary, s.algorithm, s.fingerprint,
    s.ingested_at, s.url, s.source, s.language, s.published_at,
    (SELECT json_group_array(json_array(
            l.position, l.title, l.snippet, l.url, l.outlet, l.linked_story_id))
       FROM links AS l WHERE l.story_id = s.id) AS links
"""
_STORY_COLUMN_COUNT: Final = 13

_INSERT_STORY: Final = """
    INSERT INTO stories (
        title, url, source, language, published_at, ingested_at, sort_key,
        body, cleaned_text, summary, algorithm, sentence_count, fingerprint)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT DO NOTHING
    RETURNING id
"""

# A link's story id is kept only if that story exists, else filled in from a stored story
# with the link's URL: a stale id must not fail the whole batch on the foreign key.
_INSERT_LINK: Final = """
    INSERT INTO links (story_id, position, title, snippet, url, outlet, linked_story_id)
    VALUES (?, ?, ?, ?, ?, ?, coalesce(
        (SELECT id FROM stories WHERE id = ?),
        (SELECT id FROM stories WHERE url = ? AND id != ?)))
"""

_INSERT_FEATURES: Final = """
    INSERT INTO story_features (story_id, version, features) VALUES (?, ?, ?)
"""

# Document frequencies of a whole add_many batch's feature keys, added in one grouped upsert
# (schema migration 4): the same counts as version 2's per-row trigger, a key counted once
# per story for each of terms and entities, but one upsert per distinct key of the batch.
_DF_ADD_BATCH: Final = """
    INSERT INTO term_df (term, df)
    SELECT key, count(*) FROM (
        SELECT k.key FROM story_features AS f, json_each(f.features, '$.terms') AS k
         WHERE f.story_id IN (SELECT value FROM json_each(?1))
        UNION ALL
        SELECT k.key FROM story_features AS f, json_each(f.features, '$.entities') AS k
         WHERE f.story_id IN (SELECT value FROM json_each(?1)))
     GROUP BY key
    ON CONFLICT (term) DO UPDATE SET df = df + excluded.df
"""

# Skips stories deleted meanwhile; an update fires the trigger that moves the frequencies.
_PUT_FEATURES: Final = """
    INSERT INTO story_features (story_id, version, features)
    SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM stories WHERE id = ?1)
    ON CONFLICT (story_id) DO UPDATE SET version = excluded.version, features = excluded.features
"""

# Rows of a list whose own story, or pointing at a story, deleted since the list was
# ranked are skipped, not a failure.
_INSERT_RELATED: Final = """
    INSERT INTO related (story_id, rank, related_id, score, copies, outlets)
    SELECT ?1, ?2, ?3, ?4, ?5, ?6
     WHERE EXISTS (SELECT 1 FROM stories WHERE id = ?3)
       AND EXISTS (SELECT 1 FROM stories WHERE id = ?1)
"""

# Copies deleted since the list was ranked are dropped on the way out.
_RELATED_COLUMNS: Final = """
    r.rank, r.score, r.outlets,
    (SELECT json_group_array(c.value) FROM json_each(r.copies) AS c
      WHERE EXISTS (SELECT 1 FROM stories WHERE id = c.value)) AS copies
"""

_FIND_DUPLICATE: Final = """
    SELECT id FROM stories WHERE url = ?
    UNION ALL
    SELECT id FROM stories WHERE fingerprint = ?
    LIMIT 1
"""

_CURSOR_KEY: Final = "(SELECT sort_key, id FROM stories WHERE id = ?)"

# bm25 costs about a microsecond per matching row and FTS5 cannot stop early, so a query
# matching most of a 100k store would take tens of milliseconds. Ranking only the newest
# RANK_WINDOW matches bounds that; a query matching fewer stories is ranked exactly. Related
# lists need the whole window: among 5,093 real stories (`python -m bench.related_mix`) 1,000
# cost Emergent P@5 0.9232 -> 0.9183 and R@10 0.5758 -> 0.5675 (ECB+ 0.9321 -> 0.9296,
# 0.6334 -> 0.6188), and 4,000 scored the same as 2,000 (both at a 0.25 share).
RANK_WINDOW = 2000
# FTS5 pages (about 4 KB each) that one compact_search_index() step merges.
_MERGE_PAGES: Final = 1000

# A word in more than this share of the stories barely tells "any of these words" apart, yet
# FTS5 reads and bm25 scores every story it is in: it is dropped from such queries when rarer
# words remain. At 100k stories this took related-candidate queries from 15.6 to 3.6 ms.
FREQUENT_TERM_SHARE: Final = 0.25
# The same for the related-candidate searches (search_any_ids_many), whose words are a
# story's salient terms. Among 5,093 real stories (`python -m bench.related_mix`: BBC with
# both event sets) 0.15 stored lists as good as 0.25 (Emergent P@5 0.9232 both, R@10 0.5758
# -> 0.5760; ECB+ the same) and 0.10 slightly worse (0.9229, 0.5754); on the 10k bench store
# 0.15 took a search from 1.95 to 1.43 ms. /search keeps FREQUENT_TERM_SHARE.
RELATED_TERM_SHARE: Final = 0.15
# Below this many stories no word is dropped: shares of a tiny store say little.
PRUNE_MIN_STORIES = 500
# The share is measured over the newest PRUNE_SAMPLE stories (about +-0.6 points at 25%):
# counting a word over the whole store reads its whole index entry, over a millisecond for a
# word in 40k of 100k stories, where a rowid range reads a bounded slice. The newest stories
# are also the ones RANK_WINDOW ranks.
PRUNE_SAMPLE = 5000
_COUNT_MATCHES: Final = (
    "SELECT count(*) FROM (SELECT 1 FROM stories_fts WHERE stories_fts MATCH ? LIMIT ?)"
)
# Counts each query of a JSON array (?1) among the stories after id ?2, by array position.
# One fixed statement for any number of words: one with a subquery per word was a new
# statement for each count of words, and the 128 that SQLite's statement cache kept held
# 20 MB by the end of a 10k-story seed.
_COUNT_RECENT_MATCHES: Final = """
    SELECT q.key, (SELECT count(*) FROM stories_fts WHERE stories_fts MATCH q.value AND rowid > ?2)
      FROM json_each(?1) AS q
"""
# Rows of a table for a JSON list of keys (?), each once: a join seeks each key, where
# `IN (SELECT value FROM json_each(?))` first sorted the list into a temporary index (20,000
# document-frequency keys: 21 ms against 13).
_IDS_JOIN: Final = "json_each(?) AS j JOIN"
# The stories counted (under the key NULL) and the document frequencies of the keys (?1).
_CORPUS_COUNTS: Final = f"""
    SELECT NULL, value FROM counters WHERE name = 'feature_docs'
    UNION ALL
    SELECT t.term, t.df FROM {_IDS_JOIN} term_df AS t ON t.term = j.value
"""
# One search of search_any_ids_many(): the best by bm25 of the newest RANK_WINDOW matches.
_SEARCH_IDS: Final = f"""
    SELECT id FROM (
        SELECT rowid AS id, bm25(stories_fts, {_TITLE_WEIGHT}, {_TEXT_WEIGHT}) AS rank
          FROM stories_fts
         WHERE stories_fts MATCH ? AND rowid IS NOT ?
         ORDER BY rowid DESC
         LIMIT ?)
     ORDER BY rank, id DESC LIMIT ?
"""
# "Any of these words" queries of up to this many words rank stories holding two of them
# first; beyond it the pairs make the MATCH expression too long to pay for itself.
_PAIRED_TERMS_MAX: Final = 4


_MAX_ROWID: Final = 2**63 - 1

# Ids and scores are chosen first so that bodies and links are read for one page only, not
# for every row the sorter sees.
#
# bm25 costs about a microsecond per row scored, so scoring every RANK_WINDOW row was about
# 2 of a 100k-story query's 3-5 ms. Strong matches (?2: a query word in the title or, for a
# few words, two of them in the story) rank first, weak ones after, each tier by bm25: a
# page inside the strong tier scores only the strong rows. A weak row that bm25 puts above
# a strong one moves down; over 400 benchmark /related queries 99.5% of the top-5 stayed.
# (bm25 still reads each word's whole index entry once, for its document frequency: that,
# not the window, is what a query of only frequent words spends most of its time on.)
_SEARCH: Final = f"""
    WITH newest AS MATERIALIZED (
        SELECT rowid AS id FROM stories_fts
         WHERE stories_fts MATCH ?1 AND rowid IS NOT ?3
         ORDER BY rowid DESC
         LIMIT ?4),
    -- No match at all: a bound past every rowid keeps the scans below from reading anything.
    bounds AS MATERIALIZED (SELECT coalesce(min(id), {_MAX_ROWID}) AS low FROM newest),
    -- ?2 only matches what ?1 matches, and every match from the window's lowest rowid up
    -- is in the window: these are the window's strong rows.
    strong AS MATERIALIZED (
        SELECT rowid AS id FROM stories_fts
         WHERE stories_fts MATCH ?2 AND rowid >= (SELECT low FROM bounds) AND rowid IS NOT ?3),
    hits AS MATERIALIZED (
        SELECT rowid AS id, bm25(stories_fts, {_TITLE_WEIGHT}, {_TEXT_WEIGHT}) AS rank,
               rowid NOT IN (SELECT id FROM strong) AS tier
          FROM stories_fts
         WHERE stories_fts MATCH ?1 AND rowid >= (SELECT low FROM bounds) AND rowid IS NOT ?3
           -- the unary + keeps FTS5 from looking each strong rowid up on its own
           AND (+rowid IN (SELECT id FROM strong) OR (SELECT count(*) FROM strong) < ?5 + ?6)
         ORDER BY tier, rank, id DESC
         LIMIT ?5 OFFSET ?6)
    SELECT {_STORY_COLUMNS}, -hits.rank
      FROM hits JOIN stories AS s ON s.id = hits.id
     ORDER BY hits.tier, hits.rank, hits.id DESC
"""


# Every row of the window scored, for queries with no strong tier; ?2 is unused, so that
# both forms take the same parameters.
_SEARCH_EXACT: Final = f"""
    WITH candidates AS MATERIALIZED (
        SELECT rowid AS id, bm25(stories_fts, {_TITLE_WEIGHT}, {_TEXT_WEIGHT}) AS rank
          FROM stories_fts
         WHERE stories_fts MATCH ?1 AND rowid IS NOT ?3
         ORDER BY rowid DESC
         LIMIT ?4),
    hits AS MATERIALIZED (
        SELECT id, rank FROM candidates ORDER BY rank, id DESC LIMIT ?5 OFFSET ?6)
    SELECT {_STORY_COLUMNS}, -hits.rank
      FROM hits JOIN stories AS s ON s.id = hits.id
     ORDER BY hits.rank, hits.id DESC
"""


def _strong(words: Sequence[str], *, every: bool) -> str | None:
    """The MATCH expression of the matches that rank first (see _SEARCH); None: no tiers."""
    title = fts.in_column("title", words)
    if every:
        return f"({fts.all_of(words)}) AND {title}"
    if len(words) == 1:
        return title
    if len(words) <= _PAIRED_TERMS_MAX:
        return f"{title} OR {fts.any_two_of(words)}"
    # Longer lists (pasted text, say) are ranked exactly: a story holding many of the words
    # without any in its title must not sink below one that names one word in its title.
    return None


def _story_from_row(row: Sequence[Any]) -> Story:
    raw_links: list[list[Any]] = json.loads(row[12]) if row[12] else []
    # json_group_array does not promise an order, so sort by the stored position here.
    raw_links.sort(key=lambda item: int(item[0]))
    return Story(
        id=int(row[0]),
        title=row[1],
        body=row[2],
        cleaned_text=row[3],
        summary=tuple(json.loads(row[4])),
        algorithm=row[5],
        fingerprint=row[6],
        ingested_at=from_micros(int(row[7])),
        url=row[8],
        source=row[9],
        language=row[10],
        published_at=None if row[11] is None else from_micros(int(row[11])),
        links=tuple(
            Link(title=title, snippet=snippet, url=url, outlet=outlet, story_id=linked)
            for _position, title, snippet, url, outlet, linked in raw_links
        ),
    )


async def _switch_to_wal(conn: aiosqlite.Connection) -> str:
    """PRAGMA journal_mode = WAL, waiting out another process that is creating the file.

    While a new database is still in rollback-journal mode, a connection that must upgrade
    its lock to change the mode is told "locked" at once (waiting could deadlock), without
    the busy handler: two webhook workers starting on a fresh file met this now and then.
    """
    deadline = asyncio.get_running_loop().time() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            rows = list(await conn.execute_fetchall("PRAGMA journal_mode = WAL"))
            return str(rows[0][0]).lower()
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorcode == sqlite3.SQLITE_BUSY
            if not busy or asyncio.get_running_loop().time() >= deadline:
                raise
        await _wait_for_lock()


async def _wait_for_lock() -> None:
    await asyncio.sleep(_LOCK_RETRY_S)


class StoryStore:
    """Typed async access to stories, their links, full-text search and a small meta table."""

    def __init__(
        self,
        path: Path,
        writer: aiosqlite.Connection,
        readers: Sequence[aiosqlite.Connection],
        clock: Callable[[], datetime],
    ) -> None:
        self._path = path
        self._writer: aiosqlite.Connection | None = writer
        self._readers: list[aiosqlite.Connection] = list(readers)
        # Reads waiting on or running in each reader's thread; a read goes to the least busy.
        self._in_flight = [0] * len(self._readers)
        self._clock = clock
        # One writer connection serves every coroutine; this keeps their transactions apart.
        self._write_lock = asyncio.Lock()
        self._frequent_terms = TermCache[float]()

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    # -- lifecycle -----------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        clock: Callable[[], datetime] = utc_now,
        page_cache_kib: int = PAGE_CACHE_KIB,
        readers: int = 1,
    ) -> StoryStore:
        """Open (creating if needed) the database at path and bring its schema up to date.

        `page_cache_kib` bounds SQLite's page cache of each connection: the writer and
        `readers` read-only ones (each its own thread, so that many reads run side by side).
        """
        if page_cache_kib < 0:
            raise ValueError(f"page_cache_kib must be 0 or more, got {page_cache_kib}")
        if readers < 1:
            raise ValueError(f"readers must be 1 or more, got {readers}")
        # Negative cache_size means KiB rather than pages.
        cache_size = f"PRAGMA cache_size = {-page_cache_kib}"
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        opened: list[aiosqlite.Connection] = []
        try:
            writer = await aiosqlite.connect(path, isolation_level=None)
            opened.append(writer)
            # First: switching to WAL needs a lock another process (a worker, `newsbot seed`)
            # may hold for a moment.
            await writer.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            mode = await _switch_to_wal(writer)
            if mode != "wal":
                raise StoreError(f"{path}: could not switch the database to WAL mode")
            for pragma in (
                # NORMAL in WAL mode can lose the last commits on power loss but never
                # corrupts, and a killed process loses nothing that was committed.
                "PRAGMA synchronous = NORMAL",
                "PRAGMA foreign_keys = ON",
                cache_size,
            ):
                await writer.execute(pragma)
            await migrate(writer)
            for _ in range(readers):
                reader = await aiosqlite.connect(path, isolation_level=None)
                opened.append(reader)
                for pragma in (
                    "PRAGMA query_only = ON",
                    f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}",
                    cache_size,
                ):
                    await reader.execute(pragma)
        except sqlite3.Error as exc:
            await cls._close_all(opened)
            raise StoreError(f"cannot open the story store at {path}: {exc}") from exc
        except BaseException:
            await cls._close_all(opened)
            raise
        return cls(path, writer, opened[1:], clock)

    @staticmethod
    async def _close_all(connections: Sequence[aiosqlite.Connection]) -> None:
        for conn in connections:
            with suppress(sqlite3.Error):
                await conn.close()

    async def close(self) -> None:
        """Close the connections; safe to call more than once."""
        writer, readers = self._writer, self._readers
        self._writer = None
        self._readers = []
        async with self._write_lock:
            if writer is not None:
                # Cheap, and keeps query plans good as the tables grow.
                with suppress(sqlite3.Error):
                    await writer.execute("PRAGMA optimize")
            await self._close_all([*readers, *([writer] if writer is not None else [])])

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

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if not self._readers:
            raise StoreError("the story store is closed")
        n = min(range(len(self._readers)), key=self._in_flight.__getitem__)
        self._in_flight[n] += 1
        try:
            # execute_fetchall runs statement and fetch in one hop to the connection's thread,
            # so concurrent coroutines sharing a reader cannot interleave inside one statement.
            return list(await self._readers[n].execute_fetchall(sql, params))
        finally:
            self._in_flight[n] -= 1

    async def _read_for_ids(self, sql: str, story_ids: Iterable[int]) -> list[Any]:
        """Rows of `sql`, whose one parameter is these ids (each once) as a JSON list for
        json_each; no read at all for no ids."""
        ids = list(dict.fromkeys(story_ids))
        if not ids:
            return []
        return await self._read(sql, (json.dumps(ids),))

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            conn = self._writer
            if conn is None:
                raise StoreError("the story store is closed")
            async with immediate_transaction(conn):
                yield conn

    @staticmethod
    def _check_limit(limit: int, offset: int = 0) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if offset < 0:
            raise ValueError(f"offset must not be negative, got {offset}")

    async def _stories(self, sql: str, params: Sequence[Any]) -> list[Story]:
        return [_story_from_row(row) for row in await self._read(sql, params)]

    # -- writes --------------------------------------------------------------------------

    async def add(self, story: NewStory) -> AddResult:
        """Store one story unless it duplicates a stored one (same URL or fingerprint)."""
        (result,) = await self.add_many([story])
        return result

    @translate_sqlite_errors
    async def add_many(self, stories: Sequence[NewStory]) -> list[AddResult]:
        """Store stories in one all-or-nothing transaction; duplicates report the existing id."""
        if not stories:
            return []
        now = to_micros(self._clock())
        results: list[AddResult] = []
        link_rows: list[tuple[Any, ...]] = []
        feature_rows: list[tuple[int, int, str]] = []
        async with self._transaction() as conn:
            for story in stories:
                ingested = now if story.ingested_at is None else to_micros(story.ingested_at)
                url = clean_url(story.url)
                published = None if story.published_at is None else to_micros(story.published_at)
                inserted = list(
                    await conn.execute_fetchall(
                        _INSERT_STORY,
                        (
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
                        ),
                    )
                )
                if not inserted:
                    # Earlier stories of this batch are visible here, so in-batch duplicates
                    # resolve to the id they were just given.
                    found = list(
                        await conn.execute_fetchall(_FIND_DUPLICATE, (url, story.fingerprint))
                    )
                    if not found:
                        raise StoreError(
                            f"story {story.title!r} conflicts with a stored one that cannot "
                            "be found"
                        )
                    results.append(AddResult(story_id=int(found[0][0]), created=False))
                    continue
                story_id = int(inserted[0][0])
                results.append(AddResult(story_id=story_id, created=True))
                if story.features is not None:
                    feature_rows.append((story_id, story.features_version, story.features))
                for position, link in enumerate(story.links):
                    link_url = clean_url(link.url)
                    link_rows.append(
                        (
                            story_id,
                            position,
                            link.title,
                            link.snippet,
                            link_url,
                            link.outlet,
                            link.story_id,
                            link_url,
                            story_id,
                        )
                    )
            if feature_rows:
                # Inside this transaction only: the per-row trigger leaves term_df to the one
                # grouped upsert below (schema migration 4).
                await conn.execute("INSERT INTO term_df_deferred (flag) VALUES (1)")
                await conn.executemany(_INSERT_FEATURES, feature_rows)
                await conn.execute(_DF_ADD_BATCH, (json.dumps([row[0] for row in feature_rows]),))
                await conn.execute("DELETE FROM term_df_deferred")
            if link_rows:
                await conn.executemany(_INSERT_LINK, link_rows)
        return results

    @translate_sqlite_errors
    async def delete(self, story_id: int) -> bool:
        """Remove a story with its links and index entry; False if there was no such story."""
        async with self._transaction() as conn:
            cursor = await conn.execute("DELETE FROM stories WHERE id = ?", (story_id,))
            return cursor.rowcount > 0

    @translate_sqlite_errors
    async def set_meta(self, key: str, value: str) -> None:
        """Store value under key, replacing any previous value."""
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    @translate_sqlite_errors
    async def put_features(self, rows: Sequence[StoredFeatures]) -> None:
        """Store (or replace) stories' features; stories deleted meanwhile are skipped."""
        if not rows:
            return
        async with self._transaction() as conn:
            await conn.executemany(
                _PUT_FEATURES, [(row.story_id, row.version, row.features) for row in rows]
            )

    @translate_sqlite_errors
    async def replace_related(self, lists: Mapping[int, Sequence[RelatedRow]]) -> None:
        """Replace the related lists of some stories (best first), in one transaction.

        Also records when each list was computed. Entries pointing at stories deleted
        meanwhile are dropped; a deleted story's own list is simply not written.
        """
        if not lists:
            return
        now = to_micros(self._clock())
        rows = [
            (
                story_id,
                rank,
                row.related_id,
                row.score,
                ids_json(row.copies),
                names_json(row.outlets),
            )
            for story_id, entries in lists.items()
            for rank, row in enumerate(entries, start=1)
        ]
        ids = [(story_id,) for story_id in lists]
        async with self._transaction() as conn:
            await conn.executemany("DELETE FROM related WHERE story_id = ?", ids)
            await conn.executemany(_INSERT_RELATED, rows)
            await conn.executemany(
                "UPDATE story_features SET related_at = ? WHERE story_id = ?",
                [(now, story_id) for story_id in lists],
            )

    # -- reads ---------------------------------------------------------------------------

    @translate_sqlite_errors
    async def find_duplicate(self, url: str | None, fingerprint: str) -> int | None:
        """Id of a stored story with this URL or this fingerprint, if any."""
        rows = await self._read(_FIND_DUPLICATE, (clean_url(url), fingerprint))
        return int(rows[0][0]) if rows else None

    @translate_sqlite_errors
    async def ids_by_url(self, urls: Iterable[str | None]) -> dict[str, int]:
        """Ids of the stored stories under these URLs, keyed by the URL as given."""
        wanted = {clean: url for url in urls if url and (clean := clean_url(url)) is not None}
        found = await self._ids_of_clean_urls(list(wanted))
        return {wanted[url]: story_id for url, story_id in found.items()}

    async def _ids_of_clean_urls(self, urls: Sequence[str]) -> dict[str, int]:
        """Stored story ids by URL, for URLs already through clean_url(); one read, or none."""
        if not urls:
            return {}
        rows = await self._read(
            "SELECT url, id FROM stories WHERE url IN (SELECT value FROM json_each(?))",
            (json.dumps(list(urls), ensure_ascii=False),),
        )
        return {str(url): int(story_id) for url, story_id in rows}

    @translate_sqlite_errors
    async def get(self, story_id: int) -> Story | None:
        """The story with this id, links in stored order, or None."""
        stories = await self._stories(
            f"SELECT {_STORY_COLUMNS} FROM stories AS s WHERE s.id = ?", (story_id,)
        )
        return stories[0] if stories else None

    @translate_sqlite_errors
    async def get_by_url(self, url: str) -> Story | None:
        """The story stored under this URL, or None."""
        clean = clean_url(url)
        if clean is None:
            return None
        stories = await self._stories(
            f"SELECT {_STORY_COLUMNS} FROM stories AS s WHERE s.url = ?", (clean,)
        )
        return stories[0] if stories else None

    @translate_sqlite_errors
    async def latest(
        self, limit: int, *, older_than: int | None = None, newer_than: int | None = None
    ) -> list[Story]:
        """Newest-first page; older_than/newer_than are story ids used as keyset cursors."""
        self._check_limit(limit)
        where: list[str] = []
        params: list[Any] = []
        if older_than is not None:
            where.append(f"(s.sort_key, s.id) < {_CURSOR_KEY}")
            params.append(older_than)
        if newer_than is not None:
            where.append(f"(s.sort_key, s.id) > {_CURSOR_KEY}")
            params.append(newer_than)
        # Paging towards newer stories must take the ones nearest the cursor, so it walks the
        # index upwards and the page is flipped back to newest-first afterwards.
        upwards = newer_than is not None and older_than is None
        direction = "ASC" if upwards else "DESC"
        sql = (
            f"SELECT {_STORY_COLUMNS} FROM stories AS s "
            + (f"WHERE {' AND '.join(where)} " if where else "")
            + f"ORDER BY s.sort_key {direction}, s.id {direction} LIMIT ?"
        )
        stories = await self._stories(sql, [*params, limit])
        if not stories:
            await self._check_cursors(older_than, newer_than)
        return stories[::-1] if upwards else stories

    async def _check_cursors(self, *cursors: int | None) -> None:
        # An empty page is ambiguous: the end of the list, or a cursor that no longer exists.
        for cursor in cursors:
            if cursor is not None and not await self._read(
                "SELECT 1 FROM stories WHERE id = ?", (cursor,)
            ):
                raise UnknownStoryError(cursor)

    async def _without_frequent(self, words: list[str]) -> list[str]:
        """words less those in over FREQUENT_TERM_SHARE of the stories, unless none is left.

        Each word's share is counted once, over the newest PRUNE_SAMPLE stories, and cached.
        """
        (kept,) = await self._without_frequent_many([words])
        return kept

    async def _without_frequent_many(
        self, lists: Sequence[list[str]], limit: float = FREQUENT_TERM_SHARE
    ) -> list[list[str]]:
        """_without_frequent() of each list, in at most two reads for lists with 2+ words;
        words in over `limit` of the stories are the frequent ones."""
        if all(len(words) < 2 for words in lists):
            return list(lists)
        rows = await self._read(
            "SELECT (SELECT value FROM counters WHERE name = 'stories'), max(id) FROM stories"
        )
        stories, newest = int(rows[0][0]), int(rows[0][1] or 0)
        if stories < PRUNE_MIN_STORIES:
            return list(lists)
        cache = self._frequent_terms
        cache.rebase(stories)
        # This call's shares, kept apart from the bounded cache: putting many new words
        # there could evict some of this call's own before they are used.
        shares: dict[str, float] = {}
        missing: list[str] = []
        for words in lists:
            if len(words) < 2:
                continue
            for key in (word.casefold() for word in words):
                if key in shares:
                    continue
                known = cache.values.get(key)
                if known is None:
                    missing.append(key)
                    shares[key] = 0.0
                else:
                    shares[key] = known
        low = newest - PRUNE_SAMPLE
        # Ids are dense but for deleted stories, and counting the stories in the range would
        # read 5000 rows with their bodies (6 ms). A gap only lowers a share, which keeps a
        # word that might have been dropped: never a worse answer.
        sample = min(stories, PRUNE_SAMPLE)
        if missing:
            rows = await self._read(
                _COUNT_RECENT_MATCHES,
                (json.dumps([fts.any_of([key]) for key in missing], ensure_ascii=False), low),
            )
            for position, count in rows:
                key = missing[int(position)]
                shares[key] = int(count) / sample
                cache.put(key, shares[key])
        kept: list[list[str]] = []
        for words in lists:
            rare = [word for word in words if shares.get(word.casefold(), 0.0) <= limit]
            kept.append(words if len(words) < 2 else rare or words)
        return kept

    def _strong_of(self, words: Sequence[str], *, every: bool) -> str | None:
        """_strong(), but None when _without_frequent() found every word frequent."""
        shares = self._frequent_terms.values
        if (
            not every
            and len(words) > 1
            and all(shares.get(w.casefold(), 0.0) > FREQUENT_TERM_SHARE for w in words)
        ):
            # Title matches and pairs of such words fill much of the window (half of it for
            # a word in 68% of the stories): finding them would cost more than it saves.
            return None
        return _strong(words, every=every)

    async def _ranked(
        self,
        words: Sequence[str],
        limit: int,
        offset: int,
        exclude_id: int | None,
        *,
        every: bool,
    ) -> list[SearchHit]:
        expression = fts.all_of(words) if every else fts.any_of(words)
        strong = self._strong_of(words, every=every)
        rows = await self._read(
            _SEARCH_EXACT if strong is None else _SEARCH,
            (expression, strong, exclude_id, RANK_WINDOW, limit, offset),
        )
        return [
            SearchHit(story=_story_from_row(row), score=float(row[_STORY_COLUMN_COUNT]))
            for row in rows
        ]

    @translate_sqlite_errors
    async def search(self, query: str, limit: int = 10, offset: int = 0) -> list[SearchHit]:
        """Best of the newest RANK_WINDOW matches first; all words must match, else any word.

        Matches with a query word in the title rank first (see _SEARCH).
        """
        self._check_limit(limit, offset)
        terms = fts.query_terms(query)
        hits = await self._ranked(terms, limit, offset, None, every=True)
        if hits or len(terms) == 1:
            return hits
        # An empty page past the first may just be the end of the all-words matches.
        if offset and await self._read(
            "SELECT 1 FROM stories_fts WHERE stories_fts MATCH ? LIMIT 1", (fts.all_of(terms),)
        ):
            return []
        words = await self._without_frequent(terms)
        return await self._ranked(words, limit, offset, None, every=False)

    @translate_sqlite_errors
    async def search_any(
        self, terms: Sequence[str], limit: int = 10, *, exclude_id: int | None = None
    ) -> list[SearchHit]:
        """Stories matching any term, best of the newest RANK_WINDOW first; [] if none usable.

        Matches with a term in the title, or two of up to four terms, rank first.
        """
        self._check_limit(limit)
        words = fts.tokenize(" ".join(terms))[: fts.MAX_TERMS]
        if not words:
            return []
        words = await self._without_frequent(words)
        return await self._ranked(words, limit, 0, exclude_id, every=False)

    @translate_sqlite_errors
    async def count_search(self, query: str) -> int:
        """How many stories search() would page through, capped at SEARCH_COUNT_CAP."""
        terms = fts.query_terms(query)
        rows = await self._read(_COUNT_MATCHES, (fts.all_of(terms), SEARCH_COUNT_CAP))
        count = int(rows[0][0])
        if count or len(terms) == 1:
            return count
        any_word = fts.any_of(await self._without_frequent(terms))
        rows = await self._read(_COUNT_MATCHES, (any_word, SEARCH_COUNT_CAP))
        return int(rows[0][0])

    @translate_sqlite_errors
    async def count(self) -> int:
        """Number of stored stories."""
        rows = await self._read("SELECT value FROM counters WHERE name = 'stories'")
        return int(rows[0][0])

    @translate_sqlite_errors
    async def compact_search_index(self) -> None:
        """Merge the FTS5 index's segments into one, a bounded step per transaction.

        Each write transaction adds a segment and a query looks its words up in every one:
        after a 10k seed (7 segments) related-candidate searches took 2.34 ms, in one
        segment 2.14 (22 segments before schema v5: 2.75). Merging the 10k bench corpus
        took 0.36 s; in steps of _MERGE_PAGES other writers (a running bot) wait at most
        about 0.1 s at a time, where FTS5's one-shot 'optimize' holds the lock throughout.
        """
        while True:
            async with self._transaction() as conn:
                before = conn.total_changes
                # A negative page count merges segments of any level, down to one.
                await conn.execute(
                    "INSERT INTO stories_fts (stories_fts, rank) VALUES ('merge', ?)",
                    (-_MERGE_PAGES,),
                )
                # FTS5 counts a 'merge' that did any work as two or more changes.
                if conn.total_changes - before < 2:
                    return

    @translate_sqlite_errors
    async def stats(self) -> StoreStats:
        """Counts, the last ingest time and the database size."""
        rows = await self._read(
            """
            SELECT (SELECT value FROM counters WHERE name = 'stories'),
                   (SELECT count(*) FROM source_counts),
                   (SELECT value FROM counters WHERE name = 'links'),
                   (SELECT ingested_at FROM stories ORDER BY id DESC LIMIT 1),
                   (SELECT page_count FROM pragma_page_count())
                 * (SELECT page_size FROM pragma_page_size())
            """
        )
        stories, sources, links, last_ingest, size = rows[0]
        return StoreStats(
            stories=int(stories),
            sources=int(sources),
            links=int(links),
            last_ingest=None if last_ingest is None else from_micros(int(last_ingest)),
            database_bytes=int(size),
        )

    @translate_sqlite_errors
    async def claim_run(self, name: str, every: timedelta) -> bool:
        """Claim scheduled job `name` for now: True for exactly one caller per `every`.

        Atomic across processes sharing the file: BEGIN IMMEDIATE serialises writers, so the
        read and the update below cannot interleave with another claimer's.
        """
        now = as_utc(self._clock())
        key = f"job.{name}.last_run"
        async with self._transaction() as conn:
            rows = list(await conn.execute_fetchall("SELECT value FROM meta WHERE key = ?", (key,)))
            if rows and datetime.fromisoformat(str(rows[0][0])) > now - every:
                return False
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, now.isoformat()),
            )
        return True

    @translate_sqlite_errors
    async def get_meta(self, key: str) -> str | None:
        """The value stored under key, or None."""
        rows = await self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    # -- related stories -----------------------------------------------------------------

    @translate_sqlite_errors
    async def search_any_ids(
        self, terms: Sequence[str], limit: int = 50, *, exclude_id: int | None = None
    ) -> list[int]:
        """Ids of search_any()'s hits, best first, without reading the stories."""
        (ids,) = await self.search_any_ids_many([(terms, exclude_id)], limit)
        return ids

    @translate_sqlite_errors
    async def search_any_ids_many(
        self, queries: Sequence[tuple[Sequence[str], int | None]], limit: int = 50
    ) -> list[list[int]]:
        """search_any_ids(terms, limit, exclude_id=...) for each (terms, exclude_id), in order.

        The same answers as one call each; the frequent-word check of all of them is one
        read instead of one per search. The searches themselves (about 1.5 ms each at 10k
        stories, mostly FTS5 scoring the RANK_WINDOW rows with bm25) cost the same. Words in
        over RELATED_TERM_SHARE of the stories are dropped while rarer ones remain.
        """
        self._check_limit(limit)
        words = await self._without_frequent_many(
            [fts.tokenize(" ".join(terms))[: fts.MAX_TERMS] for terms, _ in queries],
            RELATED_TERM_SHARE,
        )
        found: list[list[int]] = []
        for kept, (_, exclude_id) in zip(words, queries, strict=True):
            if not kept:
                found.append([])
                continue
            rows = await self._read(_SEARCH_IDS, (fts.any_of(kept), exclude_id, RANK_WINDOW, limit))
            found.append([int(row[0]) for row in rows])
        return found

    @translate_sqlite_errors
    async def get_many(self, story_ids: Iterable[int]) -> dict[int, Story]:
        """The stories with these ids that exist, by id, read in one query."""
        rows = await self._read_for_ids(
            f"SELECT {_STORY_COLUMNS} FROM stories AS s "
            "WHERE s.id IN (SELECT value FROM json_each(?))",
            story_ids,
        )
        return {story.id: story for story in map(_story_from_row, rows)}

    @translate_sqlite_errors
    async def features_of(self, story_ids: Iterable[int]) -> dict[int, StoredFeatures]:
        """Stored features of these stories (those that have any), in one query."""
        rows = await self._read_for_ids(
            "SELECT f.story_id, f.version, f.features, f.related_at "
            f"FROM {_IDS_JOIN} story_features AS f ON f.story_id = j.value",
            story_ids,
        )
        # The ranking reads ~1,600 rows a round, so the per-row Python work shows: the
        # columns' affinities already give int and str, and related_at is written once per
        # ranking round, so many rows share a value: each is converted once.
        moments: dict[int, datetime] = {}
        found: dict[int, StoredFeatures] = {}
        for story_id, version, features, related_at in rows:
            moment = None
            if related_at is not None:
                moment = moments.get(related_at)
                if moment is None:
                    moment = moments[related_at] = from_micros(related_at)
            found[story_id] = StoredFeatures(story_id, version, features, moment)
        return found

    @translate_sqlite_errors
    async def feature_versions(self, story_ids: Iterable[int]) -> dict[int, int]:
        """The version of each of these stories' stored features (those that have any).

        What a caller that kept features parsed needs to know they still hold, without
        reading the JSON (several KB a story) again.
        """
        rows = await self._read_for_ids(
            f"SELECT f.story_id, f.version FROM {_IDS_JOIN} story_features AS f "
            "ON f.story_id = j.value",
            story_ids,
        )
        return {int(story_id): int(version) for story_id, version in rows}

    @translate_sqlite_errors
    async def missing_features(self, version: int, limit: int) -> list[int]:
        """Newest stories whose features are missing or were written by another version."""
        self._check_limit(limit)
        rows = await self._read(
            """
            SELECT s.id FROM stories AS s
              LEFT JOIN story_features AS f ON f.story_id = s.id
             WHERE f.story_id IS NULL OR f.version != ?
             ORDER BY s.id DESC LIMIT ?
            """,
            (version, limit),
        )
        return [int(row[0]) for row in rows]

    @translate_sqlite_errors
    async def corpus_counts(self, keys: Iterable[str]) -> CorpusCounts:
        """Document frequencies of these feature keys, and the number of stories counted."""
        wanted = list(dict.fromkeys(keys))
        # One statement, so the count and the frequencies come from one snapshot.
        rows = await self._read(_CORPUS_COUNTS, (json.dumps(wanted, ensure_ascii=False),))
        # The columns' affinities give str and int; a round reads ~20,000 keys.
        df = dict(rows)
        docs = df.pop(None)
        return CorpusCounts(int(docs), df)

    @translate_sqlite_errors
    async def recent_ids(
        self, since: datetime, limit: int, *, stale_before: datetime | None = None
    ) -> list[int]:
        """Stories ingested at or after `since` whose related list is older than
        `stale_before` (or missing), least recently computed first, at most `limit`."""
        self._check_limit(limit)
        stale = None if stale_before is None else to_micros(stale_before)
        rows = await self._read(
            """
            SELECT s.id FROM stories AS s
              LEFT JOIN story_features AS f ON f.story_id = s.id
             WHERE s.ingested_at >= ?1
               AND (?2 IS NULL OR f.related_at IS NULL OR f.related_at < ?2)
             ORDER BY coalesce(f.related_at, 0), s.id DESC
             LIMIT ?3
            """,
            (to_micros(since), stale, limit),
        )
        return [int(row[0]) for row in rows]

    @translate_sqlite_errors
    async def related_rows(self, story_ids: Iterable[int]) -> dict[int, list[RelatedRow]]:
        """The stored related lists of these stories, best first, without the stories."""
        rows = await self._read_for_ids(
            f"""
            SELECT r.story_id, r.related_id, {_RELATED_COLUMNS} FROM related AS r
             WHERE r.story_id IN (SELECT value FROM json_each(?))
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

    @translate_sqlite_errors
    async def related_of(self, story_id: int, limit: int = 10) -> list[RelatedStory]:
        """A story's stored related list, best first, with the related stories."""
        self._check_limit(limit)
        rows = await self._read(
            f"""
            SELECT {_STORY_COLUMNS}, {_RELATED_COLUMNS}
              FROM related AS r JOIN stories AS s ON s.id = r.related_id
             WHERE r.story_id = ?
             ORDER BY r.rank LIMIT ?
            """,
            (story_id, limit),
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

    @translate_sqlite_errors
    async def related_computed_at(self, story_id: int) -> datetime | None:
        """When the story's related list was last computed; None if never."""
        rows = await self._read(
            "SELECT related_at FROM story_features WHERE story_id = ?", (story_id,)
        )
        return None if not rows or rows[0][0] is None else from_micros(int(rows[0][0]))

    @translate_sqlite_errors
    async def match_links(
        self, urls: Iterable[str], titles: Iterable[str]
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Stored story ids by URL, and by title (case-folded keys), for some links."""
        url_list = [u for u in dict.fromkeys(clean_url(u) for u in urls) if u]
        title_list = [t for t in dict.fromkeys(" ".join(t.split()) for t in titles) if t]
        by_url = await self._ids_of_clean_urls(url_list)
        by_title: dict[str, int] = {}
        if title_list:
            # The oldest story wins a shared title: it is the one the others were copied from.
            rows = await self._read(
                "SELECT title, min(id) FROM stories WHERE title COLLATE NOCASE IN "
                "(SELECT value FROM json_each(?)) GROUP BY title COLLATE NOCASE",
                (json.dumps(title_list, ensure_ascii=False),),
            )
            by_title = {str(title).casefold(): int(found) for title, found in rows}
        return by_url, by_title

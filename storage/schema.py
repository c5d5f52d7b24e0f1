"""Ordered schema migrations, applied at startup and tracked in PRAGMA user_version.

To change the schema, append a `Migration` with the next version number to `MIGRATIONS`;
never edit one that has shipped, because databases in the field have already run it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Final

import aiosqlite

from storage.errors import QueryError, StoreError, translating


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: statements run in a single transaction, then user_version = version."""

    version: int
    description: str
    # One statement per item: executescript() would commit behind our back, and splitting a
    # script on ';' breaks trigger bodies.
    statements: tuple[str, ...]


_V1 = Migration(
    version=1,
    description="stories, links, FTS5 index, counters, meta",
    statements=(
        # Times are integer microseconds since the Unix epoch, UTC: they sort and compare as
        # integers and round-trip datetimes exactly. AUTOINCREMENT stops a deleted story's id
        # from being reused, because ids live on in Telegram callback data.
        """
        CREATE TABLE stories (
            id             INTEGER PRIMARY KEY AUTOINCREMENT,
            title          TEXT    NOT NULL,
            url            TEXT    UNIQUE,
            source         TEXT,
            language       TEXT    NOT NULL,
            published_at   INTEGER,
            ingested_at    INTEGER NOT NULL,
            sort_key       INTEGER NOT NULL,
            body           TEXT    NOT NULL,
            cleaned_text   TEXT    NOT NULL,
            summary        TEXT    NOT NULL CHECK (json_valid(summary)),
            algorithm      TEXT    NOT NULL,
            sentence_count INTEGER NOT NULL,
            fingerprint    TEXT    NOT NULL UNIQUE,
            CHECK (sort_key = coalesce(published_at, ingested_at))
        )
        """,
        "CREATE INDEX stories_latest ON stories (sort_key DESC, id DESC)",
        """
        CREATE TABLE links (
            story_id        INTEGER NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
            position        INTEGER NOT NULL,
            title           TEXT    NOT NULL,
            snippet         TEXT    NOT NULL,
            url             TEXT,
            outlet          TEXT,
            linked_story_id INTEGER REFERENCES stories (id) ON DELETE SET NULL,
            PRIMARY KEY (story_id, position)
        ) WITHOUT ROWID
        """,
        # Without this, deleting any story scans every link to apply ON DELETE SET NULL.
        "CREATE INDEX links_linked_story ON links (linked_story_id)",
        """
        CREATE VIRTUAL TABLE stories_fts USING fts5 (
            title, cleaned_text,
            content = 'stories', content_rowid = 'id',
            tokenize = 'porter unicode61 remove_diacritics 2'
        )
        """,
        """
        CREATE TRIGGER stories_fts_insert AFTER INSERT ON stories BEGIN
            INSERT INTO stories_fts (rowid, title, cleaned_text)
            VALUES (new.id, new.title, new.cleaned_text);
        END
        """,
        """
        CREATE TRIGGER stories_fts_delete AFTER DELETE ON stories BEGIN
            INSERT INTO stories_fts (stories_fts, rowid, title, cleaned_text)
            VALUES ('delete', old.id, old.title, old.cleaned_text);
        END
        """,
        """
        CREATE TRIGGER stories_fts_update AFTER UPDATE OF title, cleaned_text ON stories BEGIN
            INSERT INTO stories_fts (stories_fts, rowid, title, cleaned_text)
            VALUES ('delete', old.id, old.title, old.cleaned_text);
            INSERT INTO stories_fts (rowid, title, cleaned_text)
            VALUES (new.id, new.title, new.cleaned_text);
        END
        """,
        # count(*) walks a whole index; these keep stats() and count() O(1) at any size.
        """
        CREATE TABLE counters (
            name  TEXT    PRIMARY KEY,
            value INTEGER NOT NULL
        ) WITHOUT ROWID
        """,
        "INSERT INTO counters (name, value) VALUES ('stories', 0), ('links', 0)",
        """
        CREATE TABLE source_counts (
            source  TEXT    PRIMARY KEY,
            stories INTEGER NOT NULL
        ) WITHOUT ROWID
        """,
        """
        CREATE TRIGGER stories_count_insert AFTER INSERT ON stories BEGIN
            UPDATE counters SET value = value + 1 WHERE name = 'stories';
            INSERT INTO source_counts (source, stories)
            SELECT new.source, 1 WHERE new.source IS NOT NULL
            ON CONFLICT (source) DO UPDATE SET stories = stories + 1;
        END
        """,
        """
        CREATE TRIGGER stories_count_delete AFTER DELETE ON stories BEGIN
            UPDATE counters SET value = value - 1 WHERE name = 'stories';
            UPDATE source_counts SET stories = stories - 1 WHERE source = old.source;
            DELETE FROM source_counts WHERE source = old.source AND stories <= 0;
        END
        """,
        """
        CREATE TRIGGER stories_count_update AFTER UPDATE OF source ON stories
        WHEN old.source IS NOT new.source BEGIN
            UPDATE source_counts SET stories = stories - 1 WHERE source = old.source;
            DELETE FROM source_counts WHERE source = old.source AND stories <= 0;
            INSERT INTO source_counts (source, stories)
            SELECT new.source, 1 WHERE new.source IS NOT NULL
            ON CONFLICT (source) DO UPDATE SET stories = stories + 1;
        END
        """,
        """
        CREATE TRIGGER links_count_insert AFTER INSERT ON links BEGIN
            UPDATE counters SET value = value + 1 WHERE name = 'links';
        END
        """,
        """
        CREATE TRIGGER links_count_delete AFTER DELETE ON links BEGIN
            UPDATE counters SET value = value - 1 WHERE name = 'links';
        END
        """,
        """
        CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID
        """,
    ),
)

_FEATURE_KEYS = """
    SELECT key FROM json_each({row}.features, '$.terms')
    UNION ALL
    SELECT key FROM json_each({row}.features, '$.entities')
"""


def _df_add(row: str) -> str:
    # "WHERE true" keeps the parser from reading ON CONFLICT as a join constraint.
    return (
        f"INSERT INTO term_df (term, df) SELECT key, 1 FROM ({_FEATURE_KEYS.format(row=row)}) "
        "WHERE true ON CONFLICT (term) DO UPDATE SET df = df + 1;"
    )


def _df_remove(row: str) -> str:
    keys = _FEATURE_KEYS.format(row=row)
    return (
        f"UPDATE term_df SET df = df - 1 WHERE term IN ({keys});\n"
        f"DELETE FROM term_df WHERE df <= 0 AND term IN ({keys});"
    )


_V2 = Migration(
    version=2,
    description="related stories: per-story features, document frequencies, related lists",
    statements=(
        # Features (summarize.related.DocFeatures as JSON, without the key) of each story.
        # Stories stored by version-1 code have no row until the refresh job computes one.
        # related_at: when the story's related list was last computed (NULL: never).
        """
        CREATE TABLE story_features (
            story_id   INTEGER PRIMARY KEY REFERENCES stories (id) ON DELETE CASCADE,
            version    INTEGER NOT NULL,
            features   TEXT    NOT NULL CHECK (json_valid(features)),
            related_at INTEGER
        )
        """,
        # Document frequency of every term and entity key over the stories with features,
        # kept by the triggers below, so IDF needs one indexed lookup per key at any size.
        """
        CREATE TABLE term_df (
            term TEXT    PRIMARY KEY,
            df   INTEGER NOT NULL
        ) WITHOUT ROWID
        """,
        "INSERT INTO counters (name, value) VALUES ('feature_docs', 0)",
        f"""
        CREATE TRIGGER story_features_insert AFTER INSERT ON story_features BEGIN
            UPDATE counters SET value = value + 1 WHERE name = 'feature_docs';
            {_df_add("new")}
        END
        """,
        # Also fires on the cascade when a story is deleted.
        f"""
        CREATE TRIGGER story_features_delete AFTER DELETE ON story_features BEGIN
            UPDATE counters SET value = value - 1 WHERE name = 'feature_docs';
            {_df_remove("old")}
        END
        """,
        f"""
        CREATE TRIGGER story_features_update AFTER UPDATE OF features ON story_features BEGIN
            {_df_remove("old")}
            {_df_add("new")}
        END
        """,
        # A story's precomputed related list, best first. copies: ids of other outlets'
        # copies folded into the entry; outlets: their outlets, the entry's own first.
        """
        CREATE TABLE related (
            story_id   INTEGER NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
            rank       INTEGER NOT NULL,
            related_id INTEGER NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
            score      REAL    NOT NULL,
            copies     TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(copies)),
            outlets    TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(outlets)),
            PRIMARY KEY (story_id, rank)
        ) WITHOUT ROWID
        """,
        # Deleting a story must not scan every list for rows pointing at it.
        "CREATE INDEX related_related_id ON related (related_id)",
        # The refresh job's "stories ingested in the last days".
        "CREATE INDEX stories_ingested ON stories (ingested_at)",
        # /related matches "Similar News" items to stored stories by title.
        "CREATE INDEX stories_title ON stories (title COLLATE NOCASE)",
    ),
)

_V3 = Migration(
    version=3,
    description="reach: chats (time zone, daily digest), subscriptions",
    statements=(
        # digest_minute: the daily digest time, minutes after local midnight; NULL: new
        # stories are pushed as they arrive instead. digest_after: a story id; the next
        # digest holds the matching stories after it. last_digest_on: the chat's local date
        # of its last digest, YYYY-MM-DD (sorts as text).
        """
        CREATE TABLE chats (
            chat_id        INTEGER PRIMARY KEY,
            timezone       TEXT    NOT NULL DEFAULT 'UTC',
            digest_minute  INTEGER CHECK (digest_minute BETWEEN 0 AND 1439),
            digest_after   INTEGER NOT NULL DEFAULT 0,
            last_digest_on TEXT,
            created_at     INTEGER NOT NULL
        )
        """,
        # The digest job asks, per time zone, for the chats whose time has come.
        """
        CREATE INDEX chats_digest ON chats (timezone, digest_minute)
        WHERE digest_minute IS NOT NULL
        """,
        # query: '' for every new story, else lower-case words that must all match.
        """
        CREATE TABLE subscriptions (
            chat_id    INTEGER NOT NULL REFERENCES chats (chat_id) ON DELETE CASCADE,
            query      TEXT    NOT NULL,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (chat_id, query)
        ) WITHOUT ROWID
        """,
    ),
)

# Version 2's insert trigger upserted term_df once per key of each row: about 300 keys a
# story, so 77k single-row upserts per 256-story ingest batch, 0.35 of add_many's 0.97 ms a
# story. add_many now adds a whole batch's keys in one grouped upsert
# (storage.repository._DF_ADD_BATCH). While it inserts the batch's features it holds a row
# in term_df_deferred, which turns the per-row count off; the row never outlives that write
# transaction, so every other insert (put_features, older code sharing the file) is still
# counted row by row. Updates and deletes keep their version-2 triggers.
_V4 = Migration(
    version=4,
    description="term frequencies: one grouped upsert per add_many batch",
    statements=(
        """
        CREATE TABLE term_df_deferred (
            flag INTEGER PRIMARY KEY CHECK (flag = 1)
        )
        """,
        "DROP TRIGGER story_features_insert",
        """
        CREATE TRIGGER story_features_insert AFTER INSERT ON story_features BEGIN
            UPDATE counters SET value = value + 1 WHERE name = 'feature_docs';
        END
        """,
        f"""
        CREATE TRIGGER story_features_insert_df AFTER INSERT ON story_features
        WHEN NOT EXISTS (SELECT 1 FROM term_df_deferred) BEGIN
            {_df_add("new")}
        END
        """,
    ),
)

# FTS5 adds a b-tree segment per write transaction and merges them in the background a
# little at a time, merging a level all at once only when it holds `crisismerge` segments
# (16 by default). Every query looks each of its words up in every segment, so an ingest
# that writes faster than the background merge leaves searches reading ~20 segments. At 4,
# a level never holds more than 3: after a 10k seed's batches the index has 7 segments
# instead of 22, and its related-candidate searches take 2.34 ms instead of 2.75 (2.14 with
# one segment, which only a full 'optimize' gives), add_many about the same.
FTS_CRISISMERGE: Final = 4
_V5 = Migration(
    version=5,
    description="full-text index: merge segments sooner (crisismerge)",
    statements=(
        f"INSERT INTO stories_fts (stories_fts, rank) VALUES ('crisismerge', {FTS_CRISISMERGE})",
    ),
)

MIGRATIONS: tuple[Migration, ...] = (_V1, _V2, _V3, _V4, _V5)
HEAD_VERSION = MIGRATIONS[-1].version


def _check_order(migrations: Sequence[Migration]) -> None:
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise StoreError(
                f"migration versions must run 1, 2, 3...; found {migration.version} "
                f"where {expected} was expected"
            )


async def user_version(conn: aiosqlite.Connection) -> int:
    """The schema version recorded in the database file."""
    rows = list(await conn.execute_fetchall("PRAGMA user_version"))
    return int(rows[0][0])


def _sqlite_error(name: str, exc: BaseException) -> StoreError:
    # Sanitised queries should never trip this; if one does, it is still the query's fault,
    # not a broken store.
    if "fts5: syntax error" in str(exc):
        return QueryError(f"the search query could not be used: {exc}")
    return StoreError(f"{name} failed: {exc}")


# Re-raises sqlite3 errors as StoreError (QueryError for an unusable search) so callers of
# the SQLite stores never see sqlite3 exceptions.
translate_sqlite_errors = translating((sqlite3.Error,), _sqlite_error)


async def rollback(conn: aiosqlite.Connection) -> None:
    """Roll back the open transaction, if any; never raises a driver error."""
    with suppress(sqlite3.Error):
        await conn.execute("ROLLBACK")


@asynccontextmanager
async def immediate_transaction(conn: aiosqlite.Connection) -> AsyncIterator[aiosqlite.Connection]:
    """BEGIN IMMEDIATE ... COMMIT on conn, rolled back on any error or cancellation.

    The caller serialises its own coroutines' transactions (one lock per connection).
    """
    try:
        await conn.execute("BEGIN IMMEDIATE")
        yield conn
        await conn.execute("COMMIT")
    except BaseException:
        # Shielded and unconditional: a cancelled await does not stop the statement already
        # queued on the connection's thread, and in_transaction cannot be trusted until it
        # has run. The queue is FIFO, so this ROLLBACK runs after it and before any later
        # BEGIN.
        await asyncio.shield(rollback(conn))
        raise


async def migrate(conn: aiosqlite.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Apply every migration newer than the database's version; return the resulting version."""
    _check_order(migrations)
    head = migrations[-1].version if migrations else 0
    try:
        for migration in migrations:
            # Re-read inside the write lock so two processes opening one file at once
            # cannot both apply the same step.
            try:
                await conn.execute("BEGIN IMMEDIATE")
                current = await user_version(conn)
                if current > head:
                    raise StoreError(
                        f"database schema is version {current} but this code only knows up to "
                        f"{head}; refusing to open it with older code"
                    )
                if current >= migration.version:
                    await conn.execute("ROLLBACK")
                    continue
                for statement in migration.statements:
                    await conn.execute(statement)
                # PRAGMA cannot take a bound parameter; the version is an int from our own code.
                await conn.execute(f"PRAGMA user_version = {int(migration.version)}")
                await conn.execute("COMMIT")
            except BaseException:
                await asyncio.shield(rollback(conn))
                raise
        current = await user_version(conn)
        if current > head:
            raise StoreError(
                f"database schema is version {current} but this code only knows up to {head}; "
                "refusing to open it with older code"
            )
        return current
    except sqlite3.Error as exc:
        raise StoreError(f"schema migration failed: {exc}") from exc

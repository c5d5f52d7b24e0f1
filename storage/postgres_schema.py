"""Ordered PostgreSQL schema migrations, applied at open and tracked in a schema_version table.

Versions 1-3 mirror storage.schema (the SQLite migrations) step for step, so "version 3" means
the same tables on both backends; version 4 changes only how PostgreSQL keeps term_df (see
_V4), so the tables still match SQLite's version 3. The DDL is PostgreSQL's own:

- times are ``timestamptz`` (microsecond precision, so datetimes round-trip exactly);
- ids come from identity columns, whose sequences never hand out a deleted story's id again;
- full-text search uses a stored, generated ``tsvector`` column (title weight A, text weight
  D) with a GIN index instead of an FTS5 table and triggers;
- story and link counts are plain ``count(*)`` queries instead of trigger-kept counter rows, so
  concurrent writers in several workers never queue on one hot counter row (only writers of
  related-story features share one, from migration 4).

To change the schema, append a `PgMigration` with the next version number; never edit one
that has shipped. Each step runs in one transaction under an advisory lock, so several workers
opening one database at once apply it exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from storage.errors import StoreError

# A plain connection or one borrowed from a pool.
PgConnection = asyncpg.Connection | PoolConnectionProxy

__all__ = ["HEAD_VERSION", "PG_MIGRATIONS", "PgMigration", "migrate", "schema_version"]

# Any constant works; it only has to be the same for every process migrating this schema.
_MIGRATION_LOCK: Final = 7_243_501_117

# The text search configuration used for both the index and the queries.
TS_CONFIG: Final = "english"


@dataclass(frozen=True, slots=True)
class PgMigration:
    """One schema step: statements run in one transaction, then its version is recorded."""

    version: int
    description: str
    statements: tuple[str, ...]


_V1 = PgMigration(
    version=1,
    description="stories, links, full-text search, meta",
    statements=(
        f"""
        CREATE TABLE stories (
            id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            title          text        NOT NULL,
            url            text        UNIQUE,
            source         text,
            language       text        NOT NULL,
            published_at   timestamptz,
            ingested_at    timestamptz NOT NULL,
            sort_key       timestamptz NOT NULL,
            body           text        NOT NULL,
            cleaned_text   text        NOT NULL,
            summary        jsonb       NOT NULL CHECK (jsonb_typeof(summary) = 'array'),
            algorithm      text        NOT NULL,
            sentence_count integer     NOT NULL,
            fingerprint    text        NOT NULL UNIQUE,
            search_vector  tsvector    GENERATED ALWAYS AS (
                setweight(to_tsvector('{TS_CONFIG}', title), 'A')
                || setweight(to_tsvector('{TS_CONFIG}', cleaned_text), 'D')
            ) STORED,
            CHECK (sort_key = coalesce(published_at, ingested_at))
        )
        """,
        "CREATE INDEX stories_latest ON stories (sort_key DESC, id DESC)",
        "CREATE INDEX stories_search ON stories USING gin (search_vector)",
        """
        CREATE TABLE links (
            story_id        bigint  NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
            position        integer NOT NULL,
            title           text    NOT NULL,
            snippet         text    NOT NULL,
            url             text,
            outlet          text,
            linked_story_id bigint  REFERENCES stories (id) ON DELETE SET NULL,
            PRIMARY KEY (story_id, position)
        )
        """,
        # Without this, deleting any story scans every link to apply ON DELETE SET NULL.
        "CREATE INDEX links_linked_story ON links (linked_story_id)",
        """
        CREATE TABLE meta (
            key   text PRIMARY KEY,
            value text NOT NULL
        )
        """,
    ),
)

_V2 = PgMigration(
    version=2,
    description="related stories: per-story features, document frequencies, related lists",
    statements=(
        """
        CREATE TABLE story_features (
            story_id   bigint  PRIMARY KEY REFERENCES stories (id) ON DELETE CASCADE,
            version    integer NOT NULL,
            features   jsonb   NOT NULL,
            related_at timestamptz
        )
        """,
        """
        CREATE TABLE term_df (
            term text    PRIMARY KEY,
            df   integer NOT NULL
        )
        """,
        # Document frequencies follow story_features, as the SQLite triggers do.
        """
        CREATE FUNCTION feature_keys(features jsonb) RETURNS SETOF text
        LANGUAGE sql IMMUTABLE AS $$
            SELECT jsonb_object_keys(coalesce(features -> 'terms', '{}'::jsonb))
            UNION ALL
            SELECT jsonb_object_keys(coalesce(features -> 'entities', '{}'::jsonb))
        $$
        """,
        """
        CREATE FUNCTION story_features_df() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                UPDATE term_df SET df = df - 1 WHERE term IN (SELECT feature_keys(OLD.features));
                DELETE FROM term_df WHERE df <= 0;
            END IF;
            IF TG_OP IN ('UPDATE', 'INSERT') THEN
                INSERT INTO term_df (term, df)
                SELECT key, 1 FROM feature_keys(NEW.features) AS key
                ON CONFLICT (term) DO UPDATE SET df = term_df.df + 1;
            END IF;
            RETURN NULL;
        END
        $$
        """,
        """
        CREATE TRIGGER story_features_df_insert_delete
        AFTER INSERT OR DELETE ON story_features
        FOR EACH ROW EXECUTE FUNCTION story_features_df()
        """,
        """
        CREATE TRIGGER story_features_df_update
        AFTER UPDATE OF features ON story_features
        FOR EACH ROW EXECUTE FUNCTION story_features_df()
        """,
        """
        CREATE TABLE related (
            story_id   bigint           NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
            rank       integer          NOT NULL,
            related_id bigint           NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
            score      double precision NOT NULL,
            copies     jsonb            NOT NULL DEFAULT '[]',
            outlets    jsonb            NOT NULL DEFAULT '[]',
            PRIMARY KEY (story_id, rank)
        )
        """,
        "CREATE INDEX related_related_id ON related (related_id)",
        "CREATE INDEX stories_ingested ON stories (ingested_at)",
        "CREATE INDEX stories_title ON stories (lower(title))",
    ),
)

_V3 = PgMigration(
    version=3,
    description="reach: chats (time zone, daily digest), subscriptions",
    statements=(
        """
        CREATE TABLE chats (
            chat_id        bigint      PRIMARY KEY,
            timezone       text        NOT NULL DEFAULT 'UTC',
            digest_minute  integer     CHECK (digest_minute BETWEEN 0 AND 1439),
            digest_after   bigint      NOT NULL DEFAULT 0,
            last_digest_on text,
            created_at     timestamptz NOT NULL
        )
        """,
        """
        CREATE INDEX chats_digest ON chats (timezone, digest_minute)
        WHERE digest_minute IS NOT NULL
        """,
        """
        CREATE TABLE subscriptions (
            chat_id    bigint      NOT NULL REFERENCES chats (chat_id) ON DELETE CASCADE,
            query      text        NOT NULL,
            created_at timestamptz NOT NULL,
            PRIMARY KEY (chat_id, query)
        )
        """,
    ),
)

# Version 2's row triggers let concurrent writers deadlock on term_df: each row's keys were
# counted one row at a time, so two ingest workers sharing words locked them in opposite
# orders. At 100k stories with 40 keys each, counting them row by row took 396 s (18 s now)
# and a story delete 69 ms (4-8 ms now: every change scanned all of term_df for rows at
# zero); a key both a term and an entity failed the upsert. Statement triggers with
# transition tables now sum each statement's changes per key and apply them in key order, in
# one upsert. (Measured with a throwaway script: 100k stories filled by one INSERT ... SELECT.)
#
# The number of stories with features moves to a counter row, updated by the same trigger
# (count(*) over story_features took 10-16 ms at 100k stories on every corpus_counts call;
# the whole call now takes 1.4 ms for 200 keys).
# The trigger takes that row first, so writers of features queue on it, as SQLite's writers
# queue on its file lock, and no two of them can ever hold term_df rows in a cycle. They hold
# it only from their features statement to commit, which add_many makes its last statement.
#
# (A trigger with transition tables cannot name columns, so the update trigger also fires on
# related_at changes; those change no keys and take no lock.)
_V4 = PgMigration(
    version=4,
    description="term frequencies: a feature_docs counter, one sorted upsert per statement",
    statements=(
        "DROP TRIGGER story_features_df_insert_delete ON story_features",
        "DROP TRIGGER story_features_df_update ON story_features",
        "DROP FUNCTION story_features_df()",
        """
        CREATE TABLE counters (
            name  text   PRIMARY KEY,
            value bigint NOT NULL
        )
        """,
        """
        INSERT INTO counters (name, value)
        SELECT 'feature_docs', count(*) FROM story_features
        """,
        # added/removed: each story's keys, so a key may come once per story.
        """
        CREATE FUNCTION term_df_apply(added text[], removed text[]) RETURNS void
        LANGUAGE sql AS $$
            INSERT INTO term_df (term, df)
            SELECT key, sum(delta)::integer FROM (
                SELECT key, 1 AS delta FROM unnest(added) AS key
                UNION ALL
                SELECT key, -1 AS delta FROM unnest(removed) AS key) AS changes
             GROUP BY key HAVING sum(delta) <> 0
             ORDER BY key
            ON CONFLICT (term) DO UPDATE SET df = term_df.df + excluded.df;
            DELETE FROM term_df WHERE term = ANY (removed) AND df <= 0;
        $$
        """,
        # A key is counted once per story even if it is both a term and an entity: document
        # frequency, as summarize.related's DocFeatures.vocabulary() counts it.
        """
        CREATE FUNCTION story_keys(features jsonb) RETURNS SETOF text
        LANGUAGE sql IMMUTABLE AS $$
            SELECT DISTINCT key FROM feature_keys(features) AS key
        $$
        """,
        """
        CREATE FUNCTION story_features_df_rows() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            docs    bigint := 0;
            added   text[] := '{}';
            removed text[] := '{}';
        BEGIN
            IF TG_OP = 'INSERT' THEN
                docs := (SELECT count(*) FROM new_rows);
                added := ARRAY(SELECT story_keys(n.features) FROM new_rows AS n);
            ELSIF TG_OP = 'DELETE' THEN
                docs := -(SELECT count(*) FROM old_rows);
                removed := ARRAY(SELECT story_keys(o.features) FROM old_rows AS o);
            ELSE
                added := ARRAY(SELECT story_keys(n.features)
                                 FROM new_rows AS n JOIN old_rows AS o USING (story_id)
                                WHERE n.features IS DISTINCT FROM o.features);
                removed := ARRAY(SELECT story_keys(o.features)
                                   FROM new_rows AS n JOIN old_rows AS o USING (story_id)
                                  WHERE n.features IS DISTINCT FROM o.features);
            END IF;
            IF docs <> 0 OR added <> '{}' OR removed <> '{}' THEN
                -- The counter row first: see _V4's comment.
                UPDATE counters SET value = value + docs WHERE name = 'feature_docs';
                PERFORM term_df_apply(added, removed);
            END IF;
            RETURN NULL;
        END
        $$
        """,
        """
        CREATE TRIGGER story_features_df_insert
        AFTER INSERT ON story_features REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION story_features_df_rows()
        """,
        # Also fires for the cascade when stories are deleted.
        """
        CREATE TRIGGER story_features_df_delete
        AFTER DELETE ON story_features REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION story_features_df_rows()
        """,
        """
        CREATE TRIGGER story_features_df_update
        AFTER UPDATE ON story_features REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION story_features_df_rows()
        """,
    ),
)

# Search ranked the newest RANK_WINDOW matches with ts_rank_cd over search_vector, which
# detoasts and decompresses each row's whole vector (bodies are ~3 KB): about 20 us a row, so
# 38 ms a /search at 10k stories. The title's own small vector is stored inline, and its index
# finds the matches with a query word in the title (the "strong" tier, as in the SQLite store)
# without reading any body; only those are then ranked over search_vector.
_V5 = PgMigration(
    version=5,
    description="search: a title-only tsvector and its index, for cheap strong matches",
    statements=(
        f"""
        ALTER TABLE stories ADD COLUMN title_vector tsvector
            GENERATED ALWAYS AS (to_tsvector('{TS_CONFIG}', title)) STORED
        """,
        "CREATE INDEX stories_title_search ON stories USING gin (title_vector)",
    ),
)

PG_MIGRATIONS: tuple[PgMigration, ...] = (_V1, _V2, _V3, _V4, _V5)
HEAD_VERSION: Final = PG_MIGRATIONS[-1].version

_CREATE_VERSION_TABLE: Final = """
    CREATE TABLE IF NOT EXISTS schema_version (
        version     integer     PRIMARY KEY,
        description text        NOT NULL,
        applied_at  timestamptz NOT NULL DEFAULT now()
    )
"""


def _check_order(migrations: Sequence[PgMigration]) -> None:
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise StoreError(
                f"migration versions must run 1, 2, 3...; found {migration.version} "
                f"where {expected} was expected"
            )


async def schema_version(conn: PgConnection) -> int:
    """The newest schema version recorded in the database (0: none yet)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version"))


def _refuse_newer(current: int, head: int) -> None:
    if current > head:
        raise StoreError(
            f"database schema is version {current} but this code only knows up to {head}; "
            "refusing to open it with older code"
        )


async def migrate(conn: PgConnection, migrations: Sequence[PgMigration] = PG_MIGRATIONS) -> int:
    """Apply every migration newer than the database's version; return the resulting version."""
    _check_order(migrations)
    head = migrations[-1].version if migrations else 0
    try:
        for migration in migrations:
            async with conn.transaction():
                # Serialises concurrent openers; released at commit or rollback.
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                await conn.execute(_CREATE_VERSION_TABLE)
                current = await schema_version(conn)
                _refuse_newer(current, head)
                if current >= migration.version:
                    continue
                for statement in migration.statements:
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_version (version, description) VALUES ($1, $2)",
                    migration.version,
                    migration.description,
                )
        current = await schema_version(conn)
        _refuse_newer(current, head)
        return current
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StoreError(f"schema migration failed: {exc}") from exc

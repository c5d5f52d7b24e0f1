"""Subscriptions and per-chat delivery settings on PostgreSQL, shared by several bot workers.

The same API and meaning as storage.subscriptions.SubscriptionStore (see there), on its own
asyncpg pool over a database that PostgresStoryStore.open has migrated; this store never
migrates. What changes with several worker processes:

- Claims are exactly once across processes. claim_push holds the push mark's meta row
  (FOR UPDATE) while it moves it; claim_digests marks due chats in one UPDATE over rows it
  locked with FOR UPDATE SKIP LOCKED, so two workers' claims are disjoint.
- Story ids come from a sequence, so they do not commit in id order: story 11 can commit
  after story 12. A claim that read max(id) = 12 while 11 was in flight would never deliver
  11. So a claim first takes the stories table in SHARE mode, which waits for every open
  transaction writing stories to finish and keeps new ones out until the claim commits
  (a few milliseconds); every id at or below the max it then reads is settled. If a long
  write (a bulk seed) holds it past `claim_wait`, the claim gives up and claims nothing;
  the next run, a minute later, takes it all.
- Subscribing locks the chat's row, so two workers cannot together exceed MAX_SUBSCRIPTIONS.

Text is compared with COLLATE "C" (byte order, as SQLite does), whatever the database's
collation. Matching uses the stories' stored tsvector (english stemming, like SQLite's porter
tokenizer); a query made only of English stop words ("us", "who"), which the tsvector drops,
is matched as whole words in the title and text instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import asyncpg

from storage.errors import QueryError, StoreError
from storage.postgres import _redact, _translate_errors, _websearch_all
from storage.postgres_schema import HEAD_VERSION, TS_CONFIG, PgConnection, schema_version
from storage.subscriptions import (
    MAX_SUBSCRIPTIONS,
    PUSH_MARK_KEY,
    ChatRecord,
    ChatSettings,
    DigestClaim,
    PushClaim,
    normalise_query,
)
from storage.values import as_utc, utc_now

if TYPE_CHECKING:
    from storage.subscriptions import SubscriptionRepository

__all__ = ["DEFAULT_CLAIM_WAIT", "PostgresSubscriptionStore"]

logger = logging.getLogger(__name__)

# How long a claim waits for in-flight story writes before giving up until its next run.
DEFAULT_CLAIM_WAIT: Final = timedelta(seconds=5)
# Bounds the per-store memo of "does this query keep any lexeme" (one entry per query text).
_LEXEME_MEMO_SIZE: Final = 10_000

_MAX_STORY_ID: Final = "(SELECT coalesce(max(id), 0) FROM stories)"

_SUBSCRIBE: Final = """
    INSERT INTO subscriptions (chat_id, query, created_at) VALUES ($1, $2, $3)
    ON CONFLICT DO NOTHING
"""

_SET_DIGEST: Final = f"""
    UPDATE chats
       SET digest_after = CASE WHEN digest_minute IS NULL
                               THEN {_MAX_STORY_ID} ELSE digest_after END,
           digest_minute = $2::integer,
           last_digest_on = CASE
               WHEN $3::text IS NULL THEN last_digest_on
               WHEN last_digest_on IS NULL OR last_digest_on COLLATE "C" < $3::text THEN $3::text
               ELSE last_digest_on END
     WHERE chat_id = $1
"""

# Due chats are locked, skipping any another worker holds (it is claiming them, or changing
# their settings: they stay due and the next run gets them). FOR UPDATE re-checks the
# condition on the newest row version, so a chat another worker has just marked is not due.
_CLAIM_DIGESTS: Final = """
    WITH due AS (
        SELECT c.chat_id, c.digest_after
          FROM chats AS c
         WHERE c.timezone = $1 AND c.digest_minute IS NOT NULL AND c.digest_minute <= $2
           AND (c.last_digest_on IS NULL OR c.last_digest_on COLLATE "C" < $3::text)
           AND EXISTS (SELECT 1 FROM subscriptions AS s WHERE s.chat_id = c.chat_id)
           FOR UPDATE OF c SKIP LOCKED)
    UPDATE chats SET last_digest_on = $3::text, digest_after = $4
      FROM due
     WHERE chats.chat_id = due.chat_id
    RETURNING chats.chat_id, due.digest_after
"""

_MATCH_ALL: Final = """
    SELECT id FROM stories WHERE id > $1 AND id <= $2 ORDER BY id DESC LIMIT $3
"""

_MATCH_WORDS: Final = f"""
    SELECT id FROM stories
     WHERE search_vector @@ websearch_to_tsquery('{TS_CONFIG}', $1)
       AND id > $2 AND id <= $3
     ORDER BY id DESC LIMIT $4
"""

# Words are runs of letters, digits and marks (storage.fts), so none is a regex operator.
_MATCH_WHOLE_WORDS: Final = """
    SELECT s.id FROM stories AS s
     WHERE s.id > $2 AND s.id <= $3
       AND NOT EXISTS (
           SELECT 1 FROM unnest($1::text[]) AS w (word)
            WHERE (s.title || ' ' || s.cleaned_text) !~* ('\\m' || w.word || '\\M'))
     ORDER BY s.id DESC LIMIT $4
"""


class PostgresSubscriptionStore:
    """Typed async access to subscriptions, chat settings and delivery marks on PostgreSQL."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        clock: Callable[[], datetime] = utc_now,
        claim_wait: timedelta = DEFAULT_CLAIM_WAIT,
    ) -> None:
        """Wrap an open pool on a migrated database; use `open` instead."""
        self._pool: asyncpg.Pool | None = pool
        self._clock = clock
        self._claim_wait_ms = max(1, int(claim_wait.total_seconds() * 1000))
        self._has_lexemes: dict[str, bool] = {}

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        clock: Callable[[], datetime] = utc_now,
        claim_wait: timedelta = DEFAULT_CLAIM_WAIT,
        min_connections: int = 1,
        max_connections: int = 4,
    ) -> PostgresSubscriptionStore:
        """Connect to a database that PostgresStoryStore.open has brought up to date."""
        pool: asyncpg.Pool | None = None
        try:
            pool = await asyncpg.create_pool(
                url, min_size=min_connections, max_size=max_connections
            )
            async with pool.acquire() as conn:
                version = await schema_version(conn)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, ValueError) as exc:
            if pool is not None:
                pool.terminate()
            raise StoreError(f"cannot open subscriptions at {_redact(url)}: {exc}") from exc
        except BaseException:
            if pool is not None:
                pool.terminate()
            raise
        if version != HEAD_VERSION:
            pool.terminate()
            why = (
                "open the story store first"
                if version < HEAD_VERSION
                else "this code is older than the database"
            )
            raise StoreError(
                f"{_redact(url)}: schema version {version}, expected {HEAD_VERSION}; {why}"
            )
        return cls(pool, clock=clock, claim_wait=claim_wait)

    async def close(self) -> None:
        """Close the pool; safe to call more than once."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    # -- plumbing ------------------------------------------------------------------------

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError("the subscription store is closed")
        return self._pool

    async def _read(self, sql: str, *params: Any) -> list[asyncpg.Record]:
        return list(await self._require_pool().fetch(sql, *params))

    async def _ensure_chat(self, conn: PgConnection, chat_id: int) -> None:
        await conn.execute(
            "INSERT INTO chats (chat_id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            chat_id,
            as_utc(self._clock()),
        )

    async def _settled_newest(self, conn: PgConnection) -> int:
        """The newest story id, once no story write below it can still commit.

        Call inside a transaction; story writes wait until it ends. Raises
        asyncpg.LockNotAvailableError after claim_wait.
        """
        await conn.execute(
            "SELECT set_config('lock_timeout', $1, true)", f"{self._claim_wait_ms}ms"
        )
        await conn.execute("LOCK TABLE stories IN SHARE MODE")
        return int(await conn.fetchval(f"SELECT {_MAX_STORY_ID}"))

    # -- subscriptions -------------------------------------------------------------------

    @_translate_errors
    async def subscribe(self, chat_id: int, words: str) -> bool:
        """Subscribe a chat to every story ('') or to words; False if it already was.

        QueryError for words with nothing to match, or past MAX_SUBSCRIPTIONS.
        """
        query = normalise_query(words)
        async with self._require_pool().acquire() as conn, conn.transaction():
            await self._ensure_chat(conn, chat_id)
            # The chat's row lock serialises subscribes to one chat across workers.
            await conn.execute("SELECT 1 FROM chats WHERE chat_id = $1 FOR UPDATE", chat_id)
            row = await conn.fetchrow(
                "SELECT count(*), coalesce(bool_or(query = $2), false) "
                "FROM subscriptions WHERE chat_id = $1",
                chat_id,
                query,
            )
            assert row is not None  # an aggregate always returns one row
            if row[1]:
                return False
            if int(row[0]) >= MAX_SUBSCRIPTIONS:
                raise QueryError(
                    f"a chat can have at most {MAX_SUBSCRIPTIONS} subscriptions; "
                    "remove one with /unsubscribe first"
                )
            status = await conn.execute(_SUBSCRIBE, chat_id, query, as_utc(self._clock()))
            return bool(status != "INSERT 0 0")

    @_translate_errors
    async def unsubscribe(self, chat_id: int, words: str) -> bool:
        """Remove one subscription ('' is "every story"); False if there was none."""
        query = normalise_query(words)
        status = await self._require_pool().execute(
            "DELETE FROM subscriptions WHERE chat_id = $1 AND query = $2", chat_id, query
        )
        return bool(status != "DELETE 0")

    @_translate_errors
    async def unsubscribe_all(self, chat_id: int) -> int:
        """Remove every subscription of a chat (its time zone and digest time stay)."""
        status = await self._require_pool().execute(
            "DELETE FROM subscriptions WHERE chat_id = $1", chat_id
        )
        return int(status.rpartition(" ")[2])

    @_translate_errors
    async def forget_chat(self, chat_id: int) -> None:
        """Drop a chat and its subscriptions (it blocked the bot or no longer exists)."""
        await self._require_pool().execute("DELETE FROM chats WHERE chat_id = $1", chat_id)

    @_translate_errors
    async def move_chat(self, old_id: int, new_id: int) -> None:
        """Carry a chat's subscriptions and settings over to its new id (group upgraded)."""
        async with self._require_pool().acquire() as conn, conn.transaction():
            await conn.execute(
                """
                INSERT INTO chats (chat_id, timezone, digest_minute, digest_after,
                                   last_digest_on, created_at)
                SELECT $1, timezone, digest_minute, digest_after, last_digest_on, $2
                  FROM chats WHERE chat_id = $3
                ON CONFLICT DO NOTHING
                """,
                new_id,
                as_utc(self._clock()),
                old_id,
            )
            await conn.execute(
                "INSERT INTO subscriptions (chat_id, query, created_at) "
                "SELECT $1, query, created_at FROM subscriptions WHERE chat_id = $2 "
                "ON CONFLICT DO NOTHING",
                new_id,
                old_id,
            )
            await conn.execute("DELETE FROM chats WHERE chat_id = $1", old_id)

    @_translate_errors
    async def subscriptions(self, chat_id: int) -> list[str]:
        """A chat's subscriptions, '' (every story) first, then alphabetically."""
        rows = await self._read(
            'SELECT query FROM subscriptions WHERE chat_id = $1 ORDER BY query COLLATE "C"',
            chat_id,
        )
        return [str(row[0]) for row in rows]

    @_translate_errors
    async def count_chats(self) -> int:
        """How many chats have at least one subscription."""
        rows = await self._read("SELECT count(DISTINCT chat_id) FROM subscriptions")
        return int(rows[0][0])

    # -- chat settings -------------------------------------------------------------------

    @_translate_errors
    async def settings(self, chat_id: int) -> ChatSettings:
        """A chat's time zone and digest time (defaults when it has none stored)."""
        rows = await self._read(
            "SELECT timezone, digest_minute, last_digest_on FROM chats WHERE chat_id = $1",
            chat_id,
        )
        if not rows:
            return ChatSettings(chat_id)
        timezone, minute, last = rows[0]
        return ChatSettings(chat_id, str(timezone), minute, last)

    @_translate_errors
    async def set_timezone(self, chat_id: int, timezone: str) -> None:
        """Store a chat's IANA time zone name (the caller has checked it exists)."""
        async with self._require_pool().acquire() as conn, conn.transaction():
            await self._ensure_chat(conn, chat_id)
            await conn.execute(
                "UPDATE chats SET timezone = $2 WHERE chat_id = $1", chat_id, timezone
            )

    @_translate_errors
    async def set_digest(
        self, chat_id: int, minute: int | None, *, done_for: str | None = None
    ) -> None:
        """Set (minute after local midnight) or clear (None) a chat's daily digest time.

        A chat switching to digests gets stories stored from now on (a story committing at
        that very moment may fall either side). done_for, a local date, marks that day's
        digest as already sent: the time has passed today.
        """
        if minute is not None and not 0 <= minute < 24 * 60:
            raise ValueError(f"digest minute must be 0..1439, got {minute}")
        async with self._require_pool().acquire() as conn, conn.transaction():
            await self._ensure_chat(conn, chat_id)
            await conn.execute(_SET_DIGEST, chat_id, minute, done_for)

    # -- delivery ------------------------------------------------------------------------

    @_translate_errors
    async def start_push_mark(self) -> None:
        """Start pushing after the newest stored story, unless a mark is already stored."""
        await self._require_pool().execute(
            f"INSERT INTO meta (key, value) VALUES ($1, {_MAX_STORY_ID}::text) "
            "ON CONFLICT (key) DO NOTHING",
            PUSH_MARK_KEY,
        )

    @_translate_errors
    async def claim_push(self) -> PushClaim | None:
        """Take the stories stored since the last push and move the mark past them.

        Exactly once across workers: concurrent claims get disjoint ranges, and no story
        can still appear inside a claimed range later. None when nothing is new, or when
        story writes kept the claim waiting past claim_wait.
        """
        try:
            async with self._require_pool().acquire() as conn, conn.transaction():
                newest = await self._settled_newest(conn)
                await conn.execute(
                    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                    PUSH_MARK_KEY,
                    str(newest),
                )
                mark = await conn.fetchval(
                    "SELECT value FROM meta WHERE key = $1 FOR UPDATE", PUSH_MARK_KEY
                )
                after = int(mark)
                if newest <= after:
                    return None
                await conn.execute(
                    "UPDATE meta SET value = $2 WHERE key = $1", PUSH_MARK_KEY, str(newest)
                )
        except asyncpg.LockNotAvailableError:
            logger.warning("push claim gave up waiting for story writes; next run takes them")
            return None
        return PushClaim(after, newest)

    @_translate_errors
    async def push_subscriptions(self) -> list[tuple[int, str]]:
        """(chat id, query) of every subscription of a chat without a digest time."""
        rows = await self._read(
            """
            SELECT s.chat_id, s.query
              FROM subscriptions AS s JOIN chats AS c ON c.chat_id = s.chat_id
             WHERE c.digest_minute IS NULL
             ORDER BY s.chat_id, s.query COLLATE "C"
            """
        )
        return [(int(chat_id), str(query)) for chat_id, query in rows]

    @_translate_errors
    async def digest_timezones(self) -> list[str]:
        """Every time zone some chat with a digest time is in."""
        rows = await self._read(
            'SELECT DISTINCT timezone COLLATE "C" FROM chats '
            "WHERE digest_minute IS NOT NULL ORDER BY 1"
        )
        return [str(row[0]) for row in rows]

    @_translate_errors
    async def claim_digests(self, timezone: str, local_date: str, minute: int) -> list[DigestClaim]:
        """Take the chats in a time zone whose digest is due and not yet sent today.

        Due: the digest time is at or before `minute` on `local_date` (so a bot that was
        down at that time catches up once). Marked sent before anything is sent, exactly
        once across workers. [] when story writes kept the claim waiting past claim_wait:
        the chats stay due for the next run.
        """
        try:
            async with self._require_pool().acquire() as conn, conn.transaction():
                upto = await self._settled_newest(conn)
                rows = await conn.fetch(_CLAIM_DIGESTS, timezone, minute, local_date, upto)
        except asyncpg.LockNotAvailableError:
            logger.warning("digest claim gave up waiting for story writes; next run takes them")
            return []
        claims = [DigestClaim(int(chat_id), int(after), upto) for chat_id, after in rows]
        return sorted(claims, key=lambda claim: claim.chat_id)

    @_translate_errors
    async def queries_of(self, chat_ids: Iterable[int]) -> dict[int, list[str]]:
        """The subscriptions of each chat given."""
        wanted = sorted(set(chat_ids))
        found: dict[int, list[str]] = {chat_id: [] for chat_id in wanted}
        if not wanted:
            return found
        rows = await self._read(
            "SELECT chat_id, query FROM subscriptions WHERE chat_id = ANY($1::bigint[]) "
            'ORDER BY chat_id, query COLLATE "C"',
            wanted,
        )
        for chat_id, query in rows:
            found[int(chat_id)].append(str(query))
        return found

    @_translate_errors
    async def matching(self, query: str, after_id: int, upto_id: int, limit: int) -> list[int]:
        """Ids of stories in (after_id, upto_id] matching a stored query, newest first."""
        if query == "":
            rows = await self._read(_MATCH_ALL, after_id, upto_id, limit)
        elif await self._keeps_lexemes(query):
            rows = await self._read(
                _MATCH_WORDS, _websearch_all(query.split()), after_id, upto_id, limit
            )
        else:
            rows = await self._read(_MATCH_WHOLE_WORDS, query.split(), after_id, upto_id, limit)
        return [int(row[0]) for row in rows]

    async def _keeps_lexemes(self, query: str) -> bool:
        # The text search configuration drops stop words; a query of nothing else would
        # match no story at all, where SQLite matches the words.
        known = self._has_lexemes.get(query)
        if known is None:
            nodes = await self._require_pool().fetchval(
                f"SELECT numnode(websearch_to_tsquery('{TS_CONFIG}', $1))",
                _websearch_all(query.split()),
            )
            known = int(nodes) > 0
            if len(self._has_lexemes) >= _LEXEME_MEMO_SIZE:
                self._has_lexemes.clear()
            self._has_lexemes[query] = known
        return known

    # -- copying between stores ----------------------------------------------------------

    @_translate_errors
    async def export_chats(self, after_chat_id: int | None, limit: int) -> list[ChatRecord]:
        """Up to `limit` chats with ids above `after_chat_id`, in id order, for a copy."""
        rows = await self._read(
            "SELECT chat_id, timezone, digest_minute, digest_after, last_digest_on, created_at "
            "FROM chats WHERE $1::bigint IS NULL OR chat_id > $1 ORDER BY chat_id LIMIT $2",
            after_chat_id,
            limit,
        )
        queries: dict[int, list[tuple[str, datetime]]] = {int(row[0]): [] for row in rows}
        for row in await self._read(
            "SELECT chat_id, query, created_at FROM subscriptions WHERE chat_id = ANY($1) "
            'ORDER BY chat_id, query COLLATE "C"',
            list(queries),
        ):
            queries[int(row[0])].append((str(row[1]), as_utc(row[2])))
        return [
            ChatRecord(
                chat_id=int(row[0]),
                timezone=str(row[1]),
                digest_minute=None if row[2] is None else int(row[2]),
                digest_after=int(row[3]),
                last_digest_on=None if row[4] is None else str(row[4]),
                created_at=as_utc(row[5]),
                subscriptions=tuple(queries[int(row[0])]),
            )
            for row in rows
        ]

    @_translate_errors
    async def import_chats(self, records: Sequence[ChatRecord]) -> None:
        """Store chats as given (replacing their settings; adding missing subscriptions)."""
        async with self._require_pool().acquire() as conn, conn.transaction():
            await conn.executemany(
                """
                INSERT INTO chats (chat_id, timezone, digest_minute, digest_after,
                                   last_digest_on, created_at)
                VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (chat_id) DO UPDATE SET
                    timezone = excluded.timezone, digest_minute = excluded.digest_minute,
                    digest_after = excluded.digest_after,
                    last_digest_on = excluded.last_digest_on
                """,
                [
                    (r.chat_id, r.timezone, r.digest_minute, r.digest_after, r.last_digest_on,
                     as_utc(r.created_at))
                    for r in records
                ],
            )  # fmt: skip
            await conn.executemany(
                _SUBSCRIBE,
                [(r.chat_id, q, as_utc(at)) for r in records for q, at in r.subscriptions],
            )


if TYPE_CHECKING:
    # mypy proves here that this store satisfies the protocol.
    def _postgres_is_a_repository(store: PostgresSubscriptionStore) -> SubscriptionRepository:
        return store

"""Subscriptions and per-chat delivery settings, over the story store's database file.

A `SubscriptionStore` opens its own connection to the file `StoryStore.open` created and
migrated (schema version 3 adds its tables), so it asks nothing of the story store's
internals. The file is in WAL mode: its writes wait for the story store's (busy timeout)
and its reads never block them.

A subscription is a chat and a query: '' for every new story, else normalised words that
must all appear in a story (several subscriptions of one chat are alternatives). A chat
without a digest time gets new stories pushed as they arrive; with one it gets one digest
a day instead. Both "what was already sent" marks are story ids: ids only grow
(AUTOINCREMENT) and writers commit one at a time, so "id > mark" is exactly "new since".

`SubscriptionRepository` is the API the bot uses; storage.postgres_subscriptions provides it
on PostgreSQL for several bot workers sharing one database.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

import aiosqlite

from storage import fts
from storage.errors import QueryError, StoreError
from storage.schema import immediate_transaction, translate_sqlite_errors
from storage.values import from_micros, to_micros, utc_now

__all__ = [
    "MAX_QUERY_WORDS",
    "MAX_SUBSCRIPTIONS",
    "PUSH_MARK_KEY",
    "ChatRecord",
    "ChatSettings",
    "DigestClaim",
    "PushClaim",
    "SubscriptionRepository",
    "SubscriptionStore",
    "normalise_query",
]

# Bounds on what one chat can ask for, so matching stays cheap at 10,000 chats.
MAX_SUBSCRIPTIONS: Final = 20
MAX_QUERY_WORDS: Final = 8
# The meta key holding the id of the newest story already pushed (or deliberately skipped).
PUSH_MARK_KEY: Final = "reach.pushed_through"
_BUSY_TIMEOUT_MS: Final = 5000


# Below every Telegram chat id (channels and supergroups are large negative numbers).
_LOWEST_ID: Final = -(2**63)


def normalise_query(words: str) -> str:
    """Subscription words as stored: lower-case unicode61 words, sorted, at most MAX_QUERY_WORDS.

    Sorted because every word must match, so "Bridge, harbour" and "harbour bridge" are one
    subscription. '' stays '' (every story); QueryError when words has no usable word.
    """
    if not words.strip():
        return ""
    terms = {term.casefold() for term in fts.query_terms(words)[:MAX_QUERY_WORDS]}
    return " ".join(sorted(terms))


@dataclass(frozen=True, slots=True)
class ChatSettings:
    chat_id: int
    timezone: str = "UTC"
    digest_minute: int | None = None  # minutes after local midnight; None: push instead
    last_digest_on: str | None = None  # local date (YYYY-MM-DD) of the last digest


@dataclass(frozen=True, slots=True)
class PushClaim:
    """Stories with after_id < id <= upto_id are this push's to send."""

    after_id: int
    upto_id: int


@dataclass(frozen=True, slots=True)
class DigestClaim:
    """One chat's digest: stories with after_id < id <= upto_id."""

    chat_id: int
    after_id: int
    upto_id: int


@dataclass(frozen=True, slots=True)
class ChatRecord:
    """A chat with its settings and subscriptions, as `newsbot db copy` moves it.

    digest_after is a story id of the store the record came from: the copy translates it.
    """

    chat_id: int
    timezone: str
    digest_minute: int | None
    digest_after: int
    last_digest_on: str | None
    created_at: datetime
    subscriptions: tuple[tuple[str, datetime], ...]  # (query, created at)


class SubscriptionRepository(Protocol):
    """The subscription API that SubscriptionStore (SQLite) and PostgresSubscriptionStore share."""

    async def close(self) -> None: ...

    async def subscribe(self, chat_id: int, words: str) -> bool: ...

    async def unsubscribe(self, chat_id: int, words: str) -> bool: ...

    async def unsubscribe_all(self, chat_id: int) -> int: ...

    async def forget_chat(self, chat_id: int) -> None: ...

    async def move_chat(self, old_id: int, new_id: int) -> None: ...

    async def subscriptions(self, chat_id: int) -> list[str]: ...

    async def count_chats(self) -> int: ...

    async def settings(self, chat_id: int) -> ChatSettings: ...

    async def set_timezone(self, chat_id: int, timezone: str) -> None: ...

    async def set_digest(
        self, chat_id: int, minute: int | None, *, done_for: str | None = None
    ) -> None: ...

    async def start_push_mark(self) -> None: ...

    async def claim_push(self) -> PushClaim | None: ...

    async def push_subscriptions(self) -> list[tuple[int, str]]: ...

    async def digest_timezones(self) -> list[str]: ...

    async def claim_digests(
        self, timezone: str, local_date: str, minute: int
    ) -> list[DigestClaim]: ...

    async def queries_of(self, chat_ids: Iterable[int]) -> dict[int, list[str]]: ...

    async def matching(self, query: str, after_id: int, upto_id: int, limit: int) -> list[int]: ...

    async def export_chats(self, after_chat_id: int | None, limit: int) -> list[ChatRecord]: ...

    async def import_chats(self, records: Sequence[ChatRecord]) -> None: ...


_MAX_STORY_ID: Final = "(SELECT coalesce(max(id), 0) FROM stories)"


class SubscriptionStore:
    """Typed async access to subscriptions, chat settings and delivery marks."""

    def __init__(self, conn: aiosqlite.Connection, clock: Callable[[], datetime]) -> None:
        self._conn: aiosqlite.Connection | None = conn
        self._clock = clock
        self._lock = asyncio.Lock()

    @classmethod
    async def open(
        cls, path: Path, *, clock: Callable[[], datetime] = utc_now
    ) -> SubscriptionStore:
        """Connect to a database that StoryStore.open has already brought up to date."""
        conn: aiosqlite.Connection | None = None
        try:
            conn = await aiosqlite.connect(path, isolation_level=None)
            for pragma in (
                "PRAGMA foreign_keys = ON",
                f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}",
            ):
                await conn.execute(pragma)
            tables = await conn.execute_fetchall(
                "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'subscriptions'"
            )
            if not list(tables):
                raise StoreError(f"{path}: no subscriptions table; open the StoryStore first")
        except BaseException as exc:
            if conn is not None:
                with suppress(sqlite3.Error):
                    await conn.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot open subscriptions at {path}: {exc}") from exc
            raise
        return cls(conn, clock)

    async def close(self) -> None:
        """Close the connection; safe to call more than once."""
        conn, self._conn = self._conn, None
        if conn is not None:
            async with self._lock:
                with suppress(sqlite3.Error):
                    await conn.close()

    def _require(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StoreError("the subscription store is closed")
        return self._conn

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(await self._require().execute_fetchall(sql, params))

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock, immediate_transaction(self._require()) as conn:
            yield conn

    @staticmethod
    async def _ensure_chat(conn: aiosqlite.Connection, chat_id: int, now: int) -> None:
        await conn.execute(
            "INSERT INTO chats (chat_id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (chat_id, now),
        )

    # -- subscriptions -------------------------------------------------------------------

    @translate_sqlite_errors
    async def subscribe(self, chat_id: int, words: str) -> bool:
        """Subscribe a chat to every story ('') or to words; False if it already was.

        QueryError for words with nothing to match, or past MAX_SUBSCRIPTIONS.
        """
        query = normalise_query(words)
        now = to_micros(self._clock())
        async with self._transaction() as conn:
            await self._ensure_chat(conn, chat_id, now)
            rows = list(
                await conn.execute_fetchall(
                    "SELECT count(*), sum(query = ?) FROM subscriptions WHERE chat_id = ?",
                    (query, chat_id),
                )
            )
            count, present = int(rows[0][0]), bool(rows[0][1])
            if present:
                return False
            if count >= MAX_SUBSCRIPTIONS:
                raise QueryError(
                    f"a chat can have at most {MAX_SUBSCRIPTIONS} subscriptions; "
                    "remove one with /unsubscribe first"
                )
            await conn.execute(
                "INSERT INTO subscriptions (chat_id, query, created_at) VALUES (?, ?, ?)",
                (chat_id, query, now),
            )
            return True

    @translate_sqlite_errors
    async def unsubscribe(self, chat_id: int, words: str) -> bool:
        """Remove one subscription ('' is "every story"); False if there was none."""
        query = normalise_query(words)
        async with self._transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM subscriptions WHERE chat_id = ? AND query = ?", (chat_id, query)
            )
            return cursor.rowcount > 0

    @translate_sqlite_errors
    async def unsubscribe_all(self, chat_id: int) -> int:
        """Remove every subscription of a chat (its time zone and digest time stay)."""
        async with self._transaction() as conn:
            cursor = await conn.execute("DELETE FROM subscriptions WHERE chat_id = ?", (chat_id,))
            return cursor.rowcount

    @translate_sqlite_errors
    async def forget_chat(self, chat_id: int) -> None:
        """Drop a chat and its subscriptions (it blocked the bot or no longer exists)."""
        async with self._transaction() as conn:
            await conn.execute("DELETE FROM chats WHERE chat_id = ?", (chat_id,))

    @translate_sqlite_errors
    async def move_chat(self, old_id: int, new_id: int) -> None:
        """Carry a chat's subscriptions and settings over to its new id (group upgraded)."""
        now = to_micros(self._clock())
        async with self._transaction() as conn:
            await conn.execute(
                """
                INSERT INTO chats (chat_id, timezone, digest_minute, digest_after,
                                   last_digest_on, created_at)
                SELECT ?, timezone, digest_minute, digest_after, last_digest_on, ?
                  FROM chats WHERE chat_id = ?
                ON CONFLICT DO NOTHING
                """,
                (new_id, now, old_id),
            )
            await conn.execute(
                "INSERT INTO subscriptions (chat_id, query, created_at) "
                "SELECT ?, query, created_at FROM subscriptions WHERE chat_id = ? "
                "ON CONFLICT DO NOTHING",
                (new_id, old_id),
            )
            await conn.execute("DELETE FROM chats WHERE chat_id = ?", (old_id,))

    @translate_sqlite_errors
    async def subscriptions(self, chat_id: int) -> list[str]:
        """A chat's subscriptions, '' (every story) first, then alphabetically."""
        rows = await self._read(
            "SELECT query FROM subscriptions WHERE chat_id = ? ORDER BY query", (chat_id,)
        )
        return [str(row[0]) for row in rows]

    @translate_sqlite_errors
    async def count_chats(self) -> int:
        """How many chats have at least one subscription."""
        rows = await self._read("SELECT count(DISTINCT chat_id) FROM subscriptions")
        return int(rows[0][0])

    # -- chat settings -------------------------------------------------------------------

    @translate_sqlite_errors
    async def settings(self, chat_id: int) -> ChatSettings:
        """A chat's time zone and digest time (defaults when it has none stored)."""
        rows = await self._read(
            "SELECT timezone, digest_minute, last_digest_on FROM chats WHERE chat_id = ?",
            (chat_id,),
        )
        if not rows:
            return ChatSettings(chat_id)
        timezone, minute, last = rows[0]
        return ChatSettings(chat_id, str(timezone), minute, last)

    @translate_sqlite_errors
    async def set_timezone(self, chat_id: int, timezone: str) -> None:
        """Store a chat's IANA time zone name (the caller has checked it exists)."""
        async with self._transaction() as conn:
            await self._ensure_chat(conn, chat_id, to_micros(self._clock()))
            await conn.execute(
                "UPDATE chats SET timezone = ? WHERE chat_id = ?", (timezone, chat_id)
            )

    @translate_sqlite_errors
    async def set_digest(
        self, chat_id: int, minute: int | None, *, done_for: str | None = None
    ) -> None:
        """Set (minute after local midnight) or clear (None) a chat's daily digest time.

        A chat switching to digests gets stories stored from now on. done_for, a local
        date, marks that day's digest as already sent: the time has passed today.
        """
        if minute is not None and not 0 <= minute < 24 * 60:
            raise ValueError(f"digest minute must be 0..1439, got {minute}")
        async with self._transaction() as conn:
            await self._ensure_chat(conn, chat_id, to_micros(self._clock()))
            await conn.execute(
                f"""
                UPDATE chats
                   SET digest_after = CASE WHEN digest_minute IS NULL
                                           THEN {_MAX_STORY_ID} ELSE digest_after END,
                       digest_minute = ?,
                       last_digest_on = CASE
                           WHEN ? IS NULL THEN last_digest_on
                           WHEN last_digest_on IS NULL OR last_digest_on < ? THEN ?
                           ELSE last_digest_on END
                 WHERE chat_id = ?
                """,
                (minute, done_for, done_for, done_for, chat_id),
            )

    # -- delivery ------------------------------------------------------------------------

    @translate_sqlite_errors
    async def start_push_mark(self) -> None:
        """Start pushing after the newest stored story, unless a mark is already stored."""
        async with self._transaction() as conn:
            await conn.execute(
                f"INSERT INTO meta (key, value) VALUES (?, {_MAX_STORY_ID}) "
                "ON CONFLICT (key) DO NOTHING",
                (PUSH_MARK_KEY,),
            )

    @translate_sqlite_errors
    async def claim_push(self) -> PushClaim | None:
        """Take the stories stored since the last push and move the mark past them.

        Atomic, so two pushes running at once (a periodic job and an ingest hook) get
        disjoint ranges. None when nothing is new.
        """
        async with self._transaction() as conn:
            rows = list(
                await conn.execute_fetchall(
                    f"SELECT (SELECT value FROM meta WHERE key = ?), {_MAX_STORY_ID}",
                    (PUSH_MARK_KEY,),
                )
            )
            mark, newest = rows[0]
            after = int(mark) if mark is not None else int(newest)
            upto = int(newest)
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (PUSH_MARK_KEY, str(max(after, upto))),
            )
        return PushClaim(after, upto) if upto > after else None

    @translate_sqlite_errors
    async def push_subscriptions(self) -> list[tuple[int, str]]:
        """(chat id, query) of every subscription of a chat without a digest time."""
        rows = await self._read(
            """
            SELECT s.chat_id, s.query
              FROM subscriptions AS s JOIN chats AS c ON c.chat_id = s.chat_id
             WHERE c.digest_minute IS NULL
             ORDER BY s.chat_id, s.query
            """
        )
        return [(int(chat_id), str(query)) for chat_id, query in rows]

    @translate_sqlite_errors
    async def digest_timezones(self) -> list[str]:
        """Every time zone some chat with a digest time is in."""
        rows = await self._read(
            "SELECT DISTINCT timezone FROM chats WHERE digest_minute IS NOT NULL ORDER BY 1"
        )
        return [str(row[0]) for row in rows]

    @translate_sqlite_errors
    async def claim_digests(self, timezone: str, local_date: str, minute: int) -> list[DigestClaim]:
        """Take the chats in a time zone whose digest is due and not yet sent today.

        Due: the digest time is at or before `minute` on `local_date` (so a bot that was
        down at that time catches up once). Marked sent before anything is sent, in one
        transaction: a digest is never sent twice, even by overlapping runs.
        """
        due = """
            timezone = ? AND digest_minute IS NOT NULL AND digest_minute <= ?
            AND (last_digest_on IS NULL OR last_digest_on < ?)
            AND EXISTS (SELECT 1 FROM subscriptions AS s WHERE s.chat_id = chats.chat_id)
        """
        params = (timezone, minute, local_date)
        async with self._transaction() as conn:
            newest = list(await conn.execute_fetchall(f"SELECT {_MAX_STORY_ID}"))
            upto = int(newest[0][0])
            rows = list(
                await conn.execute_fetchall(
                    f"SELECT chat_id, digest_after FROM chats WHERE {due} ORDER BY chat_id",
                    params,
                )
            )
            await conn.execute(
                f"UPDATE chats SET last_digest_on = ?, digest_after = ? WHERE {due}",
                (local_date, upto, *params),
            )
        return [DigestClaim(int(chat_id), int(after), upto) for chat_id, after in rows]

    @translate_sqlite_errors
    async def queries_of(self, chat_ids: Iterable[int]) -> dict[int, list[str]]:
        """The subscriptions of each chat given."""
        wanted = sorted(set(chat_ids))
        found: dict[int, list[str]] = {chat_id: [] for chat_id in wanted}
        # Bounded batches: SQLite caps bound parameters per statement.
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            marks = ", ".join("?" * len(batch))
            rows = await self._read(
                f"SELECT chat_id, query FROM subscriptions WHERE chat_id IN ({marks}) "
                "ORDER BY chat_id, query",
                batch,
            )
            for chat_id, query in rows:
                found[int(chat_id)].append(str(query))
        return found

    @translate_sqlite_errors
    async def matching(self, query: str, after_id: int, upto_id: int, limit: int) -> list[int]:
        """Ids of stories in (after_id, upto_id] matching a stored query, newest first."""
        if query == "":
            rows = await self._read(
                "SELECT id FROM stories WHERE id > ? AND id <= ? ORDER BY id DESC LIMIT ?",
                (after_id, upto_id, limit),
            )
        else:
            rows = await self._read(
                "SELECT rowid FROM stories_fts WHERE stories_fts MATCH ? "
                "AND rowid > ? AND rowid <= ? ORDER BY rowid DESC LIMIT ?",
                (fts.all_of(query.split()), after_id, upto_id, limit),
            )
        return [int(row[0]) for row in rows]

    # -- copying between stores ----------------------------------------------------------

    @translate_sqlite_errors
    async def export_chats(self, after_chat_id: int | None, limit: int) -> list[ChatRecord]:
        """Up to `limit` chats with ids above `after_chat_id`, in id order, for a copy."""
        rows = await self._read(
            "SELECT chat_id, timezone, digest_minute, digest_after, last_digest_on, created_at "
            "FROM chats WHERE chat_id > ? ORDER BY chat_id LIMIT ?",
            (_LOWEST_ID if after_chat_id is None else after_chat_id, limit),
        )
        queries: dict[int, list[tuple[str, datetime]]] = {int(row[0]): [] for row in rows}
        if queries:
            marks = ", ".join("?" * len(queries))
            for chat_id, query, created in await self._read(
                f"SELECT chat_id, query, created_at FROM subscriptions "
                f"WHERE chat_id IN ({marks}) ORDER BY chat_id, query",
                list(queries),
            ):
                queries[int(chat_id)].append((str(query), from_micros(int(created))))
        return [
            ChatRecord(
                chat_id=int(chat_id),
                timezone=str(timezone),
                digest_minute=None if minute is None else int(minute),
                digest_after=int(after),
                last_digest_on=None if last is None else str(last),
                created_at=from_micros(int(created)),
                subscriptions=tuple(queries[int(chat_id)]),
            )
            for chat_id, timezone, minute, after, last, created in rows
        ]

    @translate_sqlite_errors
    async def import_chats(self, records: Sequence[ChatRecord]) -> None:
        """Store chats as given (replacing their settings; adding missing subscriptions)."""
        async with self._transaction() as conn:
            await conn.executemany(
                """
                INSERT INTO chats (chat_id, timezone, digest_minute, digest_after,
                                   last_digest_on, created_at)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (chat_id) DO UPDATE SET
                    timezone = excluded.timezone, digest_minute = excluded.digest_minute,
                    digest_after = excluded.digest_after,
                    last_digest_on = excluded.last_digest_on
                """,
                [
                    (r.chat_id, r.timezone, r.digest_minute, r.digest_after, r.last_digest_on,
                     to_micros(r.created_at))
                    for r in records
                ],
            )  # fmt: skip
            await conn.executemany(
                "INSERT INTO subscriptions (chat_id, query, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [(r.chat_id, q, to_micros(at)) for r in records for q, at in r.subscriptions],
            )


if TYPE_CHECKING:
    # mypy proves here that the SQLite store satisfies the protocol.
    def _sqlite_is_a_repository(store: SubscriptionStore) -> SubscriptionRepository:
        return store

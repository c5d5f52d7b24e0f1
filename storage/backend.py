"""Choose the story store by URL: ``sqlite:///path`` (embedded) or ``postgresql://...``.

``open_store("sqlite:///data/newsbot.db")`` opens the SQLite file data/newsbot.db (relative;
``sqlite:////var/lib/newsbot.db`` is absolute), exactly like ``StoryStore.open(path)``.
``open_store("postgresql://user:pass@host:5432/db")`` opens a PostgresStoryStore; the
``postgres://`` spelling is accepted too.

`StoryRepository` is the API both stores share; code that must run on either backend should
be typed against it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final, Protocol, Self

from storage.errors import StoreError
from storage.models import (
    AddResult,
    CorpusCounts,
    NewStory,
    RelatedRow,
    RelatedStory,
    SearchHit,
    StoredFeatures,
    StoreStats,
    Story,
)
from storage.repository import PAGE_CACHE_KIB, StoryStore
from storage.subscriptions import SubscriptionRepository, SubscriptionStore
from storage.values import utc_now

__all__ = [
    "StoryRepository",
    "is_postgres_url",
    "open_store",
    "open_subscriptions",
    "sqlite_path",
    "sqlite_url",
]

SQLITE_PREFIX: Final = "sqlite:///"
POSTGRES_PREFIXES: Final = ("postgresql://", "postgres://")


class StoryRepository(Protocol):
    """The story API that StoryStore (SQLite) and PostgresStoryStore both provide."""

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def add(self, story: NewStory) -> AddResult: ...

    async def add_many(self, stories: Sequence[NewStory]) -> list[AddResult]: ...

    async def delete(self, story_id: int) -> bool: ...

    async def set_meta(self, key: str, value: str) -> None: ...

    async def find_duplicate(self, url: str | None, fingerprint: str) -> int | None: ...

    async def get(self, story_id: int) -> Story | None: ...

    async def get_by_url(self, url: str) -> Story | None: ...

    async def get_many(self, story_ids: Iterable[int]) -> dict[int, Story]: ...

    async def latest(
        self, limit: int, *, older_than: int | None = None, newer_than: int | None = None
    ) -> list[Story]: ...

    async def search(self, query: str, limit: int = 10, offset: int = 0) -> list[SearchHit]: ...

    async def search_any(
        self, terms: Sequence[str], limit: int = 10, *, exclude_id: int | None = None
    ) -> list[SearchHit]: ...

    async def search_any_ids(
        self, terms: Sequence[str], limit: int = 50, *, exclude_id: int | None = None
    ) -> list[int]: ...

    async def search_any_ids_many(
        self, queries: Sequence[tuple[Sequence[str], int | None]], limit: int = 50
    ) -> list[list[int]]:
        """search_any_ids(terms, limit, exclude_id=...) for each (terms, exclude_id), in
        order: the same answers as one call each (SQLite sends them in a few reads)."""
        ...

    async def count_search(self, query: str) -> int: ...

    async def count(self) -> int: ...

    async def stats(self) -> StoreStats: ...

    async def get_meta(self, key: str) -> str | None: ...

    async def claim_run(self, name: str, every: timedelta) -> bool:
        """True for exactly one caller per `every` across every process on the database:
        scheduled jobs run once, however many workers schedule them."""
        ...

    async def ids_by_url(self, urls: Iterable[str | None]) -> dict[str, int]: ...

    async def compact_search_index(self) -> None:
        """Rewrite the full-text index in one piece, after a bulk load (see `newsbot seed`)."""
        ...

    # -- related stories (ingest.pipeline.RelatedIndexer, /related, the refresh job) ------

    async def put_features(self, rows: Sequence[StoredFeatures]) -> None: ...

    async def replace_related(self, lists: Mapping[int, Sequence[RelatedRow]]) -> None: ...

    async def features_of(self, story_ids: Iterable[int]) -> dict[int, StoredFeatures]: ...

    async def feature_versions(self, story_ids: Iterable[int]) -> dict[int, int]: ...

    async def missing_features(self, version: int, limit: int) -> list[int]: ...

    async def corpus_counts(self, keys: Iterable[str]) -> CorpusCounts: ...

    async def recent_ids(
        self, since: datetime, limit: int, *, stale_before: datetime | None = None
    ) -> list[int]: ...

    async def related_rows(self, story_ids: Iterable[int]) -> dict[int, list[RelatedRow]]: ...

    async def related_of(self, story_id: int, limit: int = 10) -> list[RelatedStory]: ...

    async def related_computed_at(self, story_id: int) -> datetime | None: ...

    async def match_links(
        self, urls: Iterable[str], titles: Iterable[str]
    ) -> tuple[dict[str, int], dict[str, int]]: ...


def is_postgres_url(url: str) -> bool:
    """True for postgresql:// (or postgres://) URLs."""
    return url.startswith(POSTGRES_PREFIXES)


def sqlite_path(url: str) -> Path:
    """The file a sqlite:///path URL names; raises StoreError for anything else."""
    if not url.startswith(SQLITE_PREFIX):
        raise StoreError(f"not a sqlite:///path URL: {url!r}")
    path = url.removeprefix(SQLITE_PREFIX)
    if not path or path.endswith("/"):
        raise StoreError(f"the sqlite URL names no file: {url!r}")
    return Path(path)


def sqlite_url(path: Path) -> str:
    """The sqlite:///path URL for a database file (absolute paths give four slashes)."""
    return SQLITE_PREFIX + str(path)


async def open_store(
    url: str,
    *,
    clock: Callable[[], datetime] = utc_now,
    page_cache_kib: int = PAGE_CACHE_KIB,
    readers: int = 1,
) -> StoryStore | PostgresStoryStore:
    """Open (creating or migrating as needed) the store that url names.

    `page_cache_kib` sizes SQLite's page cache per connection and `readers` is how many
    read-only connections SQLite gets (PostgreSQL has its own cache and pool).
    """
    if url.startswith(SQLITE_PREFIX):
        return await StoryStore.open(
            sqlite_path(url), clock=clock, page_cache_kib=page_cache_kib, readers=readers
        )
    if is_postgres_url(url):
        # Imported here: asyncpg and the PostgreSQL store cost every SQLite start ~30 ms.
        from storage.postgres import PostgresStoryStore

        return await PostgresStoryStore.open(url, clock=clock)
    scheme = url.partition("://")[0] if "://" in url else url[:20]
    raise StoreError(
        f"unsupported database URL scheme {scheme!r}: use sqlite:///path or "
        "postgresql://user:password@host/database"
    )


async def open_subscriptions(
    url: str, *, clock: Callable[[], datetime] = utc_now
) -> SubscriptionRepository:
    """Open the subscription store beside the story store at url (open that one first: it
    creates and migrates the tables)."""
    if is_postgres_url(url):
        from storage.postgres_subscriptions import PostgresSubscriptionStore

        return await PostgresSubscriptionStore.open(url, clock=clock)
    return await SubscriptionStore.open(sqlite_path(url), clock=clock)


if TYPE_CHECKING:
    from storage.postgres import PostgresStoryStore

    # mypy proves here that both stores satisfy the protocol.
    def _sqlite_is_a_repository(store: StoryStore) -> StoryRepository:
        return store

    def _postgres_is_a_repository(store: PostgresStoryStore) -> StoryRepository:
        return store

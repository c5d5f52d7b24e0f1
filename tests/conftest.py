"""Fixtures for the bot tests: a fake Bot API server, settings pointing at it, the real app."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr

from bot.app import build_app, running
from bot.services import NewsApp, Services
from bot.settings import Settings
from storage.backend import StoryRepository, open_store, sqlite_url
from storage.models import Link, NewStory
from tests.fake_bot_api import FakeBotAPI
from tests.pg_server import ENV_URL, PgServer, PgUnavailable, schema_url, start_server
from tests.storage_builders import FakeClock

ADMIN = 1
USER = 2
TOKEN = "123:ABC"
T0 = datetime(2025, 1, 1, tzinfo=UTC)

StartBot = Callable[..., AbstractAsyncContextManager[NewsApp]]
NewStoryFactory = Callable[..., NewStory]


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB 22 warns on every RetryAfter unless this opt-in is set; warnings are errors here.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    server = FakeBotAPI(token=TOKEN)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "db.sqlite"


@pytest.fixture
def database_url() -> str | None:
    """The bot's DATABASE_URL; None: the SQLite file at db_path.

    A module whose scenarios must hold on both backends overrides this fixture with
    `both_backends(request)` under `@pytest.fixture(params=BACKENDS)`.
    """
    return None


BACKENDS = ["sqlite", "postgres"]


def both_backends(request: pytest.FixtureRequest) -> str | None:
    """For a `database_url` override: None (SQLite) or a fresh PostgreSQL schema's URL."""
    # Sync on purpose: the session's PostgreSQL server starts outside the test's event loop.
    return None if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


@pytest.fixture
def settings(api: FakeBotAPI, db_path: Path, database_url: str | None) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        bot_token=SecretStr(TOKEN),
        admin_ids=frozenset({ADMIN}),
        database_path=db_path,
        database_url=database_url,
        telegram_api_url=api.url,
        max_document_bytes=10_000,
        # Explicit: the default name is still settling between settings and summarizers.
        summary_algorithm="lead",
    )


@pytest.fixture
def start_bot(settings: Settings, api: FakeBotAPI) -> StartBot:
    """Start the real Application polling the fake server, as production does."""

    def start(*, rate_limit: bool = False, **changes: Any) -> AbstractAsyncContextManager[NewsApp]:
        chosen = settings.model_copy(update=changes) if changes else settings
        return running(build_app(chosen, rate_limit=rate_limit))

    return start


@pytest.fixture
async def bot(start_bot: StartBot, api: FakeBotAPI) -> AsyncIterator[NewsApp]:
    async with start_bot() as app:
        # post_init has run once the commands are set.
        await api.next_call("setMyCommands")
        yield app


@pytest.fixture
def services(bot: NewsApp) -> Services:
    return bot.bot_data.services


@pytest.fixture
def new_story() -> Iterator[NewStoryFactory]:
    """Build distinct NewStory records; keyword arguments override fields."""
    numbers = itertools.count(1)

    def make(**changes: Any) -> NewStory:
        n = next(numbers)
        story = NewStory(
            title=f"Harbour bridge story {n}",
            body=f"Body of story {n}.",
            cleaned_text=(
                f"The harbour bridge in Kelby reopened after repairs, story {n} says. "
                "Engineers replaced cables over six months. Traffic is back to normal."
            ),
            summary=(f"The harbour bridge reopened ({n}).", "Traffic is back to normal."),
            algorithm="lead",
            fingerprint=f"test-{n}-{id(numbers)}",
            url=f"https://news.example/{n}",
            source="Kelby Courier",
            published_at=T0 + timedelta(hours=n),
            links=(Link(title=f"Similar item {n}", url=f"https://other.example/{n}"),),
        )
        return replace(story, **changes)

    yield make


Seed = Callable[..., Awaitable[list[int]]]


@pytest.fixture
def seed(services: Services, new_story: NewStoryFactory) -> Seed:
    """Store stories through the bot's own store; returns their ids, oldest first."""

    async def add(count: int = 1, **changes: Any) -> list[int]:
        ids = []
        for _ in range(count):
            result = await services.store.add(new_story(**changes))
            ids.append(result.story_id)
        return ids

    return add


async def until_fetched(api: FakeBotAPI, update_id: int) -> None:
    """Wait until the bot has confirmed `update_id` to the server, i.e. queued it.

    Leaving the app's `async with` after this processes every queued update first
    (Application.stop drains the queue and awaits the handler tasks), which is how a test
    checks that something did NOT happen without sleeping.
    """
    await api.until_confirmed(update_id)


# -- PostgreSQL: one real server per test session, a fresh schema per test --------------

_schema_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the whole session, stopped (and its files removed) at the end."""
    try:
        server = start_server()
    except PgUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but no PostgreSQL server could start: {exc}")
        pytest.skip(f"no PostgreSQL server could start here: {exc}")
    try:
        if server.how != "$" + ENV_URL:
            asyncio.run(_make_durability_cheap(server.url))
        yield server
    finally:
        server.stop()


async def _make_durability_cheap(url: str) -> None:
    # A throwaway server: no need to wait for the disk (CREATE DATABASE syncs a lot).
    conn = await asyncpg.connect(url)
    try:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            await conn.execute(f"ALTER SYSTEM SET {setting} = off")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


@pytest.fixture
async def pg_url(pg_server: PgServer) -> AsyncIterator[str]:
    """A URL whose tables live in a new, empty schema on the session's server, dropped after.

    A schema per test rather than a database: CREATE DATABASE costs a few hundred ms.
    """
    name = f"newsbot_test_{os.getpid()}_{next(_schema_numbers)}"
    admin = await asyncpg.connect(pg_server.url)
    try:
        await admin.execute(f'CREATE SCHEMA "{name}"')
        yield schema_url(pg_server.url, name)
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await admin.close()


# -- the story repository on both backends ---------------------------------------------------
# One definition for every module whose repository tests must hold on SQLite and PostgreSQL:
# a test that takes `store` (or `open_repo`) runs once per backend. SQLite-only tests open a
# StoryStore on tmp_path themselves instead, with a comment saying why.

OpenRepo = Callable[..., Awaitable[StoryRepository]]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test: "sqlite" or "postgres"."""
    return str(request.param)


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The test's empty database: a SQLite file in tmp_path or a fresh PostgreSQL schema."""
    if backend == "sqlite":
        return sqlite_url(tmp_path / "news.db")
    # Requested lazily so SQLite cases never start (or skip for want of) a PostgreSQL server.
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def clock() -> FakeClock:
    """The test's clock, shared by every store `open_repo` opens unless one is passed."""
    return FakeClock()


@pytest.fixture
def open_repo(store_url: str, clock: FakeClock) -> OpenRepo:
    """Open the test's store (the same database every time), on `clock` or the given one."""

    async def opener(on_clock: FakeClock | None = None) -> StoryRepository:
        return await open_store(store_url, clock=on_clock or clock)

    return opener


@pytest.fixture
async def store(open_repo: OpenRepo) -> AsyncIterator[StoryRepository]:
    """An open store on the test's backend, closed after the test."""
    async with await open_repo() as opened:
        yield opened

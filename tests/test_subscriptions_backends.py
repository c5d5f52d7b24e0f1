"""The subscription store's behaviour on both backends: SQLite and a real PostgreSQL.

Every test gets a `Stores` pair opened on an empty database of the backend it is
parametrised with: a story store to add stories through, and the subscription store under
test. The PostgreSQL-only tests at the end play several bot workers (one pool each) sharing
one database and check that pushes and digests are claimed exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from storage.errors import QueryError, StoreError
from storage.postgres import PostgresStoryStore
from storage.postgres_subscriptions import PostgresSubscriptionStore
from storage.repository import StoryStore
from storage.subscriptions import (
    MAX_SUBSCRIPTIONS,
    PUSH_MARK_KEY,
    ChatSettings,
    DigestClaim,
    PushClaim,
    SubscriptionRepository,
    SubscriptionStore,
)
from tests.storage_builders import FakeClock, make_story

DAY = "2025-03-10"
NEXT_DAY = "2025-03-11"


@dataclass
class Stores:
    stories: StoryStore | PostgresStoryStore
    subs: SubscriptionRepository
    # Opens another subscription store on the same database (another worker).
    open_another: Callable[[], Awaitable[SubscriptionRepository]]

    async def add(self, *numbers: int, **changes: object) -> list[int]:
        results = await self.stories.add_many([make_story(n, **changes) for n in numbers])
        return [result.story_id for result in results]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def pg_or_none(backend: str, request: pytest.FixtureRequest) -> str | None:
    # A sync fixture: the session's server starts outside the test's event loop.
    return str(request.getfixturevalue("pg_url")) if backend == "postgres" else None


@pytest.fixture
async def stores(pg_or_none: str | None, tmp_path: Path) -> AsyncIterator[Stores]:
    if pg_or_none is None:
        path = tmp_path / "news.db"
        sqlite_stories = await StoryStore.open(path, clock=FakeClock())

        async def open_sqlite() -> SubscriptionRepository:
            return await SubscriptionStore.open(path, clock=FakeClock())

        story_store: StoryStore | PostgresStoryStore = sqlite_stories
        opener: Callable[[], Awaitable[SubscriptionRepository]] = open_sqlite
    else:
        url = pg_or_none
        story_store = await PostgresStoryStore.open(url, clock=FakeClock())

        async def open_postgres() -> SubscriptionRepository:
            return await PostgresSubscriptionStore.open(url, clock=FakeClock())

        opener = open_postgres
    opened: list[SubscriptionRepository] = []

    async def open_another() -> SubscriptionRepository:
        store = await opener()
        opened.append(store)
        return store

    try:
        subs = await open_another()
        yield Stores(story_store, subs, open_another)
    finally:
        for store in opened:
            await store.close()
        await story_store.close()


# -- subscriptions -------------------------------------------------------------------------


async def test_subscribe_unsubscribe_and_list(stores: Stores) -> None:
    subs = stores.subs
    assert await subs.subscribe(1, "Harbour, BRIDGE!")
    assert not await subs.subscribe(1, "bridge harbour")
    assert await subs.subscribe(1, "")
    assert await subs.subscribe(1, "bridgeworks")
    assert await subs.subscribe(2, "zebra")
    # '' first, then byte order (whatever the database's collation): "bridge harbour" before
    # "bridgeworks" because a space sorts before letters.
    assert await subs.subscriptions(1) == ["", "bridge harbour", "bridgeworks"]
    assert await subs.count_chats() == 2
    assert await subs.unsubscribe(1, "harbour bridge")
    assert not await subs.unsubscribe(1, "harbour bridge")
    assert await subs.unsubscribe_all(1) == 2
    assert await subs.unsubscribe_all(1) == 0
    assert await subs.subscriptions(1) == []
    assert await subs.count_chats() == 1


async def test_subscription_limits(stores: Stores) -> None:
    subs = stores.subs
    with pytest.raises(QueryError):
        await subs.subscribe(5, "?! …")
    for n in range(MAX_SUBSCRIPTIONS):
        assert await subs.subscribe(5, f"word{n}")
    with pytest.raises(QueryError):
        await subs.subscribe(5, "one too many")
    # Already there is not "one too many".
    assert not await subs.subscribe(5, "word0")
    assert len(await subs.subscriptions(5)) == MAX_SUBSCRIPTIONS


async def test_settings_timezone_and_digest(stores: Stores) -> None:
    subs = stores.subs
    assert await subs.settings(7) == ChatSettings(7)
    await subs.set_timezone(7, "Asia/Tokyo")
    assert await subs.settings(7) == ChatSettings(7, "Asia/Tokyo")
    await subs.set_digest(7, 8 * 60, done_for=DAY)
    assert await subs.settings(7) == ChatSettings(7, "Asia/Tokyo", 480, DAY)
    # An earlier done_for never moves the mark back.
    await subs.set_digest(7, 9 * 60, done_for="2025-03-09")
    assert await subs.settings(7) == ChatSettings(7, "Asia/Tokyo", 540, DAY)
    await subs.set_digest(7, None)
    assert await subs.settings(7) == ChatSettings(7, "Asia/Tokyo", None, DAY)
    with pytest.raises(ValueError, match=r"0\.\.1439"):
        await subs.set_digest(7, 24 * 60)


async def test_move_chat_and_forget_chat(stores: Stores) -> None:
    subs = stores.subs
    await subs.subscribe(5, "")
    await subs.subscribe(5, "harbour")
    await subs.set_timezone(5, "Europe/Berlin")
    await subs.set_digest(5, 60)
    await subs.move_chat(5, -1005)
    assert await subs.subscriptions(-1005) == ["", "harbour"]
    assert await subs.settings(-1005) == ChatSettings(-1005, "Europe/Berlin", 60, None)
    assert await subs.subscriptions(5) == []
    assert await subs.settings(5) == ChatSettings(5)
    await subs.forget_chat(-1005)
    assert await subs.subscriptions(-1005) == []
    assert await subs.settings(-1005) == ChatSettings(-1005)
    assert await subs.count_chats() == 0


async def test_queries_of(stores: Stores) -> None:
    subs = stores.subs
    await subs.subscribe(1, "b")
    await subs.subscribe(1, "a")
    await subs.subscribe(3, "")
    assert await subs.queries_of([3, 1, 2, 1]) == {1: ["a", "b"], 2: [], 3: [""]}
    assert await subs.queries_of([]) == {}


async def test_a_closed_store_raises_store_error(stores: Stores) -> None:
    other = await stores.open_another()
    await other.close()
    await other.close()
    with pytest.raises(StoreError):
        await other.subscriptions(1)


# -- pushes --------------------------------------------------------------------------------


async def test_push_claims_take_each_range_once(stores: Stores) -> None:
    subs = stores.subs
    first = await stores.add(1, 2)
    # No mark yet: nothing is claimed, and the mark starts after what is stored.
    assert await subs.claim_push() is None
    await subs.start_push_mark()
    assert await subs.claim_push() is None
    added = await stores.add(3, 4, 5)
    assert await subs.claim_push() == PushClaim(first[-1], added[-1])
    assert await subs.claim_push() is None
    more = await stores.add(6)
    assert await subs.claim_push() == PushClaim(added[-1], more[-1])


async def test_start_push_mark_keeps_an_existing_mark(stores: Stores) -> None:
    subs = stores.subs
    await subs.start_push_mark()
    ids = await stores.add(1, 2)
    # A restart must not skip what was stored while the bot was down.
    await subs.start_push_mark()
    assert await subs.claim_push() == PushClaim(0, ids[-1])
    assert await stores.stories.get_meta(PUSH_MARK_KEY) == str(ids[-1])


async def test_push_subscriptions_leave_out_digest_chats(stores: Stores) -> None:
    subs = stores.subs
    await subs.subscribe(2, "b")
    await subs.subscribe(1, "")
    await subs.subscribe(1, "a")
    await subs.subscribe(3, "c")
    await subs.set_digest(3, 60)
    assert await subs.push_subscriptions() == [(1, ""), (1, "a"), (2, "b")]


# -- digests -------------------------------------------------------------------------------


async def test_digests_are_due_once_a_day_at_their_time(stores: Stores) -> None:
    subs = stores.subs
    before = await stores.add(1)
    for chat in (1, 2, 3, 4):
        await subs.subscribe(chat, "")
    await subs.set_digest(1, 8 * 60)
    await subs.set_digest(2, 9 * 60)
    await subs.set_digest(3, 8 * 60)
    await subs.set_timezone(3, "Asia/Tokyo")
    await subs.set_digest(4, 8 * 60)
    await subs.unsubscribe_all(4)  # a digest time but nothing subscribed: never due
    await subs.set_digest(5, 8 * 60)  # no subscriptions at all
    assert await subs.digest_timezones() == ["Asia/Tokyo", "UTC"]
    new = await stores.add(2, 3)

    assert await subs.claim_digests("UTC", DAY, 8 * 60 - 1) == []
    assert await subs.claim_digests("UTC", DAY, 8 * 60) == [DigestClaim(1, before[-1], new[-1])]
    assert await subs.claim_digests("UTC", DAY, 8 * 60) == []
    # A bot that was down at 09:00 catches up later that day, once.
    assert await subs.claim_digests("UTC", DAY, 23 * 60) == [DigestClaim(2, before[-1], new[-1])]
    assert await subs.claim_digests("UTC", DAY, 23 * 60) == []
    assert (await subs.settings(1)).last_digest_on == DAY

    later = await stores.add(4)
    assert await subs.claim_digests("UTC", NEXT_DAY, 10 * 60) == [
        DigestClaim(1, new[-1], later[-1]),
        DigestClaim(2, new[-1], later[-1]),
    ]
    assert await subs.claim_digests("Asia/Tokyo", NEXT_DAY, 8 * 60) == [
        DigestClaim(3, before[-1], later[-1])
    ]


async def test_a_digest_marked_done_today_starts_tomorrow(stores: Stores) -> None:
    subs = stores.subs
    await subs.subscribe(1, "")
    await subs.set_digest(1, 8 * 60, done_for=DAY)
    assert await subs.claim_digests("UTC", DAY, 12 * 60) == []
    ids = await stores.add(1)
    assert await subs.claim_digests("UTC", NEXT_DAY, 8 * 60) == [DigestClaim(1, 0, ids[-1])]


# -- matching ------------------------------------------------------------------------------


async def test_matching_by_range_and_words(stores: Stores) -> None:
    subs = stores.subs
    ids = await stores.add(1, 2, 3, 4)
    await stores.stories.add(
        make_story(5, title="Harbour bridge reopens", cleaned_text="The bridge is open again.")
    )
    await stores.stories.add(
        make_story(6, title="Who said what", cleaned_text="A spokesman for the US and for us.")
    )
    await stores.stories.add(make_story(7, title="Bridge news", cleaned_text="Nothing more."))
    newest = ids[-1] + 3
    assert await subs.matching("", ids[0], ids[2], 10) == [ids[2], ids[1]]
    assert await subs.matching("", 0, newest, 2) == [newest, newest - 1]
    assert await subs.matching("bridge harbour", 0, newest, 10) == [ids[-1] + 1]
    assert await subs.matching("bridge", 0, newest, 10) == [newest, ids[-1] + 1]
    assert await subs.matching("bridge", 0, newest - 1, 10) == [ids[-1] + 1]
    assert await subs.matching(f"item{1}", 0, newest, 10) == [ids[0]]
    assert await subs.matching("absent", 0, newest, 10) == []
    # Words a stop-word list would drop still match, as whole words only.
    assert await subs.matching("us", 0, newest, 10) == [ids[-1] + 2]
    assert await subs.matching("us who", 0, newest, 10) == [ids[-1] + 2]
    assert await subs.matching("u", 0, newest, 10) == []


# -- several workers on one PostgreSQL database ----------------------------------------------

pg_only = pytest.mark.parametrize("backend", ["postgres"])


async def _until_a_claim_waits(url: str) -> None:
    """Return once some session waits for a lock on this schema's stories (polling, bounded)."""
    conn = await asyncpg.connect(url)
    try:
        for _ in range(2000):
            waiting = await conn.fetchval(
                "SELECT count(*) FROM pg_locks "
                "WHERE NOT granted AND relation = to_regclass('stories')"
            )
            if waiting:
                return
            await asyncio.sleep(0.005)
        raise AssertionError("no session ever waited for a lock")
    finally:
        await conn.close()


async def _begin_insert(url: str, n: int) -> tuple[asyncpg.Connection, int]:
    """A connection with an open transaction that inserted story n (not yet committed)."""
    conn = await asyncpg.connect(url)
    await conn.execute("BEGIN")
    story_id = await conn.fetchval(
        """
        INSERT INTO stories (title, language, ingested_at, sort_key, body, cleaned_text,
                             summary, algorithm, sentence_count, fingerprint)
        VALUES ($1, 'english', now(), now(), 'b', 't', $2::jsonb, 'lead', 1, $3)
        RETURNING id
        """,
        f"In flight {n}",
        json.dumps(["s"]),
        f"in-flight-{n}",
    )
    return conn, int(story_id)


@pg_only
async def test_a_push_claim_waits_for_a_story_still_being_written(
    stores: Stores, pg_url: str
) -> None:
    subs = stores.subs
    await stores.add(1)
    await subs.start_push_mark()
    (mark,) = await stores.add(2)
    assert await subs.claim_push() == PushClaim(mark - 1, mark)
    writer, slow_id = await _begin_insert(pg_url, 3)
    try:
        # A later story commits first, with a higher id.
        (fast_id,) = await stores.add(4)
        assert fast_id > slow_id
        claim = asyncio.create_task(subs.claim_push())
        await _until_a_claim_waits(pg_url)
        await writer.execute("COMMIT")
    finally:
        await writer.close()
    assert await claim == PushClaim(mark, fast_id)
    assert await subs.matching("", mark, fast_id, 10) == [fast_id, slow_id]


@pg_only
async def test_a_claim_blocked_by_a_long_write_gives_up_and_takes_it_next_time(
    stores: Stores, pg_url: str
) -> None:
    subs = await PostgresSubscriptionStore.open(pg_url, claim_wait=timedelta(milliseconds=20))
    try:
        await subs.start_push_mark()
        await subs.subscribe(1, "")
        await subs.set_digest(1, 0)
        writer, slow_id = await _begin_insert(pg_url, 1)
        try:
            assert await subs.claim_push() is None
            assert await subs.claim_digests("UTC", DAY, 60) == []
            await writer.execute("COMMIT")
        finally:
            await writer.close()
        assert await subs.claim_push() == PushClaim(0, slow_id)
        assert await subs.claim_digests("UTC", DAY, 60) == [DigestClaim(1, 0, slow_id)]
    finally:
        await subs.close()


async def test_open_refuses_a_database_the_story_store_has_not_migrated(
    pg_url: str,
) -> None:
    with pytest.raises(StoreError, match="open the story store first"):
        await PostgresSubscriptionStore.open(pg_url)


@pg_only
async def test_concurrent_push_claims_cover_every_story_exactly_once(stores: Stores) -> None:
    workers = [stores.subs, await stores.open_another(), await stores.open_another()]
    await stores.subs.start_push_mark()
    claims: list[tuple[PushClaim, list[int]]] = []
    writing = True

    async def claimer(subs: SubscriptionRepository) -> None:
        while writing:
            claim = await subs.claim_push()
            if claim is not None:
                # What the range holds right after the claim must never change later.
                seen = await subs.matching("", claim.after_id, claim.upto_id, 10_000)
                claims.append((claim, seen))
            await asyncio.sleep(0)

    async def writer(first: int) -> list[int]:
        ids: list[int] = []
        for n in range(first, first + 60, 3):
            ids += await stores.add(n, n + 1, n + 2)
        return ids

    tasks = [asyncio.create_task(claimer(subs)) for subs in workers]
    try:
        written = await asyncio.gather(writer(0), writer(1000), writer(2000))
    finally:
        writing = False
        await asyncio.gather(*tasks)
    final = await stores.subs.claim_push()
    if final is not None:
        claims.append((final, await stores.subs.matching("", final.after_id, final.upto_id, 999)))

    every = sorted(story_id for ids in written for story_id in ids)
    ranges = sorted((claim for claim, _ in claims), key=lambda claim: claim.after_id)
    assert ranges[0].after_id == 0
    assert ranges[-1].upto_id == every[-1]
    for earlier, later in itertools.pairwise(ranges):
        assert earlier.upto_id == later.after_id  # disjoint and contiguous
    claimed = sorted(story_id for _, seen in claims for story_id in seen)
    assert claimed == every
    assert len({claim for claim, _ in claims}) == len(claims) > 1


@pg_only
async def test_concurrent_digest_claims_take_every_chat_exactly_once(stores: Stores) -> None:
    workers = [stores.subs, await stores.open_another(), await stores.open_another()]
    chats = range(1, 201)
    for chat in chats:
        await stores.subs.subscribe(chat, "")
        await stores.subs.set_digest(chat, chat % 60)
    ids = await stores.add(1, 2)
    for day in ("2025-03-10", "2025-03-11", "2025-03-12"):
        claimed: list[DigestClaim] = []
        # Every worker runs the digest job for each minute of the hour, all at once.
        for minute in range(0, 60, 7):
            rounds = await asyncio.gather(
                *(subs.claim_digests("UTC", day, minute) for subs in workers)
            )
            for found in rounds:
                claimed += found
        for found in await asyncio.gather(*(s.claim_digests("UTC", day, 59) for s in workers)):
            claimed += found
        assert sorted(claim.chat_id for claim in claimed) == list(chats)
        assert {claim.upto_id for claim in claimed} == {ids[-1]}


# -- copying between stores ----------------------------------------------------------------


async def test_exported_chats_import_into_a_fresh_store_unchanged(stores: Stores) -> None:
    subs = stores.subs
    await stores.add(1, 2)
    await subs.subscribe(-1001234567890, "harbour bridge")  # a supergroup: large negative id
    await subs.subscribe(-1001234567890, "")
    await subs.subscribe(7, "zebra")
    await subs.set_timezone(7, "Europe/Berlin")
    await subs.set_digest(7, 8 * 60, done_for=DAY)
    first = await subs.export_chats(None, 1)
    rest = await subs.export_chats(first[-1].chat_id, 10)
    exported = first + rest
    assert [record.chat_id for record in exported] == [-1001234567890, 7]
    berlin = exported[1]
    assert (berlin.timezone, berlin.digest_minute, berlin.last_digest_on) == (
        "Europe/Berlin",
        480,
        DAY,
    )
    assert [query for query, _ in exported[0].subscriptions] == ["", "bridge harbour"]

    # Into another database of the same backend, twice: the copy is idempotent.
    for chat_id in (-1001234567890, 7):
        await subs.forget_chat(chat_id)
    assert await subs.export_chats(None, 10) == []
    await subs.import_chats(exported)
    await subs.import_chats(exported)
    assert await subs.export_chats(None, 10) == exported
    assert await subs.settings(7) == ChatSettings(7, "Europe/Berlin", 480, DAY)

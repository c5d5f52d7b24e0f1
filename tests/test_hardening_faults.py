"""Telegram misbehaving: the bot recovers without a restart, answers once, loses no ingest.

Faults come from the fake Bot API server (tests/fake_bot_api.py): 5xx answers, a request
held past the client's read timeout, a connection dropped mid-getUpdates, an update served
twice. Faults armed before the app starts hit its very first polls, so the updates already
queued are the ones those failed polls would have carried.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from telegram.request import HTTPXRequest

from bot import formatting as fmt
from bot.app import build_app, running
from bot.services import NewsApp
from bot.settings import Settings
from storage.repository import StoryStore
from tests.conftest import ADMIN, USER, StartBot, until_fetched
from tests.fake_bot_api import FakeBotAPI

ARTICLE = (
    "Kelby opens a new tram line\n\n"
    "The city of Kelby opened its first tram line on Monday after four years of work. "
    "The line links the harbour with the university and has twelve stops."
)
DOCUMENT = b'{"title": "Storm floods harbour", "text": "The storm flooded the harbour."}'
# Long enough for a loaded CI machine to answer a normal request, short enough to keep the
# held requests quick to give up on.
READ_TIMEOUT = 1.0


@asynccontextmanager
async def impatient_bot(settings: Settings) -> AsyncIterator[NewsApp]:
    """The real app with short HTTP timeouts, so a held request times out quickly."""
    request = HTTPXRequest(connection_pool_size=16, read_timeout=READ_TIMEOUT)
    async with running(build_app(settings, request=request, rate_limit=False)) as app:
        yield app


async def stored_titles(settings: Settings) -> list[str]:
    async with await StoryStore.open(settings.database_path) as store:
        return [story.title for story in await store.latest(100)]


async def test_5xx_and_a_dropped_connection_on_get_updates_lose_nothing(
    start_bot: StartBot, api: FakeBotAPI, settings: Settings
) -> None:
    api.fault_next("getUpdates", "status", status=500)
    api.fault_next("getUpdates", "drop")
    api.push_message(f"/add {ARTICLE}", user_id=ADMIN)
    api.push_message("/start", user_id=USER)
    async with start_bot():
        stored = await api.reply_to(ADMIN)
        helped = await api.reply_to(USER)
    failed = [call for call in api.of("getUpdates") if not call.ok]
    assert [call.status for call in failed] == [500, 599]
    assert stored.result["text"].startswith("Stored 1 story")
    assert "/latest" in helped.result["text"]
    assert await stored_titles(settings) == ["Kelby opens a new tram line"]


async def test_an_update_served_twice_is_answered_once(
    start_bot: StartBot, api: FakeBotAPI, settings: Settings
) -> None:
    api.duplicate_next_batch()
    api.push_message(f"/add {ARTICLE}", user_id=ADMIN)
    async with start_bot():
        await api.next_call("sendMessage", chat_id=ADMIN)
        first = api.push_message("/start", user_id=USER)
        await api.reply_to(USER)
        # Served again after it was confirmed, as after a lost confirmation.
        api.deliver_again(first)
        api.deliver_again(first - 1)
        last = api.push_message("/help", user_id=USER)
        await until_fetched(api, last)
    served = [u["update_id"] for call in api.of("getUpdates") for u in call.result or []]
    assert served.count(first - 1) == 3 and served.count(first) == 2
    to_admin = [call for call in api.of("sendMessage") if call.params["chat_id"] == ADMIN]
    to_user = [call for call in api.of("sendMessage") if call.params["chat_id"] == USER]
    assert len(to_admin) == 1 and to_admin[0].result["text"].startswith("Stored 1 story")
    assert len(to_user) == 2, "one answer each for /start and /help"
    assert await stored_titles(settings) == ["Kelby opens a new tram line"]


async def test_5xx_on_a_reply_is_retried_and_the_admin_ingest_kept(
    start_bot: StartBot, api: FakeBotAPI, settings: Settings
) -> None:
    async with start_bot():
        await api.next_call("setMyCommands")
        api.fault_next("sendMessage", "status", status=500)
        api.fault_next("sendMessage", "status", status=502)
        api.push_message(f"/add {ARTICLE}", user_id=ADMIN)
        reply = await api.reply_to(ADMIN)
    assert reply.result["text"].startswith("Stored 1 story")
    failed = [call.status for call in api.of("sendMessage") if not call.ok]
    assert failed == [500, 502]
    assert len([call for call in api.of("sendMessage") if call.ok]) == 1
    assert await stored_titles(settings) == ["Kelby opens a new tram line"]


async def test_a_reply_held_past_the_timeout_gets_one_answer_and_the_bot_carries_on(
    api: FakeBotAPI, settings: Settings
) -> None:
    async with impatient_bot(settings):
        await api.next_call("setMyCommands")
        api.fault_next("sendMessage", "hang")
        api.push_message(f"/add {ARTICLE}", user_id=ADMIN)
        held = await api.next_call("sendMessage", ok=False)
        # A timed-out send may have been delivered, so it is not repeated: the user hears
        # about a failure instead, once.
        answer = await api.reply_to(ADMIN)
        api.push_message("/start", user_id=USER)
        after = await api.reply_to(USER)
    assert held.status == 599
    assert answer.result["text"] == fmt.ERROR_REPLY
    assert "/latest" in after.result["text"]
    assert len([call for call in api.of("sendMessage") if call.ok]) == 2
    # The story was stored before the reply was lost.
    assert await stored_titles(settings) == ["Kelby opens a new tram line"]


async def test_a_document_download_that_times_out_is_tried_again(
    api: FakeBotAPI, settings: Settings
) -> None:
    async with impatient_bot(settings):
        await api.next_call("setMyCommands")
        api.fault_next("getFile", "hang")
        api.push_message(user_id=ADMIN, document=api.add_file(DOCUMENT, "news.json"))
        reply = await api.reply_to(ADMIN)
    assert reply.result["text"].startswith("Stored 1 story")
    assert [call.ok for call in api.of("getFile")] == [False, True]
    assert await stored_titles(settings) == ["Storm floods harbour"]

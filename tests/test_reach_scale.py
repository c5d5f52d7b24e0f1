"""A digest to 1,000 chats through the real AIORateLimiter and the fake Bot API server.

Telegram allows about 30 messages a second overall, so 1,000 digests take 33 s at the real
pace. The limiter here keeps its shape (same class, same code path, the real per-group limit
of 20 a minute) with the overall rate scaled up so the test takes a couple of seconds; what
is proved is that every send goes through the limiter and each chat gets exactly one
message, with no 429 and no loss from concurrency (32 workers share the chats).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import pytest
from telegram.ext import AIORateLimiter

from bot import delivery
from bot.app import build_app, running
from bot.services import NewsApp, Services
from bot.settings import Settings
from tests.conftest import NewStoryFactory
from tests.fake_bot_api import FakeBotAPI

CHATS = 1000
GROUPS = 100  # of them group chats (negative ids), paced per group too
# 08:00 in Berlin (winter time) and 07:00 UTC are the same moment.
NOW = datetime(2030, 1, 15, 7, 0, tzinfo=UTC)


class CountingLimiter(AIORateLimiter):
    """AIORateLimiter that counts the sendMessage calls it paced."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.paced: Counter[str] = Counter()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        self.paced[endpoint] += 1
        return await super().process_request(
            callback, args, kwargs, endpoint, data, rate_limit_args
        )


@pytest.fixture
def limiter() -> CountingLimiter:
    # 30/s scaled to 600/s; the per-group limit stays Telegram's 20 a minute.
    return CountingLimiter(overall_max_rate=600, overall_time_period=1, max_retries=3)


@pytest.fixture
async def limited_bot(
    settings: Settings, api: FakeBotAPI, limiter: CountingLimiter
) -> AsyncIterator[NewsApp]:
    async with running(build_app(settings, rate_limit=True, rate_limiter=limiter)) as app:
        await api.next_call("setMyCommands")
        yield app


async def test_a_thousand_chats_get_one_digest_each(
    limited_bot: NewsApp, api: FakeBotAPI, limiter: CountingLimiter, new_story: NewStoryFactory
) -> None:
    services: Services = limited_bot.bot_data.services
    subscriptions = services.subscriptions
    chats = [n for n in range(1, CHATS - GROUPS + 1)] + [-n for n in range(1, GROUPS + 1)]
    for index, chat_id in enumerate(chats):
        await subscriptions.subscribe(chat_id, "" if index % 2 else "harbour")
        if index % 3 == 0:
            await subscriptions.set_timezone(chat_id, "Europe/Berlin")
            await subscriptions.set_digest(chat_id, 8 * 60)
        else:
            await subscriptions.set_digest(chat_id, 7 * 60)
    await services.store.add_many([new_story() for _ in range(3)])

    report = await delivery.send_digests(limited_bot.bot, services, NOW)

    assert (report.chats, report.sent, report.removed, report.failed) == (CHATS, CHATS, [], [])
    sends = api.of("sendMessage")
    assert [call.status for call in sends if not call.ok] == []  # no 429, nothing refused
    per_chat = Counter(call.params["chat_id"] for call in sends)
    assert set(per_chat) == set(chats)
    assert set(per_chat.values()) == {1}
    assert limiter.paced["sendMessage"] == CHATS
    assert all("Your digest" in call.result["text"] for call in sends)
    # A second run at the same moment finds every digest already sent.
    assert (await delivery.send_digests(limited_bot.bot, services, NOW)).chats == 0

"""How the bot copes with Telegram pushing back: flood limits, refused requests."""

from __future__ import annotations

from bot.services import NewsApp
from tests.conftest import USER, StartBot
from tests.fake_bot_api import FakeBotAPI


async def test_429_is_retried_by_the_rate_limiter(start_bot: StartBot, api: FakeBotAPI) -> None:
    async with start_bot(rate_limit=True):
        await api.next_call("setMyCommands")
        api.fail_next("sendMessage", retry_after=1)
        api.push_message("/start", user_id=USER)
        refused = await api.next_call("sendMessage", ok=False, chat_id=USER)
        assert refused.status == 429
        delivered = await api.reply_to(USER)
        assert delivered.params["text"] == refused.params["text"]


async def test_a_failing_handler_tells_the_user(bot: NewsApp, api: FakeBotAPI) -> None:
    # The first reply is refused for good (no rate limiter here), so the handler raises and
    # the error handler must still say something.
    api.fail_next("sendMessage", retry_after=1)
    api.push_message("/start", user_id=USER)
    reply = await api.reply_to(USER)
    assert "something went wrong" in reply.result["text"]

"""Resource limits: floods are throttled per user with one notice, state stays bounded,
oversized documents are refused before a byte is downloaded."""

from __future__ import annotations

import pytest

from bot.app import build_app, running
from bot.guard import FLOOD_NOTICE, FloodLimiter, SeenUpdates, UpdateGuard, Verdict
from bot.services import NewsApp
from bot.settings import Settings
from tests.conftest import ADMIN, USER, StartBot, until_fetched
from tests.fake_bot_api import FakeBotAPI

FLOOD = 1000
BURST = 5


class FrozenClock:
    """Time that moves only when the test says so: no timing in the assertions."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_flood_from_one_user_is_throttled_with_one_notice(
    api: FakeBotAPI, settings: Settings
) -> None:
    guard = UpdateGuard(flood=FloodLimiter(burst=BURST, per_second=1.0, clock=FrozenClock()))
    async with running(build_app(settings, rate_limit=False, guard=guard)):
        await api.next_call("setMyCommands")
        for number in range(FLOOD):
            api.push_message("/start", user_id=USER)
            if number % 100 == 0:
                # Others are unaffected meanwhile: another reader, and an admin.
                api.push_message("/help", user_id=USER + 1)
                api.push_message("/stats", user_id=ADMIN)
        last = api.push_message("/help", user_id=USER + 1)
        await until_fetched(api, last)
    replies = [call for call in api.of("sendMessage") if call.params["chat_id"] == USER]
    notices = [call for call in replies if call.params["text"] == FLOOD_NOTICE]
    assert len(notices) == 1
    assert len(replies) == BURST + 1
    assert all(call.ok for call in replies)
    other = [call for call in api.of("sendMessage") if call.params["chat_id"] == USER + 1]
    # The other reader sent 11 messages: a burst of 5 gets answers, then one notice.
    assert len(other) == BURST + 1
    admin = [call for call in api.of("sendMessage") if call.params["chat_id"] == ADMIN]
    assert len(admin) == FLOOD // 100 and all("Stories:" in c.params["text"] for c in admin)


async def test_a_flood_of_button_presses_gets_one_notice(
    api: FakeBotAPI, settings: Settings
) -> None:
    guard = UpdateGuard(flood=FloodLimiter(burst=BURST, per_second=1.0, clock=FrozenClock()))
    shown = api.message("Latest stories", user_id=None, chat_id=USER)
    async with running(build_app(settings, rate_limit=False, guard=guard)):
        await api.next_call("setMyCommands")
        for _ in range(50):
            last = api.push_callback(shown, "x", user_id=USER)
        await until_fetched(api, last)
    answers = [call.params.get("text") for call in api.of("answerCallbackQuery")]
    assert answers.count(FLOOD_NOTICE) == 1
    assert len(answers) == BURST + 1


def test_the_limiter_refills_and_warns_again_only_after_calming_down() -> None:
    clock = FrozenClock()
    limiter = FloodLimiter(burst=2, per_second=0.5, clock=clock)
    assert [limiter.check(1) for _ in range(4)] == [
        Verdict.ALLOW,
        Verdict.ALLOW,
        Verdict.NOTIFY,
        Verdict.DROP,
    ]
    clock.now = 2.0  # one token back: allowed, but the flood is not over, so no new notice
    assert [limiter.check(1) for _ in range(2)] == [Verdict.ALLOW, Verdict.DROP]
    clock.now = 100.0  # a long quiet spell: a full bucket, and a fresh notice next time
    assert [limiter.check(1) for _ in range(3)] == [Verdict.ALLOW, Verdict.ALLOW, Verdict.NOTIFY]


def test_limiter_and_dedupe_state_stay_bounded() -> None:
    limiter = FloodLimiter(burst=1, per_second=0.001, max_senders=100, clock=FrozenClock())
    for sender in range(100_000):
        assert limiter.check(sender) is Verdict.ALLOW
        assert len(limiter) <= 100
    # The most recent senders are the ones remembered.
    assert limiter.check(99_999) is Verdict.NOTIFY
    assert limiter.check(0) is Verdict.ALLOW  # evicted long ago: starts afresh

    seen = SeenUpdates(size=100)
    assert all(seen.first_time(update_id) for update_id in range(100_000))
    assert len(seen) == 100
    assert not seen.first_time(99_999)
    assert seen.first_time(5)


def test_limiter_refuses_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="positive"):
        FloodLimiter(burst=0)


async def test_many_senders_keep_the_guard_bounded(api: FakeBotAPI, settings: Settings) -> None:
    guard = UpdateGuard(
        flood=FloodLimiter(max_senders=50, clock=FrozenClock()), seen=SeenUpdates(size=100)
    )
    async with running(build_app(settings, rate_limit=False, guard=guard)):
        await api.next_call("setMyCommands")
        for user_id in range(10_000, 10_120):
            last = api.push_message("hello", user_id=user_id)
        await until_fetched(api, last)
    assert len(guard.flood) == 50
    assert len(guard.seen) == 100
    assert len(api.of("sendMessage")) == 120  # everyone was answered once


@pytest.mark.parametrize("size_in_message", [True, False])
async def test_a_50_mb_document_is_refused_before_download(
    start_bot: StartBot, api: FakeBotAPI, size_in_message: bool
) -> None:
    async with start_bot(max_document_bytes=5_000_000):
        await api.next_call("setMyCommands")
        document = api.add_file(
            b'{"text": "small"}',
            "huge.jsonl",
            file_size=50 * 1024 * 1024,
            size_in_message=size_in_message,
        )
        api.push_message(user_id=ADMIN, document=document)
        reply = await api.reply_to(ADMIN)
    assert "52,428,800 bytes; the limit is 5,000,000" in reply.result["text"]
    assert api.downloads == []
    # Without a size in the message, getFile (which only describes the file) tells it.
    assert len(api.of("getFile")) == (0 if size_in_message else 1)


async def test_the_default_app_throttles_floods(bot: NewsApp, api: FakeBotAPI) -> None:
    # The production defaults, as build_app makes them: a burst of ten, then a notice.
    for _ in range(30):
        last = api.push_message("/start", user_id=USER)
    await until_fetched(api, last)
    notice = await api.next_call("sendMessage", chat_id=USER, text=FLOOD_NOTICE)
    assert notice.ok

"""Subscriptions through the fake Bot API server: commands, groups, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import delivery
from bot.services import NewsApp, NewsContext, Services
from storage.errors import QueryError
from storage.repository import StoryStore
from storage.subscriptions import MAX_SUBSCRIPTIONS, SubscriptionStore, normalise_query
from tests.conftest import ADMIN, USER, StartBot
from tests.fake_bot_api import Call, FakeBotAPI

GROUP = -500
BOT = "newsbot_test_bot"


async def ask(api: FakeBotAPI, text: str, user_id: int = USER) -> Call:
    api.push_message(text, user_id=user_id)
    return await api.reply_to(user_id)


async def ask_in_group(api: FakeBotAPI, text: str, user_id: int = USER) -> Call:
    api.push_message(text, user_id=user_id, chat_id=GROUP, chat_type="group")
    return await api.reply_to(GROUP)


async def test_subscriptions_are_listed_removed_and_survive_a_restart(
    start_bot: StartBot, api: FakeBotAPI
) -> None:
    async with start_bot():
        await api.next_call("setMyCommands")
        reply = await ask(api, "/subscribe")
        assert "Subscribed to every new story" in reply.result["text"]
        reply = await ask(api, "/subscribe Harbour, BRIDGE!")
        assert "Subscribed to stories with “bridge harbour”" in reply.result["text"]
        reply = await ask(api, "/subscribe bridge harbour")
        assert "Already subscribed" in reply.result["text"]
        reply = await ask(api, "/subscriptions")
        assert "• every new story" in reply.result["text"]
        assert "• bridge harbour" in reply.result["text"]

    async with start_bot():
        await api.next_call("setMyCommands")
        reply = await ask(api, "/subscriptions")
        assert "• every new story" in reply.result["text"]
        assert "• bridge harbour" in reply.result["text"]
        reply = await ask(api, "/unsubscribe harbour bridge")
        assert "Unsubscribed from stories with “bridge harbour”" in reply.result["text"]
        reply = await ask(api, "/unsubscribe harbour bridge")
        assert "No such subscription" in reply.result["text"]
        reply = await ask(api, "/unsubscribe all")
        assert "Unsubscribed from 1 subscriptions" in reply.result["text"]
        reply = await ask(api, "/subscriptions")
        assert "no subscriptions" in reply.result["text"]
    assert not api.rejected


async def test_words_without_letters_are_refused(bot: NewsApp, api: FakeBotAPI) -> None:
    reply = await ask(api, "/subscribe !!! ???")
    assert "Cannot subscribe to that" in reply.result["text"]


async def test_the_jobs_are_scheduled_and_commands_registered(
    bot: NewsApp, api: FakeBotAPI
) -> None:
    assert bot.job_queue is not None
    names = {job.name for job in bot.job_queue.jobs()}
    assert {delivery.PUSH_JOB, delivery.DIGEST_JOB} <= names
    # Their callbacks run as the JobQueue runs them (nothing is due or new here).
    await delivery.digest_job(NewsContext(bot))
    await delivery.push_job(NewsContext(bot))
    assert not api.of("sendMessage")
    (call,) = api.of("setMyCommands")
    commands = {command["command"] for command in call.params["commands"]}
    assert {"subscribe", "unsubscribe", "subscriptions", "digest", "timezone", "post"} <= commands


async def test_timezone_and_digest_commands(bot: NewsApp, api: FakeBotAPI) -> None:
    reply = await ask(api, "/timezone mars/olympus")
    assert "Unknown time zone" in reply.result["text"]
    reply = await ask(api, "/timezone europe/berlin")
    assert "Time zone set to Europe/Berlin" in reply.result["text"]
    reply = await ask(api, "/digest 25:00")
    assert "Usage: /digest HH:MM" in reply.result["text"]
    reply = await ask(api, "/digest 7:30")
    assert "Daily digest at 07:30 (Europe/Berlin)" in reply.result["text"]
    assert "Nothing is subscribed yet" in reply.result["text"]
    await ask(api, "/subscribe")
    reply = await ask(api, "/subscriptions")
    assert "One digest a day at 07:30 (Europe/Berlin)" in reply.result["text"]
    reply = await ask(api, "/digest off")
    assert "Digest off" in reply.result["text"]
    reply = await ask(api, "/subscriptions")
    assert "New stories arrive as they are stored" in reply.result["text"]


async def test_in_a_group_only_admins_change_subscriptions(
    bot: NewsApp, api: FakeBotAPI, services: Services
) -> None:
    # Privacy mode: the bot sees only commands, addressed to it with its @username.
    reply = await ask_in_group(api, f"/subscribe@{BOT} election")
    assert "only its admins" in reply.result["text"]
    assert await services.subscriptions.subscriptions(GROUP) == []

    api.chat_admins[GROUP] = {USER}
    reply = await ask_in_group(api, f"/subscribe@{BOT} election")
    assert "Subscribed to stories with “election”" in reply.result["text"]
    # Reading the list is for everyone in the group.
    reply = await ask_in_group(api, f"/subscriptions@{BOT}", user_id=77)
    assert "• election" in reply.result["text"]
    # The bot's own admins may too, without being group admins.
    reply = await ask_in_group(api, "/unsubscribe all", user_id=ADMIN)
    assert "Unsubscribed from 1" in reply.result["text"]
    assert {int(call.params["user_id"]) for call in api.of("getChatMember")} == {USER}


async def test_a_command_for_another_bot_in_a_group_is_ignored(
    bot: NewsApp, api: FakeBotAPI, services: Services
) -> None:
    api.chat_admins[GROUP] = {USER}
    api.push_message("/subscribe@some_other_bot", user_id=USER, chat_id=GROUP, chat_type="group")
    # The next reply in the group answers the second command: the first got none, and
    # changed nothing.
    reply = await ask_in_group(api, f"/subscriptions@{BOT}")
    assert "no subscriptions" in reply.result["text"]
    assert await services.subscriptions.subscriptions(GROUP) == []


def test_subscription_words_are_normalised() -> None:
    assert normalise_query("") == ""
    assert normalise_query("  Harbour, bridge  HARBOUR ") == "bridge harbour"
    with pytest.raises(QueryError):
        normalise_query("?!")


async def test_store_limits_and_chat_moves(db_path: Path) -> None:
    async with await StoryStore.open(db_path):
        subscriptions = await SubscriptionStore.open(db_path)
        try:
            for n in range(MAX_SUBSCRIPTIONS):
                assert await subscriptions.subscribe(5, f"word{n}")
            with pytest.raises(QueryError):
                await subscriptions.subscribe(5, "one too many")
            await subscriptions.set_timezone(5, "Asia/Tokyo")
            # A group upgraded to a supergroup keeps everything under its new id.
            await subscriptions.move_chat(5, -1005)
            assert len(await subscriptions.subscriptions(-1005)) == MAX_SUBSCRIPTIONS
            assert (await subscriptions.settings(-1005)).timezone == "Asia/Tokyo"
            assert await subscriptions.subscriptions(5) == []
            await subscriptions.forget_chat(-1005)
            assert await subscriptions.count_chats() == 0
        finally:
            await subscriptions.close()

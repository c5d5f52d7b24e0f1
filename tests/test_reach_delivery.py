"""Pushes and digests through the fake Bot API server: ingest hooks, clocks, blocked chats."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot import delivery
from bot.services import NewsApp, NewsContext, Services
from storage.backend import open_store
from tests.conftest import ADMIN, BACKENDS, USER, NewStoryFactory, Seed, both_backends
from tests.fake_bot_api import BLOCKED, FakeBotAPI, story_ids


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str | None:
    # Every scenario here runs on SQLite and on PostgreSQL.
    return both_backends(request)


# Far in the future, so that "/digest" set today (real clock) never counts as that day.
DAY = datetime(2030, 6, 1, tzinfo=UTC)


def sent_to(api: FakeBotAPI, chat_id: int) -> list[str]:
    return [
        call.result["text"]
        for call in api.of("sendMessage")
        if call.ok and call.params["chat_id"] == chat_id
    ]


async def test_ingest_hook_pushes_new_stories_grouped_per_chat(
    bot: NewsApp, api: FakeBotAPI, services: Services, new_story: NewStoryFactory
) -> None:
    await services.subscriptions.subscribe(10, "")
    await services.subscriptions.subscribe(11, "election")
    results = await services.store.add_many(
        [new_story(), new_story(title="Election night in Kelby"), new_story()]
    )
    ids = [result.story_id for result in results]
    # What /add and a document do once stories are stored.
    await services.after_ingest(ids)

    everything = await api.reply_to(10)
    assert "New stories" in everything.result["text"]
    assert sorted(story_ids(everything.result["text"])) == ids
    election = await api.reply_to(11)
    assert story_ids(election.result["text"]) == [ids[1]]
    assert "Election night in Kelby" in election.result["text"]
    assert 'href="https://news.example/' in election.params["text"]


async def test_stories_from_another_process_reach_subscribers_via_the_job(
    bot: NewsApp, api: FakeBotAPI, services: Services, new_story: NewStoryFactory
) -> None:
    await services.subscriptions.subscribe(USER, "harbour")
    # The CLI seeding the same database file from another process.
    async with await open_store(services.settings.store_url) as other:
        added = await other.add(new_story(title="Harbour lights festival"))
    # The periodic job's callback, called directly instead of waiting a minute.
    await delivery.push_job(NewsContext(bot))
    pushed = await api.reply_to(USER)
    assert story_ids(pushed.result["text"]) == [added.story_id]
    assert "New story" in pushed.result["text"]
    # The mark moved: the next run sends nothing.
    report = await delivery.push_new(bot.bot, services)
    assert report.chats == 0


async def test_an_admin_add_reaches_subscribers(
    bot: NewsApp, api: FakeBotAPI, services: Services
) -> None:
    await services.subscriptions.subscribe(USER, "")
    api.push_message(
        "/add Lighthouse restored\n\nThe old lighthouse on Kelby point shines again after "
        "two years of work by volunteers. It guides ships into the harbour.",
        user_id=ADMIN,
    )
    stored = await api.reply_to(ADMIN)
    assert "Stored 1 story" in stored.result["text"]
    # Pushed by the ingest hook if admin.py calls Services.after_ingest, else by the job.
    await delivery.push_job(NewsContext(bot))
    pushed = await api.reply_to(USER)
    assert "Lighthouse restored" in pushed.result["text"]
    assert len(sent_to(api, USER)) == 1


async def test_the_first_start_does_not_push_the_back_catalogue(
    bot: NewsApp, api: FakeBotAPI, services: Services, seed: Seed
) -> None:
    # The mark was set when the bot started; stories stored before a subscription but
    # after the start are new, older ones are not.
    await seed(2)
    await services.subscriptions.subscribe(USER, "")
    report = await delivery.push_new(bot.bot, services)
    assert report.sent == 1
    assert len(story_ids((await api.reply_to(USER)).result["text"])) == 2


async def test_many_new_stories_make_one_message_with_a_count(
    bot: NewsApp, api: FakeBotAPI, services: Services, seed: Seed
) -> None:
    await services.subscriptions.subscribe(USER, "")
    ids = await seed(14)
    await delivery.push_new(bot.bot, services)
    (text,) = sent_to(api, USER)
    assert story_ids(text) == ids[::-1][:10]
    assert "…and 4 more: /latest" in text


async def test_digest_goes_out_once_a_day_at_the_chats_local_time(
    bot: NewsApp, api: FakeBotAPI, services: Services, seed: Seed
) -> None:
    subscriptions = services.subscriptions
    await subscriptions.subscribe(USER, "")
    await subscriptions.set_timezone(USER, "Europe/Berlin")
    (before,) = await seed()
    await delivery.set_digest(subscriptions, USER, 8 * 60, DAY - timedelta(days=1))
    ids = await seed(2)

    # A digest chat gets no pushes.
    assert (await delivery.push_new(bot.bot, services)).chats == 0
    # 05:59 UTC is 07:59 in Berlin (summer time): not yet.
    assert (
        await delivery.send_digests(bot.bot, services, DAY.replace(hour=5, minute=59))
    ).chats == 0
    report = await delivery.send_digests(bot.bot, services, DAY.replace(hour=6))
    assert report.sent == 1
    digest = await api.reply_to(USER)
    assert "Your digest · 2030-06-01" in digest.result["text"]
    assert sorted(story_ids(digest.result["text"])) == ids
    assert before not in story_ids(digest.result["text"])
    # Later that day: already sent.
    assert (await delivery.send_digests(bot.bot, services, DAY.replace(hour=20))).chats == 0
    # Next day, nothing new: no message at all.
    next_day = DAY.replace(hour=6) + timedelta(days=1)
    assert (await delivery.send_digests(bot.bot, services, next_day)).chats == 0
    (newer,) = await seed()
    # The day after, a bot that was down at 08:00 catches up when it runs again.
    late = DAY.replace(hour=15) + timedelta(days=2)
    assert (await delivery.send_digests(bot.bot, services, late)).sent == 1
    assert story_ids((await api.reply_to(USER)).result["text"]) == [newer]
    assert len(sent_to(api, USER)) == 2


async def test_a_digest_job_running_in_two_workers_delivers_once(
    bot: NewsApp, api: FakeBotAPI, services: Services, seed: Seed
) -> None:
    # A second worker: its own stores (connections, pool) on the same database.
    other = await Services.open(services.settings)
    try:
        chats = [USER, *range(7001, 7011)]
        for chat in chats:
            await services.subscriptions.subscribe(chat, "")
            await delivery.set_digest(services.subscriptions, chat, 6 * 60, DAY)
        ids = await seed(3)
        due = DAY.replace(hour=7) + timedelta(days=1)
        reports = await asyncio.gather(
            delivery.send_digests(bot.bot, services, due),
            delivery.send_digests(bot.bot, other, due),
        )
        assert sum(report.sent for report in reports) == len(chats)
        for chat in chats:
            (text,) = sent_to(api, chat)
            assert sorted(story_ids(text)) == ids
    finally:
        await other.close()


async def test_setting_a_digest_time_already_passed_today_starts_tomorrow(
    bot: NewsApp, api: FakeBotAPI, services: Services, seed: Seed
) -> None:
    await services.subscriptions.subscribe(USER, "")
    await delivery.set_digest(services.subscriptions, USER, 9 * 60, DAY.replace(hour=10))
    await seed()
    assert (await delivery.send_digests(bot.bot, services, DAY.replace(hour=11))).chats == 0
    tomorrow = DAY.replace(hour=9) + timedelta(days=1)
    assert (await delivery.send_digests(bot.bot, services, tomorrow)).sent == 1


async def test_a_chat_that_blocked_the_bot_is_unsubscribed(
    bot: NewsApp, api: FakeBotAPI, services: Services, seed: Seed
) -> None:
    for chat_id in (20, 21, 22):
        await services.subscriptions.subscribe(chat_id, "")
    api.block(21)
    api.block(22, "Forbidden: bot was kicked from the group chat")
    await seed()
    report = await delivery.push_new(bot.bot, services)
    assert report.sent == 1
    assert sorted(report.removed) == [21, 22]
    refused = [call for call in api.of("sendMessage") if call.status == 403]
    assert {call.params["chat_id"] for call in refused} == {21, 22}
    assert refused[0].error in (BLOCKED, "Forbidden: bot was kicked from the group chat")
    assert await services.subscriptions.subscriptions(21) == []
    assert await services.subscriptions.subscriptions(20) == [""]

    # Never tried again.
    await seed()
    report = await delivery.push_new(bot.bot, services)
    assert (report.chats, report.sent, report.removed) == (1, 1, [])
    assert len([call for call in api.of("sendMessage") if call.status == 403]) == 2

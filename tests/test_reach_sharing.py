"""Inline mode and channel posts through the fake Bot API server."""

from __future__ import annotations

from typing import Any

import pytest

from bot import formatting as fmt
from bot.handlers.reach import INLINE_CACHE_SECONDS
from bot.services import NewsApp
from tests.conftest import ADMIN, BACKENDS, USER, Seed, both_backends
from tests.fake_bot_api import FakeBotAPI, parse_telegram_html, utf16_len


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str | None:
    # Every scenario here runs on SQLite and on PostgreSQL.
    return both_backends(request)


NASTY_TITLE = 'Tom & Jerry <script>alert("x")</script> at the harbour'
NASTY_SUMMARY = ("Cats & dogs <b>not bold</b> agree.", "Nothing is <i>escaped</i> twice.")
NASTY_URL = "https://news.example/a?x=1&y=2"


async def inline(api: FakeBotAPI, query: str) -> list[dict[str, Any]]:
    query_id = api.push_inline_query(query, user_id=USER)
    call = await api.next_call("answerInlineQuery", inline_query_id=query_id)
    assert int(call.params["cache_time"]) == INLINE_CACHE_SECONDS
    results: list[dict[str, Any]] = call.params["results"]
    return results


async def test_an_empty_inline_query_offers_the_latest_stories(
    bot: NewsApp, api: FakeBotAPI, seed: Seed
) -> None:
    ids = await seed(fmt.INLINE_RESULTS + 5)
    results = await inline(api, "")
    assert [int(result["id"]) for result in results] == ids[::-1][: fmt.INLINE_RESULTS]
    assert not api.rejected


async def test_inline_results_are_escaped_and_within_limits(
    bot: NewsApp, api: FakeBotAPI, seed: Seed
) -> None:
    (nasty,) = await seed(title=NASTY_TITLE, summary=NASTY_SUMMARY, url=NASTY_URL)
    (huge,) = await seed(
        title="Harbour " + "very long headline " * 60,
        summary=("A harbour sentence that goes on and on. " * 300,),
        url="https://news.example/" + "x" * 3000,  # too long to be a link
    )
    await seed(title="Unrelated election", cleaned_text="Voters chose a mayor.")
    results = await inline(api, "harbour")
    by_id = {int(result["id"]): result for result in results}
    assert set(by_id) == {nasty, huge}
    assert not api.rejected  # the fake server checks HTML, lengths, ids like Telegram

    shared = by_id[nasty]
    # Title and description are plain text on Telegram's side: shown as-is, not escaped.
    assert shared["title"] == NASTY_TITLE
    assert shared["description"] == " ".join(NASTY_SUMMARY)
    content = shared["input_message_content"]
    assert content["parse_mode"] == "HTML"
    markup = content["message_text"]
    assert "&lt;script&gt;" in markup and "<script>" not in markup
    assert 'href="https://news.example/a?x=1&amp;y=2"' in markup
    shown = parse_telegram_html(markup)
    assert NASTY_TITLE in shown
    assert "Cats & dogs <b>not bold</b> agree." in shown
    assert f"#{nasty}" not in shown  # ids mean nothing to whoever receives the share
    assert content["link_preview_options"]["url"] == NASTY_URL

    long = by_id[huge]
    assert len(long["title"]) <= fmt.INLINE_TITLE_CHARS
    assert len(long["description"]) <= fmt.INLINE_DESCRIPTION_CHARS
    long_text = long["input_message_content"]["message_text"]
    assert utf16_len(parse_telegram_html(long_text)) <= fmt.MAX_MESSAGE
    assert "<a " not in long_text


async def test_an_inline_query_without_matches_or_words_answers_empty(
    bot: NewsApp, api: FakeBotAPI, seed: Seed
) -> None:
    await seed()
    assert await inline(api, "zeppelin") == []
    assert await inline(api, "*** ???") == []


async def test_an_admin_posts_a_story_to_a_channel(
    bot: NewsApp, api: FakeBotAPI, seed: Seed
) -> None:
    (story_id,) = await seed(title=NASTY_TITLE, url=NASTY_URL)
    api.add_channel("@mynews", -1001234567)
    api.push_message(f"/post {story_id} @mynews", user_id=ADMIN)
    posted = await api.next_call("sendMessage", chat_id="@mynews")
    shown = posted.result["text"]
    assert NASTY_TITLE in shown
    assert posted.params["link_preview_options"]["url"] == NASTY_URL
    assert "reply_markup" not in posted.params  # no buttons in a channel
    confirmation = await api.reply_to(ADMIN)
    assert f"Posted #{story_id} to @mynews." in confirmation.result["text"]


async def test_post_explains_why_it_cannot_post(bot: NewsApp, api: FakeBotAPI, seed: Seed) -> None:
    (story_id,) = await seed()
    api.add_channel("@closed", -1009999999, can_post=False)
    api.push_message(f"/post {story_id} @closed", user_id=ADMIN)
    reply = await api.reply_to(ADMIN)
    assert "I can't post in @closed: add me to it as an admin" in reply.result["text"]

    api.push_message(f"/post {story_id} @nowhere", user_id=ADMIN)
    reply = await api.reply_to(ADMIN)
    assert "I can't find @nowhere" in reply.result["text"]

    api.push_message("/post 99999 @closed", user_id=ADMIN)
    assert "No story #99999" in (await api.reply_to(ADMIN)).result["text"]
    api.push_message("/post @closed", user_id=ADMIN)
    assert "Usage: /post" in (await api.reply_to(ADMIN)).result["text"]


async def test_only_admins_post(bot: NewsApp, api: FakeBotAPI, seed: Seed) -> None:
    (story_id,) = await seed()
    api.add_channel("@mynews", -1001234567)
    api.push_message(f"/post {story_id} @mynews", user_id=USER)
    reply = await api.reply_to(USER)
    assert "Only admins" in reply.result["text"]
    assert not [call for call in api.of("sendMessage") if call.params["chat_id"] == "@mynews"]

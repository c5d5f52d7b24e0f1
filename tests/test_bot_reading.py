"""Reading commands through the fake Bot API server, as a user would."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot import services as services_module
from bot.services import NewsApp, Services
from storage.models import Link
from summarize import summarizers
from tests.conftest import ADMIN, BACKENDS, USER, NewStoryFactory, Seed, both_backends
from tests.fake_bot_api import Call, FakeBotAPI, buttons, story_ids


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str | None:
    # Every scenario here runs on SQLite and on PostgreSQL.
    return both_backends(request)


async def ask(api: FakeBotAPI, text: str, user_id: int = USER) -> Call:
    api.push_message(text, user_id=user_id)
    return await api.reply_to(user_id)


async def test_start_lists_every_command(bot: NewsApp, api: FakeBotAPI) -> None:
    reply = await ask(api, "/start")
    for command in ("/latest", "/story", "/related", "/search", "/help"):
        assert command in reply.result["text"]
    assert "/delete" not in reply.result["text"]
    assert reply.params["link_preview_options"] == {"is_disabled": True}


async def test_help_for_an_admin_lists_admin_commands(bot: NewsApp, api: FakeBotAPI) -> None:
    reply = await ask(api, "/help", ADMIN)
    for command in ("/add", "/delete", "/stats", "/latest"):
        assert command in reply.result["text"]


async def test_commands_are_registered_with_telegram(bot: NewsApp, api: FakeBotAPI) -> None:
    (call,) = api.of("setMyCommands")
    names = {command["command"] for command in call.params["commands"]}
    assert {"latest", "story", "related", "search", "help"} <= names


async def test_latest_on_an_empty_store_says_so(bot: NewsApp, api: FakeBotAPI) -> None:
    reply = await ask(api, "/latest")
    assert "No stories" in reply.result["text"]


async def test_latest_shows_newest_first_with_buttons(
    bot: NewsApp, api: FakeBotAPI, seed: Seed
) -> None:
    ids = await seed(3)
    reply = await ask(api, "/latest 2")
    text = reply.result["text"]
    assert [i for i in story_ids(text)] == [ids[2], ids[1]]
    assert "Kelby Courier" in text
    assert "The harbour bridge reopened" in text
    assert 'href="https://news.example/' in reply.params["text"]
    labels = buttons(reply)
    assert f"Related #{ids[2]}" in labels
    assert "Older »" in labels
    assert "« Newer" not in labels


async def test_latest_pages_by_editing_in_place(bot: NewsApp, api: FakeBotAPI, seed: Seed) -> None:
    ids = await seed(5)
    first = await ask(api, "/latest 2")
    api.push_callback(first.result, buttons(first)["Older »"], user_id=USER)
    older = await api.next_call("editMessageText", message_id=first.result["message_id"])
    assert story_ids(older.result["text"]) == [ids[2], ids[1]]
    assert {"« Newer", "Older »"} <= set(buttons(older))

    api.push_callback(older.result, buttons(older)["Older »"], user_id=USER)
    oldest = await api.next_call("editMessageText", message_id=first.result["message_id"])
    assert story_ids(oldest.result["text"]) == [ids[0]]
    assert "Older »" not in buttons(oldest)

    api.push_callback(oldest.result, buttons(oldest)["« Newer"], user_id=USER)
    back = await api.next_call("editMessageText", message_id=first.result["message_id"])
    assert story_ids(back.result["text"]) == [ids[2], ids[1]]
    await api.next_call("answerCallbackQuery")
    assert not api.of("sendMessage")[1:], "paging must edit, not send"


async def test_story_shows_summary_links_and_a_preview(
    bot: NewsApp, api: FakeBotAPI, seed: Seed
) -> None:
    (story_id,) = await seed()
    reply = await ask(api, f"/story {story_id}")
    text = reply.result["text"]
    assert f"#{story_id}" in text
    assert "Engineers replaced cables" in text  # the longer summary, from cleaned_text
    assert "Similar item" in text
    assert reply.params["link_preview_options"]["url"].startswith("https://news.example/")


async def test_an_opened_storys_longer_summary_is_computed_once(
    bot: NewsApp, api: FakeBotAPI, seed: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = summarizers.summarize

    def counting(text: str, **options: Any) -> list[str]:
        calls.append(text)
        return real(text, **options)

    monkeypatch.setattr(services_module, "summarize", counting)
    (story_id,) = await seed()
    first = await ask(api, f"/story {story_id}")
    second = await ask(api, f"/story {story_id}")
    assert first.result["text"] == second.result["text"]
    assert len(calls) == 1


async def test_related_by_id_lists_links_then_stories(
    bot: NewsApp, api: FakeBotAPI, seed: Seed, services: Services, new_story: NewStoryFactory
) -> None:
    (story_id,) = await seed(title="Kelby harbour bridge reopens")
    await seed(title="Unrelated election result", cleaned_text="Voters chose a mayor.")
    near = await services.store.add(new_story(title="Kelby bridge traffic returns"))
    reply = await ask(api, f"/related {story_id}")
    text = reply.result["text"]
    assert text.index("Similar item") < text.index("Related stories")
    assert f"#{near.story_id}" in text
    assert f"Related #{near.story_id}" in buttons(reply)


async def test_related_links_naming_stored_stories_show_as_them_once(
    bot: NewsApp, api: FakeBotAPI, services: Services, new_story: NewStoryFactory
) -> None:
    by_title = await services.store.add(new_story(title="Kelby bridge cables replaced"))
    by_url = await services.store.add(new_story(title="Kelby harbour traffic returns"))
    near = await services.store.add(
        new_story(
            title="Kelby bridge toll scrapped",
            # Its own words: not a copy of the linked stories, which would hide it with them.
            cleaned_text="The council scrapped the Kelby harbour bridge toll. Drivers cheered.",
        )
    )
    by_url_story = await services.store.get(by_url.story_id)
    assert by_url_story is not None and by_url_story.url
    story = await services.store.add(
        new_story(
            title="Kelby harbour bridge reopens",
            links=(
                Link(title="Similar item", url="https://other.example/similar"),
                # Another outlet's URL, but a stored story's title (in other case).
                Link(title="KELBY bridge  cables replaced", url="https://elsewhere.example/c"),
                Link(title="A headline of its own", url=by_url_story.url),
                Link(title="Kelby harbour traffic returns", url="https://third.example/t"),
            ),
        )
    )
    reply = await ask(api, f"/related {story.story_id}")
    text = reply.result["text"]
    links, _, stories = text.partition("Related stories")
    assert links.index("Similar item") < links.index(f"/story {by_title.story_id}")
    # Each stored story once, as a link, and not again among the related stories.
    assert links.count(f"/story {by_title.story_id}") == 1
    assert links.count(f"/story {by_url.story_id}") == 1
    assert "A headline of its own" not in links  # shown as the stored story it names
    assert f"#{by_title.story_id}" not in stories
    assert f"#{by_url.story_id}" not in stories
    assert f"#{near.story_id}" in stories
    assert f"Related #{by_title.story_id}" not in buttons(reply)


async def test_related_button_sends_a_new_message(
    bot: NewsApp, api: FakeBotAPI, seed: Seed
) -> None:
    ids = await seed(2)
    first = await ask(api, "/latest")
    api.push_callback(first.result, buttons(first)[f"Related #{ids[0]}"], user_id=USER)
    related = await api.reply_to(USER)
    assert f"Related to #{ids[0]}" in related.result["text"]


async def test_related_by_words(bot: NewsApp, api: FakeBotAPI, seed: Seed) -> None:
    ids = await seed(title="Kelby harbour bridge reopens")
    reply = await ask(api, "/related harbour bridge")
    assert f"#{ids[0]}" in reply.result["text"]


async def test_search_pages_with_buttons(bot: NewsApp, api: FakeBotAPI, seed: Seed) -> None:
    await seed(7)
    first = await ask(api, "/search harbour")
    assert "1-5 of 7" in first.result["text"]
    api.push_callback(first.result, buttons(first)["Next »"], user_id=USER)
    second = await api.next_call("editMessageText", message_id=first.result["message_id"])
    assert "6-7 of 7" in second.result["text"]
    assert "« Prev" in buttons(second)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/frobnicate", "Unknown command /frobnicate"),
        ("/story", "Usage: /story"),
        ("/story twelve", "Usage: /story"),
        ("/story 999", "No story #999"),
        ("/related", "Usage: /related"),
        ("/related 999", "No story #999"),
        ("/latest many", "Usage: /latest"),
        ("/search", "Usage: /search"),
        ("/search zzzqqq", "Nothing found"),
        ("hello there", "/help"),
    ],
)
async def test_bad_input_gets_a_one_line_hint(
    bot: NewsApp, api: FakeBotAPI, command: str, expected: str
) -> None:
    reply = await ask(api, command)
    assert expected in reply.result["text"]
    assert "\n" not in reply.result["text"]


async def test_stale_button_gets_an_answer(bot: NewsApp, api: FakeBotAPI, seed: Seed) -> None:
    await seed()
    first = await ask(api, "/latest")
    api.push_callback(first.result, "garbage", user_id=USER)
    answer = await api.next_call("answerCallbackQuery")
    assert "no longer valid" in answer.params["text"]


async def test_hostile_story_renders_valid_html(bot: NewsApp, api: FakeBotAPI, seed: Seed) -> None:
    hostile = "<script>alert(1)</script> Tom & Jerry <b>unclosed <i> &bogus; </a>"
    (story_id,) = await seed(
        title=hostile,
        source="<evil>",
        url="javascript:alert(1)",
        summary=(hostile, "5 < 6 & 7 > 3"),
        cleaned_text=hostile + " More text here. " * 3,
        links=(
            Link(title="<b>x", url="javascript:alert(2)", snippet="<img src=x>"),
            Link(title="ok", url='https://ok.example/?a=1&b="2"'),
        ),
    )
    for command in ("/latest", f"/story {story_id}", f"/related {story_id}", "/search jerry"):
        reply = await ask(api, command)
        assert "<script>" in reply.result["text"]  # shown as text, not markup
        assert "javascript:" not in re.sub(r"[^<]*(<[^>]*>)?", r"\1", reply.params["text"])
    assert api.rejected == []

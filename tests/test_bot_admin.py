"""Admin commands and document uploads through the fake Bot API server."""

from __future__ import annotations

import json
import re

import pytest

from bot.services import NewsApp, Services
from tests.conftest import ADMIN, BACKENDS, USER, Seed, StartBot, both_backends
from tests.fake_bot_api import Call, FakeBotAPI


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str | None:
    # Every scenario here runs on SQLite and on PostgreSQL.
    return both_backends(request)


ARTICLE = (
    "Kelby opens a new tram line\n\n"
    "The city of Kelby opened its first tram line on Monday after four years of work. "
    "The line links the harbour with the university and has twelve stops. "
    "Officials expect twenty thousand riders a day within a year. "
    "Tickets cost the same as the bus during the first month."
)


async def ask(api: FakeBotAPI, text: str, user_id: int = ADMIN) -> Call:
    api.push_message(text, user_id=user_id)
    return await api.reply_to(user_id)


def stored_ids(call: Call) -> list[int]:
    match = re.search(r"Stored \d+ stor(?:y|ies): (.*)", call.result["text"])
    assert match, call.result["text"]
    return [int(found) for found in re.findall(r"#(\d+)", match.group(1))]


async def test_add_text_stores_a_story(bot: NewsApp, api: FakeBotAPI, services: Services) -> None:
    reply = await ask(api, f"/add {ARTICLE}")
    (story_id,) = stored_ids(reply)
    story = await services.store.get(story_id)
    assert story is not None
    assert "tram" in story.title.lower()

    again = await ask(api, f"/add {ARTICLE}")
    assert f"Already stored: #{story_id}" in again.result["text"]


async def test_add_as_a_reply_takes_the_replied_text(
    bot: NewsApp, api: FakeBotAPI, services: Services
) -> None:
    original = {
        "message_id": 1,
        "date": 0,
        "chat": {"id": ADMIN, "type": "private"},
        "text": ARTICLE,
    }
    api.push_message("/add", user_id=ADMIN, reply_to=original)
    reply = await api.reply_to(ADMIN)
    assert len(stored_ids(reply)) == 1


async def test_add_without_anything_gets_usage(bot: NewsApp, api: FakeBotAPI) -> None:
    reply = await ask(api, "/add")
    assert "Usage: /add" in reply.result["text"]


async def test_add_unreachable_url_says_why(bot: NewsApp, api: FakeBotAPI) -> None:
    # Port 9 on 127.0.0.1 refuses connections: the test stays on this machine.
    reply = await ask(api, "/add http://127.0.0.1:9/story")
    assert reply.result["text"].startswith("Not stored")


@pytest.mark.parametrize("command", ["/add some text", "/delete 1", "/stats"])
async def test_admin_commands_refuse_users(bot: NewsApp, api: FakeBotAPI, command: str) -> None:
    reply = await ask(api, command, USER)
    assert "Only admins" in reply.result["text"]


async def test_delete(bot: NewsApp, api: FakeBotAPI, seed: Seed, services: Services) -> None:
    (story_id,) = await seed()
    reply = await ask(api, f"/delete {story_id}")
    assert f"Deleted story #{story_id}" in reply.result["text"]
    assert await services.store.get(story_id) is None
    again = await ask(api, f"/delete {story_id}")
    assert f"No story #{story_id}" in again.result["text"]
    bad = await ask(api, "/delete x")
    assert "Usage: /delete" in bad.result["text"]


async def test_stats(bot: NewsApp, api: FakeBotAPI, seed: Seed) -> None:
    await seed(3)
    text = (await ask(api, "/stats")).result["text"]
    for label in ("Stories: 3", "Sources: 1", "Last ingest:", "Database:", "Uptime:"):
        assert label in text


def jsonl(*titles: str) -> bytes:
    lines = [
        json.dumps(
            {
                "title": title,
                "text": f"{title} happened on Monday in Kelby. Witnesses described it. "
                "The council will meet to discuss it next week.",
                "url": "https://news.example/" + title.lower().replace(" ", "-"),
            }
        )
        for title in titles
    ]
    return "\n".join(lines).encode()


async def test_admin_document_is_stored(bot: NewsApp, api: FakeBotAPI, services: Services) -> None:
    document = api.add_file(jsonl("Storm floods harbour", "Library reopens"), "news.jsonl")
    api.push_message(user_id=ADMIN, document=document)
    reply = await api.reply_to(ADMIN)
    assert len(stored_ids(reply)) == 2
    assert await services.store.count() == 2
    assert len(api.of("getFile")) == 1


async def test_user_document_is_refused_before_download(bot: NewsApp, api: FakeBotAPI) -> None:
    document = api.add_file(jsonl("Storm floods harbour"), "news.jsonl")
    api.push_message(user_id=USER, document=document)
    reply = await api.reply_to(USER)
    assert "Only admins" in reply.result["text"]
    assert api.of("getFile") == []
    assert api.downloads == []


@pytest.mark.parametrize(
    ("name", "size", "expected"),
    [("news.jsonl", 50_000, "the limit is 10,000"), ("virus.exe", 10, "is not one of")],
)
async def test_bad_documents_are_refused_before_download(
    bot: NewsApp, api: FakeBotAPI, name: str, size: int, expected: str
) -> None:
    document = api.add_file(b"{}", name, file_size=size)
    api.push_message(user_id=ADMIN, document=document)
    reply = await api.reply_to(ADMIN)
    assert expected in reply.result["text"]
    assert api.of("getFile") == []


async def test_documents_in_groups_are_ignored(bot: NewsApp, api: FakeBotAPI) -> None:
    document = api.add_file(jsonl("Storm floods harbour"), "news.jsonl")
    api.push_message(user_id=ADMIN, chat_id=-100, chat_type="group", document=document)
    # A later command in the same group is answered, so the document was seen and passed over.
    api.push_message("/frobnicate", user_id=ADMIN, chat_id=-100, chat_type="group")
    reply = await api.reply_to(-100)
    assert "Unknown command" in reply.result["text"]
    assert api.of("getFile") == []


async def test_data_survives_a_restart(start_bot: StartBot, api: FakeBotAPI) -> None:
    async with start_bot():
        reply = await ask(api, f"/add {ARTICLE}")
        (story_id,) = stored_ids(reply)
    async with start_bot():
        again = await ask(api, f"/story {story_id}")
        assert "tram" in again.result["text"].lower()

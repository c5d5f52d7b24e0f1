"""No admin action is reachable by anyone but an admin, by any route a client can take.

Admin commands and documents are tried from users in private chats and groups, as channel
posts, as forwards in both directions, as edits, and through forged callback data. Where the
bot must stay silent, the test leaves the app (which processes every queued update first)
and then checks the database and every request the bot made.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import formatting as fmt
from bot.services import NewsApp, Services
from storage.models import NewStory
from storage.repository import StoryStore
from tests.conftest import ADMIN, USER, NewStoryFactory, Seed, StartBot, until_fetched
from tests.fake_bot_api import FakeBotAPI

JSON = dict[str, Any]
ARTICLE = (
    "Kelby opens a new tram line\n\n"
    "The city of Kelby opened its first tram line on Monday after four years of work. "
    "The line links the harbour with the university and has twelve stops."
)
ADMIN_COMMANDS = ("/delete 1", f"/add {ARTICLE}", "/stats")


def count_stories(db_path: Path) -> int:
    with sqlite3.connect(db_path) as conn:
        (count,) = conn.execute("SELECT count(*) FROM stories").fetchone()
    return int(count)


async def seed_one(db_path: Path, story: NewStory) -> int:
    async with await StoryStore.open(db_path) as store:
        return (await store.add(story)).story_id


def command_entities(text: str) -> list[JSON]:
    length = len(text.split()[0].encode("utf-16-le")) // 2
    return [{"type": "bot_command", "offset": 0, "length": length}]


@pytest.mark.parametrize("command", ADMIN_COMMANDS)
@pytest.mark.parametrize("chat_type", ["private", "group", "supergroup"])
async def test_users_are_refused_in_every_chat_type(
    bot: NewsApp, api: FakeBotAPI, seed: Seed, services: Services, command: str, chat_type: str
) -> None:
    await seed()
    chat_id = USER if chat_type == "private" else -1001
    # In groups commands are addressed to the bot by name.
    text = command if chat_type == "private" else command.replace(" ", "@newsbot_test_bot ", 1)
    if command == "/stats" and chat_type != "private":
        text = "/stats@newsbot_test_bot"
    api.push_message(text, user_id=USER, chat_id=chat_id, chat_type=chat_type)
    reply = await api.reply_to(chat_id)
    assert reply.result["text"] == "Only admins can do that."
    assert await services.store.count() == 1
    assert await services.store.get(1) is not None


async def test_forwarded_admin_command_sent_by_a_user_is_the_users(
    bot: NewsApp, api: FakeBotAPI, seed: Seed, services: Services
) -> None:
    (story_id,) = await seed()
    message = api.message(f"/delete {story_id}", user_id=USER)
    message["entities"] = command_entities(message["text"])
    message["forward_origin"] = {"type": "user", "date": 0, "sender_user": api.user(ADMIN)}
    api.push_update({"message": message})
    reply = await api.reply_to(USER)
    assert "Only admins" in reply.result["text"]
    assert await services.store.get(story_id) is not None


async def test_a_command_an_admin_forwards_is_not_run(
    bot: NewsApp, api: FakeBotAPI, seed: Seed, services: Services
) -> None:
    # Someone else's "/delete 1", passed on by an admin, is content, not the admin's order.
    (story_id,) = await seed()
    message = api.message(f"/delete {story_id}", user_id=ADMIN)
    message["entities"] = command_entities(message["text"])
    message["forward_origin"] = {"type": "hidden_user", "date": 0, "sender_user_name": "X"}
    api.push_update({"message": message})
    reply = await api.reply_to(ADMIN)
    assert "Only admins" in reply.result["text"]
    assert await services.store.get(story_id) is not None


async def test_a_document_an_admin_forwards_is_stored_one_a_user_forwards_is_not(
    bot: NewsApp, api: FakeBotAPI, services: Services
) -> None:
    data = b'{"title": "Storm floods harbour", "text": "The storm flooded the harbour."}'
    origin = {"type": "user", "date": 0, "sender_user": api.user(ADMIN)}
    from_user = api.message(user_id=USER, document=api.add_file(data, "news.json"))
    from_user["forward_origin"] = origin
    api.push_update({"message": from_user})
    refused = await api.reply_to(USER)
    assert "Only admins" in refused.result["text"]
    assert api.of("getFile") == [] and api.downloads == []

    from_admin = api.message(user_id=ADMIN, document=api.add_file(data, "news.json"))
    from_admin["forward_origin"] = {"type": "user", "date": 0, "sender_user": api.user(USER)}
    api.push_update({"message": from_admin})
    stored = await api.reply_to(ADMIN)
    assert stored.result["text"].startswith("Stored 1 story")
    assert await services.store.count() == 1


async def test_channel_posts_and_edits_trigger_nothing(
    start_bot: StartBot, api: FakeBotAPI, db_path: Path, new_story: NewStoryFactory
) -> None:
    story_id = await seed_one(db_path, new_story())
    channel = -100200
    updates: list[JSON] = []
    for text in (f"/delete {story_id}", f"/add {ARTICLE}", "/stats", "/latest"):
        post = api.message(text, user_id=None, chat_id=channel, chat_type="channel")
        post["entities"] = command_entities(text)
        post["sender_chat"] = post["chat"]
        updates.append({"channel_post": post})
        # An edit by the admin themself is still not a new command.
        for user_id in (ADMIN, USER):
            edited = api.message(text, user_id=user_id)
            edited["entities"] = command_entities(text)
            edited["edit_date"] = edited["date"] + 1
            updates.append({"edited_message": edited})
    document = api.message(user_id=None, chat_id=channel, chat_type="channel")
    document["document"] = api.add_file(b'{"text": "Words here."}', "news.json")
    updates.append({"channel_post": document})
    edited_document = api.message(user_id=ADMIN, document=api.add_file(b"{}", "news.json"))
    edited_document["edit_date"] = edited_document["date"] + 1
    updates.append({"edited_message": edited_document})

    async with start_bot():
        ids = [api.push_update(update) for update in updates]
        await until_fetched(api, ids[-1])
    assert count_stories(db_path) == 1
    assert api.of("sendMessage") == []
    assert api.of("getFile") == []


FORGED = [
    "d:1",
    "delete:1",
    "del:1",
    "a:1",
    "add:x",
    "stats",
    "t:1:delete",
    "r:-1",
    "t:+1",
    "t:١",
    "l:o:10:99999999999999999999999",
    "l:x:1:1",
    "s:99999999999999999999999:x",
    "s:-5:x",
    "s:0:",
    "x" * 300,
    "t:" + "9" * 500,
    "\x00\u202e\ud7ff",
    "🔥" * 40,
    "' OR 1=1 --",
]


@pytest.mark.parametrize("presser", [USER, ADMIN])
async def test_forged_callback_data_reaches_no_admin_action(
    bot: NewsApp, api: FakeBotAPI, seed: Seed, services: Services, presser: int
) -> None:
    (story_id,) = await seed()
    shown = api.message("Latest stories", user_id=None, chat_id=presser)
    queries = {}
    for number, data in enumerate(FORGED):
        # Many users, not one: one user pressing twenty buttons at once is a flood.
        api.push_callback(shown, data, user_id=presser if presser == ADMIN else 5000 + number)
    for call in [await api.next_call("answerCallbackQuery") for _ in FORGED]:
        queries[call.params["callback_query_id"]] = call.params.get("text")
    assert set(queries.values()) == {"That button is no longer valid."}
    assert len(queries) == len(FORGED)
    assert await services.store.count() == 1
    assert await services.store.get(story_id) is not None
    # Nothing failed on the way: no error reply, no message at all.
    assert api.of("sendMessage") == []


async def test_real_buttons_still_work_after_the_forged_ones(
    bot: NewsApp, api: FakeBotAPI, seed: Seed
) -> None:
    (story_id,) = await seed()
    shown = api.message("Latest stories", user_id=None, chat_id=USER)
    api.push_callback(shown, "d:1", user_id=USER)
    api.push_callback(shown, fmt.encode_action(fmt.ShowStory(story_id)), user_id=USER)
    reply = await api.reply_to(USER)
    assert f"#{story_id}" in reply.result["text"]


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(st.text(max_size=80) | st.from_regex(r"[lrts]:[-+0-9a-z:]{0,30}", fullmatch=True))
def test_decode_action_accepts_only_well_formed_reading_actions(data: str) -> None:
    action = fmt.decode_action(data)
    if action is None:
        return
    assert len(data.encode(errors="replace")) <= fmt.MAX_CALLBACK_BYTES
    match action:
        case fmt.LatestNav(_, limit, cursor):
            numbers: tuple[int, ...] = (limit, cursor)
        case fmt.ShowRelated(story_id) | fmt.ShowStory(story_id):
            numbers = (story_id,)
        case fmt.SearchNav(offset, query):
            numbers = (offset,)
            assert query.strip()
    assert all(0 <= number < 2**63 for number in numbers)
    # What we would send for it decodes to the same action: the format is closed.
    assert fmt.decode_action(fmt.encode_action(action)) == action

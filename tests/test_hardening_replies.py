"""Hostile stories go in through the real pipeline; every reply about them stays valid.

An admin uploads stories full of markup, entities, bad links, 10,000-character sentences,
control, zero-width and right-to-left characters. Then readers use every command and press
every button. The fake Bot API server refuses what Telegram refuses (bad HTML, over 4096,
callback data over 64 bytes), so one bad reply shows up as a rejected call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

from bot import formatting as fmt
from bot.services import NewsApp
from tests.conftest import ADMIN, StartBot, until_fetched
from tests.fake_bot_api import Call, FakeBotAPI

JSON = dict[str, Any]
LONG_SENTENCE = "The harbour council " + "debated the budget again " * 400 + "until dawn."
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"

NASTY_STORIES: list[JSON] = [
    {
        "title": "<script>alert(1)</script> Council <b>votes &nbsp; on <i>harbour",
        "text": "<p>The council voted on the harbour plan on Monday.</p><script>steal()</script>"
        "<style>p{}</style> Members said&nbsp;the plan <b>would <i>cost</b> more. "
        "<a href='javascript:alert(1)'>Click</a> to read. &amp;amp; &bogus; &#0; <div>",
        "url": "javascript:alert(1)",
        "source": "<b>Evil</b> & Sons",
        "related": [
            {"title": "<i>Harbour javascript", "url": "javascript:alert(2)"},
            {"title": "Harbour data", "url": "data:text/html,<script>alert(3)</script>"},
            {"title": "Harbour vb", "url": " JAVASCRIPT:alert(4)"},
            {"title": 'Harbour "quoted"', "url": 'https://ok.example/a?b="c"&d=<e>'},
            {"title": "Harbour tg", "url": "tg://resolve?domain=evil"},
            {"title": "Harbour ftp", "url": "ftp://files.example/x"},
        ],
    },
    {
        "title": "Harbour budget marathon " + "very " * 300 + "long title",
        "text": " ".join([LONG_SENTENCE] * 4),
        "url": "https://news.example/marathon?q=<b>&x=1",
        "related": [{"title": "Harbour " + "x" * 5000, "url": "https://ok.example/" + "p" * 3000}],
    },
    {
        "title": f"{BIDI}Harbour \u202eevil\u202c title\u200b\u200d\u200f\x00\x07\x1b",
        "text": "Harbour news in many scripts. \u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644"
        "\u0639\u0627\u0644\u0645. \u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd. "
        "\u65b0\u95fb\u62a5\u9053\u3002 Family \U0001f468\u200d\U0001f469\u200d\U0001f467 "
        f"arrived.\u200b\u200b Zero{BIDI}width and right to left\u202e marks everywhere.",
        "url": "https://news.example/\u202eevil",
        "source": "\u202emoc.elgoog",
        "related": [{"title": "\u202eHarbour reversed", "url": "https://ok.example/rtl"}],
    },
    {
        "title": "Harbour unbalanced </b></i><a href='https://x.example'>tags",
        "text": "<b><i><u>Harbour text with unclosed tags. <a href='https://x.example'>Link. "
        "</s></blockquote> Harbour closes & opens < and > signs.",
        "url": "HTTPS://news.example/caps",
        "published_at": "not a date",
    },
]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.append(dict(attrs).get("href") or "")


def hrefs(markup: str) -> list[str]:
    parser = _Links()
    parser.feed(markup)
    return parser.hrefs


def buttons(call: Call) -> Iterator[str]:
    for row in (call.params.get("reply_markup") or {}).get("inline_keyboard", []):
        for button in row:
            if "callback_data" in button:
                yield button["callback_data"]


def has_keyboard(call: Call) -> bool:
    return bool(call.params.get("reply_markup"))


async def test_every_reply_about_hostile_stories_is_valid(
    start_bot: StartBot, api: FakeBotAPI
) -> None:
    data = "\n".join(json.dumps(story) for story in NASTY_STORIES).encode()
    async with start_bot(max_document_bytes=1_000_000):
        await api.next_call("setMyCommands")
        api.push_message(user_id=ADMIN, document=api.add_file(data, "nasty.jsonl"))
        stored = await api.reply_to(ADMIN)
        ids = [int(found) for found in re.findall(r"#(\d+)", stored.result["text"])]
        assert len(ids) == len(NASTY_STORIES), stored.result["text"]

        # Each request in its own chat, so replies (several chunks, maybe) cannot mix.
        commands = [
            "/latest 10",
            "/latest 1",
            "/search harbour",
            "/search <script>",
            '/search "harbour',
        ]
        commands += [f"/story {story_id}" for story_id in ids]
        commands += [f"/related {story_id}" for story_id in ids]
        commands += ["/related harbour council", "/related \u202e<b>"]
        first: list[Call] = []
        for chat, command in enumerate(commands, start=1000):
            api.push_message(command, user_id=chat)
            first.append(await api.reply_to(chat))
        # The keyboard sits under the last chunk of a split reply: wait for it.
        with_keyboards = [
            await api.next_call("sendMessage", chat_id=call.params["chat_id"], where=has_keyboard)
            if not has_keyboard(call) and command.startswith(("/story", "/latest"))
            else call
            for call, command in zip(first, commands, strict=True)
        ]
        presser = 5000
        last = 0
        for call in with_keyboards:
            for data_ in buttons(call):
                presser += 1  # many readers: one reader pressing everything is a flood
                last = api.push_callback(call.result, data_, user_id=presser)
        assert last, "the replies had buttons to press"
        await until_fetched(api, last)

    sent = [call for call in api.calls if call.method in ("sendMessage", "editMessageText")]
    assert api.rejected == [], [
        (call.error, call.params.get("text", "")[:200]) for call in api.rejected
    ]
    assert all(call.ok for call in sent)
    assert len(api.of("editMessageText")) >= 1, "paging buttons were pressed"
    assert not [call for call in sent if fmt.ERROR_REPLY in call.params["text"]]
    story_replies = [call for call in sent if call.params["chat_id"] in range(1000, 1100)]
    for call in sent:
        markup = call.params["text"]
        for href in hrefs(markup):
            assert href.startswith(("http://", "https://", "HTTPS://")), href
        preview = (call.params.get("link_preview_options") or {}).get("url")
        assert preview is None or preview.lower().startswith(("http://", "https://"))
        assert not set(call.result["text"]) & set(BIDI + "\x00\x07\x1b")
        assert "javascript" not in " ".join(hrefs(markup)).lower()
    texts = "\n".join(call.result["text"] for call in story_replies)
    # Markup in stories is shown as text, never interpreted.
    assert "<script>alert(1)</script>" in texts
    assert "Harbour javascript" in texts
    # The 10,000-character sentences arrive, split across messages within the limit.
    marathon = [call for call in story_replies if "debated the budget again" in call.result["text"]]
    assert len({call.params["chat_id"] for call in marathon}) >= 1
    assert max(fmt.tg_len(call.result["text"]) for call in marathon) <= fmt.MAX_MESSAGE
    assert any(fmt.tg_len(call.result["text"]) > 3000 for call in marathon)


async def test_hostile_titles_in_help_free_replies(bot: NewsApp, api: FakeBotAPI) -> None:
    # The one reply that echoes user input: an unknown command.
    api.push_message("/<b>\u202eevil&nbsp;", user_id=77)
    reply = await api.reply_to(77)
    assert reply.ok and "Unknown command" in reply.result["text"]
    assert "\u202e" not in reply.result["text"]

"""Chat with the bot in a terminal or through a pipe, with no Telegram and no network.

The SAME Application and handlers run; only the HTTP layer is swapped for an in-process
`BaseRequest` that answers the Bot API methods the bot uses and prints what it sends.
Each input line is a message from an admin; a number presses that button of the last
message that had buttons.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from html.parser import HTMLParser
from typing import Any, Final, TextIO

from rich.console import Console
from rich.style import Style
from rich.text import Text
from telegram import Update
from telegram._utils.defaultvalue import DEFAULT_NONE
from telegram._utils.types import ODVInput
from telegram.request import BaseRequest, RequestData

from bot.app import build_app, running
from bot.settings import Settings

JSON = dict[str, Any]

# The console user when ADMIN_IDS is empty; console mode treats its user as an admin.
CONSOLE_USER_ID: Final = 10_000
CONSOLE_BOT_ID: Final = 1
_TAG_STYLES: Final = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strike",
    "strike": "strike",
    "del": "strike",
    "code": "cyan",
    "pre": "cyan",
    "blockquote": "dim",
    "tg-spoiler": "reverse",
}


class _HTMLToText(HTMLParser):
    """Telegram HTML to a rich Text; links keep their URL visible for plain terminals."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text = Text()
        self._styles: list[tuple[str, Style]] = []
        self._href: str | None = None
        self._link_start = 0

    def _style(self) -> Style:
        return Style.chain(*(style for _, style in self._styles)) if self._styles else Style()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")
            self._link_start = len(self.text)
            style = Style(underline=True, link=self._href) if self._href else Style()
            self._styles.append((tag, style))
        else:
            self._styles.append((tag, Style.parse(_TAG_STYLES.get(tag, "none"))))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href:
            label = self.text.plain[self._link_start :]
            if label.strip() != self._href:
                self.text.append(f" <{self._href}>", style="dim")
            self._href = None
        for index in range(len(self._styles) - 1, -1, -1):
            if self._styles[index][0] == tag:
                del self._styles[index:]
                break

    def handle_data(self, data: str) -> None:
        self.text.append(data, style=self._style())


def html_to_text(markup: str) -> Text:
    """Render Telegram HTML as rich Text (plain text when the output is not a terminal)."""
    parser = _HTMLToText()
    parser.feed(markup)
    parser.close()
    return parser.text


class ConsoleChat:
    """What the console shows: the bot's messages and the buttons you can type."""

    def __init__(self, out: TextIO) -> None:
        self.console = Console(file=out, highlight=False, emoji=False)
        self.buttons: list[tuple[str, str]] = []  # (label, callback data)
        self.buttons_message: JSON | None = None

    def show(self, message: JSON, *, edited: bool) -> None:
        if edited:
            self.console.print(Text("(updated)", style="dim"))
        self.console.print(html_to_text(message["html"]), soft_wrap=True)
        keyboard = (message.get("reply_markup") or {}).get("inline_keyboard", [])
        buttons = [
            (button["text"], button["callback_data"])
            for row in keyboard
            for button in row
            if "callback_data" in button
        ]
        if buttons:
            self.buttons, self.buttons_message = buttons, message
            choices = Text("  ")
            for number, (label, _) in enumerate(buttons, 1):
                choices.append(f"[{number}] ", style="bold")
                choices.append(f"{label}  ")
            self.console.print(choices, soft_wrap=True)
        self.console.print()

    def notice(self, text: str) -> None:
        self.console.print(Text(f"  ({text})", style="dim"), soft_wrap=True)


class InProcessRequest(BaseRequest):
    """Answers the Bot API in-process: no connection leaves the process.

    It answers what a chat needs (getMe, setMyCommands, sendMessage, editMessageText,
    answerCallbackQuery); anything else gets a 400. Subclasses see each call through `record`,
    each message through `delivered` and each callback answer through `callback_answered`.
    """

    def __init__(self, *, bot: JSON | None = None, chat_name: str = "You") -> None:
        self._bot = bot if bot is not None else bot_user()
        self._chat_name = chat_name
        self._message_ids = itertools.count(1)
        self._methods: dict[str, Callable[[JSON], Any]] = {
            "getMe": lambda _: self._bot,
            "setMyCommands": lambda _: True,
            "deleteWebhook": lambda _: True,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "answerCallbackQuery": self._answer_callback_query,
        }

    @property
    def read_timeout(self) -> float | None:
        return None

    async def initialize(self) -> None:
        """Nothing to open: no connection leaves the process."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = DEFAULT_NONE,
        write_timeout: ODVInput[float] = DEFAULT_NONE,
        connect_timeout: ODVInput[float] = DEFAULT_NONE,
        pool_timeout: ODVInput[float] = DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        name = url.rsplit("/", 1)[-1]
        params = dict(request_data.parameters) if request_data is not None else {}
        self.record(name, params)
        answer = self._methods.get(name)
        if answer is None:
            # getFile and friends: there are no files or updates to fetch in process.
            body: JSON = {
                "ok": False,
                "error_code": 400,
                "description": f"Bad Request: {name} is not available in the console chat",
            }
            return 400, json.dumps(body).encode()
        return 200, json.dumps({"ok": True, "result": answer(params)}).encode()

    def record(self, method: str, params: JSON) -> None:
        """Called for every Bot API call, answered or not."""

    def delivered(self, message: JSON, *, edited: bool) -> None:
        """Called for every message the bot sends or edits."""

    def callback_answered(self, params: JSON) -> None:
        """Called for every answerCallbackQuery."""

    def _message(self, params: JSON, message_id: int) -> JSON:
        message: JSON = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": params["chat_id"], "type": "private", "first_name": self._chat_name},
            "from": self._bot,
            # Telegram would answer with plain text plus entities; the console keeps the HTML
            # to render it, and a plain `text` keeps the Message object valid.
            "text": params["text"],
            "html": params["text"],
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return message

    def _send_message(self, params: JSON) -> JSON:
        message = self._message(params, next(self._message_ids))
        self.delivered(message, edited=False)
        return message

    def _edit_message_text(self, params: JSON) -> JSON:
        message = self._message(params, int(params["message_id"]))
        self.delivered(message, edited=True)
        return message

    def _answer_callback_query(self, params: JSON) -> bool:
        self.callback_answered(params)
        return True


class ConsoleRequest(InProcessRequest):
    """Answers the Bot API in-process and shows what the bot sends."""

    def __init__(self, chat: ConsoleChat) -> None:
        super().__init__()
        self._chat = chat
        self.messages: dict[int, JSON] = {}

    def delivered(self, message: JSON, *, edited: bool) -> None:
        self.messages[message["message_id"]] = message
        self._chat.show(message, edited=edited)

    def callback_answered(self, params: JSON) -> None:
        if params.get("text"):
            self._chat.notice(str(params["text"]))


def bot_user() -> JSON:
    return {"id": CONSOLE_BOT_ID, "is_bot": True, "first_name": "newsbot", "username": "newsbot"}


async def _read_lines(
    lines: AsyncIterator[str] | TextIO, prompt: Callable[[], None] | None = None
) -> AsyncIterator[str]:
    if isinstance(lines, AsyncIterator):
        async for line in lines:
            yield line
        return
    while True:
        if prompt is not None:
            prompt()
        # readline blocks; a thread keeps the bot's event loop running meanwhile.
        line = await asyncio.to_thread(lines.readline)
        if not line:
            return
        yield line


def _is_tty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty()) if callable(isatty) else False


class _Updates:
    """Turns typed lines into Bot API updates from the console user."""

    def __init__(self, user_id: int) -> None:
        self._user = {"id": user_id, "is_bot": False, "first_name": "You"}
        self._chat = {"id": user_id, "type": "private", "first_name": "You"}
        self._ids = itertools.count(1)

    def message(self, text: str) -> JSON:
        message: JSON = {
            "message_id": 100_000 + next(self._ids),
            "date": int(time.time()),
            "chat": self._chat,
            "from": self._user,
            "text": text,
        }
        if text.startswith("/"):
            command = text.split()[0]
            length = len(command.encode("utf-16-le")) // 2
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return {"update_id": next(self._ids), "message": message}

    def press(self, message: JSON, data: str) -> JSON:
        query = {
            "id": str(next(self._ids)),
            "from": self._user,
            "chat_instance": "console",
            "message": message,
            "data": data,
        }
        return {"update_id": next(self._ids), "callback_query": query}


async def run_console(settings: Settings, lines: AsyncIterator[str] | TextIO, out: TextIO) -> int:
    """Chat with the bot: one message per input line, until EOF. Returns the exit status."""
    user_id = min(settings.admin_ids) if settings.admin_ids else CONSOLE_USER_ID
    # Whoever sits at the console owns the store, so admin commands work here.
    settings = settings.model_copy(update={"admin_ids": settings.admin_ids | {user_id}})
    chat = ConsoleChat(out)
    app = build_app(settings, request=ConsoleRequest(chat), rate_limit=False)
    updates = _Updates(user_id)
    interactive = _is_tty(lines)
    if interactive:
        chat.console.print("newsbot console: type /help, a button number, or Ctrl-D to quit.\n")
    prompt = (lambda: chat.console.print("> ", end="")) if interactive else None
    async with running(app, poll=False):
        async for raw in _read_lines(lines, prompt):
            text = raw.strip()
            if not text:
                continue
            if not interactive:
                # Piped input is not echoed by a terminal; show it so replies have context.
                chat.console.print(Text(f"> {text}", style="bold"), soft_wrap=True)
            data: JSON
            if text.isdecimal() and chat.buttons_message is not None:
                number = int(text)
                if not 1 <= number <= len(chat.buttons):
                    chat.notice(f"no button {number}; choose 1-{len(chat.buttons)}")
                    continue
                data = updates.press(chat.buttons_message, chat.buttons[number - 1][1])
            else:
                data = updates.message(text)
            update = Update.de_json(data, app.bot)
            await app.process_update(update)
    return 0

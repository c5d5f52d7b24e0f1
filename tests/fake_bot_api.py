"""A fake Telegram Bot API server on 127.0.0.1 for driving the real bot over real HTTP.

It answers the methods the bot uses, rejects what Telegram rejects (bad HTML entities,
texts over 4096, callback data over 64 bytes), can fail on demand (429, 5xx, a request
held past the client's timeout, a dropped connection, an update delivered twice), and
records every request so a test can await "the next sendMessage to chat X" without sleeping.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Literal
from urllib.parse import urlsplit

from aiohttp import web

JSON = dict[str, Any]

MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64
# Long enough that a waiting test fails with a clear error instead of hanging forever.
WAIT_LIMIT = 15.0

_ALLOWED_TAGS = frozenset(
    {
        "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
        "a", "code", "pre", "blockquote", "tg-emoji",
    }
)  # fmt: skip
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_JSON_FIELDS = frozenset(
    {"reply_markup", "link_preview_options", "commands", "allowed_updates", "results"}
)
_INT_FIELDS = frozenset({"chat_id", "message_id", "offset", "timeout", "limit"})


class BadRequest(Exception):
    """Answered as HTTP 400 with Telegram's description."""


class Forbidden(Exception):
    """Answered as HTTP 403 with Telegram's description."""


BLOCKED = "Forbidden: bot was blocked by the user"
MAX_INLINE_RESULTS = 50


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class _TelegramHTML(HTMLParser):
    """Telegram's HTML rules, strictly: known tags, balanced, entities escaped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.text: list[str] = []

    def _fail(self, why: str) -> None:
        raise BadRequest(f"Bad Request: can't parse entities: {why}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _ALLOWED_TAGS:
            self._fail(f'Unsupported start tag "{tag}"')
        if tag == "a":
            href = dict(attrs).get("href") or ""
            scheme = urlsplit(href).scheme.lower()
            if scheme not in ("http", "https", "tg"):
                self._fail(f'Unsupported URL protocol in "{href}"')
        self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._fail(f'Unsupported start tag "{tag}/"')

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self._fail(f'Unmatched end tag "{tag}"')
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if "<" in data:
            self._fail("Unexpected < in text")
        self.text.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in _NAMED:
            self._fail(f'Unsupported HTML entity "&{name};"')
        self.text.append(_NAMED[name])

    def handle_charref(self, name: str) -> None:
        code = int(name[1:], 16) if name[:1] in ("x", "X") else int(name)
        self.text.append(chr(code))

    def handle_comment(self, data: str) -> None:
        self._fail("Unsupported comment")

    def handle_decl(self, decl: str) -> None:
        self._fail("Unsupported declaration")

    def handle_pi(self, data: str) -> None:
        self._fail("Unsupported processing instruction")

    def unknown_decl(self, data: str) -> None:
        self._fail("Unsupported declaration")


def parse_telegram_html(markup: str) -> str:
    """The plain text Telegram would show, or BadRequest like Telegram's."""
    for match in re.finditer("&", markup):
        if not _ENTITY.match(markup, match.start()):
            raise BadRequest(
                "Bad Request: can't parse entities: Character '&' is reserved and must be escaped"
            )
    parser = _TelegramHTML()
    parser.feed(markup)
    parser.close()
    if parser.stack:
        raise BadRequest(
            "Bad Request: can't parse entities: Can't find end tag corresponding to start tag "
            f'"{parser.stack[-1]}"'
        )
    return "".join(parser.text)


def check_text(params: JSON) -> str:
    text = str(params.get("text", ""))
    plain = parse_telegram_html(text) if params.get("parse_mode") == "HTML" else text
    if not plain.strip():
        raise BadRequest("Bad Request: message text is empty")
    if utf16_len(plain.strip()) > MAX_TEXT:
        raise BadRequest("Bad Request: message is too long")
    return plain


def check_markup(params: JSON) -> None:
    markup = params.get("reply_markup")
    if markup is None:
        return
    for row in markup.get("inline_keyboard", []):
        for button in row:
            if not button.get("text"):
                raise BadRequest("Bad Request: text buttons are unallowed in the inline keyboard")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA:
                raise BadRequest("Bad Request: BUTTON_DATA_INVALID")
            url = button.get("url")
            if url is not None and urlsplit(url).scheme not in ("http", "https", "tg"):
                raise BadRequest("Bad Request: BUTTON_URL_INVALID")


@dataclass(slots=True)
class Call:
    """One request the bot made, with what the server answered."""

    index: int
    method: str
    params: JSON
    status: int = 200
    result: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(slots=True)
class StoredFile:
    data: bytes
    file_path: str
    size: int


@dataclass(slots=True)
class _Failure:
    method: str
    retry_after: int
    times: int


FaultKind = Literal["status", "hang", "drop"]


@dataclass(slots=True)
class _Fault:
    method: str
    kind: FaultKind
    status: int
    times: int


@dataclass
class FakeBotAPI:
    token: str = "123:ABC"
    bot_username: str = "newsbot_test_bot"
    calls: list[Call] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    # chat id -> the 403 description sendMessage answers there (see block()).
    blocked: dict[int, str] = field(default_factory=dict)
    # "@username" (lower case) -> chat id of channels that exist (see add_channel()).
    channels: dict[str, int] = field(default_factory=dict)
    # chat id -> ids of its administrators, for getChatMember.
    chat_admins: dict[int, set[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._updates: list[JSON] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._file_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._messages: dict[tuple[int, int], JSON] = {}
        self._chats: dict[int, JSON] = {}
        self._files: dict[str, StoredFile] = {}
        self._failures: list[_Failure] = []
        self._faults: list[_Fault] = []
        self._confirmed = 0  # the highest getUpdates offset seen: updates below are done
        self._repeat: list[JSON] = []
        self._duplicate_batches = 0
        self._consumed: set[int] = set()
        self._changed = asyncio.Condition()
        self._new_update = asyncio.Event()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""
        # The parameters of the last setWebhook call ({} when none is set).
        self.webhook: JSON = {}

    @property
    def bot_id(self) -> int:
        return int(self.token.split(":")[0])

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_download)
        # No access log: it is Telegram's side, and its URLs carry the token, which would make
        # every "the token is never logged" check fail on a log the bot never wrote.
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self.url

    async def close(self) -> None:
        # Wake any long poll so the server stops at once.
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- what tests do ------------------------------------------------------------------

    def fail_next(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with 429 Too Many Requests."""
        self._failures.append(_Failure(method, retry_after, times))

    def fault_next(
        self, method: str, kind: FaultKind, *, status: int = 500, times: int = 1
    ) -> None:
        """Fail the next `times` calls of `method` before handling them (nothing is sent).

        "status": answer `status` (500, 502...) with Telegram's error body; "hang": hold the
        request until the server closes, past any client read timeout; "drop": close the
        connection without an answer. Each is recorded as a failed Call when it happens.
        """
        self._faults.append(_Fault(method, kind, status, times))

    def deliver_again(self, update_id: int) -> None:
        """Serve an update that was already confirmed once more, at the next getUpdates."""
        delivered = next(
            (u for call in self.of("getUpdates") if call.ok for u in call.result or []
             if u["update_id"] == update_id),
            None,
        )  # fmt: skip
        assert delivered is not None, f"update {update_id} was never delivered"
        self._repeat.append(delivered)
        self._new_update.set()

    def duplicate_next_batch(self) -> None:
        """The next non-empty getUpdates answer lists every update twice."""
        self._duplicate_batches += 1

    def add_file(
        self,
        data: bytes,
        file_name: str,
        *,
        file_size: int | None = None,
        size_in_message: bool = True,
    ) -> JSON:
        """Store a file; returns the Document the update should carry.

        `file_size` is the size Telegram reports (in the message and from getFile) without
        making the test hold that many bytes; `size_in_message=False` leaves it out of the
        message, as Telegram may.
        """
        file_id = f"file{next(self._file_ids)}"
        size = len(data) if file_size is None else file_size
        self._files[file_id] = StoredFile(data, f"documents/{file_id}_{file_name}", size)
        document: JSON = {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_name": file_name,
        }
        if size_in_message:
            document["file_size"] = size
        return document

    def push_update(self, update: JSON) -> int:
        update_id = next(self._update_ids)
        self._updates.append({"update_id": update_id, **update})
        self._new_update.set()
        return update_id

    def user(self, user_id: int) -> JSON:
        return {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}

    def _chat(self, chat_id: int, chat_type: str) -> JSON:
        chat: JSON = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = f"User{chat_id}"
        else:
            chat["title"] = f"Chat {chat_id}"
        self._chats[chat_id] = chat
        return chat

    def push_message(
        self,
        text: str | None = None,
        *,
        user_id: int,
        chat_id: int | None = None,
        chat_type: str = "private",
        reply_to: JSON | None = None,
        document: JSON | None = None,
        caption: str | None = None,
    ) -> int:
        """Queue a message from a user; a leading /command gets its bot_command entity."""
        message = self.message(
            text,
            user_id=user_id,
            chat_id=chat_id,
            chat_type=chat_type,
            reply_to=reply_to,
            document=document,
            caption=caption,
        )
        return self.push_update({"message": message})

    def message(
        self,
        text: str | None = None,
        *,
        user_id: int | None,
        chat_id: int | None = None,
        chat_type: str = "private",
        reply_to: JSON | None = None,
        document: JSON | None = None,
        caption: str | None = None,
    ) -> JSON:
        """A Message as Telegram sends it, to wrap in any update type (edits, channel posts).

        `user_id=None` leaves out "from", as in a channel post.
        """
        if chat_id is None:
            assert user_id is not None, "a message without a sender needs a chat_id"
            chat_id = user_id
        message: JSON = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self._chat(chat_id, chat_type),
        }
        if user_id is not None:
            message["from"] = self.user(user_id)
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                command = text.split()[0]
                message["entities"] = [
                    {"type": "bot_command", "offset": 0, "length": utf16_len(command)}
                ]
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        if document is not None:
            message["document"] = document
        if caption is not None:
            message["caption"] = caption
        return message

    def block(self, chat_id: int, description: str = BLOCKED) -> None:
        """From now on sendMessage to this chat answers 403 (the user blocked the bot)."""
        self.blocked[chat_id] = description

    def add_channel(self, username: str, chat_id: int, *, can_post: bool = True) -> None:
        """A channel reachable as @username; without can_post the bot is not an admin there."""
        self.channels[username.lower()] = chat_id
        self._chat(chat_id, "channel")
        if not can_post:
            self.block(chat_id, "Forbidden: bot is not a member of the channel chat")

    def push_inline_query(self, query: str, *, user_id: int, offset: str = "") -> str:
        """Queue an inline query (@bot words); returns its id for answerInlineQuery."""
        query_id = f"iq{next(self._callback_ids)}"
        inline = {"id": query_id, "from": self.user(user_id), "query": query, "offset": offset}
        self.push_update({"inline_query": inline})
        return query_id

    def push_callback(self, message: JSON, data: str, *, user_id: int) -> int:
        """Queue a button press on a message the bot sent (a Call's result)."""
        query = {
            "id": str(next(self._callback_ids)),
            "from": self.user(user_id),
            "chat_instance": "fake",
            "message": message,
            "data": data,
        }
        return self.push_update({"callback_query": query})

    def of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    @property
    def rejected(self) -> list[Call]:
        return [call for call in self.calls if call.status == 400]

    async def next_call(
        self,
        method: str,
        *,
        ok: bool = True,
        where: Callable[[Call], bool] | None = None,
        **params: Any,
    ) -> Call:
        """The first call not yet returned by next_call that matches; waits for it."""

        def find() -> Call | None:
            for call in self.calls:
                if (
                    call.index not in self._consumed
                    and call.method == method
                    and call.ok == ok
                    and all(call.params.get(key) == value for key, value in params.items())
                    and (where is None or where(call))
                ):
                    return call
            return None

        async with asyncio.timeout(WAIT_LIMIT), self._changed:
            found = await self._changed.wait_for(find)
        assert found is not None  # wait_for returns only once find() is truthy
        self._consumed.add(found.index)
        return found

    async def until_confirmed(self, update_id: int) -> None:
        """Wait until the bot confirms `update_id` (asks getUpdates for a later offset).

        Noted when the request arrives, not when its long poll ends.
        """
        async with asyncio.timeout(WAIT_LIMIT), self._changed:
            await self._changed.wait_for(lambda: self._confirmed > update_id)

    async def reply_to(self, chat_id: int) -> Call:
        """The next message the bot sends to a chat."""
        return await self.next_call("sendMessage", chat_id=chat_id)

    # --- HTTP ---------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> JSON:
        if request.content_type == "application/json":
            raw: JSON = await request.json()
        else:
            form = await request.post()
            raw = {key: value for key, value in form.items() if isinstance(value, str)}
        params: JSON = {}
        for key, value in raw.items():
            if key in _JSON_FIELDS and isinstance(value, str):
                params[key] = json.loads(value)
            elif key in _INT_FIELDS and isinstance(value, str) and value.lstrip("-").isdigit():
                params[key] = int(value)
            else:
                params[key] = value
        return params

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def _handle_method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        call = Call(len(self.calls), method, params)
        if request.match_info["token"] != self.token:
            call.status, call.error = 401, "Unauthorized"
        elif fault := next((f for f in self._faults if f.method == method), None):
            return await self._inject(request, call, fault)
        elif failure := next((f for f in self._failures if f.method == method), None):
            failure.times -= 1
            if failure.times <= 0:
                self._failures.remove(failure)
            call.status = 429
            call.error = f"Too Many Requests: retry after {failure.retry_after}"
            await self._record(call)
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 429,
                    "description": call.error,
                    "parameters": {"retry_after": failure.retry_after},
                },
                status=429,
            )
        else:
            handler = getattr(self, f"_api_{method}", None)
            if handler is None:
                call.status, call.error = 404, "Not Found"
            else:
                try:
                    call.result = await handler(params)
                except BadRequest as exc:
                    call.status, call.error = 400, str(exc)
                except Forbidden as exc:
                    call.status, call.error = 403, str(exc)
        await self._record(call)
        if call.ok:
            return web.json_response({"ok": True, "result": call.result})
        return web.json_response(
            {"ok": False, "error_code": call.status, "description": call.error},
            status=call.status,
        )

    async def _inject(self, request: web.Request, call: Call, fault: _Fault) -> web.Response:
        fault.times -= 1
        if fault.times <= 0:
            self._faults.remove(fault)
        call.status = fault.status if fault.kind == "status" else 599
        call.error = f"injected {fault.kind}"
        await self._record(call)
        if fault.kind == "hang":
            # Held until the server closes: far past the client's read timeout.
            await self._closing.wait()
            return web.Response(status=504)
        if fault.kind == "drop":
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=599)
        description = "Internal Server Error" if fault.status == 500 else "Bad Gateway"
        return web.json_response(
            {"ok": False, "error_code": fault.status, "description": description},
            status=fault.status,
        )

    async def _handle_download(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        self.downloads.append(path)
        for stored in self._files.values():
            if stored.file_path == path and request.match_info["token"] == self.token:
                return web.Response(body=stored.data)
        return web.Response(status=404)

    # --- methods ------------------------------------------------------------------------

    def _me(self) -> JSON:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "NewsBot",
            "username": self.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _api_getMe(self, params: JSON) -> JSON:
        return self._me()

    async def _api_deleteWebhook(self, params: JSON) -> bool:
        self.webhook = {}
        return True

    async def _api_setWebhook(self, params: JSON) -> bool:
        url = str(params.get("url", ""))
        if url and not url.startswith(("https://", "http://")):
            raise BadRequest("Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise BadRequest("Bad Request: secret token contains unallowed characters")
        self.webhook = dict(params)
        return True

    async def _api_getWebhookInfo(self, params: JSON) -> JSON:
        return {"url": str(self.webhook.get("url", "")), "has_custom_certificate": False,
                "pending_update_count": len(self._updates)}  # fmt: skip

    async def _api_setMyCommands(self, params: JSON) -> bool:
        for command in params.get("commands", []):
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command.get("command", "")):
                raise BadRequest("Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(command.get("description", "")) <= 256:
                raise BadRequest("Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        return True

    async def _api_getUpdates(self, params: JSON) -> list[JSON]:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        if offset > self._confirmed:
            async with self._changed:
                self._confirmed = offset
                self._changed.notify_all()
        limit = int(params.get("limit") or 100)
        # Confirmed updates are gone for good, as on Telegram.
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates and not self._repeat and timeout > 0 and not self._closing.is_set():
            self._new_update.clear()
            waiters = {
                asyncio.ensure_future(self._new_update.wait()),
                asyncio.ensure_future(self._closing.wait()),
            }
            # This is the long poll itself (the server side of Telegram's timeout), not a
            # test waiting for something to happen.
            _, pending = await asyncio.wait(
                waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in pending:
                waiter.cancel()
        batch = self._repeat + self._updates[:limit]
        self._repeat = []
        if batch and self._duplicate_batches:
            self._duplicate_batches -= 1
            batch = [update for update in batch for _ in range(2)]
        return batch

    def _sent(self, chat_id: int, text: str, params: JSON) -> JSON:
        chat = self._chats.get(chat_id) or self._chat(
            chat_id, "private" if chat_id > 0 else "group"
        )
        message: JSON = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": self._me(),
            "text": text,
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return message

    async def _api_sendMessage(self, params: JSON) -> JSON:
        chat_id = params.get("chat_id")
        if isinstance(chat_id, str) and chat_id.startswith("@"):
            chat_id = self.channels.get(chat_id.lower())
        if not isinstance(chat_id, int):
            raise BadRequest("Bad Request: chat not found")
        if chat_id in self.blocked:
            raise Forbidden(self.blocked[chat_id])
        text = check_text(params)
        check_markup(params)
        message = self._sent(chat_id, text, params)
        self._messages[(chat_id, message["message_id"])] = message
        return message

    async def _api_editMessageText(self, params: JSON) -> JSON:
        key = (params.get("chat_id"), params.get("message_id"))
        old = self._messages.get(key)  # type: ignore[arg-type]
        if old is None:
            raise BadRequest("Bad Request: message to edit not found")
        text = check_text(params)
        check_markup(params)
        if text == old["text"] and params.get("reply_markup") == old.get("reply_markup"):
            raise BadRequest(
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message"
            )
        new = {**old, "text": text, "edit_date": int(time.time())}
        new.pop("reply_markup", None)
        if params.get("reply_markup"):
            new["reply_markup"] = params["reply_markup"]
        self._messages[key] = new  # type: ignore[index]
        return new

    async def _api_answerCallbackQuery(self, params: JSON) -> bool:
        if len(str(params.get("text", ""))) > 200:
            raise BadRequest("Bad Request: MESSAGE_TOO_LONG")
        return True

    async def _api_getFile(self, params: JSON) -> JSON:
        file_id = str(params.get("file_id"))
        stored = self._files.get(file_id)
        if stored is None:
            raise BadRequest("Bad Request: invalid file_id")
        return {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_size": stored.size,
            "file_path": stored.file_path,
        }

    async def _api_answerInlineQuery(self, params: JSON) -> bool:
        if not params.get("inline_query_id"):
            raise BadRequest("Bad Request: QUERY_ID_INVALID")
        results = params.get("results")
        if not isinstance(results, list) or len(results) > MAX_INLINE_RESULTS:
            raise BadRequest("Bad Request: RESULTS_TOO_MUCH")
        ids: set[str] = set()
        for result in results:
            result_id = str(result.get("id", ""))
            if not 1 <= len(result_id.encode()) <= 64:
                raise BadRequest("Bad Request: RESULT_ID_INVALID")
            if result_id in ids:
                raise BadRequest("Bad Request: RESULT_ID_DUPLICATE")
            ids.add(result_id)
            if result.get("type") != "article" or not str(result.get("title", "")).strip():
                raise BadRequest("Bad Request: RESULT_TITLE_EMPTY")
            content = result.get("input_message_content") or {}
            check_text(
                {"text": content.get("message_text"), "parse_mode": content.get("parse_mode")}
            )
            check_markup(result)
        if len(str(params.get("next_offset", "")).encode()) > 64:
            raise BadRequest("Bad Request: NEXT_OFFSET_INVALID")
        return True

    async def _api_getChatMember(self, params: JSON) -> JSON:
        chat_id, user_id = params.get("chat_id"), int(params.get("user_id", 0))
        if not isinstance(chat_id, int) or chat_id not in self._chats:
            raise BadRequest("Bad Request: chat not found")
        status = "administrator" if user_id in self.chat_admins.get(chat_id, set()) else "member"
        member: JSON = {"status": status, "user": self.user(user_id)}
        if status == "administrator":
            member.update(
                {
                    "can_be_edited": False, "is_anonymous": False, "can_manage_chat": True,
                    "can_delete_messages": True, "can_manage_video_chats": True,
                    "can_restrict_members": True, "can_promote_members": False,
                    "can_change_info": True, "can_invite_users": True,
                    "can_post_stories": False, "can_edit_stories": False,
                    "can_delete_stories": False,
                }
            )  # fmt: skip
        return member


def buttons(call: Call) -> dict[str, str]:
    """Button label -> callback data of a sent or edited message."""
    markup = call.params.get("reply_markup") or {}
    return {
        button["text"]: button["callback_data"]
        for row in markup.get("inline_keyboard", [])
        for button in row
        if "callback_data" in button
    }


def story_ids(text: str) -> list[int]:
    """The story ids a reply shows ("#12"), in order."""
    return [int(found) for found in re.findall(r"#(\d+)", text)]

"""bot.request.AiohttpRequest against a tiny aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import BodyPartReader, web
from telegram import InputFile
from telegram.error import NetworkError, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from bot.request import AiohttpRequest


class Server:
    def __init__(self) -> None:
        self.seen: list[dict[str, object]] = []
        self.release = asyncio.Event()
        self.url = ""

    async def echo(self, request: web.Request) -> web.Response:
        seen: dict[str, object] = {
            "method": request.method,
            "content_type": request.content_type,
            "agent": request.headers.get("User-Agent", ""),
        }
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            parts: dict[str, object] = {}
            async for part in reader:
                assert isinstance(part, BodyPartReader)
                body = await part.read()
                parts[part.name or ""] = {
                    "filename": part.filename,
                    "type": part.headers.get("Content-Type"),
                    "body": body.decode(),
                }
            seen["parts"] = parts
        elif request.content_type == "application/json":
            seen["json"] = await request.json()
        else:
            seen["form"] = dict(await request.post())
        self.seen.append(seen)
        return web.json_response({"ok": True, "result": True})

    async def hold(self, request: web.Request) -> web.Response:
        await self.release.wait()
        return web.json_response({"ok": True, "result": True})


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()
    app = web.Application()
    app.router.add_route("*", "/echo", state.echo)
    app.router.add_post("/hold", state.hold)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sockets = site._server.sockets  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        state.release.set()
        await runner.cleanup()


@pytest.fixture
async def request_() -> AsyncIterator[AiohttpRequest]:
    request = AiohttpRequest(connection_pool_size=4)
    await request.initialize()
    try:
        yield request
    finally:
        await request.shutdown()


def _data(**params: object) -> RequestData:
    return RequestData([RequestParameter.from_input(name, value) for name, value in params.items()])


async def test_posts_parameters_as_json_and_returns_status_and_body(
    server: Server, request_: AiohttpRequest
) -> None:
    status, body = await request_.do_request(
        f"{server.url}/echo",
        "POST",
        _data(chat_id=5, text="héllo & <b>", reply_markup={"a": 1}, allowed=["x"], off=None),
    )
    assert status == 200
    assert json.loads(body) == {"ok": True, "result": True}
    seen = server.seen[0]
    assert seen["content_type"] == "application/json"
    # Objects and numbers go as themselves, not JSON text inside JSON; None is left out.
    assert seen["json"] == {
        "chat_id": 5,
        "text": "héllo & <b>",
        "reply_markup": {"a": 1},
        "allowed": ["x"],
    }
    assert "python-telegram-bot" in str(seen["agent"])


async def test_a_request_without_data_is_sent_without_a_body(
    server: Server, request_: AiohttpRequest
) -> None:
    status, _ = await request_.do_request(f"{server.url}/echo", "POST")
    assert status == 200
    assert server.seen[0]["form"] == {}
    status, _ = await request_.do_request(f"{server.url}/echo", "POST", _data())
    assert status == 200
    assert server.seen[1]["form"] == {}


async def test_uploads_files_as_multipart_with_the_other_parameters(
    server: Server, request_: AiohttpRequest
) -> None:
    document = InputFile(b"id,title\n1,x\n", filename="stories.csv")
    status, _ = await request_.do_request(
        f"{server.url}/echo", "POST", _data(chat_id=7, document=document, caption="file")
    )
    assert status == 200
    seen = server.seen[0]
    assert seen["content_type"] == "multipart/form-data"
    parts = seen["parts"]
    assert isinstance(parts, dict)
    assert parts["chat_id"]["body"] == "7"
    assert parts["caption"]["body"] == "file"
    # PTB attaches the file under its own field name and refers to it by attach://.
    uploads = [part for part in parts.values() if part["filename"] == "stories.csv"]
    assert len(uploads) == 1
    assert uploads[0]["body"] == "id,title\n1,x\n"
    assert uploads[0]["type"] == "text/csv"


async def test_a_reply_slower_than_the_read_timeout_raises_timed_out(
    server: Server, request_: AiohttpRequest
) -> None:
    with pytest.raises(TimedOut):
        await request_.do_request(f"{server.url}/hold", "POST", read_timeout=0.05)
    # The session still works afterwards.
    status, _ = await request_.do_request(f"{server.url}/echo", "POST")
    assert status == 200


async def test_a_refused_connection_raises_network_error(request_: AiohttpRequest) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port once the socket is closed.
    with pytest.raises(NetworkError) as raised:
        await request_.do_request(f"http://127.0.0.1:{port}/x", "POST")
    assert not isinstance(raised.value, TimedOut)


async def test_requests_before_initialize_or_after_shutdown_are_refused(server: Server) -> None:
    request = AiohttpRequest()
    with pytest.raises(RuntimeError):
        await request.do_request(f"{server.url}/echo", "POST")
    await request.initialize()
    await request.initialize()
    assert (await request.do_request(f"{server.url}/echo", "POST"))[0] == 200
    await request.shutdown()
    await request.shutdown()
    with pytest.raises(RuntimeError):
        await request.do_request(f"{server.url}/echo", "POST")
    await request.initialize()
    assert (await request.do_request(f"{server.url}/echo", "POST"))[0] == 200
    await request.shutdown()


def test_the_default_read_timeout_is_reported_for_get_updates() -> None:
    assert AiohttpRequest(read_timeout=12.5).read_timeout == 12.5
    with pytest.raises(ValueError, match="connection_pool_size"):
        AiohttpRequest(connection_pool_size=0)

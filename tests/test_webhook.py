"""Webhook mode end to end: PTB's webhook server in front of the real app, over real HTTP.

Updates are POSTed the way Telegram posts them; the bot's replies go to the fake Bot API
server. Two workers over one database file show that any worker can take any update.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from bot import cli, webhook
from bot.app import build_app, rate_limits, run_bot, serve_webhook
from bot.services import NewsApp
from bot.settings import Settings, SettingsError
from storage.backend import open_store
from tests.conftest import BACKENDS, USER, NewStoryFactory, both_backends
from tests.fake_bot_api import JSON, FakeBotAPI, buttons, story_ids

SECRET = "s3cret_-token"
HOOK_URL = "https://bot.example/tg/hook"


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str | None:
    # The webhook scenarios, two workers sharing one database included, run on both backends.
    return both_backends(request)


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"webhook_url": HOOK_URL, "webhook_secret": SecretStr(SECRET)}
    )


def listening_socket() -> socket.socket:
    """A socket already listening on a free loopback port: requests wait in its backlog."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    return sock


@asynccontextmanager
async def worker(settings: Settings, api: FakeBotAPI) -> AsyncIterator[str]:
    """One webhook worker (the production serve_webhook); yields its webhook URL."""
    sock = listening_socket()
    port = sock.getsockname()[1]
    stop = asyncio.Event()
    app = build_app(settings, rate_limit=False)
    task = asyncio.create_task(serve_webhook(app, settings, stop=stop, sock=sock))
    try:
        yield f"http://127.0.0.1:{port}{webhook.webhook_path(settings)}"
    finally:
        stop.set()
        await task
        sock.close()


class Poster:
    """Posts updates to webhook URLs as Telegram does, numbering them."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.next_id = 1

    async def post(self, url: str, update: JSON, secret: str | None = SECRET) -> int:
        headers = {} if secret is None else {webhook.SECRET_HEADER: secret}
        body = {"update_id": self.next_id, **update}
        self.next_id += 1
        async with self.session.post(url, json=body, headers=headers) as response:
            return response.status


@pytest.fixture
async def poster() -> AsyncIterator[Poster]:
    async with aiohttp.ClientSession() as session:
        yield Poster(session)


async def test_only_requests_with_the_secret_get_in(
    hook_settings: Settings, api: FakeBotAPI, poster: Poster
) -> None:
    async with worker(hook_settings, api) as url:
        # A lone worker sets the webhook itself, with the secret Telegram will echo.
        call = await api.next_call("setWebhook")
        assert call.params["url"] == HOOK_URL
        assert call.params["secret_token"] == SECRET

        start = {"message": api.message("/start", user_id=USER)}
        assert await poster.post(url, start, secret=None) == 403
        assert await poster.post(url, start, secret="wrong-secret") == 403
        assert await poster.post(url, start) == 200
        reply = await api.reply_to(USER)
        assert "/latest" in reply.result["text"]
    # Stopping drained every queued update: the refused requests were never queued.
    assert len(api.of("sendMessage")) == 1


async def test_two_workers_share_one_database(
    hook_settings: Settings,
    api: FakeBotAPI,
    poster: Poster,
    new_story: NewStoryFactory,
) -> None:
    settings = hook_settings.model_copy(update={"workers": 2})
    async with worker(settings, api) as first, worker(settings, api) as second:
        await api.next_call("setMyCommands")
        await api.next_call("setMyCommands")
        # Stories stored through another process's connection to the same file.

        async with await open_store(settings.store_url) as store:
            ids = [(await store.add(new_story())).story_id for _ in range(5)]

        assert await poster.post(first, {"message": api.message("/latest 2", user_id=USER)}) == 200
        page = await api.reply_to(USER)
        assert story_ids(page.result["text"]) == [ids[4], ids[3]]

        press: dict[str, Any] = {
            "id": "cb1",
            "from": api.user(USER),
            "chat_instance": "fake",
            "message": page.result,
            "data": buttons(page)["Older »"],
        }
        assert await poster.post(second, {"callback_query": press}) == 200
        older = await api.next_call("editMessageText", message_id=page.result["message_id"])
        assert story_ids(older.result["text"]) == [ids[2], ids[1]]
        await api.next_call("answerCallbackQuery")
    # With several workers none sets the webhook: `newsbot webhook set` does, once.
    assert not api.of("setWebhook")


async def test_webhook_set_command_sets_url_and_secret(
    api: FakeBotAPI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    for name, value in {
        "BOT_TOKEN": api.token,
        "TELEGRAM_API_URL": api.url,
        "WEBHOOK_URL": HOOK_URL,
        "WEBHOOK_SECRET": SECRET,
        "WORKERS": "3",
    }.items():
        monkeypatch.setenv(name, value)
    # main() runs its own event loop; the fake server keeps answering on this one.
    assert await asyncio.to_thread(cli.main, ["webhook", "set"]) == 0
    assert api.webhook["url"] == HOOK_URL
    assert api.webhook["secret_token"] == SECRET
    assert await asyncio.to_thread(webhook.main, ["info"]) == 0
    assert HOOK_URL in capsys.readouterr().out


def plain_settings(**values: Any) -> Settings:
    return Settings(_env_file=None, bot_token=SecretStr("1:x"), **values)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        ({"webhook_url": HOOK_URL}, "WEBHOOK_SECRET"),
        ({"workers": 2}, "WORKERS"),
        ({"workers": 2, "webhook_secret": SecretStr(SECRET)}, "WORKERS"),
    ],
)
def test_run_bot_refuses_unsafe_webhook_settings(values: dict[str, Any], variable: str) -> None:
    with pytest.raises(SettingsError) as info:
        run_bot(plain_settings(**values))
    message = str(info.value)
    assert variable in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("url", "path"),
    [(HOOK_URL, "/tg/hook"), ("https://bot.example", "/"), ("https://b.example/x/", "/x")],
)
def test_webhook_path_is_the_url_path(url: str, path: str) -> None:
    assert webhook.webhook_path(plain_settings(webhook_url=url)) == path


def limiter_of(app: NewsApp) -> Iterator[float]:
    limiter: Any = app.bot.rate_limiter
    # AIORateLimiter keeps its limits in private attributes; read them to check the wiring.
    yield limiter._base_limiter.max_rate
    yield limiter._base_limiter.time_period
    yield limiter._group_max_rate
    yield limiter._group_time_period


async def test_workers_split_telegrams_rate_limits(settings: Settings) -> None:
    one = build_app(settings)
    two = build_app(settings.model_copy(update={"workers": 2}))
    assert list(limiter_of(one)) == [30, 1, 20, 60]
    assert list(limiter_of(two)) == [15, 1, 10, 60]


@pytest.mark.parametrize("workers", [1, 2, 3, 7, 21, 31, 64])
def test_the_sum_across_workers_stays_within_telegrams_limits(workers: int) -> None:
    limits = rate_limits(workers)
    # Every bucket can hold at least one request (aiolimiter refuses smaller ones).
    assert limits.overall_max_rate >= 1
    assert limits.group_max_rate >= 1
    per_second = workers * limits.overall_max_rate / limits.overall_time_period
    per_minute = workers * limits.group_max_rate / limits.group_time_period * 60
    assert per_second == pytest.approx(30)
    assert per_minute == pytest.approx(20)

"""Webhook mode for one or several worker processes behind a reverse proxy.

Every worker runs PTB's own webhook server (the one `Application.run_webhook` starts), which
answers 403 to any request whose X-Telegram-Bot-Api-Secret-Token header is missing or is not
WEBHOOK_SECRET, so only Telegram (which echoes the secret given to setWebhook) gets updates
in. Workers keep no state between updates: the pagination cursor rides in the callback data
and everything else is in the database, so any worker can take any update.

Exactly one process calls setWebhook: `newsbot run` itself when WORKERS=1, otherwise the
one-shot `newsbot webhook set` (docker-compose.yml's `webhook` service). Workers cannot
leave it to PTB: `Updater.start_webhook` always calls setWebhook, and without a webhook_url
it invents http://<listen>:<port>/<path>, which would point Telegram at a container address.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from socket import socket
from urllib.parse import urlsplit

from telegram import Bot, Update
from telegram.error import TelegramError

from bot.logs import configure_logging
from bot.services import NewsApp
from bot.settings import Settings, SettingsError, load_settings

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105  (a header name, not a secret)


def check_run_settings(settings: Settings) -> None:
    """Refuse settings the Telegram bot cannot run with (one line naming the variable)."""
    if settings.workers > 1 and not settings.webhook_url:
        raise SettingsError(
            f"bad setting WORKERS: {settings.workers} workers need webhook mode (set WEBHOOK_URL "
            "and WEBHOOK_SECRET); several processes polling getUpdates conflict"
        )
    if settings.webhook_url and settings.webhook_secret is None:
        raise SettingsError(
            "missing setting WEBHOOK_SECRET: webhook mode needs it (1-256 characters of "
            "A-Z a-z 0-9 _ -), e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


def webhook_path(settings: Settings) -> str:
    """The local path the webhook server answers on: WEBHOOK_URL's path ("/" when none)."""
    return "/" + urlsplit(settings.webhook_url or "").path.strip("/")


def url_and_secret(settings: Settings) -> tuple[str, str]:
    """WEBHOOK_URL and WEBHOOK_SECRET, or a SettingsError naming what is missing."""
    check_run_settings(settings)
    if not settings.webhook_url or settings.webhook_secret is None:
        raise SettingsError("missing setting WEBHOOK_URL: no webhook to set")
    return settings.webhook_url, settings.webhook_secret.get_secret_value()


async def set_webhook(bot: Bot, settings: Settings) -> None:
    """Point Telegram at WEBHOOK_URL with WEBHOOK_SECRET: once per deployment, not per worker."""
    url, secret = url_and_secret(settings)
    await bot.set_webhook(url, secret_token=secret, allowed_updates=Update.ALL_TYPES)


@asynccontextmanager
async def serving(
    app: NewsApp,
    *,
    secret: str,
    path: str,
    listen: str = "127.0.0.1",
    port: int = 0,
    sock: socket | None = None,
) -> AsyncIterator[None]:
    """Feed POSTs on `path` into app.update_queue until the block ends; never calls setWebhook.

    `sock`, an already listening socket, replaces listen/port (tests bind port 0 to get a
    free one). The app must be started (bot.app.running) for queued updates to be handled.
    """
    # PTB's own server and request handler, i.e. its secret check (a 403 without the right
    # header), taken without Updater.start_webhook's setWebhook call. Imported here: the
    # module needs tornado, which only webhook mode does.
    from telegram.ext._utils.webhookhandler import WebhookAppClass, WebhookServer

    handler = WebhookAppClass(path, app.bot, app.update_queue, secret)
    server = WebhookServer(listen, port, handler, None, sock)
    await server.serve_forever()
    try:
        yield
    finally:
        await server.shutdown()


# -- newsbot webhook set|delete|info (also python -m bot.webhook) ----------------------


async def _command(action: str, settings: Settings) -> int:
    if settings.bot_token is None:
        raise SettingsError("missing setting BOT_TOKEN: get one from @BotFather")
    bot = Bot(
        settings.bot_token.get_secret_value(),
        base_url=settings.api_base_url,
        base_file_url=settings.api_file_url,
    )
    async with bot:
        if action == "set":
            await set_webhook(bot, settings)
            print(f"webhook set: {settings.webhook_url}")
        elif action == "delete":
            # Pending updates stay with Telegram: polling or the next webhook gets them.
            await bot.delete_webhook()
            print("webhook deleted")
        else:
            info = await bot.get_webhook_info()
            shown = {
                "url": info.url,
                "pending_update_count": info.pending_update_count,
                "max_connections": info.max_connections,
                "last_error_message": info.last_error_message,
            }
            print(json.dumps(shown))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsbot webhook",
        description="Set, delete or show the bot's webhook (once per deployment, not per "
        "worker). Reads the same settings as `newsbot run`.",
    )
    parser.add_argument("action", choices=("set", "delete", "info"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 on success, 1 when Telegram refuses, 2 on a bad setting."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings)
        return asyncio.run(_command(args.action, settings))
    except SettingsError as exc:
        print(f"newsbot webhook: {exc}", file=sys.stderr)
        return 2
    except TelegramError as exc:
        print(f"newsbot webhook: Telegram refused: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

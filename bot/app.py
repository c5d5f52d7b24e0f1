"""The one place the Application is built: every handler, the store's lifetime, start-up."""

from __future__ import annotations

import asyncio
import html
import importlib.util
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from socket import socket

from telegram import BotCommand, Update
from telegram.constants import FloodLimit, ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    JobQueue,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import BaseRequest

from bot import delivery, jobs, webhook
from bot import formatting as fmt
from bot.guard import UpdateGuard
from bot.handlers import admin, reach, reading
from bot.logs import RedactToken
from bot.request import GET_UPDATES_READ_TIMEOUT, AiohttpRequest
from bot.services import BotData, NewsApp, NewsContext, Services
from bot.settings import Settings, SettingsError

logger = logging.getLogger(__name__)

# PTB needs a well-formed token even when no request leaves the process (console chat).
OFFLINE_TOKEN = "0:offline"  # noqa: S105  (a placeholder that opens nothing)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True, slots=True)
class RateLimits:
    """One worker's share of Telegram's outgoing limits: `max_rate` requests per `period` s."""

    overall_max_rate: float
    overall_time_period: float
    group_max_rate: float
    group_time_period: float


def _share(rate: float, period: float, workers: int) -> tuple[float, float]:
    # aiolimiter cannot grant one request from a bucket smaller than one, so below one per
    # period the period grows instead (1 per `workers` times as long): the same average.
    if rate / workers >= 1:
        return rate / workers, period
    return 1.0, period * workers / rate


def rate_limits(workers: int) -> RateLimits:
    """Each of `workers` processes gets 1/workers of Telegram's limits, so their sum stays
    within them: 30 messages a second overall, 20 a minute per group. A chat's updates can
    land on any worker, hence the per-group share too.
    """
    overall = _share(FloodLimit.MESSAGES_PER_SECOND, 1, workers)
    group = _share(FloodLimit.MESSAGES_PER_MINUTE_PER_GROUP, 60, workers)
    return RateLimits(*overall, *group)


def default_rate_limiter(workers: int) -> AIORateLimiter:
    """AIORateLimiter holding this worker to its share of the limits (rate_limits)."""
    limits = rate_limits(workers)
    return AIORateLimiter(
        overall_max_rate=limits.overall_max_rate,
        overall_time_period=limits.overall_time_period,
        group_max_rate=limits.group_max_rate,
        group_time_period=limits.group_time_period,
        max_retries=3,
    )


def build_app(
    settings: Settings,
    *,
    request: BaseRequest | None = None,
    rate_limit: bool = True,
    guard: UpdateGuard | None = None,
    rate_limiter: AIORateLimiter | None = None,
) -> NewsApp:
    """Build the bot: handlers, services opened in post_init and closed in post_shutdown.

    `request` replaces the HTTP layer (the console chat answers in-process);
    `rate_limit=False` drops AIORateLimiter for tests and benchmarks; `guard` replaces the
    default duplicate and flood check (UpdateGuard(throttle=False) for benchmarks);
    `rate_limiter` replaces the default AIORateLimiter (tests scale its limits); the default
    takes 1/WORKERS of Telegram's limits (rate_limits).
    """
    # Request URLs carry the token; httpx logs them at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    token = settings.bot_token.get_secret_value() if settings.bot_token else OFFLINE_TOKEN
    _redact_in_bot_logs(token)

    async def post_init(app: NewsApp) -> None:
        app.bot_data.services = await Services.open(settings)
        await delivery.install(app)
        await app.bot.set_my_commands(
            [BotCommand(command.name, command.description) for command in fmt.COMMANDS]
        )

    builder = (
        Application.builder()
        .token(token)
        .base_url(settings.api_base_url)
        .base_file_url(settings.api_file_url)
        .context_types(ContextTypes(context=NewsContext, bot_data=BotData))
        .concurrent_updates(True)
        # Subscription pushes and daily digests run as jobs (bot.delivery).
        .job_queue(JobQueue[NewsContext]())
        .post_init(post_init)
        .post_shutdown(_post_shutdown)
    )
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    else:
        # aiohttp rather than PTB's httpx default: httpx's pool walk cost half the CPU per
        # update (bot.request). getUpdates gets its own connection, as PTB's default does.
        builder = builder.request(AiohttpRequest()).get_updates_request(
            AiohttpRequest(connection_pool_size=1, read_timeout=GET_UPDATES_READ_TIMEOUT)
        )
    app: NewsApp
    if rate_limit:
        app = builder.rate_limiter(rate_limiter or default_rate_limiter(settings.workers)).build()
    else:
        app = builder.build()
    _add_handlers(app, guard or UpdateGuard())
    # Re-ranks recent stories' related lists every few minutes (bot.jobs).
    jobs.schedule(app)
    return app


# PTB's Bot logs its API URLs, token included, at DEBUG while it is built. A filter on the
# loggers that emit them redacts the record itself, for every handler (bot.logs only covers
# the handlers configure_logging sees). Logger filters do not apply to child loggers, hence
# both names.
_BOT_LOGGERS = ("telegram.Bot", "telegram.ext.ExtBot")
_redacted: set[str] = set()


def _redact_in_bot_logs(token: str) -> None:
    if token in _redacted:
        return
    _redacted.add(token)
    redact = RedactToken(token)
    for name in _BOT_LOGGERS:
        logging.getLogger(name).addFilter(redact)


def _add_handlers(app: NewsApp, guard: UpdateGuard) -> None:
    # Group -1 runs before every handler: repeated updates and floods stop there.
    app.add_handler(TypeHandler(Update, guard), group=-1)
    # New messages only: an edit is not a new command (an edited "/delete 3" must not delete
    # again), and channel posts come from no user, so no command is answered in a channel.
    new = filters.UpdateType.MESSAGE
    app.add_handler(CommandHandler(["start", "help"], reading.start, filters=new))
    app.add_handler(CommandHandler("latest", reading.latest, filters=new))
    app.add_handler(CommandHandler("story", reading.story, filters=new))
    app.add_handler(CommandHandler("related", reading.related, filters=new))
    app.add_handler(CommandHandler("search", reading.search, filters=new))
    app.add_handler(CommandHandler("add", admin.add, filters=new))
    app.add_handler(CommandHandler("delete", admin.delete, filters=new))
    app.add_handler(CommandHandler("stats", admin.stats, filters=new))
    # In groups CommandHandler takes /cmd and /cmd@<this bot> only, which privacy mode lets
    # through; group admins are checked inside the handlers.
    app.add_handler(CommandHandler("subscribe", reach.subscribe, filters=new))
    app.add_handler(CommandHandler("unsubscribe", reach.unsubscribe, filters=new))
    app.add_handler(CommandHandler("subscriptions", reach.subscriptions, filters=new))
    app.add_handler(CommandHandler("digest", reach.digest, filters=new))
    app.add_handler(CommandHandler("timezone", reach.timezone, filters=new))
    app.add_handler(CommandHandler("post", reach.post, filters=new))
    app.add_handler(InlineQueryHandler(reach.inline_query))
    app.add_handler(CallbackQueryHandler(reading.button))
    # Documents only in private chats: in a group, files are people talking to each other.
    app.add_handler(
        MessageHandler(new & filters.Document.ALL & filters.ChatType.PRIVATE, admin.document)
    )
    # Must stay last in the group: it catches what no handler above took (unknown commands,
    # and plain text in a private chat) so nothing goes unanswered.
    app.add_handler(
        MessageHandler(
            new & (filters.COMMAND | (filters.TEXT & filters.ChatType.PRIVATE)), reading.unknown
        )
    )
    app.add_error_handler(_on_error)


async def _post_shutdown(app: NewsApp) -> None:
    services = app.bot_data.take()
    if services is not None:
        await services.close()


def _describe(update: object) -> str:
    if not isinstance(update, Update):
        return repr(update)[:200]
    chat = update.effective_chat
    user = update.effective_user
    if update.callback_query is not None:
        what = f"button {update.callback_query.data!r}"
    elif update.effective_message is not None:
        what = f"message {(update.effective_message.text or '')[:80]!r}"
    else:
        what = "update"
    return (
        f"update {update.update_id} ({what}, chat {chat.id if chat else None}, "
        f"user {user.id if user else None})"
    )


async def _on_error(update: object, context: NewsContext) -> None:
    """Log the failure with what caused it, then tell the user something went wrong."""
    logger.error("%s failed", _describe(update), exc_info=context.error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    # A message rather than a callback answer: the button may have been answered already.
    try:
        await context.bot.send_message(
            update.effective_chat.id,
            html.escape(fmt.ERROR_REPLY),
            parse_mode=ParseMode.HTML,
            link_preview_options=fmt.PREVIEW_OFF,
        )
    except TelegramError:
        # The failure may be Telegram itself; one log line is all we can do.
        logger.warning("could not tell chat %s about the error", update.effective_chat.id)


@asynccontextmanager
async def running(app: NewsApp, *, poll: bool = True) -> AsyncIterator[NewsApp]:
    """Run the app inside an existing event loop with run_polling's lifecycle order.

    For tests (polling a fake Bot API server) and the console chat (poll=False: updates
    are fed with app.process_update).
    """
    await app.initialize()
    try:
        if app.post_init is not None:
            await app.post_init(app)
        if poll and app.updater is not None:
            await app.updater.start_polling(poll_interval=0, allowed_updates=Update.ALL_TYPES)
        await app.start()
        try:
            yield app
        finally:
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
    finally:
        await app.shutdown()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)


def run_bot(settings: Settings) -> None:
    """Run against Telegram until SIGINT/SIGTERM: webhook when WEBHOOK_URL is set, else polling."""
    if settings.bot_token is None:
        raise SettingsError("missing setting BOT_TOKEN: get one from @BotFather")
    webhook.check_run_settings(settings)
    if settings.webhook_url and importlib.util.find_spec("tornado") is None:
        raise SettingsError(
            'bad setting WEBHOOK_URL: webhooks need pip install "python-telegram-bot[webhooks]"'
        )
    app = build_app(settings)
    if not settings.webhook_url:
        app.run_polling(allowed_updates=Update.ALL_TYPES, stop_signals=STOP_SIGNALS)
        return
    asyncio.run(serve_webhook(app, settings))


async def serve_webhook(
    app: NewsApp,
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    sock: socket | None = None,
) -> None:
    """Webhook mode as one worker of WORKERS, until SIGINT/SIGTERM or, if given, `stop` is set.

    A lone worker sets the webhook itself; with several, `newsbot webhook set` does it
    once (bot.webhook explains why). `sock`, a listening socket, replaces WEBHOOK_LISTEN and
    WEBHOOK_PORT (tests).
    """
    _, secret = webhook.url_and_secret(settings)
    loop = asyncio.get_running_loop()
    signals = STOP_SIGNALS if stop is None else ()
    stop = stop or asyncio.Event()
    for stop_signal in signals:
        loop.add_signal_handler(stop_signal, stop.set)
    try:
        async with (
            running(app, poll=False),
            webhook.serving(
                app,
                secret=secret,
                path=webhook.webhook_path(settings),
                listen=settings.webhook_listen,
                port=settings.webhook_port,
                sock=sock,
            ),
        ):
            if settings.workers == 1:
                await webhook.set_webhook(app.bot, settings)
            logger.info("webhook worker up (one of %s)", settings.workers)
            await stop.wait()
    finally:
        for stop_signal in signals:
            loop.remove_signal_handler(stop_signal)

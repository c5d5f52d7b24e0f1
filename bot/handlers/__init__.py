"""Handlers grouped by what users do; these helpers send what bot.formatting rendered."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Final, TypeVar

from telegram import CallbackQuery, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, NetworkError, TimedOut

from bot.formatting import Reply
from bot.services import NewsContext

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
# Pauses before the second and third try of a request that failed on the way (a 5xx, a
# dropped connection). RetryAfter is the rate limiter's business, not this.
RETRY_DELAYS: Final = (0.25, 1.0)


async def retrying(call: Callable[[], Awaitable[_T]], *, idempotent: bool = False) -> _T:
    """Run a Bot API call, trying again when Telegram failed to take it (5xx, dropped line).

    A timeout is retried only for `idempotent` calls (getFile, downloads): a timed-out
    sendMessage may have been delivered, and a second copy is worse than an error reply.
    """
    for delay in RETRY_DELAYS:
        try:
            return await call()
        except BadRequest:
            raise
        except TimedOut:
            if not idempotent:
                raise
            logger.warning("Bot API call timed out; trying again in %s s", delay)
        except NetworkError as exc:
            logger.warning("Bot API call failed (%s); trying again in %s s", exc, delay)
        await asyncio.sleep(delay)
    return await call()


async def send(update: Update, context: NewsContext, reply: Reply) -> None:
    """Send a rendered reply to the update's chat, the keyboard under the last chunk."""
    chat = update.effective_chat
    if chat is None:
        return
    last = len(reply.chunks) - 1
    for index, chunk in enumerate(reply.chunks):
        await retrying(
            partial(
                context.bot.send_message,
                chat_id=chat.id,
                text=chunk,
                parse_mode=ParseMode.HTML,
                link_preview_options=reply.link_preview,
                reply_markup=reply.keyboard if index == last else None,
            )
        )


async def edit(query: CallbackQuery, reply: Reply) -> None:
    """Replace a paged message in place (paged replies are always one chunk)."""
    try:
        await query.edit_message_text(
            reply.chunks[0],
            parse_mode=ParseMode.HTML,
            link_preview_options=reply.link_preview,
            reply_markup=reply.keyboard,
        )
    except BadRequest as exc:
        # A double tap asks for the page already shown; Telegram refuses the no-op edit.
        if "not modified" not in exc.message.lower():
            raise


def command_args(context: NewsContext) -> str:
    """The command's arguments as one string."""
    return " ".join(context.args or ()).strip()


def parse_id(text: str) -> int | None:
    """A story id like `12` or `#12`, None otherwise."""
    text = text.strip().removeprefix("#")
    if not text.isdecimal() or len(text) > 18:
        return None
    return int(text)

"""Handlers grouped by what users do; these helpers send what bot.formatting rendered."""

from __future__ import annotations

import logging

from telegram import CallbackQuery, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest

from bot.formatting import Reply
from bot.services import NewsContext

logger = logging.getLogger(__name__)


async def send(update: Update, context: NewsContext, reply: Reply) -> None:
    """Send a rendered reply to the update's chat, the keyboard under the last chunk."""
    chat = update.effective_chat
    if chat is None:
        return
    last = len(reply.chunks) - 1
    for index, chunk in enumerate(reply.chunks):
        await context.bot.send_message(
            chat_id=chat.id,
            text=chunk,
            parse_mode=ParseMode.HTML,
            link_preview_options=reply.link_preview,
            reply_markup=reply.keyboard if index == last else None,
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

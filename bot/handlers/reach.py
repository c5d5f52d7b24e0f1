"""What reaches beyond one chat: subscriptions, digests, inline sharing, channel posts.

In a group only its admins (or the bot's admins) change what the group receives; with
privacy mode on the bot sees only commands there, which is all these handlers need.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Final

from telegram import Chat, ChatMember, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError

from bot import delivery
from bot import formatting as fmt
from bot.handlers import command_args, parse_id, send
from bot.services import NewsContext
from storage.errors import QueryError
from storage.subscriptions import normalise_query

logger = logging.getLogger(__name__)

# Inline answers are cached by Telegram for everyone typing the same query: long enough to
# spare the bot a query per keystroke, short enough that new stories show up soon.
INLINE_CACHE_SECONDS: Final = 60
_CHANNEL = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}|-100[0-9]{6,15}")
_GROUP_ONLY_ADMINS = "In a group only its admins can change what it receives."


def _is_bot_admin(update: Update, context: NewsContext) -> bool:
    """One of the bot's admins sent this; a forwarded command is never an admin's order."""
    user = update.effective_user
    message = update.effective_message
    if message is not None and message.forward_origin is not None:
        return False
    return user is not None and not user.is_bot and context.services.is_admin(user.id)


async def _may_configure(update: Update, context: NewsContext, chat: Chat) -> bool:
    """Anyone in a private chat; in a group its admins and the bot's admins."""
    if chat.type == ChatType.PRIVATE or _is_bot_admin(update, context):
        return True
    message = update.effective_message
    if message is not None and message.sender_chat is not None:
        # An anonymous group admin posts as the group itself.
        return message.sender_chat.id == chat.id
    user = update.effective_user
    if user is None:
        return False
    try:
        member = await context.bot.get_chat_member(chat.id, user.id)
    except TelegramError as exc:
        logger.warning("cannot check %s's status in chat %s: %s", user.id, chat.id, exc)
        return False
    return member.status in (ChatMember.ADMINISTRATOR, ChatMember.OWNER)


async def _configurable_chat(update: Update, context: NewsContext) -> Chat | None:
    chat = update.effective_chat
    if chat is None:
        return None
    if not await _may_configure(update, context, chat):
        await send(update, context, fmt.hint(_GROUP_ONLY_ADMINS))
        return None
    return chat


def _what(query: str) -> str:
    return "every new story" if query == "" else f"stories with “{query}”"


async def subscribe(update: Update, context: NewsContext) -> None:
    """/subscribe [words]: new stories (all, or those with the words) come to this chat."""
    chat = await _configurable_chat(update, context)
    if chat is None:
        return
    words = command_args(context)
    subscriptions = context.services.subscriptions
    try:
        added = await subscriptions.subscribe(chat.id, words)
    except QueryError as exc:
        await send(update, context, fmt.hint(f"Cannot subscribe to that: {exc}"))
        return
    # Cannot fail here: subscribe() accepted the same words.
    what = _what(normalise_query(words))
    settings = await subscriptions.settings(chat.id)
    if settings.digest_minute is None:
        how = "They arrive as they are stored; /digest HH:MM for one message a day."
    else:
        how = f"They arrive in the daily digest at {fmt.clock_time(settings.digest_minute)}."
    first = f"Subscribed to {what}." if added else f"Already subscribed to {what}."
    await send(update, context, fmt.hint(f"{first} {how} /subscriptions lists them."))


async def unsubscribe(update: Update, context: NewsContext) -> None:
    """/unsubscribe [words|all]: stop one subscription, or every one."""
    chat = await _configurable_chat(update, context)
    if chat is None:
        return
    words = command_args(context)
    subscriptions = context.services.subscriptions
    if words.lower() == "all":
        count = await subscriptions.unsubscribe_all(chat.id)
        text = f"Unsubscribed from {count} subscriptions." if count else "Nothing to stop."
        await send(update, context, fmt.hint(text))
        return
    try:
        removed = await subscriptions.unsubscribe(chat.id, words)
    except QueryError:
        removed = False
    if removed:
        text = f"Unsubscribed from {_what(normalise_query(words))}."
    else:
        text = "No such subscription here. /subscriptions lists them; /unsubscribe all stops all."
    await send(update, context, fmt.hint(text))


async def subscriptions(update: Update, context: NewsContext) -> None:
    """/subscriptions: this chat's subscriptions and how they are delivered."""
    chat = update.effective_chat
    if chat is None:
        return
    store = context.services.subscriptions
    queries = await store.subscriptions(chat.id)
    settings = await store.settings(chat.id)
    await send(
        update,
        context,
        fmt.render_subscriptions(
            queries, timezone=settings.timezone, digest_minute=settings.digest_minute
        ),
    )


async def digest(update: Update, context: NewsContext) -> None:
    """/digest HH:MM | off: one digest a day at that local time, or pushes again."""
    chat = await _configurable_chat(update, context)
    if chat is None:
        return
    args = command_args(context)
    store = context.services.subscriptions
    if args.lower() == "off":
        await store.set_digest(chat.id, None)
        await send(update, context, fmt.hint("Digest off: new stories arrive as they are stored."))
        return
    minute = delivery.parse_clock(args)
    if minute is None:
        await send(
            update, context, fmt.hint("Usage: /digest HH:MM or /digest off, e.g. /digest 08:00")
        )
        return
    settings = await delivery.set_digest(store, chat.id, minute, datetime.now(UTC))
    text = f"Daily digest at {fmt.clock_time(minute)} ({settings.timezone})."
    if settings.timezone == "UTC":
        text += " Set your time zone with /timezone, e.g. /timezone Europe/Berlin."
    if not await store.subscriptions(chat.id):
        text += " Nothing is subscribed yet: /subscribe [words]."
    await send(update, context, fmt.hint(text))


async def timezone(update: Update, context: NewsContext) -> None:
    """/timezone <zone>: the time zone for /digest, e.g. Europe/Berlin."""
    chat = await _configurable_chat(update, context)
    if chat is None:
        return
    args = command_args(context)
    store = context.services.subscriptions
    if not args:
        current = (await store.settings(chat.id)).timezone
        await send(
            update, context, fmt.hint(f"Time zone: {current}. Change it: /timezone Europe/Berlin")
        )
        return
    name = delivery.find_timezone(args)
    if name is None:
        await send(
            update,
            context,
            fmt.hint(
                f"Unknown time zone “{fmt.shorten(args, 60)}”. Try e.g. Europe/Berlin or UTC."
            ),
        )
        return
    await store.set_timezone(chat.id, name)
    await send(update, context, fmt.hint(f"Time zone set to {name}."))


async def post(update: Update, context: NewsContext) -> None:
    """/post <id> <@channel>: post a story to a channel (admins only)."""
    if not _is_bot_admin(update, context):
        await send(update, context, fmt.hint("Only admins can do that."))
        return
    parts = command_args(context).split()
    story_id = parse_id(parts[0]) if len(parts) == 2 else None
    if story_id is None or not _CHANNEL.fullmatch(parts[1]):
        await send(update, context, fmt.hint("Usage: /post <id> <@channel>, e.g. /post 12 @mynews"))
        return
    channel = parts[1]
    story = await context.services.store.get(story_id)
    if story is None:
        await send(update, context, fmt.hint(f"No story #{story_id}. Try /latest for ids."))
        return
    target: int | str = int(channel) if channel.startswith("-") else channel
    reply = fmt.render_channel_post(story)
    try:
        for chunk in reply.chunks:
            await context.bot.send_message(
                chat_id=target,
                text=chunk,
                parse_mode=ParseMode.HTML,
                link_preview_options=reply.link_preview,
            )
    except Forbidden:
        text = (
            f"I can't post in {channel}: add me to it as an admin allowed to post messages, "
            "then try again."
        )
    except BadRequest as exc:
        if "not found" in exc.message.lower():
            text = f"I can't find {channel}. Check the name, and add me to it as an admin."
        else:
            text = f"Telegram refused the post to {channel}: {exc.message}"
    else:
        text = f"Posted #{story_id} to {channel}."
    await send(update, context, fmt.hint(text))


async def inline_query(update: Update, context: NewsContext) -> None:
    """@bot words: matching stories to share in any chat; no words: the latest ones."""
    query = update.inline_query
    if query is None:
        return
    words = query.query.strip()
    store = context.services.store
    if not words:
        stories = await store.latest(fmt.INLINE_RESULTS)
    else:
        try:
            stories = [hit.story for hit in await store.search(words, limit=fmt.INLINE_RESULTS)]
        except QueryError:
            stories = []
    await query.answer(
        fmt.inline_results(stories), cache_time=INLINE_CACHE_SECONDS, is_personal=False
    )

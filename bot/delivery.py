"""Getting stories to subscribers: pushes as stories arrive, daily digests, gone chats.

`install` (called from post_init) schedules two JobQueue jobs. `push_job` runs every
PUSH_INTERVAL and sends what was stored since the last push, so stories seeded by the CLI
from another process reach subscribers too; Services.after_ingest also schedules it at once
for stories the bot stored itself. `digest_job` runs every minute and sends the digests that
are due. What was sent is marked in the database before sending, so a digest or push goes
out at most once even if runs overlap or the bot restarts midway.

Sends run on SEND_WORKERS coroutines so that AIORateLimiter, not round trips, sets the pace
(30 messages a second overall, 20 a minute per group). A chat that blocked the bot, or no
longer exists, is unsubscribed instead of retried; a group upgraded to a supergroup keeps its
subscriptions under its new id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from telegram import Bot
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, TelegramError

from bot import formatting as fmt
from bot.services import NewsApp, NewsContext, Services
from storage.backend import StoryRepository
from storage.models import Story
from storage.subscriptions import ChatSettings, SubscriptionRepository

logger = logging.getLogger(__name__)

PUSH_INTERVAL: Final = timedelta(seconds=60)
DIGEST_INTERVAL: Final = timedelta(seconds=60)
PUSH_JOB: Final = "reach-push"
PUSH_NOW_JOB: Final = "reach-push-now"
DIGEST_JOB: Final = "reach-digest"
# Enough concurrent sends to keep the rate limiter's 30/s busy over a slow link; more would
# only queue inside the limiter.
SEND_WORKERS: Final = 32
# Ids fetched per subscription and run: enough to list PUSH_MAX and count "and N more".
MATCH_LIMIT: Final = 100


@dataclass(slots=True)
class DeliveryReport:
    """What one push or digest run did."""

    chats: int = 0  # chats something was meant for
    sent: int = 0  # chats that got it
    removed: list[int] = field(default_factory=list)  # unsubscribed: blocked the bot, or gone
    failed: list[int] = field(default_factory=list)  # not delivered this time

    def merge(self, other: DeliveryReport) -> None:
        self.chats += other.chats
        self.sent += other.sent
        self.removed.extend(other.removed)
        self.failed.extend(other.failed)


# --- time zones -----------------------------------------------------------------------


@lru_cache(maxsize=1)
def _zone_names() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def find_timezone(name: str) -> str | None:
    """The canonical IANA name for a zone typed in any case ('europe/berlin'), or None."""
    name = name.strip()
    if not name:
        return None
    if name.upper() in ("UTC", "GMT", "Z"):
        return "UTC"
    return _zone_names().get(name.lower())


def zone(name: str) -> ZoneInfo:
    """The zone for a stored name; UTC if the system no longer knows it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("unknown time zone %r; using UTC", name)
        return ZoneInfo("UTC")


def parse_clock(text: str) -> int | None:
    """'HH:MM' (or 'H:MM', 'HH.MM') as minutes after midnight, None when it is not one."""
    hours, sep, minutes = text.strip().replace(".", ":").partition(":")
    if not sep or not hours.isdecimal() or not minutes.isdecimal() or len(minutes) != 2:
        return None
    hour, minute = int(hours), int(minutes)
    if not (0 <= hour < 24 and 0 <= minute < 60):
        return None
    return hour * 60 + minute


def minute_of_day(moment: datetime) -> int:
    return moment.hour * 60 + moment.minute


async def set_digest(
    subscriptions: SubscriptionRepository, chat_id: int, minute: int, now: datetime
) -> ChatSettings:
    """Set a chat's daily digest time; if that time has passed today, the first is tomorrow."""
    settings = await subscriptions.settings(chat_id)
    local = now.astimezone(zone(settings.timezone))
    passed = minute_of_day(local) >= minute
    await subscriptions.set_digest(
        chat_id, minute, done_for=local.date().isoformat() if passed else None
    )
    return await subscriptions.settings(chat_id)


# --- matching and rendering -----------------------------------------------------------


async def _match(
    subscriptions: SubscriptionRepository, wanted: Iterable[tuple[int, str, int, int]]
) -> dict[int, list[int]]:
    """chat id -> ids of new matching stories, newest first, from (chat, query, after, upto).

    Each distinct (query, range) is asked once, however many chats share it.
    """
    cache: dict[tuple[str, int, int], list[int]] = {}
    found: dict[int, set[int]] = {}
    for chat_id, query, after, upto in wanted:
        key = (query, after, upto)
        if key not in cache:
            cache[key] = await subscriptions.matching(query, after, upto, MATCH_LIMIT)
        found.setdefault(chat_id, set()).update(cache[key])
    return {chat_id: sorted(ids, reverse=True) for chat_id, ids in found.items() if ids}


async def _stories(store: StoryRepository, ids: Iterable[int]) -> dict[int, Story]:
    loaded: dict[int, Story] = {}
    for story_id in sorted(set(ids)):
        story = await store.get(story_id)
        if story is not None:  # deleted since it was stored
            loaded[story_id] = story
    return loaded


def _lists(
    matches: Mapping[int, list[int]], stories: Mapping[int, Story]
) -> dict[int, tuple[list[Story], int]]:
    """chat id -> (the stories to list, how many more matched)."""
    lists: dict[int, tuple[list[Story], int]] = {}
    for chat_id, ids in matches.items():
        present = [stories[story_id] for story_id in ids if story_id in stories]
        if present:
            lists[chat_id] = (present[: fmt.PUSH_MAX], max(len(present) - fmt.PUSH_MAX, 0))
    return lists


def _wanted_ids(matches: Mapping[int, list[int]]) -> set[int]:
    # Only the ones that will be listed; a few spare in case some were deleted meanwhile.
    return {story_id for ids in matches.values() for story_id in ids[: fmt.PUSH_MAX + 5]}


# --- sending --------------------------------------------------------------------------


async def _send_reply(bot: Bot, chat_id: int, reply: fmt.Reply) -> None:
    last = len(reply.chunks) - 1
    for index, chunk in enumerate(reply.chunks):
        await bot.send_message(
            chat_id=chat_id,
            text=chunk,
            parse_mode=ParseMode.HTML,
            link_preview_options=reply.link_preview,
            reply_markup=reply.keyboard if index == last else None,
        )


async def _send_one(
    bot: Bot,
    subscriptions: SubscriptionRepository,
    chat_id: int,
    reply: fmt.Reply,
    report: DeliveryReport,
) -> None:
    target = chat_id
    # Twice at most: once more under the new id when a group became a supergroup.
    for _ in range(2):
        try:
            await _send_reply(bot, target, reply)
        except ChatMigrated as exc:
            logger.info("chat %s is now %s; subscriptions moved", target, exc.new_chat_id)
            await subscriptions.move_chat(target, exc.new_chat_id)
            target = exc.new_chat_id
            continue
        except Forbidden as exc:
            # Blocked by the user, kicked from the group, account deleted: retrying never helps.
            logger.info("chat %s refused a message (%s); unsubscribed", target, exc.message)
            await subscriptions.forget_chat(target)
            report.removed.append(target)
        except BadRequest as exc:
            if "chat not found" in exc.message.lower():
                logger.info("chat %s no longer exists; unsubscribed", target)
                await subscriptions.forget_chat(target)
                report.removed.append(target)
            else:
                logger.warning("message to chat %s refused: %s", target, exc.message)
                report.failed.append(target)
        except TelegramError as exc:
            # RetryAfter past the rate limiter's retries, network trouble: skip this time.
            logger.warning("message to chat %s failed: %s", target, exc)
            report.failed.append(target)
        else:
            report.sent += 1
        return
    report.failed.append(target)


async def deliver(
    bot: Bot, subscriptions: SubscriptionRepository, replies: Mapping[int, fmt.Reply]
) -> DeliveryReport:
    """Send each chat its reply, SEND_WORKERS at a time; gone chats are unsubscribed."""
    report = DeliveryReport(chats=len(replies))
    pending = iter(replies.items())

    async def worker() -> None:
        # One shared iterator: next() has no await inside, so no two workers take one chat.
        for chat_id, reply in pending:
            try:
                await _send_one(bot, subscriptions, chat_id, reply, report)
            except Exception:
                # A store error for one chat must not stop the other thousands.
                logger.exception("delivery to chat %s failed", chat_id)
                report.failed.append(chat_id)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(SEND_WORKERS, len(replies))):
            group.create_task(worker())
    return report


async def push_new(bot: Bot, services: Services) -> DeliveryReport:
    """Push the stories stored since the last push to the chats they match."""
    subscriptions = services.subscriptions
    claim = await subscriptions.claim_push()
    if claim is None:
        return DeliveryReport()
    targets = await subscriptions.push_subscriptions()
    matches = await _match(
        subscriptions,
        ((chat_id, query, claim.after_id, claim.upto_id) for chat_id, query in targets),
    )
    stories = await _stories(services.store, _wanted_ids(matches))
    replies = {
        chat_id: fmt.render_new_stories(listed, more=more)
        for chat_id, (listed, more) in _lists(matches, stories).items()
    }
    report = await deliver(bot, subscriptions, replies)
    logger.info(
        "pushed stories %s-%s: %s of %s chats, %s unsubscribed",
        claim.after_id + 1,
        claim.upto_id,
        report.sent,
        report.chats,
        len(report.removed),
    )
    return report


async def send_digests(bot: Bot, services: Services, now: datetime) -> DeliveryReport:
    """Send every digest due at `now` (an aware datetime) that was not sent today.

    A chat with nothing new since its last digest gets no message that day.
    """
    subscriptions = services.subscriptions
    replies: dict[int, fmt.Reply] = {}
    for name in await subscriptions.digest_timezones():
        local = now.astimezone(zone(name))
        claims = await subscriptions.claim_digests(
            name, local.date().isoformat(), minute_of_day(local)
        )
        if not claims:
            continue
        queries = await subscriptions.queries_of(claim.chat_id for claim in claims)
        matches = await _match(
            subscriptions,
            (
                (claim.chat_id, query, claim.after_id, claim.upto_id)
                for claim in claims
                for query in queries.get(claim.chat_id, [])
            ),
        )
        stories = await _stories(services.store, _wanted_ids(matches))
        for chat_id, (listed, more) in _lists(matches, stories).items():
            replies[chat_id] = fmt.render_digest(listed, day=local.date(), more=more)
    if not replies:
        return DeliveryReport()
    report = await deliver(bot, subscriptions, replies)
    logger.info(
        "digests: %s of %s chats, %s unsubscribed", report.sent, report.chats, len(report.removed)
    )
    return report


# --- jobs -----------------------------------------------------------------------------


async def push_job(context: NewsContext) -> None:
    """JobQueue callback: push what was stored since the last push."""
    await push_new(context.bot, context.services)


async def digest_job(context: NewsContext) -> None:
    """JobQueue callback: send the digests due now."""
    await send_digests(context.bot, context.services, datetime.now(UTC))


async def install(app: NewsApp) -> None:
    """Schedule the push and digest jobs and hook ingest; call from post_init.

    Pushing starts after the newest story stored now: a first start (or an upgrade) does
    not send the whole back catalogue to anyone.
    """
    services = app.bot_data.services
    await services.subscriptions.start_push_mark()
    jobs = app.job_queue
    if jobs is None:
        raise RuntimeError("subscriptions need PTB's JobQueue: python-telegram-bot[job-queue]")
    jobs.run_repeating(push_job, interval=PUSH_INTERVAL, first=PUSH_INTERVAL, name=PUSH_JOB)
    jobs.run_repeating(digest_job, interval=DIGEST_INTERVAL, first=DIGEST_INTERVAL, name=DIGEST_JOB)

    async def push_soon(story_ids: Sequence[int]) -> None:
        # A job, not an await: the admin's "Stored" reply must not wait for 10,000 sends.
        jobs.run_once(push_job, when=0, name=PUSH_NOW_JOB)

    services.ingest_listeners.append(push_soon)

"""What every update passes before any handler: duplicates dropped, floods throttled.

Registered by bot.app in handler group -1, so it runs first for each update. Both checks
are synchronous (no await before the decision): with concurrent updates, two updates of
one user cannot both slip through the same token.
"""

from __future__ import annotations

import enum
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop

from bot import formatting as fmt
from bot.services import NewsContext

logger = logging.getLogger(__name__)

FLOOD_NOTICE: Final = "You are sending messages too fast; I will answer again in a little while."


class Verdict(enum.Enum):
    ALLOW = "allow"
    NOTIFY = "notify"  # over the limit, and the sender has not been told yet
    DROP = "drop"


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float
    notified: bool = False


class FloodLimiter:
    """A token bucket per sender, for at most `max_senders` senders (least recent evicted).

    `burst` updates pass at once, then one every `1 / per_second` seconds. A sender over the
    limit is told once; the notice is sent again only after the bucket has filled up, i.e.
    after the sender calmed down, so a flood of any length earns exactly one notice.
    """

    def __init__(
        self,
        *,
        burst: int = 10,
        per_second: float = 0.5,
        max_senders: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or per_second <= 0 or max_senders < 1:
            raise ValueError("burst, per_second and max_senders must be positive")
        self.burst = burst
        self.per_second = per_second
        self.max_senders = max_senders
        self._clock = clock
        self._buckets: OrderedDict[int, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        """How many senders are tracked (never more than max_senders)."""
        return len(self._buckets)

    def check(self, sender: int) -> Verdict:
        """Take a token for one update from `sender`."""
        now = self._clock()
        bucket = self._buckets.pop(sender, None)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
        else:
            elapsed = max(now - bucket.stamp, 0.0)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.per_second)
            bucket.stamp = now
            if bucket.tokens >= self.burst:
                bucket.notified = False
        # Re-inserted at the end: the OrderedDict is kept least recently seen first.
        self._buckets[sender] = bucket
        while len(self._buckets) > self.max_senders:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return Verdict.ALLOW
        if bucket.notified:
            return Verdict.DROP
        bucket.notified = True
        return Verdict.NOTIFY


class SeenUpdates:
    """The last `size` update ids, to answer an update delivered twice only once."""

    def __init__(self, size: int = 10_000) -> None:
        self._order: deque[int] = deque()
        self._ids: set[int] = set()
        self._size = size

    def __len__(self) -> int:
        return len(self._ids)

    def first_time(self, update_id: int) -> bool:
        """True the first time an id is seen (within the last `size` ids)."""
        if update_id in self._ids:
            return False
        self._ids.add(update_id)
        self._order.append(update_id)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())
        return True


def _sender(update: Update) -> int | None:
    """Whom an update counts against: the user, else the chat (channel posts)."""
    if update.effective_user is not None:
        return update.effective_user.id
    if update.effective_chat is not None:
        return update.effective_chat.id
    return None


class UpdateGuard:
    """The group -1 handler: drops repeated updates and throttles floods from non-admins.

    `throttle=False` lets floods through (benchmarks that replay thousands of updates).
    """

    def __init__(
        self,
        *,
        flood: FloodLimiter | None = None,
        throttle: bool = True,
        seen: SeenUpdates | None = None,
    ) -> None:
        self.flood = flood if flood is not None else FloodLimiter()
        self.throttle = throttle
        self.seen = seen if seen is not None else SeenUpdates()

    async def __call__(self, update: Update, context: NewsContext) -> None:
        """Let the update through to the handlers, or stop it here."""
        if not self.seen.first_time(update.update_id):
            logger.info("update %s delivered again; answered already", update.update_id)
            raise ApplicationHandlerStop
        sender = _sender(update)
        if not self.throttle or sender is None:
            return
        user = update.effective_user
        # Admins are never throttled: a burst of forwarded stories must all be stored.
        if user is not None and context.services.is_admin(user.id):
            return
        verdict = self.flood.check(sender)
        if verdict is Verdict.ALLOW:
            return
        if verdict is Verdict.NOTIFY:
            logger.warning("sender %s is flooding; dropping updates for a while", sender)
            await _notify(update, context)
        raise ApplicationHandlerStop


async def _notify(update: Update, context: NewsContext) -> None:
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(FLOOD_NOTICE)
        elif update.effective_chat is not None and update.effective_message is not None:
            await context.bot.send_message(
                update.effective_chat.id,
                fmt.escape(FLOOD_NOTICE),
                parse_mode=ParseMode.HTML,
                link_preview_options=fmt.PREVIEW_OFF,
            )
    except TelegramError:
        # Telegram itself may be what refuses; the drop still stands.
        logger.warning("could not send the flood notice for update %s", update.update_id)

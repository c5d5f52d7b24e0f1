"""Background jobs of the bot that are not deliveries: keeping related lists current.

Ingest ranks each new story's related list once and offers the story to its best hits'
lists; stories arriving later about the same event are best found by ranking again. The
refresh job re-ranks the lists of recently ingested stories, least recently ranked first,
a bounded number per run, and computes features for stories stored before they existed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from bot.services import NewsApp, NewsContext
from ingest.pipeline import RelatedIndexer
from storage.backend import StoryRepository

logger = logging.getLogger(__name__)

REFRESH_JOB: Final = "refresh-related"
# A run claims the job for most of a period: the workers' schedules drift apart, and the
# next run (of whichever worker) must still win once the period is over.
LEASE_SHARE: Final = 0.9


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RefreshResult:
    backfilled: int  # stories whose features were computed
    refreshed: int  # stories whose related list was ranked again


@dataclass(frozen=True, slots=True)
class RelatedRefresh:
    """The refresh job: a PTB job callback (`await job(context)`), or `run` it directly.

    Each run first computes features for up to `backfill` stories that lack them (stories
    stored before migration 2, or by an older features version), then re-ranks up to
    `per_run` stories ingested within `window` whose list is older than `every`.
    """

    every: timedelta = timedelta(minutes=10)
    window: timedelta = timedelta(days=3)
    per_run: int = 200
    backfill: int = 500
    first: timedelta = timedelta(minutes=1)
    clock: Callable[[], datetime] = field(default=_utc_now)

    async def __call__(self, context: NewsContext) -> None:
        """The JobQueue callback."""
        services = context.services
        # Every worker schedules this job; the lease lets one of them run it each period.
        if not await services.store.claim_run(REFRESH_JOB, self.every * LEASE_SHARE):
            return
        result = await self.run(services.store, services.related)
        if result.backfilled or result.refreshed:
            logger.info(
                "related lists: features computed for %d stories, %d lists refreshed",
                result.backfilled,
                result.refreshed,
            )

    async def run(self, store: StoryRepository, indexer: RelatedIndexer) -> RefreshResult:
        """One refresh round at `clock()`."""
        now = self.clock()
        backfilled = await indexer.backfill(self.backfill) if self.backfill > 0 else 0
        ids = await store.recent_ids(now - self.window, self.per_run, stale_before=now - self.every)
        refreshed = await indexer.refresh(ids) if ids else {}
        return RefreshResult(backfilled, len(refreshed))


def schedule(app: NewsApp, job: RelatedRefresh | None = None) -> None:
    """Run the refresh job every `job.every` on the app's JobQueue."""
    job = job or RelatedRefresh()
    queue = app.job_queue
    if queue is None:
        raise RuntimeError("related refresh needs PTB's JobQueue: python-telegram-bot[job-queue]")
    queue.run_repeating(job, interval=job.every, first=job.first, name=REFRESH_JOB)

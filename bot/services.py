"""What handlers reach through their context: settings, the store, the ingestor.

Handlers stay thin by making one call here; the few reads that combine the store with
summarising live in this module so no handler holds SQL or NLP.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from telegram.ext import Application, CallbackContext, ExtBot, JobQueue

from bot.ingestor import make_ingestor
from bot.settings import Settings
from ingest.pipeline import RELATED_LIMIT as STORED_RELATED
from ingest.pipeline import Ingestor, RelatedIndexer
from storage.backend import (
    StoryRepository,
    is_postgres_url,
    open_store,
    open_subscriptions,
    sqlite_path,
)
from storage.models import Link, SearchHit, StoreStats, Story
from storage.subscriptions import SubscriptionRepository
from summarize.similarity import salient_terms
from summarize.summarizers import summarize

logger = logging.getLogger(__name__)

# How many related stories and links /related shows; more is noise on a phone screen.
RELATED_LIMIT = 5
# /story shows at least this many sentences: it is the "tell me more" view.
STORY_SENTENCES = 6
# How many /story summaries one worker keeps (a few KB each).
LONG_SUMMARY_CACHE = 2048


@dataclass(frozen=True, slots=True)
class LatestPage:
    stories: list[Story]
    has_newer: bool
    has_older: bool


@dataclass(frozen=True, slots=True)
class SearchPage:
    query: str
    hits: list[SearchHit]
    offset: int
    total: int


@dataclass(frozen=True, slots=True)
class Related:
    story: Story
    hits: list[SearchHit]


@dataclass(frozen=True, slots=True)
class Stats:
    store: StoreStats
    uptime: timedelta


IngestListener = Callable[[Sequence[int]], Awaitable[None]]


@dataclass(slots=True)
class Services:
    """Everything a handler needs, made once in post_init."""

    settings: Settings
    store: StoryRepository
    ingestor: Ingestor
    subscriptions: SubscriptionRepository
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Called with the ids of newly stored stories (bot.delivery pushes them to subscribers).
    ingest_listeners: list[IngestListener] = field(default_factory=list)
    # Computes related lists the ingest did not (bot.jobs refreshes them, /related falls back).
    related: RelatedIndexer = field(init=False)
    _long_summaries: OrderedDict[tuple[int, str], tuple[str, ...]] = field(
        init=False, default_factory=OrderedDict
    )

    def __post_init__(self) -> None:
        self.related = RelatedIndexer(self.store, lean=True)

    @classmethod
    async def open(cls, settings: Settings) -> Services:
        """Open the store and build the ingestor over it."""
        url = settings.store_url
        if not is_postgres_url(url):
            sqlite_path(url).parent.mkdir(parents=True, exist_ok=True)
        store = await open_store(url)
        ingestor = make_ingestor(store, settings)
        try:
            subscriptions = await open_subscriptions(url)
        except BaseException:
            await store.close()
            raise
        return cls(settings=settings, store=store, ingestor=ingestor, subscriptions=subscriptions)

    async def close(self) -> None:
        await self.subscriptions.close()
        await self.store.close()

    async def after_ingest(self, story_ids: Sequence[int]) -> None:
        """Tell the listeners (subscription delivery) that these stories were just stored."""
        if not story_ids:
            return
        for listener in self.ingest_listeners:
            await listener(story_ids)

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.settings.admin_ids

    async def latest_page(
        self, limit: int, *, older_than: int | None = None, newer_than: int | None = None
    ) -> LatestPage:
        """One page of newest-first stories, with whether more exist either way.

        UnknownStoryError when the cursor story was deleted meanwhile.
        """
        # One extra row tells whether the direction of travel has more.
        rows = await self.store.latest(limit + 1, older_than=older_than, newer_than=newer_than)
        if newer_than is not None:
            # The store takes the rows nearest the cursor, newest first: the extra one is the
            # farthest from the cursor, at the front.
            more = len(rows) > limit
            stories = rows[-limit:] if more else rows
            return LatestPage(stories, has_newer=more, has_older=True)
        more = len(rows) > limit
        return LatestPage(rows[:limit], has_newer=older_than is not None, has_older=more)

    async def search_page(self, query: str, *, limit: int, offset: int) -> SearchPage:
        """One page of full-text hits, best first; QueryError for unusable queries."""
        hits = await self.store.search(query, limit=limit, offset=offset)
        total = await self.store.count_search(query)
        return SearchPage(query, hits, offset, max(total, offset + len(hits)))

    async def related_to_story(self, story_id: int) -> Related | None:
        """A story's "Similar News" links, then its stored related list; None: unknown id.

        Links that point at a stored story (same URL or same title) show as that story,
        once, and that story is left out of the related list. A story whose list was never
        computed (stored by older code, say) is ranked now and the list kept.
        """
        story = await self.store.get(story_id)
        if story is None:
            return None
        entries = await self.store.related_of(story.id, STORED_RELATED)
        if not entries and await self.store.related_computed_at(story.id) is None:
            await self.related.refresh([story.id])
            entries = await self.store.related_of(story.id, STORED_RELATED)
        links, linked = await self._resolve_links(story)
        hits: list[SearchHit] = []
        for entry in entries:
            if entry.story.id in linked or linked.intersection(entry.copies):
                continue
            shown = entry.story
            if len(entry.outlets) > 1:
                # Other outlets' copies are folded into one entry; its byline lists them.
                shown = replace(shown, source=", ".join(entry.outlets))
            hits.append(SearchHit(shown, entry.score))
            if len(hits) == RELATED_LIMIT:
                break
        return Related(replace(story, links=links), hits)

    async def _resolve_links(self, story: Story) -> tuple[tuple[Link, ...], set[int]]:
        """The story's links, those naming a stored story shown as it (each once)."""
        if not story.links:
            return (), set()
        by_url, by_title = await self.store.match_links(
            [link.url for link in story.links if link.url],
            [link.title for link in story.links],
        )

        def stored_id(link: Link) -> int | None:
            url = (link.url or "").strip()
            title = " ".join(link.title.split()).casefold()
            return link.story_id or by_url.get(url) or by_title.get(title)

        found = [stored_id(link) for link in story.links]
        stories = await self.store.get_many(i for i in found if i is not None)
        links: list[Link] = []
        linked: set[int] = set()
        for link, target_id in zip(story.links, found, strict=True):
            target = stories.get(target_id) if target_id is not None else None
            if target is None:
                links.append(replace(link, story_id=None))
            elif target.id != story.id and target.id not in linked:
                linked.add(target.id)
                links.append(
                    Link(
                        title=target.title,
                        snippet=link.snippet,
                        url=target.url or link.url,
                        outlet=target.source or link.outlet,
                        story_id=target.id,
                    )
                )
        return tuple(links), linked

    async def related_to_words(self, words: str) -> list[SearchHit]:
        """Stories matching any of the words, best first."""
        terms = await asyncio.to_thread(salient_terms, words, "")
        return await self.store.search_any(terms or words.split(), RELATED_LIMIT)

    async def long_summary(self, story: Story) -> list[str]:
        """A longer summary than the stored one, computed off the event loop.

        Recently opened stories' summaries are kept (a story people open, many open): the
        key includes the fingerprint, so a story replaced under the same id is summarised
        anew. Only a cache: another worker computes its own.
        """
        key = (story.id, story.fingerprint)
        cached = self._long_summaries.get(key)
        if cached is not None:
            self._long_summaries.move_to_end(key)
            return list(cached)
        sentences = max(STORY_SENTENCES, self.settings.summary_sentences * 2)
        try:
            summary = await asyncio.to_thread(
                summarize,
                story.cleaned_text,
                algorithm=self.settings.summary_algorithm,
                sentences=sentences,
                language=story.language,
            )
        except Exception:
            # The stored summary is always a fine answer; a summariser bug must not hide it.
            logger.exception("longer summary of story %s failed", story.id)
            return list(story.summary)
        self._long_summaries[key] = tuple(summary)
        if len(self._long_summaries) > LONG_SUMMARY_CACHE:
            self._long_summaries.popitem(last=False)
        return summary

    async def stats(self) -> Stats:
        return Stats(await self.store.stats(), datetime.now(UTC) - self.started_at)


class BotData:
    """The application's bot_data: the services, set in post_init."""

    __slots__ = ("_services",)

    def __init__(self) -> None:
        self._services: Services | None = None

    @property
    def services(self) -> Services:
        if self._services is None:
            raise RuntimeError("services used before post_init opened them")
        return self._services

    @services.setter
    def services(self, value: Services) -> None:
        self._services = value

    def take(self) -> Services | None:
        """Remove and return the services (for closing them once)."""
        services, self._services = self._services, None
        return services


class NewsContext(CallbackContext[ExtBot[Any], dict[Any, Any], dict[Any, Any], BotData]):
    """Handler context with typed services, as in PTB's examples/contexttypesbot.py."""

    @property
    def services(self) -> Services:
        return self.bot_data.services


NewsApp = Application[
    ExtBot[Any], NewsContext, dict[Any, Any], dict[Any, Any], BotData, JobQueue[NewsContext]
]

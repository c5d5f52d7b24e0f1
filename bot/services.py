"""What handlers reach through their context: settings, the store, the ingestor.

Handlers stay thin by making one call here; the few reads that combine the store with
summarising live in this module so no handler holds SQL or NLP.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from telegram.ext import Application, CallbackContext, ExtBot

from bot.settings import Settings
from ingest.pipeline import Ingestor
from storage.models import SearchHit, StoreStats, Story
from storage.repository import StoryStore
from summarize.similarity import salient_terms
from summarize.summarizers import summarize

logger = logging.getLogger(__name__)

# How many related stories and links /related shows; more is noise on a phone screen.
RELATED_LIMIT = 5
# /story shows at least this many sentences: it is the "tell me more" view.
STORY_SENTENCES = 6


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


@dataclass(slots=True)
class Services:
    """Everything a handler needs, made once in post_init."""

    settings: Settings
    store: StoryStore
    ingestor: Ingestor
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    async def open(cls, settings: Settings) -> Services:
        """Open the store and build the ingestor over it."""
        settings.database_path.parent.mkdir(parents=True, exist_ok=True)
        store = await StoryStore.open(settings.database_path)
        ingestor = Ingestor(
            store,
            algorithm=settings.summary_algorithm,
            sentences=settings.summary_sentences,
            max_chars=settings.summary_max_chars,
            max_story_chars=settings.max_story_chars,
            max_document_bytes=settings.max_document_bytes,
        )
        return cls(settings=settings, store=store, ingestor=ingestor)

    async def close(self) -> None:
        await self.store.close()

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
        """The stored stories most related to one story, or None for an unknown id."""
        story = await self.store.get(story_id)
        if story is None:
            return None
        terms = await asyncio.to_thread(
            salient_terms, story.title, story.cleaned_text, language=story.language
        )
        hits = (
            await self.store.search_any(terms, RELATED_LIMIT, exclude_id=story.id) if terms else []
        )
        return Related(story, hits)

    async def related_to_words(self, words: str) -> list[SearchHit]:
        """Stories matching any of the words, best first."""
        terms = await asyncio.to_thread(salient_terms, words, "")
        return await self.store.search_any(terms or words.split(), RELATED_LIMIT)

    async def long_summary(self, story: Story) -> list[str]:
        """A longer summary than the stored one, computed off the event loop."""
        sentences = max(STORY_SENTENCES, self.settings.summary_sentences * 2)
        try:
            return await asyncio.to_thread(
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


NewsApp = Application[ExtBot[Any], NewsContext, dict[Any, Any], dict[Any, Any], BotData, None]

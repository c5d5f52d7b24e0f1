"""The one ingest pipeline (parse, clean, summarise, dedup, store) for the CLI and the bot."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from functools import partial
from itertools import islice

from ingest.fetch import check_url, fetch_url
from ingest.prepare import SummaryOptions, prepare_or_reason
from ingest.report import Duplicate, IngestError, IngestReport, Rejected
from storage.models import NewStory
from storage.repository import StoryStore
from summarize.formats import parse_document
from summarize.parsed import ParsedStory

logger = logging.getLogger(__name__)

# Below this many stories a process pool costs more to start than it saves.
POOL_THRESHOLD = 64
BATCH_SIZE = 256

ProgressCallback = Callable[[int], None]


def _batches(
    items: Sequence[tuple[str, ParsedStory]], size: int
) -> Iterable[list[tuple[str, ParsedStory]]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class Ingestor:
    """Stores stories from any input the parsers understand."""

    def __init__(
        self,
        store: StoryStore,
        *,
        algorithm: str,
        sentences: int,
        max_chars: int | None,
        max_story_chars: int,
        max_document_bytes: int = 5_000_000,
        workers: int | None = None,
    ) -> None:
        self._store = store
        self._options = SummaryOptions(algorithm, sentences, max_chars, max_story_chars)
        self._max_document_bytes = max_document_bytes
        self._workers = workers

    async def ingest_text(self, text: str, *, origin: str = "message") -> IngestReport:
        """Ingest a story pasted as text (a page, plain text, JSON...)."""
        return await self.ingest_bytes(text.encode("utf-8"), filename=None, origin=origin)

    async def ingest_bytes(
        self,
        data: bytes,
        *,
        filename: str | None = None,
        origin: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """Ingest a document of any supported format; one bad record never stops the rest."""
        where = origin or filename or "input"
        if len(data) > self._max_document_bytes:
            return IngestReport(
                rejected=[
                    Rejected(
                        where, f"{len(data):,} bytes; the limit is {self._max_document_bytes:,}"
                    )
                ]
            )
        result = await asyncio.to_thread(parse_document, data, filename=filename)
        report = IngestReport(
            rejected=[Rejected(f"{where} {p.location}", p.reason) for p in result.problems]
        )
        labelled = [(f"{where} story {n}", story) for n, story in enumerate(result.stories, 1)]
        report.merge(await self.ingest_parsed(labelled, progress=progress))
        return report

    async def ingest_url(self, url: str) -> IngestReport:
        """Fetch a page and ingest it; IngestError when it cannot be fetched."""
        url = check_url(url)
        data, final_url = await asyncio.to_thread(
            fetch_url, url, max_bytes=self._max_document_bytes
        )
        result = await asyncio.to_thread(parse_document, data, filename=final_url)
        report = IngestReport(rejected=[Rejected(url, p.reason) for p in result.problems])
        stories = [(url, replace(story, url=story.url or final_url)) for story in result.stories]
        if not stories and not report.rejected:
            raise IngestError(f"found no story at {url}")
        report.merge(await self.ingest_parsed(stories))
        return report

    async def ingest_parsed(
        self,
        stories: Sequence[tuple[str, ParsedStory]],
        *,
        progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """Summarise and store labelled stories in batches, each batch one transaction."""
        report = IngestReport()
        use_pool = len(stories) >= POOL_THRESHOLD and (self._workers or 2) > 1
        with self._executor(use_pool) as executor:
            for batch in _batches(stories, BATCH_SIZE):
                await self._ingest_batch(batch, executor, report)
                if progress is not None:
                    progress(len(batch))
        return report

    def _executor(self, use_pool: bool) -> AbstractContextManager[Executor | None]:
        if not use_pool:
            return nullcontext()
        # spawn: the parent runs an event loop and aiosqlite threads, which fork copies unsafely.
        return ProcessPoolExecutor(
            max_workers=self._workers, mp_context=multiprocessing.get_context("spawn")
        )

    async def _ingest_batch(
        self,
        batch: list[tuple[str, ParsedStory]],
        executor: Executor | None,
        report: IngestReport,
    ) -> None:
        pending: list[tuple[str, ParsedStory]] = []
        for location, story in batch:
            existing = await self._store.get_by_url(story.url) if story.url else None
            if existing is not None:
                report.duplicates.append(Duplicate(location, existing.id))
            else:
                pending.append((location, story))
        work = partial(prepare_or_reason, options=self._options)
        loop = asyncio.get_running_loop()
        if executor is None:
            prepared = await asyncio.to_thread(lambda: [work(story) for _, story in pending])
        else:
            prepared = await asyncio.gather(
                *(loop.run_in_executor(executor, work, story) for _, story in pending)
            )
        ready: list[tuple[str, NewStory]] = []
        for (location, _), outcome in zip(pending, prepared, strict=True):
            if isinstance(outcome, str):
                report.rejected.append(Rejected(location, outcome))
            else:
                ready.append((location, outcome))
        results = await self._store.add_many([story for _, story in ready])
        for (location, _), result in zip(ready, results, strict=True):
            if result.created:
                report.added.append(result.story_id)
            else:
                report.duplicates.append(Duplicate(location, result.story_id))

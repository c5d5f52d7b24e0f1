"""Builders shared by the storage tests, and the child process the crash test kills.

Run as ``python -m tests.storage_builders DB_PATH BATCH_SIZE`` it adds batches forever and
prints one ``committed <n>`` line after each batch's transaction has committed.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from storage import Link, NewStory, StoryStore

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    """A clock the tests move by hand, so ingest times are known exactly."""

    now: datetime = T0
    step: timedelta = field(default=timedelta(seconds=1))

    def __call__(self) -> datetime:
        current = self.now
        self.now += self.step
        return current


def make_story(n: int, **changes: Any) -> NewStory:
    """A distinct, valid story numbered n; keyword arguments override any field."""
    story = NewStory(
        title=f"Story number {n}",
        body=f"<p>Body of story {n}.</p>",
        cleaned_text=f"Body of story {n}. It mentions item{n} once.",
        summary=(f"First sentence of {n}.", f"Second sentence of {n}."),
        algorithm="lead",
        fingerprint=f"fp-{n}",
        url=f"https://news.example/{n}",
        source="example",
        language="english",
        published_at=None,
        links=(
            Link(
                title=f"Related A to {n}", snippet="snippet a", url=f"https://other.example/{n}/a"
            ),
            Link(title=f"Related B to {n}", outlet="Other Outlet"),
        ),
    )
    return replace(story, **changes)


@contextmanager
def raw_connection(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain autocommit sqlite3 connection for looking behind the store's back."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


async def open_store(path: Path, clock: FakeClock | None = None) -> StoryStore:
    """Open a store at path with a fake clock."""
    return await StoryStore.open(path, clock=clock or FakeClock())


async def _crash_writer(path: Path, batch_size: int) -> None:
    store = await StoryStore.open(path)
    batch = 0
    try:
        while True:
            stories = [make_story(batch * batch_size + i) for i in range(batch_size)]
            await store.add_many(stories)
            batch += 1
            print(f"committed {batch}", flush=True)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(_crash_writer(Path(sys.argv[1]), int(sys.argv[2])))

"""A writer killed with SIGKILL in the middle of add_many leaves a consistent database."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from storage import StoryStore
from tests.storage_builders import raw_connection

ROOT = Path(__file__).resolve().parent.parent
BATCH = 40


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
async def test_sigkill_mid_batch_leaves_a_consistent_database(tmp_path: Path) -> None:
    path = tmp_path / "news.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.storage_builders",
        str(path),
        str(BATCH),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    try:
        line = await child.stdout.readline()
        assert line == b"committed 1\n", (line, await child.stderr.read() if child.stderr else b"")
    finally:
        # The child never stops on its own: it is busy inside the next batch's transaction.
        if child.returncode is None:
            child.kill()
        await child.wait()
    assert child.returncode == -signal.SIGKILL

    with raw_connection(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        conn.execute("INSERT INTO stories_fts (stories_fts) VALUES ('integrity-check')")

    async with await StoryStore.open(path) as store:
        count = await store.count()
        # Whole batches only: at least the one the child confirmed, never part of one.
        assert count >= BATCH
        assert count % BATCH == 0
        stats = await store.stats()
        assert stats.links == 2 * count
        for story in await store.latest(count):
            assert story.summary and len(story.links) == 2
        with raw_connection(path) as conn:
            assert conn.execute("SELECT count(*) FROM stories").fetchone() == (count,)
            assert conn.execute("SELECT count(*) FROM links").fetchone() == (2 * count,)

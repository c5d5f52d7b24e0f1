"""`newsbot seed` killed with SIGKILL halfway: nothing half-stored, and a re-run finishes.

The child is the real CLI (`bot.cli.main(["seed", ...])`) with one addition: after each
committed batch it prints "committed N" on stderr, so the test kills it at a known point
instead of after a guessed delay. 10,000 stories took about ten seconds to seed before
related-story indexing joined the ingest, and that indexing grows faster than linearly
(1,000 stories about 7 s, 2,000 about 25 s with --workers 1), so STORIES is 600: three
batches of 256, 256 and 88, killed after the first commit with most of the input not yet
stored. Algorithm "lead" keeps the summaries cheap.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STORIES = 600
LINKS = 2


def write_stories(path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for n in range(STORIES):
            record = {
                "title": f"Harbour story {n} on pier {n % 97}",
                "text": f"Story {n} happened in Kelby on Monday. Witness {n} described it "
                f"at length. The council will meet about item {n} next week.",
                "url": f"https://news.example/story/{n}",
                "related": [
                    {"title": f"Related {n} {k}", "url": f"https://other.example/{n}/{k}"}
                    for k in range(LINKS)
                ],
            }
            out.write(json.dumps(record) + "\n")


def child_env(db: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "BOT_TOKEN"}
    env.update(
        DATABASE_PATH=str(db),
        SUMMARY_ALGORITHM="lead",
        MAX_DOCUMENT_BYTES=str(50_000_000),
        PYTHONPATH=str(ROOT),
    )
    return env


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
async def test_sigkill_mid_seed_then_rerun_stores_everything_once(tmp_path: Path) -> None:
    stories, db = tmp_path / "stories.jsonl", tmp_path / "news.db"
    write_stories(stories)
    # cwd=tmp_path: no .env of the developer's is read.
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.test_hardening_seed_crash",
        str(stories),
        cwd=tmp_path,
        env=child_env(db),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert child.stderr is not None
    try:
        line = await asyncio.wait_for(child.stderr.readline(), timeout=60)
        assert line.startswith(b"committed "), line + await child.stderr.read()
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()
    assert child.returncode == -signal.SIGKILL

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        (killed_at,) = conn.execute("SELECT count(*) FROM stories").fetchone()
        # Whole stories only: each stored one has its summary and all its links.
        incomplete = conn.execute(
            "SELECT count(*) FROM stories AS s WHERE s.summary IN ('', '[]') "
            "OR (SELECT count(*) FROM links AS l WHERE l.story_id = s.id) != ?",
            (LINKS,),
        ).fetchone()
    assert 0 < killed_at < STORIES, "killed in the middle"
    assert incomplete == (0,)

    rerun = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "seed",
        "--workers",
        "1",
        str(stories),
        cwd=tmp_path,
        env=child_env(db),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(rerun.communicate(), timeout=120)
    assert rerun.returncode == 0, err
    report = re.search(rb"added (\d+), duplicates skipped (\d+), rejected (\d+)", out)
    assert report is not None, out
    added, skipped, rejected = map(int, report.groups())
    assert (added, skipped, rejected) == (STORIES - killed_at, killed_at, 0)

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*), count(DISTINCT url) FROM stories").fetchone() == (
            STORIES,
            STORIES,
        )
        assert conn.execute("SELECT count(*) FROM links").fetchone() == (STORIES * LINKS,)


def _child(argv: list[str]) -> int:
    """The CLI with a line on stderr after each committed batch (run as __main__)."""
    from bot.cli import main
    from storage.models import AddResult, NewStory
    from storage.repository import StoryStore

    original = StoryStore.add_many

    async def add_many(self: StoryStore, stories: list[NewStory]) -> list[AddResult]:
        results = await original(self, stories)
        print(f"committed {len(results)}", file=sys.stderr, flush=True)
        return results

    StoryStore.add_many = add_many  # type: ignore[method-assign,assignment]
    # One process: a killed parent would leave spawned pool workers behind.
    return main(["seed", "--workers", "1", *argv])


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))

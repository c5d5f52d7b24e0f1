"""The console chat: the same bot, fed lines from a pipe, printing plain text."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

from bot.console import html_to_text, run_console
from bot.settings import Settings
from storage.repository import StoryStore
from tests.conftest import NewStoryFactory


def console_settings(db_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_path=db_path,
        summary_algorithm="lead",
    )


async def seed_store(db_path: Path, new_story: NewStoryFactory, count: int) -> list[int]:
    async with await StoryStore.open(db_path) as store:
        return [(await store.add(new_story())).story_id for _ in range(count)]


async def test_latest_then_a_button_number_through_a_pipe(
    db_path: Path, new_story: NewStoryFactory
) -> None:
    ids = await seed_store(db_path, new_story, 2)
    out = io.StringIO()
    status = await run_console(console_settings(db_path), io.StringIO("/latest\n1\n"), out)
    assert status == 0
    text = out.getvalue()
    # Buttons are listed as numbered choices; 1 is "Story #<newest>".
    assert f"[1] Story #{ids[1]}" in text
    assert "> 1" in text
    assert "Engineers replaced cables" in text  # /story's longer summary
    assert "\x1b[" not in text  # no terminal styles when the output is not a terminal
    assert "<b>" not in text


async def test_paging_buttons_update_in_place(db_path: Path, new_story: NewStoryFactory) -> None:
    await seed_store(db_path, new_story, 3)
    out = io.StringIO()
    # /latest 1 shows Story, Related, Older: button 3 pages.
    await run_console(console_settings(db_path), io.StringIO("/latest 1\n3\n9\n"), out)
    assert "(updated)" in out.getvalue()
    assert "no button 9" in out.getvalue()


async def test_admin_commands_work_and_lines_can_be_async(
    db_path: Path,
) -> None:
    async def lines() -> AsyncIterator[str]:
        for line in ("/stats", "/frobnicate", "", "/delete 5"):
            yield line

    out = io.StringIO()
    assert await run_console(console_settings(db_path), lines(), out) == 0
    text = out.getvalue()
    assert "Stories: 0" in text
    assert "Unknown command /frobnicate" in text
    assert "No story #5" in text


async def test_empty_input_exits_cleanly(db_path: Path) -> None:
    assert await run_console(console_settings(db_path), io.StringIO(""), io.StringIO()) == 0


def test_links_keep_their_url_visible() -> None:
    text = html_to_text('<b>#1</b> <a href="https://x.example/">Title &amp; more</a>')
    assert text.plain == "#1 Title & more <https://x.example/>"

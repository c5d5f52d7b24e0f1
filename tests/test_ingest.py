from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.cli import main
from ingest.pipeline import Ingestor
from ingest.prepare import fingerprint
from storage.repository import StoryStore

DATA = Path(__file__).parent / "data"
NOISE = ("Getty Images", "Read more", "Similar News", "Latest News", "Headlines")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[StoryStore]:
    opened = await StoryStore.open(tmp_path / "news.db")
    try:
        yield opened
    finally:
        await opened.close()


def make_ingestor(store: StoryStore, **overrides: int) -> Ingestor:
    options: dict[str, int] = {"sentences": 3, "max_story_chars": 200_000} | overrides
    return Ingestor(
        store,
        algorithm="lead",
        sentences=options["sentences"],
        max_chars=None,
        max_story_chars=options["max_story_chars"],
    )


async def test_aggregator_page_becomes_clean_story_with_links(store: StoryStore) -> None:
    report = await make_ingestor(store).ingest_bytes(
        (DATA / "aggregator_page.txt").read_bytes(), filename="aggregator_page.txt"
    )
    assert report.rejected == []
    [story_id] = report.added
    story = await store.get(story_id)
    assert story is not None
    assert len(story.links) == 4
    assert story.links[3].title == "Russia orders troops to abandon Ukrainian city of Kherson"
    for noise in NOISE:
        assert noise not in story.cleaned_text
        assert all(noise not in sentence for sentence in story.summary)
    # Summary sentences are whole sentences of the article.
    assert all(sentence in story.cleaned_text for sentence in story.summary)
    assert story.summary[0].startswith("Ukraine said on Friday")


async def test_reseeding_is_idempotent(store: StoryStore) -> None:
    data = (DATA / "stories.jsonl").read_bytes()
    first = await make_ingestor(store).ingest_bytes(data, filename="stories.jsonl")
    second = await make_ingestor(store).ingest_bytes(data, filename="stories.jsonl")
    assert first.added
    assert second.added == []
    assert sorted(d.existing_id for d in second.duplicates) == sorted(first.added)
    assert await store.count() == len(first.added)


async def test_bad_jsonl_lines_are_reported_and_the_rest_stored(store: StoryStore) -> None:
    lines = [
        json.dumps(
            {
                "title": "Storm hits coast",
                "text": "A storm hit the coast on Monday. "
                "Thousands lost power. Crews worked through the night.",
            }
        ),
        "{not json",
        json.dumps({"title": "No body"}),
        json.dumps(
            {
                "title": "Bridge reopens",
                "text": "The bridge reopened on Tuesday. Traffic returned to normal by noon.",
                "url": "https://example.com/bridge",
            }
        ),
    ]
    report = await make_ingestor(store).ingest_bytes(
        "\n".join(lines).encode(), filename="mixed.jsonl"
    )
    assert len(report.added) == 2
    assert len(report.rejected) == 2
    assert all("mixed.jsonl" in r.location for r in report.rejected)
    stored = await store.get_by_url("https://example.com/bridge")
    assert stored is not None and stored.title == "Bridge reopens"


async def test_limits_and_empty_input_are_refused_with_reasons(store: StoryStore) -> None:
    ingestor = make_ingestor(store, max_story_chars=1_000)
    long_story = "Title\n\n" + "A sentence that goes on. " * 100
    too_long = await ingestor.ingest_text(long_story)
    assert too_long.added == [] and "limit" in too_long.rejected[0].reason
    empty = await ingestor.ingest_text("   \n ")
    assert empty.added == [] and empty.rejected
    no_words = await ingestor.ingest_text("12345 67890 !!!")
    assert no_words.added == [] and no_words.rejected


def test_fingerprint_ignores_case_spacing_and_punctuation() -> None:
    assert fingerprint("The  Cat sat.\n") == fingerprint("the cat, sat")
    assert fingerprint("the cat sat") != fingerprint("the dog sat")


def test_seed_cli_reports_and_sets_exit_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "seed.db"))
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "page.txt").write_bytes((DATA / "aggregator_page.txt").read_bytes())
    assert main(["seed", str(folder)]) == 0
    assert "added 1" in capsys.readouterr().out
    assert main(["seed", "--if-empty", str(folder)]) == 0
    assert main(["seed", str(folder)]) == 0
    assert "duplicates skipped 1" in capsys.readouterr().out
    (folder / "bad.jsonl").write_text('{"title": "x"}\n')
    assert main(["seed", str(folder / "bad.jsonl")]) == 1
    assert main(["seed", str(tmp_path / "missing.txt")]) == 2

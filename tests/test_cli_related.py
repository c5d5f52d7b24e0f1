"""`newsbot related`: JSON per REF, readable lists, unknown refs and exit codes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.cli import main
from storage.repository import StoryStore
from tests.test_related_store import CHILE, CHILE_FOLLOW_UP, FILLER, HAITI, ingest


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "news.db"

    async def fill() -> None:
        async with await StoryStore.open(path) as store:
            await ingest(store, CHILE, CHILE_FOLLOW_UP, HAITI, *FILLER)

    asyncio.run(fill())
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["related", *args])
    return code, capsys.readouterr().out


def test_json_one_object_per_ref_best_first(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "--json", "--db", str(db), "1", CHILE_FOLLOW_UP["url"])
    assert code == 0
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["ref"] == "1"
    assert (first["id"], first["url"]) == (1, CHILE["url"])
    assert first["related"][0] == first["related"][0] | {
        "id": 2,
        "url": CHILE_FOLLOW_UP["url"],
        "title": CHILE_FOLLOW_UP["title"],
    }
    scores = [item["score"] for item in first["related"]]
    assert scores[0] == max(scores)
    assert {"id", "url", "title", "score"} <= set(first["related"][0])
    assert (second["ref"], second["id"]) == (CHILE_FOLLOW_UP["url"], 2)
    assert second["related"][0]["id"] == 1


def test_limit_caps_the_list(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "--json", "--limit", "1", "--db", str(db), "1")
    assert code == 0
    assert len(json.loads(out)["related"]) == 1


def test_unknown_ref_is_an_error_object_and_exit_1(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "--json", "--db", str(db), "999", "https://nowhere.example/", "2")
    assert code == 1
    missing, nowhere, found = (json.loads(line) for line in out.splitlines())
    assert missing["ref"] == "999" and "error" in missing and "related" not in missing
    assert nowhere["ref"] == "https://nowhere.example/" and "error" in nowhere
    assert found["id"] == 2, "the refs after an unknown one are still answered"


def test_readable_list_without_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "--db", str(db), "1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"#1 {CHILE['title']}")
    assert lines[1].strip().startswith(f"1. #2 {CHILE_FOLLOW_UP['title']}")


def test_missing_database_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["related", "--db", str(tmp_path / "none.db"), "1"]) == 2
    assert "no database" in capsys.readouterr().err

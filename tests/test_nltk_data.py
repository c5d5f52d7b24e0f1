from __future__ import annotations

from pathlib import Path

import nltk
import pytest
from nltk.tokenize.punkt import PunktTokenizer

from summarize import nltk_data


def test_punkt_tables_are_written_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nltk.data, "path", [])
    nltk_data._write_language(tmp_path, "english")
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    folder = tmp_path / "tokenizers" / "punkt_tab" / "english"
    assert sorted(p.name for p in folder.iterdir()) == [
        "abbrev_types.txt",
        "collocations.tab",
        "ortho_context.tab",
        "sent_starters.txt",
    ]
    sentences = PunktTokenizer("english").tokenize(
        "Mr. Smith went to Washington. He arrived at 3 p.m. on Friday."
    )
    assert sentences == ["Mr. Smith went to Washington.", "He arrived at 3 p.m. on Friday."]


def test_ensure_punkt_appends_so_existing_installs_win(tmp_path: Path) -> None:
    root = nltk_data.ensure_punkt(tmp_path)
    assert root == tmp_path
    assert nltk.data.path[-1] == str(tmp_path) or str(tmp_path) in nltk.data.path
    assert (tmp_path / "tokenizers" / "punkt_tab" / "german" / "abbrev_types.txt").exists()

"""`newsbot summarize` through its own parser and `run(args)`."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from bot.cli_summarize import add_parser, run
from summarize.summarizers import DEFAULT_ALGORITHM

DATA = Path(__file__).parent / "data"
STORY = (
    "The city council approved a new budget on Monday after a long debate. "
    "Taxes will not rise next year, the mayor said. "
    "The budget includes money for two new schools. "
    "Opposition members said the plan was too cautious. "
    "The vote was 31 to 20."
)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="newsbot")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["summarize", *argv])


def feed_stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_defaults() -> None:
    args = parse()
    assert args.path == "-"
    assert args.algorithm == DEFAULT_ALGORITHM
    assert (args.sentences, args.max_chars, args.language, args.json) == (3, None, "english", False)
    assert args.func is run


def test_plain_text_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_stdin(monkeypatch, STORY)
    assert run(parse("-", "--algorithm", "lead", "--sentences", "2")) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "The city council approved a new budget on Monday after a long debate.",
        "Taxes will not rise next year, the mayor said.",
    ]


def test_scraped_page_from_file_is_cleaned(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(parse(str(DATA / "seed_page.txt"), "--sentences", "3")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("Ukraine said on Friday")
    assert not any("Getty" in line or "Read more" in line for line in lines)


def test_jsonl_with_json_output(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [
        {"id": "a", "text": STORY},
        {"id": 7, "text": "Short story. Only two sentences here."},
    ]
    feed_stdin(monkeypatch, "\n".join(json.dumps(r) for r in records) + "\n\n")
    assert run(parse("--json", "--algorithm", "lead", "--sentences", "1")) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert out == [
        {"id": "a", "summary": [STORY.split(". ")[0] + "."]},
        {"id": 7, "summary": ["Short story."]},
    ]


def test_jsonl_plain_output_has_a_header_per_id(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_stdin(monkeypatch, '{"id": "x", "text": "One. Two."}\n{"id": "y", "text": "Three."}\n')
    assert run(parse()) == 0
    assert capsys.readouterr().out == "== x ==\nOne.\nTwo.\n\n== y ==\nThree.\n"


def test_plain_text_with_json_output(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_stdin(monkeypatch, STORY)
    assert run(parse("--json", "--max-chars", "100")) == 0
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["id"] is None
    assert 1 <= len(record["summary"]) <= 3
    assert len(" ".join(record["summary"])) <= 100


def test_text_that_only_looks_like_json_is_plain_text(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_stdin(monkeypatch, '{"id": 1, "text": "x"}\nBut this line is prose. It goes on.\n')
    assert run(parse("--algorithm", "lead")) == 0
    assert "But this line is prose." in capsys.readouterr().out


def test_empty_input_fails_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_stdin(monkeypatch, "  \n")
    assert run(parse()) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "empty" in captured.err


def test_bad_record_fails_but_others_are_summarised(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    feed_stdin(
        monkeypatch, '{"id": "ok", "text": "Fine."}\n{"id": "bad"}\n{"id": "e", "text": ""}\n'
    )
    assert run(parse("--json")) == 1
    captured = capsys.readouterr()
    assert [json.loads(line)["id"] for line in captured.out.splitlines()] == ["ok"]
    assert "record bad: the record has no 'text' string" in captured.err
    assert "record e: nothing to summarise" in captured.err


def test_missing_file_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(parse(str(tmp_path / "nope.txt"))) == 1
    assert "cannot read" in capsys.readouterr().err


def test_non_utf8_file_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("Caf\xe9 au lait.".encode("latin-1"))
    assert run(parse(str(path))) == 1
    assert "not UTF-8" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--sentences", "0"],
        ["--sentences", "two"],
        ["--max-chars", "-5"],
        ["--algorithm", "magic"],
        ["--language", "klingon"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse(*argv)
    assert exit_info.value.code == 2
    assert "usage:" in capsys.readouterr().err

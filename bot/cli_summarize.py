"""`newsbot summarize [PATH|-]`: summarise plain text, a scraped page, or JSONL records."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from summarize.errors import TextError
from summarize.nltk_data import LANGUAGES
from summarize.summarizers import ALGORITHMS, DEFAULT_ALGORITHM, summarize

__all__ = ["add_parser", "run"]


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `summarize` subcommand; `run` is set as its `func` default."""
    parser = subparsers.add_parser(
        "summarize",
        help="print an extractive summary of a text, a scraped page or JSONL records",
        description=(
            "Summarise PATH (or standard input with '-' or no PATH). Input is plain text, a "
            "scraped news page, or JSONL: one JSON object with 'id' and 'text' per line."
        ),
    )
    parser.add_argument("path", nargs="?", default="-", metavar="PATH|-")
    parser.add_argument(
        "--algorithm",
        default=DEFAULT_ALGORITHM,
        choices=sorted(ALGORITHMS),
        help=f"default: {DEFAULT_ALGORITHM}",
    )
    parser.add_argument("--sentences", type=_positive, default=3, help="default: 3")
    parser.add_argument("--max-chars", type=_positive, default=None, help="summary length cap")
    parser.add_argument("--language", default="english", choices=LANGUAGES)
    parser.add_argument(
        "--json", action="store_true", help='one {"id": ..., "summary": [...]} object per line'
    )
    parser.set_defaults(func=run)


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TextError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise TextError(f"cannot read {path}: {exc.strerror or exc}") from None


def _jsonl_records(data: str) -> list[dict[str, Any]] | None:
    """The records when every non-empty line is a JSON object, else None (plain text)."""
    lines = [line for line in data.splitlines() if line.strip()]
    if not lines or not lines[0].lstrip().startswith("{"):
        return None
    records: list[dict[str, Any]] = []
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            return None
        if not isinstance(value, dict):
            return None
        records.append(value)
    return records


def run(args: argparse.Namespace) -> int:
    """Print the summaries; 1 when the input (or any record of it) cannot be summarised."""
    options: dict[str, Any] = {
        "algorithm": args.algorithm,
        "sentences": args.sentences,
        "max_chars": args.max_chars,
        "language": args.language,
    }
    try:
        data = _read(args.path)
    except TextError as exc:
        print(f"newsbot summarize: {exc}", file=sys.stderr)
        return 1
    records = _jsonl_records(data)
    inputs: list[tuple[Any, Any]] = (
        [(None, data)]
        if records is None
        else [
            (record.get("id", number), record.get("text"))
            for number, record in enumerate(records, 1)
        ]
    )
    failed = False
    for position, (identifier, text) in enumerate(inputs):
        try:
            if not isinstance(text, str):
                raise TextError("the record has no 'text' string")
            summary = summarize(text, **options)
        except TextError as exc:
            where = f"record {identifier}: " if records is not None else ""
            print(f"newsbot summarize: {where}{exc}", file=sys.stderr)
            failed = True
            continue
        if args.json:
            print(json.dumps({"id": identifier, "summary": summary}, ensure_ascii=False))
            continue
        if len(inputs) > 1:
            if position:
                print()
            print(f"== {identifier} ==")
        print("\n".join(summary))
    return 1 if failed else 0

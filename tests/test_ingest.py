from __future__ import annotations

import gc
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot import cli_seed, seed_inputs
from bot.cli import main
from ingest.pipeline import Ingestor, RelatedIndexer, _Round
from ingest.pool import WORKER_NICENESS, pool_context, yield_to_parent
from ingest.prepare import fingerprint
from ingest.report import IngestReport
from storage.models import RelatedRow
from storage.repository import StoryStore
from summarize.related import CorpusStats, Vectors

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


def _event_stories(count: int) -> bytes:
    """`count` short reports about a handful of events, some sharing words, as JSONL."""
    places = ["Aceh", "Chile", "Haiti", "Nepal", "Peru", "Fiji"]
    kinds = ["earthquake", "flood", "storm"]
    lines = []
    for n in range(count):
        place, kind = places[n % len(places)], kinds[n % len(kinds)]
        text = (
            f"A {kind} struck {place} on day {n % 5}, officials in {place} said. "
            f"Rescue teams from the Red Cross reached {place} after the {kind}. "
            f"Report {n} counts {10 + n} damaged homes and {n % 4} bridges."
        )
        lines.append(
            json.dumps(
                {
                    "title": f"{kind.title()} hits {place}, report {n}",
                    "text": text,
                    "url": f"https://news.example/{n}",
                    "source": f"outlet{n % 3}.example",
                    "published_at": f"2024-03-{1 + n % 20:02d}T08:00:00+00:00",
                }
            )
        )
    return "\n".join(lines).encode()


async def test_counts_kept_through_a_round_rank_like_counts_read_per_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A round reads each key's counts once and keeps the vectors between its chunks; reading
    # every chunk's counts afresh (as before) must give the very same lists.
    monkeypatch.setattr("ingest.pipeline._RANK_CHUNK", 3)
    monkeypatch.setattr("ingest.pipeline.BATCH_SIZE", 8)
    data = _event_stories(30)

    async def lists(name: str) -> dict[int, list[RelatedRow]]:
        async with await StoryStore.open(tmp_path / name) as db:
            report = await make_ingestor(db).ingest_bytes(data, filename="s.jsonl")
            assert len(report.added) == 30
            return await db.related_rows(report.added)

    kept = await lists("kept.db")
    assert len(kept) == 30
    per_chunk = RelatedIndexer._stats

    async def forgetful(
        self: RelatedIndexer, features: Iterable[Vectors], counts: _Round
    ) -> CorpusStats:
        counts.reset()
        return await per_chunk(self, features, counts)

    monkeypatch.setattr(RelatedIndexer, "_stats", forgetful)
    assert await lists("per_chunk.db") == kept


def test_a_round_reads_each_position_once_until_it_starts_over() -> None:
    counts = _Round()
    first = counts.unasked(np.array([5, 2, 5, 9], dtype=np.uint16))
    assert first.tolist() == [2, 5, 9]
    counts.mark_asked(first)
    # Positions past the mask's end are new; asked ones are left out, each once.
    assert counts.unasked(np.array([9, 2, 40, 3, 40], dtype=np.uint16)).tolist() == [3, 40]
    counts.reset()
    assert counts.unasked(np.array([9, 2], dtype=np.uint16)).tolist() == [2, 9]


async def test_pool_summarises_in_slices_and_keeps_input_order(
    store: StoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ingest.pipeline.POOL_THRESHOLD", 4)
    monkeypatch.setattr("ingest.pipeline._POOL_SLICE", 3)
    # A story over the size cap is refused in the worker, which hands back the reason.
    long = {"title": "long", "text": "Words repeat here. " * 100}
    data = _event_stories(10) + b"\n" + json.dumps(long).encode()
    ingestor = Ingestor(
        store, algorithm="lead", sentences=2, max_chars=None, max_story_chars=1_000, workers=2
    )
    report = await ingestor.ingest_bytes(data, filename="s.jsonl")
    assert [r.location for r in report.rejected] == ["s.jsonl story 11"]
    by_url = await store.ids_by_url(f"https://news.example/{n}" for n in range(10))
    assert report.added == [by_url[f"https://news.example/{n}"] for n in range(10)]
    assert (await store.related_rows(report.added[-1:]))[report.added[-1]]


async def test_jsonl_stream_reports_each_bad_line_and_stores_the_rest(store: StoryStore) -> None:
    good = json.loads(_event_stories(1))
    lines = [
        b"\xef\xbb\xbf" + json.dumps(good).encode() + b"\r\n",
        b"\n",
        b"{not json\n",
        b'{"title": "caf\xe9"}\n',
        json.dumps({"title": "No body"}).encode() + b"\n",
        # U+2028 is a line break to str.splitlines but not to JSONL.
        json.dumps(
            {"title": "Quake", "text": "A quake\u2028struck Peru today."}, ensure_ascii=False
        ).encode(),
    ]
    report = await make_ingestor(store).ingest_jsonl(lines, origin="in.jsonl")
    assert len(report.added) == 2
    assert [(r.location, r.reason.split(":")[0]) for r in report.rejected] == [
        ("in.jsonl line 3", "not JSON"),
        ("in.jsonl line 4", "not UTF-8 text"),
        ("in.jsonl line 5", "missing text"),
    ]
    empty = await make_ingestor(store).ingest_jsonl([b"\n", b"  \n"], origin="blank.jsonl")
    assert empty.added == [] and [r.location for r in empty.rejected] == ["blank.jsonl"]


async def test_jsonl_stream_is_read_a_batch_ahead_not_whole(
    store: StoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ingest.pipeline.BATCH_SIZE", 4)
    read = 0

    def lines() -> Iterable[bytes]:
        nonlocal read
        for line in _event_stories(20).splitlines():
            read += 1
            yield line

    consumed: list[int] = []
    report = await make_ingestor(store).ingest_jsonl(
        lines(), origin="s.jsonl", progress=lambda _: consumed.append(read)
    )
    assert len(report.added) == 20
    # When the first batch is stored, only it and the next have been read.
    assert consumed[0] <= 8
    assert consumed == sorted(consumed) and consumed[-1] == 20


def test_seed_cli_streams_jsonl_files_past_the_document_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "seed.db"))
    monkeypatch.setenv("MAX_DOCUMENT_BYTES", "1000")
    data = _event_stories(12) + b"\n{broken\n"
    assert len(data) > 1000
    (tmp_path / "big.ndjson").write_bytes(data)
    assert main(["seed", str(tmp_path / "big.ndjson")]) == 1
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert "added 12" in out and "big.ndjson line 13: not JSON" in out


def test_seed_starts_the_pool_server_early_only_for_inputs_the_pool_will_take(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[bool] = []
    monkeypatch.setattr("ingest.pool.start_early", lambda: started.append(True))
    small = tmp_path / "small.jsonl"
    small.write_bytes(_event_stories(3))
    folder = tmp_path / "bulk"
    folder.mkdir()
    big = folder / "big.jsonl"
    big.write_bytes(b"\n" * seed_inputs.EARLY_POOL_BYTES)

    def starts(*argv: str) -> bool:
        started.clear()
        seed_inputs.start_pool_early(argv)
        return bool(started)

    assert not starts("--quiet", str(small))
    assert not starts(str(tmp_path / "missing.jsonl"), "https://news.example/feed", "-")
    assert starts("--quiet", str(big))
    assert starts(str(folder), str(small))
    assert not starts("--workers", "1", str(big))
    assert not starts("--workers=1", str(folder))
    assert starts("--workers", "2", str(big))


def test_pool_workers_run_below_the_parents_priority() -> None:
    with ProcessPoolExecutor(
        max_workers=1, mp_context=pool_context(), initializer=yield_to_parent
    ) as pool:
        assert pool.submit(os.nice, 0).result() == min(19, os.nice(0) + WORKER_NICENESS)


def _tokenizers_loaded() -> int:
    from summarize.sentences import _tokenizer

    return _tokenizer.cache_info().currsize


def test_pool_workers_start_with_the_summarising_tables_loaded() -> None:
    # The server loads them once (ingest.pool_warmup) and forks the workers from it.
    with ProcessPoolExecutor(max_workers=1, mp_context=pool_context()) as pool:
        assert pool.submit(_tokenizers_loaded).result() >= 1


def _search_index_pieces(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        # An FTS5 data row's id holds its segment's id above bit 37; rows 1 and 10 are not
        # segments (averages and structure).
        row = conn.execute(
            "SELECT count(DISTINCT id >> 37) FROM stories_fts_data WHERE id > 10"
        ).fetchone()
    return int(row[0])


def test_a_bulk_seed_leaves_the_search_index_in_one_piece_a_small_one_does_not_rewrite_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    database = tmp_path / "seed.db"
    monkeypatch.setenv("DATABASE_PATH", str(database))
    # Batches of 4: twelve stories are three write transactions, three index pieces.
    monkeypatch.setattr("ingest.pipeline.BATCH_SIZE", 4)
    monkeypatch.setattr("ingest.pipeline.POOL_THRESHOLD", 1000)
    (tmp_path / "bulk.jsonl").write_bytes(_event_stories(12))
    assert main(["seed", "--quiet", str(tmp_path / "bulk.jsonl")]) == 0
    assert _search_index_pieces(database) == 1

    monkeypatch.setattr("bot.cli_seed._COMPACT_SHARE", 0.5)
    lines = _event_stories(20).splitlines()[12:]
    (tmp_path / "more.jsonl").write_bytes(b"\n".join(lines))
    assert main(["seed", "--quiet", str(tmp_path / "more.jsonl")]) == 0
    assert _search_index_pieces(database) > 1


def test_a_seed_collects_garbage_less_often_and_restores_the_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "seed.db"))
    seen: list[int] = []
    real_seed_one = cli_seed._seed_one

    async def seed_one(*args: Any, **kwargs: Any) -> IngestReport:
        seen.append(gc.get_threshold()[0])
        return await real_seed_one(*args, **kwargs)

    monkeypatch.setattr(cli_seed, "_seed_one", seed_one)
    before = gc.get_threshold()
    (tmp_path / "bulk.jsonl").write_bytes(_event_stories(3))
    assert main(["seed", "--quiet", str(tmp_path / "bulk.jsonl")]) == 0
    assert seen == [cli_seed._SEED_GC_THRESHOLD]
    assert before[0] < cli_seed._SEED_GC_THRESHOLD
    assert gc.get_threshold() == before

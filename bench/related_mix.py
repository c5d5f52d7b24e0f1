"""Related lists among real news, under other search settings: `python -m bench.related_mix`.

bench.related_store seeds each event set alone, where a story's candidate search rarely
matches enough stories for the search's bounds to matter. Here the BBC articles of
../shared/eval (2,225 stories of five topics, no events) are shuffled together with both
event sets (fixed seed) into one store of about 5,100 real stories, seeded through the real
ingest pipeline once per setting:

- `--window`: how many of the newest matches a related-candidate search ranks
  (storage.repository.RANK_WINDOW, also what /search ranks);
- `--share`: above which share of the stories a word is dropped from a related-candidate
  search when rarer words remain (storage.repository.RELATED_TERM_SHARE).

Then each event-set story in an event of 6 or more is scored on its stored list as in
bench.related_store (P@5, R@10); a BBC story in a list counts as a wrong one.
Writes bench/out/related_mix.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import storage.repository as sqlite_store
from bench.related import DATA_FILES, MIN_EVENT, OUT
from bench.related_store import _ingestor, to_jsonl
from storage.repository import StoryStore

BBC_FILE = "bbc_news_summary.jsonl"
SHUFFLE_SEED = 7


def mixed_jsonl(data_dir: Path) -> tuple[bytes, dict[str, tuple[str, str | None]]]:
    """The shuffled JSONL, and each URL's (set, event); BBC stories have no event."""
    lines: list[str] = []
    labels: dict[str, tuple[str, str | None]] = {}
    for name, filename in DATA_FILES.items():
        records, urls, data = to_jsonl(data_dir / filename)
        for record, url, line in zip(records, urls, data.decode().splitlines(), strict=True):
            lines.append(line)
            labels[url] = (name, record.event)
    for line in (data_dir / BBC_FILE).read_text("utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        url = f"https://eval.invalid/bbc/{row['id']}"
        story = {"title": row["title"], "text": row["text"], "url": url, "source": "bbc.co.uk"}
        lines.append(json.dumps(story, ensure_ascii=False))
        labels[url] = ("BBC", None)
    random.Random(SHUFFLE_SEED).shuffle(lines)
    return ("\n".join(lines) + "\n").encode("utf-8"), labels


@contextmanager
def settings(window: int, share: float) -> Iterator[None]:
    saved = sqlite_store.RANK_WINDOW, sqlite_store.RELATED_TERM_SHARE
    # Module globals read at call time: a benchmark's override, never the product's.
    sqlite_store.RANK_WINDOW, sqlite_store.RELATED_TERM_SHARE = window, share  # type: ignore[misc]
    try:
        yield
    finally:
        sqlite_store.RANK_WINDOW, sqlite_store.RELATED_TERM_SHARE = saved  # type: ignore[misc]


async def evaluate(
    data: bytes, labels: dict[str, tuple[str, str | None]], db: Path, window: int, share: float
) -> dict[str, Any]:
    with settings(window, share):
        async with await StoryStore.open(db) as store:
            started = time.perf_counter()
            await _ingestor(store, True).ingest_bytes(data, filename="mix.jsonl")
            seconds = time.perf_counter() - started
            label_of: dict[int, tuple[str, str | None]] = {}
            for url, label in labels.items():
                story = await store.get_by_url(url)
                if story is not None and story.id not in label_of:
                    label_of[story.id] = label
            result: dict[str, Any] = {
                "window": window,
                "share": share,
                "stored": len(label_of),
                "ingest_s": round(seconds, 1),
            }
            for name in DATA_FILES:
                sizes = Counter(label for label in label_of.values() if label[0] == name)
                precision: list[float] = []
                recall: list[float] = []
                for story_id, label in label_of.items():
                    if label[0] != name or sizes[label] < MIN_EVENT:
                        continue
                    listed = [entry.story.id for entry in await store.related_of(story_id, 10)]
                    same = [label_of.get(i) == label for i in listed]
                    precision.append(sum(same[:5]) / 5)
                    recall.append(sum(same) / (sizes[label] - 1))
                result[name] = {
                    "queries": len(precision),
                    "P@5": round(sum(precision) / len(precision), 4),
                    "R@10": round(sum(recall) / len(recall), 4),
                }
    return result


async def run(data_dir: Path, windows: Sequence[int], shares: Sequence[float]) -> list[Any]:
    data, labels = mixed_jsonl(data_dir)
    results: list[dict[str, Any]] = []
    print(
        f"{'window':>7} {'share':>6} "
        + " ".join(f"{n + ' P@5':>13} {'R@10':>6}" for n in DATA_FILES)
    )
    with tempfile.TemporaryDirectory(prefix="related-mix-") as workdir:
        for window in windows:
            for share in shares:
                db = Path(workdir) / f"mix-{window}-{share}.db"
                result = await evaluate(data, labels, db, window, share)
                results.append(result)
                print(
                    f"{window:>7} {share:>6} "
                    + " ".join(
                        f"{result[n]['P@5']:>13.4f} {result[n]['R@10']:>6.4f}" for n in DATA_FILES
                    ),
                    flush=True,
                )
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    default = Path(__file__).resolve().parents[2] / "shared" / "eval"
    parser.add_argument("--data-dir", type=Path, default=default)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--window", type=int, nargs="+", default=[sqlite_store.RANK_WINDOW])
    parser.add_argument("--share", type=float, nargs="+", default=[sqlite_store.RELATED_TERM_SHARE])
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.data_dir, args.window, args.share))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "related_mix.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""Related lists as the bot stores and shows them: `python -m bench.related_store`.

For each event set in ../shared/eval (see its README), every record is written to a JSONL
file (title, text, url, source, published_at; a headline-only record uses its title as
text; a record without a URL gets https://eval.invalid/<id>, and without a source a
unique one, so that the URL's host does not make hundreds of records one fake outlet) and
seeded into a fresh database through the real ingest pipeline (`Ingestor.ingest_bytes`,
process pool included), once with related lists off and once on: the difference is what
related costs per ingested story.

Then, for every stored story in an event of 6 or more, its stored related list is read
back through the store (`StoryStore.related_of`, what /related and `newsbot related`
show), mapped to records by stored URL, and scored against the other stories of its
event, in the same run as:

- the plain TF-IDF cosine baseline of bench/related.py over all other stored stories;
- the store's own full-text search for the story's salient terms (what /related did
  before lists were stored), its first 10 hits.

Ingest drops duplicates (same URL, or the same words: syndicated headlines), so every
system is scored on the stories actually stored; event sizes count stored stories. Folded
copies count towards recall, not precision, as in bench/related.py's "copies folded".
Writes bench/out/related_store.json and bench/out/related_store.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.related import (
    DATA_FILES,
    MIN_EVENT,
    OUT,
    Record,
    load,
    score_folded,
    score_rankings,
    tfidf_baseline,
)
from ingest.pipeline import RELATED_LIMIT, Ingestor
from storage.repository import StoryStore
from summarize.related import RelatedHit
from summarize.similarity import salient_terms
from summarize.summarizers import DEFAULT_ALGORITHM

SYSTEMS = (
    "TF-IDF cosine, all (baseline)",
    "store FTS, salient terms (old /related)",
    "stored related list (as shown)",
)


def eval_url(record_id: str) -> str:
    return f"https://eval.invalid/{record_id}"


def to_jsonl(path: Path) -> tuple[list[Record], list[str], bytes]:
    """The set's records, the URL each is stored under, and the JSONL to seed."""
    records = load(path)
    raw = {
        str(row["id"]): row
        for row in (json.loads(line) for line in path.read_text("utf-8").splitlines() if line)
    }
    urls: list[str] = []
    lines: list[str] = []
    for record in records:
        url = str(raw[record.id].get("url") or "") or eval_url(record.id)
        urls.append(url)
        lines.append(
            json.dumps(
                {
                    "title": record.title,
                    "text": record.text or record.title,
                    "url": url,
                    "source": record.source or f"eval-{record.id}",
                    "published_at": record.published_at.isoformat()
                    if record.published_at
                    else None,
                },
                ensure_ascii=False,
            )
        )
    return records, urls, ("\n".join(lines) + "\n").encode("utf-8")


def _ingestor(store: StoryStore, related: bool) -> Ingestor:
    return Ingestor(
        store,
        algorithm=DEFAULT_ALGORITHM,
        sentences=3,
        max_chars=None,
        max_story_chars=200_000,
        max_document_bytes=1_000_000_000,
        related=related,
    )


async def seed(data: bytes, db: Path, *, related: bool) -> float:
    """Seconds to ingest the JSONL into a fresh database at db."""
    async with await StoryStore.open(db) as store:
        started = time.perf_counter()
        report = await _ingestor(store, related).ingest_bytes(data, filename="eval.jsonl")
        elapsed = time.perf_counter() - started
    if report.rejected:
        raise RuntimeError(f"rejected: {report.rejected[:3]}")
    return elapsed


async def evaluate(name: str, path: Path, workdir: Path) -> dict[str, Any]:
    records, urls, data = to_jsonl(path)
    off = await seed(data, workdir / f"{path.stem}-off.db", related=False)
    db = workdir / f"{path.stem}-on.db"
    on = await seed(data, db, related=True)

    async with await StoryStore.open(db) as store:
        # The deduplicated corpus: one record per stored story, found by its stored URL.
        kept: list[int] = []
        story_of: dict[int, int] = {}
        for n, url in enumerate(urls):
            story = await store.get_by_url(url)
            if story is not None and story.id not in story_of.values():
                story_of[n] = story.id
                kept.append(n)
        corpus = [records[n] for n in kept]
        index = {story_of[n]: i for i, n in enumerate(kept)}
        sizes = Counter(r.event for r in corpus)
        queries = [i for i, r in enumerate(corpus) if sizes[r.event] >= MIN_EVENT]

        stored: list[list[RelatedHit]] = []
        fts: list[list[int]] = []
        read_seconds = 0.0
        for q in queries:
            story_id = story_of[kept[q]]
            started = time.perf_counter()
            entries = await store.related_of(story_id, RELATED_LIMIT)
            read_seconds += time.perf_counter() - started
            stored.append(
                [
                    RelatedHit(
                        key=corpus[index[e.story.id]].id,
                        score=e.score,
                        copies=tuple(corpus[index[c]].id for c in e.copies if c in index),
                    )
                    for e in entries
                    if e.story.id in index
                ]
            )
            story = await store.get(story_id)
            assert story is not None
            terms = salient_terms(story.title, story.cleaned_text, language=story.language)
            hits = await store.search_any_ids(terms, RELATED_LIMIT, exclude_id=story_id)
            fts.append([index[h] for h in hits if h in index])

    systems = {
        SYSTEMS[0]: score_rankings(corpus, queries, tfidf_baseline(corpus, queries)).row(),
        SYSTEMS[1]: score_rankings(corpus, queries, fts).row(),
        SYSTEMS[2]: score_folded(corpus, queries, stored).row(),
    }
    result: dict[str, Any] = {
        "records": len(records),
        "stored": len(corpus),
        "duplicates_dropped": len(records) - len(corpus),
        "queries": len(queries),
        "ingest_ms_per_story": {
            "related off": off * 1000 / len(records),
            "related on": on * 1000 / len(records),
            "related cost": (on - off) * 1000 / len(records),
        },
        "read_related_ms": read_seconds * 1000 / max(1, len(queries)),
        "systems": systems,
    }
    _print(name, result)
    return result


def _print(name: str, result: dict[str, Any]) -> None:
    cost = result["ingest_ms_per_story"]
    print(
        f"\n{name}: {result['records']} records, {result['stored']} stored "
        f"({result['duplicates_dropped']} duplicates dropped), {result['queries']} queries "
        f"(events of {MIN_EVENT}+)"
    )
    print(f"{'system':<42} {'P@5':>6} {'R@10':>6} {'MRR':>6} {'top5 err':>9} {'sibling':>8}")
    for system, row in result["systems"].items():
        print(
            f"{system:<42} {row['P@5']:>6.3f} {row['R@10']:>6.3f} {row['MRR']:>6.3f}"
            f" {row['top5_errors']:>9} {row['top5_sibling_errors']:>8}"
        )
    print(
        f"ingest: {cost['related off']:.2f} ms/story related off, {cost['related on']:.2f} "
        f"on ({cost['related cost']:+.2f}); "
        f"reading a stored list {result['read_related_ms']:.2f} ms"
    )


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ["P@5", "R@10", "MRR"]
    fig, axes = plt.subplots(1, len(results) + 1, figsize=(5.5 * (len(results) + 1), 5))
    for ax, (name, result) in zip(axes, results.items(), strict=False):
        systems = result["systems"]
        width = 0.8 / len(systems)
        for n, row in enumerate(systems.values()):
            ax.bar([m + n * width for m in range(len(metrics))], [row[m] for m in metrics], width)
            ax.bar_label(ax.containers[-1], fmt="%.2f", fontsize=7)
        ax.set_xticks([m + 0.4 - width / 2 for m in range(len(metrics))], metrics)
        ax.set_ylim(0.4, 1.02)
        ax.set_title(f"{name} ({result['queries']} queries)")
    ax = axes[-1]
    names = list(results)
    off = [results[n]["ingest_ms_per_story"]["related off"] for n in names]
    cost = [results[n]["ingest_ms_per_story"]["related cost"] for n in names]
    ax.bar(names, off, label="ingest, related off")
    ax.bar(names, cost, bottom=off, label="+ related lists")
    ax.set_ylabel("ms per ingested story")
    ax.set_title("ingest cost")
    ax.legend(fontsize=8)
    fig.legend(list(SYSTEMS), loc="lower center", ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


async def run(data_dir: Path, out: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="related-store-") as workdir:
        for name, filename in DATA_FILES.items():
            results[name] = await evaluate(name, data_dir / filename, Path(workdir))
    await asyncio.to_thread(_write, results, out)
    print(f"\nwrote {out / 'related_store.json'} and {out / 'related_store.png'}")
    return results


def _write(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "related_store.json").write_text(json.dumps(results, indent=2) + "\n")
    chart(results, out / "related_store.png")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    default = Path(__file__).resolve().parents[2] / "shared" / "eval"
    parser.add_argument("--data-dir", type=Path, default=default)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    asyncio.run(run(args.data_dir, args.out))


if __name__ == "__main__":
    main()

"""Evaluate related-story ranking on the shared event sets: `python -m bench.related`.

For every story in an event of 6 or more, the other stories of its event are the relevant
ones. Scored in one run, on the same queries:

- baseline: TF-IDF cosine over all other articles (English stop words, sublinear tf), as in
  the data README;
- bm25 top-50: the candidates a store FTS5 OR-query of `salient_terms` would return (mimicked
  in memory, porter stems, per-column BM25 like FTS5's `bm25()`), in their own order;
- method: `rank_related` re-ranking those 50 candidates (what the bot will do), with and
  without publication dates and outlets, since in ECB+ only one of the two sibling events
  carries dates at all, which would let metadata rather than text separate them;
- method over all: `rank_related` over every other article (no retrieval step).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from summarize.related import (
    CorpusStats,
    Doc,
    DocFeatures,
    RelatedHit,
    Weights,
    build_features,
    rank_related,
)
from summarize.related_text import stem, stop_words, words
from summarize.similarity import salient_terms

DATA_FILES = {"Emergent": "events_emergent.jsonl", "ECB+ dev": "events_ecbplus_dev.jsonl"}
MIN_EVENT = 6
CANDIDATES = 50
OUT = Path(__file__).parent / "out"


@dataclass(frozen=True, slots=True)
class Record:
    id: str
    event: str
    topic: str | None
    title: str
    text: str
    source: str | None
    published_at: datetime | None


def load(path: Path) -> list[Record]:
    records: list[Record] = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            row = json.loads(line)
            stamp = row.get("published_at") or ""
            records.append(
                Record(
                    id=str(row["id"]),
                    event=str(row["event"]),
                    topic=row.get("topic"),
                    title=row.get("title") or "",
                    text=row.get("text") or "",
                    source=row.get("source") or None,
                    published_at=datetime.fromisoformat(stamp) if stamp else None,
                )
            )
    return records


# ---------------------------------------------------------------- metrics


@dataclass(slots=True)
class Scores:
    p5: list[float]
    r10: list[float]
    rr: list[float]
    sibling_errors: int = 0
    errors: int = 0

    def row(self) -> dict[str, float]:
        return {
            "P@5": float(np.mean(self.p5)),
            "R@10": float(np.mean(self.r10)),
            "MRR": float(np.mean(self.rr)),
            "top5_errors": self.errors,
            "top5_sibling_errors": self.sibling_errors,
        }


def score_rankings(
    records: Sequence[Record], queries: Sequence[int], rankings: Sequence[Sequence[int]]
) -> Scores:
    """Rankings are lists of record indices, best first (the query itself excluded)."""
    sizes = Counter(r.event for r in records)
    scores = Scores([], [], [])
    for q, ranking in zip(queries, rankings, strict=True):
        event = records[q].event
        relevant = sizes[event] - 1
        same = [records[i].event == event for i in ranking]
        scores.p5.append(sum(same[:5]) / 5)
        scores.r10.append(sum(same[:10]) / relevant)
        scores.rr.append(next((1 / (n + 1) for n, s in enumerate(same) if s), 0.0))
        for i in ranking[:5]:
            if records[i].event != event:
                scores.errors += 1
                topic = records[q].topic
                scores.sibling_errors += topic is not None and records[i].topic == topic
    return scores


def score_folded(
    records: Sequence[Record], queries: Sequence[int], hits: Sequence[Sequence[RelatedHit]]
) -> Scores:
    """As the bot shows them: a hit's folded copies count towards recall, not precision."""
    index = {r.id: n for n, r in enumerate(records)}
    sizes = Counter(r.event for r in records)
    scores = Scores([], [], [])
    for q, ranked in zip(queries, hits, strict=True):
        event = records[q].event
        same = [records[index[str(h.key)]].event == event for h in ranked]
        found = sum(
            records[index[str(k)]].event == event for h in ranked[:10] for k in (h.key, *h.copies)
        )
        scores.p5.append(sum(same[:5]) / 5)
        scores.r10.append(min(1.0, found / (sizes[event] - 1)))
        scores.rr.append(next((1 / (n + 1) for n, s in enumerate(same) if s), 0.0))
        for hit in ranked[:5]:
            other = records[index[str(hit.key)]]
            if other.event != event:
                scores.errors += 1
                topic = records[q].topic
                scores.sibling_errors += topic is not None and other.topic == topic
    return scores


# ---------------------------------------------------------------- TF-IDF baseline

_BASELINE_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def tfidf_baseline(records: Sequence[Record], queries: Sequence[int]) -> list[list[int]]:
    """Cosine over sublinear-tf, smoothed-idf, l2-normalised vectors (scikit-learn's recipe)."""
    stop = stop_words("english")
    docs = [
        Counter(t for t in _BASELINE_TOKEN.findall(f"{r.title}\n{r.text}".lower()) if t not in stop)
        for r in records
    ]
    vocab = {t: n for n, t in enumerate(sorted({t for d in docs for t in d}))}
    matrix = np.zeros((len(docs), len(vocab)), dtype=np.float32)
    for row, counts in enumerate(docs):
        for term, tf in counts.items():
            matrix[row, vocab[term]] = 1.0 + math.log(tf)
    df = (matrix > 0).sum(axis=0)
    matrix *= (np.log((1 + len(docs)) / (1 + df)) + 1.0).astype(np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix /= np.where(norms == 0, 1.0, norms)
    rankings: list[list[int]] = []
    for q in queries:
        sims = matrix @ matrix[q]
        sims[q] = -np.inf
        # Stable: equal scores keep corpus order, as a sort over all articles would.
        order = np.argsort(-sims, kind="stable")
        rankings.append([int(i) for i in order[: len(records) - 1]])
    return rankings


# ---------------------------------------------------------------- store FTS mimic


class FtsMimic:
    """BM25 over (title, text) like SQLite FTS5 with `porter unicode61`, OR of query terms."""

    K1 = 1.2
    B = 0.75

    def __init__(self, records: Sequence[Record]) -> None:
        self._stem: Callable[[str], str] = stem
        self.columns: list[list[Counter[str]]] = [
            [Counter(self._tokens(r.title)) for r in records],
            [Counter(self._tokens(r.text)) for r in records],
        ]
        self.lengths = [[sum(c.values()) for c in col] for col in self.columns]
        self.average = [max(1e-9, sum(lens) / len(lens)) for lens in self.lengths]
        self.postings: dict[str, set[int]] = defaultdict(set)
        for col in self.columns:
            for n, counts in enumerate(col):
                for term in counts:
                    self.postings[term].add(n)
        self.docs = len(records)

    def _tokens(self, text: str) -> list[str]:
        return [self._stem(w.lower()) for w in words(text)]

    def search_any(self, terms: Sequence[str], limit: int, exclude: int) -> list[int]:
        stems = list(dict.fromkeys(self._stem(t.lower()) for t in terms))
        scores: dict[int, float] = defaultdict(float)
        for term in stems:
            posting = self.postings.get(term, set())
            hits = len(posting)
            idf = math.log((self.docs - hits + 0.5) / (hits + 0.5))
            idf = max(idf, 1e-6)
            for n in posting:
                for col, counts in enumerate(self.columns):
                    tf = counts[n].get(term, 0)
                    if tf:
                        norm = self.K1 * (
                            1 - self.B + self.B * self.lengths[col][n] / self.average[col]
                        )
                        scores[n] += idf * tf * (self.K1 + 1) / (tf + norm)
        scores.pop(exclude, None)
        return sorted(scores, key=lambda n: (-scores[n], n))[:limit]


# ---------------------------------------------------------------- runs


def as_doc(record: Record, *, metadata: bool) -> Doc:
    return Doc(
        key=record.id,
        title=record.title,
        text=record.text,
        source=record.source if metadata else None,
        published_at=record.published_at if metadata else None,
    )


def evaluate(name: str, records: list[Record], over_all: bool) -> dict[str, Any]:
    sizes = Counter(r.event for r in records)
    queries = [n for n, r in enumerate(records) if sizes[r.event] >= MIN_EVENT]
    index = {r.id: n for n, r in enumerate(records)}
    results: dict[str, Any] = {"queries": len(queries), "articles": len(records), "systems": {}}
    systems = results["systems"]

    systems["TF-IDF cosine, all (baseline)"] = score_rankings(
        records, queries, tfidf_baseline(records, queries)
    ).row()

    started = time.perf_counter()
    features = [build_features(as_doc(r, metadata=True)) for r in records]
    ingest_ms = (time.perf_counter() - started) * 1000 / len(records)
    bare = [replace(f, source=None, published_at=None) for f in features]
    stats = CorpusStats.of(features)
    json_bytes = sum(len(json.dumps(f.to_json())) for f in features) / len(features)

    fts = FtsMimic(records)
    started = time.perf_counter()
    candidates = [
        fts.search_any(salient_terms(records[q].title, records[q].text), CANDIDATES, q)
        for q in queries
    ]
    retrieve_ms = (time.perf_counter() - started) * 1000 / len(queries)
    systems[f"BM25 OR salient terms, top {CANDIDATES}"] = score_rankings(
        records, queries, candidates
    ).row()
    results["candidate_recall@50"] = float(
        np.mean(
            [
                sum(records[i].event == records[q].event for i in c) / (sizes[records[q].event] - 1)
                for q, c in zip(queries, candidates, strict=True)
            ]
        )
    )

    def rerank(
        feats: list[DocFeatures], pools: list[list[int]], weights: Weights
    ) -> list[list[int]]:
        out: list[list[int]] = []
        for q, pool in zip(queries, pools, strict=True):
            hits = rank_related(
                feats[q],
                [feats[i] for i in pool],
                limit=len(pool),
                stats=stats,
                weights=weights,
                fold_copies=False,
            )
            out.append([index[str(h.key)] for h in hits])
        return out

    weights = Weights()
    text_only = replace(weights, use_dates=False)
    started = time.perf_counter()
    ranked = rerank(features, candidates, weights)
    rank_ms = (time.perf_counter() - started) * 1000 / len(queries)
    systems[f"method, re-rank top {CANDIDATES}"] = score_rankings(records, queries, ranked).row()
    systems[f"method, re-rank top {CANDIDATES}, text only"] = score_rankings(
        records, queries, rerank(bare, candidates, text_only)
    ).row()
    systems[f"method, re-rank top {CANDIDATES}, no entity evidence"] = score_rankings(
        records,
        queries,
        rerank(features, candidates, replace(weights, entities=0, mismatch=0, year_mismatch=0)),
    ).row()
    folded = [
        rank_related(features[q], [features[i] for i in pool], limit=10, stats=stats)
        for q, pool in zip(queries, candidates, strict=True)
    ]
    systems[f"method, re-rank top {CANDIDATES}, copies folded"] = score_folded(
        records, queries, folded
    ).row()
    if over_all:
        everyone = [[i for i in range(len(records)) if i != q] for q in queries]
        systems["method, re-rank all"] = score_rankings(
            records, queries, rerank(features, everyone, weights)
        ).row()
        systems["method, re-rank all, text only"] = score_rankings(
            records, queries, rerank(bare, everyone, text_only)
        ).row()

    results["cost_ms"] = {
        "features_per_story": ingest_ms,
        "bm25_retrieval_per_query": retrieve_ms,
        f"rank_{CANDIDATES}_candidates": rank_ms,
    }
    results["features_json_bytes"] = json_bytes
    print(f"\n{name}: {len(records)} articles, {len(queries)} queries (events of {MIN_EVENT}+)")
    print(f"{'system':<48} {'P@5':>6} {'R@10':>6} {'MRR':>6} {'top5 err':>9} {'sibling':>8}")
    for system, row in systems.items():
        print(
            f"{system:<48} {row['P@5']:>6.3f} {row['R@10']:>6.3f} {row['MRR']:>6.3f}"
            f" {row['top5_errors']:>9} {row['top5_sibling_errors']:>8}"
        )
    print(f"candidate recall@{CANDIDATES}: {results['candidate_recall@50']:.3f}")
    print(
        f"cost: features {ingest_ms:.2f} ms/story (~{json_bytes / 1024:.1f} KiB JSON), "
        f"rank {CANDIDATES} candidates {rank_ms:.2f} ms/query, "
        f"BM25 mimic {retrieve_ms:.2f} ms/query (not the store's cost)"
    )
    return results


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(results)
    metrics = ["P@5", "R@10", "MRR"]
    fig, axes = plt.subplots(1, len(sets), figsize=(7 * len(sets), 6.5), squeeze=False)
    for ax, name in zip(axes[0], sets, strict=True):
        systems = results[name]["systems"]
        width = 0.8 / len(systems)
        for n, (system, row) in enumerate(systems.items()):
            xs = [m + n * width for m in range(len(metrics))]
            ax.bar(xs, [row[m] for m in metrics], width, label=system)
        ax.set_xticks([m + 0.4 - width / 2 for m in range(len(metrics))], metrics)
        lowest = min(row[m] for row in systems.values() for m in metrics)
        ax.set_ylim(max(0.0, lowest - 0.1), 1.0)
        ax.set_title(f"{name} ({results[name]['queries']} queries)")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    default = Path(__file__).resolve().parents[2] / "shared" / "eval"
    parser.add_argument("--data-dir", type=Path, default=default)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--all",
        action="store_true",
        help="also re-rank over all articles for sets above 1,000 articles (minutes)",
    )
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    for name, filename in DATA_FILES.items():
        records = load(args.data_dir / filename)
        results[name] = evaluate(name, records, args.all or len(records) <= 1000)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "related.json").write_text(json.dumps(results, indent=2) + "\n")
    chart(results, args.out / "related.png")
    print(f"\nwrote {args.out / 'related.json'} and {args.out / 'related.png'}")


if __name__ == "__main__":
    main()

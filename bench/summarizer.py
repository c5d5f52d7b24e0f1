"""Summarizer speed: `python -m bench.summarizer [--articles 200] [--rounds 3]`.

Milliseconds per article of the whole `summarize(text)` call (clean, split, select) for every
algorithm in summarize.summarizers.ALGORITHMS, on the same texts, and each one's ratio to
stock sumy LexRank measured in the same run. Texts: BBC News articles from
../shared/eval/bbc_news_summary.jsonl when present (real news, every k-th record), and
synthetic 3 KB stories from bench.store's generator (what the other benchmarks store).
Rounds interleave the algorithms; the table shows the median over rounds of the mean.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from bench.common import JSON, REPO, BenchResult, Row, median, pyplot, report

NAME: Final = "summarizer"
BBC: Final = REPO.parent / "shared" / "eval" / "bbc_news_summary.jsonl"
BASELINE: Final = "lexrank"


def bbc_texts(count: int) -> list[str]:
    if not BBC.exists() or count <= 0:
        return []
    lines = [line for line in BBC.read_text(encoding="utf-8").splitlines() if line.strip()]
    chosen = [lines[k * len(lines) // count] for k in range(min(count, len(lines)))]
    return [str(json.loads(line)["text"]) for line in chosen]


def synthetic_texts(count: int, seed: int) -> list[str]:
    from bench.store import synthetic_story

    rng = random.Random(seed)
    return [synthetic_story(i, rng).cleaned_text for i in range(count)]


def _time_all(algorithm: str, texts: Sequence[str], sentences: int) -> list[float]:
    from summarize.summarizers import summarize

    samples = []
    for text in texts:
        began = time.perf_counter()
        summarize(text, algorithm=algorithm, sentences=sentences)
        samples.append(time.perf_counter() - began)
    return samples


def run(*, articles: int = 200, rounds: int = 3, sentences: int = 3, seed: int = 7) -> BenchResult:
    from summarize.summarizers import ALGORITHMS, DEFAULT_ALGORITHM, summarize

    corpora = {"bbc": bbc_texts(articles), "synthetic": synthetic_texts(articles, seed)}
    corpora = {name: texts for name, texts in corpora.items() if texts}
    names = list(ALGORITHMS)
    data: JSON = {"articles": articles, "rounds": rounds, "sentences": sentences, "corpora": {}}
    result = BenchResult(NAME)
    for corpus, texts in corpora.items():
        print(f"summarizer: {len(texts)} {corpus} texts, {len(names)} algorithms x {rounds}...")
        for name in names:  # warm caches: sumy imports, punkt tables, stemmers
            summarize(texts[0], algorithm=name, sentences=sentences)
        means: dict[str, list[float]] = {name: [] for name in names}
        p50s: dict[str, list[float]] = {name: [] for name in names}
        for round_index in range(rounds):
            order = names[round_index % len(names) :] + names[: round_index % len(names)]
            for name in order:
                samples = _time_all(name, texts, sentences)
                means[name].append(1000 * sum(samples) / len(samples))
                p50s[name].append(1000 * median(samples))
        base = median(means[BASELINE])
        data["corpora"][corpus] = {
            "texts": len(texts),
            "mean_chars": round(sum(map(len, texts)) / len(texts)),
            "algorithms": {
                name: {
                    "ms_per_article": round(median(means[name]), 3),
                    "p50_ms": round(median(p50s[name]), 3),
                    "ratio_to_lexrank": round(median(means[name]) / base, 3),
                    "rounds_ms": [round(m, 3) for m in means[name]],
                }
                for name in names
            },
        }
        for name in names:
            stats = data["corpora"][corpus]["algorithms"][name]
            label = f"{name} (default)" if name == DEFAULT_ALGORITHM else name
            result.rows.append(
                Row(
                    bench=f"summarizer {label}",
                    size=f"{len(texts)} {corpus}",
                    metric="ms/article",
                    value=stats["ms_per_article"],
                    unit="ms",
                    note=f"{stats['ratio_to_lexrank']:.2f}x sumy LexRank; "
                    f"p50 {stats['p50_ms']:.2f} ms",
                )
            )
    result.data = data
    return result


def plot(result: BenchResult, path: Path) -> None:
    plt = pyplot()
    corpora = list(result.data["corpora"])
    if not corpora:
        return
    names = list(result.data["corpora"][corpora[0]]["algorithms"])
    figure, axis = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(corpora)
    for i, corpus in enumerate(corpora):
        stats = result.data["corpora"][corpus]["algorithms"]
        axis.bar(
            [x + i * width for x in range(len(names))],
            [stats[name]["ms_per_article"] for name in names],
            width,
            label=f"{corpus} ({result.data['corpora'][corpus]['mean_chars']} chars avg)",
        )
    axis.set_xticks([x + width * (len(corpora) - 1) / 2 for x in range(len(names))])
    axis.set_xticklabels(names, rotation=30, ha="right")
    axis.set_ylabel("ms per article (summarize: clean + split + select)")
    axis.set_title("Summarizer speed, same texts for every algorithm")
    axis.legend()
    axis.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.summarizer", description=__doc__)
    parser.add_argument("--articles", type=int, default=200, help="texts per corpus")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sentences", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    result = run(
        articles=args.articles, rounds=args.rounds, sentences=args.sentences, seed=args.seed
    )
    report(result, write=not args.no_write)


if __name__ == "__main__":
    main()

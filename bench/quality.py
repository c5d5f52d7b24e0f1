"""Summary quality vs speed for every registered algorithm on the BBC News Summary set.

    python -m bench.quality [--limit 300] [--sentences 3] [--data PATH] [--algorithms a,b]

Columns: ROUGE-1/2/Lsum F1 x 100 against the set's extractive references (rouge-score,
stemming, as in shared/eval/README.md), two lead-leaning proxies for human highlights, and
milliseconds per document for the whole `summarize(text)` call (clean, split, select).

The BBC references are long and centrality-friendly; human highlights lean on the lead. The
proxies stand in for the held-out human set we cannot see here:
  R2-first3  ROUGE-2 F1 against the first three reference sentences in article order,
  R1-title   ROUGE-1 recall of the article's human-written headline.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from summarize.summarizers import ALGORITHMS, DEFAULT_ALGORITHM, summarize

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "eval" / "bbc_news_summary.jsonl"
DEFAULT_OUT = REPO / "bench" / "out"


@dataclass(frozen=True)
class Record:
    id: str
    title: str
    text: str
    references: list[str]


@dataclass(frozen=True)
class Result:
    algorithm: str
    rouge1: float
    rouge2: float
    rougeLsum: float  # the metric's own name, as rouge-score spells it
    r2_first3: float
    r1_title_recall: float
    ms_per_doc: float


def load_records(path: Path, limit: int | None) -> list[Record]:
    """Every record, or `limit` of them at an even stride so all five categories appear."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if limit is not None and 0 < limit < len(lines):
        lines = [lines[index * len(lines) // limit] for index in range(limit)]
    records = []
    for line in lines:
        raw = json.loads(line)
        records.append(
            Record(raw["id"], raw.get("title", ""), raw["text"], list(raw["reference_sentences"]))
        )
    return records


def _first_in_article_order(record: Record, count: int) -> list[str]:
    def position(sentence: str) -> int:
        found = record.text.find(sentence)
        return found if found >= 0 else len(record.text)

    return sorted(record.references, key=position)[:count]


def evaluate(records: Sequence[Record], algorithm: str, sentences: int) -> Result:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"], use_stemmer=True)
    scores: dict[str, list[float]] = {
        key: [] for key in ("rouge1", "rouge2", "rougeLsum", "first3", "title")
    }
    elapsed = 0.0
    summarize(records[0].text, algorithm=algorithm, sentences=sentences)  # warm caches
    for record in records:
        started = time.perf_counter()
        summary = summarize(record.text, algorithm=algorithm, sentences=sentences)
        elapsed += time.perf_counter() - started
        prediction = "\n".join(summary)
        full = scorer.score("\n".join(record.references), prediction)
        for key in ("rouge1", "rouge2", "rougeLsum"):
            scores[key].append(full[key].fmeasure)
        first3 = "\n".join(_first_in_article_order(record, 3))
        scores["first3"].append(scorer.score(first3, prediction)["rouge2"].fmeasure)
        if record.title:
            scores["title"].append(scorer.score(record.title, prediction)["rouge1"].recall)

    def mean(key: str) -> float:
        return round(100 * statistics.fmean(scores[key]), 2) if scores[key] else 0.0

    return Result(
        algorithm=algorithm,
        rouge1=mean("rouge1"),
        rouge2=mean("rouge2"),
        rougeLsum=mean("rougeLsum"),
        r2_first3=mean("first3"),
        r1_title_recall=mean("title"),
        ms_per_doc=round(1000 * elapsed / len(records), 2),
    )


def format_table(results: Sequence[Result]) -> str:
    header = "| system | R1 | R2 | RLsum | R2-first3 | R1-title | ms/doc |"
    lines = [header, "|---|---|---|---|---|---|---|"]
    for r in results:
        name = f"**{r.algorithm}** (default)" if r.algorithm == DEFAULT_ALGORITHM else r.algorithm
        lines.append(
            f"| {name} | {r.rouge1:.1f} | {r.rouge2:.1f} | {r.rougeLsum:.1f} | "
            f"{r.r2_first3:.1f} | {r.r1_title_recall:.1f} | {r.ms_per_doc:.2f} |"
        )
    return "\n".join(lines)


def plot(results: Sequence[Result], path: Path, sentences: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    figure, axes = plt.subplots(figsize=(8, 5))
    for r in results:
        marker = "*" if r.algorithm == DEFAULT_ALGORITHM else "o"
        axes.scatter(r.ms_per_doc, r.rouge2, s=160 if marker == "*" else 50, marker=marker)
        axes.annotate(r.algorithm, (r.ms_per_doc, r.rouge2), textcoords="offset points",
                      xytext=(5, 4), fontsize=8)  # fmt: skip
    lead = next((r for r in results if r.algorithm == "lead"), None)
    if lead is not None:
        axes.axhline(lead.rouge2, linestyle="--", linewidth=0.8, color="grey")
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(ScalarFormatter())
    axes.xaxis.set_minor_formatter(ScalarFormatter())
    axes.set_xlabel("ms per document (clean + split + select, log scale)")
    axes.set_ylabel(f"ROUGE-2 F1 x 100, {sentences} sentences")
    axes.set_title("BBC News Summary: quality vs speed (dashed: Lead)")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=300, help="records at an even stride; 0: all")
    parser.add_argument("--sentences", type=int, default=3)
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"no evaluation data at {args.data}", file=sys.stderr)
        return 1
    names = [name.strip() for name in args.algorithms.split(",") if name.strip()]
    unknown = [name for name in names if name not in ALGORITHMS]
    if unknown:
        parser.error(f"unknown algorithms: {', '.join(unknown)}")
    records = load_records(args.data, args.limit or None)
    results = []
    for name in names:
        results.append(evaluate(records, name, args.sentences))
        print(f"  {name}: done", file=sys.stderr)
    table = format_table(results)
    print(f"{len(records)} documents, {args.sentences} sentences, data {args.data}")
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "data": str(args.data),
        "documents": len(records),
        "sentences": args.sentences,
        "default": DEFAULT_ALGORITHM,
        "results": [asdict(r) for r in results],
    }
    (args.out / "quality.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    plot(results, args.out / "quality.png", args.sentences)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

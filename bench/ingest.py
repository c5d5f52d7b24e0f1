"""Ingest throughput of `newsbot seed`: `python -m bench.ingest [--sizes 1k,10k] [--workers 1,2]`.

Writes `n` synthetic articles (bench.store's generator, fixed seed: about 3 KB of text and
0-4 related links each) as one JSONL file, then runs the real command

    newsbot seed --quiet --workers W FILE

in a fresh process with a fresh database, summaries included (the default algorithm). The
clock covers the whole command, interpreter start and process-pool start included; "fixed
cost" is the same command on a 10-story file, the part that does not scale with input.
Peak RSS is the largest high-water mark (VmHWM) of the seed process and every process under
it (the pool's forkserver and workers), and CPU seconds are summed over them all, both read
from /proc every 50 ms while the command runs.

A 10k-story JSONL is about 34 MB, over MAX_DOCUMENT_BYTES' 5 MB default, so the command runs
with MAX_DOCUMENT_BYTES=200000000 (`--layout shards` writes 1,000-story files instead and
seeds the folder). Target: 200 stories/s with the default workers (one per core; other
counts show the scaling); memory flat from 1k to 10k stories.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from bench.common import (
    CACHE_DIR,
    JSON,
    BenchResult,
    Row,
    db_bytes,
    median,
    parse_sizes,
    pyplot,
    report,
    size_label,
)

NAME: Final = "ingest"
TARGET_PER_S: Final = 200.0
# What `newsbot seed` runs without --workers: the process pool's default, one per core.
DEFAULT_WORKERS: Final = os.cpu_count() or 1
SHARD: Final = 1000
NEWSBOT: Final = Path(sys.executable).with_name("newsbot")


def _record(i: int, rng: random.Random) -> JSON:
    from bench.store import synthetic_story

    story = synthetic_story(i, rng)
    return {
        "title": story.title,
        "text": story.cleaned_text,
        "url": story.url,
        "source": story.source,
        "published_at": story.published_at.isoformat() if story.published_at else None,
        "language": "en",
        "related": [
            {"title": link.title, "url": link.url, "snippet": link.snippet} for link in story.links
        ],
    }


def articles(n: int, seed: int, layout: str) -> Path:
    """A JSONL file (layout "file") or a folder of 1,000-story JSONL files, cached."""
    target = CACHE_DIR / (f"articles-{n}-seed{seed}" + ("" if layout == "shards" else ".jsonl"))
    if target.exists():
        return target
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    lines = [json.dumps(_record(i, rng), ensure_ascii=False) for i in range(n)]
    partial = target.with_name(target.name + ".partial")
    if layout == "shards":
        partial.mkdir(exist_ok=True)
        for start in range(0, n, SHARD):
            chunk = "\n".join(lines[start : start + SHARD]) + "\n"
            (partial / f"part-{start // SHARD:04d}.jsonl").write_text(chunk, encoding="utf-8")
    else:
        partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    partial.rename(target)
    return target


def input_bytes(path: Path) -> int:
    if path.is_dir():
        return sum(child.stat().st_size for child in path.iterdir())
    return path.stat().st_size


class _TreeWatch:
    """Peak RSS and CPU time of a process and all its descendants, sampled from /proc.

    wait4() counts only the children a process waits for, and the pool's workers are children
    of multiprocessing's forkserver, which nobody waits for.
    """

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak_kb = 0
        self._cpu: dict[int, float] = {}
        self._tick = os.sysconf("SC_CLK_TCK")

    @property
    def cpu_seconds(self) -> float:
        return sum(self._cpu.values())

    def sample(self) -> None:
        for pid in self._tree():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue  # it exited meanwhile; its last sample stands
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_kb = max(self.peak_kb, int(line.split()[1]))
            fields = stat.rsplit(")", 1)[1].split()
            self._cpu[pid] = (int(fields[11]) + int(fields[12])) / self._tick

    def _tree(self) -> list[int]:
        parents: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(parent, []).append(int(entry.name))
        found, queue = [self.root], [self.root]
        while queue:
            children = parents.get(queue.pop(), [])
            found.extend(children)
            queue.extend(children)
        return found


def seed_once(
    source: Path,
    workers: int,
    *,
    algorithm: str | None = None,
    database: dict[str, str] | None = None,
) -> JSON:
    """One `newsbot seed`: wall seconds, peak RSS, what it reported.

    Into a fresh SQLite file, unless `database` names another (DATABASE_PATH or DATABASE_URL).
    """
    with tempfile.TemporaryDirectory(prefix="newsbot-bench-ingest-") as scratch:
        env = {
            **os.environ,
            "DATABASE_PATH": str(Path(scratch) / "seed.db"),
            "LOG_LEVEL": "WARNING",
            "MAX_DOCUMENT_BYTES": "200000000",
            **(database or {}),
        }
        env.pop("BOT_TOKEN", None)
        if algorithm:
            env["SUMMARY_ALGORITHM"] = algorithm
        command = [str(NEWSBOT), "seed", "--quiet", "--workers", str(workers), str(source)]
        began = time.perf_counter()
        # cwd is the scratch folder so no .env of the repo is read.
        process = subprocess.Popen(  # noqa: S603  (our own command line)
            command, cwd=scratch, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        tree = _TreeWatch(process.pid)
        while process.poll() is None:
            tree.sample()
            time.sleep(0.05)
        elapsed = time.perf_counter() - began
        out = (process.stdout.read() if process.stdout else b"").decode()
        err = (process.stderr.read() if process.stderr else b"").decode()
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {process.returncode}: {out}{err}")
        added = int(out.split("added ", 1)[1].split(",", 1)[0])
        return {
            "seconds": round(elapsed, 3),
            "added": added,
            "per_s": round(added / elapsed, 1),
            "peak_rss_mb": round(tree.peak_kb / 1024, 1),
            "cpu_s": round(tree.cpu_seconds, 2),
            "db_bytes": db_bytes(Path(env["DATABASE_PATH"])) if "DATABASE_URL" not in env else None,
        }


def run(
    sizes: Sequence[int],
    *,
    workers: Sequence[int] = (1, 2),
    rounds: int = 1,
    seed: int = 7,
    layout: str = "file",
) -> BenchResult:
    result = BenchResult(NAME)
    data: JSON = {"layout": layout, "rounds": rounds, "sizes": {}, "fixed_cost": {}}
    tiny = articles(10, seed, "file")
    for w in workers:
        runs = [seed_once(tiny, w) for _ in range(3)]
        data["fixed_cost"][str(w)] = {
            "seconds": median([r["seconds"] for r in runs]),
            "peak_rss_mb": median([r["peak_rss_mb"] for r in runs]),
        }
    for n in sizes:
        source = articles(n, seed, layout)
        data["sizes"][str(n)] = {"input_bytes": input_bytes(source), "workers": {}}
        for w in workers:
            print(f"ingest: newsbot seed of {size_label(n)} articles, --workers {w} x {rounds}...")
            runs = [seed_once(source, w) for _ in range(rounds)]
            if any(r["added"] != n for r in runs):
                raise RuntimeError(f"seed of {n} added {[r['added'] for r in runs]}")
            data["sizes"][str(n)]["workers"][str(w)] = runs
            rate = median([r["per_s"] for r in runs])
            fixed = data["fixed_cost"][str(w)]["seconds"]
            seconds = median([r["seconds"] for r in runs])
            net = n / max(seconds - fixed, 1e-9)
            # CPU time barely moves with the machine's load, where wall time does.
            cpu_ms = median([r["cpu_s"] for r in runs]) / n * 1000
            note = (
                f"{seconds:.1f} s; {net:.0f}/s without the {fixed:.1f} s fixed cost; "
                f"{cpu_ms:.1f} ms of CPU a story, start-up included"
            )
            # The target is the command's as it ships (one worker per core); other worker
            # counts show how it scales.
            judged = w == DEFAULT_WORKERS
            result.rows.append(
                Row(
                    bench=f"ingest seed --workers {w}",
                    size=size_label(n),
                    metric="stories/s",
                    value=rate,
                    unit="/s",
                    target=f">= {TARGET_PER_S:g}" if judged else "",
                    ok=rate >= TARGET_PER_S if judged else None,
                    note=note
                    if judged
                    else f"{note}; the target is for the default, {DEFAULT_WORKERS} workers",
                )
            )
        if len(workers) > 1 and 1 in workers:
            one = median([r["per_s"] for r in data["sizes"][str(n)]["workers"]["1"]])
            for w in workers:
                if w == 1:
                    continue
                other = median([r["per_s"] for r in data["sizes"][str(n)]["workers"][str(w)]])
                result.rows.append(
                    Row(
                        bench=f"ingest scaling 1 -> {w} workers",
                        size=size_label(n),
                        metric="speed-up",
                        value=other / one,
                        unit="x",
                        note=f"ideal {w}x",
                    )
                )
    for n in sizes:
        for w in workers:
            runs = data["sizes"][str(n)]["workers"][str(w)]
            result.rows.append(
                Row(
                    bench=f"memory seed --workers {w}",
                    size=size_label(n),
                    metric="peak RSS",
                    value=median([r["peak_rss_mb"] for r in runs]),
                    unit="MB",
                    target="flat in n",
                    note="max of the seed process and its workers",
                )
            )
    _judge_flat(result, sizes, workers)
    result.data = data
    return result


def _judge_flat(result: BenchResult, sizes: Sequence[int], workers: Sequence[int]) -> None:
    """Flat: the largest size's peak within 25% (or 15 MB) of the smallest's."""
    if len(sizes) < 2:
        return
    small, large = str(min(sizes)), str(max(sizes))
    for row in result.rows:
        if not row.bench.startswith("memory seed"):
            continue
        w = row.bench.rsplit(" ", 1)[-1]
        if row.size != size_label(int(large)):
            continue
        base = next(
            r.value
            for r in result.rows
            if r.bench == row.bench and r.size == size_label(int(small))
        )
        row.ok = row.value <= max(base * 1.25, base + 15)
        row.note += f"; {row.value / base:.2f}x the {size_label(int(small))} peak (workers {w})"


def plot(result: BenchResult, path: Path) -> None:
    plt = pyplot()
    sizes = list(result.data["sizes"])
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    workers = list(result.data["sizes"][sizes[0]]["workers"]) if sizes else []
    width = 0.8 / max(len(workers), 1)
    for i, w in enumerate(workers):
        xs = [x + i * width for x in range(len(sizes))]
        runs = [result.data["sizes"][s]["workers"][w] for s in sizes]
        left.bar(
            xs, [median([r["per_s"] for r in rs]) for rs in runs], width, label=f"--workers {w}"
        )
        right.bar(
            xs,
            [median([r["peak_rss_mb"] for r in rs]) for rs in runs],
            width,
            label=f"--workers {w}",
        )
    for axis, label in ((left, "stories per second"), (right, "peak RSS, MB")):
        axis.set_xticks([x + width * (len(workers) - 1) / 2 for x in range(len(sizes))])
        axis.set_xticklabels([f"{size_label(int(s))} articles" for s in sizes])
        axis.set_ylabel(label)
        axis.legend(fontsize=8)
        axis.grid(True, axis="y", alpha=0.3)
    left.axhline(TARGET_PER_S, color="red", linestyle="--", linewidth=0.8)
    figure.suptitle("newsbot seed: throughput and memory (dashed: target)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--sizes", default="1k,10k")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--layout", choices=("file", "shards"), default="file")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    result = run(
        parse_sizes(args.sizes),
        workers=[int(w) for w in args.workers.split(",")],
        rounds=args.rounds,
        seed=args.seed,
        layout=args.layout,
    )
    report(result, write=not args.no_write)


if __name__ == "__main__":
    main()

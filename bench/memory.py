"""Serving memory, start-up time and database size: `python -m bench.memory [--sizes 1k,10k,100k]`.

For each corpus size, `--rounds` fresh processes each:
  1. start the bot as production does, minus the network: open the store, build the app
     (RecordingRequest for HTTP), initialize, post_init ("start-up", timed);
  2. answer `--commands` updates through Application.process_update (/latest and its Older
     button, /story, /related by id and by words, /search, /help in turn);
  3. report VmHWM from /proc/self/status (peak RSS), VmRSS after start-up, and the time from
     process launch to ready (imports included).
Also: database bytes per 1,000 stories of the cached corpora. The memory of `newsbot seed`
(1k vs 10k) is measured by bench.ingest, whose rows appear in the same table.
Targets: peak RSS < 200 MB serving 100k stories.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from bench.common import (
    JSON,
    REPO,
    BenchResult,
    Row,
    corpus_db,
    db_bytes,
    median,
    parse_sizes,
    pyplot,
    report,
    size_label,
    working_copy,
)

NAME: Final = "memory"
TARGET_RSS_MB: Final = 200.0
TARGET_SIZE: Final = 100_000


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _serve(database: Path, n: int, commands: int, seed: int) -> JSON:
    """Inside the child: start the bot over the database and answer `commands` updates."""
    from telegram import Update

    from bench.common import RecordingRequest, Updates, bench_settings, make_app, quiet_logging
    from bench.common import typed_queries as queries

    errors = quiet_logging()
    imported_mb = _status_mb("VmRSS")
    began = time.perf_counter()
    request = RecordingRequest()
    app = make_app(bench_settings(database), request)
    await app.initialize()
    assert app.post_init is not None
    await app.post_init(app)
    await app.start()
    startup_s = time.perf_counter() - began
    ready_at = time.time()
    started_mb = _status_mb("VmRSS")
    rng = random.Random(seed)
    words = queries(seed, commands)
    updates = Updates()
    older: tuple[JSON, str] | None = None
    first_command_s = 0.0
    try:
        for k in range(commands):
            kind = k % 7
            if kind == 1 and older is not None:
                data = updates.press(*older)
            elif kind in (0, 1):
                data = updates.message("/latest")
            elif kind == 2:
                data = updates.message(f"/story {rng.randint(1, n)}")
            elif kind == 3:
                data = updates.message(f"/related {rng.randint(1, n)}")
            elif kind == 4:
                data = updates.message(f"/related {words[k]}")
            elif kind == 5:
                data = updates.message(f"/search {words[k]}")
            else:
                data = updates.message("/help")
            one = time.perf_counter()
            await app.process_update(Update.de_json(data, app.bot))
            if k == 0:
                first_command_s = time.perf_counter() - one
            message = request.last_message or {}
            for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
                for button in row:
                    if str(button.get("callback_data", "")).startswith("l:o:"):
                        older = (message, str(button["callback_data"]))
    finally:
        await app.stop()
        await app.shutdown()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)
    if errors.count:
        raise RuntimeError(f"{errors.count} handler errors, first: {errors.first}")
    return {
        "startup_s": round(startup_s, 4),
        "first_command_ms": round(1000 * first_command_s, 2),
        "ready_at": ready_at,
        "imported_rss_mb": round(imported_mb, 1),
        "started_rss_mb": round(started_mb, 1),
        "peak_rss_mb": round(_status_mb("VmHWM"), 1),
        "final_rss_mb": round(_status_mb("VmRSS"), 1),
        "commands": commands,
    }


def serve_once(database: Path, n: int, commands: int, seed: int) -> JSON:
    """One fresh process serving the database; its own report plus time from launch."""
    command = [
        sys.executable, "-m", "bench.memory", "--child", str(database),
        "--child-n", str(n), "--commands", str(commands), "--seed", str(seed),
    ]  # fmt: skip
    launched = time.time()
    done = subprocess.run(  # noqa: S603  (our own command line)
        command, cwd=REPO, capture_output=True, text=True, check=False, env=dict(os.environ)
    )
    if done.returncode != 0:
        raise RuntimeError(f"serving child failed: {done.stderr[-2000:]}")
    measured: JSON = json.loads(done.stdout.strip().splitlines()[-1])
    measured["launch_to_ready_s"] = round(measured.pop("ready_at") - launched, 3)
    return measured


def run(
    sizes: Sequence[int], *, commands: int = 300, rounds: int = 3, seed: int = 7
) -> BenchResult:
    result = BenchResult(NAME)
    data: JSON = {"commands": commands, "rounds": rounds, "sizes": {}}
    for n in sizes:
        database = corpus_db(n, seed)
        print(f"memory: serving {size_label(n)} stories, {rounds} processes x {commands}...")
        runs = []
        for _ in range(rounds):
            with working_copy(database) as copy:
                runs.append(serve_once(copy, n, commands, seed))
        size = db_bytes(database)
        data["sizes"][str(n)] = {"db_bytes": size, "runs": runs}
        peak = median([r["peak_rss_mb"] for r in runs])
        judged = n >= TARGET_SIZE
        result.rows.append(
            Row(
                bench="memory serving",
                size=size_label(n),
                metric="peak RSS",
                value=peak,
                unit="MB",
                target=f"< {TARGET_RSS_MB:g} at 100k",
                ok=(peak < TARGET_RSS_MB) if judged else None,
                note=f"after imports {median([r['imported_rss_mb'] for r in runs]):.0f}, "
                f"after start-up {median([r['started_rss_mb'] for r in runs]):.0f} MB; "
                f"{commands} commands",
            )
        )
        result.rows.append(
            Row(
                bench="start-up (store+app+post_init)",
                size=size_label(n),
                metric="time",
                value=1000 * median([r["startup_s"] for r in runs]),
                unit="ms",
                note=f"launch to ready {median([r['launch_to_ready_s'] for r in runs]):.2f} s; "
                f"first command {median([r['first_command_ms'] for r in runs]):.1f} ms",
            )
        )
        result.rows.append(
            Row(
                bench="database size",
                size=size_label(n),
                metric="per 1k stories",
                value=size / 2**20 / (n / 1000),
                unit="MiB",
                note=f"{size / 2**20:,.0f} MiB in all",
            )
        )
    result.data = data
    return result


def plot(result: BenchResult, path: Path, seed_rows: Sequence[Row] = ()) -> None:
    plt = pyplot()
    sizes = list(result.data["sizes"])
    figure, axis = plt.subplots(figsize=(8, 4.5))
    labels = [f"serve {size_label(int(s))}" for s in sizes]
    values = [median([r["peak_rss_mb"] for r in result.data["sizes"][s]["runs"]]) for s in sizes]
    for row in seed_rows:
        labels.append(f"{row.bench.removeprefix('memory ')} {row.size}")
        values.append(row.value)
    axis.bar(range(len(values)), values, color=["C0"] * len(sizes) + ["C1"] * len(seed_rows))
    axis.axhline(TARGET_RSS_MB, color="red", linestyle="--", linewidth=0.8)
    axis.set_xticks(range(len(values)))
    axis.set_xticklabels(labels, rotation=25, ha="right", fontsize=8)
    axis.set_ylabel("peak RSS, MB")
    axis.set_title("Peak memory: serving (blue) and seeding (orange); dashed: serving target")
    axis.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--sizes", default="1k,10k")
    parser.add_argument("--commands", type=int, default=300, help="updates answered per process")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per size")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-n", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        measured = asyncio.run(_serve(args.child, args.child_n, args.commands, args.seed))
        print(json.dumps(measured))
        return
    result = run(
        parse_sizes(args.sizes), commands=args.commands, rounds=args.rounds, seed=args.seed
    )
    report(result, write=not args.no_write)


if __name__ == "__main__":
    main()

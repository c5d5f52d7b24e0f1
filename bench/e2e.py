"""End-to-end throughput over loopback: `python -m bench.e2e [--sizes 1k,10k] [--updates 2000]`.

The real bot (build_app, long polling, aiohttp, rate limiter off) talks over 127.0.0.1 to
tests/fake_bot_api.py's FakeBotAPI, which runs in its own process (as Telegram is not inside
the bot's). The server queues `--updates` commands from `--chats` private chats at once and
the clock stops when it has recorded a reply to every one: updates answered per second.

Two workloads: "mix" (/latest, /story <id>, /related <id>, /related <words>, /search <words>
in turn), and "/start" (no store, no NLP: the framework's own ceiling). Each burst runs
`--rounds` times after a warm-up; the table shows the median. "bot CPU ms/update" is the bot
process's CPU time per update, a steadier number than wall time on a shared machine.
Target: >= 300 updates/s on 2 cores. `--loop uvloop` runs the bot on uvloop's event loop
instead of asyncio's (uvloop is not a dependency: install it first).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import multiprocessing
import random
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Final

from bench.common import (
    JSON,
    TOKEN,
    BenchResult,
    Row,
    bench_settings,
    corpus_db,
    median,
    parse_sizes,
    pyplot,
    quiet_logging,
    report,
    size_label,
    typed_queries,
    working_copy,
)

NAME: Final = "e2e"
TARGET_PER_S: Final = 300.0
CHAT_BASE: Final = 5000
POLL: Final = 0.002
WARMUP: Final = 200
# Long enough for 10k updates on a slow machine; a stuck run fails instead of hanging.
BURST_LIMIT_S: Final = 300.0


def mix_texts(n_stories: int, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    queries = typed_queries(seed, count)
    words = typed_queries(seed + 1, count, (2, 3))
    texts = []
    for k in range(count):
        match k % 5:
            case 0:
                texts.append("/latest")
            case 1:
                texts.append(f"/story {rng.randint(1, n_stories)}")
            case 2:
                texts.append(f"/related {rng.randint(1, n_stories)}")
            case 3:
                texts.append(f"/related {words[k]}")
            case _:
                texts.append(f"/search {queries[k]}")
    return texts


# --- the server process -------------------------------------------------------------------


def server_process(conn: Connection, bursts: list[tuple[str, list[str]]], chats: int) -> None:
    """Entry point of the fake Bot API process (spawned)."""
    asyncio.run(_serve(conn, bursts, chats))


async def _serve(conn: Connection, bursts: list[tuple[str, list[str]]], chats: int) -> None:
    from tests.fake_bot_api import FakeBotAPI

    api = FakeBotAPI(token=TOKEN)
    conn.send(("url", await api.start()))
    try:
        # The bot has finished post_init once it has set its commands.
        while not api.of("setMyCommands"):  # noqa: ASYNC110  (the server has no event for it)
            await asyncio.sleep(POLL)
        for label, texts in bursts:
            conn.send(("begin", label))
            elapsed, facts = await _burst(api, texts, chats)
            conn.send(("end", label, elapsed, facts))
        conn.send(("done",))
        # Stay up until the bot has stopped polling, or its last getUpdates would fail.
        await asyncio.to_thread(conn.recv)
    finally:
        await api.close()


async def await_replies(api: Any, first: int, expected: int, began: float) -> JSON:
    """Wait until the fake Bot API has recorded `expected` sendMessage calls after call
    number `first`; count the good replies, the refused calls and the error replies."""
    counts = {"replies": 0, "rejected": 0, "failed": 0}
    seen = first
    while sum(counts.values()) < expected:
        calls = api.calls
        for call in calls[seen:]:
            if call.method != "sendMessage":
                continue
            if call.status != 200:
                counts["rejected"] += 1
            elif "something went wrong" in str(call.params.get("text", "")):
                counts["failed"] += 1
            else:
                counts["replies"] += 1
        seen = len(calls)
        if time.perf_counter() > began + BURST_LIMIT_S:
            raise TimeoutError(f"only {counts['replies']} of {expected} updates answered")
        if sum(counts.values()) < expected:
            await asyncio.sleep(POLL)
    return counts


async def _burst(api: Any, texts: list[str], chats: int) -> tuple[float, JSON]:
    first = len(api.calls)
    cpu_began = time.process_time()
    began = time.perf_counter()
    for index, text in enumerate(texts):
        api.push_message(text, user_id=CHAT_BASE + index % chats)
    counts = await await_replies(api, first, len(texts), began)
    elapsed = time.perf_counter() - began
    server_cpu_ms = 1000 * (time.process_time() - cpu_began) / len(texts)
    return elapsed, {**counts, "server_cpu_ms_per_update": round(server_cpu_ms, 3)}


# --- the bot process ----------------------------------------------------------------------


def _receive(conn: Connection, server: BaseProcess) -> Any:
    """The server's next message; an error, not a hang, if the server process died."""
    while not conn.poll(0.5):
        if not server.is_alive():
            raise RuntimeError(f"the fake Bot API process exited with {server.exitcode}")
    return conn.recv()


async def _drive_bot(
    conn: Connection, server: BaseProcess, database: Path
) -> list[tuple[str, float, float, JSON]]:
    """Run the bot until the server is done; per burst: label, wall s, bot CPU s, facts."""
    from bench.common import make_app
    from bot.app import running

    errors = quiet_logging()
    kind, url = await asyncio.to_thread(_receive, conn, server)
    assert kind == "url"
    app = make_app(bench_settings(database, api_url=url))
    results: list[tuple[str, float, float, JSON]] = []
    async with running(app):
        cpu_began = time.process_time()
        while True:
            message = await asyncio.to_thread(_receive, conn, server)
            if message[0] == "begin":
                cpu_began = time.process_time()
            elif message[0] == "end":
                _, label, elapsed, facts = message
                results.append((label, elapsed, time.process_time() - cpu_began, facts))
            else:
                break
    conn.send(("bye",))
    if errors.count:
        raise RuntimeError(f"{errors.count} errors in the bot, first: {errors.first}")
    return results


def loop_factory(loop: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop the bot runs on: None for asyncio's own."""
    if loop == "asyncio":
        return None
    # Imported by name: uvloop is optional, so it is not a dependency mypy can see.
    factory: Callable[[], asyncio.AbstractEventLoop] = importlib.import_module(loop).new_event_loop
    return factory


def measure_size(
    n: int, *, updates: int, chats: int, rounds: int, seed: int, loop: str = "asyncio"
) -> dict[str, list[JSON]]:
    database = corpus_db(n, seed)
    mix = mix_texts(n, updates, seed)
    bursts: list[tuple[str, list[str]]] = [("warmup", mix[:WARMUP])]
    for _ in range(rounds):
        bursts.append(("mix", mix))
        bursts.append(("/start", ["/start"] * updates))
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=server_process, args=(child, bursts, chats), daemon=True)
    server.start()
    try:
        with (
            working_copy(database) as copy,
            asyncio.Runner(loop_factory=loop_factory(loop)) as runner,
        ):
            results = runner.run(_drive_bot(parent, server, copy))
    finally:
        server.join(timeout=10)
        if server.is_alive():
            server.terminate()
    measured: dict[str, list[JSON]] = {}
    for label, elapsed, cpu, facts in results:
        if label == "warmup":
            continue
        if facts["rejected"] or facts["failed"]:
            raise RuntimeError(f"{label}: {facts}")
        measured.setdefault(label, []).append(
            {
                "seconds": round(elapsed, 4),
                "per_s": round(updates / elapsed, 1),
                "bot_cpu_ms_per_update": round(1000 * cpu / updates, 3),
                **facts,
            }
        )
    return measured


def run(
    sizes: Sequence[int],
    *,
    updates: int = 2000,
    chats: int = 100,
    rounds: int = 3,
    seed: int = 7,
    loop: str = "asyncio",
) -> BenchResult:
    result = BenchResult(NAME)
    data: JSON = {"updates": updates, "chats": chats, "rounds": rounds, "loop": loop, "sizes": {}}
    for n in sizes:
        print(
            f"e2e: {size_label(n)} stories, {updates} updates from {chats} chats x {rounds}"
            f" ({loop})..."
        )
        measured = measure_size(
            n, updates=updates, chats=chats, rounds=rounds, seed=seed, loop=loop
        )
        data["sizes"][str(n)] = measured
        for label, runs in measured.items():
            rate = median([r["per_s"] for r in runs])
            cpu = median([r["bot_cpu_ms_per_update"] for r in runs])
            server_cpu = median([r["server_cpu_ms_per_update"] for r in runs])
            result.rows.append(
                Row(
                    bench=f"e2e {label}",
                    size=size_label(n),
                    metric="updates/s",
                    value=rate,
                    unit="/s",
                    target=f">= {TARGET_PER_S:g}",
                    ok=rate >= TARGET_PER_S,
                    note=f"CPU ms/update: bot {cpu:.2f}, fake server {server_cpu:.2f}; runs "
                    + ", ".join(f"{r['per_s']:.0f}" for r in runs),
                )
            )
    result.data = data
    return result


def plot(result: BenchResult, path: Path) -> None:
    plt = pyplot()
    sizes = list(result.data["sizes"])
    labels = sorted({label for size in sizes for label in result.data["sizes"][size]})
    figure, axis = plt.subplots(figsize=(7, 4.5))
    width = 0.8 / max(len(labels), 1)
    for i, label in enumerate(labels):
        values = [
            median([r["per_s"] for r in result.data["sizes"][size].get(label, [])] or [0.0])
            for size in sizes
        ]
        axis.bar([x + i * width for x in range(len(sizes))], values, width=width, label=label)
    axis.axhline(TARGET_PER_S, color="red", linestyle="--", linewidth=0.8)
    axis.set_xticks([x + width * (len(labels) - 1) / 2 for x in range(len(sizes))])
    axis.set_xticklabels([f"{size_label(int(s))} stories" for s in sizes])
    axis.set_ylabel("updates answered per second")
    axis.set_title(f"End to end via fake Bot API, {result.data['chats']} chats (dashed: target)")
    axis.legend()
    axis.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__)
    parser.add_argument("--sizes", default="1k,10k")
    parser.add_argument("--updates", type=int, default=2000, help="updates per burst")
    parser.add_argument("--chats", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    result = run(
        parse_sizes(args.sizes),
        updates=args.updates,
        chats=args.chats,
        rounds=args.rounds,
        seed=args.seed,
        loop=args.loop,
    )
    report(result, write=not args.no_write)


if __name__ == "__main__":
    main()

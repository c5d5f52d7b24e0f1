"""Several bot workers in webhook mode: `python -m bench.workers [--workers 1,2] [--backends ...]`.

The scale-out set-up of README "Running at scale", on loopback: N worker processes, each the
real bot (build_app, PTB's webhook server, rate limiter off) over one shared database, and
one process playing Telegram: it POSTs updates round-robin to the workers' webhooks (as the
reverse proxy spreads them), with the secret token header and at most 40 requests in flight
(Telegram's default max_connections), and it is the Bot API the workers answer through
(tests/fake_bot_api.py). The clock stops when every update has its reply.

Backends: "sqlite" (all workers on one SQLite file in WAL mode) and "postgres" (a real
server started for the run by tests/pg_server.py, the corpus copied in with `newsbot db
copy`). The workload is bench.e2e's mix. On a 2-core machine the Telegram process, the
workers and PostgreSQL share the same two cores, so a second worker can only help as far
as there is idle CPU left.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
    quiet_logging,
    report,
    size_label,
    working_copy,
)
from bench.e2e import CHAT_BASE, POLL, await_replies, mix_texts

NAME: Final = "workers"
SECRET: Final = "bench-secret"  # noqa: S105  (a loopback-only webhook secret)
IN_FLIGHT: Final = 40
WARMUP: Final = 200


# --- the Telegram process: webhook client and fake Bot API --------------------------------


def telegram_process(conn: Connection, bursts: list[tuple[str, list[str]]], chats: int) -> None:
    """Entry point of the process playing Telegram (spawned)."""
    asyncio.run(_telegram(conn, bursts, chats))


async def _telegram(conn: Connection, bursts: list[tuple[str, list[str]]], chats: int) -> None:
    import aiohttp

    from tests.fake_bot_api import FakeBotAPI

    api = FakeBotAPI(token=TOKEN)
    conn.send(("url", await api.start()))
    try:
        hooks: list[str] = await asyncio.to_thread(conn.recv)
        # Each worker has finished post_init once it has set its commands.
        while len(api.of("setMyCommands")) < len(hooks):  # noqa: ASYNC110  (no event for it)
            await asyncio.sleep(POLL)
        async with aiohttp.ClientSession() as session:
            for label, texts in bursts:
                conn.send(("begin", label))
                elapsed, facts = await _burst(api, session, hooks, texts, chats)
                conn.send(("end", label, elapsed, facts))
        conn.send(("done",))
        await asyncio.to_thread(conn.recv)
    finally:
        await api.close()


async def _burst(
    api: Any, session: Any, hooks: list[str], texts: list[str], chats: int
) -> tuple[float, JSON]:
    first = len(api.calls)
    update_ids = itertools.count(len(api.calls) * 10 + 1)
    gate = asyncio.Semaphore(IN_FLIGHT)
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    refused = 0

    async def post(index: int, text: str) -> None:
        nonlocal refused
        update = {
            "update_id": next(update_ids),
            "message": api.message(text, user_id=CHAT_BASE + index % chats),
        }
        async with gate, session.post(hooks[index % len(hooks)], json=update, headers=headers) as r:
            refused += r.status != 200

    began = time.perf_counter()
    cpu_began = time.process_time()
    await asyncio.gather(*(post(i, text) for i, text in enumerate(texts)))
    counts = await await_replies(api, first, len(texts) - refused, began)
    elapsed = time.perf_counter() - began
    cpu_ms = 1000 * (time.process_time() - cpu_began) / len(texts)
    return elapsed, {**counts, "refused": refused, "telegram_cpu_ms_per_update": round(cpu_ms, 3)}


# --- a worker process ---------------------------------------------------------------------


def worker_process(api_url: str, store_url: str, port: int, ready: Any, stop: Any) -> None:
    """Entry point of one bot worker (spawned): serve the webhook until told to stop."""
    asyncio.run(_worker(api_url, store_url, port, ready, stop))


async def _worker(api_url: str, store_url: str, port: int, ready: Any, stop: Any) -> None:
    import socket

    from bench.common import make_app
    from bot.app import serve_webhook
    from storage.backend import is_postgres_url, sqlite_path

    errors = quiet_logging()
    where = (
        {"database_url": store_url}
        if is_postgres_url(store_url)
        else {"database_path": sqlite_path(store_url)}
    )
    hook = f"http://127.0.0.1:{port}/hook"
    settings = bench_settings(
        Path("unused.db"),
        api_url=api_url,
        webhook_url=hook,
        webhook_secret=SECRET,
        workers=2,  # several workers: none calls setWebhook, as in production
        **where,
    )
    # Listening before the app starts: updates posted early wait in the backlog.
    listener = socket.create_server(("127.0.0.1", port), backlog=512)
    listener.setblocking(False)  # tornado's accept loop needs it
    ready.set()
    stopped = asyncio.Event()

    async def wait_for_stop() -> None:
        await asyncio.to_thread(stop.wait)
        stopped.set()

    waiter = asyncio.create_task(wait_for_stop())
    await serve_webhook(make_app(settings), settings, stop=stopped, sock=listener)
    await waiter
    if errors.count:
        raise RuntimeError(f"{errors.count} errors in worker {port}, first: {errors.first}")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- one measurement ----------------------------------------------------------------------


def _receive(conn: Connection, process: BaseProcess) -> Any:
    while not conn.poll(0.5):
        if not process.is_alive():
            raise RuntimeError(f"the Telegram process exited with {process.exitcode}")
    return conn.recv()


def measure(
    store_url: str, n: int, workers: int, *, updates: int, chats: int, rounds: int, seed: int
) -> list[JSON]:
    """Bursts of the e2e mix through `workers` webhook workers over the store at store_url."""
    context = multiprocessing.get_context("spawn")
    mix = mix_texts(n, updates, seed)
    bursts: list[tuple[str, list[str]]] = [("warmup", mix[:WARMUP])]
    bursts += [("mix", mix)] * rounds
    parent, child = context.Pipe()
    telegram: BaseProcess = context.Process(
        target=telegram_process, args=(child, bursts, chats), daemon=True
    )
    telegram.start()
    stop = context.Event()
    procs: list[BaseProcess] = []
    measured: list[JSON] = []
    try:
        kind, api_url = _receive(parent, telegram)
        assert kind == "url"
        hooks = []
        for _ in range(workers):
            port = _free_port()
            ready = context.Event()
            proc = context.Process(
                target=worker_process, args=(api_url, store_url, port, ready, stop), daemon=True
            )
            proc.start()
            procs.append(proc)
            if not ready.wait(120):
                raise RuntimeError("a worker did not start within 120 s")
            hooks.append(f"http://127.0.0.1:{port}/hook")
        parent.send(hooks)
        while True:
            message = _receive(parent, telegram)
            if message[0] == "end" and message[1] != "warmup":
                _, _, elapsed, facts = message
                if facts["failed"] or facts["rejected"] or facts["refused"]:
                    raise RuntimeError(f"{workers} workers: {facts}")
                measured.append(
                    {"seconds": round(elapsed, 4), "per_s": round(updates / elapsed, 1), **facts}
                )
            elif message[0] == "done":
                break
    finally:
        stop.set()
        for worker in procs:
            worker.join(timeout=20)
            if worker.is_alive():
                worker.terminate()
        if telegram.is_alive():
            parent.send("bye")
            telegram.join(timeout=10)
            if telegram.is_alive():
                telegram.terminate()
    bad = [proc.exitcode for proc in procs if proc.exitcode]
    if bad:
        raise RuntimeError(f"workers exited with {bad}")
    return measured


# --- the databases ------------------------------------------------------------------------


@contextmanager
def sqlite_store(n: int, seed: int) -> Iterator[str]:
    from storage.backend import sqlite_url

    with working_copy(corpus_db(n, seed)) as copy:
        yield sqlite_url(copy)


@contextmanager
def postgres_store(n: int, seed: int) -> Iterator[str]:
    """A PostgreSQL server for the run, holding a copy of the n-story corpus."""
    from bot.cli_db import copy_stories
    from storage.backend import sqlite_url
    from tests.pg_server import start_server

    source = corpus_db(n, seed)
    server = start_server()
    try:
        print(f"  copying the {size_label(n)} corpus into PostgreSQL ({server.how})...")
        began = time.perf_counter()
        asyncio.run(copy_stories(sqlite_url(source), server.url))
        print(f"  copied in {time.perf_counter() - began:.0f} s")
        yield server.url
    finally:
        server.stop()


def run(
    sizes: Sequence[int],
    *,
    workers: Sequence[int] = (1, 2),
    backends: Sequence[str] = ("sqlite", "postgres"),
    updates: int = 2000,
    chats: int = 100,
    rounds: int = 3,
    seed: int = 7,
) -> BenchResult:
    result = BenchResult(NAME)
    data: JSON = {
        "updates": updates,
        "chats": chats,
        "rounds": rounds,
        "cpus": os.cpu_count(),
        "runs": {},
    }
    for n in sizes:
        for backend in backends:
            store = sqlite_store if backend == "sqlite" else postgres_store
            with store(n, seed) as url:
                for count in workers:
                    print(f"workers: {size_label(n)} stories on {backend}, {count} worker(s)...")
                    runs = measure(
                        url, n, count, updates=updates, chats=chats, rounds=rounds, seed=seed
                    )
                    data["runs"][f"{backend}/{n}/{count}"] = runs
                    rate = median([r["per_s"] for r in runs])
                    result.rows.append(
                        Row(
                            bench=f"workers {backend} x{count}",
                            size=size_label(n),
                            metric="updates/s",
                            value=rate,
                            unit="/s",
                            target="",
                            ok=None,
                            note="runs " + ", ".join(f"{r['per_s']:.0f}" for r in runs),
                        )
                    )
    result.data = data
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__)
    parser.add_argument("--sizes", default="10k")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--updates", type=int, default=2000, help="updates per burst")
    parser.add_argument("--chats", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    result = run(
        parse_sizes(args.sizes),
        workers=[int(w) for w in args.workers.split(",")],
        backends=[b.strip() for b in args.backends.split(",")],
        updates=args.updates,
        chats=args.chats,
        rounds=args.rounds,
        seed=args.seed,
    )
    report(result, write=not args.no_write)


if __name__ == "__main__":
    main()

"""Shared pieces of the benchmark suite: corpora, settings, an in-process Bot API, results.

Nothing here is a benchmark. The suite's rule is that every number comes from the real
code path (the real `Application`, the real `newsbot seed`), with only the network swapped
for something in-process or on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from pydantic import SecretStr
from telegram.request import BaseRequest

from bot.console import InProcessRequest
from bot.services import NewsApp
from bot.settings import Settings

JSON = dict[str, Any]

BENCH_DIR: Final = Path(__file__).resolve().parent
REPO: Final = BENCH_DIR.parent
OUT_DIR: Final = BENCH_DIR / "out"
# Generated databases live here between runs; bench/out/ is git-ignored.
CACHE_DIR: Final = OUT_DIR / "cache"
RESULTS_PATH: Final = BENCH_DIR / "results.json"
SEED: Final = 7
TOKEN: Final = "123:ABC"  # noqa: S105  (the fake server's token; opens nothing)
ADMIN_ID: Final = 1
READER_ID: Final = 2
BOT_ID: Final = 123

# PTB 22 warns on every RetryAfter unless this opt-in is set.
os.environ.setdefault("PTB_TIMEDELTA", "true")


def size_label(n: int) -> str:
    """1000 -> "1k", 100000 -> "100k"."""
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


# --- corpora ------------------------------------------------------------------------------


def corpus_path(n: int, seed: int = SEED) -> Path:
    # The version changes whenever what a cached corpus holds changes (v2: related lists).
    from bench.store import CORPUS_VERSION

    return CACHE_DIR / f"corpus-{n}-seed{seed}-v{CORPUS_VERSION}.db"


def corpus_db(n: int, seed: int = SEED, *, quiet: bool = False) -> Path:
    """A store holding n synthetic stories (bench.store's generator), built once and cached.

    Built under a temporary name and renamed, so an interrupted build is never reused.
    """
    from bench.store import build_corpus_db

    path = corpus_path(n, seed)
    if path.exists():
        # Brings a corpus built by older code up to the current schema, so that no benchmark
        # times a one-off migration.
        asyncio.run(_open_and_close(path))
        return path
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.stem + ".partial.db")
    for leftover in CACHE_DIR.glob(partial.name + "*"):
        leftover.unlink()
    if not quiet:
        print(f"  building the {size_label(n)} corpus at {path} (cached for later runs)...")
    began = time.perf_counter()
    asyncio.run(build_corpus_db(partial, n, seed))
    for suffix in ("-wal", "-shm"):
        # Closed cleanly, SQLite has already checkpointed; these are empty if present at all.
        Path(str(partial) + suffix).unlink(missing_ok=True)
    partial.rename(path)
    if not quiet:
        print(f"  built in {time.perf_counter() - began:.0f} s")
    return path


async def _open_and_close(path: Path) -> None:
    from storage.repository import StoryStore

    store = await StoryStore.open(path)
    await store.close()
    try:
        from storage.subscriptions import SubscriptionStore
    except ImportError:
        return
    subscriptions = await SubscriptionStore.open(path)
    await subscriptions.close()


@contextmanager
def working_copy(path: Path) -> Iterator[Path]:
    """A throw-away copy of a cached corpus, so a run never changes the cache.

    Reads can write: /related computes and stores a story's related list the first time it
    is asked for, and a later run would then time a different path.
    """
    with tempfile.TemporaryDirectory(prefix="newsbot-bench-db-") as scratch:
        copy = Path(scratch) / path.name
        shutil.copyfile(path, copy)
        yield copy


def db_bytes(path: Path) -> int:
    """The database file plus any WAL beside it."""
    total = path.stat().st_size
    wal = Path(str(path) + "-wal")
    return total + (wal.stat().st_size if wal.exists() else 0)


# --- settings and the in-process Bot API ---------------------------------------------------


def bench_settings(database: Path, *, api_url: str | None = None, **changes: Any) -> Settings:
    """Settings that read no .env: a fake token, one admin, this database."""
    values: dict[str, Any] = {
        "bot_token": SecretStr(TOKEN),
        "admin_ids": frozenset({ADMIN_ID}),
        "database_path": database,
        "log_level": "WARNING",
    }
    if api_url is not None:
        values["telegram_api_url"] = api_url
    values.update(changes)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def make_app(settings: Settings, request: BaseRequest | None = None) -> NewsApp:
    """The production app with the rate limiter off and flood throttling off.

    The guard still runs (duplicate check, admin lookup); only its per-sender token bucket
    is disabled, since every benchmark replays far more updates per chat than a person can.
    """
    from bot.app import build_app
    from bot.guard import UpdateGuard

    return build_app(settings, request=request, rate_limit=False, guard=UpdateGuard(throttle=False))


def bot_user() -> JSON:
    return {"id": BOT_ID, "is_bot": True, "first_name": "newsbot", "username": "newsbot"}


@dataclass(slots=True)
class Recorded:
    method: str
    params: JSON


class RecordingRequest(InProcessRequest):
    """Answers the Bot API in-process (as the console chat does) and records calls.

    No rendering, no printing: what is left is PTB's own request building and JSON, so the
    handler timings include everything the bot does except the network round trip.
    """

    def __init__(self) -> None:
        super().__init__(bot=bot_user(), chat_name="Reader")
        self.calls: list[Recorded] = []
        # The last message sent or edited, as Telegram returns it (a button press needs it).
        self.last_message: JSON | None = None

    def record(self, method: str, params: JSON) -> None:
        self.calls.append(Recorded(method, params))

    def delivered(self, message: JSON, *, edited: bool) -> None:
        self.last_message = message

    def last(self, method: str) -> Recorded:
        for call in reversed(self.calls):
            if call.method == method:
                return call
        raise LookupError(f"no {method} call recorded")


class Updates:
    """Bot API update dicts from readers in private chats."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    @staticmethod
    def _user(user_id: int) -> JSON:
        return {"id": user_id, "is_bot": False, "first_name": f"Reader{user_id}"}

    def message(self, text: str, user_id: int = READER_ID) -> JSON:
        message: JSON = {
            "message_id": 100_000 + next(self._ids),
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": f"Reader{user_id}"},
            "from": self._user(user_id),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split()[0]
            length = len(command.encode("utf-16-le")) // 2
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return {"update_id": next(self._ids), "message": message}

    def press(self, message: JSON, data: str, user_id: int = READER_ID) -> JSON:
        query = {
            "id": str(next(self._ids)),
            "from": self._user(user_id),
            "chat_instance": "bench",
            "message": message,
            "data": data,
        }
        return {"update_id": next(self._ids), "callback_query": query}


class ErrorCounter(logging.Handler):
    """Counts ERROR records (the bot's error handler logs every failed update)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.first: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if self.first is None:
            self.first = record.getMessage()


def quiet_logging() -> ErrorCounter:
    """Only warnings reach stderr; errors are also counted so a run can refuse bad numbers."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    counter = ErrorCounter()
    logging.getLogger().addHandler(counter)
    return counter


# --- queries ------------------------------------------------------------------------------


def content_words() -> list[str]:
    """The synthetic corpus's content words, most frequent first (no function words)."""
    from bench.store import VOCABULARY

    return [word for word in VOCABULARY[100:] if len(word) >= 4]


def typed_queries(rng_seed: int, count: int, words_per_query: Sequence[int] = (1, 2)) -> list[str]:
    """Queries as a reader would type them: half any content word, half frequent ones."""
    import random

    rng = random.Random(rng_seed)
    words = content_words()
    frequent = words[:200]
    queries = []
    for k in range(count):
        pool = frequent if k % 2 else words
        queries.append(" ".join(rng.sample(pool, rng.choice(tuple(words_per_query)))))
    return queries


# --- numbers ------------------------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of samples."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def latency_summary(seconds: Sequence[float]) -> JSON:
    """p50/p95/p99/max in milliseconds."""
    return {
        "p50_ms": round(1000 * percentile(seconds, 0.50), 3),
        "p95_ms": round(1000 * percentile(seconds, 0.95), 3),
        "p99_ms": round(1000 * percentile(seconds, 0.99), 3),
        "max_ms": round(1000 * max(seconds), 3),
        "n": len(seconds),
    }


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def vm_hwm_mb() -> float:
    """This process's peak resident set size (VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(slots=True)
class Row:
    """One line of the results table."""

    bench: str
    size: str
    metric: str
    value: float
    unit: str
    target: str = ""
    ok: bool | None = None
    note: str = ""

    def status(self) -> str:
        return "" if self.ok is None else ("met" if self.ok else "MISSED")


def format_value(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_table(rows: Sequence[Row]) -> str:
    header = ("benchmark", "size", "metric", "value", "unit", "target", "status", "note")
    body = [
        (r.bench, r.size, r.metric, format_value(r.value), r.unit, r.target, r.status(), r.note)
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]
    lines = [" | ".join(str(cell).ljust(w) for cell, w in zip(header, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    for line in body:
        cells = []
        for i, (cell, w) in enumerate(zip(line, widths, strict=True)):
            cells.append(cell.rjust(w) if i == 3 else cell.ljust(w))
        lines.append(" | ".join(cells).rstrip())
    return "\n".join(lines)


@dataclass(slots=True)
class BenchResult:
    """What one benchmark hands back: table rows and the raw numbers for results.json."""

    name: str
    rows: list[Row] = field(default_factory=list)
    data: JSON = field(default_factory=dict)
    # Only some of the benchmark's parts ran (bench.backends --parts): its rows and numbers
    # replace those they measure again, and the entry keeps the rest.
    partial: bool = False


def machine() -> JSON:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def merge_results(result: BenchResult, path: Path = RESULTS_PATH) -> None:
    """Replace this benchmark's entry in results.json, keeping the others' entries."""
    existing: JSON = {}
    if path.exists():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            existing = {}
    benchmarks: JSON = existing.get("benchmarks", {})
    rows = [asdict(row) for row in result.rows]
    data = result.data
    before = benchmarks.get(result.name)
    if result.partial and isinstance(before, dict):
        measured = {(row["bench"], row["size"]) for row in rows}
        earlier = before.get("rows", [])
        rows = [row for row in earlier if (row["bench"], row["size"]) not in measured] + rows
        data = _merged(before.get("data", {}), data)
    benchmarks[result.name] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "rows": rows,
        "data": data,
    }
    existing["benchmarks"] = dict(sorted(benchmarks.items()))
    path.write_text(json.dumps(existing, indent=2) + "\n", encoding="utf-8")


def _merged(old: JSON, new: JSON) -> JSON:
    """`old` updated with `new`, dictionaries merged key by key at every depth."""
    out = dict(old)
    for key, value in new.items():
        previous = out.get(key)
        if isinstance(previous, dict) and isinstance(value, dict):
            out[key] = _merged(previous, value)
        else:
            out[key] = value
    return out


def report(result: BenchResult, *, write: bool = True) -> None:
    """Print a benchmark's table and merge it into results.json (for `python -m bench.X`)."""
    print(format_table(result.rows))
    if write:
        merge_results(result)


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def parse_sizes(text: str) -> list[int]:
    """ "1k,10k,100000" -> [1000, 10000, 100000]."""
    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        sizes.append(int(float(part[:-1]) * 1000) if part.endswith("k") else int(part))
    return sizes

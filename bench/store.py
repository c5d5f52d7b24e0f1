"""Benchmark the story store at scale: `python -m bench.store [--stories 100000]`.

Generates realistic synthetic stories (about 3 KB of Zipf-distributed text each, from a
fixed-seed generator, so nothing is committed to the repo), bulk-inserts them in batches,
then reports p50/p95/p99 latencies of the read paths the bot uses and the file size.

Other benchmarks can reuse `synthetic_story` and `build_corpus_db`.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import itertools
import random
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from storage import Link, NewStory, StoryStore

BODY_CHARS = 3000
BATCH_SIZE = 1000
# What a cached corpus holds; part of its cache file name (bench.common.corpus_path) so a
# corpus built by older code is not reused. 2: stored related lists; 3: search index
# compacted into one segment, as `newsbot seed` leaves it.
CORPUS_VERSION = 3
# Stored related lists for (at most) this many stories, the newest: ranking a list costs a
# few ms, so all 100k would add minutes to the build. Larger corpora keep older stories
# without a list, and /related <id> for those ranks one on demand as in production.
RELATED_NEWEST = 10_000
RELATED_CHUNK = 512
_BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)

# Real function words head the frequency list so the text has the skew of English: a few
# words occur in every story, most occur in few.
_FUNCTION_TEXT = (
    "the of and to a in that is was he for it with as his on be at by had are but from or "
    "have an they which one you were her all she there would their we him been has when who "
    "will more no if out so said what up its about into than them can only other new some"
)
_SYLLABLE_TEXT = (
    "ba be bi bo bu ca ce ci co da de di do du fa fe fi fo ga ge go ha he hi ho ka ke ki ko "
    "la le li lo lu ma me mi mo mu na ne ni no nu pa pe pi po ra re ri ro ru sa se si so su "
    "ta te ti to tu va ve vi vo za ze zi zo tra tre pro pla ston ling mar ver sen dor"
)
_FUNCTION_WORDS = tuple(_FUNCTION_TEXT.split())
_SYLLABLES = tuple(_SYLLABLE_TEXT.split())
_OUTLETS = tuple(f"outlet{n:02d}.example" for n in range(40))
_VOCAB_SIZE = 20_000
_ZIPF_EXPONENT = 1.07
_CONTENT_START = len(_FUNCTION_WORDS)


def _build_vocabulary() -> list[str]:
    # Its own fixed seed: the vocabulary must not depend on the caller's rng.
    rng = random.Random(20240501)
    words = list(_FUNCTION_WORDS)
    seen = set(words)
    while len(words) < _VOCAB_SIZE:
        word = "".join(rng.choices(_SYLLABLES, k=rng.choice((2, 2, 3, 3, 3, 4))))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


VOCABULARY = _build_vocabulary()
_CUM_WEIGHTS = list(
    itertools.accumulate(1.0 / (rank**_ZIPF_EXPONENT) for rank in range(1, _VOCAB_SIZE + 1))
)
_CONTENT_WORDS = VOCABULARY[_CONTENT_START:]
_CONTENT_CUM_WEIGHTS = list(
    itertools.accumulate(1.0 / (rank**_ZIPF_EXPONENT) for rank in range(1, len(_CONTENT_WORDS) + 1))
)


def _sentence(rng: random.Random) -> str:
    words = rng.choices(VOCABULARY, cum_weights=_CUM_WEIGHTS, k=rng.randint(8, 26))
    return " ".join(words).capitalize() + "."


def synthetic_story(i: int, rng: random.Random) -> NewStory:
    """A realistic story numbered i (unique URL and fingerprint), drawn from rng."""
    title_words = rng.choices(
        _CONTENT_WORDS, cum_weights=_CONTENT_CUM_WEIGHTS, k=rng.randint(5, 10)
    )
    title = " ".join(title_words).capitalize()
    sentences: list[str] = []
    length = 0
    while length < BODY_CHARS:
        sentence = _sentence(rng)
        sentences.append(sentence)
        length += len(sentence) + 1
    paragraphs = [" ".join(sentences[k : k + 4]) for k in range(0, len(sentences), 4)]
    cleaned = "\n\n".join(paragraphs)
    outlet = rng.choice(_OUTLETS)
    links = tuple(
        Link(
            title=" ".join(rng.choices(_CONTENT_WORDS, k=6)).capitalize(),
            snippet=_sentence(rng),
            # Some links point at earlier stories, as aggregator "similar news" items do.
            url=f"https://{rng.choice(_OUTLETS)}/news/{rng.randrange(i)}" if i else None,
            outlet=rng.choice(_OUTLETS),
        )
        for _ in range(rng.randint(0, 4))
    )
    published = _BASE_TIME + timedelta(minutes=i, seconds=rng.randint(-3600, 3600))
    return NewStory(
        title=title,
        body="".join(f"<p>{p}</p>" for p in paragraphs),
        cleaned_text=cleaned,
        summary=tuple(sentences[:3]),
        algorithm="lexrank",
        fingerprint=hashlib.blake2b(f"{i}\n{cleaned}".encode(), digest_size=16).hexdigest(),
        url=None if rng.random() < 0.05 else f"https://{outlet}/news/{i}",
        source=outlet,
        language="english",
        published_at=None if rng.random() < 0.1 else published,
        links=links,
    )


async def _insert(store: StoryStore, first: int, end: int, seed: int, batch_size: int) -> float:
    rng = random.Random(seed)
    elapsed = 0.0
    for start in range(first, end, batch_size):
        batch = [synthetic_story(i, rng) for i in range(start, min(end, start + batch_size))]
        began = time.perf_counter()
        await store.add_many(batch)
        elapsed += time.perf_counter() - began
    return elapsed


async def build_corpus_db(
    path: Path, n: int, seed: int = 7, *, related: int = RELATED_NEWEST
) -> None:
    """Create (or extend) a store at path holding n synthetic stories, the newest `related`
    of them with stored related lists, its search index in one segment (as `newsbot seed`
    leaves them)."""
    async with await StoryStore.open(path) as store:
        await _insert(store, 0, n, seed, BATCH_SIZE)
        if related > 0:
            await add_related_lists(store, related)
        await store.compact_search_index()


async def add_related_lists(store: StoryStore, newest: int, chunk: int = RELATED_CHUNK) -> int:
    """Rank and store the related lists of the newest stories; returns how many stories.

    RelatedIndexer.refresh ranks them in chunks, newest first, computing and storing the
    features of each story and candidate on the way. A corpus built here has ids 1..count.
    """
    from ingest.pipeline import RelatedIndexer

    total = await store.count()
    ids = list(range(total, max(0, total - newest), -1))
    indexer = RelatedIndexer(store)
    for start in range(0, len(ids), chunk):
        await indexer.refresh(ids[start : start + chunk])
    return len(ids)


def _percentiles(samples: Sequence[float]) -> str:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return f"p50 {at(0.50):7.3f}  p95 {at(0.95):7.3f}  p99 {at(0.99):7.3f} ms"


# Wall time by default; `--clock cpu` times the process's CPU time (every thread's), which
# stays comparable between two versions of a query on a machine busy with other work.
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


async def _time(
    label: str,
    repeats: int,
    make_call: Callable[[int], Awaitable[object]],
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> None:
    samples: list[float] = []
    for k in range(repeats):
        began = clock()
        await make_call(k)
        samples.append(clock() - began)
    print(f"  {label:<34} {_percentiles(samples)}  (n={repeats})")


def _query(rng: random.Random, words: Sequence[str]) -> str:
    return " ".join(rng.sample(words, rng.choice((1, 2))))


async def _measure(
    store: StoryStore, n: int, repeats: int, seed: int, clock: Callable[[], float]
) -> None:
    timed = functools.partial(_time, clock=clock)
    rng = random.Random(seed + 1)
    cursor: int | None = None
    for _ in range(19):
        page = await store.latest(10, older_than=cursor)
        cursor = page[-1].id
    page20 = cursor
    ids = [rng.randint(1, n) for _ in range(repeats)]
    # Queries as a reader would type them: any content word, and the frequent ones that
    # match a large share of the corpus (the slow case for ranking).
    typed = [_query(rng, _CONTENT_WORDS) for _ in range(repeats)]
    frequent = [_query(rng, _CONTENT_WORDS[:200]) for _ in range(repeats)]
    related = [rng.sample(_CONTENT_WORDS[:2000], 8) for _ in range(repeats)]
    # What `/related <words>` asks: two or three typed words, half of them frequent ones.
    words = [
        rng.sample(_CONTENT_WORDS[:200] if k % 2 else _CONTENT_WORDS, rng.choice((2, 3)))
        for k in range(repeats)
    ]
    print("latencies:")
    await timed("latest page 1", repeats, lambda k: store.latest(10))
    await timed("latest page 20 (keyset)", repeats, lambda k: store.latest(10, older_than=page20))
    await timed("get", repeats, lambda k: store.get(ids[k]))
    await timed("find_duplicate", repeats, lambda k: store.find_duplicate(None, str(k)))
    await timed("search (random 1-2 words)", repeats, lambda k: store.search(typed[k]))
    await timed("search (frequent 1-2 words)", repeats, lambda k: store.search(frequent[k]))
    await timed("count_search (random 1-2 words)", repeats, lambda k: store.count_search(typed[k]))
    await timed("search_any (8 terms, related)", repeats, lambda k: store.search_any(related[k]))
    await timed("search_any (2-3 typed words)", repeats, lambda k: store.search_any(words[k], 5))
    await timed("stats", repeats, lambda k: store.stats())


async def run(
    n: int,
    db: Path | None,
    repeats: int,
    seed: int,
    batch_size: int,
    clock: Callable[[], float] = time.perf_counter,
) -> None:
    """Build a corpus of n stories, then time the read paths."""
    with tempfile.TemporaryDirectory(prefix="newsbot-bench-") as scratch:
        path = db or Path(scratch) / "bench.db"
        async with await StoryStore.open(path) as store:
            existing = await store.count()
            if existing < n:
                print(f"inserting {n - existing} stories in batches of {batch_size}...")
                elapsed = await _insert(store, existing, n, seed + existing, batch_size)
                print(f"insert: {(n - existing) / elapsed:,.0f} stories/s ({elapsed:.1f} s)")
            stats = await store.stats()
            print(
                f"stories {stats.stories:,}  links {stats.links:,}  sources {stats.sources}  "
                f"size {stats.database_bytes / 2**20:,.1f} MiB  "
                f"= {stats.database_bytes / 2**10 / (stats.stories / 1000):,.0f} KiB per 1k stories"
            )
            await _measure(store, stats.stories, repeats, seed, clock)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__)
    parser.add_argument("--stories", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=500, help="timed calls per operation")
    parser.add_argument("--batch", type=int, default=BATCH_SIZE, help="stories per add_many")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--db", type=Path, default=None, help="keep (and reuse) the database at this path"
    )
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="wall", help="wall time, or process CPU time"
    )
    args = parser.parse_args(argv)
    asyncio.run(run(args.stories, args.db, args.repeats, args.seed, args.batch, CLOCKS[args.clock]))


if __name__ == "__main__":
    main()

"""`newsbot seed`'s inputs: expanding folders and globs, and starting the pool early.

Standard library only, on purpose: `newsbot` calls `start_pool_early` before importing
anything else (settings, rich, the pipeline), so that the pool's server starts its own
imports as early as it can.
"""

from __future__ import annotations

import argparse
import glob
from collections.abc import Iterator, Sequence
from pathlib import Path

# Local inputs at least this large (about 75 typical articles) are summarised in the process
# pool (ingest.pipeline.POOL_THRESHOLD), so its server is worth starting before the imports.
EARLY_POOL_BYTES = 256_000
STREAMED_SUFFIXES = {".jsonl", ".ndjson"}
SUFFIXES = {".txt", ".md", ".markdown", ".json", ".xml", ".rss", ".atom", ".html", ".htm"}
SUFFIXES |= STREAMED_SUFFIXES


def expand_inputs(inputs: list[str]) -> Iterator[str]:
    """Files as given, folders recursively (known suffixes), globs expanded; URLs and - kept."""
    for item in inputs:
        if item == "-" or item.startswith(("http://", "https://")):
            yield item
            continue
        path = Path(item)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                # A folder's README describes the files; it is not a story.
                if (
                    child.is_file()
                    and child.suffix.lower() in SUFFIXES
                    and not child.name.upper().startswith("README")
                ):
                    yield str(child)
        elif path.exists():
            yield item
        else:
            matches = sorted(glob.glob(item, recursive=True))
            yield from matches if matches else [item]


def start_pool_early(argv: Sequence[str]) -> None:
    """Start the summarising pool's server now if `newsbot seed ARGV` will use the pool.

    Called before the command's imports (the pipeline's alone are about 0.4 s), which the
    server then does side by side with this process instead of after it. Only `--workers`
    and the local inputs' sizes are looked at; the real parser reports any usage error.
    """
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--workers")
    known, rest = early.parse_known_args(argv)
    if known.workers is not None and known.workers.strip() == "1":
        return
    named = [item for item in rest if not item.startswith("-")]
    files = [Path(item) for item in expand_inputs(named) if "://" not in item]
    if sum(path.stat().st_size for path in files if path.is_file()) >= EARLY_POOL_BYTES:
        from ingest.pool import start_early

        start_early()

"""The process pool that summarises stories at ingest, and starting it early.

Light on purpose (no imports beyond the standard library): `newsbot seed` starts the pool's
server from here before importing the pipeline, so that both imports run side by side.
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing import forkserver
from multiprocessing.context import BaseContext

# What the forkserver imports once, before it forks the workers: the pipeline, warmed up.
PRELOAD = "ingest.pool_warmup"
# Workers run this much below the parent: the parent stores and ranks each batch while they
# summarise the next, and it is the parent's work that bounds an ingest, so it goes first
# whenever both want a core. With 2 workers on 2 cores the 10k seed took 59.8 s instead of
# 64.0 (niceness 5); 5, 10 and 19 measured within noise of each other at 1k.
WORKER_NICENESS = 10


def pool_context() -> BaseContext:
    """How pool workers start. Not fork: the parent runs an event loop and aiosqlite threads,
    which fork copies unsafely. forkserver forks the workers from a clean server process that
    imported the pipeline once, so two workers cost one import (about 0.6 s of CPU), not two.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([PRELOAD])
    return context


def start_early() -> None:
    """Start the pool's server now, so that it imports the pipeline while the caller does."""
    if pool_context().get_start_method() == "forkserver":
        forkserver.ensure_running()


def yield_to_parent() -> None:
    """A worker's initializer: run below the parent's priority."""
    os.nice(WORKER_NICENESS)

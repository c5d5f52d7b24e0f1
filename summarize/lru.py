"""Least-recently-used bounds on plain dicts, which keep insertion order.

Ranking caches candidates by story id: a large store's candidates are mostly its newest
stories, so dropping the least recently used keeps the hot ones where clearing would not.
"""

from __future__ import annotations

from typing import TypeVar

_K = TypeVar("_K")
_V = TypeVar("_V")


def touch(cache: dict[_K, _V], key: _K) -> _V | None:
    """The cached value, made the most recently used; None when absent."""
    value = cache.pop(key, None)
    if value is not None:
        cache[key] = value
    return value


def remember(cache: dict[_K, _V], key: _K, value: _V, bound: int) -> None:
    """Cache a value as the most recently used, dropping the least recently used beyond
    `bound`."""
    cache.pop(key, None)
    cache[key] = value
    while len(cache) > bound:
        del cache[next(iter(cache))]

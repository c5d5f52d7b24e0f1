"""A bounded per-word cache that forgets everything once the store has changed size enough.

Both stores keep one of these for their frequent-word pruning: the SQLite store a verdict
per word, the PostgreSQL store the word's share of the newest stories.
"""

from __future__ import annotations

from typing import Final, Generic, TypeVar

__all__ = ["TERM_CACHE_DRIFT", "TERM_CACHE_MAX", "TermCache"]

# At most this many words are remembered; the oldest go first.
TERM_CACHE_MAX: Final = 4096
# Everything is forgotten once the story count moved by this share since the last reset.
TERM_CACHE_DRIFT: Final = 0.1

_V = TypeVar("_V")


class TermCache(Generic[_V]):
    """word (casefolded) -> value, bounded, reset when the store grows or shrinks."""

    def __init__(self) -> None:
        self.values: dict[str, _V] = {}
        self._basis = 0

    def rebase(self, stories: int) -> None:
        """Forget every value once the store has grown or shrunk by TERM_CACHE_DRIFT."""
        if abs(stories - self._basis) > self._basis * TERM_CACHE_DRIFT:
            self.values.clear()
            self._basis = stories

    def put(self, word: str, value: _V) -> None:
        if len(self.values) >= TERM_CACHE_MAX:
            # Oldest first: dicts keep insertion order.
            del self.values[next(iter(self.values))]
        self.values[word] = value

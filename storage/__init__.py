"""Story storage: an async SQLite repository with full-text search.

Usage: ``async with await StoryStore.open(path) as store: ...``.
"""

from storage.errors import QueryError, StoreError, UnknownStoryError
from storage.models import AddResult, Link, NewStory, SearchHit, StoreStats, Story
from storage.repository import SEARCH_COUNT_CAP, StoryStore

__all__ = [
    "SEARCH_COUNT_CAP",
    "AddResult",
    "Link",
    "NewStory",
    "QueryError",
    "SearchHit",
    "StoreError",
    "StoreStats",
    "Story",
    "StoryStore",
    "UnknownStoryError",
]

"""Errors the store raises to its callers; raw driver errors never escape."""


class StoreError(Exception):
    """Base class for storage errors."""


class QueryError(StoreError, ValueError):
    """A search query the full-text engine cannot use; the message says why."""


class UnknownStoryError(StoreError, LookupError):
    """An id used as a cursor names no stored story (it was deleted, say)."""

    def __init__(self, story_id: int) -> None:
        super().__init__(f"story {story_id} is not in the store")
        self.story_id = story_id

"""Errors the store raises to its callers; raw driver errors never escape."""


class StoreError(Exception):
    """Base class for storage errors."""


class QueryError(StoreError, ValueError):
    """A search query the full-text engine cannot use; the message says why."""

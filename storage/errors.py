"""Errors the store raises to its callers; raw driver errors never escape."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")


class StoreError(Exception):
    """Base class for storage errors."""


class QueryError(StoreError, ValueError):
    """A search query the full-text engine cannot use; the message says why."""


class UnknownStoryError(StoreError, LookupError):
    """An id used as a cursor names no stored story (it was deleted, say)."""

    def __init__(self, story_id: int) -> None:
        super().__init__(f"story {story_id} is not in the store")
        self.story_id = story_id


def translating(
    driver_errors: tuple[type[BaseException], ...],
    error_for: Callable[[str, BaseException], StoreError],
) -> Callable[[Callable[_P, Awaitable[_R]]], Callable[_P, Coroutine[Any, Any, _R]]]:
    """A decorator for store methods: a driver error becomes error_for(method name, error)."""

    def decorate(method: Callable[_P, Awaitable[_R]]) -> Callable[_P, Coroutine[Any, Any, _R]]:
        name = getattr(method, "__name__", "store operation")

        @functools.wraps(method)
        async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return await method(*args, **kwargs)
            except driver_errors as exc:
                raise error_for(name, exc) from exc

        return wrapper

    return decorate

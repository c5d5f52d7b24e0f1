"""How both backends turn Python values into stored ones: times in UTC, URLs, id lists.

SQLite keeps times as integer microseconds since the epoch (exact, and ordered as numbers);
PostgreSQL keeps timestamptz. Naive datetimes are taken as UTC everywhere, which is what
feeds and the ingest pipeline produce.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final

__all__ = [
    "as_utc",
    "clean_url",
    "from_micros",
    "ids_from_json",
    "ids_json",
    "names_from_json",
    "names_json",
    "to_micros",
    "utc_now",
]

# Related rows' copies and outlets are short lists that repeat ("[]", one outlet's name): an
# ingest writes and reads them by the ten thousand, so each distinct one is converted once.
_LIST_CACHE: Final = 4096

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def to_micros(moment: datetime) -> int:
    return (as_utc(moment) - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def clean_url(url: str | None) -> str | None:
    # An empty URL means "no URL"; stored as "" it would make every URL-less story a duplicate.
    if url is None:
        return None
    return url.strip() or None


@lru_cache(maxsize=_LIST_CACHE)
def ids_json(ids: tuple[int, ...]) -> str:
    """JSON array text of story ids."""
    return json.dumps(list(ids))


@lru_cache(maxsize=_LIST_CACHE)
def ids_from_json(text: str | None) -> tuple[int, ...]:
    """Story ids from `ids_json` text (None reads as none)."""
    return tuple(int(value) for value in json.loads(text or "[]"))


@lru_cache(maxsize=_LIST_CACHE)
def names_json(names: tuple[str, ...]) -> str:
    """JSON array text of names (outlets), non-ASCII kept as is."""
    return json.dumps(list(names), ensure_ascii=False)


@lru_cache(maxsize=_LIST_CACHE)
def names_from_json(text: str) -> tuple[str, ...]:
    """Names from `names_json` text."""
    return tuple(str(value) for value in json.loads(text))

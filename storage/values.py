"""How both backends turn Python values into stored ones: times in UTC, URLs.

SQLite keeps times as integer microseconds since the epoch (exact, and ordered as numbers);
PostgreSQL keeps timestamptz. Naive datetimes are taken as UTC everywhere, which is what
feeds and the ingest pipeline produce.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

__all__ = ["as_utc", "clean_url", "from_micros", "to_micros", "utc_now"]

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

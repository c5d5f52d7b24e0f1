"""What an ingest run did: ids added, duplicates skipped, records rejected and why."""

from __future__ import annotations

from dataclasses import dataclass, field


class IngestError(Exception):
    """A whole input could not be ingested (offline URL, too large); the message is for a person."""


@dataclass(frozen=True, slots=True)
class Rejected:
    location: str  # "file.jsonl line 3", "feed.xml entry 2", "message"
    reason: str


@dataclass(frozen=True, slots=True)
class Duplicate:
    location: str
    existing_id: int


@dataclass(slots=True)
class IngestReport:
    added: list[int] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    def merge(self, other: IngestReport) -> None:
        self.added.extend(other.added)
        self.duplicates.extend(other.duplicates)
        self.rejected.extend(other.rejected)

    @property
    def ok(self) -> bool:
        return not self.rejected

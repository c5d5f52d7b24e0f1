"""Plain records the store takes and returns; no database or Telegram types."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Link:
    """A related link that arrived with a story (a "Similar News" item, say)."""

    title: str
    snippet: str = ""
    url: str | None = None
    outlet: str | None = None
    # Set when the link points at a story that is also in the store.
    story_id: int | None = None


@dataclass(frozen=True, slots=True)
class NewStory:
    """A story ready to store: cleaned and summarised by the ingest pipeline."""

    title: str
    body: str
    cleaned_text: str
    summary: tuple[str, ...]
    algorithm: str
    fingerprint: str
    url: str | None = None
    source: str | None = None
    language: str = "english"
    published_at: datetime | None = None
    links: tuple[Link, ...] = ()
    # summarize.related.DocFeatures as JSON text (computed in the ingest pool), and the
    # version of the code that computed them; None: computed later, by the refresh job.
    features: str | None = None
    features_version: int = 0
    # When the story was first stored: `newsbot db copy` keeps the original's; None: now.
    ingested_at: datetime | None = None

    @property
    def sentence_count(self) -> int:
        return len(self.summary)


@dataclass(frozen=True, slots=True)
class Story:
    """A stored story."""

    id: int
    title: str
    body: str
    cleaned_text: str
    summary: tuple[str, ...]
    algorithm: str
    fingerprint: str
    ingested_at: datetime
    url: str | None = None
    source: str | None = None
    language: str = "english"
    published_at: datetime | None = None
    links: tuple[Link, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class AddResult:
    """What happened to one story handed to the store."""

    story_id: int
    created: bool  # False: a duplicate (same URL or same fingerprint) of story_id


@dataclass(frozen=True, slots=True)
class SearchHit:
    story: Story
    score: float  # higher is better


@dataclass(frozen=True, slots=True)
class StoreStats:
    stories: int
    sources: int
    links: int
    last_ingest: datetime | None
    database_bytes: int


@dataclass(frozen=True, slots=True)
class StoredFeatures:
    """A story's relatedness features as stored: JSON text and the version that wrote it."""

    story_id: int
    version: int
    features: str
    related_at: datetime | None = None  # when its related list was last computed


@dataclass(frozen=True, slots=True)
class RelatedRow:
    """One entry of a story's precomputed related list, as written."""

    related_id: int
    score: float
    copies: tuple[int, ...] = ()  # other outlets' copies folded into this entry
    outlets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RelatedStory:
    """One entry of a story's stored related list, read back with the related story."""

    story: Story
    score: float
    rank: int
    copies: tuple[int, ...] = ()  # only copies still stored
    outlets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CorpusCounts:
    """Document frequencies of some feature keys, and how many stories have features."""

    docs: int
    df: dict[str, int]

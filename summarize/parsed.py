"""What the input parsers return: plain records, no Telegram or database types."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class RelatedItem:
    """A link that arrived with a story, such as one "Similar News" item of an aggregator page."""

    title: str
    snippet: str = ""
    url: str | None = None
    outlet: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedStory:
    """One story as read from an input, before cleaning and summarising."""

    title: str
    text: str
    url: str | None = None
    source: str | None = None
    published_at: datetime | None = None  # always tz-aware UTC when set
    language: str = "english"
    related: tuple[RelatedItem, ...] = ()


@dataclass(frozen=True, slots=True)
class ParseProblem:
    """A part of an input that was skipped: where ("line 3", "entry 2", "input") and why."""

    location: str
    reason: str


@dataclass(slots=True)
class ParseResult:
    """The stories read from one input and the records that had to be skipped."""

    stories: list[ParsedStory] = field(default_factory=list)
    problems: list[ParseProblem] = field(default_factory=list)

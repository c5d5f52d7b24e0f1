"""CPU work for one story: clean, fingerprint, summarise and compute its relatedness features.

Pure, so a process pool can run it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime

from storage.models import Link, NewStory
from summarize.clean import clean_text
from summarize.errors import TextError
from summarize.languages import normalise_language
from summarize.parsed import ParsedStory
from summarize.related import Doc, DocFeatures, build_features
from summarize.summarizers import summarize

_WORDS = re.compile(r"\w+", re.UNICODE)

# Bump when build_features changes what it computes: stored features of another version are
# recomputed by the refresh job (bot/jobs.py).
FEATURES_VERSION = 1


@dataclass(frozen=True, slots=True)
class SummaryOptions:
    algorithm: str
    sentences: int
    max_chars: int | None
    max_story_chars: int


def fingerprint(text: str) -> str:
    """A digest of the words alone, so re-scraped copies differing in spacing or case match."""
    words = " ".join(_WORDS.findall(text.lower()))
    return hashlib.blake2b(words.encode("utf-8"), digest_size=16).hexdigest()


def features_json(
    title: str,
    cleaned_text: str,
    *,
    source: str | None,
    published_at: datetime | None,
    language: str,
) -> str:
    """A story's relatedness features as compact JSON text, as the store keeps them.

    The key is left out: the story's id is not known until it is stored.
    """
    features = build_features(
        Doc(
            key=0,
            title=title,
            text=cleaned_text,
            source=source,
            published_at=published_at,
            language=language,
        )
    )
    data = features.to_json()
    del data["key"]
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def load_features(story_id: int, text: str) -> DocFeatures:
    """Features stored by `features_json`, keyed by the story's id."""
    data = json.loads(text)
    data["key"] = story_id
    return DocFeatures.from_json(data)


def prepare_story(parsed: ParsedStory, options: SummaryOptions) -> NewStory:
    """Turn a parsed story into a storable one; TextError says why it cannot be."""
    if len(parsed.text) > options.max_story_chars:
        raise TextError(
            f"story is {len(parsed.text):,} characters; the limit is {options.max_story_chars:,}"
        )
    language = normalise_language(parsed.language)
    cleaned = clean_text(parsed.text)
    if not any(char.isalpha() for char in cleaned):
        raise TextError("story has no text after cleaning")
    summary = summarize(
        cleaned,
        algorithm=options.algorithm,
        sentences=options.sentences,
        max_chars=options.max_chars,
        language=language,
    )
    title = " ".join(parsed.title.split()) or summary[0][:120]
    features = features_json(
        title,
        cleaned,
        source=parsed.source,
        published_at=parsed.published_at,
        language=language,
    )
    return NewStory(
        title=title,
        body=parsed.text,
        cleaned_text=cleaned,
        summary=tuple(summary),
        algorithm=options.algorithm,
        fingerprint=fingerprint(cleaned),
        url=parsed.url,
        source=parsed.source,
        language=language,
        published_at=parsed.published_at,
        links=tuple(
            Link(title=item.title, snippet=item.snippet, url=item.url, outlet=item.outlet)
            for item in parsed.related
        ),
        features=features,
        features_version=FEATURES_VERSION,
    )


def prepare_or_reason(parsed: ParsedStory, options: SummaryOptions) -> NewStory | str:
    """Like prepare_story, but a rejection comes back as its reason (cheap to pickle)."""
    try:
        return prepare_story(parsed, options)
    except TextError as exc:
        return str(exc)

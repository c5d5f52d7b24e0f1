"""Salient terms of a story: what a full-text search for related stories should look for."""

from __future__ import annotations

import re
from collections import Counter
from functools import cache

from sumy.utils import get_stop_words

from summarize.related_text import stem

__all__ = ["salient_terms"]

_WORD = re.compile(r"[^\W\d_][\w'’-]*[^\W_]|[^\W\d_]", re.UNICODE)
_NEWS_FILLER = frozenset(
    {"said", "says", "say", "told", "reported", "according", "year", "years", "news", "latest"}
)


@cache
def _stop_words(language: str) -> frozenset[str]:
    try:
        words = frozenset(get_stop_words(language))
    except LookupError:
        words = frozenset()
    return words | _NEWS_FILLER


def salient_terms(title: str, text: str, limit: int = 12, language: str = "english") -> list[str]:
    """The words most characteristic of a story, title and capitalised names weighted up.

    Inflections of one word ("quake", "quakes") share a slot and are returned once, in their
    most frequent form: the store's porter tokenizer would match them as one term anyway.
    """
    if limit <= 0:
        return []
    stop = _stop_words(language)
    english = language == "english"
    scores: dict[str, float] = {}
    first_seen: dict[str, int] = {}
    forms: dict[str, dict[str, int]] = {}
    for weight, chunk in ((3.0, title), (1.0, text)):
        # Each distinct token once, with its count, in order of first appearance: a story
        # repeats its words, and the weights are multiples of 0.5, so sums stay exact.
        for raw, count in Counter(_WORD.findall(chunk)).items():
            word = raw.strip("'’-")
            if word.endswith(("'s", "’s")):
                word = word[:-2]
            key = word.lower()
            if len(key) < 3 or key in stop:
                continue
            root = stem(key) if english else key
            # Names and places carry the event; a capital letter mid-sentence is cheap evidence.
            boost = 1.5 if word[0].isupper() else 1.0
            scores[root] = scores.get(root, 0.0) + weight * boost * count
            if root not in first_seen:
                first_seen[root] = len(first_seen)
                forms[root] = {}
            seen = forms[root]
            seen[key] = seen.get(key, 0) + count
    ranked = sorted(scores, key=lambda root: (-scores[root], first_seen[root]))
    return [_commonest(forms[root]) for root in ranked[:limit]]


def _commonest(forms: dict[str, int]) -> str:
    # Ties go to the shorter form, which is the one a reader would type.
    return min(forms, key=lambda form: (-forms[form], len(form), form))

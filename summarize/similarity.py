"""Salient terms of a story: what a full-text search for related stories should look for."""

from __future__ import annotations

import re
from collections import Counter
from functools import cache
from sys import intern

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


# Per language, what salient_terms needs of each word as found: its root, its lower-cased
# form and its weight in the title and in the text; None when it is too short or a stop word.
# Stories repeat their vocabulary, so most words are looked up rather than worked out.
_Word = tuple[str, str, float, float]
_KNOWN: dict[str, dict[str, _Word | None]] = {}
# A serving bot keeps these for days: about 150 bytes a word, so at most ~8 MB.
_MAX_KNOWN = 50_000
_UNKNOWN = ("", "", 0.0, 0.0)


def _known(language: str) -> dict[str, _Word | None]:
    known = _KNOWN.get(language)
    if known is None or len(known) > _MAX_KNOWN:
        known = _KNOWN[language] = {}
    return known


def _analyse(raw: str, stop: frozenset[str], english: bool) -> _Word | None:
    word = raw.strip("'’-")
    if word.endswith(("'s", "’s")):
        word = word[:-2]
    key = intern(word.lower())
    if len(key) < 3 or key in stop:
        return None
    root = stem(key) if english else key
    # Names and places carry the event; a capital letter mid-sentence is cheap evidence.
    boost = 1.5 if word[0].isupper() else 1.0
    # The title weighs 3, the text 1: weight * boost, as the score has always multiplied.
    return root, key, 3.0 * boost, 1.0 * boost


def salient_terms(title: str, text: str, limit: int = 12, language: str = "english") -> list[str]:
    """The words most characteristic of a story, title and capitalised names weighted up.

    Inflections of one word ("quake", "quakes") share a slot and are returned once, in their
    most frequent form: the store's porter tokenizer would match them as one term anyway.
    """
    if limit <= 0:
        return []
    known = _known(language)
    stop = _stop_words(language)
    english = language == "english"
    # Roots in order of first appearance (dicts keep it), each with its score and its forms.
    scores: dict[str, float] = {}
    forms: dict[str, dict[str, int]] = {}
    for in_title, chunk in ((True, title), (False, text)):
        # Each distinct token once, with its count, in order of first appearance: a story
        # repeats its words, and the weights are multiples of 0.5, so sums stay exact.
        for raw, count in Counter(_WORD.findall(chunk)).items():
            found = known.get(raw, _UNKNOWN)
            if found is _UNKNOWN:
                # Interned, as the summariser's and the features' caches keep the same words.
                found = known[intern(raw)] = _analyse(raw, stop, english)
            if found is None:
                continue
            root, key, title_weight, text_weight = found
            weight = title_weight if in_title else text_weight
            scores[root] = scores.get(root, 0.0) + weight * count
            seen = forms.get(root)
            if seen is None:
                forms[root] = {key: count}
            else:
                seen[key] = seen.get(key, 0) + count
    # Best first, ties in order of first appearance: sorted() is stable with reverse=True too.
    ranked = sorted(scores, key=scores.__getitem__, reverse=True)[:limit]
    return [_commonest(forms[root]) for root in ranked]


def _commonest(forms: dict[str, int]) -> str:
    # Ties go to the shorter form, which is the one a reader would type.
    return min(forms, key=lambda form: (-forms[form], len(form), form))

"""Text pieces for story relatedness: index terms, entity evidence and copy signatures.

Everything here is deterministic across processes (no salted `hash()`), because the results
are stored at ingest and compared with ones computed months later.
"""

from __future__ import annotations

import hashlib
import operator
import re
from collections import Counter
from functools import cache, lru_cache

from nltk.stem import PorterStemmer
from sumy.utils import get_stop_words

__all__ = [
    "MINHASH_SIZE",
    "entity_counts",
    "index_terms",
    "minhash",
    "minhash_similarity",
    "stem",
    "stop_words",
    "words",
]

MINHASH_SIZE = 32

# Letters, digits and in-word apostrophes, dots and hyphens ("O'Connor", "6.1", "U.S.").
_TOKEN = re.compile(r"[^\W_](?:[\w'’.-]*[^\W_])?", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?:;\"“”]\s*$")
_YEAR = re.compile(r"(?:19|20)\d\d")
_NUMBER = re.compile(r"\d[\d.,]*[a-z]{0,3}")
_NEWS_FILLER = frozenset(
    {
        "said",
        "says",
        "say",
        "told",
        "reported",
        "according",
        "year",
        "years",
        "news",
        "latest",
        "new",
        "just",
        "like",
        "also",
        "will",
        "would",
        "could",
        "one",
        "two",
        "get",
        "got",
    }
)
# Capitalised for grammar, not because they name anything that tells events apart.
_NOT_NAMES = frozenset(
    {
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "today",
        "yesterday",
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "mr",
        "mrs",
        "ms",
        "dr",
        "photo",
        "video",
        "update",
        "breaking",
        "report",
        "reports",
        "watch",
        "exclusive",
        "read",
        "via",
    }
)
_CONNECTORS = frozenset({"of", "de", "da", "van", "von", "der", "la", "le", "al", "bin", "du"})
_STEMMER = PorterStemmer()


@cache
def stop_words(language: str = "english") -> frozenset[str]:
    """Stop words for a language (sumy's lists) plus words every news story uses."""
    try:
        found = frozenset(get_stop_words(language))
    except LookupError:
        found = frozenset()
    return found | _NEWS_FILLER


def words(text: str) -> list[str]:
    """The text's tokens in order, original case, possessive 's and edge dots dropped."""
    out: list[str] = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token.endswith(("'s", "’s")):
            token = token[:-2]
        token = token.strip(".'’-")
        if token:
            out.append(token)
    return out


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    # Porter, as the store's FTS5 tokenizer uses, so "earthquakes" meets "earthquake".
    return str(_STEMMER.stem(word, to_lowercase=False))


def index_terms(text: str, language: str = "english") -> list[str]:
    """Stemmed lower-case content words; numbers kept verbatim because they name events."""
    stop = stop_words(language)
    out: list[str] = []
    for token in words(text):
        key = token.lower()
        if key in stop or len(key) < 2:
            continue
        if key[0].isdigit():
            out.append(key.replace(",", ""))
        elif len(key) >= 3:
            out.append(stem(key) if language == "english" else key)
    return out


def _title_case(tokens: list[str]) -> bool:
    # In "Tara Reid Checks Into Rehab" capitals say nothing about names.
    alpha = [t for t in tokens if t[0].isalpha() and len(t) > 3]
    return len(alpha) >= 3 and sum(t[0].isupper() for t in alpha) >= 0.7 * len(alpha)


def _tokens_with_starts(chunk: str) -> tuple[list[str], list[bool]]:
    tokens: list[str] = []
    initial: list[bool] = []
    at_start = True
    for match in _TOKEN.finditer(chunk):
        token = match.group().removesuffix("'s").removesuffix("’s").strip(".'’-")
        if token:
            tokens.append(token)
            initial.append(at_start)
        at_start = bool(_SENTENCE_END.search(chunk[match.start() : match.end() + 2]))
    return tokens, initial


def entity_counts(title: str, text: str, language: str = "english") -> Counter[str]:
    """Evidence that pins a story to one event: names ("n:"), years ("y:"), numbers ("q:").

    Names are approximated by capitalised words that are not sentence-initial (or that the
    story also capitalises mid-sentence), so no tagger or gazetteer is needed. A Title Case
    headline names nothing by its capitals, so only its acronyms, years and figures count.
    """
    stop = stop_words(language)
    chunks = [_tokens_with_starts(title), _tokens_with_starts(text)]
    if _title_case(chunks[0][0]):
        chunks[0] = (chunks[0][0], [True] * len(chunks[0][0]))
    mid_sentence_caps = {
        token.lower()
        for tokens, initial in chunks
        for token, first in zip(tokens, initial, strict=True)
        if token[0].isupper() and not first
    }
    counts: Counter[str] = Counter()
    for tokens, initial in chunks:
        for token, first in zip(tokens, initial, strict=True):
            key = token.lower()
            if token[0].isdigit():
                if _YEAR.fullmatch(key):
                    counts["y:" + key] += 1
                elif _NUMBER.fullmatch(key) and len(key) > 1:
                    counts["q:" + key.replace(",", "")] += 1
                continue
            if not token[0].isupper() or key in _NOT_NAMES or key in _CONNECTORS:
                continue
            if key in stop or len(key) < 2:
                continue
            if first and key not in mid_sentence_caps and not token.isupper():
                continue
            counts["n:" + key] += 1
    return counts


def _shingles(tokens: list[str]) -> set[str]:
    # Short texts (headlines) get pairs so that one changed word does not hide a copy.
    size = 3 if len(tokens) >= 30 else 2
    if len(tokens) < size:
        return set(tokens)
    return {" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1)}


def _hash64(value: str) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big")


_MASK = (1 << 61) - 1
# Fixed odd multipliers and offsets: the signature must mean the same thing in every process.
_PERMUTATIONS = tuple((_hash64(f"a{i}") | 1, _hash64(f"b{i}")) for i in range(MINHASH_SIZE))


def minhash(text: str) -> tuple[int, ...]:
    """A MinHash signature of the text's word shingles; empty text gives an empty tuple."""
    tokens = [token.lower() for token in words(text)]
    shingles = _shingles(tokens)
    if not shingles:
        return ()
    hashes = [_hash64(shingle) for shingle in shingles]
    return tuple(min((a * h + b) & _MASK for h in hashes) for a, b in _PERMUTATIONS)


def minhash_similarity(left: tuple[int, ...], right: tuple[int, ...]) -> float:
    """Estimated Jaccard similarity of two signatures' shingle sets (0 if either is empty)."""
    if not left or len(left) != len(right):
        return 0.0
    # map(eq) keeps the comparison loop in C; copy folding calls this for every pair.
    same: int = sum(map(operator.eq, left, right))
    return same / len(left)

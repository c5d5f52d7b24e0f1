"""Text pieces for story relatedness: index terms, entity evidence and copy signatures.

Everything here is deterministic across processes (no salted `hash()`), because the results
are stored at ingest and compared with ones computed months later.
"""

from __future__ import annotations

import hashlib
import operator
import re
from collections import Counter
from collections.abc import Iterator
from functools import cache, lru_cache, partial
from itertools import chain, compress, pairwise, repeat
from operator import itemgetter, methodcaller
from sys import intern
from typing import NamedTuple

from nltk.stem import PorterStemmer
from sumy.utils import get_stop_words

__all__ = [
    "MINHASH_SIZE",
    "TextFeatures",
    "entity_counts",
    "index_terms",
    "lower_words",
    "minhash",
    "minhash_similarity",
    "shingle_digests",
    "stem",
    "stop_words",
    "text_features",
    "words",
]

MINHASH_SIZE = 32

# Letters, digits and in-word apostrophes, dots and hyphens ("O'Connor", "6.1", "U.S.").
_TOKEN = re.compile(r"[^\W_](?:[\w'’.-]*[^\W_])?", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?:;\"“”]\s*$")
# _TOKEN, and in a lookahead whether the two characters after it end a sentence: the same
# test as _SENTENCE_END on the token and those two characters (the token ends in a letter
# or digit, so the end mark is one of them, followed by nothing but whitespace). The second
# group is empty when they do not.
_TOKEN_AND_END = re.compile(
    r"([^\W_](?:[\w'’.-]*[^\W_])?)(?=(.[.!?:;\"“”]|[.!?:;\"“”]\s|[.!?:;\"“”]\Z)?)",
    re.UNICODE | re.DOTALL,
)
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


class TextFeatures(NamedTuple):
    """What `build_features` needs of a story's words, from one tokenisation of each part."""

    # index_terms(title) counted `title_weight` times each, plus index_terms(text).
    terms: Counter[str]
    # entity_counts(title, text).
    entities: Counter[str]
    # The lower-cased words(f"{title}\n{text}"), in order: the MinHash shingles' words.
    tokens: list[str]


# What the features need of one raw `_TOKEN` match, worked out once per process, as a plain
# tuple so that C-level itemgetters can read it:
#   lower: words()'s form, lower-cased           term: its index term, or None
#   figure: a digit token's "y:"/"q:" entity      name: its "n:" entity if it may be a name
#   key: entity_counts' lower-cased token, when it starts with a capital (else None)
#   all_caps: an acronym, which counts even at a sentence start
#   title_alpha, title_upper: how it counts towards `_title_case`
#   relevant: it can add an entity or a mid-sentence capital (figure or key is set)
_Token = tuple[str, str | None, str | None, str | None, str | None, bool, bool, bool, bool]
_LOWER_OF = itemgetter(0)
_TERM_OF = itemgetter(1)
_RELEVANT_OF = itemgetter(8)
_FIRST_OF = itemgetter(0)
_SECOND_OF = itemgetter(1)
_IS_SET = partial(operator.is_not, None)

# Per language: news vocabulary repeats, so most tokens are looked up, not worked out.
_TOKENS: dict[str, dict[str, _Token]] = {}
# A serving bot keeps these for days: a few hundred bytes a token, so at most ~15 MB.
_MAX_CACHED_TOKENS = 50_000


def _token(raw: str, stop: frozenset[str], english: bool) -> _Token:
    # The same steps, in the same order, as words()/index_terms() and _tokens_with_starts()/
    # entity_counts(). Neither form can be empty: a match starts with a letter or digit,
    # which neither the suffix removal nor the strip can reach.
    word = (raw[:-2] if raw.endswith(("'s", "’s")) else raw).strip(".'’-")
    lower = intern(word.lower())
    term: str | None = None
    if not (lower in stop or len(lower) < 2):
        if lower[0].isdigit():
            term = lower.replace(",", "")
        elif len(lower) >= 3:
            term = stem(lower) if english else lower
    token = raw.removesuffix("'s").removesuffix("’s").strip(".'’-")
    key = intern(token.lower())
    figure: str | None = None
    name: str | None = None
    if token[0].isdigit():
        if _YEAR.fullmatch(key):
            figure = "y:" + key
        elif _NUMBER.fullmatch(key) and len(key) > 1:
            figure = "q:" + key.replace(",", "")
    elif not (
        not token[0].isupper()
        or key in _NOT_NAMES
        or key in _CONNECTORS
        or key in stop
        or len(key) < 2
    ):
        name = "n:" + key
    upper = token[0].isupper()
    return (
        lower,
        term,
        figure,
        name,
        key if upper else None,
        token.isupper(),
        token[0].isalpha() and len(token) > 3,
        upper,
        figure is not None or upper,
    )


def _tokens(language: str) -> dict[str, _Token]:
    cached = _TOKENS.get(language)
    if cached is None or len(cached) > _MAX_CACHED_TOKENS:
        cached = _TOKENS[language] = {}
    return cached


def _learn(known: dict[str, _Token], missing: set[str], language: str) -> None:
    """Work out the tokens not in the cache yet, and keep them."""
    if not missing:
        return
    stop = stop_words(language)
    english = language == "english"
    for raw in missing:
        # Interned, as the summariser's and the salient terms' caches keep the same words.
        known[intern(raw)] = _token(raw, stop, english)


def text_features(
    title: str, text: str, language: str = "english", *, title_weight: int = 1
) -> TextFeatures:
    """index_terms, entity_counts and the lower-cased words of a story in one pass per part.

    The same results as the separate functions (tests/test_prepare_equivalence.py checks it),
    at a fraction of the cost: each part is tokenised once, by one `findall`; what a token
    means is worked out once per process; counting runs in C (Counter over maps), and only
    tokens that can be entities (capitalised or numeric) go through a Python loop.
    """
    known = _tokens(language)
    title_found = _TOKEN_AND_END.findall(title)
    text_found = _TOKEN_AND_END.findall(text)
    title_raws: list[str] = list(map(_FIRST_OF, title_found))
    text_raws: list[str] = list(map(_FIRST_OF, text_found))
    _learn(known, set(title_raws).union(text_raws).difference(known), language)
    title_tokens = list(map(known.__getitem__, title_raws))
    text_tokens = list(map(known.__getitem__, text_raws))

    terms: Counter[str] = Counter(filter(_IS_SET, map(_TERM_OF, text_tokens)))
    for term, count in Counter(filter(_IS_SET, map(_TERM_OF, title_tokens))).items():
        terms[term] += title_weight * count

    # A Title Case headline names nothing by its capitals: all its words count as initial.
    alpha = [token for token in title_tokens if token[6]]
    if len(alpha) >= 3 and sum(token[7] for token in alpha) >= 0.7 * len(alpha):
        title_initial: Iterator[bool] = repeat(True)
    else:
        title_initial = _initial(title_found)
    chunks = [
        _entity_pairs(title_raws, title_initial, title_tokens),
        _entity_pairs(text_raws, _initial(text_found), text_tokens),
    ]
    mid_sentence_caps = {
        key
        for pairs in chunks
        for raw, first in pairs
        if not first and (key := known[raw][4]) is not None
    }
    entities: Counter[str] = Counter()
    for pairs in chunks:
        for (raw, first), count in pairs.items():
            _, _, figure, name, key, all_caps, _, _, _ = known[raw]
            if figure is not None:
                entities[figure] += count
            elif name is not None and (not first or all_caps or key in mid_sentence_caps):
                entities[name] += count
    lowers = list(map(_LOWER_OF, title_tokens))
    lowers.extend(map(_LOWER_OF, text_tokens))
    return TextFeatures(terms, entities, lowers)


def _entity_pairs(
    raws: list[str], initial: Iterator[bool], tokens: list[_Token]
) -> Counter[tuple[str, bool]]:
    """How often each token that can be an entity occurs sentence-initially and not."""
    # `initial` may run longer than the tokens (one extra item, or for ever).
    pairs = zip(raws, initial, strict=False)
    return Counter(compress(pairs, map(_RELEVANT_OF, tokens)))


def _initial(found: list[tuple[str, str]]) -> Iterator[bool]:
    """Whether each token is sentence-initial: the first is, and any after one whose
    look-ahead group (the two characters after it) ended a sentence."""
    return map(bool, chain(("start",), map(_SECOND_OF, found)))


def lower_words(text: str, language: str = "english") -> list[str]:
    """`[word.lower() for word in words(text)]`, from the token cache."""
    raws = _TOKEN.findall(text)
    known = _tokens(language)
    _learn(known, set(raws).difference(known), language)
    return list(map(_LOWER_OF, map(known.__getitem__, raws)))


def _shingles(tokens: list[str]) -> set[str]:
    # Short texts (headlines) get pairs so that one changed word does not hide a copy.
    if len(tokens) >= 30:
        # zip() makes the windows in C: a story has hundreds.
        return set(map(" ".join, zip(tokens, tokens[1:], tokens[2:], strict=False)))
    if len(tokens) < 2:
        return set(tokens)
    return set(map(" ".join, pairwise(tokens)))


def _hash64(value: str) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big")


_DIGEST8 = partial(hashlib.blake2b, digest_size=8)
_DIGEST = methodcaller("digest")


def shingle_digests(shingles: set[str]) -> bytes:
    """`_hash64` of every shingle (in the set's order), as 8-byte big-endian words in a row.

    numpy reads them with `frombuffer(..., ">u8")`; mapping the C functions over the set
    saves the Python-level call and `int.from_bytes` per shingle that `_hash64` costs.
    """
    return b"".join(map(_DIGEST, map(_DIGEST8, map(str.encode, shingles))))


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

"""Related stories: re-rank full-text candidates so that the same event comes first.

The store's full-text search finds candidates that share words with a story; words alone
cannot tell two earthquakes or two celebrities' rehab stays apart. Here the candidates are
re-scored with a TF-IDF cosine plus the evidence that does tell events apart: the names,
years and figures they share or contradict, and how far apart they were published. Copies of
one story from several outlets are folded into one hit.

Features are computed once at ingest (`build_features`) and are plain JSON (`to_json`), so
the store can keep them next to the story; `CorpusStats` holds the document frequencies.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from summarize.lru import remember, touch
from summarize.related_text import (
    _MASK,
    _PERMUTATIONS,
    _shingles,
    lower_words,
    minhash_similarity,
    shingle_digests,
    text_features,
)

__all__ = [
    "CorpusStats",
    "Doc",
    "DocFeatures",
    "RelatedHit",
    "Vectors",
    "Weights",
    "build_features",
    "rank_related",
    "signature",
]

Key = int | str

# Bounds what one story costs to store; the tail of a long article's vocabulary is noise.
MAX_TERMS = 250
MAX_ENTITIES = 60
# Headlines repeat the story's gist; counting them twice keeps full texts from drowning them.
TITLE_WEIGHT = 2
# Vector positions kept between ranking rounds (`CorpusStats.trim` drops all past it).
_MAX_IDS = 200_000
# Least-recently-used bounds: the Vectors of stories ranked as DocFeatures (about 1.5 KB each,
# kept between rounds, with the DocFeatures they came from) and weighted vectors under the
# current counts (about 3 KB each).
_MAX_STATIC = 2_000
_MAX_PREPARED = 2_000


@dataclass(frozen=True, slots=True)
class Doc:
    """A story as the relatedness code needs it; `text` may be empty (headline only)."""

    key: Key
    title: str
    text: str = ""
    source: str | None = None
    published_at: datetime | None = None
    language: str = "english"


@dataclass(frozen=True, slots=True)
class DocFeatures:
    """What `rank_related` needs of a story, computed once at ingest; see `to_json`."""

    key: Key
    terms: Mapping[str, int]
    entities: Mapping[str, int]
    signature: tuple[int, ...]
    source: str | None = None
    published_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; `from_json` reads it back."""
        return {
            "key": self.key,
            "terms": dict(self.terms),
            "entities": dict(self.entities),
            "signature": list(self.signature),
            "source": self.source,
            "published_at": self.published_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DocFeatures:
        """Features from a dict written by `to_json`."""
        terms, entities = data["terms"], data["entities"]
        return cls(
            key=data["key"],
            # map() keeps the conversions in C: candidates' features are read by the thousand.
            terms=dict(zip(map(str, terms), map(int, terms.values()), strict=True)),
            entities=dict(zip(map(str, entities), map(int, entities.values()), strict=True)),
            signature=tuple(map(int, data["signature"])),
            source=data.get("source"),
            published_at=data.get("published_at"),
        )

    def vocabulary(self) -> set[str]:
        """Every key that counts towards document frequencies (terms and entities)."""
        return set(self.terms) | set(self.entities)


@dataclass(slots=True)
class CorpusStats:
    """Document frequencies of terms and entities, updated one story at a time."""

    docs: int = 0
    df: dict[str, int] = field(default_factory=dict)
    # idf values and candidate vectors already worked out: ranking a batch of stories meets
    # the same words and the same candidates again and again. Both depend only on the counts.
    _idf: dict[str, float] = field(default_factory=dict, repr=False, compare=False)
    _prepared: dict[int | str, _Prepared] = field(default_factory=dict, repr=False, compare=False)
    # Vector positions of keys (terms and entities), the keys by position, and stories'
    # `Vectors`: none depend on the counts, so `rebase` keeps them (`trim` bounds them).
    _ids: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    _keys: list[str] = field(default_factory=list, repr=False, compare=False)
    _static: dict[int | str, tuple[DocFeatures, Vectors]] = field(
        default_factory=dict, repr=False, compare=False
    )
    # Bumped when `trim` forgets the positions, which invalidates every `Vectors` made before.
    _generation: int = field(default=0, repr=False, compare=False)
    # idf by vector position under these counts, for every position given out when it was
    # last grown: candidates share most of their words, so each key's idf is looked up once
    # per round, not once per story, and a story's lookup is one gather.
    _idf_at: FloatArray = field(
        default_factory=lambda: np.zeros(0, dtype=np.float64), repr=False, compare=False
    )

    def rebase(self, docs: int, df: dict[str, int]) -> None:
        """Take new counts (read from the store) but keep what does not depend on them, so a
        long run of ranking rounds reuses its candidates' vector positions."""
        self.docs = docs
        self.df = df
        self._idf.clear()
        self._idf_at = _NO_IDFS
        self._prepared.clear()

    def trim(self) -> bool:
        """Forget all vector positions once there are too many; True if it did.

        `Vectors` made before are then unusable, so callers that keep them call this only
        between rankings and drop what they kept when it returns True.
        """
        if len(self._ids) <= _MAX_IDS:
            return False
        self._ids.clear()
        self._keys.clear()
        self._static.clear()
        self._prepared.clear()
        self._idf_at = _NO_IDFS
        self._generation += 1
        return True

    def extend(self, df: Mapping[str, int]) -> None:
        """Take the counts of keys not counted before, the stories counted being the same.

        Unlike `rebase` this keeps the stories' vectors worked out so far: each was worked
        out after all its keys were counted, so the new keys change none of them.
        """
        self.df.update(df)
        changed = [
            (i, key)
            for key in df
            if (i := self._ids.get(key)) is not None and i < len(self._idf_at)
        ]
        if changed:
            positions, keys = zip(*changed, strict=True)
            self._idf_at[list(positions)] = self.idfs(keys)

    def add(self, features: DocFeatures) -> None:
        """Count one stored story."""
        self.docs += 1
        self._idf.clear()
        self._idf_at = _NO_IDFS
        self._prepared.clear()
        for key in features.vocabulary():
            self.df[key] = self.df.get(key, 0) + 1

    def remove(self, features: DocFeatures) -> None:
        """Forget one story counted before (when the store deletes it)."""
        self.docs = max(0, self.docs - 1)
        self._idf.clear()
        self._idf_at = _NO_IDFS
        self._prepared.clear()
        for key in features.vocabulary():
            left = self.df.get(key, 0) - 1
            if left > 0:
                self.df[key] = left
            else:
                self.df.pop(key, None)

    def idf(self, key: str) -> float:
        """Smoothed inverse document frequency; unseen keys count as seen once."""
        value = self._idf.get(key)
        if value is None:
            value = self._idf[key] = math.log((1 + self.docs) / (1 + self.df.get(key, 0))) + 1.0
        return value

    def idfs(self, keys: Sequence[str]) -> FloatArray:
        """`idf` of many keys at once."""
        df = np.fromiter(map(self.df.get, keys, repeat(0)), dtype=np.float64, count=len(keys))
        values: FloatArray = np.log((1 + self.docs) / (1.0 + df)) + 1.0
        return values

    def idfs_at(self, ids: IdArray) -> FloatArray:
        """`idfs` of the keys at these vector positions (`ids`), remembered."""
        table = self._idf_at
        if len(table) < len(self._keys):
            # Every position given out since: a whole vocabulary (tens of thousands of keys)
            # costs a few milliseconds a round, checking each story's lookup for gaps cost
            # more.
            table = self._idf_at = np.concatenate((table, self.idfs(self._keys[len(table) :])))
        return table.take(ids)

    def ids(self, keys: Sequence[str]) -> IdArray:
        """Vector positions of keys; a key seen for the first time gets the next one."""
        ids = self._ids
        found = list(map(ids.get, keys))
        if None in found:
            names = self._keys
            for n, key in enumerate(keys):
                if found[n] is None:
                    position = ids.get(key)
                    if position is None:
                        position = ids[key] = len(names)
                        names.append(key)
                    found[n] = position
        # Two bytes a position while the vocabulary fits (the first ~65,000 words, tens of
        # thousands of stories): an ingest keeps thousands of these arrays.
        return np.array(found, dtype=np.uint16 if len(self._keys) <= _SHORT_IDS else np.uint32)

    def keys_of(self, ids: IdArray | RowArray) -> list[str]:
        """The keys at these vector positions."""
        return list(map(self._keys.__getitem__, ids.tolist()))

    def vocabulary_size(self) -> int:
        """How many vector positions `ids` has given out."""
        return len(self._ids)

    def prepared(self, story: DocFeatures | Vectors) -> _Prepared:
        """A story's weighted vectors under these counts, worked out once per story."""
        vectors = self.static(story) if isinstance(story, DocFeatures) else story
        if vectors.vocabulary != self._generation:
            raise ValueError(f"vectors of story {vectors.key!r} predate CorpusStats.trim")
        cached = touch(self._prepared, vectors.key)
        if cached is None or cached.features is not vectors:
            cached = _prepare(vectors, self)
            remember(self._prepared, vectors.key, cached, _MAX_PREPARED)
        return cached

    def static(self, features: DocFeatures) -> Vectors:
        """`vectors(features)`, remembered for the story."""
        cached = touch(self._static, features.key)
        if cached is None or (cached[0] is not features and cached[0] != features):
            cached = (features, self.vectors(features))
            remember(self._static, features.key, cached, _MAX_STATIC)
        return cached[1]

    def vectors(self, features: DocFeatures) -> Vectors:
        """What of a story's features does not depend on the counts, in vector positions."""
        return self._vectors_of(
            features.key,
            features.terms,
            features.entities,
            features.signature,
            features.source,
            features.published_at,
        )

    def vectors_from_json(self, key: Key, data: Mapping[str, Any]) -> Vectors:
        """`vectors` of features written by `DocFeatures.to_json` (its key left out).

        Straight from the parsed JSON: building the DocFeatures first cost a third as much
        again, and an ingest reads its candidates' features by the thousand.
        """
        return self._vectors_of(
            key,
            data["terms"],
            data["entities"],
            data["signature"],
            data.get("source"),
            data.get("published_at"),
        )

    def _vectors_of(
        self,
        key: Key,
        terms: Mapping[str, int],
        entities: Mapping[str, int],
        signature: Sequence[int],
        source: str | None,
        published_at: str | None,
    ) -> Vectors:
        return Vectors(
            key,
            _Counts.of(terms, self),
            _Counts.of(entities, self),
            _pack(signature),
            source,
            frozenset(years) if (years := _years(entities)) else _NO_YEARS,
            _parse_date(published_at),
            self._generation,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; `from_json` reads it back."""
        return {"docs": self.docs, "df": dict(self.df)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CorpusStats:
        """Stats from a dict written by `to_json`."""
        return cls(int(data["docs"]), {str(k): int(v) for k, v in data["df"].items()})

    @classmethod
    def of(cls, features: Iterable[DocFeatures]) -> CorpusStats:
        """Stats counted over the given stories."""
        stats = cls()
        for item in features:
            stats.add(item)
        return stats


@dataclass(frozen=True, slots=True)
class RelatedHit:
    """One related story; `copies` are other outlets' copies of it, folded into this hit."""

    key: Key
    score: float
    copies: tuple[Key, ...] = ()
    outlets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Weights:
    """How much each kind of evidence counts, added to a TF-IDF cosine in [0, 1].

    Defaults were chosen on bench/related.py's dev sets. There, feedback and dates carry the
    gain; the entity terms measured neutral on full texts and slightly negative on
    headlines (names are already words in the TF-IDF vector), so they are kept small: they
    encode the rule that other names or another year mean another event.
    """

    entities: float = 0.1
    mismatch: float = 0.05
    year_mismatch: float = 0.05
    recency: float = 0.25
    recency_days: float = 3.0
    far_apart: float = 0.15
    feedback: float = 0.5
    feedback_docs: int = 3
    copy_similarity: float = 0.6
    same_source: float = 0.02
    use_dates: bool = True


DEFAULT_WEIGHTS = Weights()


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def build_features(doc: Doc) -> DocFeatures:
    """The features of one story, cheap to store as JSON and to compare later."""
    # One tokenisation of title and text gives the index terms (title counted TITLE_WEIGHT
    # times), the entities and the words of the copy signature.
    found = text_features(doc.title, doc.text, doc.language, title_weight=TITLE_WEIGHT)
    return DocFeatures(
        key=doc.key,
        terms=dict(_top(found.terms, MAX_TERMS)),
        entities=dict(_top(found.entities, MAX_ENTITIES)),
        signature=_signature(found.tokens),
        source=(doc.source or None),
        published_at=_iso(doc.published_at),
    )


# related_text's permutations as arrays. uint64 arithmetic wraps modulo 2**64, which keeps
# the low 61 bits that `& _MASK` takes, so the values are exactly `minhash`'s.
_PERMUTATION_A = np.array([a for a, _ in _PERMUTATIONS], dtype=np.uint64)
_PERMUTATION_B = np.array([b for _, b in _PERMUTATIONS], dtype=np.uint64)[:, None]


def signature(text: str) -> tuple[int, ...]:
    """`related_text.minhash(text)`, with the permutations applied by numpy.

    The pure-Python loop (32 permutations of every shingle) was a third of the CPU time of
    preparing a story at ingest.
    """
    return _signature(lower_words(text))


def _signature(tokens: list[str]) -> tuple[int, ...]:
    """`signature` of the text whose lower-cased words these are."""
    shingles = _shingles(tokens)
    if not shingles:
        return ()
    hashes = np.frombuffer(shingle_digests(shingles), dtype=">u8").astype(np.uint64)
    mixed = np.multiply.outer(_PERMUTATION_A, hashes)
    mixed += _PERMUTATION_B
    mixed &= np.uint64(_MASK)
    values: list[int] = mixed.min(axis=1).tolist()
    return tuple(values)


_KEY_OF = itemgetter(0)
_COUNT_OF = itemgetter(1)


def _top(counts: Counter[str], limit: int) -> list[tuple[str, int]]:
    # Ties broken by the key so that stored features never depend on dict order: sorted by
    # key, then stably by count, highest first (two sorts with C key functions).
    items = sorted(counts.items(), key=_KEY_OF)
    items.sort(key=_COUNT_OF, reverse=True)
    return items[:limit]


FloatArray = npt.NDArray[np.float64]
# Vector positions: uint16 or uint32 (see `CorpusStats.ids`).
IdArray = npt.NDArray[np.unsignedinteger[Any]]
_SHORT_IDS = 2**16
RowArray = npt.NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class _Sparse:
    """An L2-normalised TF-IDF vector: vocabulary ids (`CorpusStats.ids`) and weights."""

    ids: IdArray
    weights: FloatArray


_NO_IDS: IdArray = np.zeros(0, dtype=np.uint16)
_NO_IDFS: FloatArray = np.zeros(0, dtype=np.float64)
_EMPTY = _Sparse(_NO_IDS, np.zeros(0, dtype=np.float64))


@dataclass(frozen=True, slots=True, eq=False)
class _Counts:
    """A story's positive counts by vector position (keys are `CorpusStats.keys_of`)."""

    ids: IdArray
    # Counts rather than 1 + log(count), in the smallest unsigned type that holds them
    # (a byte for nearly every story): an ingest keeps thousands of these, and the log is
    # cheap next to the idf weighting each round does anyway.
    tf: npt.NDArray[np.unsignedinteger[Any]]

    @classmethod
    def of(cls, counts: Mapping[str, int], stats: CorpusStats) -> _Counts:
        keys = list(counts)
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(keys))
        if len(tf) and tf.min() <= 0:
            keep = tf > 0
            keys = [k for k, kept in zip(keys, keep.tolist(), strict=True) if kept]
            tf = tf[keep]
        if not keys:
            return _NO_COUNTS
        tf = np.minimum(tf, _MAX_COUNT)
        return cls(stats.ids(keys), tf.astype(np.min_scalar_type(int(tf.max()))))

    def vector(self, stats: CorpusStats) -> _Sparse:
        if not len(self.ids):
            return _EMPTY
        tf = self.tf
        logs = (
            _ONE_PLUS_LOG.take(tf) if tf.dtype == np.uint8 else 1.0 + np.log(tf, dtype=np.float64)
        )
        weights = logs * stats.idfs_at(self.ids)
        norm = math.sqrt(float(np.dot(weights, weights)))
        if not norm:
            return _EMPTY
        weights /= norm
        return _Sparse(self.ids, weights)


# Far above any count a story can have; stored counts are clipped to it to fit in uint32.
_MAX_COUNT = float(2**32 - 1)
# 1 + log(count) of every one-byte count (nearly all stories' counts are one byte): a gather
# costs less than the logarithms, and ranking weights every candidate once a round.
_ONE_PLUS_LOG: FloatArray = np.concatenate(
    ([0.0], 1.0 + np.log(np.arange(1, 256, dtype=np.float64)))
)
# Shared by every story without entities (or terms), as is _NO_YEARS by those without years.
_NO_COUNTS = _Counts(_NO_IDS, np.zeros(0, dtype=np.uint8))
_NO_YEARS: frozenset[str] = frozenset()
_NO_KEYS: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, eq=False)
class Vectors:
    """What ranking needs of a story, with its keys as vector positions (`CorpusStats.ids`).

    About 1.5 KB against DocFeatures' 21 KB, so an ingest can keep its recent candidates'
    (each story is a candidate of many later ones) instead of parsing them again. Only
    usable with the CorpusStats that made them, until its `trim`.
    """

    key: Key
    terms: _Counts
    entities: _Counts
    # The MinHash signature as packed uint64 (a tuple of ints is five times the size).
    signature: bytes
    source: str | None
    years: frozenset[str]
    date: datetime | None
    vocabulary: int


def _pack(signature: Sequence[int]) -> bytes:
    return np.array(signature, dtype=np.uint64).tobytes()


def _unpack(signature: bytes) -> tuple[int, ...]:
    values: list[int] = np.frombuffer(signature, dtype=np.uint64).tolist()
    return tuple(values)


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _names(keys: Sequence[str], weights: FloatArray, top: int) -> set[str]:
    names = sorted(
        ((w, k) for k, w in zip(keys, weights.tolist(), strict=True) if k.startswith("n:")),
        key=lambda x: (-x[0], x[1]),
    )
    return {k for _, k in names[:top]}


def _years(entities: Mapping[str, int]) -> set[str]:
    years = {k: v for k, v in entities.items() if k.startswith("y:")}
    if not years:
        return set()
    most = max(years.values())
    return {k for k, v in years.items() if v == most}


@dataclass(slots=True)
class _Prepared:
    features: Vectors
    terms: _Sparse
    entities: _Sparse
    # The entities with weight (for "neither's main names appear in the other").
    entity_keys: frozenset[str]
    names: set[str]
    years: frozenset[str]
    date: datetime | None


def _prepare(vectors: Vectors, stats: CorpusStats) -> _Prepared:
    entities = vectors.entities.vector(stats)
    if len(entities.ids):
        entity_keys = stats.keys_of(entities.ids)
        keys, names = frozenset(entity_keys), _names(entity_keys, entities.weights, 3)
    else:
        keys, names = _NO_KEYS, set()
    return _Prepared(
        vectors, vectors.terms.vector(stats), entities, keys, names, vectors.years, vectors.date
    )


@dataclass(frozen=True, slots=True)
class _Stack:
    """Many vectors laid end to end, so that their dot products with one dense vector are a
    gather, a multiply and a sum per vector."""

    # Native-width positions: numpy gathers by intp at about 60% of the time it takes by
    # the vectors' own two- or four-byte positions, which it would convert on every gather.
    ids: RowArray
    weights: FloatArray
    # Where each non-empty vector starts, and which vectors those are: `np.add.reduceat`
    # sums the segments in a tenth of the time `bincount` took, but has no empty segment.
    starts: RowArray
    filled: RowArray
    count: int

    @classmethod
    def of(cls, vectors: Sequence[_Sparse]) -> _Stack:
        sizes = np.fromiter(map(len, (v.ids for v in vectors)), dtype=np.intp, count=len(vectors))
        filled = np.flatnonzero(sizes)
        if not len(filled):
            none = np.zeros(0, dtype=np.intp)
            return cls(none, np.zeros(0, dtype=np.float64), none, none, len(vectors))
        ends = np.cumsum(sizes)
        return cls(
            np.concatenate([v.ids for v in vectors], dtype=np.intp),
            np.concatenate([v.weights for v in vectors]),
            (ends - sizes)[filled],
            filled,
            len(vectors),
        )

    def dots(self, dense: FloatArray) -> FloatArray:
        if not len(self.filled):
            return np.zeros(self.count, dtype=np.float64)
        sums: FloatArray = np.add.reduceat(dense.take(self.ids) * self.weights, self.starts)
        if len(self.filled) == self.count:
            return sums
        out = np.zeros(self.count, dtype=np.float64)
        out[self.filled] = sums
        return out


def _dense(vector: _Sparse, size: int) -> FloatArray:
    out = np.zeros(size, dtype=np.float64)
    out.put(vector.ids, vector.weights)
    return out


def _evidence(
    query: _Prepared, pool: Sequence[_Prepared], weights: Weights, size: int
) -> FloatArray:
    stack = _Stack.of([c.entities for c in pool])
    out = weights.entities * stack.dots(_dense(query.entities, size))
    for n, other in enumerate(pool):
        score = 0.0
        # Both stories name people or places, yet neither's main names appear in the other:
        # the same kind of event happening to someone else.
        if (
            query.names
            and other.names
            and not (query.names & other.entity_keys)
            and not (other.names & query.entity_keys)
        ):
            score -= weights.mismatch
        if query.years and other.years and not (query.years & other.years):
            score -= weights.year_mismatch
        if weights.use_dates and query.date and other.date:
            days = abs((query.date - other.date).total_seconds()) / 86400.0
            score += weights.recency / (1.0 + days / weights.recency_days)
            if days > 365:
                score -= weights.far_apart
        if score:
            out[n] += score
    return out


def rank_related(
    query: DocFeatures | Vectors,
    candidates: Sequence[DocFeatures | Vectors],
    *,
    limit: int = 10,
    stats: CorpusStats | None = None,
    weights: Weights = DEFAULT_WEIGHTS,
    fold_copies: bool = True,
    min_score: float = -math.inf,
) -> list[RelatedHit]:
    """The candidates most likely about the same event as `query`, best first.

    `stats` should be the store's document frequencies; without them the query and
    candidates stand in for the corpus, which is fine for a handful of tests but weak on
    real data. Candidates with the query's key are ignored. With `fold_copies`, near
    copies of a hit (the same story from another outlet) become that hit's `copies`.
    `Vectors` need the `stats` that made them.
    """
    if limit <= 0:
        return []
    pool = [c for c in candidates if c.key != query.key]
    if stats is not None:
        corpus = stats
    else:
        stories = [query, *pool]
        if not all(isinstance(story, DocFeatures) for story in stories):
            raise ValueError("Vectors need the CorpusStats that made them")
        corpus = CorpusStats.of(story for story in stories if isinstance(story, DocFeatures))
    q = corpus.prepared(query)
    prepared = [corpus.prepared(c) for c in pool]
    size = corpus.vocabulary_size()
    evidence = _evidence(q, prepared, weights, size)
    stack = _Stack.of([c.terms for c in prepared])
    dense = _dense(q.terms, size)
    scores = stack.dots(dense) + evidence

    # Pseudo-relevance feedback: the best few candidates describe the event better than the
    # query alone, and pull in its other reports that share words with them, not with it.
    if weights.feedback > 0 and len(prepared) > weights.feedback_docs:
        share = weights.feedback / weights.feedback_docs
        touched = [q.terms.ids]
        for i in _order(prepared, scores.tolist())[: weights.feedback_docs]:
            top = prepared[i].terms
            dense[top.ids] += share * top.weights
            touched.append(top.ids)
        # Only the touched positions: a matrix product over the whole vocabulary goes to
        # BLAS, whose threads fight the ingest pool for the cores. A mask selects them in
        # ascending order, as np.unique would, at a sixth of its cost.
        mask = np.zeros(size, dtype=np.bool_)
        mask[np.concatenate(touched)] = True
        used = dense[mask]
        norm = math.sqrt(float(np.dot(used, used)))
        if norm:
            dense /= norm
        scores = stack.dots(dense) + evidence

    # Folding copies compares every pair of hits; hits under the floor are never shown.
    values = scores.tolist()
    order = [i for i in _order(prepared, values) if values[i] >= min_score]
    return _select(
        q, [prepared[i] for i in order], [values[i] for i in order], limit, weights, fold_copies
    )


def _order(prepared: Sequence[_Prepared], scores: Sequence[float]) -> list[int]:
    # Ties fall back to the key so that the same input always gives the same ranking.
    return sorted(range(len(prepared)), key=lambda i: (-scores[i], str(prepared[i].features.key)))


def _copy_pairs(ranked: Sequence[_Prepared], threshold: float) -> list[list[int]] | None:
    """For each hit, the earlier hits it is a near copy of (ascending), all pairs compared at
    once; None when the signatures differ in length (then `minhash_similarity` decides pair
    by pair)."""
    signatures = [item.features.signature for item in ranked]
    sizes = {len(s) for s in signatures}
    if len(sizes) != 1 or not ranked:
        return None
    size = sizes.pop() // 8
    if not size:
        return [list(range(row)) if threshold <= 0.0 else [] for row in range(len(ranked))]
    matrix = np.frombuffer(b"".join(signatures), dtype=np.uint64).reshape(len(ranked), size)
    same = (matrix[:, None, :] == matrix[None, :, :]).sum(axis=2)
    # Copies are rare: listing the few similar pairs beats walking a matrix of booleans.
    earlier: list[list[int]] = [[] for _ in ranked]
    # The lower triangle by hand: np.tril spent ~0.1 ms a call working out integer limits, a
    # third of the time of re-ranking a short list.
    rows, cols = np.nonzero(same / size >= threshold)
    for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
        if col < row:
            earlier[row].append(col)
    return earlier


def _select(
    query: _Prepared,
    ranked: list[_Prepared],
    scores: list[float],
    limit: int,
    weights: Weights,
    fold_copies: bool,
) -> list[RelatedHit]:
    heads: list[_Prepared] = []
    head_scores: list[float] = []
    copies: list[list[_Prepared]] = []
    earlier = _copy_pairs(ranked, weights.copy_similarity) if fold_copies else None
    # Row of each head in `ranked` -> its place among the heads.
    head_of: dict[int, int] = {}
    for row, (item, score) in enumerate(zip(ranked, scores, strict=True)):
        if fold_copies:
            # The first head (in rank order) the item is a near copy of, if any.
            home = (
                next((head_of[r] for r in earlier[row] if r in head_of), None)
                if earlier is not None
                else next(
                    (
                        n
                        for n, head in enumerate(heads)
                        if minhash_similarity(
                            _unpack(head.features.signature), _unpack(item.features.signature)
                        )
                        >= weights.copy_similarity
                    ),
                    None,
                )
            )
            if home is not None:
                copies[home].append(item)
                continue
        head_of[row] = len(heads)
        heads.append(item)
        head_scores.append(score)
        copies.append([])

    # Among near-equal hits, a new outlet is worth more than a third report from the same one.
    seen: Counter[str] = Counter()
    if query.features.source:
        seen[query.features.source] += 1
    sources = [head.features.source for head in heads]
    penalty = weights.same_source

    def adjusted(n: int) -> float:
        source = sources[n]
        return head_scores[n] - penalty * (seen[source] if source else 0)

    current = [adjusted(n) for n in range(len(heads))]
    chosen: list[RelatedHit] = []
    remaining = list(range(len(heads)))
    while remaining and len(chosen) < limit:
        # max() keeps the first of equal values, and `remaining` is ascending: ties go to the
        # better-ranked head.
        best = max(remaining, key=current.__getitem__)
        remaining.remove(best)
        head = heads[best]
        source = sources[best]
        if source:
            seen[source] += 1
            for n in remaining:
                if sources[n] == source:
                    current[n] = adjusted(n)
        outlets = dict.fromkeys(
            c.features.source for c in (head, *copies[best]) if c.features.source
        )
        chosen.append(
            RelatedHit(
                key=head.features.key,
                score=round(head_scores[best], 6),
                copies=tuple(c.features.key for c in copies[best]),
                outlets=tuple(o for o in outlets if o),
            )
        )
    return chosen

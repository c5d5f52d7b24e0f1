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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from summarize.related_text import (
    entity_counts,
    index_terms,
    minhash,
    minhash_similarity,
)

__all__ = [
    "CorpusStats",
    "Doc",
    "DocFeatures",
    "RelatedHit",
    "Weights",
    "build_features",
    "rank_related",
]

Key = int | str

# Bounds what one story costs to store; the tail of a long article's vocabulary is noise.
MAX_TERMS = 250
MAX_ENTITIES = 60
# Headlines repeat the story's gist; counting them twice keeps full texts from drowning them.
TITLE_WEIGHT = 2


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
        return cls(
            key=data["key"],
            terms={str(k): int(v) for k, v in data["terms"].items()},
            entities={str(k): int(v) for k, v in data["entities"].items()},
            signature=tuple(int(v) for v in data["signature"]),
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

    def add(self, features: DocFeatures) -> None:
        """Count one stored story."""
        self.docs += 1
        self._idf.clear()
        self._prepared.clear()
        for key in features.vocabulary():
            self.df[key] = self.df.get(key, 0) + 1

    def remove(self, features: DocFeatures) -> None:
        """Forget one story counted before (when the store deletes it)."""
        self.docs = max(0, self.docs - 1)
        self._idf.clear()
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

    def prepared(self, features: DocFeatures) -> _Prepared:
        """A story's weighted vectors under these counts, worked out once per story."""
        cached = self._prepared.get(features.key)
        if cached is None or cached.features is not features:
            cached = self._prepared[features.key] = _prepare(features, self.idf)
        return cached

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
    counts: Counter[str] = Counter()
    for term in index_terms(doc.title, doc.language):
        counts[term] += TITLE_WEIGHT
    counts.update(index_terms(doc.text, doc.language))
    entities = entity_counts(doc.title, doc.text, doc.language)
    return DocFeatures(
        key=doc.key,
        terms=dict(_top(counts, MAX_TERMS)),
        entities=dict(_top(entities, MAX_ENTITIES)),
        signature=minhash(f"{doc.title}\n{doc.text}"),
        source=(doc.source or None),
        published_at=_iso(doc.published_at),
    )


def _top(counts: Counter[str], limit: int) -> list[tuple[str, int]]:
    # Ties broken by the key so that stored features never depend on dict order.
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]


Vector = dict[str, float]


def _vector(counts: Mapping[str, int], idf: Callable[[str], float]) -> Vector:
    weights = {k: (1.0 + math.log(v)) * idf(k) for k, v in counts.items() if v > 0}
    norm = math.sqrt(sum(w * w for w in weights.values()))
    return {k: w / norm for k, w in weights.items()} if norm else {}


def _dot(left: Vector, right: Vector) -> float:
    if len(left) > len(right):
        left, right = right, left
    return sum(w * right.get(k, 0.0) for k, w in left.items())


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _names(vector: Vector, top: int) -> set[str]:
    names = sorted(
        ((w, k) for k, w in vector.items() if k.startswith("n:")), key=lambda x: (-x[0], x[1])
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
    features: DocFeatures
    terms: Vector
    entities: Vector
    names: set[str]
    years: set[str]
    date: datetime | None


def _prepare(features: DocFeatures, idf: Callable[[str], float]) -> _Prepared:
    entities = _vector(features.entities, idf)
    return _Prepared(
        features,
        _vector(features.terms, idf),
        entities,
        _names(entities, 3),
        _years(features.entities),
        _parse_date(features.published_at),
    )


def _evidence(query: _Prepared, other: _Prepared, weights: Weights) -> float:
    score = weights.entities * _dot(query.entities, other.entities)
    # Both stories name people or places, yet neither's main names appear in the other:
    # the same kind of event happening to someone else.
    if (
        query.names
        and other.names
        and not (query.names & other.entities.keys())
        and not (other.names & query.entities.keys())
    ):
        score -= weights.mismatch
    if query.years and other.years and not (query.years & other.years):
        score -= weights.year_mismatch
    if weights.use_dates and query.date and other.date:
        days = abs((query.date - other.date).total_seconds()) / 86400.0
        score += weights.recency / (1.0 + days / weights.recency_days)
        if days > 365:
            score -= weights.far_apart
    return score


def _add(into: Vector, vector: Vector, weight: float) -> None:
    for k, w in vector.items():
        into[k] = into.get(k, 0.0) + weight * w


def _normalised(vector: Vector) -> Vector:
    norm = math.sqrt(sum(w * w for w in vector.values()))
    return {k: w / norm for k, w in vector.items()} if norm else {}


def rank_related(
    query: DocFeatures,
    candidates: Sequence[DocFeatures],
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
    """
    if limit <= 0:
        return []
    pool = [c for c in candidates if c.key != query.key]
    corpus = stats if stats is not None else CorpusStats.of([query, *pool])
    q = corpus.prepared(query)
    prepared = [corpus.prepared(c) for c in pool]
    evidence = [_evidence(q, c, weights) for c in prepared]
    scores = [_dot(q.terms, c.terms) + e for c, e in zip(prepared, evidence, strict=True)]

    # Pseudo-relevance feedback: the best few candidates describe the event better than the
    # query alone, and pull in its other reports that share words with them, not with it.
    if weights.feedback > 0 and len(prepared) > weights.feedback_docs:
        expanded: Vector = dict(q.terms)
        for i in _order(prepared, scores)[: weights.feedback_docs]:
            _add(expanded, prepared[i].terms, weights.feedback / weights.feedback_docs)
        expanded = _normalised(expanded)
        scores = [_dot(expanded, c.terms) + e for c, e in zip(prepared, evidence, strict=True)]

    # Folding copies compares every pair of hits; hits under the floor are never shown.
    order = [i for i in _order(prepared, scores) if scores[i] >= min_score]
    return _select(
        q, [prepared[i] for i in order], [scores[i] for i in order], limit, weights, fold_copies
    )


def _order(prepared: Sequence[_Prepared], scores: Sequence[float]) -> list[int]:
    # Ties fall back to the key so that the same input always gives the same ranking.
    return sorted(range(len(prepared)), key=lambda i: (-scores[i], str(prepared[i].features.key)))


def _seen(seen: Counter[str], source: str | None) -> int:
    return seen[source] if source else 0


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
    for item, score in zip(ranked, scores, strict=True):
        if fold_copies:
            home = next(
                (
                    n
                    for n, head in enumerate(heads)
                    if minhash_similarity(head.features.signature, item.features.signature)
                    >= weights.copy_similarity
                ),
                None,
            )
            if home is not None:
                copies[home].append(item)
                continue
        heads.append(item)
        head_scores.append(score)
        copies.append([])

    # Among near-equal hits, a new outlet is worth more than a third report from the same one.
    seen: Counter[str] = Counter()
    if query.features.source:
        seen[query.features.source] += 1
    chosen: list[RelatedHit] = []
    remaining = list(range(len(heads)))
    while remaining and len(chosen) < limit:
        best = max(
            remaining,
            key=lambda n: (
                head_scores[n] - weights.same_source * _seen(seen, heads[n].features.source),
                -n,
            ),
        )
        remaining.remove(best)
        head = heads[best]
        if head.features.source:
            seen[head.features.source] += 1
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

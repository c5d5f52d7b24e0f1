"""Extractive summarizers behind one small Protocol, and the `summarize` entry point.

Every summarizer ranks sentences the caller has already split, so all of them see the same
sentences (ours, with the news fixes) and differ only in how they choose.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import cache
from typing import Any, Final, Protocol

import numpy as np

from summarize.clean import clean_text
from summarize.errors import TextError
from summarize.ranking import (
    LeadRankConfig,
    analyzer,
    greedy_select,
    lead_rank_scores,
    lexrank_scores,
    top_indices,
)
from summarize.sentences import check_language, split_sentences

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "EdmundsonSummarizer",
    "FastLexRank",
    "Lead",
    "LeadRank",
    "Summarizer",
    "SumySummarizer",
    "summarize",
    "summarize_sentences",
]


class Summarizer(Protocol):
    """Chooses summary sentences; pure and deterministic."""

    def select(self, sentences: Sequence[str], count: int, language: str) -> list[int]:
        """Indices of at most `count` chosen sentences, best first."""
        ...


class Lead:
    """Lead-N: the first sentences, the baseline news summaries are judged against."""

    def select(self, sentences: Sequence[str], count: int, language: str) -> list[int]:
        return list(range(min(count, len(sentences))))


class FastLexRank:
    """sumy's LexRank in numpy: same maths, a regex tokenizer instead of NLTK's."""

    def select(self, sentences: Sequence[str], count: int, language: str) -> list[int]:
        terms = analyzer(language).terms
        return top_indices(lexrank_scores([terms(s) for s in sentences]), count)


class LeadRank:
    """Lead-biased centrality with redundancy control: our default.

    Human news highlights lean on the first sentences, so position is a strong prior;
    centrality lets a sentence that restates the story's core elsewhere displace a weak lead
    sentence (a quote, a scene-setter), and MMR keeps two near-duplicates out.
    """

    def __init__(self, config: LeadRankConfig | None = None) -> None:
        self.config = config or LeadRankConfig()

    def select(self, sentences: Sequence[str], count: int, language: str) -> list[int]:
        terms = analyzer(language).terms
        scores, similarity = lead_rank_scores([terms(s) for s in sentences], self.config)
        return greedy_select(scores, similarity, count, self.config.redundancy)


@cache
def _sumy_tokenizer(language: str) -> Any:
    from sumy.nlp.tokenizers import Tokenizer

    from summarize.nltk_data import ensure_punkt

    ensure_punkt()
    return Tokenizer(language)


def _sumy_stemmer(language: str) -> Any:
    from sumy.nlp.stemmers import Stemmer, null_stemmer

    try:
        return Stemmer(language)
    except LookupError:
        return null_stemmer


class SumySummarizer:
    """A sumy summarizer class, fed our sentences as one paragraph.

    sumy returns sentences in document order only; passing a callable as the count is
    sumy's own hook for choosing from the rating-sorted list, and it shows us that order.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def _build(self, document: Any, language: str) -> Any:
        import importlib

        module_name, class_name = _SUMY_CLASSES[self.name]
        cls = getattr(importlib.import_module(f"sumy.summarizers.{module_name}"), class_name)
        summarizer = cls(_sumy_stemmer(language))
        if hasattr(summarizer, "stop_words"):
            summarizer.stop_words = analyzer(language).stop_words
        return summarizer

    def select(self, sentences: Sequence[str], count: int, language: str) -> list[int]:
        from sumy.models.dom import ObjectDocumentModel, Paragraph, Sentence

        tokenizer = _sumy_tokenizer(language)
        document = ObjectDocumentModel([Paragraph([Sentence(s, tokenizer) for s in sentences])])
        ranked: list[int] = []

        def take(infos: list[Any]) -> list[Any]:
            ranked.extend(info.order for info in infos[:count])
            return infos[:count]

        # Degenerate texts (no sentence shares a word with another) make sumy's LexRank divide
        # zero by zero; the NaN ratings then order arbitrarily, which is all such a text
        # deserves. errstate is per thread, and summaries run in threads.
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            # LSA warns when a text has fewer distinct words than sentences, then ranks them
            # anyway; the ranking (or its absence) is what we act on. Narrow on purpose: the
            # filter is process-wide while it lasts.
            warnings.filterwarnings(
                "ignore", message="Number of words", category=UserWarning, module="sumy"
            )
            self._build(document, language)(document, take)
        return ranked


class EdmundsonSummarizer(SumySummarizer):
    """Edmundson's key and location methods; the cue method is left out.

    The cue method needs hand-made bonus and stigma word lists that sumy does not ship. The
    key method only needs "bonus words", and Edmundson's key words were the document's own
    frequent content words, so those are given; the location method needs null words, for
    which stop words serve. The title method needs headings, which plain news text lacks.
    """

    def __init__(self) -> None:
        super().__init__("edmundson")

    def _build(self, document: Any, language: str) -> Any:
        from sumy.summarizers.edmundson import EdmundsonSummarizer as Edmundson

        stop_words = analyzer(language).stop_words
        summarizer = Edmundson(
            _sumy_stemmer(language),
            cue_weight=0.0,
            key_weight=1.0,
            title_weight=0.0,
            location_weight=1.0,
        )
        # sumy refuses empty lists; a placeholder keeps wordless languages working.
        summarizer.null_words = stop_words or {"the"}
        content = {word.lower() for word in document.words} - stop_words
        summarizer.bonus_words = content or {"the"}
        return summarizer


_SUMY_CLASSES: Final[dict[str, tuple[str, str]]] = {
    "lexrank": ("lex_rank", "LexRankSummarizer"),
    "lsa": ("lsa", "LsaSummarizer"),
    "luhn": ("luhn", "LuhnSummarizer"),
    "textrank": ("text_rank", "TextRankSummarizer"),
    "kl": ("kl", "KLSummarizer"),
    "sumbasic": ("sum_basic", "SumBasicSummarizer"),
    "reduction": ("reduction", "ReductionSummarizer"),
}

DEFAULT_ALGORITHM: Final = "lead-rank"

ALGORITHMS: Final[dict[str, Summarizer]] = {
    DEFAULT_ALGORITHM: LeadRank(),
    "lead": Lead(),
    "fast-lexrank": FastLexRank(),
    **{name: SumySummarizer(name) for name in _SUMY_CLASSES},
    "edmundson": EdmundsonSummarizer(),
}


def _check_text(text: str) -> None:
    if not text.strip():
        raise TextError("nothing to summarise: the text is empty")
    if not any(character.isalpha() for character in text):
        raise TextError("nothing to summarise: the text has no words")


def summarize_sentences(
    sentences: Sequence[str],
    *,
    algorithm: str = DEFAULT_ALGORITHM,
    count: int = 3,
    max_chars: int | None = None,
    language: str = "english",
) -> list[str]:
    """Choose summary sentences from already split sentences; returned in document order.

    `max_chars` caps the summary (sentences joined by a space): sentences are taken best
    first while they fit, skipping any that would overflow, and the best one is always kept.
    """
    name = algorithm.strip().lower()
    summarizer = ALGORITHMS.get(name)
    if summarizer is None:
        raise TextError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
    if count < 1:
        raise TextError(f"the summary needs at least one sentence, not {count}")
    if max_chars is not None and max_chars < 1:
        raise TextError(f"max_chars must be positive, not {max_chars}")
    language = check_language(language)
    usable = [s for s in sentences if any(c.isalpha() for c in s)]
    _check_text(" ".join(usable))
    if len(usable) <= count and (
        max_chars is None or sum(map(len, usable)) + len(usable) - 1 <= max_chars
    ):
        return list(usable)
    # With a budget we need the ranking beyond `count`: shorter sentences may fill the room.
    wanted = len(usable) if max_chars is not None else count
    ranked = summarizer.select(usable, wanted, language)
    # A summarizer may rank fewer sentences than asked (sumy's LSA ranks none when every
    # word is a stop word): the rest follow in document order, so a summary is never empty.
    picked = set(ranked)
    ranked = [*ranked, *(index for index in range(len(usable)) if index not in picked)]
    chosen: list[int] = []
    used = -1
    for index in ranked:
        if len(chosen) == count:
            break
        size = len(usable[index]) + 1
        if not chosen or max_chars is None or used + size <= max_chars:
            chosen.append(index)
            used += size
    return [usable[index] for index in sorted(chosen)]


def summarize(
    text: str,
    *,
    algorithm: str = DEFAULT_ALGORITHM,
    sentences: int = 3,
    max_chars: int | None = None,
    language: str = "english",
) -> list[str]:
    """Clean, split and summarise `text`; the chosen sentences in document order.

    Raises TextError for empty or wordless text, an unknown algorithm or language, or a
    non-positive size.
    """
    _check_text(text)
    cleaned = clean_text(text)
    if not cleaned:
        raise TextError("nothing to summarise: only page furniture (links, credits) was found")
    return summarize_sentences(
        split_sentences(cleaned, language),
        algorithm=algorithm,
        count=sentences,
        max_chars=max_chars,
        language=language,
    )

"""Sentence splitting for news text: NLTK punkt, offline, with fixes for newsroom abbreviations.

Paragraphs are split separately, so a sentence never spans a blank line. Inside a paragraph a
single newline is a hard boundary when the text is laid out one paragraph per line (scraped
pages), and plain whitespace when the text is hard-wrapped (mail, plain-text feeds).
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Any, Protocol

from summarize.errors import TextError
from summarize.nltk_data import LANGUAGES, ensure_punkt

__all__ = ["LANGUAGES", "check_language", "split_paragraphs", "split_sentences"]

# Titles and newsroom abbreviations punkt's English tables miss; "gov." alone splits
# "Gov. Brown" in two. Lowercase and without the final period, as punkt stores them.
_EXTRA_ABBREVIATIONS: dict[str, frozenset[str]] = {
    "english": frozenset(
        {
            "gov",
            "govs",
            "sens",
            "reps",
            "sgt",
            "capt",
            "cpl",
            "pvt",
            "maj",
            "brig",
            "cmdr",
            "det",
            "insp",
            "supt",
            "messrs",
            "mt",
            "dept",
            "approx",
            "est",
            "fig",
            "figs",
            "e.g",
            "i.e",
            "al",
            "etc",
            "vol",
            "nos",
        }
    ),
    "german": frozenset({"z.b", "bzw", "vgl", "usw", "ca", "nr", "dr", "prof"}),
}

# "No. 1", "Vol. 3": punkt treats "No." as a sentence end because "no." ends many sentences.
_NUMBER_ABBREVIATION = re.compile(r"(?:^|\s|\()(?:No|Nos|Vol|Art|Fig|Nr|Ch|Sec|Pt|Op)\.$", re.I)
_STARTS_WITH_NUMBER = re.compile(r"^[#\d]")
_BLANK_LINE = re.compile(r"\n[ \t]*\n+")
# A line this long is a whole paragraph: nobody hard-wraps text this wide.
_UNWRAPPED_LINE = 120


class _Punkt(Protocol):
    def span_tokenize(self, text: str) -> list[tuple[int, int]]: ...


def check_language(language: str) -> str:
    """Return the canonical language name, or raise TextError naming the supported ones."""
    name = language.strip().lower()
    if name not in LANGUAGES:
        raise TextError(f"unsupported language {language!r}; choose one of {', '.join(LANGUAGES)}")
    return name


_RE_FLAGS = re.IGNORECASE | re.MULTILINE | re.DOTALL | re.UNICODE | re.VERBOSE


def _stdlib(pattern: Any) -> re.Pattern[str]:
    """The same pattern compiled by `re`; `regex`'s VERSION0 flag means re-compatible."""
    return re.compile(pattern.pattern, pattern.flags & _RE_FLAGS)


def _stdlib_language_vars(language_vars: Any) -> Any:
    """punkt's language variables, with its three per-text patterns run by `re`.

    nltk 3.10 runs every pattern through `nltk.redos` (the `regex` engine under a timeout),
    which made finding candidate sentence ends a fifth of the time of summarising a story.
    These are punkt's own fixed patterns, the ones older nltk ran with `re`: no backtracking
    blow-up for a caller to trigger, and input is capped by MAX_STORY_CHARS. The results are
    the same (checked on the bench and eval corpora, tests/test_sentences.py).
    """
    base: type[Any] = type(language_vars)
    period_context = _stdlib(language_vars.period_context_re())
    word_tokenizer = _stdlib(language_vars._word_tokenizer_re())
    realignment = _stdlib(base.re_boundary_realignment)

    class StdlibLanguageVars(base):  # type: ignore[misc]
        __slots__ = ()
        re_boundary_realignment = realignment

        def period_context_re(self) -> re.Pattern[str]:
            return period_context

        def _word_tokenizer_re(self) -> re.Pattern[str]:
            return word_tokenizer

    return StdlibLanguageVars()


def _unguarded(pattern: Any) -> Any:
    """The `regex` pattern inside an `nltk.redos` wrapper: the same engine and results.

    The wrapper passes a timeout to every call, which costs the `regex` engine ~2.5 us a
    call; punkt makes one or two such calls per word token it looks at.
    """
    return getattr(pattern, "_rx", pattern)


@cache
def _token_class() -> type[Any]:
    """punkt's token class with its fixed patterns unwrapped and a leaner constructor.

    The patterns are punkt's own (linear, no backtracking blow-up), run by the same `regex`
    engine as before, so every token gets the same annotations.
    """
    from nltk.tokenize import punkt

    base: type[Any] = punkt.PunktToken
    numeric = _unguarded(base._RE_NUMERIC)
    non_punct = _unguarded(punkt._re_non_punct)

    class UnguardedPunktToken(base):  # type: ignore[misc]
        _RE_ELLIPSIS = _unguarded(base._RE_ELLIPSIS)
        _RE_NUMERIC = numeric
        _RE_INITIAL = _unguarded(base._RE_INITIAL)
        _RE_ALPHA = _unguarded(base._RE_ALPHA)

        def __init__(self, tok: str, **params: Any) -> None:
            # PunktToken.__init__ unrolled: the same attributes, in the same order.
            self.tok = tok
            self.type = numeric.sub("##number##", tok.lower())
            self.period_final = tok.endswith(".")
            self.parastart = None
            self.linestart = None
            self.sentbreak = None
            self.abbr = None
            self.ellipsis = None
            for key, value in params.items():
                setattr(self, key, value)

        @property
        def is_non_punct(self) -> Any:
            return non_punct.search(self.type)

    return UnguardedPunktToken


_SENTBREAK_CACHE = 8192


@cache
def _tokenizer(language: str) -> _Punkt:
    ensure_punkt()
    # Imported late: loading nltk costs ~0.3 s and many callers only clean text.
    from nltk.tokenize import PunktTokenizer

    tokenizer = PunktTokenizer(language)
    # Our own instance, so extending its table does not change what sumy's tokenizer does.
    tokenizer._params.abbrev_types.update(_EXTRA_ABBREVIATIONS.get(language, frozenset()))
    tokenizer._lang_vars = _stdlib_language_vars(tokenizer._lang_vars)
    tokenizer._Token = _token_class()
    # Whether a candidate end ("said. The") is a break depends on that short context and the
    # tables alone, and news repeats its contexts; the tables never change after this point.
    # 8,192 contexts keep the gain (3.6 -> 3.3 ms a story) that 65,536 had, in an eighth of
    # the memory (about 12 MB when full, reached after some 5,000 stories).
    tokenizer.text_contains_sentbreak = lru_cache(maxsize=_SENTBREAK_CACHE)(
        tokenizer.text_contains_sentbreak
    )
    return tokenizer  # type: ignore[no-any-return]


def split_paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks, stripped, empties dropped."""
    return [block.strip() for block in _BLANK_LINE.split(text) if block.strip()]


def _units(paragraph: str) -> list[str]:
    """The pieces punkt sees: the paragraph's lines, or the whole paragraph when hard-wrapped."""
    lines = [line.strip() for line in paragraph.split("\n") if line.strip()]
    if len(lines) > 1 and max(len(line) for line in lines) < _UNWRAPPED_LINE:
        return [" ".join(lines)]
    return lines


def _merge_fixes(pieces: list[str]) -> list[str]:
    merged: list[str] = []
    for piece in pieces:
        # The anchored test first: it rarely holds, and the search scans the whole sentence.
        if merged and _STARTS_WITH_NUMBER.match(piece) and _NUMBER_ABBREVIATION.search(merged[-1]):
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    return merged


def split_sentences(text: str, language: str = "english") -> list[str]:
    """Split text into sentences in document order; paragraphs are never merged."""
    tokenizer = _tokenizer(check_language(language))
    sentences: list[str] = []
    for paragraph in split_paragraphs(text):
        for unit in _units(paragraph):
            pieces = [unit[start:end].strip() for start, end in tokenizer.span_tokenize(unit)]
            sentences.extend(_merge_fixes([" ".join(p.split()) for p in pieces if p]))
    return sentences

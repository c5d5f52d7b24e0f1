"""Turn untrusted text into FTS5 MATCH expressions made only of quoted plain terms.

User input never reaches FTS5 syntax: it is split into words the same way the `unicode61`
tokenizer splits them, and each word becomes a double-quoted string, so quotes, NEAR, `*`,
AND/OR/NOT, parentheses and `column:` filters lose any special meaning.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Iterable, Sequence

from storage.errors import QueryError

# Bounds keep one hostile message from building a query that scans the index many times over.
MAX_TERMS = 16
MAX_TERM_CHARS = 64
MAX_QUERY_CHARS = 1000

# Bare FTS5 operators are dropped when other words remain: the terms are ANDed anyway, and
# "cats AND dogs" should not also require the word "and". Lower-case "and" is an ordinary word.
_OPERATORS = frozenset({"AND", "OR", "NOT", "NEAR"})


def _is_token_char(char: str) -> bool:
    # Mirrors unicode61: letters, numbers, marks and private-use characters are token
    # characters, everything else (punctuation, symbols, emoji, spaces) separates tokens.
    category = unicodedata.category(char)
    return category[0] in "LNM" or category == "Co"


def _has_base_char(word: str) -> bool:
    # A run of combining marks alone becomes an empty token once diacritics are removed.
    return any(unicodedata.category(char)[0] in "LN" for char in word)


def tokenize(text: str) -> list[str]:
    """Split text into unicode61-style words, deduplicated case-insensitively, in order."""
    words: list[str] = []
    seen: set[str] = set()
    current: list[str] = []
    for char in [*text[:MAX_QUERY_CHARS], " "]:
        if _is_token_char(char):
            current.append(char)
            continue
        if current:
            word = "".join(current)[:MAX_TERM_CHARS]
            current = []
            key = word.casefold()
            if _has_base_char(word) and key not in seen:
                seen.add(key)
                words.append(word)
    return words


def query_terms(query: str) -> list[str]:
    """Usable search terms from a user's query; raises QueryError if there are none."""
    if not query.strip():
        raise QueryError("the search query is empty; type a word or two to search for")
    words = tokenize(query)
    plain = [word for word in words if word not in _OPERATORS]
    terms = (plain or words)[:MAX_TERMS]
    if not terms:
        raise QueryError(
            "the search query has no words to look for (only punctuation, symbols or emoji)"
        )
    return terms


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def all_of(terms: Iterable[str]) -> str:
    """A MATCH expression requiring every term."""
    return " AND ".join(_quote(term) for term in terms)


def any_of(terms: Iterable[str]) -> str:
    """A MATCH expression requiring at least one term."""
    return " OR ".join(_quote(term) for term in terms)


def any_two_of(terms: Sequence[str]) -> str:
    """A MATCH expression requiring at least two of the terms (one pair per combination)."""
    return " OR ".join(f"({all_of(pair)})" for pair in itertools.combinations(terms, 2))


def in_column(column: str, terms: Iterable[str]) -> str:
    """A MATCH expression requiring at least one term inside the named column."""
    return "{" + column + "} : (" + any_of(terms) + ")"

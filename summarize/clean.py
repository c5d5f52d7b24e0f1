"""Turn a scraped news page into plain article text: paragraphs kept, page furniture gone.

Aggregator pages glue photo credits and quotes onto sentences (the scraper drops the markup
that separated them) and append footers and "Similar News" link lists; all of that would
otherwise be summarised as if it were the article.
"""

from __future__ import annotations

import html
import re

__all__ = ["clean_text"]

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_SPACES = dict.fromkeys(map(ord, "\u00a0\u2007\u202f\u2009\u200a\t\f\v"), " ")

_DROPPED_ELEMENTS = re.compile(
    r"<(script|style|noscript|template|svg|iframe)\b[^>]*>.*?</\1\s*>|<!--.*?-->", re.I | re.S
)
_BLOCK_TAG = re.compile(
    r"</?(?:p|div|br|li|ul|ol|h[1-6]|tr|table|section|article|blockquote)\b[^>]*>", re.I
)
# Only things shaped like tags, so "a < b" and "<3" in prose survive.
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>")

# Everything from the related-links block on is other stories, not this one.
_SIMILAR_NEWS = re.compile(r"^[ \t]*(?:Similar|Related) News[ \t]*:.*", re.I | re.M | re.S)
_READ_MORE_LINE = re.compile(
    r"^[ \t]*(?:read (?:more|the full story)|continue reading|advertisement)"
    r"[ \t]*[\u00bb\u203a>:.\u2026]*[ \t]*(?:\n|$)",
    re.I | re.M,
)
# Trailing "Read more »" glued onto a teaser line.
_READ_MORE_TAIL = re.compile(r"[ \t]*Read more[ \t]*\u00bb[ \t]*$", re.I | re.M)
_SITE_FOOTER = re.compile(
    r"^[ \t]*(?:[\w'\u2019.& -]{1,60} )?Latest News,"
    r"[ \t]*(?:[\w'\u2019.& -]{1,60} )?Headlines[ \t]*(?:\n|$)",
    re.I | re.M,
)

_AGENCY = (
    r"(?:Getty Images|Shutterstock|AFP|Reuters|AP Photo|Associated Press|EPA(?:-EFE)?|Bloomberg"
    r"|Alamy|PA Wire|PA Images|PA Media|NurPhoto|SOPA Images|LightRocket|Anadolu Agency"
    r"|Xinhua|TASS|Sputnik|Redux|Corbis|WireImage|FilmMagic|iStock(?:photo)?|Pool)"
)
# A credit at the start of a paragraph (or right after a sentence) running straight into the
# next sentence with no space: "Metin Aktas/Anadolu Agency via Getty ImagesThe Kremlin...".
# The missing space is what tells a credit from a sentence that mentions an agency.
_GLUED_CREDIT = re.compile(
    rf"(?:(?<=\n)|(?<=^)|(?<=[.!?][\"\u201d\u2019 ])|(?<=[.!?]))"
    rf"(?:(?:Photo|Image|Picture)s?(?: credit)?:[ \t]*)?"
    rf"[A-Z][^\n.!?\"\u201c\u201d]{{0,100}}?{_AGENCY}(?=[A-Z\u201c\"\u2018][a-z]|[A-Z]\b)"
)
_ANY_AGENCY = re.compile(_AGENCY)
# A line that is nothing but a credit. Stricter than the glued form: a headline may well end
# in "Reuters", so a bare line needs a photo-only agency, a "via"/slash credit or "Photo:".
_PHOTO_AGENCY = r"(?:Getty Images|Shutterstock|AP Photo|Alamy|WireImage|FilmMagic|iStock(?:photo)?)"
_CREDIT_LINE = re.compile(
    rf"^[ \t]*(?:(?:Photo|Image|Picture)s?(?: credit)?:[^\n]{{0,120}}"
    rf"|[A-Z][^\n.!?\"\u201c\u201d]{{0,100}}?(?:{_PHOTO_AGENCY}|(?:/| via ) ?{_AGENCY}))"
    r"[ \t]*(?:\n|$)",
    re.M,
)
# Opening quote glued to the previous sentence: `said."Ukraine` -> `said. "Ukraine`.
_GLUED_QUOTE = re.compile(r"([.!?])([\"\u201c])(?=[A-Z])")
# `end.Next` where a scraper dropped a paragraph break; two lowercase letters before the
# period keep "U.S.A" and "e.g.X" intact.
_GLUED_SENTENCE = re.compile(r"(?<=[a-z]{2}[.!?])(?=[A-Z][a-z])")
_RUNS_OF_SPACE = re.compile(r" {2,}")
_MANY_BLANK_LINES = re.compile(r"\n{3,}")


def _strip_markup(text: str) -> str:
    if "<" in text:
        text = _DROPPED_ELEMENTS.sub(" ", text)
        text = _BLOCK_TAG.sub("\n", text)
        text = _TAG.sub("", text)
    # Twice: feeds often escape an already escaped page ("&amp;quot;").
    return html.unescape(html.unescape(text)) if "&" in text else text


# Characters other than ASCII letters that `re.IGNORECASE` matches to ASCII letters (found
# by trying every code point; tests/test_prepare_equivalence.py checks the list).
_FOLDS_TO_ASCII = ("\u0130", "\u0131", "\u017f", "\u212a")
# `_GLUED_SENTENCE` can only match right after one of these (a cheaper scan).
_GLUED_CANDIDATE = re.compile(r"[.!?](?=[A-Z][a-z])")


def _folded(text: str) -> str | None:
    """`text.lower()`, in which every case-insensitive match of ASCII words shows as a plain
    substring; None when `text` holds a character that defeats that (then search properly)."""
    if any(char in text for char in _FOLDS_TO_ASCII):
        return None
    return text.lower()


def clean_text(text: str) -> str:
    """Plain article text: no markup, credits, footers or related links; paragraphs kept."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _strip_markup(text).translate(_ZERO_WIDTH).translate(_SPACES)
    # Each regex scan costs ~5 ns a character; skip the ones whose words the text lacks.
    # Every check below is necessary for its pattern to match, so skipping changes nothing.
    folded = _folded(text)
    if folded is None or "news" in folded:
        text = _SIMILAR_NEWS.sub("", text)
        folded = _folded(text)
    if folded is None or "read" in folded or "advertisement" in folded:
        text = _READ_MORE_LINE.sub("", text)
        folded = _folded(text)
    if "\u00bb" in text:
        text = _READ_MORE_TAIL.sub("", text)
        folded = _folded(text)
    if folded is None or "headlines" in folded:
        text = _SITE_FOOTER.sub("", text)
    # The credit patterns are slow to try at every position; most articles name no agency.
    if _ANY_AGENCY.search(text) or "Photo" in text or "Image" in text:
        text = _GLUED_CREDIT.sub("", text)
        text = _CREDIT_LINE.sub("", text)
    if '"' in text or "\u201c" in text:
        text = _GLUED_QUOTE.sub(r"\1 \2", text)
    candidate = _GLUED_CANDIDATE.search(text)
    if candidate:
        # No match starts before the first candidate, and its look-behind starts at most two
        # characters earlier: the part before that cannot change.
        start = max(candidate.start() - 2, 0)
        text = text[:start] + _GLUED_SENTENCE.sub(" ", text[start:])
    if "  " in text:
        # Runs of spaces never span a newline, so the whole text at once is the same as line
        # by line.
        text = _RUNS_OF_SPACE.sub(" ", text)
    text = "\n".join([line.strip() for line in text.split("\n")])
    if "\n\n\n" in text:
        text = _MANY_BLANK_LINES.sub("\n\n", text)
    return text.strip()

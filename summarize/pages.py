"""Aggregator pages: an article, a site footer, then a "Similar News" block of other headlines.

The pages come from news aggregators that scrape an article and append links to coverage of the
same event elsewhere. Scraping drops the markup between each item's headline and its snippet,
so "...Occupied KhersonRussian troops were..." has to be split again by looking at letter case.
"""

from __future__ import annotations

import re

from summarize.errors import TextError
from summarize.parsed import ParsedStory, RelatedItem

TITLE_LIMIT = 120

# "United States Latest News, United States Headlines": the site's footer, once per page.
_FOOTER = re.compile(r"^[^\n]{1,80} Latest News, [^\n]{1,80} Headlines\s*$", re.MULTILINE)
_SIMILAR = re.compile(
    r"^\s*Similar News:\s*"
    r"(?:You can also read news stories similar to this one that we have collected"
    r" from other news sources\.)?",
    re.MULTILINE,
)
_READ_MORE = re.compile(r"Read more\s*[\u00bb\u203a>]+")

# Where a headline may end and a snippet start: a lowercase letter, digit or closing punctuation
# immediately followed by a capital ("KhersonRussian", "summitRussian", "UkrainePOSAD").
_JOIN = re.compile(r"(?<=[a-z0-9.!?)'\"%\u2019\u201d])(?=[A-Z])")
# Fallback for headlines that end in an acronym: "...says NATOThe alliance" splits before "The".
_ACRONYM_JOIN = re.compile(r"(?<=[A-Z]{2})(?=[A-Z][a-z]+\s)")
# Names whose inner capital is not a join. Matched against the letters on both sides of it.
_CAMEL_NAMES = frozenset(
    {
        "AstraZeneca",
        "BlackRock",
        "ChatGPT",
        "DeepMind",
        "DeepSeek",
        "DoorDash",
        "FedEx",
        "GitHub",
        "HarperCollins",
        "JetBlue",
        "LinkedIn",
        "MasterCard",
        "OpenAI",
        "PayPal",
        "PlayStation",
        "SoftBank",
        "SpaceX",
        "TikTok",
        "WeChat",
        "WhatsApp",
        "YouTube",
    }
)
# Name prefixes that take a capital straight after them: McDonald, MacArthur, DeSantis, iPhone.
_NAME_PREFIXES = frozenset(
    {"Mc", "Mac", "De", "Di", "Da", "Du", "La", "Le", "Van", "Von", "i", "e"}
)
_ABBREVIATIONS = frozenset(
    {"Mr", "Mrs", "Ms", "Dr", "St", "Sr", "Jr", "Gen", "Gov", "Sen", "Rep", "Lt", "Col", "No", "vs"}
)
_OUTLET_DATELINE = re.compile(r"^[^()]{2,80}\(([A-Z][\w.&' -]{1,40})\)\s*[-\u2013\u2014]")


def looks_like_aggregator_page(text: str) -> bool:
    """True when the text has the aggregator's "Similar News:" block or its footer plus items."""
    if _SIMILAR.search(text) is not None:
        return True
    return _FOOTER.search(text) is not None and _READ_MORE.search(text) is not None


def parse_aggregator_page(text: str, *, title: str | None = None) -> ParsedStory:
    """Split a page into the article and its related items; raise TextError if no article."""
    similar = _SIMILAR.search(text)
    article_part = text[: similar.start()] if similar else text
    related_part = text[similar.end() :] if similar else ""
    # Items sometimes leak above the block on badly scraped pages; never let them reach the text.
    article_lines = [
        line.strip()
        for line in _FOOTER.sub("", article_part).splitlines()
        if line.strip() and _READ_MORE.search(line) is None
    ]
    article = "\n".join(article_lines)
    if not any(char.isalpha() for char in article):
        raise TextError("The page has no article text before its related news.")
    related = tuple(parse_related_items(related_part))
    chosen = " ".join(title.split()) if title and title.strip() else derive_title(article)
    return ParsedStory(title=chosen, text=article, related=related)


def parse_related_items(block: str) -> list[RelatedItem]:
    """Items of a "Similar News" block, each ending with "Read more »"."""
    items: list[RelatedItem] = []
    for chunk in _READ_MORE.split(block):
        flat = " ".join(chunk.split())
        if not flat or not any(char.isalpha() for char in flat):
            continue
        headline, snippet = split_headline(flat)
        match = _OUTLET_DATELINE.match(snippet)
        outlet = match.group(1).strip() if match else None
        items.append(RelatedItem(title=headline, snippet=snippet, outlet=outlet))
    return items


def split_headline(item: str) -> tuple[str, str]:
    """Split "HeadlineSnippet" at the first plausible join; no join: all of it is headline."""
    for pattern in (_JOIN, _ACRONYM_JOIN):
        for match in pattern.finditer(item):
            cut = match.start()
            if _is_join(item, cut):
                return item[:cut].strip(), item[cut:].strip()
    return item.strip(), ""


def _is_join(item: str, cut: int) -> bool:
    before = re.search(r"[A-Za-z]*$", item[:cut])
    after = re.match(r"[A-Za-z]*", item[cut:])
    left = before.group(0) if before else ""
    right = after.group(0) if after else ""
    if left + right in _CAMEL_NAMES or left in _NAME_PREFIXES:
        return False
    previous = item[cut - 1]
    # "U.S.-led", "U.K.": the dot belongs to an abbreviation, not to the end of a headline.
    if previous == "." and re.search(r"(?:^|[^A-Za-z])[A-Z]\.$", item[:cut]):
        return False
    # "5G", "4K", "3D": a digit glued to a lone capital is a product word.
    if previous.isdigit() and len(right) == 1 and right != "A":
        return False
    headline = item[:cut].strip()
    # A headline of one short word is more likely a camel-cased name than a real headline.
    return len(headline) >= 12 and " " in headline


def first_sentence(text: str) -> str:
    """The text up to its first sentence end, skipping the dots of common abbreviations."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    for match in re.finditer(r"[.!?][\"')\u2019\u201d]*(?=\s+[\"'(\u2018\u201c]?[A-Z0-9])", line):
        word = re.search(r"([A-Za-z.]+)[.!?]$", line[: match.start() + 1])
        token = word.group(1) if word else ""
        if token in _ABBREVIATIONS or re.fullmatch(r"(?:[A-Za-z]\.)*[A-Za-z]", token):
            continue
        return line[: match.end()].strip()
    return line


def derive_title(text: str, limit: int = TITLE_LIMIT) -> str:
    """A title for a story that has none: its first sentence, cut at a word boundary."""
    sentence = " ".join(first_sentence(text).split())
    # Headlines do not end with a full stop; a question or exclamation mark is kept.
    sentence = sentence.removesuffix(".")
    if len(sentence) <= limit:
        return sentence
    cut = sentence[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-\u2013\u2014") + "…"

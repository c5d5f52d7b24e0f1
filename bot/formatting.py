"""Every reply the bot sends is rendered here: Telegram HTML, split to fit, with keyboards.

Rules this module keeps so no handler has to:
- every piece of story text goes through `escape`; only http(s) URLs become links;
- every message is at most 4096 UTF-16 code units and split only between tags, never
  inside a tag or an entity (open tags are closed and reopened across the split);
- callback data fits Telegram's 64 bytes;
- link previews are off unless a reply is about one page (`/story`).
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final, Literal
from urllib.parse import urlsplit

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    LinkPreviewOptions,
)
from telegram._utils.types import JSONDict
from telegram.constants import ParseMode

from ingest.report import IngestReport
from storage.models import Link, SearchHit, StoreStats, Story

MAX_MESSAGE: Final = 4096
MAX_CALLBACK_BYTES: Final = 64
MAX_URL: Final = 2048
LATEST_DEFAULT: Final = 5
LATEST_MAX: Final = 10
SEARCH_PAGE: Final = 5
# List views cap each title so one absurd title cannot push the page past one message.
LIST_TITLE_CHARS: Final = 200

PREVIEW_OFF: Final = LinkPreviewOptions(is_disabled=True)


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args: str
    description: str
    example: str
    admin: bool = False


COMMANDS: Final[tuple[Command, ...]] = (
    Command("latest", "[N]", "the N newest stories (default 5, at most 10)", "/latest 3"),
    Command("story", "<id>", "one story with a longer summary and its links", "/story 12"),
    Command("related", "<id|words>", "stories related to a story or to some words", "/related 12"),
    Command("search", "<words>", "full-text search, best matches first", "/search election"),
    Command(
        "subscribe",
        "[words]",
        "get new stories here: all of them, or those with the words",
        "/subscribe election",
    ),
    Command(
        "unsubscribe", "[words|all]", "stop a subscription, or all of them", "/unsubscribe all"
    ),
    Command("subscriptions", "", "this chat's subscriptions and digest time", "/subscriptions"),
    Command("digest", "<HH:MM|off>", "one digest a day at that time instead", "/digest 08:00"),
    Command("timezone", "<zone>", "the time zone for /digest", "/timezone Europe/Berlin"),
    Command("help", "", "this help", "/help"),
    Command(
        "add",
        "<text|URL>",
        "store a story (or reply /add to a message)",
        "/add https://example.com/news",
        admin=True,
    ),
    Command("delete", "<id>", "delete a story", "/delete 12", admin=True),
    Command("stats", "", "store size, sources, last ingest, uptime", "/stats", admin=True),
    Command("post", "<id> <@channel>", "post a story to a channel", "/post 12 @mynews", admin=True),
)


@dataclass(frozen=True, slots=True)
class Reply:
    """A rendered reply: HTML chunks (each fits one message) and a keyboard for the last."""

    chunks: tuple[str, ...]
    keyboard: InlineKeyboardMarkup | None = None
    preview_url: str | None = None

    @property
    def link_preview(self) -> LinkPreviewOptions:
        if self.preview_url is None:
            return PREVIEW_OFF
        return LinkPreviewOptions(url=self.preview_url, prefer_small_media=True)


def reply(html_text: str, keyboard: InlineKeyboardMarkup | None = None) -> Reply:
    return Reply(tuple(split_html(html_text)), keyboard)


# --- escaping and links ---------------------------------------------------------------


# C0 controls other than tab and newline, DEL, and the bidi embeddings, overrides and
# isolates: invisible in a story, and an unclosed U+202E flips every line after it (the
# "#12" and the link labels too). Marks (U+200E/U+200F) and zero-width joiners stay: real
# right-to-left text and emoji need them.
_INVISIBLE_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def escape(text: str) -> str:
    """Escape story text for Telegram HTML (quotes too: the text may land in an attribute)."""
    return html.escape(_INVISIBLE_CONTROLS.sub("", text), quote=True)


# Whitespace (\s is str.isspace's set) and C0 controls. One regex search rather than a
# per-character loop: safe_url runs for every story in every list, twice per title.
_URL_REFUSED_CHAR: Final = re.compile(r"[\s\x00-\x1f]")


def safe_url(url: str | None) -> str | None:
    """The URL if it is a plain http(s) URL Telegram will accept as a link, else None."""
    if not url:
        return None
    url = url.strip()
    # Telegram refuses very long URLs, and one must never crowd a message past 4096.
    if len(url) > MAX_URL or _URL_REFUSED_CHAR.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def link(label: str, url: str | None) -> str:
    """An <a> link when the URL is http(s), else the escaped label alone."""
    target = safe_url(url)
    if target is None:
        return escape(label)
    return _link_to(label, target)


def _link_to(label: str, target: str) -> str:
    # `target` has passed safe_url.
    return f'<a href="{escape(target)}">{escape(label)}</a>'


def hint(text: str) -> Reply:
    """A one-line hint or refusal; `text` is plain and gets escaped."""
    return reply(escape(text))


# --- splitting ------------------------------------------------------------------------

_TOKEN = re.compile(r"<[^>]*>|&[^;\s<>&]*;|[^<&]+|[<&]")
_TAG_NAME = re.compile(r"</?\s*([a-zA-Z0-9-]+)")
# Break preferences, best first: paragraph, line, sentence end, any whitespace.
_BREAKS: Final = (
    re.compile(r"\n\s*\n\s*$"),
    re.compile(r"\n\s*$"),
    re.compile(r"[.!?…][\"')\]]*\s+$"),
    re.compile(r"\s$"),
)
_WORD_PIECE = 64


def tg_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _atoms(markup: str) -> list[str]:
    """Tags, entities and short runs of text ending at whitespace, in order."""
    atoms: list[str] = []
    for token in _TOKEN.findall(markup):
        if token.startswith(("<", "&")):
            atoms.append(token)
            continue
        for word in re.findall(r"\S*\s*|\s+", token):
            # Cut long words so a forced break still lands near the limit.
            atoms.extend(word[i : i + _WORD_PIECE] for i in range(0, len(word), _WORD_PIECE))
    return [atom for atom in atoms if atom]


def _tag(atom: str) -> tuple[str, bool] | None:
    """(name, is_closing) for a tag atom, None for text and entities."""
    if not atom.startswith("<") or len(atom) < 3:
        return None
    match = _TAG_NAME.match(atom)
    if match is None:
        return None
    return match.group(1).lower(), atom.startswith("</")


def _closing(stack: Sequence[tuple[str, str]]) -> str:
    return "".join(f"</{name}>" for name, _ in reversed(stack))


def _opening(stack: Sequence[tuple[str, str]]) -> str:
    return "".join(opening for _, opening in stack)


def _visible(markup: str) -> bool:
    return bool(re.sub(r"<[^>]*>", "", markup).strip())


def split_html(markup: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split well-formed Telegram HTML into chunks of at most `limit`, each well-formed.

    Splits prefer paragraph, then line, then sentence, then word boundaries, and never cut
    a tag or an entity; tags open at a split are closed before it and reopened after.
    `limit` must leave room for the longest tag (links are capped at MAX_URL).
    """
    markup = markup.strip()
    if tg_len(markup) <= limit:
        return [markup] if markup else []
    atoms = _atoms(markup)
    chunks: list[str] = []
    start_stack: tuple[tuple[str, str], ...] = ()
    i = 0
    while i < len(atoms):
        stack = list(start_stack)
        size = tg_len(_opening(stack))
        # best[p] = (index after the break, stack there) for break preference p
        best: dict[int, tuple[int, tuple[tuple[str, str], ...]]] = {}
        text_so_far = ""
        j = i
        while j < len(atoms):
            atom = atoms[j]
            tag = _tag(atom)
            next_stack = list(stack)
            if tag is not None:
                name, closing = tag
                if closing:
                    if next_stack and next_stack[-1][0] == name:
                        next_stack.pop()
                else:
                    next_stack.append((name, atom))
            needed = size + tg_len(atom) + tg_len(_closing(next_stack))
            if needed > limit and j > i:
                break
            size += tg_len(atom)
            stack = next_stack
            j += 1
            text_so_far = (text_so_far + atom)[-16:]
            if tag is None or tag[1]:
                for rank, pattern in enumerate(_BREAKS):
                    if pattern.search(text_so_far):
                        best[rank] = (j, tuple(stack))
                        break
        if j >= len(atoms):
            end, end_stack = j, tuple(stack)
        else:
            # Take the best-ranked break that keeps the chunk at least half full, so a
            # paragraph break near the start does not produce a tiny message.
            floor = i + (j - i) // 2
            candidates = [best[rank] for rank in sorted(best) if best[rank][0] > floor]
            end, end_stack = candidates[0] if candidates else (j, tuple(stack))
        chunk = (_opening(start_stack) + "".join(atoms[i:end]) + _closing(end_stack)).strip()
        if _visible(chunk):
            chunks.append(chunk)
        i, start_stack = end, end_stack
    return chunks


def shorten(text: str, limit: int) -> str:
    """Plain text cut at a word boundary to at most `limit` characters, with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "…"


# --- callback data --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LatestNav:
    direction: Literal["o", "n"]  # older than / newer than the cursor
    limit: int
    cursor: int


@dataclass(frozen=True, slots=True)
class ShowRelated:
    story_id: int


@dataclass(frozen=True, slots=True)
class ShowStory:
    story_id: int


@dataclass(frozen=True, slots=True)
class SearchNav:
    offset: int
    query: str


Action = LatestNav | ShowRelated | ShowStory | SearchNav


def encode_action(action: Action) -> str:
    """Callback data for an action; always under 64 bytes."""
    match action:
        case LatestNav(direction, limit, cursor):
            data = f"l:{direction}:{limit}:{cursor}"
        case ShowRelated(story_id):
            data = f"r:{story_id}"
        case ShowStory(story_id):
            data = f"t:{story_id}"
        case SearchNav(offset, query):
            data = f"s:{offset}:{fit_query(query, offset)}"
    assert len(data.encode()) <= MAX_CALLBACK_BYTES, data
    return data


def _search_prefix(offset: int) -> int:
    return len(f"s:{offset}:".encode())


def fit_query(query: str, offset: int = 10_000) -> str:
    """The query shortened (at a word boundary) so search callback data stays under 64 bytes."""
    query = " ".join(query.split())
    room = MAX_CALLBACK_BYTES - _search_prefix(offset)
    if len(query.encode()) <= room:
        return query
    words: list[str] = []
    for word in query.split(" "):
        if len(" ".join([*words, word]).encode()) > room:
            break
        words.append(word)
    if words:
        return " ".join(words)
    return query.encode()[:room].decode(errors="ignore")


# Ids and offsets are SQLite integers; a forged button must not reach the store with more.
_MAX_NUMBER: Final = 2**63 - 1


def _number(text: str) -> int:
    """An ASCII decimal number within SQLite's range; ValueError for "+1", "1_0", "-1"."""
    if not (text.isascii() and text.isdecimal()) or int(text) > _MAX_NUMBER:
        raise ValueError(text)
    return int(text)


def decode_action(data: str | None) -> Action | None:
    """The action behind callback data, None when it is not ours or malformed.

    Clients can send any callback data, so this is input, not an echo of what we sent: only
    the four reading actions exist here, and every number is checked.
    """
    if not data or len(data.encode(errors="replace")) > MAX_CALLBACK_BYTES:
        return None
    kind, _, rest = data.partition(":")
    try:
        if kind == "l":
            direction, limit, cursor = rest.split(":")
            if direction not in ("o", "n"):
                return None
            return LatestNav(
                "o" if direction == "o" else "n", clamp_latest(_number(limit)), _number(cursor)
            )
        if kind == "r":
            return ShowRelated(_number(rest))
        if kind == "t":
            return ShowStory(_number(rest))
        if kind == "s":
            offset, _, query = rest.partition(":")
            return SearchNav(_number(offset), query) if query.strip() else None
    except ValueError:
        return None
    return None


def clamp_latest(count: int) -> int:
    return min(max(count, 1), LATEST_MAX)


class _CallbackButton(InlineKeyboardButton):
    """A button made by `_button` (a label and callback data only), serialised directly.

    PTB's generic to_dict walks every attribute a button may have (about 11 µs a button),
    and a list reply carries up to 21 buttons. The dict is the one PTB's to_dict gives for
    such a button (tests/test_formatting.py holds the two side by side).
    """

    __slots__ = ()

    def to_dict(self, recursive: bool = True) -> JSONDict:
        """The button as the Bot API takes it: text and callback_data."""
        return {"callback_data": self.callback_data, "text": self.text}


def _button(label: str, action: Action) -> InlineKeyboardButton:
    return _CallbackButton(label, callback_data=encode_action(action))


def _keyboard(rows: Iterable[list[InlineKeyboardButton]]) -> InlineKeyboardMarkup | None:
    kept = [row for row in rows if row]
    return InlineKeyboardMarkup(kept) if kept else None


def story_buttons(story_id: int) -> list[InlineKeyboardButton]:
    return list(_story_buttons(story_id))


# Buttons are frozen, so one pair per story serves every reply: /latest and popular stories
# come back again and again, and a PTB button costs about 10 µs to build.
@functools.lru_cache(maxsize=4096)
def _story_buttons(story_id: int) -> tuple[InlineKeyboardButton, InlineKeyboardButton]:
    return (
        _button(f"Story #{story_id}", ShowStory(story_id)),
        _button(f"Related #{story_id}", ShowRelated(story_id)),
    )


# --- pieces of a story ----------------------------------------------------------------


def _date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value is not None else ""


def _byline(story: Story) -> str:
    parts = [story.source or "", _date(story.published_at or story.ingested_at)]
    return escape(" · ".join(part for part in parts if part))


def _title_line(story: Story, title_chars: int | None = None) -> str:
    title = story.title if title_chars is None else shorten(story.title, title_chars)
    title = title or "(untitled)"
    target = safe_url(story.url)
    if target is None:
        return f"<b>#{story.id} {escape(title)}</b>"
    return f"<b>#{story.id}</b> " + _link_to(title, target)


def _story_block(story: Story, summary_chars: int | None, title_chars: int | None) -> str:
    lines = [_title_line(story, title_chars)]
    byline = _byline(story)
    if byline:
        lines.append(f"<i>{byline}</i>")
    summary = " ".join(story.summary)
    if summary_chars is not None:
        summary = shorten(summary, summary_chars) if summary_chars > 0 else ""
    if summary:
        lines.append(escape(summary))
    return "\n".join(lines)


# Summary caps tried in turn until a list page fits one message (pages are edited in place,
# so they must stay one message).
_LIST_CAPS: Final[tuple[int | None, ...]] = (None, 1200, 600, 300, 150, 60, 0)


def _fit_list(header: str, stories: Sequence[Story], footer: str = "") -> str:
    text = ""
    for cap in _LIST_CAPS:
        blocks = [_story_block(story, cap, LIST_TITLE_CHARS) for story in stories]
        text = "\n\n".join(part for part in (header, *blocks, footer) if part)
        if tg_len(text) <= MAX_MESSAGE:
            return text
    return split_html(text)[0]


# --- replies --------------------------------------------------------------------------


def render_help(*, is_admin: bool) -> Reply:
    lines = [
        "<b>newsbot</b> keeps a store of news stories, sends short extractive summaries "
        "and finds related stories.",
        "",
    ]
    for command in COMMANDS:
        if command.admin and not is_admin:
            continue
        usage = escape(f"/{command.name} {command.args}".rstrip())
        admin = " <i>(admin)</i>" if command.admin else ""
        lines.append(
            f"{usage}: {escape(command.description)}{admin}\n"
            f"  e.g. <code>{escape(command.example)}</code>"
        )
    if is_admin:
        lines.append(
            "\nSend a document (.txt .md .json .jsonl .xml .rss .atom .html) in this chat to "
            "store the stories in it."
        )
    return reply("\n".join(lines))


def render_latest(
    page_stories: Sequence[Story], *, limit: int, has_newer: bool, has_older: bool
) -> Reply:
    if not page_stories:
        return hint("No stories stored yet." if not has_newer else "No more stories.")
    text = _fit_list("<b>Latest stories</b>", page_stories)
    rows = [story_buttons(story.id) for story in page_stories]
    nav: list[InlineKeyboardButton] = []
    if has_newer:
        nav.append(_button("« Newer", LatestNav("n", limit, page_stories[0].id)))
    if has_older:
        nav.append(_button("Older »", LatestNav("o", limit, page_stories[-1].id)))
    return reply(text, _keyboard([*rows, nav]))


def _link_item(item: Link) -> str:
    label = item.title or item.url or "(untitled)"
    line = "• " + link(label, item.url)
    if item.outlet:
        line += f" <i>({escape(item.outlet)})</i>"
    if item.story_id is not None:
        line += f" — /story {item.story_id}"
    if item.snippet:
        line += "\n  " + escape(shorten(item.snippet, 300))
    return line


def _hit_line(hit: SearchHit) -> str:
    story = hit.story
    byline = _byline(story)
    line = "• " + _title_line(story, LIST_TITLE_CHARS)
    return line + (f" <i>({byline})</i>" if byline else "")


def render_related(story: Story, hits: Sequence[SearchHit]) -> Reply:
    parts = [f"<b>Related to #{story.id}</b> {escape(shorten(story.title, LIST_TITLE_CHARS))}"]
    if story.links:
        parts.append("<b>Similar news</b>\n" + "\n".join(_link_item(item) for item in story.links))
    if hits:
        parts.append("<b>Related stories</b>\n" + "\n".join(_hit_line(hit) for hit in hits))
    if not story.links and not hits:
        parts.append("Nothing related found yet.")
    rows = [story_buttons(hit.story.id) for hit in hits]
    return reply("\n\n".join(parts), _keyboard(rows))


def render_matches(words: str, hits: Sequence[SearchHit]) -> Reply:
    if not hits:
        return hint(f"No stories match “{shorten(words, 100)}”.")
    header = f"<b>Stories about</b> {escape(shorten(words, 100))}"
    body = "\n".join(_hit_line(hit) for hit in hits)
    return reply(f"{header}\n{body}", _keyboard(story_buttons(hit.story.id) for hit in hits))


def render_story(story: Story, summary: Sequence[str]) -> Reply:
    parts = [_title_line(story)]
    byline = _byline(story)
    if byline:
        parts[0] += f"\n<i>{byline}</i>"
    if summary:
        parts.append("\n".join(escape(sentence) for sentence in summary))
    if story.links:
        parts.append("<b>Similar news</b>\n" + "\n".join(_link_item(item) for item in story.links))
    markup = "\n\n".join(parts)
    keyboard = _keyboard([[_button(f"Related #{story.id}", ShowRelated(story.id))]])
    # One story, one page: its preview helps, unlike on lists.
    return Reply(tuple(split_html(markup)), keyboard, safe_url(story.url))


def render_search(query: str, hits: Sequence[SearchHit], *, offset: int, total: int) -> Reply:
    if not hits:
        return hint(f"Nothing found for “{shorten(query, 100)}”. Try fewer or other words.")
    first, last = offset + 1, offset + len(hits)
    header = f"<b>Search</b> {escape(query)}: {first}-{last} of {total}"
    text = _fit_list(header, [hit.story for hit in hits])
    nav: list[InlineKeyboardButton] = []
    if offset > 0:
        nav.append(_button("« Prev", SearchNav(max(offset - SEARCH_PAGE, 0), query)))
    if last < total:
        nav.append(_button("Next »", SearchNav(last, query)))
    rows = [story_buttons(hit.story.id) for hit in hits]
    return reply(text, _keyboard([*rows, nav]))


def _ids(ids: Iterable[int]) -> str:
    return ", ".join(f"#{story_id}" for story_id in ids)


def render_ingest(report: IngestReport) -> Reply:
    lines: list[str] = []
    if report.added:
        noun = "story" if len(report.added) == 1 else "stories"
        lines.append(f"Stored {len(report.added)} {noun}: {_ids(report.added)}")
    if report.duplicates:
        lines.append("Already stored: " + _ids(dup.existing_id for dup in report.duplicates))
    for rejected in report.rejected[:20]:
        lines.append(f"Not stored ({rejected.location}): {rejected.reason}")
    if len(report.rejected) > 20:
        lines.append(f"…and {len(report.rejected) - 20} more not stored.")
    if not lines:
        lines.append("Nothing to store: no story found in that input.")
    return reply("\n".join(escape(line) for line in lines))


def render_deleted(story_id: int, deleted: bool) -> Reply:
    return hint(f"Deleted story #{story_id}." if deleted else f"No story #{story_id}.")


def _size(count: int) -> str:
    value = float(count)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    days, seconds = divmod(seconds, 86_400)
    hours, seconds = divmod(seconds, 3_600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {seconds}s"


def render_stats(stats: StoreStats, uptime: timedelta) -> Reply:
    last = stats.last_ingest.strftime("%Y-%m-%d %H:%M UTC") if stats.last_ingest else "never"
    lines = [
        "<b>Store</b>",
        f"Stories: {stats.stories}",
        f"Sources: {stats.sources}",
        f"Related links: {stats.links}",
        f"Last ingest: {escape(last)}",
        f"Database: {escape(_size(stats.database_bytes))}",
        f"Uptime: {escape(_duration(uptime))}",
    ]
    return reply("\n".join(lines))


ERROR_REPLY: Final = "Sorry, something went wrong on my side. Please try again later."


# --- reach: pushes, digests, subscriptions, inline results, channel posts -------------

# A push or digest lists at most this many stories; the rest are counted in a footer.
PUSH_MAX: Final = 10
INLINE_RESULTS: Final = 20
# Inline result titles and descriptions are plain text shown on one or two lines.
INLINE_TITLE_CHARS: Final = 120
INLINE_DESCRIPTION_CHARS: Final = 250
SHARE_SUMMARY_CHARS: Final = 1500


def clock_time(minute: int) -> str:
    """Minutes after midnight as HH:MM."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _more(more: int) -> str:
    return f"…and {more} more: /latest" if more > 0 else ""


def render_new_stories(stories: Sequence[Story], *, more: int = 0) -> Reply:
    """Stories pushed to a subscribed chat as they arrive, newest first, one message."""
    header = "<b>New story</b>" if len(stories) == 1 and not more else "<b>New stories</b>"
    return reply(_fit_list(header, stories[:PUSH_MAX], escape(_more(more))))


def render_digest(stories: Sequence[Story], *, day: date, more: int = 0) -> Reply:
    """A chat's daily digest: the matching stories since the last one, one message."""
    header = f"<b>Your digest</b> · {escape(day.isoformat())}"
    return reply(_fit_list(header, stories[:PUSH_MAX], escape(_more(more))))


def render_subscriptions(
    queries: Sequence[str], *, timezone: str, digest_minute: int | None
) -> Reply:
    """A chat's subscriptions and how they are delivered."""
    if not queries:
        return hint(
            "This chat has no subscriptions. Send /subscribe for every new story, or "
            "/subscribe <words> for stories with those words."
        )
    lines = ["<b>Subscriptions of this chat</b>"]
    for query in queries:
        lines.append("• every new story" if query == "" else f"• {escape(query)}")
    if digest_minute is None:
        lines.append("\nNew stories arrive as they are stored. /digest HH:MM for one a day.")
    else:
        lines.append(
            f"\nOne digest a day at {clock_time(digest_minute)} ({escape(timezone)}). "
            "/digest off for stories as they arrive."
        )
    return reply("\n".join(lines))


def _share_markup(story: Story) -> str:
    """A story as someone shares it: linked title, byline, summary; no ids, no buttons."""
    title = shorten(story.title, LIST_TITLE_CHARS) or "(untitled)"
    lines = [f"<b>{link(title, story.url)}</b>"]
    byline = _byline(story)
    if byline:
        lines.append(f"<i>{byline}</i>")
    summary = shorten(" ".join(story.summary), SHARE_SUMMARY_CHARS)
    if summary:
        lines.append("\n" + escape(summary))
    return "\n".join(lines)


def _share_preview(story: Story) -> LinkPreviewOptions:
    url = safe_url(story.url)
    return PREVIEW_OFF if url is None else LinkPreviewOptions(url=url, prefer_small_media=True)


def inline_results(stories: Sequence[Story]) -> list[InlineQueryResultArticle]:
    """Inline-mode answers: title and description are plain text (Telegram shows them
    as-is, so they are not HTML-escaped); the message sent is escaped HTML in one message."""
    results: list[InlineQueryResultArticle] = []
    for story in stories[:INLINE_RESULTS]:
        content = InputTextMessageContent(
            split_html(_share_markup(story))[0],
            parse_mode=ParseMode.HTML,
            link_preview_options=_share_preview(story),
        )
        description = shorten(" ".join(story.summary), INLINE_DESCRIPTION_CHARS)
        results.append(
            InlineQueryResultArticle(
                id=str(story.id),
                title=shorten(story.title, INLINE_TITLE_CHARS) or "(untitled)",
                input_message_content=content,
                description=description or None,
            )
        )
    return results


def render_channel_post(story: Story) -> Reply:
    """A story posted to a channel: no ids or buttons, which mean nothing to its readers."""
    return Reply(tuple(split_html(_share_markup(story))), None, safe_url(story.url))

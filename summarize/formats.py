"""Read stories from a document in any supported format, detected by content.

Formats, tried in this order on the decoded text (the file name only breaks ties):

1. JSON: starts with ``{`` or ``[``. A whole document that parses is an object (one record, or
   a wrapper with a "stories"/"items"/"records"/"articles" list) or a list of objects
   ("record N"). A document starting with ``{`` that does not parse as a whole is JSONL, one
   object per line ("line N"). A ``[`` that does not parse is only JSON when the file is
   named ``.json``/``.jsonl`` or the next character is ``{``/``]``; otherwise it is text.
2. Markup: starts with ``<``. A root element of ``rss``, ``rdf:RDF`` or ``feed`` is a feed
   (feedparser, one story per "entry N"); anything else is an HTML page (trafilatura).
3. An aggregator page with a "Similar News" block (see summarize.pages).
4. Markdown: an ATX (``# Title``) or setext heading first, or Markdown links, emphasis or
   fences in the body, or an ``.md``/``.markdown`` file name.
5. Plain text: first line the title, then the body.

Record rules: ``text`` (or ``body``) is required and must contain letters; a missing
``title`` is derived from the text; a value of the wrong JSON type or a language the
summarizer does not know rejects the record. Optional values that are well typed but unusable
are dropped instead, so one odd field does not cost a good story: an unparseable
``published_at`` becomes None, and so does a ``url`` that is not absolute http(s).
``source`` defaults to the URL's host.

Every rejected record or whole input becomes a ParseProblem; nothing but TextError escapes.
"""

from __future__ import annotations

import calendar
import codecs
import io
import json
import logging
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from itertools import chain
from typing import Any
from urllib.parse import urlsplit

import feedparser
import trafilatura

from summarize.errors import TextError
from summarize.languages import normalise_language
from summarize.pages import derive_title, looks_like_aggregator_page, parse_aggregator_page
from summarize.parsed import ParsedStory, ParseProblem, ParseResult, RelatedItem

logger = logging.getLogger(__name__)

_WRAPPER_KEYS = ("stories", "items", "records", "articles")
_MARKDOWN_SUFFIXES = (".md", ".markdown")
_JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")


class _RecordError(Exception):
    """One record is unusable; the message is the ParseProblem reason."""


def parse_document(data: bytes | str, *, filename: str | None = None) -> ParseResult:
    """Read every story in ``data``; bad records and unreadable input come back as problems."""
    result = ParseResult()
    text = data if isinstance(data, str) else _decode(data)
    if text is None:
        result.problems.append(ParseProblem("input", "not UTF-8 text"))
        return result
    text = text.removeprefix("\ufeff")
    if not text.strip():
        result.problems.append(ParseProblem("input", "empty"))
        return result
    name = (filename or "").lower()
    head = text.lstrip()
    try:
        if _is_json(head, name):
            _parse_json(head, result)
        elif head.startswith("<"):
            if _root_element(head) in {"rss", "rdf:rdf", "feed"}:
                _parse_feed(head, result)
            else:
                _parse_html(head, result)
        elif looks_like_aggregator_page(text):
            result.stories.append(parse_aggregator_page(text))
        elif _is_markdown(text, name):
            result.stories.append(_read_markdown(text))
        else:
            result.stories.append(_read_plain(text))
    except TextError as error:
        result.problems.append(ParseProblem("input", str(error)))
    except Exception:
        # Callers rely on getting problems back, never a crash; the traceback goes to the log
        # so a parser bug is still visible.
        logger.exception("parsing %s failed", filename or "input")
        result.problems.append(ParseProblem("input", "could not be parsed (see the log)"))
    result.stories[:] = [_storable(story) for story in result.stories]
    return result


# JSON's "\ud800" escapes decode to lone surrogates, which no UTF-8 store or API accepts: left
# in, one such record would fail the whole batch it is stored with.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _scrub(value: str) -> str:
    return _SURROGATE.sub("\ufffd", value)


def _scrub_optional(value: str | None) -> str | None:
    return None if value is None else _scrub(value)


def _storable(story: ParsedStory) -> ParsedStory:
    """The story with every lone surrogate replaced by U+FFFD."""
    fields = (story.title, story.text, story.url, story.source, story.language)
    items = [(item.title, item.snippet, item.url, item.outlet) for item in story.related]
    if not any(_SURROGATE.search(value or "") for value in chain(fields, *items)):
        return story
    return replace(
        story,
        title=_scrub(story.title),
        text=_scrub(story.text),
        url=_scrub_optional(story.url),
        source=_scrub_optional(story.source),
        language=_scrub(story.language),
        related=tuple(
            replace(
                item,
                title=_scrub(item.title),
                snippet=_scrub(item.snippet),
                url=_scrub_optional(item.url),
                outlet=_scrub_optional(item.outlet),
            )
            for item in story.related
        ),
    )


# --- decoding -------------------------------------------------------------------------------

_DECLARED_CHARSET = re.compile(
    rb"""<\?xml[^>]*\bencoding\s*=\s*["']([A-Za-z0-9._-]+)["']"""
    rb"""|<meta[^>]*\bcharset\s*=\s*["']?([A-Za-z0-9._-]+)""",
    re.IGNORECASE,
)


def _decode(data: bytes) -> str | None:
    """UTF-8 (BOM or not), else the charset an XML or HTML document declares, else None."""
    for bom, codec in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec)
            except UnicodeDecodeError:
                return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if not data.lstrip().startswith(b"<"):
        return None
    match = _DECLARED_CHARSET.search(data[:4096])
    if match is None:
        return None
    charset = (match.group(1) or match.group(2)).decode("ascii")
    try:
        return data.decode(charset)
    except (LookupError, UnicodeDecodeError):
        return None


# --- shared record building -----------------------------------------------------------------


def _has_letters(text: str) -> bool:
    return any(char.isalpha() for char in text)


def _clean_title(title: str) -> str:
    return " ".join(title.split())


def _http_url(value: str | None) -> str | None:
    """The URL if it is absolute http(s); anything else is not worth linking to."""
    if not value:
        return None
    url = value.strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # "http://[::1": a bracketed host that is not an IPv6 address
        return None
    if parts.scheme.lower() in {"http", "https"} and host:
        return url
    return None


def url_host(url: str | None) -> str | None:
    """The host of a URL without "www.", as a stand-in for the outlet's name."""
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.removeprefix("www.") if host else None


def parse_date(value: str | float | None) -> datetime | None:
    """ISO-8601, RFC-2822 or a Unix timestamp as aware UTC; None when it cannot be read.

    Naive times are taken as UTC: feeds and exports that omit the offset mostly mean it.
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, tz=UTC)
        text = value.strip()
        if not text:
            return None
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            parsed = parsedate_to_datetime(text)
    except (ValueError, TypeError, OverflowError, OSError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _story(
    *,
    title: str | None,
    text: str,
    url: str | None = None,
    source: str | None = None,
    published_at: datetime | None = None,
    language: str | None = None,
    related: tuple[RelatedItem, ...] = (),
) -> ParsedStory:
    """A story from already-typed values, or _RecordError saying what is missing."""
    body = text.strip()
    if not body:
        raise _RecordError("missing text")
    if not _has_letters(body):
        raise _RecordError("text has no letters")
    clean_url = _http_url(url)
    try:
        language_name = normalise_language(language)
    except TextError as error:
        raise _RecordError(str(error)) from None
    heading = _clean_title(title) if title and _has_letters(title) else derive_title(body)
    return ParsedStory(
        title=heading,
        text=body,
        url=clean_url,
        source=_clean_title(source) if source and source.strip() else url_host(clean_url),
        published_at=published_at,
        language=language_name,
        related=related,
    )


# --- JSON and JSONL -------------------------------------------------------------------------


def _is_json(head: str, name: str) -> bool:
    if head.startswith("{"):
        return True
    if not head.startswith("["):
        return False
    if name.endswith(_JSON_SUFFIXES) or re.match(r"\[\s*(?:[{\]]|$)", head):
        return True
    try:
        json.loads(head)
    except (ValueError, RecursionError):
        return False
    return True


def _parse_json(text: str, result: ParseResult) -> None:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as error:
        if text.startswith("{"):
            _parse_jsonl(text, result)
        else:
            result.problems.append(ParseProblem("input", f"not JSON: {_json_error(error)}"))
        return
    records: list[Any]
    if isinstance(document, dict) and not ({"text", "body"} & document.keys()):
        wrapped = next((document[k] for k in _WRAPPER_KEYS if k in document), None)
        records = wrapped if isinstance(wrapped, list) else [document]
    elif isinstance(document, list):
        records = document
    else:
        records = [document]
    if not records:
        result.problems.append(ParseProblem("input", "empty"))
    for number, record in enumerate(records, start=1):
        _add_record(record, f"record {number}", result)


def _parse_jsonl(text: str, result: ParseResult) -> None:
    for _, outcome in _jsonl_records(enumerate(text.splitlines(), start=1)):
        if isinstance(outcome, ParseProblem):
            result.problems.append(outcome)
        else:
            result.stories.append(outcome)


def iter_jsonl(lines: Iterable[bytes]) -> Iterator[tuple[str, ParsedStory | ParseProblem]]:
    """Stories of a JSONL stream, one ("line N", story or problem) per non-blank line.

    For inputs too large to hold: nothing is read ahead, so memory does not grow with the
    input. Lines are split on "\\n" only and decoded one by one, so one line that is not
    UTF-8 is one problem, not a lost file.
    """

    def decoded() -> Iterator[tuple[int, str | None]]:
        for number, raw in enumerate(lines, start=1):
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError:
                yield number, None

    for location, outcome in _jsonl_records(decoded()):
        yield location, outcome if isinstance(outcome, ParseProblem) else _storable(outcome)


def _jsonl_records(
    lines: Iterable[tuple[int, str | None]],
) -> Iterator[tuple[str, ParsedStory | ParseProblem]]:
    for number, line in lines:
        location = f"line {number}"
        if line is None:
            yield location, ParseProblem(location, "not UTF-8 text")
            continue
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as error:
            yield location, ParseProblem(location, f"not JSON: {_json_error(error)}")
            continue
        try:
            yield location, _record_story(record)
        except _RecordError as error:
            yield location, ParseProblem(location, str(error))


def _json_error(error: ValueError | RecursionError) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} (column {error.colno})"
    return "nested too deeply" if isinstance(error, RecursionError) else str(error)


def _add_record(record: object, location: str, result: ParseResult) -> None:
    try:
        result.stories.append(_record_story(record))
    except _RecordError as error:
        result.problems.append(ParseProblem(location, str(error)))


_JSON_TYPE_NAMES = {
    bool: "true/false",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


def _type_name(value: object) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _optional_str(record: Mapping[str, object], key: str) -> str | None:
    value = record.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _RecordError(f"wrong type for {key}: expected a string, got {_type_name(value)}")


def _record_story(record: object) -> ParsedStory:
    if not isinstance(record, dict):
        raise _RecordError(f"not a JSON object: got {_type_name(record)}")
    title = _optional_str(record, "title")
    key = "text" if record.get("text") is not None else "body"
    text = _optional_str(record, key)
    if text is None:
        raise _RecordError('missing text: expected a "text" or "body" string')
    published = record.get("published_at")
    if published is not None and (
        isinstance(published, bool) or not isinstance(published, str | int | float)
    ):
        got = _type_name(published)
        raise _RecordError(f"wrong type for published_at: expected a string, got {got}")
    return _story(
        title=title,
        text=text,
        url=_optional_str(record, "url"),
        source=_optional_str(record, "source"),
        published_at=parse_date(published),
        language=_optional_str(record, "language"),
        related=_related(record.get("related")),
    )


def _related(value: object) -> tuple[RelatedItem, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _RecordError(f"wrong type for related: expected a list, got {_type_name(value)}")
    items: list[RelatedItem] = []
    for number, entry in enumerate(value, start=1):
        if isinstance(entry, str):
            entry = {"title": entry}
        if not isinstance(entry, dict):
            got = _type_name(entry)
            raise _RecordError(
                f"wrong type for related item {number}: expected an object, got {got}"
            )
        try:
            title = _optional_str(entry, "title")
            snippet = _optional_str(entry, "snippet") or ""
            url = _optional_str(entry, "url")
            outlet = _optional_str(entry, "outlet")
        except _RecordError as error:
            raise _RecordError(f"related item {number}: {error}") from None
        if not title or not title.strip():
            raise _RecordError(f"related item {number}: missing title")
        items.append(
            RelatedItem(
                title=_clean_title(title),
                snippet=" ".join(snippet.split()),
                url=_http_url(url),
                outlet=outlet.strip() if outlet and outlet.strip() else None,
            )
        )
    return tuple(items)


# --- feeds ----------------------------------------------------------------------------------

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


def _root_element(markup: str) -> str:
    """The first element's name, past the XML declaration, comments and doctype."""
    rest = _XML_DECLARATION.sub("", markup, count=1)
    rest = re.sub(
        r"^(?:\s*(?:<!--.*?-->|<!DOCTYPE[^>]*>|<\?[^>]*\?>))*", "", rest, flags=re.S | re.I
    )
    match = re.match(r"\s*<([A-Za-z][\w:.-]*)", rest)
    return match.group(1).lower() if match else ""


def _parse_feed(markup: str, result: ParseResult) -> None:
    # The text is already decoded; an encoding="..." left in the declaration would make
    # feedparser decode our UTF-8 bytes a second time as that charset.
    payload = _XML_DECLARATION.sub('<?xml version="1.0" encoding="utf-8"?>', markup, count=1)
    try:
        with warnings.catch_warnings():
            # feedparser reports recoverable markup errors as warnings as well as in `bozo`.
            warnings.simplefilter("ignore")
            # A stream, never a str: feedparser treats a str as a URL or a file path to open.
            feed = feedparser.parse(
                io.BytesIO(payload.encode("utf-8")),
                response_headers={"content-type": "application/xml; charset=utf-8"},
                resolve_relative_uris=False,
            )
    except Exception as error:  # feedparser is untyped and may raise anything on odd markup
        result.problems.append(ParseProblem("input", f"not a readable feed: {error}"))
        return
    entries = list(feed.get("entries") or [])
    if not entries:
        reason = "feed has no entries"
        if feed.get("bozo"):
            reason = f"not a readable feed: {feed.get('bozo_exception')}"
        result.problems.append(ParseProblem("input", reason))
        return
    channel = feed.get("feed") or {}
    feed_title = html_to_text(str(channel.get("title") or ""))
    feed_source = feed_title or url_host(_http_url(str(channel.get("link") or "")))
    for number, entry in enumerate(entries, start=1):
        try:
            result.stories.append(_entry_story(entry, feed_source, channel.get("language")))
        except _RecordError as error:
            result.problems.append(ParseProblem(f"entry {number}", str(error)))


def _entry_story(entry: Any, feed_source: str | None, language: object) -> ParsedStory:
    contents = entry.get("content") or []
    html = str(contents[0].get("value") or "") if contents else ""
    if not _has_letters(html_to_text(html)):
        html = str(entry.get("summary") or "")
    text = html_to_text(html)
    title = html_to_text(str(entry.get("title") or ""))
    url = _http_url(str(entry.get("link") or ""))
    # dict.get, not entry.get: FeedParserDict maps a missing updated_parsed to published_parsed
    # with a DeprecationWarning, which pytest turns into an error.
    when = dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")
    published = _feed_time(when)
    return _story(
        title=title,
        text=text,
        url=url,
        source=feed_source or url_host(url),
        published_at=published,
        language=language if isinstance(language, str) else None,
    )


def _feed_time(when: Any) -> datetime | None:
    """feedparser's parsed date (a UTC struct_time) as aware UTC; None if absent or absurd."""
    if not when:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(when), tz=UTC)
    except (ValueError, TypeError, OverflowError, OSError):
        return None


# --- HTML -----------------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tr",
        "ul",
    }
)
_SKIP_TAGS = frozenset({"script", "style", "template", "noscript"})


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(fragment: str) -> str:
    """Visible text of an HTML fragment: tags dropped, entities decoded, one line per block."""
    if "<" not in fragment and "&" not in fragment:
        return "\n".join(" ".join(line.split()) for line in fragment.splitlines() if line.strip())
    collector = _TextCollector()
    collector.feed(fragment)
    collector.close()
    lines = (" ".join(line.split()) for line in "".join(collector.parts).splitlines())
    return "\n".join(line for line in lines if line)


class _MetaCollector(HTMLParser):
    """The head metadata trafilatura reads less precisely: full timestamps, canonical link."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.canonical: str | None = None
        self.language: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): value or "" for name, value in attrs}
        if tag == "html" and values.get("lang"):
            self.language = values["lang"]
        elif tag == "link" and "canonical" in values.get("rel", "").lower().split():
            self.canonical = self.canonical or values.get("href")
        elif tag == "meta":
            key = (
                values.get("property") or values.get("name") or values.get("itemprop") or ""
            ).lower()
            if key and values.get("content"):
                self.meta.setdefault(key, values["content"])


_DATE_META = ("article:published_time", "og:published_time", "datepublished", "pubdate", "date")


def _parse_html(markup: str, result: ParseResult) -> None:
    collector = _MetaCollector()
    try:
        collector.feed(markup)
        collector.close()
        with warnings.catch_warnings():
            # trafilatura and its date/language helpers may warn about odd markup; the
            # extraction result (or its absence) is what we act on.
            warnings.simplefilter("ignore")
            document = trafilatura.bare_extraction(
                markup,
                with_metadata=True,
                include_comments=False,
                include_tables=False,
                favor_recall=True,
                as_dict=True,
            )
    except Exception as error:  # trafilatura is untyped and may raise anything on odd markup
        result.problems.append(ParseProblem("input", f"not a readable HTML page: {error}"))
        return
    extracted: dict[str, Any] = document if isinstance(document, dict) else {}
    title = collector.meta.get("og:title") or extracted.get("title")
    text = _drop_heading(str(extracted.get("text") or ""), str(title or ""))
    url = _http_url(collector.canonical) or _http_url(str(extracted.get("url") or ""))
    published = next(
        (parse_date(collector.meta[key]) for key in _DATE_META if key in collector.meta), None
    ) or _date_only(extracted.get("date"))
    site = collector.meta.get("og:site_name") or extracted.get("sitename")
    try:
        story = _story(
            title=str(title) if title else None,
            text=text,
            url=url,
            source=str(site) if site else None,
            published_at=published,
            language=collector.language,
        )
    except _RecordError as error:
        reason = "no article text found in the HTML page" if not text.strip() else str(error)
        result.problems.append(ParseProblem("input", reason))
        return
    result.stories.append(story)


def _drop_heading(text: str, title: str) -> str:
    """The text without a first line that repeats the title (the page's own <h1>)."""
    first, _, rest = text.strip().partition("\n")
    if title and " ".join(first.split()).casefold() == " ".join(title.split()).casefold():
        return rest
    return text


def _date_only(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        day = date.fromisoformat(value[:10])
    except ValueError:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# --- plain text and Markdown ----------------------------------------------------------------

_PLAIN_TITLE_LIMIT = 200


def _read_plain(text: str) -> ParsedStory:
    lines = [line.strip() for line in text.strip().splitlines()]
    first, rest = lines[0], lines[1:]
    # A first line that is long, or a full sentence running straight into the next line, is
    # the start of the body: the title is then derived from it.
    has_title = (
        bool(rest)
        and len(first) <= _PLAIN_TITLE_LIMIT
        and (not rest[0] or not first.endswith((".", "!", "?")))
    )
    body_lines = rest if has_title else lines
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(body_lines)).strip()
    try:
        return _story(title=first if has_title else None, text=body)
    except _RecordError as error:
        raise TextError(str(error)) from None


def _is_markdown(text: str, name: str) -> bool:
    lines = text.strip().splitlines()
    if re.match(r"#{1,6}\s+\S", lines[0]) or re.match(r"---\s*$", lines[0]):
        return True
    if len(lines) > 1 and re.fullmatch(r"\s*(?:=+|-+)\s*", lines[1]):
        return True
    if re.search(r"\]\((?:https?://|/)[^)\s]*\)|^```|\*\*[^*\n]+\*\*", text, re.MULTILINE):
        return True
    return name.endswith(_MARKDOWN_SUFFIXES)


_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)


def _read_markdown(text: str) -> ParsedStory:
    """Markdown to text: the first heading is the title, other headings and code are dropped.

    Subheadings are not sentences; left in, the sentence splitter would glue each one to the
    paragraph after it. A YAML-like front matter block may give title, url, source, date,
    published_at and language as ``key: value`` lines.
    """
    meta: dict[str, str] = {}
    source = text.strip()
    front = _FRONT_MATTER.match(source + "\n")
    if front:
        for line in front.group(1).splitlines():
            key, sep, value = line.partition(":")
            if sep:
                meta[key.strip().lower()] = value.strip().strip("\"'")
        source = source[front.end() :]
    title: str | None = meta.get("title")
    paragraphs: list[str] = []
    current: list[str] = []
    in_fence = False
    lines = source.splitlines()

    def flush() -> None:
        # Inline markup is undone per paragraph, since a link or code span may wrap lines.
        if current:
            paragraphs.append(_markdown_inline(" ".join(current)))
            current.clear()

    for index, raw in enumerate(lines):
        line = raw.strip()
        if line.startswith(("```", "~~~")):
            in_fence = not in_fence
            flush()
            continue
        if in_fence:
            continue
        following = lines[index + 1].strip() if index + 1 < len(lines) else ""
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        setext = bool(line) and re.fullmatch(r"=+|-+", following) is not None
        if heading or setext:
            flush()
            words = heading.group(1) if heading else line
            if title is None:
                title = _markdown_inline(words)
            continue
        if not line or re.fullmatch(r"(?:[-*_]\s*){3,}|=+|-+", line):
            flush()
            continue
        if re.match(r"\[[^\]]+\]:\s*\S+", line):  # a reference link's URL definition
            continue
        if line.startswith("|") and line.endswith("|"):  # table cells are data, not sentences
            flush()
            continue
        line = re.sub(r"^(?:>\s*)+", "", line)
        item = re.match(r"(?:[-*+]|\d+[.)])\s+(.*)", line)
        if item:
            flush()
            line = item.group(1)
        current.append(line)
    flush()
    paragraphs = [p for p in paragraphs if p.strip()]
    first_block = re.split(r"\n\s*\n", source.strip(), maxsplit=1)[0]
    # Without a heading, a short first line standing alone is the title, as in plain text.
    if (
        title is None
        and len(paragraphs) > 1
        and "\n" not in first_block
        and len(paragraphs[0]) <= _PLAIN_TITLE_LIMIT
        and not paragraphs[0].endswith((".", "!", "?"))
    ):
        title = paragraphs.pop(0)
    body = "\n\n".join(paragraphs)
    url = meta.get("url")
    try:
        return _story(
            title=title,
            text=body,
            url=url,
            source=meta.get("source"),
            published_at=parse_date(meta.get("published_at") or meta.get("date")),
            language=meta.get("language"),
        )
    except _RecordError as error:
        raise TextError(str(error)) from None


def _markdown_inline(line: str) -> str:
    line = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", line)  # images carry no prose
    line = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", line)
    line = re.sub(r"\[([^\]]+)\]\[[^\]]*\]", r"\1", line)
    line = re.sub(r"<(?:https?://|mailto:)[^>]+>", "", line)
    line = re.sub(r"https?://\S+", "", line)
    line = re.sub(r"`([^`]*)`", r"\1", line)
    line = re.sub(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", r"\2", line)
    line = re.sub(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?!\w)", r"\1", line)
    line = re.sub(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])", r"\1", line)
    line = re.sub(r"~~(.+?)~~", r"\1", line)
    line = re.sub(r"</?[A-Za-z][^>]*>", "", line)
    line = re.sub(r"\\([\\`*_{}\[\]()#+\-.!>~|])", r"\1", line)
    # A removed URL would leave "site ." behind.
    line = re.sub(r"\s+([.,;:!?])(?=\s|$)", r"\1", line)
    return " ".join(line.split())

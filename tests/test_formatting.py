"""Pure tests of bot.formatting: escaping, links, splitting, callback data."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot import formatting as fmt
from storage.models import Link, SearchHit, Story
from tests.fake_bot_api import BadRequest, parse_telegram_html, utf16_len


def story(**changes: object) -> Story:
    base = Story(
        id=7,
        title="Bridge reopens",
        body="",
        cleaned_text="The bridge reopened.",
        summary=("The bridge reopened.",),
        algorithm="lead",
        fingerprint="fp",
        ingested_at=datetime(2025, 1, 2, tzinfo=UTC),
        url="https://news.example/7",
        source="Courier",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def valid(markup: str) -> str:
    """The shown text; fails the test when Telegram would refuse the markup."""
    return parse_telegram_html(markup)


# --- escaping and links ---------------------------------------------------------------


def test_escape_covers_markup_and_quotes() -> None:
    assert fmt.escape('<b>"Tom" & Jerry</b>') == "&lt;b&gt;&quot;Tom&quot; &amp; Jerry&lt;/b&gt;"


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "data:text/html,<b>",
        "ftp://x.example/",
        "tg://user?id=1",
        "//x.example/",
        "https://",
        "https://x.example/a b",
        "https://x.example/a\u2028b",
        "https://x.example/a\u00a0b",
        "https://x.example/a\x85b",
        "https://x.example/a\x1fb",
        "https://x.example/a\tb",
        "https://x.example/" + "a" * 3000,
        "",
        None,
    ],
)
def test_only_http_urls_become_links(url: str | None) -> None:
    assert fmt.safe_url(url) is None
    assert "<a" not in fmt.link("label", url)


def test_safe_url_refuses_exactly_whitespace_and_control_characters() -> None:
    # The check is one regex; it must agree with str.isspace() and ord() < 32 everywhere.
    for code in range(0x3000 + 1):
        char = chr(code)
        refused = char.isspace() or code < 32
        assert (fmt.safe_url(f"https://x.example/a{char}b") is None) is refused, hex(code)


def test_link_escapes_url_and_label() -> None:
    markup = fmt.link("<x> & y", 'https://x.example/?a=1&b="2"')
    assert markup == '<a href="https://x.example/?a=1&amp;b=&quot;2&quot;">&lt;x&gt; &amp; y</a>'
    assert valid(markup) == "<x> & y"


def test_hostile_story_renders_valid_html_everywhere() -> None:
    hostile = "<script>x</script> & <b>unclosed &bogus; </a> \u202e"
    bad = story(
        title=hostile,
        source=hostile,
        url="javascript:alert(1)",
        summary=(hostile,),
        links=(Link(title=hostile, snippet=hostile, url="javascript:x", outlet=hostile),),
    )
    hit = SearchHit(bad, 1.0)
    replies = [
        fmt.render_latest([bad], limit=5, has_newer=True, has_older=True),
        fmt.render_story(bad, [hostile]),
        fmt.render_related(bad, [hit]),
        fmt.render_matches(hostile, [hit]),
        fmt.render_search(hostile, [hit], offset=0, total=1),
    ]
    for reply in replies:
        for chunk in reply.chunks:
            assert "<script>" in valid(chunk)
            assert "javascript" not in chunk.split("href=")[-1] or "href=" not in chunk


# --- splitting ------------------------------------------------------------------------


def test_short_text_is_one_chunk() -> None:
    assert fmt.split_html("<b>hi</b>") == ["<b>hi</b>"]


def test_split_prefers_paragraphs_and_keeps_tags_balanced() -> None:
    paragraph = "<b>Title</b>\n" + "A sentence that goes on. " * 30
    markup = "\n\n".join([paragraph] * 20)
    chunks = fmt.split_html(markup)
    assert len(chunks) > 1
    for chunk in chunks:
        assert utf16_len(chunk) <= fmt.MAX_MESSAGE
        valid(chunk)
        assert chunk.startswith("<b>Title</b>")  # each chunk starts at a paragraph


def test_split_inside_a_long_tag_closes_and_reopens_it() -> None:
    markup = "<i>" + "word &amp; word. " * 1000 + "</i>"
    chunks = fmt.split_html(markup, limit=500)
    assert len(chunks) > 10
    for chunk in chunks:
        assert len(chunk) <= 500
        assert chunk.startswith("<i>") and chunk.endswith("</i>")
        valid(chunk)
    assert "".join(valid(chunk) + " " for chunk in chunks).count("&") == 1000


def test_split_never_cuts_an_entity_or_a_long_word() -> None:
    markup = "&amp;" * 3000 + "x" * 5000
    chunks = fmt.split_html(markup)
    assert "".join(valid(chunk) for chunk in chunks) == "&" * 3000 + "x" * 5000
    assert all(utf16_len(chunk) <= fmt.MAX_MESSAGE for chunk in chunks)


def test_split_counts_utf16_units() -> None:
    chunks = fmt.split_html("😀 " * 3000)
    assert len(chunks) >= 2
    assert all(utf16_len(chunk) <= fmt.MAX_MESSAGE for chunk in chunks)


_pieces = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.sampled_from(["\n", "\n\n", ". ", " ", "😀"]),
)


@st.composite
def html_documents(draw: st.DrawFn) -> str:
    """Well-formed Telegram HTML built from escaped text, nested tags and links."""
    parts: list[str] = []
    for _ in range(draw(st.integers(1, 40))):
        text = fmt.escape(draw(_pieces))
        kind = draw(st.sampled_from(["text", "b", "a", "nested"]))
        if kind == "b":
            parts.append(f"<b>{text}</b>")
        elif kind == "a":
            parts.append(fmt.link(draw(_pieces) or "x", "https://x.example/?q=1&r=2"))
        elif kind == "nested":
            parts.append(f"<i>{text}<b>{text}</b>{text}</i>")
        else:
            parts.append(text)
    return "".join(parts)


@settings(max_examples=60, deadline=None)
@given(markup=html_documents(), limit=st.integers(120, 600))
def test_every_chunk_is_valid_and_fits(markup: str, limit: int) -> None:
    chunks = fmt.split_html(markup, limit=limit)
    shown = ""
    for chunk in chunks:
        assert utf16_len(chunk) <= limit
        shown += valid(chunk)
    # Only whitespace may be lost at the cuts.
    assert "".join(shown.split()) == "".join(valid(markup).split())


# --- callback data and keyboards ------------------------------------------------------


def test_buttons_serialise_as_ptb_serialises_them() -> None:
    # CallbackButton builds its dict directly; it must be the one PTB's to_dict gives.
    reply = fmt.render_latest([story(), story(id=8)], limit=2, has_newer=True, has_older=True)
    assert reply.keyboard is not None
    for row in reply.keyboard.inline_keyboard:
        for button in row:
            plain = InlineKeyboardButton(button.text, callback_data=button.callback_data)
            assert button.to_dict() == plain.to_dict()
    plain_markup = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(b.text, callback_data=b.callback_data) for b in row]
            for row in reply.keyboard.inline_keyboard
        ]
    )
    assert reply.keyboard.to_dict() == plain_markup.to_dict()


def test_story_buttons_are_fresh_lists_of_shared_buttons() -> None:
    first, second = fmt.story_buttons(12), fmt.story_buttons(12)
    assert first is not second
    first.append(first[0])
    assert [b.callback_data for b in fmt.story_buttons(12)] == ["t:12", "r:12"]
    assert [b.text for b in second] == ["Story #12", "Related #12"]


@given(query=st.text(min_size=1, max_size=300), offset=st.integers(0, 10_000))
def test_search_callback_data_fits_64_bytes(query: str, offset: int) -> None:
    data = fmt.encode_action(fmt.SearchNav(offset, query))
    assert len(data.encode()) <= fmt.MAX_CALLBACK_BYTES


@pytest.mark.parametrize(
    "action",
    [
        fmt.LatestNav("o", 10, 2**62),
        fmt.LatestNav("n", 3, 1),
        fmt.ShowRelated(2**62),
        fmt.ShowStory(5),
        fmt.SearchNav(20, "harbour bridge"),
    ],
)
def test_actions_round_trip(action: fmt.Action) -> None:
    data = fmt.encode_action(action)
    assert len(data.encode()) <= fmt.MAX_CALLBACK_BYTES
    assert fmt.decode_action(data) == action


@pytest.mark.parametrize("data", [None, "", "x", "l:o:5", "l:z:5:1", "r:abc", "s:1:", "t:"])
def test_malformed_callback_data_is_none(data: str | None) -> None:
    assert fmt.decode_action(data) is None


def test_fit_query_keeps_whole_words() -> None:
    query = "harbour " * 20
    fitted = fmt.fit_query(query)
    assert fitted.split() == ["harbour"] * len(fitted.split())
    assert len(fmt.encode_action(fmt.SearchNav(9999, fitted)).encode()) <= 64


def test_latest_page_fits_one_message_however_long_the_stories() -> None:
    huge = [
        story(id=n, title="T" * 5000, summary=("word " * 2000,), source="S" * 300)
        for n in range(1, 11)
    ]
    reply = fmt.render_latest(huge, limit=10, has_newer=True, has_older=True)
    assert len(reply.chunks) == 1
    valid(reply.chunks[0])
    assert reply.keyboard is not None
    labels = [button.text for row in reply.keyboard.inline_keyboard for button in row]
    assert labels[-2:] == ["« Newer", "Older »"]


def test_previews_only_for_a_single_story() -> None:
    assert fmt.render_latest([story()], limit=5, has_newer=False, has_older=False).link_preview == (
        fmt.PREVIEW_OFF
    )
    assert fmt.render_story(story(), ["x"]).link_preview.url == "https://news.example/7"
    assert fmt.render_story(story(url="javascript:x"), ["x"]).link_preview == fmt.PREVIEW_OFF


def test_fake_server_parser_rejects_what_telegram_rejects() -> None:
    for bad in [
        "<b>x",
        "x</b>",
        "<script>x</script>",
        "a & b",
        "&nbsp;",
        "<b><i>x</b></i>",
        "<br/>",
    ]:
        with pytest.raises(BadRequest):
            parse_telegram_html(bad)
    assert parse_telegram_html("&lt;&#33;&#x41;") == "<!A"

"""parse_document: every supported format, detection by content, and bad input as problems."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from summarize.formats import parse_date, parse_document
from summarize.parsed import ParsedStory, ParseProblem, ParseResult, RelatedItem

DATA = Path(__file__).parent / "data"
FURNITURE = ("Read more", "Similar News", "Latest News, United States Headlines")


def parse_file(name: str, *, as_name: str | None = None) -> ParseResult:
    return parse_document((DATA / name).read_bytes(), filename=as_name or name)


def only_story(result: ParseResult) -> ParsedStory:
    assert result.problems == []
    assert len(result.stories) == 1
    return result.stories[0]


def test_plain_text_first_line_is_the_title() -> None:
    story = only_story(parse_file("plain.txt"))

    assert story.title == "Riverside council approves night bus trial"
    assert story.text.startswith("The Riverside city council voted on Tuesday")
    assert story.text.endswith("starts in March.")
    assert "\n\nCouncillors said" in story.text
    assert (story.url, story.source, story.published_at) == (None, None, None)


def test_markdown_syntax_and_link_urls_are_stripped() -> None:
    story = only_story(parse_file("story.md"))

    assert story.title == "Lake Marren water level hits a ten-year low"
    assert story.text.split("\n\n") == [
        "The water level of Lake Marren fell to its lowest point in ten years this week,"
        " the regional water board said on Monday.",
        "Two ferry operators have cut their timetables because boats can no longer reach the"
        " northern jetty. Tourism businesses around the lake fear a slow summer.",
        "Farmers have been asked to irrigate only at night.",
        "Fishing is banned in the shallow eastern bay until further notice.",
        "See for daily readings.",
    ]
    for syntax in ("http", "**", "#", "](", "!["):
        assert syntax not in story.text


def test_markdown_front_matter_gives_metadata() -> None:
    text = (
        "---\nurl: https://www.example.com/a/b\npublished_at: 2025-05-01T10:00:00+02:00\n---\n"
        "# Ferry timetable changes\n\nThe *summer* timetable starts on Monday.\n"
    )

    story = only_story(parse_document(text))

    assert story.title == "Ferry timetable changes"
    assert story.text == "The summer timetable starts on Monday."
    assert story.url == "https://www.example.com/a/b"
    assert story.source == "example.com"
    assert story.published_at == datetime(2025, 5, 1, 8, 0, tzinfo=UTC)


def test_json_list_of_records() -> None:
    result = parse_file("stories.json")

    assert result.problems == []
    strike, library = result.stories
    assert strike == ParsedStory(
        title="Harbour cranes return to work after strike ends",
        text=(
            "Dock workers at the port of Eastwick returned to work on Thursday after a nine-day"
            " strike.\nThe union accepted a pay rise of 4.5 percent over two years."
        ),
        url="https://example.com/eastwick/harbour-strike-ends",
        source="example.com",
        published_at=datetime(2025, 6, 12, 6, 30, tzinfo=UTC),
        related=(
            RelatedItem(
                title="Eastwick dock strike enters second week",
                snippet="Ships queued outside the port.",
                url="https://example.com/eastwick/strike-week-two",
            ),
        ),
    )
    assert library.title == "Library extends weekend opening hours"
    assert library.text.startswith("The central library in Dunmore will open on Sundays")
    assert library.source == "Dunmore Gazette"
    assert library.url is None
    assert library.published_at == datetime(2025, 6, 3, 10, 0, tzinfo=UTC)
    assert library.language == "english"


def test_jsonl_keeps_good_lines_and_reports_bad_ones_by_line_number() -> None:
    result = parse_file("stories.jsonl")

    assert [story.title for story in result.stories] == [
        "Solar farm opens near Kelby",
        "Kelby solar farm connects to the grid",
        "Rail bridge reopens after repairs",
    ]
    solar, grid, bridge = result.stories
    assert solar.url == "https://www.example.com/energy/kelby-solar"
    assert solar.source == "example.com"
    assert solar.published_at == datetime(2025, 9, 5, 11, 0, tzinfo=UTC)
    assert grid.source == "Kelby Courier"
    assert grid.published_at == datetime(2025, 9, 7, tzinfo=UTC)
    # An unreadable date drops the date, not the story.
    assert bridge.published_at is None
    assert bridge.text.startswith("The rail bridge over the Tessa river")
    assert [problem.location for problem in result.problems] == ["line 2", "line 5"]
    assert result.problems[0].reason.startswith("not JSON")
    assert result.problems[1].reason == "wrong type for title: expected a string, got a number"


def test_rss_titles_and_descriptions_lose_their_html() -> None:
    result = parse_file("feed.rss")

    assert result.problems == []
    snow, gritters = result.stories
    assert snow.title == "Breaking: Northvale & district schools close for snow"
    assert gritters.title == "Gritters work through the night on Ridge Road"
    assert snow.text == (
        "All 23 schools in Northvale & district will stay closed on Wednesday after heavy"
        " overnight snow.\nParents were told to check the council website for updates."
    )
    for story in result.stories:
        assert "<" not in story.title + story.text
        assert "&amp;" not in story.title + story.text
        assert story.source == "Northvale Evening Post"
    assert snow.url == "https://example.com/northvale/schools-snow"
    assert snow.published_at == datetime(2026, 1, 13, 18, 45, tzinfo=UTC)
    assert gritters.published_at == datetime(2026, 1, 14, 5, 10, tzinfo=UTC)


def test_atom_entries_prefer_content_and_fall_back_to_updated() -> None:
    result = parse_file("feed.atom")

    assert result.problems == []
    seagrass, gauges = result.stories
    assert seagrass.title == "Seagrass meadows recover faster than expected"
    assert seagrass.text == (
        "Replanted seagrass in the Orla estuary covered twice the expected area after two years,"
        " marine biologists reported.\nThe team credits calmer water behind a new breakwater."
    )
    assert seagrass.url == "https://example.com/science/seagrass-recovery"
    assert seagrass.source == "Coastline Science Desk"
    assert seagrass.published_at == datetime(2025, 11, 1, 13, 20, tzinfo=UTC)
    assert gauges.text.startswith("Twelve coastal tide gauges")
    assert gauges.published_at == datetime(2025, 10, 28, 7, 0, tzinfo=UTC)


def test_html_article_page() -> None:
    story = only_story(parse_file("article.html"))

    assert story.title == "Museum reopens its glass wing"
    assert story.text.startswith("The Hartfield city museum reopened its glass wing on Tuesday")
    assert story.text.endswith("bring school groups back.")
    for chrome in ("Home", "Culture", "Copyright"):
        assert chrome not in story.text
    assert story.url == "https://example.com/hartfield/museum-glass-wing"
    assert story.source == "Hartfield Tribune"
    assert story.published_at == datetime(2025, 4, 22, 15, 5, tzinfo=UTC)


def test_aggregator_page_through_parse_document() -> None:
    story = only_story(parse_file("aggregator_page.txt"))

    assert len(story.related) == 4
    assert story.related[3].title == "Russia orders troops to abandon Ukrainian city of Kherson"


@pytest.mark.parametrize(
    "name", ["aggregator_page.txt", "plain.txt", "story.md", "stories.json", "stories.jsonl"]
)
def test_no_story_text_carries_aggregator_furniture(name: str) -> None:
    for story in parse_file(name).stories:
        for furniture in FURNITURE:
            assert furniture not in story.text


@pytest.mark.parametrize(
    ("name", "disguise", "titles"),
    [
        ("stories.jsonl", "notes.txt", 3),
        ("stories.json", "export.md", 2),
        ("feed.rss", "feed.html", 2),
        ("feed.atom", "download", 2),
        ("article.html", "page.xml", 1),
        ("story.md", "story.txt", 1),
        ("aggregator_page.txt", "page.json", 1),
    ],
)
def test_format_is_detected_by_content_not_by_name(name: str, disguise: str, titles: int) -> None:
    honest = parse_file(name)
    disguised = parse_file(name, as_name=disguise)

    assert disguised == honest
    assert len(disguised.stories) == titles


def test_file_name_breaks_a_tie_between_plain_text_and_markdown() -> None:
    text = "Harvest starts early\n\nGrowers began picking *apples* a week early."

    assert parse_document(text).stories[0].text == "Growers began picking *apples* a week early."
    as_markdown = parse_document(text, filename="harvest.md").stories[0]
    assert as_markdown.text == "Growers began picking apples a week early."


def test_text_and_bytes_give_the_same_result() -> None:
    raw = (DATA / "feed.rss").read_bytes()

    assert parse_document(raw) == parse_document(raw.decode("utf-8"))


def test_utf8_bom_is_ignored() -> None:
    raw = (DATA / "stories.jsonl").read_bytes()

    assert parse_document(b"\xef\xbb\xbf" + raw) == parse_document(raw)


def test_undecodable_bytes_are_a_problem() -> None:
    result = parse_document("Café opens\n\nThe café opened on the square.".encode("latin-1"))

    assert result == ParseResult([], [ParseProblem("input", "not UTF-8 text")])


def test_declared_charset_is_used_for_xml_and_html() -> None:
    feed = (
        '<?xml version="1.0" encoding="ISO-8859-1"?><rss version="2.0"><channel>'
        "<title>Le Courrier</title><item><title>Caf\u00e9 du port rouvert</title>"
        "<description>Le caf\u00e9 du port a rouvert ses portes.</description></item>"
        "</channel></rss>"
    ).encode("latin-1")
    html = (
        '<html><head><meta charset="windows-1252"><title>Caf\u00e9 reopens</title></head>'
        "<body><p>The harbour caf\u00e9 reopened on Monday after a long winter closure.</p>"
        "</body></html>"
    ).encode("cp1252")

    feed_story = only_story(parse_document(feed))
    html_story = only_story(parse_document(html))

    assert feed_story.title == "Caf\u00e9 du port rouvert"
    assert feed_story.text == "Le caf\u00e9 du port a rouvert ses portes."
    assert "caf\u00e9 reopened" in html_story.text


@pytest.mark.parametrize("data", [b"", "", "   \n\t\n", b"\xef\xbb\xbf"])
def test_empty_input_is_a_problem(data: bytes | str) -> None:
    assert parse_document(data) == ParseResult([], [ParseProblem("input", "empty")])


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"title": "No body"}, 'missing text: expected a "text" or "body" string'),
        ({"title": "Blank", "text": "  "}, "missing text"),
        ({"title": "Digits", "text": "2025 - 14 / 03"}, "text has no letters"),
        ({"title": ["a"], "text": "Words."}, "wrong type for title: expected a string, got a list"),
        ({"text": 12}, "wrong type for text: expected a string, got a number"),
        ({"text": "Words.", "url": 5}, "wrong type for url: expected a string, got a number"),
        (
            {"text": "Words.", "related": "x"},
            "wrong type for related: expected a list, got a string",
        ),
        (
            {"text": "Words.", "related": [{"url": "https://a.example"}]},
            "related item 1: missing title",
        ),
        (
            {"text": "Words.", "published_at": {}},
            "wrong type for published_at: expected a string, got an object",
        ),
        ("just a string", "not a JSON object: got a string"),
    ],
)
def test_bad_records_become_problems_and_the_rest_survive(record: object, reason: str) -> None:
    good = {"title": "Good one", "text": "A good story."}
    data = json.dumps([good, record, good])

    result = parse_document(data)

    assert [story.title for story in result.stories] == ["Good one", "Good one"]
    assert result.problems == [ParseProblem("record 2", reason)]


def test_record_defaults_title_from_text_and_source_from_url() -> None:
    record = {
        "body": "Snow closed the pass. More is forecast.",
        "url": "https://www.example.org/pass",
        "language": "en-GB",
        "related": ["Pass reopens", {"title": "Gritters out", "outlet": "Valley FM"}],
    }

    story = only_story(parse_document(json.dumps(record)))

    assert story.title == "Snow closed the pass"
    assert story.source == "example.org"
    assert story.language == "english"
    assert story.related == (
        RelatedItem(title="Pass reopens"),
        RelatedItem(title="Gritters out", outlet="Valley FM"),
    )


def test_non_http_urls_are_dropped() -> None:
    story = only_story(parse_document('{"text": "Words here.", "url": "javascript:alert(1)"}'))

    assert story.url is None
    assert story.source is None


def test_wrapped_json_and_broken_json() -> None:
    wrapped = parse_document('{"stories": [{"text": "One story."}, {"text": "Two stories."}]}')
    broken = parse_document('[{"text": "unfinished"', filename="x.json")

    assert [story.text for story in wrapped.stories] == ["One story.", "Two stories."]
    assert broken.stories == []
    assert [problem.location for problem in broken.problems] == ["input"]
    assert broken.problems[0].reason.startswith("not JSON")


def test_feed_problems_name_the_entry() -> None:
    feed = (
        '<rss version="2.0"><channel><title>T</title>'
        "<item><title>Empty entry</title></item>"
        "<item><title>Full entry</title><description>Has words.</description></item>"
        "</channel></rss>"
    )

    result = parse_document(feed)

    assert [story.title for story in result.stories] == ["Full entry"]
    assert result.problems == [ParseProblem("entry 1", "missing text")]


def test_unreadable_markup_is_a_problem_not_an_exception() -> None:
    assert parse_document("<rss><channel></channel></rss>").problems == [
        ParseProblem("input", "feed has no entries")
    ]
    html = parse_document("<html><body><script>var x = 1;</script></body></html>")
    assert html.stories == []
    assert html.problems == [ParseProblem("input", "no article text found in the HTML page")]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-03-14T09:30:00Z", datetime(2025, 3, 14, 9, 30, tzinfo=UTC)),
        ("2025-03-14T09:30:00-05:00", datetime(2025, 3, 14, 14, 30, tzinfo=UTC)),
        ("2025-03-14 09:30", datetime(2025, 3, 14, 9, 30, tzinfo=UTC)),
        ("Fri, 14 Mar 2025 09:30:00 +0100", datetime(2025, 3, 14, 8, 30, tzinfo=UTC)),
        (1741944600, datetime(2025, 3, 14, 9, 30, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_date(value: str | int | None, expected: datetime | None) -> None:
    assert parse_date(value) == expected


def test_markdown_links_and_code_may_wrap_lines_and_tables_are_dropped() -> None:
    text = (
        "# Port fees rise\n\nThe [harbour\nboard](https://example.com/board) raised fees, see"
        " `fees\nlist`.\n\n| Berth | Fee |\n| --- | --- |\n| A | 10 |\n\nShips pay from May."
    )

    story = only_story(parse_document(text))

    assert story.text == "The harbour board raised fees, see fees list.\n\nShips pay from May."


def test_every_sample_story_parses_cleanly() -> None:
    samples = Path(__file__).parent.parent / "samples"
    stories: list[ParsedStory] = []
    for path in sorted(samples.iterdir()):
        if path.name == "README.md":
            continue
        result = parse_document(path.read_bytes(), filename=path.name)
        assert result.problems == [], path.name
        stories.extend(result.stories)

    assert len(stories) == 13
    assert len({story.title for story in stories}) == 13
    dated = [story for story in stories if story.published_at is not None]
    assert len(dated) == 12
    assert all(story.published_at.tzinfo is UTC for story in dated if story.published_at)

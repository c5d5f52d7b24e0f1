"""Aggregator pages: article text, footer and the "Similar News" items split apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from summarize.errors import TextError
from summarize.pages import (
    derive_title,
    looks_like_aggregator_page,
    parse_aggregator_page,
    split_headline,
)
from summarize.parsed import RelatedItem

DATA = Path(__file__).parent / "data"
FOOTER = "United States Latest News, United States Headlines"


def seed_page() -> str:
    return (DATA / "aggregator_page.txt").read_text(encoding="utf-8")


def page(article: str, *items: str) -> str:
    block = "".join(f"{item}\nRead more »\n" for item in items)
    return (
        f"{article}\n{FOOTER}\nSimilar News:You can also read news stories similar to this one"
        f" that we have collected from other news sources.\n{block}"
    )


def test_seed_page_has_exactly_its_four_related_items() -> None:
    story = parse_aggregator_page(seed_page())

    assert story.related == (
        RelatedItem(
            title=(
                "Russia withdraws from Kherson: Ukraine Latest: Russia Orders Withdrawal From"
                " Occupied Kherson"
            ),
            snippet=(
                "Russian troops were ordered to withdraw from Kherson, the southern Ukrainian"
                " city that was the first major urban center seized in its invasion, after"
                " Kyiv\u2019s troops pressed forward with a counteroffensive."
            ),
        ),
        RelatedItem(
            title=(
                "UKRAINE UPDATE: 10 NOVEMBER 2022: Russia orders withdrawal from occupied"
                " Kherson; Putin won\u2019t attend G20 summit"
            ),
            snippet=(
                "Russian troops were ordered to withdraw from Kherson, the southern Ukrainian"
                " city that was the first major urban centre seized in its invasion, after"
                " Kyiv\u2019s troops pressed forward with a counteroffensive in the region."
            ),
        ),
        RelatedItem(
            title=(
                "Ukraine war: Russia says it has completed withdrawal from only regional capital"
                " seized in Ukraine"
            ),
            snippet=(
                "POSAD POKROVSKIY, Ukraine/KYIV Nov 11 (Reuters) - Moscow announced on Friday"
                " that its forces had completed their withdrawal from the strategic Ukrainian"
                " city of Kherson, after Ukraine said it had reclaimed dozens of"
                " landmine-littered settlements abandoned by the Russians."
            ),
            outlet="Reuters",
        ),
        RelatedItem(
            title="Russia orders troops to abandon Ukrainian city of Kherson",
            snippet="The retreat is seen as a humiliation for Moscow's military leaders",
        ),
    )


def test_seed_page_text_is_the_article_alone() -> None:
    story = parse_aggregator_page(seed_page())

    assert story.text.startswith("Ukraine said on Friday its forces were entering")
    assert story.text.endswith("launched rockets and missiles on the embattled city for months.")
    for furniture in ("Read more", "Similar News", FOOTER, "Latest News", "abandon Ukrainian"):
        assert furniture not in story.text


def test_seed_page_title_is_its_first_sentence_cut_at_a_word() -> None:
    story = parse_aggregator_page(seed_page())

    assert story.title == (
        "Ukraine said on Friday its forces were entering the southern city of Kherson and"
        " hailed an 'important victory' after…"
    )
    assert len(story.title) <= 120


def test_a_given_title_wins() -> None:
    story = parse_aggregator_page(seed_page(), title="  Kherson   retreat ")

    assert story.title == "Kherson retreat"


def test_seed_page_is_recognised_and_plain_prose_is_not() -> None:
    assert looks_like_aggregator_page(seed_page())
    assert not looks_like_aggregator_page("A quiet day.\n\nNothing happened in town today.")


@pytest.mark.parametrize(
    ("item", "headline", "snippet"),
    [
        (
            "McDonald's raises menu prices againThe chain blamed beef costs.",
            "McDonald's raises menu prices again",
            "The chain blamed beef costs.",
        ),
        (
            "New iPhone goes on sale with 5G modemQueues formed overnight.",
            "New iPhone goes on sale with 5G modem",
            "Queues formed overnight.",
        ),
        (
            "U.S.-led talks resume in GenevaNegotiators met for six hours.",
            "U.S.-led talks resume in Geneva",
            "Negotiators met for six hours.",
        ),
        (
            "YouTube removes spam channelsThe video site said 2,000 went.",
            "YouTube removes spam channels",
            "The video site said 2,000 went.",
        ),
        (
            "Is the drought finally over?Forecasters are not so sure.",
            "Is the drought finally over?",
            "Forecasters are not so sure.",
        ),
        (
            "Leaders gather for summit of NATOThe meeting opens today.",
            "Leaders gather for summit of NATO",
            "The meeting opens today.",
        ),
        ("Only a headline here", "Only a headline here", ""),
    ],
)
def test_split_headline_handles_names_abbreviations_and_questions(
    item: str, headline: str, snippet: str
) -> None:
    assert split_headline(item) == (headline, snippet)


def test_items_without_snippets_and_empty_chunks_are_handled() -> None:
    story = parse_aggregator_page(
        page("The river rose two metres overnight.", "Flood warning issued for Tessa valley", " ")
    )

    assert story.related == (RelatedItem(title="Flood warning issued for Tessa valley"),)
    assert story.text == "The river rose two metres overnight."
    assert story.title == "The river rose two metres overnight"


def test_page_without_article_text_is_a_text_error() -> None:
    with pytest.raises(TextError, match="no article text"):
        parse_aggregator_page(page("", "Some headlineThe snippet."))


def test_derive_title_skips_abbreviations_and_keeps_short_sentences() -> None:
    assert derive_title("Mr. Ode met the U.S. envoy on Monday. Talks went well.") == (
        "Mr. Ode met the U.S. envoy on Monday"
    )
    assert derive_title("Is the bridge safe? Engineers disagree.") == "Is the bridge safe?"
    long_word_run = "word " * 60
    assert len(derive_title(long_word_run)) <= 120
    assert derive_title(long_word_run).endswith("word…")

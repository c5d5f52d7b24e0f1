"""split_sentences: punkt plus the newsroom fixes, paragraphs kept apart."""

from __future__ import annotations

import re

import pytest

from summarize.errors import TextError
from summarize.sentences import _tokenizer, split_sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Officials in the U.S. said so on Monday. The U.K. disagreed.",
            ["Officials in the U.S. said so on Monday.", "The U.K. disagreed."],
        ),
        (
            "Mr. Smith met Mrs. Jones and Dr. Brown. They talked.",
            ["Mr. Smith met Mrs. Jones and Dr. Brown.", "They talked."],
        ),
        (
            "Gov. Brown and Sgt. Pepper met Capt. Kirk. Nobody came.",
            ["Gov. Brown and Sgt. Pepper met Capt. Kirk.", "Nobody came."],
        ),
        (
            "The vote opens at 3 p.m. Friday. It closes at 5 p.m. The count follows.",
            ["The vote opens at 3 p.m. Friday.", "It closes at 5 p.m.", "The count follows."],
        ),
        (
            "She is the world No. 1 again. He is No. 2.",
            ["She is the world No. 1 again.", "He is No. 2."],
        ),
        (
            "J. R. R. Tolkien wrote it. George W. Bush read it.",
            ["J. R. R. Tolkien wrote it.", "George W. Bush read it."],
        ),
        (
            '"Stop," he said. "Now." Then he left.',
            ['"Stop," he said.', '"Now."', "Then he left."],
        ),
        (
            'He said "this is it." Then he left.',
            ['He said "this is it."', "Then he left."],
        ),
        (
            "Profit rose 2.5% to $1.13bn. Is that good? Yes!",
            ["Profit rose 2.5% to $1.13bn.", "Is that good?", "Yes!"],
        ),
        (
            "See e.g. the annex. It is long.",
            ["See e.g. the annex.", "It is long."],
        ),
    ],
)
def test_news_edge_cases(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_paragraphs_are_never_merged() -> None:
    text = "A headline without a period\n\nThe body starts here. It goes on"
    assert split_sentences(text) == [
        "A headline without a period",
        "The body starts here.",
        "It goes on",
    ]


def test_one_paragraph_per_line_pages_split_at_every_line() -> None:
    body = "The body is a long paragraph " + "that keeps going " * 8 + "until it ends."
    assert split_sentences(f"A headline without a period\n{body}") == [
        "A headline without a period",
        body,
    ]


def test_hard_wrapped_paragraph_is_joined() -> None:
    text = "This text was wrapped by a mail\nclient at a narrow width. And the next\nsentence too."
    assert split_sentences(text) == [
        "This text was wrapped by a mail client at a narrow width.",
        "And the next sentence too.",
    ]


def test_empty_text_has_no_sentences() -> None:
    assert split_sentences("") == []
    assert split_sentences("\n\n  \n") == []


def test_other_languages() -> None:
    assert split_sentences("Der Zug kam z.B. um 8 Uhr. Dann fuhr er ab.", "german") == [
        "Der Zug kam z.B. um 8 Uhr.",
        "Dann fuhr er ab.",
    ]
    assert split_sentences("Il pleut. Nous restons.", "French") == ["Il pleut.", "Nous restons."]


def test_unknown_language_is_a_text_error() -> None:
    with pytest.raises(TextError, match="unsupported language 'klingon'"):
        split_sentences("Qapla'.", "klingon")


@pytest.mark.parametrize("language", ["english", "german"])
def test_stdlib_patterns_split_like_nltks_own(language: str) -> None:
    # Our tokenizer runs punkt's patterns with `re` instead of nltk.redos; the spans must be
    # those of nltk's tokenizer with the same abbreviation table.
    from nltk.tokenize import PunktTokenizer

    ours = _tokenizer(language)
    stock = PunktTokenizer(language)
    stock._params.abbrev_types.update(ours._params.abbrev_types)  # type: ignore[attr-defined]
    assert isinstance(ours._lang_vars.period_context_re(), re.Pattern)  # type: ignore[attr-defined]
    texts = [
        "Gov. Brown met No. 5 (Vol. 3) in the U.S. on Monday. «Oui.» Fin! Really?! Yes -- no.",
        'He said "Go." Then he left... Later, Dr. Who\'s car (a 1960s model) was found.',
        "Prices rose 6.1% to $8.2bn.The index fell. 'Quoted.' Next one.) And [this.] end",
        "Die Firma z.B. wuchs um 3,5 Prozent. Prof. Müller sagte: „Gut.“ Dann ging er.",
        "…" * 3 + " a.m. p.m. e.g. i.e. etc. and so on.\nNew line here. Last one",
    ]
    for text in texts:
        assert list(ours.span_tokenize(text)) == list(stock.span_tokenize(text))

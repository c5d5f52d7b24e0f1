"""Every registered summarizer, the public entry points, and fast LexRank against sumy's."""

from __future__ import annotations

import pytest
from sumy.nlp.stemmers import Stemmer

from summarize.errors import TextError
from summarize.ranking import analyzer, lexrank_scores, top_indices
from summarize.sentences import split_sentences
from summarize.summarizers import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    FastLexRank,
    SumySummarizer,
    _sumy_tokenizer,
    summarize,
    summarize_sentences,
)

# Made-up stories, written for these tests.
FLOODS = """\
Heavy rain flooded large parts of the river city of Dornbach on Tuesday, forcing more than \
2,000 people from their homes.

The river rose by almost three metres overnight, the regional water authority said. \
Emergency crews used boats to reach families trapped in the old town. \
"We have not seen the river this high in forty years," said the mayor, Anna Keller.

Schools and the main railway station were closed. \
The water authority warned that the river could rise further if rain continued on Wednesday. \
Forecasters expect another 50 millimetres of rain in the hills above the city.

Insurers said the damage could run to tens of millions of euros. \
The regional government promised emergency funds for families who lost their homes. \
Volunteers filled sandbags through the night to protect the hospital. \
The flood is the third to hit the city in ten years, and residents demanded better defences.
"""

CHIPS = """\
Shares in the chip maker Lumatek jumped 12% after it reported record quarterly sales, \
driven by demand for processors used in data centres.

Sales rose 40% to $8.2bn in the three months to June, beating analysts' forecasts. \
The company said orders from cloud providers had doubled compared with a year earlier. \
Profit rose to $2.1bn from $1.3bn.

Lumatek's chief executive, Sara Obi, said demand would stay strong for the rest of the year. \
She warned, however, that supply of advanced components remained tight. \
The firm plans to open a new factory next year to ease the shortage.

Analysts said the results showed the strength of the data centre market. \
Rival chip makers' shares also rose on the news. \
Lumatek will report its full-year results in February.
"""

MATCH = """\
United won the cup final 2-1 on Saturday, with a late goal from their young striker \
deciding a tense match in front of 80,000 fans.

City took the lead after twenty minutes through a header from a corner. \
United equalised just before half-time when a shot deflected off a defender. \
The second half was tight, with few chances for either side.

The winner came in the 88th minute, when the striker ran clear and shot low past the keeper. \
It was his first goal in a final. \
"I dreamed of this moment since I was a boy," he said after the match.

United's manager praised his players for their patience. \
City's manager said his team had deserved at least extra time. \
It is United's first cup win in six years.
"""

TEXTS = [FLOODS, CHIPS, MATCH]
EXPECTED_ALGORITHMS = {
    "lead",
    "lexrank",
    "lsa",
    "luhn",
    "textrank",
    "kl",
    "sumbasic",
    "reduction",
    "edmundson",
    "fast-lexrank",
}


def test_registry_covers_sumy_methods_lead_and_default() -> None:
    assert set(ALGORITHMS) == EXPECTED_ALGORITHMS | {DEFAULT_ALGORITHM}
    assert DEFAULT_ALGORITHM == "lead-rank"


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
@pytest.mark.parametrize("count", [1, 3, 5])
def test_returns_count_sentences_in_document_order(algorithm: str, count: int) -> None:
    for text in TEXTS:
        sentences = split_sentences(text)
        summary = summarize(text, algorithm=algorithm, sentences=count)
        assert len(summary) == count
        positions = [sentences.index(sentence) for sentence in summary]
        assert positions == sorted(positions)
        assert len(set(positions)) == count


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_deterministic(algorithm: str) -> None:
    first = [summarize(text, algorithm=algorithm) for text in TEXTS]
    again = [summarize(text, algorithm=algorithm) for text in TEXTS]
    assert first == again


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_short_text_is_returned_whole(algorithm: str) -> None:
    text = "The council approved the budget. Taxes will not rise."
    assert summarize(text, algorithm=algorithm, sentences=3) == [
        "The council approved the budget.",
        "Taxes will not rise.",
    ]


def test_lead_is_the_first_sentences() -> None:
    assert summarize(CHIPS, algorithm="lead", sentences=2) == split_sentences(CHIPS)[:2]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   \n\t  ", "empty"),
        ("12345 678 -- 9!", "no words"),
        ("Read more »\nSimilar News: x", "page furniture"),
    ],
)
def test_unusable_text_is_a_text_error(text: str, message: str) -> None:
    with pytest.raises(TextError, match=message):
        summarize(text)


def test_bad_arguments_are_text_errors() -> None:
    with pytest.raises(TextError, match="unknown algorithm"):
        summarize(FLOODS, algorithm="magic")
    with pytest.raises(TextError, match="at least one sentence"):
        summarize(FLOODS, sentences=0)
    with pytest.raises(TextError, match="max_chars"):
        summarize(FLOODS, max_chars=0)
    with pytest.raises(TextError, match="unsupported language"):
        summarize(FLOODS, language="esperanto")


def test_algorithm_name_is_case_and_space_insensitive() -> None:
    assert summarize(FLOODS, algorithm=" LEAD ") == summarize(FLOODS, algorithm="lead")


@pytest.mark.parametrize("algorithm", [DEFAULT_ALGORITHM, "lead", "lexrank"])
def test_max_chars_is_a_budget(algorithm: str) -> None:
    for text in TEXTS:
        summary = summarize(text, algorithm=algorithm, sentences=5, max_chars=300)
        assert 1 <= len(summary) <= 5
        assert len(" ".join(summary)) <= 300


def test_max_chars_keeps_at_least_one_sentence() -> None:
    summary = summarize(FLOODS, max_chars=10)
    assert len(summary) == 1
    assert len(summary[0]) > 10


def test_max_chars_fills_room_with_shorter_sentences() -> None:
    sentences = split_sentences(CHIPS)
    # One character short of Lead-2, so a later sentence that fits takes the second place.
    budget = len(sentences[0]) + len(sentences[1])
    fits = next(s for s in sentences[2:] if len(sentences[0]) + 1 + len(s) <= budget)
    summary = summarize(CHIPS, algorithm="lead", sentences=2, max_chars=budget)
    assert summary == [sentences[0], fits]


def test_summarize_sentences_accepts_split_text_and_skips_wordless_pieces() -> None:
    sentences = ["---", *split_sentences(MATCH), "2-1."]
    assert summarize_sentences(sentences, algorithm="lead", count=2) == sentences[1:3]
    with pytest.raises(TextError, match="empty"):
        summarize_sentences([])


def test_default_keeps_the_lead_and_avoids_near_duplicates() -> None:
    sentences = split_sentences(FLOODS)
    repeated = [sentences[0], sentences[0].replace("Tuesday", "Tuesday night"), *sentences[1:]]
    summary = summarize_sentences(repeated, count=3)
    assert summary[0] == sentences[0]
    assert repeated[1] not in summary


@pytest.mark.parametrize("algorithm", [DEFAULT_ALGORITHM, "lexrank", "fast-lexrank"])
def test_other_languages(algorithm: str) -> None:
    text = (
        "Der Stadtrat hat am Dienstag den Haushalt für das kommende Jahr beschlossen. "
        "Die Steuern steigen nicht. Der Bürgermeister lobte die Einigung im Stadtrat. "
        "Die Opposition kritisierte den Haushalt als zu vorsichtig. "
        "Im Frühjahr beginnt der Bau der neuen Schule."
    )
    assert len(summarize(text, algorithm=algorithm, sentences=2, language="german")) == 2
    # Danish has punkt tables and a stemmer but no sumy stop-word list.
    danish = "Byrådet vedtog budgettet. Skatterne stiger ikke. Borgmesteren var glad. Det regnede."
    assert len(summarize(danish, algorithm=algorithm, sentences=2, language="danish")) == 2


def _sumy_terms(sentences: list[str], language: str) -> list[list[str]]:
    """The words sumy's LexRank rates: its tokenizer, lowercased, stop words out, stemmed."""
    tokenizer = _sumy_tokenizer(language)
    stemmer = Stemmer(language)
    stop_words = analyzer(language).stop_words
    return [
        [stemmer(word.lower()) for word in tokenizer.to_words(s) if word.lower() not in stop_words]
        for s in sentences
    ]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("count", [1, 3, 5])
def test_fast_lexrank_ranks_like_sumy_given_the_same_words(text: str, count: int) -> None:
    sentences = split_sentences(text)
    sumy_choice = SumySummarizer("lexrank").select(sentences, count, "english")
    assert top_indices(lexrank_scores(_sumy_terms(sentences, "english")), count) == sumy_choice


@pytest.mark.parametrize("text", TEXTS)
def test_fast_lexrank_picks_the_same_sentences_as_sumy_end_to_end(text: str) -> None:
    # With its own regex tokenizer; on these stories the words that matter are the same.
    sentences = split_sentences(text)
    assert sorted(FastLexRank().select(sentences, 3, "english")) == sorted(
        SumySummarizer("lexrank").select(sentences, 3, "english")
    )

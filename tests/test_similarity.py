from __future__ import annotations

import inspect
from collections.abc import Mapping

from summarize import related_text, similarity
from summarize.ranking import analyzer
from summarize.related_text import text_features
from summarize.similarity import salient_terms


def test_signature_the_bot_calls_is_kept() -> None:
    parameters = inspect.signature(salient_terms).parameters
    assert list(parameters) == ["title", "text", "limit", "language"]
    assert parameters["limit"].default == 12
    assert parameters["language"].default == "english"


def test_title_words_and_names_come_first() -> None:
    terms = salient_terms(
        "Tara Reid checks into rehab",
        "The actress entered a treatment center in Malibu. Reid is 33. The center said little.",
    )
    assert terms[:2] == ["reid", "tara"]
    assert "rehab" in terms[:5]
    assert "the" not in terms and "said" not in terms


def test_inflections_share_one_slot_in_their_commonest_form() -> None:
    terms = salient_terms("Earthquake hits Aceh", "Two earthquakes and another earthquake.")
    assert terms.count("earthquake") == 1
    assert "earthquakes" not in terms


def test_possessives_and_numbers() -> None:
    terms = salient_terms("Indonesia's quake of 6.1", "")
    assert "indonesia" in terms
    assert all(not term[0].isdigit() for term in terms)


def test_limit_and_empty_input() -> None:
    assert salient_terms("", "") == []
    assert salient_terms("one two three four", "", limit=0) == []
    assert len(salient_terms("alpha bravo charlie delta echo", "", limit=2)) == 2


def test_unknown_language_still_works() -> None:
    assert salient_terms("Klingon battle cruiser", "", language="klingon") == [
        "klingon",
        "battle",
        "cruiser",
    ]


def test_deterministic() -> None:
    args = ("Apple Watch sales forecast", "BMO forecasts 19M Apple Watch sales in 2015.")
    assert salient_terms(*args) == salient_terms(*args)


def test_per_word_caches_share_one_string_per_word() -> None:
    # A process that summarises keeps ~37,000 words at 10k stories in three caches (sentence
    # terms, salient terms, features): one string each, not three.
    word = "Zorblaxianquith"
    text = f"The {word} fleet arrived at the harbour on Monday."
    salient_terms("Fleet arrives", text)
    text_features("Fleet arrives", text)
    analyzer("english").terms(text)
    caches: list[Mapping[str, object]] = [
        similarity._KNOWN["english"],
        related_text._TOKENS["english"],
        analyzer("english")._known,
    ]
    keys = [next(key for key in cache if key == word) for cache in caches]
    assert keys[0] is keys[1] is keys[2]
    salient = similarity._KNOWN["english"][word]
    assert salient is not None
    assert salient[1] is related_text._TOKENS["english"][word][0]

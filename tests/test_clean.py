"""clean_text on a real aggregator page and on the noise such pages carry."""

from __future__ import annotations

from pathlib import Path

import pytest

from summarize.clean import clean_text

SEED = (Path(__file__).parent / "data" / "seed_page.txt").read_text(encoding="utf-8")

ARTICLE_SENTENCES = [
    "Ukraine said on Friday its forces were entering the southern city of Kherson and hailed "
    "an 'important victory' after Russia announced its troops had retreated from the only "
    "regional capital it has captured after nearly nine months fighting.",
    "The Kremlin insisted that Kherson was still part of Russia and that it did not regret "
    "annexing the entire Kherson region at a lavish ceremony in late September.",
    "The announcement that Moscow's pullout was over came hours after Russian strikes killed "
    "seven people in Mykolaiv, a city near Kherson, that Russian troops have battered for "
    "months.",
    '"The transfer of Russian troops to the left [eastern] bank of the Dnipro River was '
    "completed. Not a single piece of military equipment and weapons was left on the right "
    '[western] bank," the Russian defence ministry said.',
    '"Ukraine is gaining another important victory right now and proves that whatever Russia '
    'says or does, Ukraine will win," Foreign Minister Dmytro Kuleba wrote on social media.',
    "It would also disrupt an important land bridge for Russia between its mainland and the "
    "Crimean peninsula, which Moscow annexed from Ukraine in 2014.",
    '"This is a subject of the Russian Federation. There are no changes in this and there '
    'cannot be changes," Kremlin spokesperson Dmitry Peskov told reporters.',
    "Russian troops failed to capture the Black Sea city from Ukraine in the early stages of "
    "their invasion but have launched rockets and missiles on the embattled city for months.",
]


@pytest.fixture(scope="module")
def cleaned() -> str:
    return clean_text(SEED)


def test_seed_drops_photo_credit(cleaned: str) -> None:
    assert "Getty" not in cleaned
    assert "Anadolu" not in cleaned
    assert "Metin Aktas" not in cleaned


def test_seed_drops_footer_related_links_and_read_more(cleaned: str) -> None:
    assert "Latest News" not in cleaned
    assert "Headlines" not in cleaned
    assert "Similar News" not in cleaned
    assert "Read more" not in cleaned
    assert "»" not in cleaned
    # Teasers of other stories sit after "Similar News:" and must go with it.
    assert "POSAD POKROVSKIY" not in cleaned
    assert "G20 summit" not in cleaned


@pytest.mark.parametrize("sentence", ARTICLE_SENTENCES)
def test_seed_keeps_every_article_sentence_whole(cleaned: str, sentence: str) -> None:
    assert sentence in cleaned


def test_seed_unglues_quote_from_previous_sentence(cleaned: str) -> None:
    assert 'said. "Ukraine is gaining' in cleaned
    assert 'said."' not in cleaned


def test_seed_keeps_one_line_per_paragraph(cleaned: str) -> None:
    assert cleaned.splitlines()[0] == ARTICLE_SENTENCES[0]
    assert cleaned.splitlines()[1] == ARTICLE_SENTENCES[1]
    assert cleaned.endswith(ARTICLE_SENTENCES[-1])


def test_markup_entities_and_invisible_characters() -> None:
    page = (
        "<html><head><style>p {color: red}</style><script>var x = '<p>';</script></head>"
        "<body><p>Tom &amp; Jerry&#8217;s\u200b show&nbsp;returns.</p>"
        "<p>It airs at 8pm &lt;local time&gt;.</p><!-- tracking --></body></html>"
    )
    assert clean_text(page) == "Tom & Jerry\u2019s show returns.\n\nIt airs at 8pm <local time>."


def test_double_escaped_entities() -> None:
    assert clean_text("Q&amp;amp;A &amp;quot;now&amp;quot;") == 'Q&A "now"'


def test_prose_with_angle_brackets_survives() -> None:
    assert clean_text("Growth was < 2% and costs > 5%.") == "Growth was < 2% and costs > 5%."


def test_paragraphs_kept_and_whitespace_collapsed() -> None:
    text = "First   para\tline.\r\n\r\n\r\n\n  Second para.  \n\n\n"
    assert clean_text(text) == "First para line.\n\nSecond para."


@pytest.mark.parametrize(
    "line",
    ["Read more »", "Read more", "READ MORE...", "Continue reading", "Advertisement"],
)
def test_read_more_and_advert_lines_dropped(line: str) -> None:
    assert clean_text(f"The story.\n{line}\nMore story.") == "The story.\nMore story."


def test_glued_credit_after_sentence_and_credit_only_lines() -> None:
    text = (
        "Officials met on Monday.John Smith/AFP via Getty ImagesThe talks went on.\n"
        "Photo: Jane Doe/AP\n"
        "Jane Doe/Reuters\n"
        "The end."
    )
    assert clean_text(text) == "Officials met on Monday. The talks went on.\nThe end."


def test_sentences_naming_an_agency_survive() -> None:
    text = "Reuters reported the deal.\nApple sues Bloomberg\n(Reuters) - Talks resumed."
    assert clean_text(text) == text


def test_similar_news_mid_sentence_is_not_a_cut() -> None:
    text = "Similar news came from Paris, where strikes began.\nThey spread."
    assert clean_text(text) == text


def test_empty_and_noise_only_pages() -> None:
    assert clean_text("") == ""
    assert clean_text(" \u200b\n\t ") == ""
    assert clean_text("Similar News:You can also read\nRead more »") == ""

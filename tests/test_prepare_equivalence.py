"""The fast paths of preparing a story give exactly what the straightforward code gave.

Ingest was sped up (one tokenisation per text, per-process token caches, prechecks that skip
regex scans, punkt without nltk's regex timeouts, a batched power iteration). Each fast
function is checked here against a plain reference (the code it replaced, kept below) on
the repo's sample stories, on hand-picked awkward strings and on seeded random strings.
"""

from __future__ import annotations

import hashlib
import random
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sumy.utils import get_stop_words

from summarize.clean import (
    _AGENCY,
    _ANY_AGENCY,
    _CREDIT_LINE,
    _FOLDS_TO_ASCII,
    _GLUED_CREDIT,
    _GLUED_QUOTE,
    _GLUED_SENTENCE,
    _MANY_BLANK_LINES,
    _READ_MORE_LINE,
    _READ_MORE_TAIL,
    _RUNS_OF_SPACE,
    _SIMILAR_NEWS,
    _SITE_FOOTER,
    _SPACES,
    _ZERO_WIDTH,
    _strip_markup,
    clean_text,
)
from summarize.formats import parse_document
from summarize.ranking import (
    LeadRankConfig,
    _counts,
    _position_prior,
    analyzer,
    lead_rank_scores,
    similarity_matrix,
)
from summarize.related_text import (
    _CONNECTORS,
    _NOT_NAMES,
    _NUMBER,
    _YEAR,
    _hash64,
    _shingles,
    lower_words,
    shingle_digests,
    stem,
    stop_words,
    text_features,
)
from summarize.sentences import _stdlib_language_vars, _tokenizer, split_sentences
from summarize.similarity import salient_terms

ROOT = Path(__file__).parent.parent
LANGUAGES = ["english", "german"]

# -- inputs ------------------------------------------------------------------------------


def _sample_stories() -> list[tuple[str, str]]:
    stories: list[tuple[str, str]] = []
    for path in sorted((ROOT / "samples").iterdir()):
        if path.name == "README.md":
            continue
        for story in parse_document(path.read_bytes(), filename=path.name).stories:
            stories.append((" ".join(story.title.split()), story.text))
    return stories


def _raw_pages() -> list[str]:
    """Unparsed documents (HTML, feeds, scraped pages): rough input for clean_text."""
    return [
        path.read_text(encoding="utf-8")
        for folder in (ROOT / "samples", ROOT / "tests" / "data")
        for path in sorted(folder.iterdir())
        if path.is_file()
    ]


AWKWARD = [
    "",
    " ",
    "\n\n",
    "a’s's U.S. said. The Big Apple’s mayor O'Connor's aide",
    "Apple’s's chief met Apple’s's board. Apple’s's shares: Apple's's, Apple’s’s.",
    "Tara Reid Checks Into Rehab In 2009",
    "BREAKING: NASA Says The Moon Is Fine",
    "x" * 3000,
    "Supercalifragilisticexpialidocious" * 40 + ". Next one.",
    'İstanbul ÉCOLE 1,200 3.5bn $8.2bn 2009! Then?" Yes:\nNew York; “Quoted.” Done',
    "Café’s. São Paulo; Zoë's -x- 6.1. A.B.C. e.g. Gov. Brown No. 1 vs. No. 2",
    "Quake quakes QUAKE quake's Quakes QUAKES quake’s",
    "The 1990s, 2020 and 19999; 12,000,000 people; 3rd; 7am; 100km.",
    "Mr. Smith met Mrs. Jones and Dr. Brown. They talked... And then? Nothing!",
    "J. R. R. Tolkien wrote it. George W. Bush read it. (It was 3 p.m.) Fine.",
    "e\u0301cole d\u00e9j\u00e0 NEWſ ſimilar news: ıread more KELVIN \u212aelvin",
    "Related News: other story\nand more",
    "Read more »\nadvertisement\nContinue reading\nRead the full story.",
    "World Latest News, Breaking Headlines\nBody text here.",
    "Photo: Someone/Getty Images\nThe story.Next sentence here.Another one",
    'He said."Ukraine is fine." She said “yes.”Then left',
    "a  b   c \t d\n\n\n\ne\r\nf\rg &amp;quot;x&amp;quot; &#13;h",
    "<p>One</p><div>Two <b>bold</b></div><script>x()</script><!-- c -->Three &amp; four",
    "tab\tsep\u00a0nbsp\u200bzero\u00adsoft\u2009thin",
    "ab.Cd ab.Cab.Cd x.Yz USA.Next e.g.X",
    "ÀÉÎÕÜ àéîõü ΑΒΓ αβγ Ωmega Жук жук 東京 ١٢٣ ²³ ⅷ",
    "don't can't high-speed well-known rock'n'roll - -- ' ’ .5 5. ..",
]


def _fuzz(seed: int, count: int, alphabet: Sequence[str], longest: int) -> list[str]:
    rng = random.Random(seed)
    return [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, longest))) for _ in range(count)
    ]


WORDY = [
    *"aAbBeEsSqQkK",
    "’",
    "'",
    "-",
    ".",
    ",",
    " ",
    " ",
    "\n",
    "1",
    "2009",
    "é",
    "İ",
    "ſ",
    '"',
    "“",
    "!",
    "?",
    ":",
    ";",
    "\u2028",
    "\x85",
    "\u3000",
    "_",
    "Mr",
    "The",
    "U.S.",
]
PAGEY = [
    *WORDY,
    "Similar News:",
    "Related news :",
    "Read more",
    "»",
    "ADVERTISEMENT",
    "Latest News, ",
    "Headlines",
    "Getty Images",
    "Reuters",
    "Photo: ",
    " via ",
    "/",
    "<p>",
    "</div>",
    "&amp;",
    "&#13;",
    "\r\n",
    "\r",
    "\t",
    "  ",
    "\n\n\n",
    "ab.",
    "Cd",
    "\u200b",
    "\u00a0",
]

SAMPLES = _sample_stories()
TEXTS = [text for _, text in SAMPLES] + AWKWARD
PAIRS = [*SAMPLES, *((a, b) for a in AWKWARD for b in AWKWARD[:8])]
FUZZ = _fuzz(7, 1500, WORDY, 40)


# -- related_text: one tokenisation for index terms, entities and shingles ----------------

_TOKEN = re.compile(r"[^\W_](?:[\w'’.-]*[^\W_])?", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?:;\"“”]\s*$")


def ref_words(text: str) -> list[str]:
    out: list[str] = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token.endswith(("'s", "’s")):
            token = token[:-2]
        token = token.strip(".'’-")
        if token:
            out.append(token)
    return out


def ref_index_terms(text: str, language: str) -> list[str]:
    stop = stop_words(language)
    out: list[str] = []
    for token in ref_words(text):
        key = token.lower()
        if key in stop or len(key) < 2:
            continue
        if key[0].isdigit():
            out.append(key.replace(",", ""))
        elif len(key) >= 3:
            out.append(stem(key) if language == "english" else key)
    return out


def ref_tokens_with_starts(chunk: str) -> tuple[list[str], list[bool]]:
    tokens: list[str] = []
    initial: list[bool] = []
    at_start = True
    for match in _TOKEN.finditer(chunk):
        token = match.group().removesuffix("'s").removesuffix("’s").strip(".'’-")
        if token:
            tokens.append(token)
            initial.append(at_start)
        at_start = bool(_SENTENCE_END.search(chunk[match.start() : match.end() + 2]))
    return tokens, initial


def ref_entity_counts(title: str, text: str, language: str) -> Counter[str]:
    stop = stop_words(language)
    chunks = [ref_tokens_with_starts(title), ref_tokens_with_starts(text)]
    alpha = [t for t in chunks[0][0] if t[0].isalpha() and len(t) > 3]
    if len(alpha) >= 3 and sum(t[0].isupper() for t in alpha) >= 0.7 * len(alpha):
        chunks[0] = (chunks[0][0], [True] * len(chunks[0][0]))
    mid_sentence_caps = {
        token.lower()
        for tokens, initial in chunks
        for token, first in zip(tokens, initial, strict=True)
        if token[0].isupper() and not first
    }
    counts: Counter[str] = Counter()
    for tokens, initial in chunks:
        for token, first in zip(tokens, initial, strict=True):
            key = token.lower()
            if token[0].isdigit():
                if _YEAR.fullmatch(key):
                    counts["y:" + key] += 1
                elif _NUMBER.fullmatch(key) and len(key) > 1:
                    counts["q:" + key.replace(",", "")] += 1
                continue
            if not token[0].isupper() or key in _NOT_NAMES or key in _CONNECTORS:
                continue
            if key in stop or len(key) < 2:
                continue
            if first and key not in mid_sentence_caps and not token.isupper():
                continue
            counts["n:" + key] += 1
    return counts


def ref_shingles(tokens: list[str]) -> set[str]:
    size = 3 if len(tokens) >= 30 else 2
    if len(tokens) < size:
        return set(tokens)
    return {" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1)}


def _items(counts: Counter[str]) -> list[tuple[str, int]]:
    # Counter equality ignores zero counts; compare exactly.
    return sorted(counts.items())


def _check_text_features(title: str, text: str, language: str) -> None:
    found = text_features(title, text, language, title_weight=2)
    terms: Counter[str] = Counter()
    for term in ref_index_terms(title, language):
        terms[term] += 2
    terms.update(ref_index_terms(text, language))
    assert _items(found.terms) == _items(terms)
    assert _items(found.entities) == _items(ref_entity_counts(title, text, language))
    lowered = [word.lower() for word in ref_words(f"{title}\n{text}")]
    assert found.tokens == lowered
    assert lower_words(f"{title}\n{text}", language) == lowered


@pytest.mark.parametrize("language", LANGUAGES)
def test_text_features_match_the_separate_passes(language: str) -> None:
    for title, text in PAIRS:
        _check_text_features(title, text, language)
    for title, text in zip(FUZZ[::2], FUZZ[1::2], strict=True):
        _check_text_features(title[:30], text, language)


def test_title_weight_multiplies_title_terms_only() -> None:
    found = text_features("Quake hits", "The quake", title_weight=5)
    assert found.terms == Counter({"quak": 6, "hit": 5})


def test_sentence_starts_match_the_sliced_search_for_every_character_pair() -> None:
    # The look-ahead in _TOKEN_AND_END must agree with _SENTENCE_END on the token and the two
    # characters after it, whitespace of every kind included.
    specials = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    chars = [*specials, *'.!?:;"“”', "a", "1", ",", "'", "-", "_", ")", "\u00e9"]
    for first in ["", *chars]:
        for second in ["", *chars] if first else [""]:
            chunk = f"ab{first}{second}"
            _, initial = ref_tokens_with_starts(chunk + " Zed")
            got = text_features("", chunk + " Zed", "english").entities
            expected = ref_entity_counts("", chunk + " Zed", "english")
            assert _items(got) == _items(expected), (repr(chunk), initial)


def test_shingles_and_digests_match_per_shingle_hashing() -> None:
    for text in [*TEXTS, *FUZZ[:300]]:
        tokens = [word.lower() for word in ref_words(text)]
        shingles = _shingles(tokens)
        assert shingles == ref_shingles(tokens)
        hashes = np.frombuffer(shingle_digests(shingles), dtype=">u8").tolist()
        assert hashes == [_hash64(shingle) for shingle in shingles]


# -- similarity: salient terms ------------------------------------------------------------

_SALIENT_WORD = re.compile(r"[^\W\d_][\w'’-]*[^\W_]|[^\W\d_]", re.UNICODE)
_SALIENT_FILLER = frozenset(
    {"said", "says", "say", "told", "reported", "according", "year", "years", "news", "latest"}
)


def ref_salient_terms(title: str, text: str, limit: int, language: str) -> list[str]:
    if limit <= 0:
        return []
    try:
        stop = frozenset(get_stop_words(language)) | _SALIENT_FILLER
    except LookupError:
        stop = _SALIENT_FILLER
    english = language == "english"
    scores: dict[str, float] = {}
    first_seen: dict[str, int] = {}
    forms: dict[str, dict[str, int]] = {}
    for weight, chunk in ((3.0, title), (1.0, text)):
        for raw, count in Counter(_SALIENT_WORD.findall(chunk)).items():
            word = raw.strip("'’-")
            if word.endswith(("'s", "’s")):
                word = word[:-2]
            key = word.lower()
            if len(key) < 3 or key in stop:
                continue
            root = stem(key) if english else key
            boost = 1.5 if word[0].isupper() else 1.0
            scores[root] = scores.get(root, 0.0) + weight * boost * count
            if root not in first_seen:
                first_seen[root] = len(first_seen)
                forms[root] = {}
            seen = forms[root]
            seen[key] = seen.get(key, 0) + count
    ranked = sorted(scores, key=lambda root: (-scores[root], first_seen[root]))

    def commonest(found: dict[str, int]) -> str:
        return min(found, key=lambda form: (-found[form], len(form), form))

    return [commonest(forms[root]) for root in ranked[:limit]]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("limit", [12, 1, 0, 40])
def test_salient_terms_match_the_reference(language: str, limit: int) -> None:
    pairs = [*PAIRS, *zip(FUZZ[::2], FUZZ[1::2], strict=True)]
    for title, text in pairs:
        expected = ref_salient_terms(title, text, limit, language)
        assert salient_terms(title, text, limit, language) == expected, (title, text)


# -- clean ----------------------------------------------------------------------------------


def ref_clean_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _strip_markup(text).translate(_ZERO_WIDTH).translate(_SPACES)
    text = _SIMILAR_NEWS.sub("", text)
    text = _READ_MORE_LINE.sub("", text)
    if "\u00bb" in text:
        text = _READ_MORE_TAIL.sub("", text)
    text = _SITE_FOOTER.sub("", text)
    if _ANY_AGENCY.search(text) or "Photo" in text or "Image" in text:
        text = _GLUED_CREDIT.sub("", text)
        text = _CREDIT_LINE.sub("", text)
    text = _GLUED_QUOTE.sub(r"\1 \2", text)
    text = _GLUED_SENTENCE.sub(" ", text)
    lines = (_RUNS_OF_SPACE.sub(" ", line).strip() for line in text.split("\n"))
    return _MANY_BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def test_clean_text_matches_the_reference() -> None:
    texts = [*_raw_pages(), *TEXTS, *_fuzz(11, 3000, PAGEY, 30)]
    for text in texts:
        assert clean_text(text) == ref_clean_text(text), repr(text)
        # prepare_story cleans, then summarize cleans the cleaned text again.
        once = clean_text(text)
        assert clean_text(once) == ref_clean_text(once), repr(once)


def test_only_the_listed_characters_fold_to_ascii_letters() -> None:
    letter = re.compile(r"[a-z]", re.IGNORECASE)
    found = [chr(c) for c in range(128, sys.maxunicode + 1) if letter.fullmatch(chr(c))]
    assert found == list(_FOLDS_TO_ASCII)
    assert _AGENCY  # the credit patterns are used as they were


# -- ranking ----------------------------------------------------------------------------------

_RANK_WORD = re.compile(r"(?<![\w.])[^\W\d_]+(?:['\u2019-][^\W\d_]+)*(?![\w]|\.\w)")


def _sentences() -> list[str]:
    found: list[str] = []
    for _, text in SAMPLES:
        found.extend(split_sentences(clean_text(text)))
    return found


def test_analyzer_terms_match_the_reference() -> None:
    for language in LANGUAGES:
        terms = analyzer(language).terms
        stop, stemmer = analyzer(language).stop_words, analyzer(language).stem
        for sentence in [*_sentences(), *TEXTS, *FUZZ[:500]]:
            words = (match.lower() for match in _RANK_WORD.findall(sentence))
            expected = [stemmer(word) for word in words if word not in stop]
            assert terms(sentence) == expected
            assert terms(sentence) == expected  # and again, from the cache


def ref_counts(token_lists: Sequence[Sequence[str]]) -> Any:
    vocabulary: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for row, tokens in enumerate(token_lists):
        for token in tokens:
            rows.append(row)
            cols.append(vocabulary.setdefault(token, len(vocabulary)))
    counts = np.zeros((len(token_lists), max(len(vocabulary), 1)))
    np.add.at(counts, (np.asarray(rows, dtype=np.intp), np.asarray(cols, dtype=np.intp)), 1.0)
    return counts


def ref_lead_rank_scores(token_lists: Sequence[Sequence[str]], config: LeadRankConfig) -> Any:
    count = len(token_lists)
    similarity = similarity_matrix(token_lists)
    np.fill_diagonal(similarity, 0.0)
    prior = _position_prior(count, config.position_decay)
    row_sums = similarity.sum(axis=1)
    dangling = row_sums == 0
    transition = similarity / np.where(dangling, 1.0, row_sums)[:, None]
    transition[dangling] = prior
    rank = prior.copy()
    for _ in range(100):
        following = (1.0 - config.damping) * prior + config.damping * (transition.T @ rank)
        if float(np.abs(following - rank).sum()) < 1e-9:
            rank = following
            break
        rank = following
    rank /= rank.sum()
    scores = (1.0 - config.prior_weight) * rank + config.prior_weight * prior
    lengths = np.asarray([len(tokens) for tokens in token_lists], dtype=np.float64)
    short = lengths < config.min_words
    return np.where(short, scores * (lengths + 1.0) / (config.min_words + 1.0), scores)


def _token_lists() -> Iterator[list[list[str]]]:
    terms = analyzer("english").terms
    for _, text in SAMPLES:
        yield [terms(sentence) for sentence in split_sentences(clean_text(text))]
    rng = random.Random(5)
    vocabulary = [f"w{i}" for i in range(40)]
    for size in [1, 2, 3, 7, 8, 9, 30, 65]:
        for _ in range(6):
            yield [
                rng.choices(vocabulary, k=rng.randint(0, 12)) for _ in range(size)
            ]  # some empty, some sharing words
    yield [["same", "words"]] * 5  # converges at once


def test_counts_and_lead_rank_scores_are_bit_for_bit_the_reference() -> None:
    configs = [LeadRankConfig(), LeadRankConfig(damping=0.5, position_decay=1.0)]
    for token_lists in _token_lists():
        assert np.array_equal(_counts(token_lists), ref_counts(token_lists))
        for config in configs:
            scores, _ = lead_rank_scores(token_lists, config)
            expected = ref_lead_rank_scores(token_lists, config)
            assert scores.tobytes() == expected.tobytes()


# -- sentences ------------------------------------------------------------------------------


def _reference_tokenizer(language: str) -> Any:
    """punkt as it was set up before: nltk's own token class, no memo."""
    from nltk.tokenize import PunktTokenizer

    from summarize.sentences import _EXTRA_ABBREVIATIONS

    tokenizer = PunktTokenizer(language)
    tokenizer._params.abbrev_types.update(_EXTRA_ABBREVIATIONS.get(language, frozenset()))
    tokenizer._lang_vars = _stdlib_language_vars(tokenizer._lang_vars)
    return tokenizer


@pytest.mark.parametrize("language", LANGUAGES)
def test_punkt_splits_as_before(language: str) -> None:
    reference: Callable[[str], Any] = _reference_tokenizer(language).span_tokenize
    fast = _tokenizer(language).span_tokenize
    units = [
        line
        for text in [*(text for _, text in SAMPLES), *_raw_pages(), *AWKWARD]
        for line in clean_text(text).split("\n")
        if line.strip()
    ]
    units += _fuzz(13, 2000, [*WORDY, "Dr.", "No.", "3.5", "...", "J.", "p.m.", " x"], 30)
    for unit in units:
        assert list(fast(unit)) == list(reference(unit)), repr(unit)
        assert list(fast(unit)) == list(reference(unit)), repr(unit)  # memo hit


def test_digests_are_blake2b() -> None:
    digest = hashlib.blake2b(b"a b", digest_size=8).digest()
    assert shingle_digests({"a b"}) == digest

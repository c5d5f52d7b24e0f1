from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from summarize.related import (
    CorpusStats,
    Doc,
    DocFeatures,
    RelatedHit,
    Weights,
    _Sparse,
    _Stack,
    build_features,
    rank_related,
    signature,
)
from summarize.related_text import entity_counts, minhash, minhash_similarity

REID_2009 = Doc(
    key="reid-ap",
    title="Tara Reid checks into rehab at Promises in Malibu",
    text=(
        "Actress Tara Reid has entered the Promises Treatment Center in Malibu, her publicist "
        "Jack Ketsoyan said on Friday. The American Pie star, 33, did not say what she was "
        "being treated for. Reid said in 2009 she was a social drinker."
    ),
    source="ap.org",
    published_at=datetime(2009, 3, 6, tzinfo=UTC),
)
REID_2009_PEOPLE = Doc(
    key="reid-people",
    title="Publicist: Tara Reid is in rehab",
    text=(
        "Tara Reid's representative Jack Ketsoyan confirmed the American Pie actress is at "
        "Promises in Malibu. Reid, 33, asked for privacy for her family in 2009."
    ),
    source="people.com",
    published_at=datetime(2009, 3, 7, tzinfo=UTC),
)
LOHAN_2013 = Doc(
    key="lohan",
    title="Lindsay Lohan checks into rehab at Betty Ford",
    text=(
        "Actress Lindsay Lohan has entered the Betty Ford Center in Rancho Mirage, her lawyer "
        "Mark Heller said on Friday. The Mean Girls star, 26, was ordered into rehab by a judge "
        "in 2013 and is being treated at the treatment center for 90 days."
    ),
    source="ap.org",
    published_at=datetime(2013, 5, 3, tzinfo=UTC),
)
QUAKE = Doc(
    key="quake",
    title="Magnitude 6.1 earthquake strikes Indonesia's Aceh province",
    text="The earthquake damaged homes in Aceh on Tuesday, officials said.",
    source="bbc.co.uk",
    published_at=datetime(2013, 7, 2, tzinfo=UTC),
)


def features(*docs: Doc) -> list[DocFeatures]:
    return [build_features(doc) for doc in docs]


def keys(hits: list[RelatedHit]) -> list[str | int]:
    return [hit.key for hit in hits]


def test_same_event_outranks_same_kind_of_event_with_other_names_and_year() -> None:
    query, same, other, unrelated = features(REID_2009, REID_2009_PEOPLE, LOHAN_2013, QUAKE)
    hits = rank_related(query, [unrelated, other, same])
    assert keys(hits)[:2] == ["reid-people", "lohan"]
    assert hits[0].score > hits[1].score


def test_hard_negative_loses_on_text_alone_without_dates() -> None:
    undated = [
        build_features(Doc(d.key, d.title, d.text))
        for d in (REID_2009, REID_2009_PEOPLE, LOHAN_2013)
    ]
    hits = rank_related(undated[0], undated[1:])
    assert keys(hits) == ["reid-people", "lohan"]


def test_entities_are_names_years_and_figures_not_sentence_starts() -> None:
    found = entity_counts(QUAKE.title, QUAKE.text)
    assert found["n:aceh"] == 2
    assert found["n:indonesia"] == 1
    assert found["q:6.1"] == 1
    assert "n:magnitude" not in found  # first word of the headline
    assert "n:tuesday" not in found
    assert entity_counts("", REID_2009.text)["y:2009"] == 1


def test_title_case_headline_capitals_are_not_names() -> None:
    found = entity_counts("Tara Reid Checks Into Rehab In 2009", "")
    assert "n:checks" not in found and "n:rehab" not in found
    assert found["y:2009"] == 1


def test_near_copies_are_folded_into_one_hit_listing_outlets() -> None:
    text = (
        "A strong earthquake of magnitude 6.1 shook Aceh province in Indonesia on Tuesday, "
        "damaging hundreds of homes and killing at least five people, the disaster agency said."
    )
    copy_a = Doc("wire-a", "Quake kills five in Indonesia's Aceh", text, "reuters.com")
    copy_b = Doc(
        "wire-b", "Quake kills five in Indonesia's Aceh", text + " More soon.", "yahoo.com"
    )
    copy_c = Doc("wire-c", "Quake kills five in Indonesia's Aceh", text, "msn.com")
    follow_up = Doc(
        "follow-up",
        "Aceh earthquake death toll rises as rescuers search rubble",
        "Rescuers in Aceh searched collapsed homes after the magnitude 6.1 earthquake in "
        "Indonesia; the death toll rose to 22.",
        "bbc.co.uk",
    )
    query = build_features(QUAKE)
    pool = features(copy_a, copy_b, follow_up, copy_c)
    hits = rank_related(query, pool, stats=CorpusStats.of([query, *pool]))
    assert len(hits) == 2
    folded = next(hit for hit in hits if hit.copies)
    assert {folded.key, *folded.copies} == {"wire-a", "wire-b", "wire-c"}
    assert set(folded.outlets) == {"reuters.com", "yahoo.com", "msn.com"}
    assert next(hit for hit in hits if not hit.copies).key == "follow-up"

    unfolded = rank_related(query, pool, fold_copies=False)
    assert len(unfolded) == 4
    assert all(hit.copies == () for hit in unfolded)


def test_time_proximity_breaks_ties() -> None:
    day = datetime(2014, 9, 1, 12, tzinfo=UTC)
    query = build_features(Doc("q", "Banksy identity revealed", "", "a.com", day))
    near = build_features(
        Doc("near", "Banksy identity revealed", "", "b.com", day + timedelta(days=1))
    )
    far = build_features(
        Doc("far", "Banksy identity revealed", "", "c.com", day + timedelta(days=400))
    )
    for pool in ([near, far], [far, near]):
        hits = rank_related(query, pool, fold_copies=False)
        assert keys(hits) == ["near", "far"]
    # Without dates the two are equal, and the order falls back to the key.
    undated = Weights(use_dates=False)
    assert keys(rank_related(query, [near, far], weights=undated, fold_copies=False)) == [
        "far",
        "near",
    ]


def test_new_outlet_preferred_among_equals() -> None:
    query = build_features(Doc("q", "Apple Watch sales forecast", "", "a.com"))
    same_outlet = build_features(Doc("1", "Apple Watch sales forecast", "", "a.com"))
    other_outlet = build_features(Doc("2", "Apple Watch sales forecast", "", "b.com"))
    hits = rank_related(query, [same_outlet, other_outlet], fold_copies=False)
    assert keys(hits) == ["2", "1"]


def test_features_and_stats_round_trip_through_json() -> None:
    items = features(REID_2009, LOHAN_2013, Doc(7, "Headline only"))
    for item in items:
        assert DocFeatures.from_json(json.loads(json.dumps(item.to_json()))) == item
    stats = CorpusStats.of(items)
    again = CorpusStats.from_json(json.loads(json.dumps(stats.to_json())))
    assert again == stats
    assert rank_related(items[0], items[1:], stats=again) == rank_related(
        items[0], items[1:], stats=stats
    )


def test_stats_update_incrementally() -> None:
    reid, lohan = features(REID_2009, LOHAN_2013)
    stats = CorpusStats()
    stats.add(reid)
    stats.add(lohan)
    assert stats.docs == 2
    assert stats.df["rehab"] == 2
    assert stats.idf("rehab") < stats.idf("lohan") < stats.idf("never-seen")
    stats.remove(lohan)
    assert stats == CorpusStats.of([reid])


def test_headline_only_and_empty_docs() -> None:
    empty = build_features(Doc("empty", "", ""))
    assert empty.terms == {} and empty.signature == ()
    headline = build_features(Doc("h", "Tara Reid enters rehab"))
    assert headline.terms
    hits = rank_related(headline, [empty, *features(REID_2009, QUAKE)])
    assert keys(hits)[0] == "reid-ap"
    assert rank_related(empty, features(REID_2009)) == [RelatedHit("reid-ap", 0.0, (), ("ap.org",))]
    assert rank_related(headline, []) == []
    assert rank_related(headline, [headline]) == []
    assert rank_related(headline, features(REID_2009), limit=0) == []


def test_output_is_deterministic() -> None:
    pool = features(REID_2009_PEOPLE, LOHAN_2013, QUAKE, Doc(1, "Rehab"), Doc(2, "Rehab"))
    query = build_features(REID_2009)
    first = rank_related(query, pool)
    assert rank_related(query, list(reversed(pool))) == first
    assert build_features(REID_2009) == query
    # The signature must not depend on Python's per-process hash seed.
    assert minhash("a fixed text")[:2] == (40182222699221763, 484793645605951774)
    assert minhash_similarity(minhash("quake hits Aceh"), minhash("quake hits Aceh")) == 1.0
    assert minhash_similarity((), ()) == 0.0


def test_rebased_stats_rank_like_fresh_stats() -> None:
    docs = features(REID_2009, REID_2009_PEOPLE, LOHAN_2013, QUAKE)
    reused = CorpusStats.of(docs[:2])
    rank_related(docs[0], docs[1:], stats=reused)  # fills the caches under other counts
    fresh = CorpusStats.of(docs)
    reused.rebase(fresh.docs, dict(fresh.df))
    assert rank_related(docs[0], docs[1:], stats=reused) == rank_related(
        docs[0], docs[1:], stats=fresh
    )


def test_copies_fold_when_signatures_differ_in_length() -> None:
    text = "A strong earthquake of magnitude 6.1 shook Aceh province in Indonesia on Tuesday."
    copy_a, copy_b = features(
        Doc("a", "Quake in Aceh", text, "a.com"), Doc("b", "Quake in Aceh", text, "b.com")
    )
    headline = DocFeatures("h", {"quake": 1}, {}, (), "c.com")
    query = build_features(QUAKE)
    hits = rank_related(query, [copy_a, copy_b, headline])
    folded = next(hit for hit in hits if hit.copies)
    assert {folded.key, *folded.copies} == {"a", "b"}


def test_signature_is_minhash_computed_with_numpy() -> None:
    # Stored signatures from either code path must compare equal, bit for bit.
    texts = [
        "",
        "one",
        "two words",
        "Tara Reid checks into rehab\n" + REID_2009.text,
        LOHAN_2013.title + "\n" + LOHAN_2013.text * 3,
        "Ünïcode — Québec’s 6.1 quake, U.S. officials’ O'Connor ... " * 20,
    ]
    for text in texts:
        assert signature(text) == minhash(text)


def test_extended_stats_rank_like_stats_read_at_once() -> None:
    # A ranking round reads the counts of each chunk's new keys only (CorpusStats.extend)
    # and keeps the vectors worked out for earlier chunks.
    docs = features(REID_2009, REID_2009_PEOPLE, LOHAN_2013, QUAKE)
    full = CorpusStats.of(docs)
    first_keys = docs[0].vocabulary() | docs[1].vocabulary()
    grown = CorpusStats()
    grown.rebase(full.docs, {k: v for k, v in full.df.items() if k in first_keys})
    first = rank_related(docs[0], docs[1:2], stats=grown)
    grown.extend({k: v for k, v in full.df.items() if k not in first_keys})
    assert first == rank_related(docs[0], docs[1:2], stats=CorpusStats.of(docs))
    assert rank_related(docs[0], docs[1:], stats=grown) == rank_related(
        docs[0], docs[1:], stats=full
    )


def test_counts_read_later_replace_idfs_worked_out_before() -> None:
    # Vector positions outlive a round, so a key's idf can be worked out (as unseen) before
    # the round reads its count; extend() must then replace it.
    docs = features(REID_2009, REID_2009_PEOPLE, LOHAN_2013, QUAKE)
    full = CorpusStats.of(docs)
    first_keys = docs[0].vocabulary() | docs[1].vocabulary()
    grown = CorpusStats()
    vectors = [grown.vectors(doc) for doc in docs]
    grown.rebase(full.docs, {k: v for k, v in full.df.items() if k in first_keys})
    rank_related(vectors[0], vectors[1:2], stats=grown)
    grown.extend({k: v for k, v in full.df.items() if k not in first_keys})
    assert rank_related(vectors[0], vectors[1:], stats=grown) == rank_related(
        docs[0], docs[1:], stats=full
    )


def test_vectors_rank_like_the_features_they_came_from() -> None:
    docs = features(REID_2009, REID_2009_PEOPLE, LOHAN_2013, QUAKE)
    expected = rank_related(docs[0], docs[1:], stats=CorpusStats.of(docs))
    stats = CorpusStats.of(docs)
    vectors = [stats.vectors(doc) for doc in docs]
    assert rank_related(vectors[0], vectors[1:], stats=stats) == expected
    # Straight from the stored JSON, as an ingest reads its candidates.
    stats = CorpusStats.of(docs)
    stored = [
        stats.vectors_from_json(doc.key, {k: v for k, v in doc.to_json().items() if k != "key"})
        for doc in docs
    ]
    assert rank_related(stored[0], stored[1:], stats=stats) == expected
    # Mixed with DocFeatures under the same stats.
    assert rank_related(docs[0], [*stored[1:3], docs[3]], stats=stats) == expected


def test_vectors_need_their_stats() -> None:
    docs = features(REID_2009, LOHAN_2013)
    stats = CorpusStats.of(docs)
    with pytest.raises(ValueError, match="CorpusStats"):
        rank_related(stats.vectors(docs[0]), docs[1:])


def test_trim_forgets_positions_only_past_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = features(REID_2009, REID_2009_PEOPLE, LOHAN_2013)
    stats = CorpusStats.of(docs)
    before = [stats.vectors(doc) for doc in docs]
    assert not stats.trim()
    assert rank_related(before[0], before[1:], stats=stats)
    monkeypatch.setattr("summarize.related._MAX_IDS", 3)
    assert stats.trim()
    assert stats.vocabulary_size() == 0
    with pytest.raises(ValueError, match="trim"):
        rank_related(before[0], before[1:], stats=stats)
    after = [stats.vectors(doc) for doc in docs]
    assert rank_related(after[0], after[1:], stats=stats) == rank_related(
        docs[0], docs[1:], stats=CorpusStats.of(docs)
    )


def test_positions_stay_exact_past_two_bytes() -> None:
    docs = features(REID_2009, REID_2009_PEOPLE, LOHAN_2013)
    stats = CorpusStats.of(docs)
    query = stats.vectors(docs[0])
    filler = [f"t:filler{n}" for n in range(70_000)]
    positions = stats.ids(filler)
    # Positions are two bytes while they fit, four after: none may wrap around.
    assert positions.tolist() == list(range(positions[0], positions[0] + 70_000))
    assert stats.keys_of(positions[-3:]) == filler[-3:]
    candidates = [stats.vectors(doc) for doc in docs[1:]]
    assert all(c.terms.ids.max() > 70_000 for c in candidates)
    expected = rank_related(docs[0], docs[1:], stats=CorpusStats.of(docs))
    assert expected
    assert rank_related(query, candidates, stats=stats) == expected


def test_stacked_dot_products_match_one_by_one() -> None:
    # Empty vectors (a story without entities) sit between others: each sum must still land
    # on its own vector.
    rng = np.random.default_rng(7)

    def sparse(size: int) -> _Sparse:
        ids = rng.choice(50, size=size, replace=False).astype(np.uint16)
        return _Sparse(ids, rng.random(size))

    vectors = [sparse(0), sparse(5), sparse(0), sparse(1), sparse(12), sparse(0)]
    dense = rng.random(50)
    expected = [float(dense[v.ids.astype(np.intp)] @ v.weights) for v in vectors]
    for rows in ([0, 1, 2, 3, 4, 5], [1], [0], [], [1, 3, 4], [2, 4, 5]):
        got = _Stack.of([vectors[n] for n in rows]).dots(dense).tolist()
        assert got == pytest.approx([expected[n] for n in rows], abs=1e-12)

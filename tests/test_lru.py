from summarize.lru import remember, touch


def test_the_least_recently_used_entry_goes_first() -> None:
    cache: dict[int, str] = {}
    remember(cache, 1, "a", bound=2)
    remember(cache, 2, "b", bound=2)
    assert touch(cache, 1) == "a"  # 2 is now the least recently used
    remember(cache, 3, "c", bound=2)
    assert cache == {1: "a", 3: "c"}
    assert touch(cache, 2) is None
    remember(cache, 1, "A", bound=2)  # replacing keeps one entry per key
    assert list(cache.items()) == [(3, "c"), (1, "A")]

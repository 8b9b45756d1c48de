"""Topic rules and the subscription index (checked against the plain matcher)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.bus.topics import TopicIndex, check_pattern, check_topic, matches
from supervisor.core.errors import BusError


@pytest.mark.parametrize(
    "pattern, topic, expected",
    [
        ("a.b", "a.b", True),
        ("a.b", "a.b.c", False),
        ("a.*", "a.b", True),
        ("a.*", "a.b.c", False),
        ("a.*.c", "a.x.c", True),
        ("a.>", "a.b", True),
        ("a.>", "a.b.c.d", True),
        ("a.>", "a", False),
        (">", "anything.at.all", True),
        ("*", "one", True),
        ("*", "one.two", False),
        ("*.>", "a.b", True),
    ],
)
def test_matches_star_one_token_gt_the_rest(pattern: str, topic: str, expected: bool) -> None:
    assert matches(pattern, topic) is expected


@pytest.mark.parametrize("topic", ["", "a..b", ".a", "a.", "a.*", "a.>", "a b", "x" * 300])
def test_bad_topics_refused(topic: str) -> None:
    with pytest.raises(BusError):
        check_topic(topic)


@pytest.mark.parametrize("pattern", ["", "a.>.b", "a..b", "a*", "a.b>", "a. b"])
def test_bad_patterns_refused(pattern: str) -> None:
    with pytest.raises(BusError):
        check_pattern(pattern)


def test_index_counts_duplicate_subscriptions() -> None:
    index: TopicIndex[str] = TopicIndex()
    index.add("a.*", "x")
    index.add("a.*", "x")
    index.add("a.>", "y")
    assert set(index.match("a.b")) == {"x", "y"}
    index.remove("a.*", "x")
    assert set(index.match("a.b")) == {"x", "y"}
    index.remove("a.*", "x")
    index.remove("a.>", "y")
    assert index.match("a.b") == ()
    assert not index._root.children, "empty trie branches are pruned"


def test_index_equal_answers_are_the_same_tuple() -> None:
    index: TopicIndex[str] = TopicIndex()
    index.add("p.*", "s")
    assert index.match("p.a") is index.match("p.b")
    index.match("supctl.x", remember=False)
    assert index.cached("supctl.x") is None


def test_index_cache_is_bounded() -> None:
    index: TopicIndex[str] = TopicIndex(cache_size=10)
    index.add(">", "all")
    for i in range(100):
        assert index.match(f"t.{i}") == ("all",)
    assert len(index._cache) <= 10


tokens = st.sampled_from(["a", "b", "c"])
topics = st.lists(tokens, min_size=1, max_size=4).map(".".join)
patterns = st.lists(st.sampled_from(["a", "b", "*"]), min_size=1, max_size=3).flatmap(
    lambda toks: st.sampled_from([".".join(toks), ".".join([*toks, ">"])])
)


@settings(max_examples=200, deadline=None)
@given(subs=st.lists(st.tuples(patterns, st.integers(0, 3)), max_size=8), probe=st.lists(topics, max_size=6))
def test_index_agrees_with_matches(subs: list[tuple[str, int]], probe: list[str]) -> None:
    index: TopicIndex[int] = TopicIndex()
    for pattern, value in subs:
        index.add(pattern, value)
    for topic in probe:
        expected = {v for p, v in subs if matches(p, topic)}
        assert set(index.match(topic)) == expected
        assert len(index.match(topic)) == len(expected)
    for pattern, value in subs:
        index.remove(pattern, value)
    assert all(index.match(t) == () for t in probe)

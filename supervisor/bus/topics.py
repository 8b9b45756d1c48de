"""Topic patterns, NATS style: `*` is one token, `>` is every remaining token (one or more).

`TopicIndex` answers "who wants topic T" from a token trie and memoises the
answer per topic, so the hot path is one dict lookup.
"""

from __future__ import annotations

import re
from typing import Generic, Hashable, TypeVar

from supervisor.core.errors import BusError

V = TypeVar("V", bound=Hashable)

MAX_TOPIC = 256
RESERVED_PREFIX = "supctl."
"""Topics only the master (bot `supctl`) may publish on, e.g. presence events."""


_BAD_TOPIC = re.compile(r"[\s*>]|^\.|\.\.|\.$")
"""One regex search instead of a Python loop per character: every publish passes through here."""


def check_topic(topic: str) -> None:
    """A concrete topic: dot-separated non-empty tokens, no wildcards, no spaces."""
    if not topic or len(topic) > MAX_TOPIC:
        raise BusError(f"topic must be 1..{MAX_TOPIC} characters: {topic!r}")
    if _BAD_TOPIC.search(topic):
        raise BusError(f"bad topic {topic!r}: tokens are non-empty, without spaces or wildcards")


def check_pattern(pattern: str) -> None:
    """A subscription pattern: like a topic, but `*` may be a token and `>` the last one."""
    if not pattern or len(pattern) > MAX_TOPIC:
        raise BusError(f"pattern must be 1..{MAX_TOPIC} characters: {pattern!r}")
    tokens = pattern.split(".")
    for i, token in enumerate(tokens):
        if token in ("*", ">"):
            if token == ">" and i != len(tokens) - 1:
                raise BusError(f"bad pattern {pattern!r}: '>' must be the last token")
            continue
        if not token or "*" in token or ">" in token or any(c.isspace() for c in token):
            raise BusError(f"bad pattern {pattern!r}: tokens are non-empty, without spaces")


def matches(pattern: str, topic: str) -> bool:
    """Does `topic` fall under `pattern`? (The reference the index is tested against.)"""
    ptoks = pattern.split(".")
    ttoks = topic.split(".")
    for i, p in enumerate(ptoks):
        if p == ">":
            return len(ttoks) > i
        if i >= len(ttoks) or (p != "*" and p != ttoks[i]):
            return False
    return len(ptoks) == len(ttoks)


class _Node(Generic[V]):
    __slots__ = ("children", "here", "rest")

    def __init__(self) -> None:
        self.children: dict[str, _Node[V]] = {}
        self.here: dict[V, int] = {}
        self.rest: dict[V, int] = {}


class TopicIndex(Generic[V]):
    """Pattern -> values (with multiplicity), queried by concrete topic.

    `match` returns a tuple of distinct values; equal
    answers are the same tuple object, so callers may group work by identity.
    """

    def __init__(self, cache_size: int = 10_000) -> None:
        """`cache_size` bounds the per-topic memo; past it the memo starts over."""
        self._root: _Node[V] = _Node()
        self._cache: dict[str, tuple[V, ...]] = {}
        self._interned: dict[tuple[V, ...], tuple[V, ...]] = {}
        self._cache_size = cache_size

    def add(self, pattern: str, value: V) -> None:
        node, leaf = self._walk(pattern)
        bucket = node.rest if leaf == ">" else node.here
        bucket[value] = bucket.get(value, 0) + 1
        self._invalidate()

    def remove(self, pattern: str, value: V) -> None:
        tokens = pattern.split(".")
        leaf = tokens[-1]
        path: list[tuple[_Node[V], str]] = []
        node = self._root
        for token in tokens[:-1] if leaf == ">" else tokens:
            nxt = node.children.get(token)
            if nxt is None:
                return
            path.append((node, token))
            node = nxt
        bucket = node.rest if leaf == ">" else node.here
        count = bucket.get(value, 0)
        if count <= 1:
            bucket.pop(value, None)
        else:
            bucket[value] = count - 1
        while path and not (node.children or node.here or node.rest):
            parent, token = path.pop()
            del parent.children[token]
            node = parent
        self._invalidate()

    def match(self, topic: str, remember: bool = True) -> tuple[V, ...]:
        """Values whose pattern covers `topic`; `remember=False` keeps it out of the memo."""
        found = self._cache.get(topic)
        if found is not None:
            return found
        seen: dict[V, None] = {}
        self._collect(self._root, topic.split("."), 0, seen)
        key = tuple(seen)
        found = self._interned.setdefault(key, key)
        if not remember:
            return found
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
            self._interned = {found: found}
        self._cache[topic] = found
        return found

    def cached(self, topic: str) -> tuple[V, ...] | None:
        """The memoised answer or None: the hot path's one dict lookup."""
        return self._cache.get(topic)

    def _walk(self, pattern: str) -> tuple[_Node[V], str]:
        tokens = pattern.split(".")
        node = self._root
        for token in tokens[:-1] if tokens[-1] == ">" else tokens:
            nxt = node.children.get(token)
            if nxt is None:
                nxt = node.children[token] = _Node()
            node = nxt
        return node, tokens[-1]

    def _collect(self, node: _Node[V], tokens: list[str], i: int, seen: dict[V, None]) -> None:
        if i < len(tokens):
            for value in node.rest:
                seen[value] = None
        else:
            for value in node.here:
                seen[value] = None
            return
        for key in (tokens[i], "*"):
            child = node.children.get(key)
            if child is not None:
                self._collect(child, tokens, i + 1, seen)

    def _invalidate(self) -> None:
        self._cache.clear()
        self._interned.clear()

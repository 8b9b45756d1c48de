"""The broker's last value per topic, bounded in all and per bot instance, and indexed by token.

Nothing is ever evicted: past a bound a new topic (or a bigger value) is refused and the sender
told, so one bot cannot push out another's values or the master's presence. The master's own
topics (presence) count against no bound: there is one per connected instance. A replay walks a
token trie, so a pattern costs the topics it matches, not every retained topic.
"""

from __future__ import annotations

from typing import Callable, Iterator

import msgspec
from msgspec import Raw

from supervisor.bus import frames as f

_NIL = b"\xc0"


class Retained(msgspec.Struct, gc=False):
    bot: str
    instance: int
    msg: f.Msg
    host: str = ""


class _Node:
    __slots__ = ("children", "kept")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.kept: Retained | None = None


class RetainedStore:
    def __init__(self, max_topics: int, max_bytes: int, per_bot_topics: int, per_bot_bytes: int) -> None:
        self.max_topics = max_topics
        self.max_bytes = max_bytes
        self.per_bot_topics = per_bot_topics
        self.per_bot_bytes = per_bot_bytes
        self._root = _Node()
        self._topics = 0
        self._bytes = 0
        self._owned: dict[tuple[str, int], list[int]] = {}
        """Per sender: [topics, bytes] it holds."""
        self.changed: Callable[[str], None] | None = None
        """Told the topic of every value kept or cleared (the persisted ones follow on disk)."""

    def __len__(self) -> int:
        return self._topics

    def put(self, sender: tuple[str, int], msg: f.Msg, host: str = "") -> str | None:
        """Keep a copy (the frame buffer it points into is not ours); nil data clears. Returns why not, if refused."""
        if len(msg.data) == 1 and bytes(msg.data) == _NIL:
            self.clear(msg.topic)
            return None
        path = self._path(msg.topic, create=True)
        node = path[-1]
        old = node.kept
        size = len(msg.data)
        freed = len(old.msg.data) if old is not None else 0
        if sender != f.ADMIN:
            mine = self._owned.get(sender, [0, 0])
            same = old is not None and (old.bot, old.instance) == sender
            if (mine[0] + (not same) > self.per_bot_topics or mine[1] + size - (freed if same else 0) > self.per_bot_bytes):
                self._prune(msg.topic, path)
                return f"{sender[0]}:{sender[1]} may keep {self.per_bot_topics} retained topics and {self.per_bot_bytes} bytes"
            if self._topics - self._admin_topics() + (old is None) > self.max_topics or self._bytes + size - freed > self.max_bytes:
                self._prune(msg.topic, path)
                return f"the bus keeps at most {self.max_topics} retained topics and {self.max_bytes} bytes"
        if old is not None:
            self._account((old.bot, old.instance), -1, -freed)
        node.kept = Retained(sender[0], sender[1], f.Msg(msg.topic, Raw(bytes(msg.data)), True), host)
        self._account(sender, 1, size)
        if self.changed is not None:
            self.changed(msg.topic)
        return None

    def clear(self, topic: str) -> None:
        path = self._path(topic, create=False)
        if path is None or path[-1].kept is None:
            return
        old = path[-1].kept
        path[-1].kept = None
        self._account((old.bot, old.instance), -1, -len(old.msg.data))
        self._prune(topic, path)
        if self.changed is not None:
            self.changed(topic)

    def get(self, topic: str) -> Retained | None:
        path = self._path(topic, create=False)
        return path[-1].kept if path is not None else None

    def matching(self, pattern: str) -> list[Retained]:
        """Every kept value whose topic `pattern` matches, in topic-trie order."""
        out: list[Retained] = []
        tokens = pattern.split(".")
        todo = [(self._root, 0)]
        last = len(tokens)
        while todo:
            node, i = todo.pop()
            if i == last:
                if node.kept is not None:
                    out.append(node.kept)
                continue
            token = tokens[i]
            if token == ">":
                for child in node.children.values():
                    _subtree(child, out)
            elif token == "*":
                todo.extend((child, i + 1) for child in node.children.values())
            else:
                child = node.children.get(token)
                if child is not None:
                    todo.append((child, i + 1))
        return out

    @staticmethod
    def runs(kept: list[Retained], max_bytes: int) -> Iterator[list[Retained]]:
        """`kept` cut into runs of one sender (and host) and about `max_bytes` each: one Deliver frame per run."""
        i = 0
        while i < len(kept):
            first, size, j = kept[i], 0, i
            while (j < len(kept) and size < max_bytes and kept[j].bot == first.bot and kept[j].instance == first.instance
                   and kept[j].host == first.host):
                size += len(kept[j].msg.data) + len(kept[j].msg.topic) + 8
                j += 1
            yield kept[i:j]
            i = j

    def _admin_topics(self) -> int:
        mine = self._owned.get(f.ADMIN)
        return mine[0] if mine else 0

    def _account(self, owner: tuple[str, int], topics: int, size: int) -> None:
        mine = self._owned.setdefault(owner, [0, 0])
        mine[0] += topics
        mine[1] += size
        self._topics += topics
        self._bytes += size
        if not mine[0]:
            del self._owned[owner]

    def _path(self, topic: str, create: bool) -> list[_Node] | None:
        """The nodes from the root to `topic`'s, or None when it has none (and `create` is false)."""
        node = self._root
        path = [node]
        for token in topic.split("."):
            child = node.children.get(token)
            if child is None:
                if not create:
                    return None
                child = node.children[token] = _Node()
            path.append(child)
            node = child
        return path

    def _prune(self, topic: str, path: list[_Node]) -> None:
        """Drop the nodes on `topic`'s path that hold nothing any more, deepest first."""
        tokens = topic.split(".")
        for depth in range(len(tokens), 0, -1):
            node = path[depth]
            if node.kept is not None or node.children:
                return
            del path[depth - 1].children[tokens[depth - 1]]


def _subtree(node: _Node, out: list[Retained]) -> None:
    todo = [node]
    while todo:
        n = todo.pop()
        if n.kept is not None:
            out.append(n.kept)
        todo.extend(n.children.values())

"""Who may publish, subscribe and serve what: one bot's allow lists, NATS style (None = open).

A topic may be published (or requested) when some allowed pattern matches it. A subscription or
serve pattern is allowed when some allowed pattern covers every topic it could match: with
`subscribe = ["orders.>"]`, `orders.*.new` is allowed and `>` is not.
"""

from __future__ import annotations

from supervisor.bus.topics import TopicIndex, check_pattern


def covers(allowed: str, pattern: str) -> bool:
    """Does every topic `pattern` matches also match `allowed`?"""
    have, want = allowed.split("."), pattern.split(".")
    for i, a in enumerate(have):
        if a == ">":
            return len(want) > i
        if i >= len(want) or want[i] == ">" or (a != "*" and (want[i] == "*" or a != want[i])):
            return False
    return len(have) == len(want)


class Access:
    __slots__ = ("publish", "subscribe", "serve", "_published")

    def __init__(self, publish: list[str] | None, subscribe: list[str] | None, serve: list[str] | None) -> None:
        for patterns in (publish, subscribe, serve):
            for p in patterns or ():
                check_pattern(p)
        self.publish, self.subscribe, self.serve = publish, subscribe, serve
        self._published: TopicIndex[str] | None = None
        if publish is not None:
            self._published = TopicIndex(cache_size=4096)
            for p in publish:
                self._published.add(p, p)

    def may_publish(self, topic: str) -> bool:
        index = self._published
        if index is None:
            return True
        found = index.cached(topic)
        return bool(found if found is not None else index.match(topic))

    def may_subscribe(self, pattern: str) -> bool:
        return self.subscribe is None or any(covers(a, pattern) for a in self.subscribe)

    def may_serve(self, pattern: str) -> bool:
        return self.serve is None or any(covers(a, pattern) for a in self.serve)

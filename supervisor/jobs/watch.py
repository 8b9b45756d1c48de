"""Restart on change: watch a bot's files and call back once per burst of saves.

Pattern language, for both ``watch`` and ``watch_ignore`` (paths are relative to the root,
the bot's working directory):

- ``"src/"`` (trailing slash): everything in that tree; globs are allowed (``"pkg/*/"``).
- ``"*.py"`` (no slash): any file of that name, at any depth.
- ``"conf/*.toml"`` (a slash inside): the relative path, fnmatch-style, so ``*`` also
  crosses directories.

Version-control, cache and editor-swap files (watchfiles' DefaultFilter: ``.git``,
``__pycache__``, ``*.swp``, ``*~`` ...) are always ignored.

Debounce is trailing: the callback fires once ``debounce_ms`` have passed with no matching
change, with every path changed in the burst. Quiet is judged here, not by watchfiles'
step heuristic, so a file rewritten over and over still counts as one burst, and a noisy
ignored file (a bot's own log under the root) neither fires nor holds the callback back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..config.watching import literal_trees, pattern_problem

if TYPE_CHECKING:
    from watchfiles import Change


log = logging.getLogger(__name__)

_STEP_MS = 50  # how long watchfiles waits for more raw events before handing a batch over


def _matches(rel: PurePosixPath, pattern: str) -> bool:
    if pattern.endswith("/"):
        tree = pattern.rstrip("/")
        return any(fnmatchcase(str(parent), tree) for parent in rel.parents if str(parent) != ".")
    if "/" in pattern:
        return fnmatchcase(str(rel), pattern.lstrip("/"))
    return fnmatchcase(rel.name, pattern)


class WatchFilter:
    """Which changed paths under `root` count, per the pattern language above."""

    def __init__(self, root: Path, patterns: list[str], ignore: list[str]) -> None:
        if not patterns:
            raise ValueError("watch needs at least one pattern, like 'src/' or '*.py'")
        for pattern in [*patterns, *ignore]:
            problem = pattern_problem(pattern)
            if problem is not None:
                raise ValueError(problem)
        self.root = root.absolute()
        self.patterns = list(patterns)
        self.ignore = list(ignore)
        from watchfiles import (
            DefaultFilter,  # imported by the fleets that watch files only: it brings anyio along
        )

        self._default = DefaultFilter()

    def relative(self, path: str) -> PurePosixPath | None:
        try:
            return PurePosixPath(Path(path).relative_to(self.root).as_posix())
        except ValueError:
            return None

    def __call__(self, change: Change, path: str) -> bool:
        rel = self.relative(path)
        if rel is None or not self._default(change, path):
            return False
        if any(_matches(rel, pattern) for pattern in self.ignore):
            return False
        return any(_matches(rel, pattern) for pattern in self.patterns)

    def watch_roots(self) -> list[Path]:
        """Only the trees the patterns need, so a big repo is not watched for `src/` alone."""
        roots = literal_trees(self.root, self.patterns)
        if roots is None:
            return [self.root]
        for tree in roots:
            if not tree.is_dir():
                raise FileNotFoundError(f"watch: {tree} is not a directory")
        return [r for r in roots if not any(other in r.parents for other in roots)]


async def watch_paths(
    root: Path,
    patterns: list[str],
    ignore: list[str],
    on_change: Callable[[set[str]], Awaitable[None]],
    debounce_ms: int,
    stop_event: asyncio.Event,
    on_armed: Callable[[], None] | None = None,
) -> None:
    """Call `on_change` with the relative paths of each burst of changes until `stop_event` is set.

    A change that arrives while `on_change` runs starts the next burst. An exception from
    `on_change` is logged and watching goes on. `on_armed` is called once the kernel watches are
    in place (the first batch, at most `debounce_ms` after the start): a change from then on is seen.
    """
    if debounce_ms <= 0:
        raise ValueError(f"debounce_ms must be positive, found {debounce_ms!r}")
    match = WatchFilter(root, patterns, ignore)
    quiet = debounce_ms / 1000
    pending: set[str] = set()
    last_change = 0.0
    # watch_filter=None: every raw batch comes back to this loop (ignored ones too), so
    # the quiet period is measured on the clock however noisy the tree is.
    from watchfiles import awatch

    async for changes in awatch(
        *match.watch_roots(),
        watch_filter=None,
        step=min(_STEP_MS, debounce_ms),
        rust_timeout=debounce_ms,
        yield_on_timeout=True,
        stop_event=stop_event,
        ignore_permission_denied=True,
    ):
        if on_armed is not None:
            on_armed()
            on_armed = None
        now = time.monotonic()
        matched = {str(match.relative(path)) for change, path in changes if match(change, path)}
        if matched:
            pending |= matched
            last_change = now
        elif pending and now - last_change >= quiet * 0.95:
            burst, pending = pending, set()
            try:
                await on_change(burst)
            except Exception:
                log.exception("watch callback failed for %d changed path(s) under %s", len(burst), match.root)

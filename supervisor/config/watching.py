"""Which `watch` / `watch_ignore` patterns are valid, decided at load so a typo fails `validate`, not a restart.

The pattern language is jobs/watch.py's; this module holds its rules: a pattern names something under
the bot's directory, and a literal tree (`"src/"`) must exist there.
"""

from __future__ import annotations

from pathlib import Path

MAGIC = frozenset("*?[")


def pattern_problem(pattern: str) -> str | None:
    if not isinstance(pattern, str) or not pattern.strip("/"):
        return f"expected a pattern like 'src/' or '*.py', found {pattern!r}"
    if pattern.startswith("../") or "/../" in pattern or pattern == "..":
        return f"watch pattern {pattern!r} must name something under the bot's directory"
    return None


def literal_trees(root: Path, patterns: list[str]) -> list[Path] | None:
    """The directories `"src/"`-style patterns name, or None when some pattern needs the whole root."""
    trees = [p.strip("/") for p in patterns if p.endswith("/") and not MAGIC & set(p)]
    if len(trees) < len(patterns):
        return None
    return sorted({root / tree for tree in trees})


def watch_problems(root: Path, patterns: list[str], ignore: list[str]) -> list[tuple[str, str]]:
    """(key under the bot, message) for each bad pattern: `watch[0]`, `watch_ignore[2]`."""
    problems = [(f"{field}[{i}]", msg) for field, given in (("watch", patterns), ("watch_ignore", ignore))
                for i, p in enumerate(given) if (msg := pattern_problem(p)) is not None]
    for i, pattern in enumerate(patterns):
        if pattern_problem(pattern) is not None:
            continue
        trees = literal_trees(root, [pattern])
        if trees and not trees[0].is_dir():
            problems.append((f"watch[{i}]", f"{trees[0]} is not a directory"))
    return problems

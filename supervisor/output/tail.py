"""`supctl logs`: pick a bot's log files, print their last lines, follow them across rotation."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from .rotating import tail_lines

COLOURS = ("36", "32", "33", "35", "34", "31")


def prefix(name: str, index: int, colour: bool) -> str:
    """`name |` before each line when several logs interleave, in one of six colours on a terminal."""
    return f"\x1b[{COLOURS[index % len(COLOURS)]}m{name} |\x1b[0m " if colour else f"{name} | "


def log_files(logs_dir: Path, target: str | None) -> list[Path]:
    """NAME.log and NAME-k.log for a bot, NAME-k.log (or NAME.log for k=0) for NAME:k, every bot's without a target."""
    if not logs_dir.is_dir():
        return []
    names = sorted(p for p in logs_dir.iterdir() if p.suffix == ".log" and p.name != "supervisor.log")
    if target is None:
        return names
    bot, _, k = target.partition(":")
    if k:
        wanted = {f"{bot}-{k}.log"} | ({f"{bot}.log"} if k == "0" else set())
        return [p for p in names if p.name in wanted]
    pattern = re.compile(rf"^{re.escape(bot)}(-\d+)?\.log$")
    return [p for p in names if pattern.match(p.name)]


def label(path: Path) -> str:
    return path.name[: -len(".log")]


def last_lines(files: list[Path], n: int, colour: bool) -> Iterator[str]:
    many = len(files) > 1
    for i, path in enumerate(files):
        for line in tail_lines(path, n):
            yield prefix(label(path), i, colour) + line if many else line


class Follower:
    """Reads what was appended to one log; notices rotation (a new inode at the path) and drains the old file first."""

    def __init__(self, path: Path, from_end: bool = True) -> None:
        self.path = path
        self._f = open(path, "rb")
        if from_end:
            self._f.seek(0, os.SEEK_END)
        self._partial = b""

    def read(self) -> list[str]:
        data = self._f.read()
        try:
            st = os.stat(self.path)
            if st.st_ino != os.fstat(self._f.fileno()).st_ino or st.st_size < self._f.tell():
                self._f.close()
                self._f = open(self.path, "rb")
                data += self._f.read()
        except FileNotFoundError:
            pass
        data = self._partial + data
        end = data.rfind(b"\n") + 1
        self._partial = data[end:]
        return data[:end].decode("utf-8", "replace").splitlines()

    def close(self) -> None:
        self._f.close()


def follow(logs_dir: Path, target: str | None, colour: bool) -> None:
    """Print new lines as the kernel reports writes (inotify through watchfiles), until interrupted."""
    from watchfiles import watch

    followers = {p: Follower(p) for p in log_files(logs_dir, target)}
    for _ in watch(logs_dir, debounce=50, step=20, rust_timeout=0, yield_on_timeout=False):
        for p in log_files(logs_dir, target):
            if p not in followers:
                followers[p] = Follower(p, from_end=False)
        many = len(followers) > 1
        for i, (p, fol) in enumerate(sorted(followers.items())):
            for line in fol.read():
                print(prefix(label(p), i, colour) + line if many else line, flush=True)

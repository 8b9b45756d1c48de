"""`supctl logs`: pick a bot's log files, print their last lines, follow them across rotation."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from .rotating import tail_lines

COLOURS = ("36", "32", "33", "35", "34", "31")


def prefix(name: str, index: int, colour: bool) -> str:
    """`name |` before each line when several logs interleave, in one of six colours on a terminal."""
    return f"\x1b[{COLOURS[index % len(COLOURS)]}m{name} |\x1b[0m " if colour else f"{name} | "


_INSTANCE_LOG = re.compile(r"^(?P<bot>.+)-(?P<k>0|[1-9]\d*)$")


def owner(stem: str, owners: Mapping[str, int]) -> tuple[str, int] | None:
    """The (bot, instance) writing NAME.log, by the procfile's names: `web-2` is bot web-2, or instance 2 of web."""
    if owners.get(stem) == 1:
        return stem, 0
    m = _INSTANCE_LOG.match(stem)
    if m and owners.get(m["bot"], 0) > 1 and int(m["k"]) < owners[m["bot"]]:
        return m["bot"], int(m["k"])
    return None


def log_files(logs_dir: Path, target: str | None, owners: Mapping[str, int] | None = None) -> list[Path]:
    """Every log without a target; a bot's own logs for NAME, one instance's for NAME:k.

    `owners` (bot or task -> instances, from the procfile) decides whose a file is, so `web` never picks up
    bot web-2's log; a name the procfile no longer has falls back to NAME.log and NAME-k.log nobody else owns.
    """
    if not logs_dir.is_dir():
        return []
    names = sorted(p for p in logs_dir.iterdir() if p.suffix == ".log" and p.name != "supervisor.log")
    if target is None:
        return names
    owners = owners or {}
    bot, _, k = target.partition(":")
    if bot in owners:
        return [p for p in names if (o := owner(p.stem, owners)) and o[0] == bot and (not k or str(o[1]) == k)]
    stray = [p for p in names if owner(p.stem, owners) is None]
    if k:
        wanted = {f"{bot}-{k}.log"} | ({f"{bot}.log"} if k == "0" else set())
        return [p for p in stray if p.name in wanted]
    pattern = re.compile(rf"^{re.escape(bot)}(-\d+)?\.log$")
    return [p for p in stray if pattern.match(p.name)]


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


def open_followers(files: list[Path]) -> dict[Path, Follower]:
    """Taken before the last lines are printed, so a line written in between is followed, not lost."""
    return {p: Follower(p) for p in files}


def follow(logs_dir: Path, target: str | None, colour: bool, owners: Mapping[str, int] | None = None,
           followers: dict[Path, Follower] | None = None, pick: Callable[[], list[Path]] | None = None,
           emit: Callable[[Path, str], None] | None = None) -> None:
    """Print new lines as the kernel reports writes (inotify through watchfiles), until interrupted.

    Every quiet 200 ms the files are read anyway: a write that came before the kernel watch was armed
    would otherwise wait for the next one. `pick` chooses other files than the target's (the master's
    log), `emit` prints a line otherwise (--err, --json).
    """
    from watchfiles import watch

    chosen = pick or (lambda: log_files(logs_dir, target, owners))
    followers = followers if followers is not None else open_followers(chosen())
    for _ in watch(logs_dir, debounce=50, step=20, rust_timeout=200, yield_on_timeout=True):
        for p in chosen():
            if p not in followers:
                followers[p] = Follower(p, from_end=False)
        many = len(followers) > 1
        for i, (p, fol) in enumerate(sorted(followers.items())):
            for line in fol.read():
                if emit is not None:
                    emit(p, line)
                else:
                    print(prefix(label(p), i, colour) + line if many else line, flush=True)

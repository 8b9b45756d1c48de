"""`supctl logs`: a bot's log files (or the master's own: `logs supervisor`), stderr only with --err, JSON lines."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..config import paths
from ..control.protocol import StatusRequest
from ..core.errors import ConfigError
from ..output.rotating import STDERR_TAG
from .locate import OK, CliError, ask, print_json, procfile_path, state_dir

_STDERR = STDERR_TAG.decode()


def is_stderr(line: str) -> bool:
    """`[stderr] ` starts the line, or follows the timestamp when the log has timestamps."""
    return line.startswith(_STDERR) or f" {_STDERR}" in line[:40]


def owners_of(args: argparse.Namespace) -> dict[str, int] | None:
    """Whose log file is whose, from the procfile (so `web` never shows bot web-2's log); None if unreadable."""
    try:
        return paths.log_owners(procfile_path(args))
    except ConfigError:
        return None


def files_for(args: argparse.Namespace, logs: Path, owners: dict[str, int] | None) -> list[Path]:
    from ..output.tail import log_files

    if args.target == "supervisor":
        return [paths.master_log(logs.parent)]
    files = log_files(logs, args.target, owners)
    if files or args.target is None:
        return files
    ask(args, StatusRequest(target=args.target))  # a master that runs no such bot says which bots it has
    raise CliError(f"no log files for {args.target} in {logs} yet")


def json_lines(label: str, lines: Iterable[str]) -> Iterator[object]:
    from ..control.views import LogLine

    bot, _, k = label.rpartition("-") if label.rpartition("-")[2].isdigit() else (label, "", "")
    for line in lines:
        if label == "supervisor":
            yield LogLine(bot="supervisor", instance=None, stream="supervisor", line=line)
        elif is_stderr(line):
            yield LogLine(bot=bot, instance=int(k) if k else 0, stream="stderr", line=line.replace(_STDERR, "", 1))
        else:
            yield LogLine(bot=bot, instance=int(k) if k else 0, stream="stdout", line=line)


def cmd_logs(args: argparse.Namespace) -> int:
    from ..output.rotating import tail_lines
    from ..output.tail import follow, label, open_followers, prefix

    logs = paths.logs_dir(state_dir(args))
    owners = owners_of(args)
    files = files_for(args, logs, owners)
    if not files:
        raise CliError(f"no log files for {args.target or 'any bot'} in {logs}")
    keep = is_stderr if args.err else None
    colour = sys.stdout.isatty() and not args.json
    many = len(files) > 1
    followers = open_followers(files) if args.follow else None
    for i, path in enumerate(files):
        # --err filters, so read further back for the last N stderr lines
        lines = tail_lines(path, args.lines * 50 + 1000 if keep else args.lines)
        lines = [x for x in lines if keep(x)][-args.lines:] if keep and args.lines > 0 else lines
        if args.json:
            for obj in json_lines(label(path), lines):
                print_json(obj)
        else:
            for line in lines:
                print(prefix(label(path), i, colour) + line if many else line)
    sys.stdout.flush()
    if args.follow:
        def emit(path: Path, line: str) -> None:
            if keep and not keep(line):
                return
            if args.json:
                for obj in json_lines(label(path), [line]):
                    print_json(obj)
            else:
                print(prefix(label(path), files.index(path) if path in files else 0, colour) + line if many else line)
            sys.stdout.flush()

        try:
            follow(logs, args.target, colour, owners, followers, (lambda: files) if args.target == "supervisor" else None,
                   emit if keep or args.json or args.target == "supervisor" else None)
        except KeyboardInterrupt:
            pass
    return OK

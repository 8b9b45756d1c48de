"""supctl: parse arguments, call the right piece, print. Heavy modules are imported only by the verbs that need them."""

from __future__ import annotations

import argparse
import os
import sys

from .errors import ConfigErrors

DEFAULT_PROCFILE = "procfile.toml"


def procfile_path(arg: str | None) -> str:
    return arg or os.environ.get("SUPCTL_PROCFILE") or DEFAULT_PROCFILE


def cmd_validate(args: argparse.Namespace) -> int:
    from . import config

    path = procfile_path(args.procfile or args.config)
    try:
        procfile = config.load(path)
    except ConfigErrors as e:
        for err in e.errors:
            print(err, file=sys.stderr)
        print(f"{path}: {len(e.errors)} error{'s' if len(e.errors) != 1 else ''}", file=sys.stderr)
        return 1
    n = sum(b.instances for b in procfile.bots.values())
    print(f"{path}: ok, {len(procfile.bots)} bots, {n} instances")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    from .master import run_foreground

    path = procfile_path(args.procfile or args.config)
    try:
        return run_foreground(path)
    except ConfigErrors as e:
        for err in e.errors:
            print(err, file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="supctl", description="Process supervisor for long-running bots.")
    p.add_argument("-c", "--config", help="procfile (default: $SUPCTL_PROCFILE or ./procfile.toml)")
    sub = p.add_subparsers(dest="verb", required=True)
    v = sub.add_parser("validate", help="check a procfile and print every error")
    v.add_argument("procfile", nargs="?")
    v.set_defaults(func=cmd_validate)
    s = sub.add_parser("start", help="run the master for a procfile")
    s.add_argument("procfile", nargs="?")
    s.add_argument("-f", "--foreground", action="store_true", help="stay attached (systemd, containers)")
    s.set_defaults(func=cmd_start)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

"""The master's own log: state_dir/logs/supervisor.log, its level from `[supervisor] log_level` or SUPCTL_LOGLEVEL."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from pathlib import Path

from ..config import paths
from ..config.common import LogConfig
from .rotating import STDERR_TAG, LogStream, RotatingLog, RotatingLogHandler

LEVEL_ENV = "SUPCTL_LOGLEVEL"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def pick_level(configured: str, environ: Mapping[str, str]) -> tuple[int, str | None]:
    """SUPCTL_LOGLEVEL wins over the procfile (the habit of running one master with LOGLEVEL=DEBUG); a value that is
    no level keeps the procfile's and comes back as a warning to log, so a typo never stops a master."""
    raw = environ.get(LEVEL_ENV, "").strip()
    if not raw:
        return getattr(logging, configured), None
    if raw.upper() in LEVELS:
        return getattr(logging, raw.upper()), None
    return getattr(logging, configured), f"{LEVEL_ENV}={raw!r} is not one of {', '.join(LEVELS)}; using {configured}"


def setup_logging(log: logging.Logger, state_dir: Path, cfg: LogConfig, level: str, stream: bool,
                  environ: Mapping[str, str]) -> None:
    """supervisor.log (rotated like bot logs), plus stderr when attached; a daemon's sys.stdout and sys.stderr
    write into it too."""
    # The format uses none of these, and each costs every record (findCaller walks the stack): two records
    # stand between a crash and the restart. The logging HOWTO's "Optimization" section names these switches.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    rotating = RotatingLogHandler(RotatingLog(paths.master_log(state_dir), cfg.max_size, cfg.backups))
    handlers: list[logging.Handler] = [rotating]
    if stream:
        handlers.append(logging.StreamHandler(sys.stderr))
    else:
        sys.stdout, sys.stderr = LogStream(rotating, b"[stdout] "), LogStream(rotating, STDERR_TAG)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    for h in handlers:
        h.setFormatter(fmt)
    log.handlers[:] = handlers
    value, warning = pick_level(level, environ)
    log.setLevel(value)
    log.propagate = False
    if warning is not None:
        log.warning("%s", warning)

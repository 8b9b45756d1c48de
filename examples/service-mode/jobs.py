"""The service's scheduled jobs (argv: welcome, digest or report); each prints what it did to its own log."""
from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime


def main(job: str) -> None:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    if job == "welcome":
        print(f"welcome: happy new year from the assistant ({now})")
    elif job == "digest":
        print(f"digest: {now}: nothing new")
    elif job == "report":
        seconds = float(os.environ.get("REPORT_SECONDS", "3"))
        print(f"report: writing ({seconds:g}s of work)", flush=True)
        time.sleep(seconds)  # the work itself
        print("report: written")
    else:
        sys.exit(f"unknown job {job!r}")


main(sys.argv[1])

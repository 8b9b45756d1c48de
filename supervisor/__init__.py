"""supctl: a process supervisor for fleets of long-running bots. The map of the packages is docs/architecture.md."""

from __future__ import annotations

import os
import sys


def _installed_version() -> str:
    """The version pip recorded for supctl; read by hand because importlib.metadata costs ~5 MiB of imports."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith("supctl-") and name.endswith(".dist-info"):
                with open(os.path.join(entry or ".", name, "METADATA"), encoding="utf-8") as f:
                    for line in f:
                        if line.startswith("Version:"):
                            return line.split(":", 1)[1].strip()
    return "0+unknown"


def __getattr__(name: str) -> str:
    if name == "__version__":
        globals()["__version__"] = version = _installed_version()
        return version
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Where a procfile's master keeps its files; cheap enough for every `supctl` call (no schema, no validation)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from .errors import ConfigError


def state_dir_of(procfile: str | Path) -> Path:
    path = Path(procfile)
    try:
        raw = msgspec.toml.decode(path.read_bytes())
    except OSError as e:
        raise ConfigError(str(path), "", f"cannot read: {e.strerror or e}") from None
    except msgspec.DecodeError as e:
        raise ConfigError(str(path), "", f"TOML syntax error: {e}") from None
    sup = raw.get("supervisor", {})
    state = sup.get("state_dir", ".supctl") if isinstance(sup, dict) else ".supctl"
    return (path.parent / str(state)).resolve()


def control_socket(state_dir: Path) -> Path:
    return state_dir / "control.sock"


def pid_file(state_dir: Path) -> Path:
    return state_dir / "master.pid"


def status_file(state_dir: Path) -> Path:
    return state_dir / "status.json"


def master_log(state_dir: Path) -> Path:
    return state_dir / "logs" / "supervisor.log"


def logs_dir(state_dir: Path) -> Path:
    return state_dir / "logs"

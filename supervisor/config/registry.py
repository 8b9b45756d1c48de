"""The per-user registry of running masters, and the two locks that make a master the only one.

A master takes exclusive flocks on its procfile's entry here and on its state_dir before anything else and
holds them for its whole life; the kernel drops them when it dies, so neither a race of four `supctl start`
nor an edited state_dir can give one procfile two masters, and a lock left by a killed master never needs
cleaning. The CLI finds a master by the procfile's absolute path without parsing the procfile.
Only processes that mean to become a master ever take these locks: readers just read the entries.
"""

from __future__ import annotations

import os
import time

import msgspec

from ..core.errors import ConfigError, SupctlError

MASTERS = "masters"
LOCK_NAME = "master.lock"


class Entry(msgspec.Struct, kw_only=True):
    """One running master, as `supctl ls` and every verb find it."""

    procfile: str
    control_socket: str
    state_dir: str
    pid: int
    started_at: float
    version: str


class Taken(SupctlError):
    """Another master holds a lock this one needs; `holder` names it when its entry is readable."""

    def __init__(self, message: str, holder: Entry | None = None) -> None:
        super().__init__(message)
        self.holder = holder


def runtime_dir() -> str:
    """$XDG_RUNTIME_DIR/supctl, else ~/.local/state/supctl: owner-only, like the runtime dir itself."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isabs(base):
        return os.path.join(base, "supctl")
    return os.path.join(os.path.expanduser("~"), ".local", "state", "supctl")


def masters_dir() -> str:
    return os.path.join(runtime_dir(), MASTERS)


def key(procfile: str) -> str:
    """The file name of a procfile's entry: its absolute path, readable, with '%' and '/' escaped."""
    name = os.path.realpath(procfile).replace("%", "%25").replace("/", "%2F")
    if len(name) > 200:
        import hashlib

        name = name[:120] + "%" + hashlib.sha256(name.encode()).hexdigest()
    return name


def _entry_path(procfile: str) -> str:
    return os.path.join(masters_dir(), key(procfile) + ".json")


def read(procfile: str) -> Entry | None:
    """The registered master of this procfile (it may have died since: connect to know)."""
    try:
        with open(_entry_path(procfile), "rb") as f:
            return msgspec.json.decode(f.read(), type=Entry)
    except (OSError, msgspec.DecodeError):
        return None


def entries() -> list[Entry]:
    """Every registered master of this user, by procfile path."""
    found = []
    try:
        names = sorted(os.listdir(masters_dir()))
    except OSError:
        return []
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(masters_dir(), name), "rb") as f:
                found.append(msgspec.json.decode(f.read(), type=Entry))
        except (OSError, msgspec.DecodeError):
            continue
    return found


def _private_dir(path: str) -> None:
    """Create (0700) or accept a directory only this user can enter and write."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.stat(path, follow_symlinks=False)
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise ConfigError(path, "", "the supctl runtime directory must be owned by you and private (chmod 700)")


def _lock(path: str) -> int | None:
    """An exclusive flock on `path` (created 0600, never through a symlink), or None when someone holds it.
    fcntl loads here: only a master locks, and every `supctl` call reads this module."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class Claim:
    """The locks of one master: taken by the process that becomes it and inherited across the daemon's forks."""

    def __init__(self, procfile: str) -> None:
        self.procfile = os.path.realpath(procfile)
        self._fds: list[int] = []
        _private_dir(runtime_dir())
        _private_dir(masters_dir())
        fd = _lock(os.path.join(masters_dir(), key(self.procfile) + ".lock"))
        if fd is None:
            holder = read(self.procfile)
            who = f"master pid {holder.pid} (state_dir {holder.state_dir})" if holder else "another master, still starting,"
            raise Taken(f"{who} is already running for {self.procfile}", holder)
        self._fds.append(fd)

    def lock_state_dir(self, state_dir: str) -> None:
        """The second lock: a state_dir belongs to one master, whichever procfile names it."""
        fd = _lock(os.path.join(state_dir, LOCK_NAME))
        if fd is None:
            self.release()
            raise Taken(f"state_dir {state_dir} is in use by another master (its status.json names it)")
        self._fds.append(fd)

    def register(self, control_socket: str, state_dir: str, version: str) -> None:
        """Publish this master (called by the master itself, so the pid is the one that runs)."""
        entry = Entry(procfile=self.procfile, control_socket=control_socket, state_dir=state_dir, pid=os.getpid(),
                      started_at=time.time(), version=version)
        path = _entry_path(self.procfile)
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, msgspec.json.encode(entry))
        finally:
            os.close(fd)
        os.replace(tmp, path)

    def unregister(self) -> None:
        """The entry goes at shutdown; the lock file stays (unlinking a lock file lets two holders race)."""
        try:
            os.unlink(_entry_path(self.procfile))
        except FileNotFoundError:
            pass

    def release(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []

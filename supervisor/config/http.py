"""The [http] table: where the master's HTTP server listens and which file holds its write token."""

from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path

from ..core.errors import ConfigError
from .common import Struct


class HttpConfig(Struct):
    listen: str = "127.0.0.1:9100"
    token_file: str | None = None
    """Bearer token for the write endpoints; default state_dir/http.token, generated owner-only on first start."""


def split_listen(listen: str) -> tuple[str, int]:
    """'127.0.0.1:9100', '[::1]:9100' or 'localhost:9100' -> (host, port); ValueError says what is wrong."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT like '127.0.0.1:9100', found {listen!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected a port 0-65535 after the last ':', found {port!r}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


MIN_TOKEN = 16


def read_token(path: Path) -> str:
    """The bearer token, from a file only its owner can read; ValueError says what is wrong with it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{path} is not a regular file")
        if st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise ValueError(f"{path} must be owned by this user and readable by nobody else "
                             f"(mode {stat.S_IMODE(st.st_mode):04o}; run chmod 600 {path})")
        token = os.read(fd, 4096).decode("utf-8", "replace").strip()
    finally:
        os.close(fd)
    if len(token) < MIN_TOKEN or any(c.isspace() for c in token):
        raise ValueError(f"{path} must hold one token of at least {MIN_TOKEN} characters without spaces")
    return token


def check_http(file: str, cfg: HttpConfig, errors: list[ConfigError]) -> None:
    """A non-loopback listen address without an explicit token_file is refused: a master reachable from the network
    takes writes only with a token its operator chose and placed, never one generated behind their back."""
    try:
        host, _ = split_listen(cfg.listen)
    except ValueError as e:
        errors.append(ConfigError(file, "http.listen", str(e)))
        return
    if not is_loopback(host) and cfg.token_file is None:
        errors.append(ConfigError(file, "http.listen", f"{cfg.listen!r} is not a loopback address; set http.token_file "
                                  "to an owner-only file holding the bearer token, or listen on 127.0.0.1"))
    if cfg.token_file is not None:
        try:
            read_token(Path(file).parent / cfg.token_file)
        except ValueError as e:
            errors.append(ConfigError(file, "http.token_file", str(e)))

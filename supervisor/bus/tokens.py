"""Who a secret says a client is: one token per bot instance, the master's own, and one-connection operator tokens."""

from __future__ import annotations

import base64
import os

from supervisor.bus.frames import ADMIN

MAX_OPERATORS = 64
"""Operator tokens handed out and not used yet; past that the oldest is revoked."""


def new_token() -> str:
    """secrets.token_urlsafe(32) without importing secrets: its hmac import maps libcrypto (~650 KiB of RSS)."""
    return base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode("ascii")


class Tokens:
    def __init__(self) -> None:
        self.admin = new_token()
        self._identity: dict[str, tuple[str, int]] = {self.admin: ADMIN}
        self._token_of: dict[tuple[str, int], str] = {}
        self._operators = 0
        self._unused: dict[tuple[str, int], None] = {}

    def identity(self, token: str) -> tuple[str, int] | None:
        """Whom `token` names; an operator token is used from now on (no longer the oldest unused)."""
        identity = self._identity.get(token)
        if identity is not None:
            self._unused.pop(identity, None)
        return identity

    def set(self, identity: tuple[str, int], token: str) -> None:
        self.revoke(identity)
        self._identity[token] = identity
        self._token_of[identity] = token

    def revoke(self, identity: tuple[str, int]) -> None:
        token = self._token_of.pop(identity, None)
        self._unused.pop(identity, None)
        if token is not None:
            self._identity.pop(token, None)

    def operator(self) -> str:
        """A token for supctl:N (N >= 1), the operator at the CLI: never the master's own identity (supctl:0)."""
        self._operators += 1
        identity = (ADMIN[0], self._operators)
        self.set(identity, token := new_token())
        self._unused[identity] = None
        if len(self._unused) > MAX_OPERATORS:
            self.revoke(next(iter(self._unused)))
        return token

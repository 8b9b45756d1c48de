"""Plugin options: a raw TOML table -> the plugin's msgspec Struct, through config's one table converter."""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Any

import msgspec

from ..config.tables import convert_table, did_you_mean
from ..core import units
from ..core.errors import ConfigError, ConfigErrors
from ..plugin import RecoveryRef

__all__ = ["convert_options", "did_you_mean", "recovery_fields"]


def recovery_fields(options: type[msgspec.Struct]) -> dict[str, bool]:
    """Fields holding nested recoveries: name -> whether it is a list of them."""
    found: dict[str, bool] = {}
    for f in msgspec.structs.fields(options):
        if typing.get_origin(f.type) is list and _holds(typing.get_args(f.type)[0], RecoveryRef):
            found[f.name] = True
        elif _holds(f.type, RecoveryRef):
            found[f.name] = False
    return found


def _holds(tp: Any, cls: type) -> bool:
    """`cls` itself or an optional `cls | None`."""
    return tp is cls or (typing.get_origin(tp) is not list and cls in typing.get_args(tp))


def convert_options(file: str, key: str, options: type[msgspec.Struct], raw: dict[str, Any],
                    common: Sequence[str]) -> Any:
    """Strict conversion; unknown keys get a did-you-mean over the plugin's fields and the common keys."""

    def unknown(name: str, fields: Sequence[str]) -> str:
        takes = f"; this plugin takes: {', '.join(fields)}" if fields else "; this plugin takes no options"
        return f"unknown option{did_you_mean(name, [*fields, *common])}{takes}"

    errors: list[ConfigError] = []
    converted = convert_table(raw, options, file, key, errors, dec_hook=_decode, unknown=unknown)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ConfigErrors(errors)
    return converted


def _decode(tp: type, value: Any) -> Any:
    """Options may use Duration, Size (parsed by core.units) and RecoveryRef (already built by the loader)."""
    if tp is RecoveryRef and isinstance(value, RecoveryRef):
        return value
    return units.dec_hook(tp, value)

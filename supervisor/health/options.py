"""Plugin options: raw TOML table -> the plugin's msgspec Struct, with errors at dotted keys."""

from __future__ import annotations

import re
import typing
from collections.abc import Sequence
from typing import Any

import msgspec

from ..errors import ConfigError
from ..plugin import Duration, RecoveryRef, Size

_PATH = re.compile(r"\s*-\s*at\s*`\$(?P<path>[^`]*)`\s*$")
_UNKNOWN = re.compile(r"unknown field `(?P<name>[^`]+)`")
_MISSING = re.compile(r"missing required field `(?P<name>[^`]+)`")


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    import difflib  # only on the error path (~200 KiB of RSS in every master otherwise)

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def key_of(prefix: str, err: msgspec.ValidationError, fields: Sequence[str] = ()) -> tuple[str, str]:
    """msgspec's `$.steps[1].url` under `prefix` as `prefix.steps[1].url`, and the message without it.

    A ValueError from an Options `__post_init__` has no path; if its message starts with
    an option's name ("url must start with http://"), that option is the key.
    """
    text = str(err)
    m = _PATH.search(text)
    if m:
        return prefix + m.group("path"), text[: m.start()].strip()
    first = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text)
    if first and first.group(0) in fields:
        return f"{prefix}.{first.group(0)}", text
    return prefix, text


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
    fields = [f.name for f in msgspec.structs.fields(options)]
    for name in raw:
        if name not in fields:
            raise ConfigError(file, f"{key}.{name}", f"unknown option{did_you_mean(name, [*fields, *common])}"
                              + (f"; this plugin takes: {', '.join(fields)}" if fields else "; this plugin takes no options"))
    try:
        return msgspec.convert(raw, options, strict=True, dec_hook=_decode)
    except msgspec.ValidationError as e:
        path, message = key_of(key, e, fields)
        m = _UNKNOWN.search(message)
        if m:  # nested Struct with forbid_unknown_fields
            return _raise(file, f"{path}.{m.group('name')}", "unknown option")
        m = _MISSING.search(message)
        if m:
            return _raise(file, f"{path}.{m.group('name')}", "is required")
        return _raise(file, path, message)


def _raise(file: str, key: str, message: str) -> Any:
    raise ConfigError(file, key, message)


def _decode(tp: type, value: Any) -> Any:
    """Options may use Duration, Size and RecoveryRef; everything else is plain msgspec."""
    if tp is Duration or tp is Size:
        if not isinstance(value, str):
            raise ValueError(f"expected a {'duration like 10s' if tp is Duration else 'size like 500MB'} (a string), found {value!r}")
        return tp(value)
    if tp is RecoveryRef and isinstance(value, RecoveryRef):
        return value
    raise ValueError(f"cannot convert {value!r} to {getattr(tp, '__name__', tp)}")

"""The one converter from raw TOML tables to msgspec Structs (procfile and plugin options alike): every error
names file and dotted key, unknown keys get a did-you-mean, Duration and Size are parsed on the way in."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec

from ..core import units
from ..core.errors import ConfigError

T = TypeVar("T", bound=msgspec.Struct)

_MSGSPEC_PATH = re.compile(r"\s*-\s*at\s*`\$(?P<path>[^`]*)`\s*$")


def describe(value: object) -> str:
    """How a found value reads in an error: its TOML type and a short repr."""
    kind = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{kind} {text if len(text) <= 60 else text[:57] + '...'}"


_TYPE_WORDS = {"int": "an integer", "str": "a string", "float": "a number", "bool": "true or false",
               "array": "an array", "object": "a table", "null": "nothing"}


def humanize(msg: str, tp: object) -> str:
    """msgspec's "Expected `int | str`, got `bool`" as a person would say it."""
    if msg.startswith("Invalid enum value") and typing.get_origin(tp) is typing.Literal:
        return "expected one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    m = re.match(r"Expected `([^`]+)`, got `[^`]+`", msg)
    if m:
        return "expected " + " or ".join(_TYPE_WORDS.get(w.strip(), w.strip()) for w in m.group(1).split("|"))
    return msg[:1].lower() + msg[1:]


DecHook = Callable[[type, Any], Any]


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    import difflib  # only on the error path (~200 KiB of RSS in every master otherwise)

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def msgspec_key(prefix: str, err: msgspec.ValidationError, fields: Sequence[str] = ()) -> tuple[str, str]:
    """Map msgspec's `$.a[0].b` path onto our dotted key under `prefix`, and strip it from the message.

    A ValueError from a Struct's `__post_init__` has no path; if its message starts with a field's
    name ("url must start with http://"), that field is the key.
    """
    text = str(err)
    m = _MSGSPEC_PATH.search(text)
    if not m:
        first = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text)
        if first and first.group(0) in fields:
            return f"{prefix}.{first.group(0)}", text
        return prefix, text
    path = m.group("path")
    path = re.sub(r"\[(?:'|\")?([^\]'\"]+)(?:'|\")?\]", lambda g: f"[{g.group(1)}]" if g.group(1).isdigit() else f".{g.group(1)}", path)
    return (prefix + path).strip("."), text[: m.start()].strip()


def _struct_in(tp: object) -> type[msgspec.Struct] | None:
    """The Struct class in `T` or `T | None`, if any."""
    for a in typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,):
        if isinstance(a, type) and issubclass(a, msgspec.Struct):
            return a
    return None


def unknown_key(name: str, fields: Sequence[str]) -> str:
    return f"unknown key{did_you_mean(name, fields)}"


def _check_nested(value: dict, tp: object, file: str, key: str, errors: list[ConfigError], dec_hook: DecHook,
                  partial: bool) -> tuple[bool, object]:
    """A sub-table (backoff, log, env, ...) checked key by key so errors name `a.b.c` and unknown keys get a hint.

    Returns (handled, what a partial conversion keeps of it).
    """
    struct = _struct_in(tp)
    if struct is not None:
        return True, convert_table(value, struct, file, key, errors, dec_hook=dec_hook, partial=partial)
    if typing.get_origin(tp) is dict:
        vtype = typing.get_args(tp)[1]
        good = {}
        for k, v in value.items():
            try:
                good[k] = msgspec.convert(v, vtype, strict=True, dec_hook=dec_hook)
            except msgspec.ValidationError as e:
                path, msg = msgspec_key(f"{key}.{k}", e)
                errors.append(ConfigError(file, path, f"{humanize(msg, vtype)}, found {describe(v)}"))
        return True, good
    return False, None


def convert_table(raw: object, cls: type[T], file: str, key: str, errors: list[ConfigError],
                  ignore: frozenset[str] = frozenset(), *, dec_hook: DecHook = units.dec_hook,
                  unknown: Callable[[str, Sequence[str]], str] = unknown_key, partial: bool = False) -> T | None:
    """Convert one table, reporting every unknown key and every bad field (not just the first).

    `dec_hook` builds the custom types (Duration, Size, and whatever a caller adds); `unknown` words the
    error for a key the Struct lacks, given the key and the Struct's fields. With `partial`, a table with
    bad fields still gives a Struct built from its good ones (defaults for the rest), so the caller's value
    checks can report their errors in the same pass; the errors list says it is not a valid table.
    """
    if not isinstance(raw, dict):
        errors.append(ConfigError(file, key, f"expected a table, found {describe(raw)}"))
        return None
    fields = {f.encode_name: f for f in msgspec.structs.fields(cls)}  # the TOML key, e.g. `import` for `imports`
    before = len(errors)
    good: dict[str, Any] = {}
    for name, value in raw.items():
        sub = f"{key}.{name}" if key else name
        if name in ignore:
            continue
        if name not in fields:
            errors.append(ConfigError(file, sub, unknown(name, tuple(fields))))
            continue
        if isinstance(value, dict):
            handled, kept = _check_nested(value, fields[name].type, file, sub, errors, dec_hook, partial)
            if handled:
                if kept is not None:
                    good[name] = kept
                continue
        try:
            good[name] = msgspec.convert(value, fields[name].type, strict=True, dec_hook=dec_hook)
        except msgspec.ValidationError as e:
            path, msg = msgspec_key(sub, e)
            tp = fields[name].type if path == sub else None
            said = humanize(msg, tp)
            errors.append(ConfigError(file, path, said if ", found " in said else f"{said}, found {describe(value)}"))
    for name, f in fields.items():
        if f.required and name not in raw:
            errors.append(ConfigError(file, f"{key}.{name}" if key else name, "is required"))
    if len(errors) > before:
        if not partial:
            return None
        try:
            return cls(**{fields[k].name: v for k, v in good.items()})
        except (TypeError, ValueError):
            return None
    try:
        return msgspec.convert({k: v for k, v in raw.items() if k not in ignore}, cls, strict=True, dec_hook=dec_hook)
    except msgspec.ValidationError as e:
        path, msg = msgspec_key(key, e, tuple(fields))
        errors.append(ConfigError(file, path, humanize(msg, None)))
        return None

"""Declarative settings: one description drives TOML loading and the JSON Schema.

A settings table is a frozen dataclass whose fields are made with :func:`setting`.
:func:`load` turns a raw TOML table into that dataclass, collecting one message
per problem (unknown keys with a suggestion, missing keys, wrong types);
:func:`json_schema` derives the schema from the very same fields, so the two
cannot drift.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .errors import allowed_list, suggest

T = TypeVar("T")

# Values that end up in Dockerfiles, shell commands or image references: a
# conservative character set, so that no quoting mistake downstream can matter.
# "." alone is a token too: a package whose matrix.toml sits in its own source directory.
SAFE_TOKEN = re.compile(r"^(?:\.|[A-Za-z0-9][A-Za-z0-9._:/@+=,-]*)$")
# Free text (reasons, docs, argv elements run without a shell): one line, printable.
SAFE_TEXT = re.compile(r"^[^\x00-\x1f\x7f`$]*$")


class Problems:
    """Collects problems found while loading, each prefixed with the file name."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        """Record that the value at dotted path ``where`` is wrong."""
        self.items.append(f"{self.source}: {where}: {message}")


class HiddenValueError(ValueError):
    """Raised by a ``parse`` function whose input must not be echoed back (it holds a credential)."""


def setting(key: str, doc: str, *, default: Any = dataclasses.MISSING, text: bool = False,
            parse: Callable[[Any], Any] | None = None, schema: dict | None = None,
            whole: bool = False) -> Any:
    """A dataclass field that reads TOML key ``key``.

    ``text`` marks free text (checked with SAFE_TEXT instead of SAFE_TOKEN).
    ``parse`` converts a raw value (raising ValueError or TypeError) and ``schema``
    describes that raw value for the JSON Schema; for a tuple field both apply to
    each item, unless ``whole`` says that ``parse`` turns one raw value into the tuple.
    """
    meta = {"key": key, "doc": doc, "text": text, "parse": parse, "schema": schema, "whole": whole}
    if isinstance(default, Mapping):  # read-only, but unhashable: dataclasses wants a factory
        return dataclasses.field(default_factory=lambda: default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def key_path(parent: str, key: str) -> str:
    """Join a dotted TOML path, quoting keys that need it (``cuda."13.0"``)."""
    part = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) and not key[0].isdigit() else f'"{key}"'
    return f"{parent}.{part}" if parent else part


def load(cls: type[T], raw: Any, where: str, problems: Problems) -> T | None:
    """Build ``cls`` from a raw TOML table; on any problem record it and return None."""
    before = len(problems.items)
    values = load_fields(cls, raw, where, problems)
    if values is None or len(problems.items) != before:
        return None
    return cls(**values)


def load_fields(cls: type, raw: Any, where: str, problems: Problems) -> dict[str, Any] | None:
    """The fields of ``cls`` that ``raw`` gives and that converted, by attribute name; None if not a table.

    Fields that failed (their problems recorded) or that ``raw`` does not give are absent, so a caller
    can still check what did load: every problem is reported, not only those of the first bad table.
    """
    if not isinstance(raw, Mapping):
        problems.add(where or "(top level)", f"expected a table, got {type(raw).__name__}")
        return None
    fields = {f.metadata["key"]: f for f in dataclasses.fields(cls) if "key" in f.metadata}
    for key in raw:
        if key not in fields:
            problems.add(key_path(where, key), "unknown key"
                         + suggest(key, fields) + f"; allowed: {allowed_list(fields)}")
    values: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for key, f in fields.items():
        path = key_path(where, key)
        if key not in raw:
            if _required(f):
                problems.add(path, "required key is missing")
            continue
        before = len(problems.items)
        value = _convert(hints[f.name], raw[key], path, problems, f.metadata)
        if len(problems.items) == before:
            values[f.name] = value
        elif isinstance(value, Mapping):  # later checks still look at the tables that loaded; failed ones are None
            values[f.name] = value
    return values


def defaults(cls: type) -> dict[str, Any]:
    """Every field of ``cls`` with its default, None for required ones."""
    return {f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING
            else None if f.default is dataclasses.MISSING else f.default for f in dataclasses.fields(cls)}


def _convert(tp: Any, value: Any, where: str, problems: Problems, meta: Mapping) -> Any:
    origin = typing.get_origin(tp)
    if origin is tuple and not meta.get("whole"):
        return _convert_items(typing.get_args(tp)[0], value, where, problems, meta)
    if meta.get("parse"):
        try:
            return meta["parse"](value)
        except HiddenValueError as exc:
            problems.add(where, str(exc))
            return None
        except (ValueError, TypeError) as exc:
            problems.add(where, f"{exc} (got {value!r})")
            return None
    if origin in (Mapping, types.MappingProxyType):
        return _convert_table(typing.get_args(tp)[1], value, where, problems, meta)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, str) and getattr(tp, "SHORTHAND", ""):  # a string stands for the one key it names
            value = {tp.SHORTHAND: value}
        return load(tp, value, where, problems)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        allowed = [m.value for m in tp]
        if value not in allowed:
            problems.add(where, f"{value!r} is not allowed" + suggest(str(value), allowed)
                         + f"; allowed: {allowed_list(allowed)}")
            return None
        return tp(value)
    return _convert_scalar(tp, value, where, problems, meta)


def _convert_items(item_tp: Any, value: Any, where: str, problems: Problems, meta: Mapping) -> Any:
    if not isinstance(value, list):
        problems.add(where, f"expected an array, got {type(value).__name__}")
        return None
    return tuple(_convert(item_tp, v, f"{where}[{i}]", problems, meta) for i, v in enumerate(value))


def _convert_table(item_tp: Any, value: Any, where: str, problems: Problems, meta: Mapping) -> Any:
    if not isinstance(value, Mapping):
        problems.add(where, f"expected a table, got {type(value).__name__}")
        return None
    out = {}
    for key, item in value.items():
        path = key_path(where, key)
        if not SAFE_TOKEN.match(key):
            problems.add(path, "key has characters outside [A-Za-z0-9._:/@+=-]")
        out[key] = _convert(item_tp, item, path, problems, {"text": meta.get("text")})
    return types.MappingProxyType(out)


def _convert_scalar(tp: Any, value: Any, where: str, problems: Problems, meta: Mapping) -> Any:
    expected = {str: "a string", bool: "true or false", int: "an integer"}[tp]
    # bool is an int in Python; TOML keeps them apart and so do we.
    if type(value) is not tp:
        problems.add(where, f"expected {expected}, got {value!r}")
        return None
    if tp is str:
        pattern = SAFE_TEXT if meta.get("text") else SAFE_TOKEN
        if not pattern.match(value):
            kind = "one line without control characters, $ or backticks" if meta.get("text") else (
                "letters, digits and ._:/@+=,- only (no spaces, quotes, $, backticks, "
                "redirections, globs, semicolons or newlines)")
            problems.add(where, f"{value!r} is not allowed: use {kind}")
            return None
    return value


def json_schema(cls: type) -> dict:
    """Describe the TOML form of settings class ``cls`` as a JSON Schema object."""
    hints = typing.get_type_hints(cls)
    props, required = {}, []
    for f in dataclasses.fields(cls):
        if "key" not in f.metadata:
            continue
        sub = _schema_for(hints[f.name], f.metadata)
        props[f.metadata["key"]] = {**sub, "description": f.metadata["doc"]}
        if _required(f):
            required.append(f.metadata["key"])
    out = {"type": "object", "properties": props, "additionalProperties": False}
    if cls.__doc__:
        out["description"] = cls.__doc__.strip().splitlines()[0]
    if required:
        out["required"] = required
    return out


def _schema_for(tp: Any, meta: Mapping) -> dict:
    origin = typing.get_origin(tp)
    if meta.get("schema") and (meta.get("whole") or origin is not tuple):
        return meta["schema"]
    if origin is tuple:
        return {"type": "array", "items": _schema_for(typing.get_args(tp)[0], meta)}
    if origin in (Mapping, types.MappingProxyType):
        return {"type": "object", "additionalProperties": _schema_for(typing.get_args(tp)[1], {})}
    if dataclasses.is_dataclass(tp):
        table = json_schema(tp)
        if short := getattr(tp, "SHORTHAND", ""):
            return {"oneOf": [table["properties"][short], table]}
        return table
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"enum": [m.value for m in tp]}
    if tp is str:
        return {"type": "string", "pattern": (SAFE_TEXT if meta.get("text") else SAFE_TOKEN).pattern}
    return {bool: {"type": "boolean"}, int: {"type": "integer"}}[tp]

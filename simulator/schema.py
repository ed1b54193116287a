"""Plain data -> typed dataclasses, with errors that name the key, its path and the closest valid key.

Dataclass fields are converted from their type hints (int, float, bool, str, ``X | None``, ``list[X]``,
``dict[str, X]``, nested dataclasses). A field may carry ``metadata={"convert": fn}`` where
``fn(value, path)`` does its own conversion (used for tagged unions such as bandwidth models).
A field's YAML key is its name, or ``metadata={"key": ...}`` where the name is a Python keyword (``from``).
A dataclass may define ``check(self, path)`` for cross-field rules; it is called after construction.
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
import types
from functools import cache
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from .errors import ConfigError, unknown_key

T = TypeVar("T")


def _join(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))


def _tname(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def convert(tp: Any, value: Any, path: str) -> Any:
    """Convert ``value`` to type ``tp`` or raise ConfigError naming ``path``."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return convert(a, value, path)
            except ConfigError as e:
                errors.append(e)
        if len(errors) == 1:
            raise errors[0]
        names = " or ".join(_tname(a) for a in args if a is not type(None))
        raise ConfigError(f"'{path}' must be {names}, got {_short(value)}")
    if tp is Any:
        return value
    if origin is list or origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"'{path}' must be a list, got {_short(value)}")
        (item,) = get_args(tp)[:1] or (Any,)
        return [convert(item, v, _join(path, i)) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"'{path}' must be a mapping, got {_short(value)}")
        _, vt = get_args(tp)
        return {str(k): convert(vt, v, _join(path, str(k))) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return build(tp, value, path)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"'{path}' must be true or false, got {_short(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"'{path}' must be an integer, got {_short(value)}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):  # NaN or infinity never means anything in a scenario
                raise ConfigError(f"'{path}' must be a finite number, got {_short(value)}")
            return float(value)
        raise ConfigError(f"'{path}' must be a number, got {_short(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"'{path}' must be a string, got {_short(value)}")
    return value


def _key(f: dataclasses.Field) -> str:
    return f.metadata.get("key", f.name)


@cache
def _schema(cls: type) -> tuple[dict[str, Any], dict[str, dataclasses.Field]]:
    """Type hints and init fields (by YAML key) of a dataclass, worked out once per class."""
    return get_type_hints(cls), {_key(f): f for f in dataclasses.fields(cls) if f.init}


def build(cls: type[T], data: Any, path: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"'{path or 'scenario'}' must be a mapping, got {data!r}")
    hints, fields = _schema(cls)
    for key in data:
        if key not in fields:
            raise unknown_key(str(key), path, fields)
    kwargs = {}
    for key, f in fields.items():
        sub = _join(path, key)
        if key in data:
            fn = f.metadata.get("convert")
            kwargs[f.name] = fn(data[key], sub) if fn else convert(hints[f.name], data[key], sub)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key '{sub}'")
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if callable(check):
        check(path)
    return obj


def to_plain(obj: Any) -> Any:
    """Dataclasses -> plain dicts/lists (for writing the resolved config)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        tag = getattr(type(obj), "model", None)  # tagged unions (bandwidth models) keep their tag
        head = {"model": tag} if isinstance(tag, str) and tag else {}
        return head | {_key(f): to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    return obj


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 4, 4, 40, 40


def _short(value: Any, limit: int = 60) -> str:
    """A value for an error message, bounded without expanding it (never echoes a whole document)."""
    r = _REPR.repr(value)
    return r if len(r) <= limit else r[: limit - 3] + "..."


def require(cond: bool, msg: str) -> None:
    """Raise ConfigError(msg) unless ``cond``."""
    if not cond:
        raise ConfigError(msg)


def positive(value: float | None, path: str, allow_zero: bool = False) -> None:
    """Reject negative (and, unless allowed, zero) numbers with the key's path."""
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"'{path}' must be {'non-negative' if allow_zero else 'positive'}, got {value}")


"""User-facing errors: the CLI prints these as one line and exits non-zero, never a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake in the user's input (scenario, data file, command line)."""


class ConfigError(UserError, ValueError):
    """A scenario or sweep file is invalid."""


def closest(key: str, valid: Iterable[str]) -> str | None:
    """The valid name most similar to ``key`` (for 'did you mean' hints), or None."""
    valid = list(valid)
    hits = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if hits:
        return hits[0]
    low = {v.lower(): v for v in valid}
    hits = difflib.get_close_matches(key.lower(), list(low), n=1, cutoff=0.4)
    return low[hits[0]] if hits else None


def unknown_key(key: str, path: str, valid: Iterable[str], what: str = "key",
                where: str | None = None) -> ConfigError:
    """The standard error for a name that is not allowed at ``path`` (or at ``where``, said verbatim)."""
    valid = sorted(valid)
    where = where or (f"'{path}'" if path else "the top level")
    hint = closest(key, valid)
    msg = f"unknown {what} '{key}' at {where}"
    msg += f"; did you mean '{hint}'?" if hint else f"; valid: {', '.join(valid)}"
    return ConfigError(msg)

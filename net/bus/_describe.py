"""Short, safe descriptions of arbitrary objects for log lines and error messages.

Values can come from the network, so a description must never be huge and must
never raise (``repr`` of a 10 000-digit int raises ``ValueError``; a hostile
object's ``__repr__`` may raise anything).
"""

from __future__ import annotations

import reprlib

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlist = 5
_short.maxtuple = 5
_short.maxdict = 5
_short.maxset = 5
_short.maxlevel = 3

_HUGE_INT_BITS = 256


def short_repr(value: object) -> str:
    """A bounded ``repr`` that never raises."""
    if isinstance(value, int) and not isinstance(value, bool):
        bits = value.bit_length()
        if bits > _HUGE_INT_BITS:
            return f"<int of {bits} bits>"
    try:
        return _short.repr(value)
    except Exception:
        return f"<{type(value).__name__} object>"


def describe_value(value: object) -> str:
    """``"<type> <short repr>"``, bounded in length, never raising."""
    return f"{type(value).__name__} {short_repr(value)}"


def describe_callable(fn: object) -> str:
    """The qualified name of a function or class, else a short repr of the object."""
    name = getattr(fn, "__qualname__", None)
    if isinstance(name, str) and (isinstance(fn, type) or callable(fn)):
        module = getattr(fn, "__module__", None)
        return f"{module}.{name}" if isinstance(module, str) else name
    try:
        return _short.repr(fn)
    except Exception:
        return f"{type(fn).__name__} object"


def describe_names(names: list[str], limit: int = 8) -> str:
    """A comma-separated list of at most ``limit`` names, each shortened."""
    shown = [_short.repr(name) for name in names[:limit]]
    more = len(names) - limit
    if more > 0:
        shown.append(f"... ({more} more)")
    return ", ".join(shown) if shown else "(none)"


def describe_error(exc: BaseException, limit: int = 200) -> str:
    """``"Type: message"``, with the message cut at ``limit`` characters, never raising."""
    try:
        message = str(exc)
    except Exception:
        message = "<unprintable>"
    if len(message) > limit:
        message = message[:limit] + "..."
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__

"""Output helpers for ``netpeer``: plain-text tables, human rendering of values, JSON.

Values that travel over the wire are msgpack values (None, bools, ints, floats,
str, bytes, lists, maps with any hashable keys). Humans get a compact JSON-like
rendering with ``b'...'`` for bytes; machines get JSON where bytes become
``{"$bytes": "<base64>"}`` and map keys that JSON cannot carry become strings.
"""

from __future__ import annotations

import base64
import json
import math
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

BUILTIN_CONNECTIONS = frozenset({"info", "pass_through", "null"})

_MAX_BYTES_SHOWN = 48


def to_jsonable(value: Any) -> Any:
    """``value`` turned into something ``json.dumps`` accepts, losslessly where possible."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return str(value)  # JSON has no NaN/Infinity
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {_json_key(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "as_dict"):
        return to_jsonable(value.as_dict())
    return repr(value)


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, (bytes, bytearray)):
        return bytes(key).decode("utf-8", "backslashreplace")
    if isinstance(key, (bool, int, float)) or key is None:
        return json.dumps(key)
    return repr(key)


def dumps(value: Any, *, indent: int | None = None) -> str:
    """One JSON document (one line unless ``indent``)."""
    return json.dumps(to_jsonable(value), indent=indent, ensure_ascii=False, sort_keys=False)


def render(value: Any, *, top: bool = False) -> str:
    """A compact human rendering: JSON-like, bytes as ``b'..'``; strings bare when ``top``."""
    if top and isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return (
            json.dumps(value)
            if not isinstance(value, float) or math.isfinite(value)
            else str(value)
        )
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        if len(data) <= _MAX_BYTES_SHOWN:
            return repr(data)
        return f"{data[:_MAX_BYTES_SHOWN]!r}... ({len(data)} bytes)"
    if isinstance(value, dict):
        inner = ", ".join(f"{render(k)}: {render(v)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(render(v) for v in value) + "]"
    return repr(value)


def render_call_args(args: Sequence[Any], kwargs: dict[str, Any]) -> str:
    """``1 "x" unit="C"``: positional values, then ``key=value``."""
    parts = [render(a) for a in args]
    parts += [f"{k}={render(v)}" for k, v in kwargs.items()]
    return " ".join(parts)


def shorten(text: str, width: int) -> str:
    if width <= 0 or len(text) <= width:
        return text
    if width == 1:
        return "…"
    return text[: width - 1] + "…"


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    max_width: int | None = 48,
    indent: str = "",
) -> str:
    """A plain-text table: left-aligned columns separated by two spaces."""
    cells = [[shorten(str(c), max_width or 0) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in [list(headers), *cells]:
        line = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row))
        lines.append(indent + line.rstrip())
    return "\n".join(lines)


def join_names(names: Iterable[str], empty: str = "-", limit: int = 0) -> str:
    items = list(names)
    if not items:
        return empty
    if limit and len(items) > limit:
        return ", ".join(items[:limit]) + f", +{len(items) - limit} more"
    return ", ".join(items)


def clock(at: float | None = None) -> str:
    """``HH:MM:SS.mmm`` local time."""
    at = time.time() if at is None else at
    return time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at * 1000) % 1000:03d}"


def out(text: str = "", stream: TextIO | None = None) -> None:
    """Print and flush (output is often piped into another program)."""
    stream = stream or sys.stdout
    stream.write(text + "\n")
    stream.flush()


def err(text: str) -> None:
    out(text, sys.stderr)


def user_connections(connections: dict[str, Any] | Iterable[str]) -> list[str]:
    """Connection names without the built-ins every peer has."""
    return sorted(c for c in connections if c not in BUILTIN_CONNECTIONS)

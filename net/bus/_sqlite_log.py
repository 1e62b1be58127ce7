"""An event log in SQLite (stdlib ``sqlite3``): the sink shipped with the bus.

Writes run in a worker thread (``trio.to_thread``) so a slow disk never stalls
the trio loop. Fields are stored as JSON; bytes survive as ``{"$bytes": base64}``
and tuples and sets come back as lists (``from_fields`` turns them back where
the field says so). A write that fails raises, so the bus reports it, and is
also counted here: ``failures`` and ``last_error``.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import trio

from ._describe import describe_callable, describe_value, short_repr
from ._event import Event
from ._sink import EventSink
from ._wire import event_from_wire

_SCHEMA = """
CREATE TABLE IF NOT EXISTS net_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    logged_at REAL NOT NULL,
    name TEXT NOT NULL,
    origin TEXT,
    peer TEXT,
    fields TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class LoggedEvent:
    """One row of the event log."""

    id: int
    logged_at: float
    name: str
    origin: str | None
    peer: str | None
    fields: dict[str, Any]

    def rebuild(self) -> Event:
        """The event again, via its class's ``from_fields`` (``LookupError`` if unknown here)."""
        return event_from_wire(self.name, self.fields)


class SQLiteEventLog(EventSink):
    """Appends every event it is given to the ``net_events`` table of an SQLite database.

    ``path`` is a file name (or ``":memory:"``; with ``uri=True`` an SQLite
    URI such as ``file:log.db?mode=ro``). The database is opened here, so a bad
    path fails at once; :meth:`close` it when done (or use ``with``).
    """

    def __init__(self, path: str | os.PathLike[str], *, uri: bool = False, timeout: float = 5.0):
        self.path = path
        self.written = 0
        self.failures = 0
        self.last_error: BaseException | None = None
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            path, uri=uri, timeout=timeout, check_same_thread=False, isolation_level=None
        )
        try:
            self._db.execute(_SCHEMA)
        except BaseException:
            self._db.close()
            raise

    async def write(self, event: Event, *, origin: object = None, peer: object = None) -> None:
        try:
            row = (
                time.time(),
                event.event_name,
                None if origin is None else describe_callable(origin),
                None if peer is None else _peer_text(peer),
                json.dumps(event.to_fields(), default=_encode, allow_nan=True),
            )
            await trio.to_thread.run_sync(self._insert, row)
        except Exception as exc:
            self.failures += 1
            self.last_error = exc
            raise
        self.written += 1

    def _insert(self, row: tuple[object, ...]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO net_events (logged_at, name, origin, peer, fields)"
                " VALUES (?, ?, ?, ?, ?)",
                row,
            )

    def read(self, name: str | None = None, limit: int | None = None) -> list[LoggedEvent]:
        """The logged events, oldest first, maybe only those called ``name``."""
        query = "SELECT id, logged_at, name, origin, peer, fields FROM net_events"
        params: list[object] = []
        if name is not None:
            query += " WHERE name = ?"
            params.append(name)
        query += " ORDER BY id"
        if limit is not None:
            query += " LIMIT ?"
            params.append(int(limit))
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        return [
            LoggedEvent(id_, at, name_, origin, peer, json.loads(text, object_hook=_decode))
            for id_, at, name_, origin, peer, text in rows
        ]

    def count(self) -> int:
        with self._lock:
            (n,) = self._db.execute("SELECT COUNT(*) FROM net_events").fetchone()
        return int(n)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"SQLiteEventLog({short_repr(str(self.path))}, written={self.written}, "
            f"failures={self.failures})"
        )


def _encode(value: object) -> object:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, Event):
        return value.to_fields()
    raise TypeError(f"the event log cannot store {describe_value(value)}")


def _decode(obj: dict[str, Any]) -> object:
    if len(obj) == 1 and isinstance(obj.get("$bytes"), str):
        return base64.b64decode(obj["$bytes"])
    return obj


def _peer_text(peer: object) -> str:
    try:
        text = str(peer)
    except Exception:
        return short_repr(peer)
    return text if len(text) <= 200 else text[:200] + "..."

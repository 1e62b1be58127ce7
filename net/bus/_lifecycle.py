"""Record lifecycle events: what code that creates, updates or deletes records emits.

Generic over the record type, so handlers can say ``PostRecordUpdate[Setting]``.
Emit them with the record's class as ``origin`` so handlers can choose:

    emit_event(PostRecordUpdate, origin=Setting, record=setting, diff=diff)

    @handle_event(PostRecordUpdate, origin=Setting)
    def on_setting_change(event: PostRecordUpdate[Setting]) -> None: ...

The "pre" events come before the change, so handlers can still adjust the
record or the diff; the "post" events after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from ._event import Event

RecordT = TypeVar("RecordT")

#: A change: field name -> ``(old value, new value)``.
Diff = dict[str, tuple[Any, Any]]


class RecordEvent(Event, Generic[RecordT], name="net.bus.RecordEvent"):
    """Base of every lifecycle event: handle it to see them all."""

    record: RecordT


class PreRecordCreate(RecordEvent[RecordT], name="net.bus.PreRecordCreate"):
    """Just before a new record is created."""


class PostRecordCreate(RecordEvent[RecordT], name="net.bus.PostRecordCreate"):
    """Just after a new record was created."""


class PreRecordUpdate(RecordEvent[RecordT], name="net.bus.PreRecordUpdate"):
    """Just before an existing record is updated; ``diff`` holds the change."""

    diff: Diff


class PostRecordUpdate(RecordEvent[RecordT], name="net.bus.PostRecordUpdate"):
    """Just after an existing record was updated; ``diff`` holds the change."""

    diff: Diff


class PreRecordDelete(RecordEvent[RecordT], name="net.bus.PreRecordDelete"):
    """Just before an existing record is deleted."""


class PostRecordDelete(RecordEvent[RecordT], name="net.bus.PostRecordDelete"):
    """Just after an existing record was deleted."""


def record_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> Diff:
    """The ``diff`` of an update: every key whose value differs, as ``(old, new)``.

    A key missing on one side counts as ``None`` there.
    """
    return {
        key: (before.get(key), after.get(key))
        for key in {**before, **after}
        if before.get(key) != after.get(key) or (key in before) != (key in after)
    }

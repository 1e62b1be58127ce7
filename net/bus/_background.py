"""Running a bus's sources and background tasks: failures are logged and counted, not fatal.

A source or task that fails stops alone; the bus and the others go on. One that
ends because the bus is stopping (``BusNotRunning``) ends quietly.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from ._describe import describe_callable, describe_error, short_repr
from ._errors import BusNotRunning
from ._sources import EventSource

if TYPE_CHECKING:
    from ._bus import EventBus

logger = logging.getLogger("net.bus")

TaskFunction = Callable[..., Awaitable[object]]


async def run_source(bus: EventBus, source: EventSource) -> None:
    try:
        await source.run(bus)
    except BusNotRunning:
        logger.debug("event source %s ended: bus %r stopping", short_repr(source), bus.name)
    except Exception as exc:
        bus.stats.source_failures += 1
        logger.error(
            "event source %s failed: %s",
            short_repr(source),
            describe_error(exc),
            exc_info=(type(exc), exc, exc.__traceback__),
        )


async def run_task(
    bus: EventBus,
    fn: TaskFunction,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``fn(tx)``; if it takes ``task_status``, the bus's start waits for ``started()``."""
    started = _StartOnce(task_status)
    try:
        if _takes_task_status(fn):
            await fn(bus.sender(), task_status=started)
        else:
            started.started()
            await fn(bus.sender())
    except BusNotRunning:
        logger.debug("background task %s ended: bus %r stopping", describe_callable(fn), bus.name)
    except Exception as exc:
        bus.stats.task_failures += 1
        logger.error(
            "background task %s failed: %s",
            describe_callable(fn),
            describe_error(exc),
            exc_info=(type(exc), exc, exc.__traceback__),
        )
    started.started()  # a task that ended without saying so must not hold up the start


class _StartOnce:
    """A ``task_status`` that forwards the first ``started()`` and ignores the rest."""

    def __init__(self, task_status: trio.TaskStatus[None]) -> None:
        self._task_status = task_status
        self.done = False

    def started(self, value: None = None) -> None:
        if not self.done:
            self.done = True
            self._task_status.started()


def _takes_task_status(fn: Callable[..., Any]) -> bool:
    try:
        return "task_status" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False

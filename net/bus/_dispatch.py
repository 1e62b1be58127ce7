"""Running filters and handlers for one event, once for both synchronous and async callers.

The steps are written once, as a generator that yields whatever awaitable a
handler returns. :func:`drive_async` awaits those and sends the results back;
:func:`drive_sync` cannot await, so it closes them and throws a ``TypeError``
back in, which reports that one handler as failed and lets the others run.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ._describe import describe_callable, describe_error, short_repr

if TYPE_CHECKING:
    from ._context import HandlerContext
    from ._event import Event
    from ._registry import EventRegistry

logger = logging.getLogger("net.bus")

T = TypeVar("T")
Steps = Generator[Awaitable[Any], Any, T]


@dataclass(frozen=True, eq=False)
class Member:
    """A callable taking part in delivery (filter, handler, default handler, fanout member)."""

    fn: Callable[..., object]
    wants_context: bool

    @classmethod
    def of(cls, fn: Callable[..., object]) -> Member:
        if not callable(fn):
            raise TypeError(f"expected a callable, got {short_repr(fn)}")
        return cls(fn, takes_context(fn))


def takes_context(fn: Callable[..., object]) -> bool:
    """Whether ``fn`` has a second positional parameter without default (it gets the context).

    Parameters with defaults don't count, so ``lambda event, label=label: ...``
    stays a one-argument handler. Also rejects, at registration time, a
    callable that cannot take the event at all.
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return False  # some builtins: call them with the event only
    params = list(signature.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not positional and not any(p.kind is p.VAR_POSITIONAL for p in params):
        raise TypeError(f"{describe_callable(fn)} cannot be called with the event as argument")
    required = [p for p in positional if p.default is inspect.Parameter.empty]
    if len(required) > 2:
        raise TypeError(
            f"{describe_callable(fn)} requires {len(required)} arguments; "
            "a handler takes the event, and the context if it asks for it"
        )
    return len(positional) >= 2 and positional[1].default is inspect.Parameter.empty


@dataclass
class HandlerFailure:
    """One member that raised, and what it raised."""

    member: Callable[..., object]
    error: Exception


@dataclass
class DispatchReport:
    """What happened to one event: consumed by a filter, taken by handlers, failures."""

    consumed_by: Callable[..., object] | None = None
    handled: int = 0
    default_ran: bool = False
    failures: list[HandlerFailure] = field(default_factory=list)

    @property
    def taken(self) -> bool:
        return self.consumed_by is not None or self.handled > 0 or self.default_ran


def _call(member: Member, event: Event, ctx: HandlerContext) -> Steps[Any]:
    result = member.fn(event, ctx) if member.wants_context else member.fn(event)
    if inspect.isawaitable(result):
        result = yield result
    return result


def run_member(
    kind: str,
    member: Member,
    event: Event,
    ctx: HandlerContext,
    report: DispatchReport,
    *,
    hand_back: bool = False,
) -> Steps[None]:
    """Run one handler, isolating its failure: recorded, counted, logged unless handed back."""
    try:
        yield from _call(member, event, ctx)
    except Exception as exc:
        report.failures.append(HandlerFailure(member.fn, exc))
        ctx.registry.stats.handler_failures += 1
        if not hand_back:
            log_failure(kind, member.fn, event, exc, origin=ctx.origin, peer=ctx.peer)


def dispatch_steps(
    registry: EventRegistry, event: Event, ctx: HandlerContext, *, hand_back: bool = False
) -> Steps[DispatchReport]:
    """Observers, then filters in registration order, then matching handlers, else the default."""
    report = DispatchReport()
    registry.stats.dispatched += 1
    for observer in registry._observers:
        try:
            observer(event)
        except Exception as exc:
            log_failure("observer", observer, event, exc, origin=ctx.origin, peer=ctx.peer)
    for flt in registry._filters:
        try:
            verdict = yield from _call(flt, event, ctx)
        except Exception as exc:
            registry.stats.filter_failures += 1
            log_failure("filter", flt.fn, event, exc, origin=ctx.origin, peer=ctx.peer)
            continue
        if verdict is True:
            report.consumed_by = flt.fn
            registry.stats.consumed_by_filters += 1
            return report
    for registration in registry._plan(type(event)):
        if registration.accepts(ctx.origin):
            report.handled += 1
            yield from run_member("handler", registration, event, ctx, report, hand_back=hand_back)
    default = registry._default
    if report.handled == 0 and default is not None:
        report.default_ran = True
        yield from run_member("default handler", default, event, ctx, report, hand_back=hand_back)
    return report


def drive_sync(steps: Steps[T]) -> T:
    """Run ``steps`` without awaiting: an awaitable result fails its handler."""
    try:
        pending = steps.send(None)
        while True:
            if inspect.iscoroutine(pending):
                pending.close()
            pending = steps.throw(
                TypeError(
                    "asynchronous handler cannot run in a synchronous delivery (emit_event); "
                    "deliver with `await bus.publish(event)` or `bus.emit(event)` instead"
                )
            )
    except StopIteration as done:
        result: T = done.value
        return result
    finally:
        steps.close()


async def drive_async(steps: Steps[T]) -> T:
    """Run ``steps``, awaiting what asynchronous handlers return, in the caller's task."""
    try:
        pending = steps.send(None)
        while True:
            try:
                value = await pending
            except Exception as exc:
                pending = steps.throw(exc)
            else:
                pending = steps.send(value)
    except StopIteration as done:
        result: T = done.value
        return result
    finally:
        steps.close()


def log_failure(
    kind: str,
    fn: object,
    event: Event,
    exc: BaseException,
    *,
    origin: object = None,
    peer: object = None,
) -> None:
    """One ERROR line on ``net.bus`` naming the failing callable and the event, with traceback."""
    logger.error(
        "event %s %s failed on %s%s%s: %s",
        kind,
        describe_callable(fn),
        event.event_name,
        "" if origin is None else f" (origin {describe_callable(origin)})",
        "" if peer is None else f" (from peer {short_repr(peer)})",
        describe_error(exc),
        exc_info=(type(exc), exc, exc.__traceback__),
    )

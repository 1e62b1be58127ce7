"""Remote calls: making them, serving them, flags, and ``info``."""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import os
import threading
import time
import traceback
import types
from collections.abc import Callable, Generator, Iterator
from typing import Any, NoReturn

import trio

from .. import protocol as p
from .._version import __version__
from ..errors import (
    CallTimeout,
    NotRunning,
    PeerUnavailable,
    RemoteError,
    RequestRejected,
)
from ..protocol import _messages as m
from ..registry import INVALID_CONNECTION, Flag
from ._base import PeerRef, _check_name
from ._events import EventsMixin
from ._link import Link, ThreadPending, _ThreadSignal
from ._links import _describe_target

log = logging.getLogger("net")


_MAX_TEXT = m.MAX_TEXT_LEN - 1


def _exception_type_name(exc: BaseException) -> str:
    cls = type(exc)
    if cls.__module__ in ("builtins", "__main__"):
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _positional_count(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return 3
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


@types.coroutine
def _resume(coro: Any, waits_for: Any, context: contextvars.Context) -> Generator[Any, Any, Any]:
    """Go on running ``coro``, whose last step yielded ``waits_for`` to trio: from
    here on, what trio sends (or throws) into this task goes to ``coro``, as an
    ``await coro`` would have done had it started here. Each step runs in
    ``context`` (the call's own, as a task of its own would have had). Returns
    its result."""
    run = context.run
    while True:
        try:
            sent = yield waits_for
        except BaseException as exc:
            try:
                waits_for = run(coro.throw, exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                waits_for = run(coro.send, sent)
            except StopIteration as done:
                return done.value


def _raise_error(reply: m.Error, link: Link) -> NoReturn:
    if reply.code == m.E_EXCEPTION:
        raise RemoteError(reply.type_name, reply.message, reply.traceback, link.describe())
    raise RequestRejected(reply.code, reply.message, link.describe())


def _exception_reply(rid: int, exc: Exception) -> m.Error:
    """The ERROR that carries an exception a connection raised (in its except block)."""
    return m.Error(
        rid,
        m.E_EXCEPTION,
        _exception_type_name(exc)[:_MAX_TEXT],
        str(exc)[:_MAX_TEXT],
        traceback.format_exc()[-_MAX_TEXT:],
    )


def _result_reply(rid: int, result: Any) -> m.Message:
    if isinstance(result, Flag):
        return m.Flag(rid, result.name, result.detail)
    return m.Result(rid, result)


class CallsMixin(EventsMixin):
    """Remote calls and ``info``."""

    async def call(
        self,
        target: PeerRef,
        connection: str,
        *args: Any,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run ``connection`` on ``target`` with these arguments and return its result.

        A remote exception raises ``RemoteError``; no answer within ``timeout``
        (default ``NET_CALL_TIMEOUT``) raises ``CallTimeout``; arguments msgpack
        cannot carry raise ``TypeError`` before anything is sent.
        """
        self._require_running()
        _check_name(connection, "connection name")
        limit = self.settings.call_timeout if timeout is None else timeout
        known, _ = self._known_link(target)
        if known is not None and known.accepting and limit > 0:
            # linked already: the link's watchdog keeps the deadline
            try:
                reply = await known.request(
                    lambda rid: m.Call(rid, connection, list(args), kwargs), limit
                )
            except CallTimeout:
                raise CallTimeout(
                    f"{connection!r} on {_describe_target(target)} did not answer "
                    f"within {limit:g} s"
                ) from None
            if type(reply) is m.Result:
                return reply.value
            return await self._interpret_reply(reply, known, connection)
        # one plain cancel scope bounds dialing and the answer (fail_after adds a
        # generator-based context manager around the same thing)
        with trio.CancelScope(deadline=trio.current_time() + limit) as scope:
            link = await self._link_to(target)
            reply = await link.request(
                lambda rid: m.Call(rid, connection, list(args), kwargs), None
            )
        if scope.cancelled_caught:
            raise CallTimeout(
                f"{connection!r} on {_describe_target(target)} did not answer within {limit:g} s"
            )
        return await self._interpret_reply(reply, link, connection)

    def call_sync(
        self,
        target: PeerRef,
        connection: str,
        *args: Any,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """Blocking form of ``call`` for plain code.

        With a live link to ``target``, the request is encoded and (when no one
        else is writing to the link) written in this thread, and the reader
        wakes this thread with the reply: no trio task runs for it. Anything
        else (dialing first, a flag handler to run) goes through ``call`` on
        the loop.
        """
        link = None
        token = self._token
        if self._running and token is not None:
            self._check_not_loop_thread("call_sync")
            try:
                link, _ = self._known_link(target)
            except RuntimeError:  # the links changed while this thread looked: ask the loop
                link = None
        if link is None or token is None or not link.accepting:
            return self._run_sync(
                functools.partial(self.call, target, connection, *args, timeout=timeout, **kwargs)
            )
        _check_name(connection, "connection name")
        limit = self.settings.call_timeout if timeout is None else timeout
        rid, waiter = link.begin_request(ThreadPending())
        poll = link.reply_poll
        try:
            data = link.conn.send(m.Call(rid, connection, list(args), kwargs))
            sent = time.perf_counter()
            if not link.write_direct(data):
                token.run_sync_soon(link.send_from_thread, data, rid)
            budget = poll.budget()
            if budget:  # the loop reads the reply: keep it awake for it a moment
                token.run_sync_soon(link.poll_for_thread, waiter, budget)
        except trio.RunFinishedError:
            link._pending.pop(rid, None)
            raise NotRunning(f"{self!r} stopped") from None
        except BaseException:
            link._pending.pop(rid, None)
            raise
        assert isinstance(waiter.event, _ThreadSignal)
        try:
            answered = waiter.event.wait(limit)
        finally:
            link._pending.pop(rid, None)
        poll.record(time.perf_counter() - sent)
        if not answered:
            raise CallTimeout(
                f"{connection!r} on {_describe_target(target)} did not answer within {limit:g} s"
            )
        if waiter.error is not None:
            raise waiter.error
        reply = waiter.reply
        if isinstance(reply, m.Result):
            return reply.value
        if isinstance(reply, m.Error):
            _raise_error(reply, link)
        assert reply is not None
        return self._run_sync(self._interpret_reply, reply, link, connection)  # a flag

    async def _interpret_reply(self, reply: m.Message, link: Link, connection: str) -> Any:
        if isinstance(reply, m.Result):
            return reply.value
        if isinstance(reply, m.Flag):
            handler = self.registry.flags.get(reply.name)
            if handler is None:
                raise RequestRejected(
                    "flag",
                    f"{connection!r} answered with flag {reply.name!r}, "
                    f"which has no handler here (register one with @net.flag)",
                    link.describe(),
                )
            info = self._peer_info(link)
            params = _positional_count(handler)
            result = (
                handler(connection, info, reply.detail)
                if params >= 3
                else handler(connection, info)
            )
            if inspect.isawaitable(result):
                result = await result
            return result
        assert isinstance(reply, m.Error)
        _raise_error(reply, link)

    async def _serve_call(self, link: Link, msg: m.Call) -> None:
        rid = msg.request_id
        entry = self.registry.connections.get(msg.connection)
        self.counters["calls_served"] += 1
        if entry is None:
            self.counters["calls_unknown"] += 1
            reply: m.Message = m.Flag(
                rid, INVALID_CONNECTION, {"connections": sorted(self.registry.connections)}
            )
        else:
            try:
                if entry.is_async:
                    result = await entry.func(*msg.args, **msg.kwargs)
                else:
                    # a worker thread (never the loop), at most 32 at once per peer:
                    # like trio.to_thread.run_sync(abandon_on_cancel=True), cheaper
                    from ._handlers import call_threads

                    assert self._call_limiter is not None
                    result = await call_threads.run(
                        functools.partial(entry.func, *msg.args, **msg.kwargs),
                        self._call_limiter,
                    )
            except Exception as exc:
                self.counters["calls_failed"] += 1
                log.debug(
                    "connection %r raised for %s", msg.connection, link.describe(), exc_info=True
                )
                reply = _exception_reply(rid, exc)
            else:
                reply = _result_reply(rid, result)
        self._send_reply(link, msg, reply)

    def _send_reply(self, link: Link, msg: m.Call, reply: m.Message) -> None:
        rid = msg.request_id
        try:
            link.send(reply, direct=True)  # someone waits for it: no writer round
        except PeerUnavailable:
            pass
        except (TypeError, ValueError) as exc:
            code = m.E_FRAME_TOO_LARGE if isinstance(exc, p.FrameTooLarge) else m.E_UNSERIALISABLE
            log.warning(
                "result of %r for %s cannot be sent: %s", msg.connection, link.describe(), exc
            )
            try:
                link.send(m.Error(rid, code, type(exc).__name__, str(exc)[:_MAX_TEXT]))
            except PeerUnavailable:
                pass

    async def _serve_call_inline(
        self, link: Link, msg: m.Call, nursery: trio.Nursery, rest: Iterator[Any]
    ) -> bool:
        """Serve a CALL from the link's reader task, without a task of its own.

        An ``async def`` connection is run right here until it returns or first
        has to wait. Most return at once (nothing to wait for), and the reply
        leaves in the same turn of the event loop as the call arrived: no task
        is spawned and scheduled. One that waits keeps this task, and a new
        task takes over reading (``rest`` of this read first, then the socket),
        exactly as a spawned handler would have let the reader go on. Returns
        whether the reading was handed over. Everything else goes ``_on_call``.
        """
        entry = self.registry.connections.get(msg.connection)
        if entry is None or not entry.is_async:
            self._on_call(link, msg, nursery)
            return False
        self.counters["calls_served"] += 1
        rid = msg.request_id
        handed_over = False
        reply: m.Message
        try:
            coro = entry.func(*msg.args, **msg.kwargs)
            if not isinstance(coro, types.CoroutineType):  # an awaitable of another kind
                nursery.start_soon(self._finish_call, link, msg, coro)
                return False
            # its own context, as a task of its own would have (a ContextVar it sets
            # must not leak into the reader and the calls after it)
            context = contextvars.copy_context()
            try:
                waits_for = context.run(coro.send, None)
            except StopIteration as done:
                result = done.value
            else:
                link.reader_handovers += 1  # this task's reader loop stops after this call
                nursery.start_soon(link._reader, nursery, rest)
                handed_over = True
                result = await _resume(coro, waits_for, context)
        except Exception as exc:
            self.counters["calls_failed"] += 1
            log.debug("connection %r raised for %s", msg.connection, link.describe(), exc_info=True)
            reply = _exception_reply(rid, exc)
        else:
            reply = _result_reply(rid, result)
        self._send_reply(link, msg, reply)
        if not handed_over:
            link.answered_in_turn = True  # the reader may poll for the caller's next call
        return handed_over

    async def _finish_call(self, link: Link, msg: m.Call, awaitable: Any) -> None:
        try:
            reply = _result_reply(msg.request_id, await awaitable)
        except Exception as exc:
            self.counters["calls_failed"] += 1
            reply = _exception_reply(msg.request_id, exc)
        self._send_reply(link, msg, reply)

    def _on_call(self, link: Link, msg: m.Call, nursery: trio.Nursery) -> None:
        """A CALL arrived. A plain ``@connect`` function goes straight to a worker
        thread, which encodes the reply and hands it back to the loop to send;
        everything else is served by a task (``_serve_call``)."""
        entry = self.registry.connections.get(msg.connection)
        limiter = self._call_limiter
        if entry is not None and not entry.is_async and limiter is not None:
            from ._handlers import call_threads

            token = object()  # what holds the limiter for this call
            try:
                limiter.acquire_on_behalf_of_nowait(token)
            except trio.WouldBlock:
                pass  # 32 running already: the task waits for a slot
            else:
                self.counters["calls_served"] += 1
                assert self._token is not None
                context = contextvars.copy_context()  # as trio.to_thread would
                call_threads.submit(
                    functools.partial(
                        context.run, self._run_plain_call, link, msg, entry.func, token
                    )
                )
                return
        nursery.start_soon(self._serve_call, link, msg)

    def _run_plain_call(self, link: Link, msg: m.Call, func: Any, token: object) -> None:
        """(In a worker thread) run a plain connection, encode its reply, hand it over."""
        rid = msg.request_id
        failed = False
        try:
            reply = _result_reply(rid, func(*msg.args, **msg.kwargs))
        except Exception as exc:
            failed = True
            log.debug("connection %r raised for %s", msg.connection, link.describe(), exc_info=True)
            reply = _exception_reply(rid, exc)
        try:
            data = p.encode(reply)
            if len(data) - p.HEADER_SIZE > link.conn.remote_max_frame:
                raise p.FrameTooLarge(
                    f"result of {len(data) - p.HEADER_SIZE} bytes exceeds the remote's limit "
                    f"of {link.conn.remote_max_frame} bytes"
                )
        except (TypeError, ValueError) as exc:
            code = m.E_FRAME_TOO_LARGE if isinstance(exc, p.FrameTooLarge) else m.E_UNSERIALISABLE
            log.warning(
                "result of %r for %s cannot be sent: %s", msg.connection, link.describe(), exc
            )
            data = p.encode(m.Error(rid, code, type(exc).__name__, str(exc)[:_MAX_TEXT]))
        sent = link.write_direct(data)  # the caller waits: answer before the bookkeeping
        assert self._token is not None
        try:
            self._token.run_sync_soon(
                self._finish_plain_call, link, rid, None if sent else data, token, failed
            )
        except trio.RunFinishedError:
            pass  # the peer stopped: nobody to answer

    def _finish_plain_call(
        self, link: Link, rid: int, data: bytes | None, token: object, failed: bool
    ) -> None:
        """(On the loop) the reply is written (``data`` None) or to be sent now."""
        assert self._call_limiter is not None
        self._call_limiter.release_on_behalf_of(token)
        if failed:
            self.counters["calls_failed"] += 1
        link.reply_from_thread(rid, data)

    def _serve_request(self, link: Link, msg: m.Message) -> None:
        try:
            self._answer_request(link, msg)
        except PeerUnavailable:
            pass  # the link is closing: nobody to answer

    def _answer_request(self, link: Link, msg: m.Message) -> None:
        if isinstance(msg, m.Info):
            link.send(m.Result(msg.request_id, self.info()))
            return
        assert isinstance(msg, m.Subscribe)  # Unsubscribe is a subclass
        if msg.kind == m.SUBSCRIBE:
            if self.table.add(msg.event, link.remote_id):
                log.info("subscriber %s added for event %r", link.describe(), msg.event)
            link.send(m.Result(msg.request_id, True))
        else:
            existed = self.table.remove(msg.event, link.remote_id, link.name)
            if existed:
                log.info("subscriber %s unsubscribed from %r", link.describe(), msg.event)
            link.send(m.Result(msg.request_id, existed))

    async def remote_info(self, target: PeerRef, timeout: float | None = None) -> dict[str, Any]:
        """``info`` of a remote peer, through the protocol's INFO request."""
        self._require_running()
        limit = self.settings.call_timeout if timeout is None else timeout
        link = await self._link_to(target)
        reply = await link.request(lambda rid: m.Info(rid), limit)
        result: dict[str, Any] = await self._interpret_reply(reply, link, "info")
        return result

    def info(self) -> dict[str, Any]:
        """Who this peer is, what it offers, who subscribes to what, and its counters."""
        names = {lk.remote_id: lk.name for lk in self.links.values()}
        s = self.settings
        return {
            "id": self.id,
            "name": self.name,
            "host": "" if s.host in ("0.0.0.0", "::") else s.host,
            "port": self.port,
            "group": s.group,
            "hub": s.hub,
            "protocol": m.PROTOCOL_VERSION,
            "version": __version__,
            "pid": os.getpid(),
            "running": self._running,
            "connections": {n: e.signature for n, e in sorted(self.registry.connections.items())},
            "events": sorted(self.registry.events),
            "subscriptions": {
                event: [names.get(sid, sid) for sid in subs]
                for event, subs in self.table.events().items()
            },
            "subscribed": sorted(self.registry.subscriptions),
            "flags": sorted(self.registry.flags),
            "peers": [lk.stats() for lk in self.links.values()],
            "counters": self._counters(),
            "pruned": [
                {
                    "subscriber": pr.name,
                    "id": pr.subscriber,
                    "events": list(pr.events),
                    "reason": pr.reason,
                    "at": pr.at,
                }
                for pr in list(self.table.prunings)[-20:]
            ],
        }

    def _counters(self) -> dict[str, int]:
        counters = dict(self.counters)
        plain = self._handlers.failures  # plain handlers fail in their own thread
        if plain:
            counters["handler_errors"] = counters.get("handler_errors", 0) + plain
        return counters

    def info_sync(self) -> dict[str, Any]:
        """``info()`` from any thread: taken on the peer's loop while it runs, so
        it never reads tables that are changing under it."""
        if self._running and self._loop_thread != threading.get_ident() and self._token is not None:
            try:
                return trio.from_thread.run_sync(self.info, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        return self.info()

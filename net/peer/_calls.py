"""Remote calls: making them, serving them, flags, and ``info``."""

from __future__ import annotations

import functools
import inspect
import logging
import os
import threading
import traceback
from collections.abc import Callable
from typing import Any

import trio

from .. import protocol as p
from .._version import __version__
from ..errors import (
    CallTimeout,
    PeerUnavailable,
    RemoteError,
    RequestRejected,
)
from ..protocol import _messages as m
from ..registry import INVALID_CONNECTION, Flag
from ._base import PeerRef, _check_name
from ._events import EventsMixin
from ._link import Link
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
        """Blocking form of ``call`` for plain code."""
        return self._run_sync(
            functools.partial(self.call, target, connection, *args, timeout=timeout, **kwargs)
        )

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
        if reply.code == m.E_EXCEPTION:
            raise RemoteError(reply.type_name, reply.message, reply.traceback, link.describe())
        raise RequestRejected(reply.code, reply.message, link.describe())

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
                reply = m.Error(
                    rid,
                    m.E_EXCEPTION,
                    _exception_type_name(exc)[:_MAX_TEXT],
                    str(exc)[:_MAX_TEXT],
                    traceback.format_exc()[-_MAX_TEXT:],
                )
            else:
                if isinstance(result, Flag):
                    reply = m.Flag(rid, result.name, result.detail)
                else:
                    reply = m.Result(rid, result)
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
            "counters": dict(self.counters),
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

    def info_sync(self) -> dict[str, Any]:
        """``info()`` from any thread: taken on the peer's loop while it runs, so
        it never reads tables that are changing under it."""
        if self._running and self._loop_thread != threading.get_ident() and self._token is not None:
            try:
                return trio.from_thread.run_sync(self.info, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        return self.info()

"""Events: triggering to subscribers (bounded queues, back-pressure, reports),
subscribing to publishers, delivering what arrives, and typed ``Event`` objects."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import trio

from .. import protocol as p
from ..bus import Event
from ..errors import (
    CallTimeout,
    NetError,
    PeerUnavailable,
)
from ..protocol import _messages as m
from ..registry import SubscriptionSpec
from ._bridge import audience_names, pack_event
from ._link import FLUSH_THRESHOLD, Link
from ._links import LinksMixin
from ._remote import DeliveryReport, PeerInfo

log = logging.getLogger("net")


def _pack_event_payload(event: str, result: Any) -> tuple[tuple[Any, ...], dict[str, Any], bytes]:
    """Check an ``@event`` function's ``(args, kwargs)`` and pack them once."""
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise TypeError(
            f"@net.event({event!r}) functions must return (args, kwargs), got {type(result).__name__}"
        )
    args, kwargs = result
    if not isinstance(args, (tuple, list)):
        raise TypeError(f"event {event!r}: args must be a tuple or list, got {type(args).__name__}")
    if kwargs is None:
        kwargs = {}
    elif not isinstance(kwargs, dict) or (kwargs and not all(isinstance(k, str) for k in kwargs)):
        raise TypeError(f"event {event!r}: kwargs must be a dict with string keys")
    try:
        payload = p.pack_event_args(args, kwargs)
    except TypeError as exc:
        raise TypeError(f"event {event!r} cannot be sent: {exc}") from None
    return tuple(args), kwargs, payload


class EventsMixin(LinksMixin):
    """Publishing and subscribing."""

    async def trigger(self, event: str, *args: Any, **kwargs: Any) -> None:
        """Send ``event`` with these arguments to every subscriber (trio code).

        Unserialisable values raise ``TypeError`` and nothing is sent; a slow
        subscriber makes this wait up to ``NET_BLOCK_TIMEOUT`` (policy "block")
        and then its events are dropped, counted and logged.
        """
        try:
            payload = self._pack_args(args, kwargs)
        except TypeError as exc:
            raise TypeError(f"event {event!r} cannot be sent: {exc}") from None
        left = self._queue_event(event, payload)
        if left is not None:
            await self._queue_event_rest(event, payload, left)

    async def trigger_with_report(
        self,
        event: str,
        args: Iterable[Any] = (),
        kwargs: dict[str, Any] | None = None,
        timeout: float = 5.0,
    ) -> DeliveryReport:
        """Send ``event`` and wait (up to ``timeout``) for every subscriber to acknowledge it."""
        out_args, out_kwargs, payload = _pack_event_payload(event, (tuple(args), kwargs or {}))
        report = await self._trigger_payload(event, payload, report=True, timeout=timeout)
        assert report is not None
        report.args, report.kwargs = out_args, out_kwargs
        return report

    def _queue_event(
        self, event: str, payload: bytes, audience: tuple[str, ...] | None = None
    ) -> list[tuple[Link, int]] | None:
        """Queue an unacknowledged event for every subscriber (or ``audience``)
        that has room: the hot path of a publisher, with no await. Returns
        ``None`` when all is done, else the ``(link, seq)`` of the subscribers
        whose queues were full (for ``_queue_event_rest``; empty if only the
        writers need a turn)."""
        self.counters["events_triggered"] += 1
        if len(payload) > self.max_payload:
            self._check_payload_size(event, payload)
        subscribers = self.table.subscribers(event) if audience is None else audience
        if not subscribers:
            return None
        full: list[tuple[Link, int]] | None = None
        flush = False
        links = self.links
        for sid in subscribers:
            link = links.get(sid)
            if link is None or not link.accepting:
                continue  # ended or saying bye: it is being pruned
            link.seq = seq = link.seq + 1
            try:
                if link.try_queue_event(event, seq, payload):
                    if link._queued >= FLUSH_THRESHOLD:
                        flush = True
                    continue
            except p.FrameTooLarge as exc:
                self._count_drop(link, event, str(exc))
                continue
            if full is None:
                full = []
            full.append((link, seq))
        if full is not None:
            return full
        return [] if flush else None

    async def _queue_event_rest(
        self, event: str, payload: bytes, full: list[tuple[Link, int]]
    ) -> None:
        """What ``_queue_event`` left: wait for room (policy "block") or drop, then
        give the writers a turn."""
        for link, seq in full:
            if self.settings.queue_policy == "block" and await link.queue_event_blocking(
                functools.partial(link.try_queue_event, event, seq, payload),
                self.settings.block_timeout,
            ):
                continue
            self._count_drop(link, event, "subscriber queue full")
        await trio.lowlevel.checkpoint()

    async def _trigger_payload(
        self, event: str, payload: bytes, *, report: bool = False, timeout: float = 5.0
    ) -> DeliveryReport | None:
        if not report:
            left = self._queue_event(event, payload)
            if left is not None:
                await self._queue_event_rest(event, payload, left)
            return None
        pending = await self._enqueue_trigger(event, payload, report)
        if not report:
            return None
        return await self._collect_report(event, pending, timeout)

    async def _enqueue_trigger(
        self, event: str, payload: bytes, ack: bool, audience: tuple[str, ...] | None = None
    ) -> list[tuple[Link, int, Any, str | None]]:
        """Queue ``event`` for every subscriber, in order. Returns what a report waits on.

        ``ack``: each subscriber gets a TRIGGER that asks for an acknowledgement
        (else this is ``_queue_event``). ``audience``: the subscribers to send
        to, if not those of ``event``.
        """
        if not ack:
            left = self._queue_event(event, payload, audience)
            if left is not None:
                await self._queue_event_rest(event, payload, left)
            return []
        self.counters["events_triggered"] += 1
        self._check_payload_size(event, payload)
        subscribers = self.table.subscribers(event) if audience is None else audience
        outcome: list[tuple[Link, int, Any, str | None]] = []
        if not subscribers:
            log.debug("event %r has no subscribers", event)
            return outcome
        flush = False
        links = self.links
        for sid in subscribers:
            link = links.get(sid)
            if link is None or not link.accepting:
                continue  # ended or saying bye: it is being pruned
            link.seq = seq = link.seq + 1
            rid, waiter = link.begin_request()
            try:
                data = link.conn.trigger_bytes(rid, event, seq, payload)
            except p.FrameTooLarge as exc:
                self._count_drop(link, event, str(exc))
                outcome.append((link, rid, None, str(exc)))
                continue
            if link.try_queue_frame(data):
                if link.needs_flush():
                    flush = True
                outcome.append((link, rid, waiter, None))
                continue
            if self.settings.queue_policy == "block" and await link.queue_event_blocking(
                functools.partial(link.try_queue_frame, data), self.settings.block_timeout
            ):
                outcome.append((link, rid, waiter, None))
                continue
            why = "subscriber queue full"
            self._count_drop(link, event, why)
            outcome.append((link, rid, None, why))
        if flush:
            await trio.lowlevel.checkpoint()
        return outcome

    def _check_payload_size(self, event: str, payload: bytes) -> None:
        """An event too large for any peer raises at the call site (sync callers too)."""
        if len(payload) > self.max_payload:
            raise ValueError(
                f"event {event!r} is {len(payload)} bytes; the limit is about "
                f"{self.settings.max_frame} bytes (NET_MAX_FRAME)"
            )

    def _count_drop(self, link: Link, event: str, why: str) -> None:
        link.events_dropped += 1
        self.counters["events_dropped"] += 1
        self._rate_log.warning(
            "drop:" + link.remote_id,
            "dropped event %r for subscriber %s: %s (%d dropped for it so far)",
            event,
            link.describe(),
            why,
            link.events_dropped,
        )

    async def _collect_report(
        self, event: str, pending: list[tuple[Link, int, Any, str | None]], timeout: float
    ) -> DeliveryReport:
        report = DeliveryReport(event)

        async def wait_one(link: Link, rid: int, waiter: Any) -> None:
            try:
                await link.wait_reply(rid, waiter, timeout)
                report.delivered.append(self._peer_info(link))
            except CallTimeout:
                report.failed[link.remote_id] = f"no acknowledgement within {timeout:g} s"
            except PeerUnavailable as exc:
                report.failed[link.remote_id] = str(exc)
                report.pruned.append(link.remote_id)

        async with trio.open_nursery() as nursery:
            for link, rid, waiter, error in pending:
                if error is not None:
                    report.failed[link.remote_id] = error
                    if rid:
                        link._pending.pop(rid, None)
                else:
                    nursery.start_soon(wait_one, link, rid, waiter)
        return report

    def _trigger_from_thread(
        self, event: str, payload: bytes, report: bool = False
    ) -> DeliveryReport | None:
        """Hand a trigger from plain code to the loop, in order, in batches."""
        if not self._running:
            if self._autostart:
                self.start()
            else:
                self.counters["events_not_running"] += 1
                log.debug("event %r not sent: %r is not running", event, self)
                if report:
                    return DeliveryReport(event)
                return None
        assert self._handover is not None
        in_loop = self._loop_thread == threading.get_ident()
        if not report:
            try:
                self._handover.put((event, payload, None), block=not in_loop)
            except trio.RunFinishedError:
                self.counters["events_not_running"] += 1
            return None
        self._check_not_loop_thread("report")
        import concurrent.futures

        future: concurrent.futures.Future[DeliveryReport] = concurrent.futures.Future()
        self._handover.put((event, payload, future))
        return future.result()

    async def _drain_handover(self) -> None:
        assert self._handover is not None and self._nursery is not None
        async for batch in self._handover.batches():
            for event, payload, future in batch:
                if future is None:
                    try:
                        left = self._queue_event(event, payload)
                        if left is not None:
                            await self._queue_event_rest(event, payload, left)
                    except Exception:  # pragma: no cover - checked at the call site
                        log.exception("event %r could not be queued", event)
                    continue
                try:
                    pending = await self._enqueue_trigger(event, payload, True)
                except Exception as exc:  # pragma: no cover - checked at the call site
                    log.exception("event %r could not be queued", event)
                    if future is not None:
                        future.set_exception(exc)
                    continue
                if future is not None:
                    self._nursery.start_soon(self._finish_report, event, pending, future)

    async def _finish_report(self, event: str, pending: Any, future: Any) -> None:
        try:
            future.set_result(await self._collect_report(event, pending, 5.0))
        except Exception as exc:  # pragma: no cover
            future.set_exception(exc)

    async def publish(self, event: Event) -> None:
        """Send an ``Event`` instance to the peers that subscribed to its class or a base
        class (``subscribe_events``). A field msgpack can't carry raises ``TypeError``
        here and nothing is sent."""
        _, payload = pack_event(event)
        # each subscriber gets it once, under the most specific class it subscribed to
        assigned: set[str] = set()
        for wire in audience_names(type(event)):
            audience = tuple(sid for sid in self.table.subscribers(wire) if sid not in assigned)
            if audience:
                assigned.update(audience)
                await self._enqueue_trigger(wire, payload, False, audience)

    def publish_sync(self, event: Event) -> None:
        """Blocking form of ``publish`` for plain code."""
        pack_event(event)  # raise TypeError in the caller's thread, before anything is sent
        self._run_sync(self.publish, event)

    def _on_link_up(self, link: Link) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(self._subscribe_link, link)

    def _spec_matches(self, spec: SubscriptionSpec, link: Link) -> bool:
        if spec.peers is not None and not any(self._ref_matches(ref, link) for ref in spec.peers):
            return False
        groups = spec.groups
        if groups is None and spec.peers is None:
            groups = (self.settings.group,)
        if groups is not None and link.remote.group not in groups:
            return False
        if spec.hubs_only and not link.remote.hub:
            return False
        return not (spec.on_host and not link.on_host)

    def _ref_matches(self, ref: Any, link: Link) -> bool:
        if isinstance(ref, PeerInfo):
            return ref.id == link.remote_id or ref.address == link.address
        if isinstance(ref, tuple):
            ref = f"{ref[0]}:{ref[1]}"
        return (
            ref in (link.remote_id, link.name, link.address)
            or self._addr_ids.get(ref) == link.remote_id
        )

    async def _subscribe_link(self, link: Link) -> None:
        """Send SUBSCRIBE for every local subscription that wants events from ``link``."""
        events = [
            event
            for event, specs in list(self.registry.subscriptions.items())
            if any(self._spec_matches(spec, link) for spec in specs)
        ]
        for event in events:
            await self._subscribe_one(link, event)

    async def _subscribe_one(self, link: Link, event: str) -> None:
        try:
            await link.request(lambda rid: m.Subscribe(rid, event), self.settings.call_timeout)
            log.debug("subscribed to %r on %s", event, link.describe())
        except (PeerUnavailable, CallTimeout) as exc:
            log.debug("subscribing to %r on %s failed: %s", event, link.describe(), exc)

    def _subscribe_everywhere(self, event: str) -> None:
        assert self._nursery is not None
        for link in list(self.links.values()):
            if any(
                self._spec_matches(spec, link)
                for spec in self.registry.subscriptions.get(event, ())
            ):
                self._nursery.start_soon(self._subscribe_one, link, event)

    async def unsubscribe(self, handler: Callable[..., Any]) -> None:
        """Remove a handler registered with ``subscribe``; peers no longer needed are told."""
        spec: SubscriptionSpec | None = getattr(handler, "subscription", None)
        if spec is None or not self.registry.remove_subscription(spec):
            raise NetError(f"{handler!r} is not a subscribed handler")
        for link in list(self.links.values()):
            still = any(
                self._spec_matches(s, link) for s in self.registry.subscriptions.get(spec.event, ())
            )
            if not still and self._spec_matches(spec, link):
                try:
                    await link.request(
                        lambda rid: m.Unsubscribe(rid, spec.event), self.settings.call_timeout
                    )
                except (PeerUnavailable, CallTimeout) as exc:
                    log.debug("unsubscribe from %s failed: %s", link.describe(), exc)

    async def _deliver(self, link: Link, msg: m.Trigger) -> None:
        """An event arrived from ``link``: check its sequence, run the matching handlers.

        The hot path of a subscriber: which local subscriptions want this event
        from this link is cached on the link (``Link.handler_plan``), async
        handlers are awaited directly, plain ones are batched to the handler
        thread (the link flushes the batch after each read).
        """
        link.events_received += 1
        seq = msg.seq
        if seq == link.rx_seq + 1:
            link.rx_seq = seq
        else:
            self._seq_gap(link, seq, seq)
        event = msg.event
        specs = self.registry.subscriptions.get(event)
        handled = False
        handlers = self._handlers
        if specs:
            queued = False
            for spec, handler, is_async, wants_sender, always in link.handler_plan(event, specs):
                if not always and not self._spec_matches(spec, link):
                    continue
                handled = True
                kwargs = msg.kwargs
                if wants_sender:
                    kwargs = {**kwargs, "sender": self._peer_info(link)}
                if is_async:
                    try:
                        if kwargs:
                            await handler(*msg.args, **kwargs)
                        else:
                            await handler(*msg.args)
                    except Exception:
                        self.counters["handler_errors"] += 1
                        log.exception(
                            "handler %s for event %r raised",
                            getattr(handler, "__qualname__", handler),
                            event,
                        )
                else:
                    handlers.put(handler, msg.args, kwargs, event)
                    queued = True
            if queued and handlers.backlog >= handlers.limit:
                await handlers.wait_for_room()
        if not handled:
            self.counters["events_unwanted"] += 1
        if msg.request_id:
            handlers.flush()  # handed to the handler thread before the ack says so
            link.send(m.Result(msg.request_id, handled))

    def _seq_gap(self, link: Link, first: int, last: int) -> None:
        """Events ``first..last`` arrived from ``link`` and ``first`` is not the next
        expected: count (and log, rate-limited) what was missed or reordered."""
        expected = link.rx_seq + 1
        if first > expected:
            missed = first - expected
            link.events_missed += missed
            self.counters["events_missed"] += missed
            self._rate_log.warning(
                "missed:" + link.remote_id,
                "missed %d event(s) from %s (its queue for us overflowed; %d missed in all)",
                missed,
                link.describe(),
                link.events_missed,
            )
        else:
            self.counters["events_out_of_order"] += 1
        link.rx_seq = max(link.rx_seq, last)

    async def _deliver_events(self, link: Link, msg: m.Events) -> None:
        """A batch of events of one name arrived from ``link`` (an EVENTS frame).

        Like ``_deliver`` for each, with the sequence check, the handler plan and
        the choice of path made once per batch: what keeps a busy subscriber's
        cost per event close to the handler call itself.
        """
        entries = msg.entries
        n = len(entries)
        link.events_received += n
        seq = msg.seq
        if seq == link.rx_seq + 1:
            link.rx_seq = seq + n - 1
        else:
            self._seq_gap(link, seq, seq + n - 1)
        event = msg.event
        specs = self.registry.subscriptions.get(event)
        plan = (
            [
                entry
                for entry in link.handler_plan(event, specs)
                if entry[4] or self._spec_matches(entry[0], link)
            ]
            if specs
            else ()
        )
        if not plan:
            self.counters["events_unwanted"] += n
            return
        handlers = self._handlers
        if len(plan) == 1 and not plan[0][3]:  # one handler that does not want the sender
            _, handler, is_async, _, _ = plan[0]
            if not is_async:
                handlers.put_many(handler, entries, event)
            else:
                for args, kwargs in entries:
                    try:
                        if kwargs:
                            await handler(*args, **kwargs)
                        else:
                            await handler(*args)
                    except Exception:
                        self._handler_failed(handler, event)
        else:
            sender = None
            for args, kwargs in entries:
                for _, handler, is_async, wants_sender, _ in plan:
                    if wants_sender:
                        if sender is None:
                            sender = self._peer_info(link)
                        kw = {**kwargs, "sender": sender}
                    else:
                        kw = kwargs
                    if is_async:
                        try:
                            await handler(*args, **kw)
                        except Exception:
                            self._handler_failed(handler, event)
                    else:
                        handlers.put(handler, args, kw, event)
        if handlers.backlog >= handlers.limit:
            await handlers.wait_for_room()

    def _handler_failed(self, handler: Any, event: str) -> None:
        self.counters["handler_errors"] += 1
        log.exception(
            "handler %s for event %r raised", getattr(handler, "__qualname__", handler), event
        )

    async def _run_async_handler(
        self, spec: SubscriptionSpec, event: str, args: list[Any], kwargs: dict[str, Any]
    ) -> None:
        try:
            await spec.handler(*args, **kwargs)
        except Exception:
            self.counters["handler_errors"] += 1
            log.exception(
                "handler %s for event %r raised",
                getattr(spec.handler, "__qualname__", spec.handler),
                event,
            )

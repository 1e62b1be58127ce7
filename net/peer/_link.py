"""A link: the one persistent connection to one remote peer, and its tasks.

The link owns the socket. A writer task sends everything queued in one
``send_all`` (writes coalesced), a reader task feeds large reads to the sans-I/O
``Connection`` and hands each message to the peer, and a heartbeat task pings.
The reader declares the remote dead when nothing arrived for
``heartbeat_timeout`` while it was waiting on the socket.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import trio

from .. import protocol as p
from ..errors import CallTimeout, PeerUnavailable
from ..protocol import _messages as m
from ._remote import PeerInfo
from ._reply_poll import ReplyPoll, poll_until

if TYPE_CHECKING:
    from ._peer import Peer

log = logging.getLogger("net.link")

READ_SIZE = 256 * 1024
#: A trigger loop yields to the writer once a link holds this much unsent data.
FLUSH_THRESHOLD = 64 * 1024
#: The writer joins queued frames into writes of about this size: big enough
#: for few system calls, small enough to stay in the CPU's cache.
WRITE_SIZE = 256 * 1024
#: An EVENTS frame holds at most this many events and about this many bytes of
#: them: enough to make the per-frame work negligible, few enough that a
#: receiver's decoded batch stays under one young-generation GC threshold.
BATCH_EVENTS = 128
BATCH_BYTES = 32 * 1024


class _Pending:
    """A request waiting for its reply, in trio code."""

    __slots__ = ("error", "event", "reply")

    def __init__(self) -> None:
        self.event: trio.Event | _ThreadSignal = trio.Event()
        self.reply: m.Message | None = None
        self.error: Exception | None = None

    def answered(self) -> bool:
        """Whether the reply (or the reason there is none) is in."""
        return self.reply is not None or self.error is not None


class _ThreadSignal:
    """What a thread blocked on a reply waits for: a lock the reader releases."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self) -> None:
        try:
            self._lock.release()
        except RuntimeError:  # set twice (a reply and the link's end): once is enough
            pass

    def wait(self, timeout: float) -> bool:
        """Whether it was set within ``timeout`` seconds (``inf``: wait for it;
        zero or less: only look), as ``trio.fail_after`` would bound it."""
        if timeout >= threading.TIMEOUT_MAX:  # inf, or more than the platform can wait
            return self._lock.acquire()
        if timeout <= 0:
            return self._lock.acquire(blocking=False)
        return self._lock.acquire(timeout=timeout)


class ThreadPending(_Pending):
    """A request made from a plain thread (``call_sync``): the reader wakes the
    thread directly, without a trip through a trio task."""

    __slots__ = ()

    def __init__(self) -> None:
        self.event = _ThreadSignal()
        self.reply = None
        self.error = None


class Link:
    """One live connection to a remote peer (after the handshake)."""

    def __init__(
        self,
        peer: Peer,
        stream: trio.SocketStream,
        conn: p.Connection,
        remote: m.Hello,
        *,
        dialed: bool,
        remote_ip: str,
        local_ip: str,
    ) -> None:
        self.peer = peer
        self.stream = stream
        self.conn = conn
        self.remote = remote
        self.dialed = dialed
        self.remote_ip = remote_ip
        self.local_ip = local_ip
        self.remote_id = remote.peer_id
        self.name = remote.name
        self.address = f"{remote_ip}:{remote.port}"
        self.on_host = remote_ip == local_ip or remote_ip.startswith("127.") or remote_ip == "::1"
        self.opened_at = time.time()
        # outgoing
        self._out: list[bytes] = []
        self._queued = 0  # bytes queued or being sent
        # the open batch: consecutive unacknowledged events of one name, not framed yet
        self._batch: list[bytes] = []
        self._batch_event = ""
        self._batch_seq = 0  # sequence number of the batch's first event
        self._batch_bytes = 0  # its entries' bytes
        self._batch_room = 0  # how many entry bytes its frame may hold
        self._queue_limit = peer.settings.queue_bytes
        self._wake = trio.Event()
        self._writer_idle = False  # the writer waits on _wake: set it when queueing
        #: True until the link closes (bye queued) or ends: frames may be queued only then
        self.accepting = True
        #: event -> (the registry's specs when computed, their plan); see handler_plan
        self._plans: dict[str, tuple[list[Any], list[tuple[Any, ...]]]] = {}
        self._space = trio.lowlevel.ParkingLot()
        self._congested = False
        self._closing: str | None = None
        self._rids = itertools.count()  # next() is atomic: threads may take ids too
        self._pending: dict[int, _Pending] = {}
        #: how long requests poll for their replies before sleeping (docs/performance.md)
        self.reply_poll = ReplyPoll(peer.settings.call_spin)
        #: ... and how long the reader polls for a caller's next call after answering
        #: one in the turn it arrived (a caller making call after call)
        self.next_call_poll = ReplyPoll(peer.settings.call_spin)
        self.answered_in_turn = False
        self._nursery: trio.Nursery | None = None  # the link's tasks' nursery while it runs
        self.seq = 0  # triggers meant for this subscriber, sent or dropped
        # incoming
        self.rx_seq = 0
        self.last_rx = time.monotonic()
        self._quiet_since: float | None = None  # trio time the reader began waiting, if it is
        #: deadlines (trio time) of requests waiting for a reply, by id
        self._deadlines: dict[int, float] = {}
        self._watch_scope: trio.CancelScope | None = None  # the watchdog's current sleep
        #: times the reading passed to a new task (a call served inline had to wait)
        self.reader_handovers = 0
        self._direct: socket.socket | None = None  # the same socket, for direct writes (send)
        #: held for every write to the socket: the writer's send_all, or one direct send
        self._write_lock = threading.Lock()
        self._urgent = b""  # the rest of a frame a direct send began: written first
        self.rtt: float | None = None
        self._ping_sent: dict[int, float] = {}
        self.ended = trio.Event()
        self.end_reason = ""
        self.remote_said_bye = False
        self.bye_reason = ""
        self.cancel_scope: trio.CancelScope | None = None
        # counters, visible through info
        self.events_sent = 0
        self.events_dropped = 0
        self.events_missed = 0
        self.events_received = 0

    def __repr__(self) -> str:
        return f"<Link {self.name} {self.address} id={self.remote_id[:8]}>"

    def describe(self) -> str:
        return f"{self.name} ({self.address}, id {self.remote_id[:8]})"

    # --- sending -------------------------------------------------------------

    def send(self, msg: m.Message, *, direct: bool = False) -> None:
        """Queue a message; raises TypeError (unserialisable) or FrameTooLarge.

        ``direct``: write it at once if the writer is idle with nothing queued
        (a request or a reply someone waits for), which saves the writer task
        a round of the scheduler; what the socket does not take at once is
        queued as usual. Streams of frames (events, acks) are left to the
        writer, which coalesces them.
        """
        self.send_bytes(self.conn.send(msg), direct=direct)

    def send_bytes(self, data: bytes, *, direct: bool = False) -> None:
        """Queue (or, ``direct``, write at once) an encoded frame; see ``send``."""
        if direct and self.write_direct(data, from_loop=True):
            return
        self._push(data)

    def write_direct(self, data: bytes, *, from_loop: bool = False) -> bool:
        """Write one whole frame now, from any thread, if nothing waits to be written
        before it and no one is writing.

        True: it was written, or its unsent rest is left for the writer, which
        sends it before anything else. False: nothing was written; queue it.
        The write lock makes this and the writer's ``send_all`` take turns, so
        frames never interleave; a thread holds it only for one non-blocking send.
        """
        if (
            not self._writer_idle
            or self._out
            or self._batch
            or self._urgent
            or not self.accepting
            or self._direct is None
        ):
            return False
        if not self._write_lock.acquire(blocking=False):
            return False
        try:
            raw = self._direct
            if raw is None or not self._writer_idle or self._out or self._batch or self._urgent:
                return False
            try:
                sent = raw.send(data)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                return False  # queued, the writer meets the error and ends the link
            if sent == len(data):
                return True
            self._urgent = data[sent:]
        finally:
            self._write_lock.release()
        if from_loop:
            self._wake_writer()
        else:
            token = self.peer._token
            if token is not None:
                try:
                    token.run_sync_soon(self._wake_writer)
                except trio.RunFinishedError:
                    pass
        return True

    def _wake_writer(self) -> None:
        if self._writer_idle:
            self._writer_idle = False
            self._wake.set()

    def _push(self, data: bytes) -> None:
        if not self.accepting or self._closing is not None or self.ended.is_set():
            raise PeerUnavailable(
                f"link to {self.describe()} is closed ({self.end_reason or self._closing})"
            )
        if self._batch:
            self._close_batch()  # what was triggered before this goes out before it
        self._out.append(data)
        self._queued += len(data)
        if self._writer_idle:
            self._writer_idle = False
            self._wake.set()

    def try_queue_frame(self, data: bytes) -> bool:
        """Queue a whole event frame (an acknowledged TRIGGER) if the queue has room."""
        queued = self._queued
        size = len(data)
        if queued and queued + size > self._queue_limit:
            return False
        self._push(data)  # raises PeerUnavailable if the link is closing
        self.events_sent += 1
        return True

    def try_queue_event(self, event: str, seq: int, payload: bytes) -> bool:
        """Queue one unacknowledged event (its packed args and kwargs) if the
        subscriber's queue has room. Consecutive events of one name go into the
        open batch, which becomes one EVENTS frame when the writer takes it.

        Raises ``FrameTooLarge`` if the event alone exceeds the remote's limit.
        """
        size = len(payload) + 1  # and its entry's array header
        queued = self._queued + size
        if queued > self._queue_limit and self._queued:
            return False
        batch = self._batch
        if (  # the hot path: the next event of the open batch (the writer is awake)
            batch
            and seq == self._batch_seq + len(batch)
            and event == self._batch_event
            and len(batch) < BATCH_EVENTS
            and self._batch_bytes + size <= self._batch_room
        ):
            batch.append(payload)
            self._batch_bytes += size
            self._queued = queued
            self.events_sent += 1
            return True
        if not self.accepting:
            self._push(payload)  # raises PeerUnavailable with the reason
        if batch:
            self._close_batch()
        room = self.conn.remote_max_frame - p.events_overhead(event)
        if size > room:
            raise p.FrameTooLarge(
                f"event {event!r} of {size + p.events_overhead(event)} bytes exceeds "
                f"the remote's limit of {self.conn.remote_max_frame} bytes"
            )
        self._batch = [payload]
        self._batch_event = event
        self._batch_seq = seq
        self._batch_bytes = size
        self._batch_room = min(room, BATCH_BYTES)
        self._queued = queued
        if self._writer_idle:
            self._writer_idle = False
            self._wake.set()
        self.events_sent += 1
        return True

    def _close_batch(self) -> None:
        """Frame the open batch and queue it for the writer."""
        batch = self._batch
        self._batch = []
        data = self.conn.events_bytes(self._batch_event, self._batch_seq, batch)
        self._queued += len(data) - self._batch_bytes  # the frame's own bytes
        self._out.append(data)

    async def queue_event_blocking(self, try_queue: Callable[[], bool], timeout: float) -> bool:
        """Wait up to ``timeout`` for room (``try_queue`` says whether it queued); a
        subscriber that stays full is 'congested' and further events to it are
        dropped at once until its queue drains to half."""
        if self._congested:
            return False
        with trio.move_on_after(timeout):
            while not try_queue():
                if self.ended.is_set():
                    return False
                await self._space.park()
            return True
        self._congested = True
        return False

    def handler_plan(self, event: str, specs: list[Any]) -> list[tuple[Any, ...]]:
        """The local subscriptions of ``event`` (``SubscriptionSpec``) that want it from
        this link, as ``(spec, handler, is_async, wants_sender, always)`` tuples.

        ``always`` means the spec matches this link whatever happens later: whether
        it does depends only on the spec and on the remote's HELLO, which never
        change. A spec that names peers only by references this link might come to
        match later (an address that a later dial maps to this peer's id) is
        listed with ``always=False``, and ``Peer._spec_matches`` is asked at each
        event. Cached per event; recomputed whenever the registry's list changes.
        """
        cached = self._plans.get(event)
        if cached is not None and cached[0] == specs:
            return cached[1]
        peer = self.peer
        plan: list[tuple[Any, ...]] = []
        for spec in specs:
            entry = (spec, spec.handler, spec.is_async, spec.wants_sender)
            if spec.peers is None or self._named_by(spec.peers):
                if peer._spec_matches(spec, self):
                    plan.append((*entry, True))
            else:
                plan.append((*entry, False))
        if len(self._plans) >= 1024:
            self._plans.clear()
        self._plans[event] = (list(specs), plan)
        return plan

    def _named_by(self, refs: tuple[Any, ...]) -> bool:
        """Whether one of ``refs`` names this link's peer by what never changes: its
        id, name or address (or a PeerInfo with its id or address). For such a
        ref ``Peer._ref_matches`` is true whatever the address map says."""
        for ref in refs:
            if isinstance(ref, PeerInfo):
                if ref.id == self.remote_id or ref.address == self.address:
                    return True
                continue
            if isinstance(ref, tuple):
                ref = f"{ref[0]}:{ref[1]}"
            if ref in (self.remote_id, self.name, self.address):
                return True
        return False

    def needs_flush(self) -> bool:
        return self._queued >= FLUSH_THRESHOLD

    def begin_request(self, waiter: _Pending | None = None) -> tuple[int, _Pending]:
        """Allocate a request id whose reply will be routed to the returned waiter.

        Safe from any thread (a ``ThreadPending`` waiter is for a plain thread)."""
        rid = next(self._rids) % m.MAX_REQUEST_ID + 1
        if waiter is None:
            waiter = _Pending()
        self._pending[rid] = waiter
        return rid, waiter

    def poll_for_thread(self, waiter: _Pending, budget: float) -> None:
        """(On the loop, for a plain thread) keep the loop polling for ``waiter``'s
        reply for ``budget`` seconds, so that it reads the reply as soon as it lands."""
        nursery = self._nursery
        if nursery is None or waiter.answered():
            return
        try:
            nursery.start_soon(self._poll_for, waiter, trio.current_time() + budget)
        except RuntimeError:  # the link is ending: its reader fails the waiter
            pass

    async def _poll_for(self, waiter: _Pending, until: float) -> None:
        poll = self.reply_poll
        poll.polls += 1
        if await poll_until(waiter.answered, until):
            poll.answered += 1

    def send_from_thread(self, data: bytes, rid: int) -> None:
        """(On the loop, for a plain thread) send an encoded request whose waiter is
        registered as ``rid``; if the link has closed, fail the waiter instead."""
        try:
            self.send_bytes(data, direct=True)
        except PeerUnavailable as exc:
            waiter = self._pending.pop(rid, None)
            if waiter is not None:
                waiter.error = exc
                waiter.event.set()

    def reply_from_thread(self, rid: int, data: bytes | None) -> None:
        """(On the loop) a worker thread answered ``rid``: send its encoded reply,
        unless (``data`` None) the thread wrote it already."""
        self.conn.answered(rid)
        if data is None:
            return
        try:
            self.send_bytes(data, direct=True)
        except PeerUnavailable:
            pass  # the caller's link ended: nobody to answer

    async def wait_reply(self, rid: int, waiter: _Pending, timeout: float | None) -> m.Message:
        event = waiter.event
        assert isinstance(event, trio.Event)  # not a ThreadPending
        try:
            if timeout is None or timeout == math.inf:
                await event.wait()  # the caller bounds it (a cancel scope costs µs)
            else:
                with trio.fail_after(timeout):
                    await event.wait()
        except trio.TooSlowError:
            raise CallTimeout(f"no answer from {self.describe()} within {timeout:g} s") from None
        finally:
            self._pending.pop(rid, None)
        if waiter.error is not None:
            raise waiter.error
        assert waiter.reply is not None
        return waiter.reply

    async def request(self, build: Callable[[int], m.Message], timeout: float | None) -> m.Message:
        """Send a request and wait for its reply (RESULT, FLAG or ERROR).

        ``timeout`` (None: none) is kept by the link's watchdog, not by a cancel
        scope of its own: ``CallTimeout`` when it passes."""
        rid, waiter = self.begin_request()
        if timeout is not None and timeout != math.inf:
            deadline = trio.current_time() + timeout
            self._deadlines[rid] = deadline
            scope = self._watch_scope
            if scope is not None and deadline < scope.deadline:
                scope.deadline = deadline
        event = waiter.event
        assert isinstance(event, trio.Event)
        poll = self.reply_poll
        try:
            self.send(build(rid), direct=True)
            sent = trio.current_time()
            budget = poll.budget()
            if budget:
                poll.polls += 1
                if await poll_until(event.is_set, sent + budget):
                    poll.answered += 1
            if not event.is_set():
                await event.wait()
            poll.record(trio.current_time() - sent)
        finally:
            self._pending.pop(rid, None)
            self._deadlines.pop(rid, None)
        if waiter.error is not None:
            if isinstance(waiter.error, CallTimeout):
                raise CallTimeout(f"no answer from {self.describe()} within {timeout:g} s")
            raise waiter.error
        assert waiter.reply is not None
        return waiter.reply

    def close(self, reason: str) -> None:
        """Say bye (if the link still can) and end it once the bye is written."""
        if self._closing is not None or self.ended.is_set():
            return
        try:
            self.send(m.Bye(reason))
        except Exception:  # pragma: no cover - closing anyway
            pass
        self._closing = reason
        self.accepting = False
        self._writer_idle = False
        self._wake.set()

    def abort(self, reason: str) -> None:
        """End the link now, without a bye (the stream can't be trusted)."""
        if not self.end_reason:
            self.end_reason = reason
        if self.cancel_scope is not None:
            self.cancel_scope.cancel()

    # --- running -------------------------------------------------------------

    async def run(self, first_items: list[m.Message | p.Violation]) -> None:
        """Run reader, writer and heartbeats until the link ends; then clean up."""
        try:
            with trio.CancelScope() as scope:
                self.cancel_scope = scope
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._writer, nursery)
                    nursery.start_soon(self._heartbeat)
                    nursery.start_soon(self._watchdog, nursery)
                    try:
                        self._direct = socket.socket(fileno=os.dup(self.stream.socket.fileno()))
                        self._direct.setblocking(False)
                    except (OSError, AttributeError):  # not a socket we can share: no direct sends
                        self._direct = None
                    await self._reader(nursery, iter(first_items))
        except* (
            PeerUnavailable,
            trio.BrokenResourceError,
            trio.ClosedResourceError,
            OSError,
        ) as group:
            # the link ended while a task was using it: that is how links end, not a crash
            if not self.end_reason:
                self.end_reason = f"connection lost: {group.exceptions[0]}"
        finally:
            self.accepting = False
            self._nursery = None
            with self._write_lock:  # no thread is writing to it
                if self._direct is not None:
                    self._direct.close()
                    self._direct = None
            if not self.end_reason:
                self.end_reason = self._closing or "ended"
            self._closing = self._closing or self.end_reason
            for waiter in list(self._pending.values()):  # (threads may add to it meanwhile)
                waiter.error = PeerUnavailable(
                    f"link to {self.describe()} ended ({self.end_reason}) before it answered"
                )
                waiter.event.set()
            self._space.unpark_all()
            self.ended.set()
            with trio.CancelScope(shield=True):
                with trio.move_on_after(0.5):
                    await self.stream.aclose()

    async def _reader(
        self, nursery: trio.Nursery, items: Iterator[m.Message | p.Violation] | None = None
    ) -> None:
        """Read and handle what arrives until the link ends, starting with ``items``.

        The task running this may stop being the reader: ``_handle`` hands the
        rest of ``items`` and the socket to a new reader task when a call it
        serves inline has to wait (see ``CallsMixin._serve_call_inline``).
        """
        stream = self.stream
        conn = self.conn
        clock = trio.current_time
        answered: float | None = None
        while True:
            if items is None:
                # the watchdog declares the remote dead if this wait lasts heartbeat_timeout
                # (one task and one sleep per link rather than a cancel scope per read)
                self._quiet_since = waiting_since = clock()
                data = None
                try:
                    if self.answered_in_turn:  # the caller may well call again at once
                        self.answered_in_turn = False
                        answered = waiting_since
                        budget = self.next_call_poll.budget()
                        if budget:
                            data = await self._poll_read(waiting_since + budget)
                    if data is None:
                        data = await stream.receive_some(READ_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    self.end_reason = f"connection lost: {exc or type(exc).__name__}"
                    nursery.cancel_scope.cancel()
                    return
                finally:
                    self._quiet_since = None  # handling (maybe waiting on handlers) does not count
                if not data:
                    if not self.end_reason:
                        self.end_reason = "connection closed by peer"
                    nursery.cancel_scope.cancel()
                    return
                if answered is not None:  # how soon the caller came back
                    self.next_call_poll.record(clock() - answered)
                    answered = None
                self.last_rx = time.monotonic()
                items = conn.receive_iter(data)  # decoded one by one, as they are handled
            handovers = self.reader_handovers
            try:
                await self._handle(items, nursery)
            finally:
                if self.reader_handovers == handovers:  # still ours: done with them
                    close = getattr(items, "close", None)
                    if close is not None:
                        close()
            if self.reader_handovers != handovers:
                return  # another task reads from here on
            items = None
            if self.remote_said_bye:
                nursery.cancel_scope.cancel()
                return
            if conn.state == p.CLOSED:
                # a fatal violation: give the writer a moment to send the error
                await trio.sleep(1.0)
                nursery.cancel_scope.cancel()
                return

    async def _poll_read(self, until: float) -> bytes | None:
        """Read what arrives until trio's clock passes ``until``, without sleeping:
        the bytes (``b""`` at the end of the stream), or None if nothing came."""
        direct = self._direct
        if direct is None:
            return None
        poll = self.next_call_poll
        poll.polls += 1
        clock = trio.current_time
        checkpoint = trio.lowlevel.checkpoint
        while True:
            try:
                data = direct.recv(READ_SIZE)
            except BlockingIOError:
                pass
            except OSError:
                return None  # the reader's own receive reports it
            else:
                poll.answered += 1
                return data
            await checkpoint()
            if clock() >= until:
                return None

    async def _handle(
        self, items: Iterator[m.Message | p.Violation], nursery: trio.Nursery
    ) -> bool:
        """Handle ``items`` in order. True if a call served inline handed the rest of
        them (and the reading) to a new reader task before it finished."""
        peer = self.peer
        deliver = peer._deliver
        deliver_events = peer._deliver_events
        serve_call = peer._serve_call_inline
        trigger = m.Trigger
        events = m.Events
        call = m.Call
        result = m.Result
        pending = self._pending
        try:
            for item in items:
                kind = type(item)
                if kind is events:  # the hot path: batches of events
                    await deliver_events(self, item)  # type: ignore[arg-type]
                    continue
                if kind is trigger:
                    await deliver(self, item)  # type: ignore[arg-type]
                    continue
                if kind is call:
                    if await serve_call(self, item, nursery, items):  # type: ignore[arg-type]
                        return True
                    continue
                if kind is result:  # a reply someone waits for
                    waiter = pending.get(item.request_id)  # type: ignore[union-attr]
                    if waiter is not None:
                        waiter.reply = item  # type: ignore[assignment]
                        waiter.event.set()
                        continue
                self._handle_other(item, nursery)
                if self.remote_said_bye:
                    return False
        finally:
            # sync handlers are handed to their thread in batches: one per read
            peer._handlers.flush()
        return False

    def _handle_other(self, item: m.Message | p.Violation, nursery: trio.Nursery) -> None:
        """Everything but events (replies, calls, pings, requests, bye, violations)."""
        try:
            self._handle_one(item, nursery)
        except PeerUnavailable:
            if self.accepting:
                raise
            # closing: what came in while we said bye cannot be answered any more

    def _handle_one(self, item: m.Message | p.Violation, nursery: trio.Nursery) -> None:
        peer = self.peer
        kind = item.kind if isinstance(item, m.Message) else -1
        if kind == m.RESULT or kind == m.FLAG or kind == m.ERROR:
            rid = item.request_id  # type: ignore[union-attr]
            waiter = self._pending.get(rid)
            if waiter is not None:
                waiter.reply = item  # type: ignore[assignment]
                waiter.event.set()
            elif kind == m.ERROR:
                err: m.Error = item  # type: ignore[assignment]
                peer._rate_log.warning(
                    "complaint:" + self.remote_id,
                    "peer %s reports a problem with what we sent: %s: %s",
                    self.describe(),
                    err.code,
                    err.message,
                )
            else:
                log.debug("late or unknown reply %d from %s ignored", rid, self.describe())
        elif kind == m.CALL:
            peer._on_call(self, item, nursery)  # type: ignore[arg-type]
        elif kind == m.PING:
            self._push(self.conn.send(m.Pong(item.nonce)))  # type: ignore[union-attr]
        elif kind == m.PONG:
            sent = self._ping_sent.pop(item.nonce, None)  # type: ignore[union-attr]
            if sent is not None:
                self.rtt = time.monotonic() - sent
        elif kind in (m.SUBSCRIBE, m.UNSUBSCRIBE, m.INFO):
            peer._serve_request(self, item)  # type: ignore[arg-type]
        elif kind == m.BYE:
            self.remote_said_bye = True
            self.bye_reason = item.reason  # type: ignore[union-attr]
            self.end_reason = f"bye: {self.bye_reason}"
            log.debug("peer %s said bye: %s", self.describe(), self.bye_reason)
            return
        elif kind == m.HELLO:
            pass  # the handshake's own HELLO was consumed before the link existed
        else:
            self._violation(item)  # type: ignore[arg-type]

    def _violation(self, v: p.Violation) -> None:
        self.peer.counters["protocol_errors"] += 1
        if v.fatal:
            log.warning(
                "closing link to %s: protocol violation %s: %s", self.describe(), v.code, v.message
            )
            self.end_reason = f"protocol violation: {v.code}"
            if v.reply is not None:
                try:
                    self._push(p.encode(v.reply))
                except Exception:
                    pass
            self._closing = self.end_reason
            self.accepting = False
            self._writer_idle = False
            self._wake.set()
        else:
            self.peer._rate_log.warning(
                "violation:" + self.remote_id,
                "bad message from %s: %s: %s",
                self.describe(),
                v.code,
                v.message,
            )
            if v.reply is not None:
                self._push(p.encode(v.reply))

    async def _writer(self, nursery: trio.Nursery) -> None:
        stream = self.stream
        limit = self.peer.settings.queue_bytes
        while True:
            if self._batch:
                self._close_batch()
            if not self._out and not self._urgent:
                if self._closing is not None:
                    # everything including the bye is written: end the link
                    with trio.move_on_after(0.2):
                        try:
                            await stream.send_eof()
                        except Exception:
                            pass
                    nursery.cancel_scope.cancel()
                    return
                self._wake = trio.Event()
                self._writer_idle = True
                await self._wake.wait()
                continue
            out = self._out
            if len(out) <= 1:
                data = out[0] if out else b""
                self._out = []
            else:  # at most about WRITE_SIZE per send_all: a long queue stays in its frames
                size = 0
                for n, frame in enumerate(out):  # noqa: B007
                    size += len(frame)
                    if size >= WRITE_SIZE:
                        break
                n += 1
                data = b"".join(out[:n])
                self._out = out[n:]
            # a thread holds the lock for one non-blocking send at most: wait for it
            self._write_lock.acquire()
            try:
                urgent = self._urgent
                self._urgent = b""
                await stream.send_all(urgent + data if urgent else data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self.end_reason = self.end_reason or f"connection lost: {exc or type(exc).__name__}"
                nursery.cancel_scope.cancel()
                return
            finally:
                self._write_lock.release()
            self._queued -= len(data)
            if self._congested and self._queued <= limit // 2:
                self._congested = False
            self._space.unpark_all()

    async def _watchdog(self, nursery: trio.Nursery) -> None:
        """End the link when the reader has waited ``heartbeat_timeout`` and nothing
        came; and fail requests whose deadline passed.

        It sleeps in a cancel scope whose deadline a new request may bring
        forward (``_watch_scope``): one timer per link instead of a cancel scope
        per request."""
        timeout = self.peer.settings.heartbeat_timeout
        while True:
            now = trio.current_time()
            since = self._quiet_since
            if since is not None and since + timeout <= now:
                self.end_reason = f"no heartbeat for {timeout:g} s"
                log.warning("peer %s is unreachable: %s", self.describe(), self.end_reason)
                nursery.cancel_scope.cancel()
                return
            wake = (since if since is not None else now) + timeout
            if self._deadlines:
                wake = min(wake, self._expire_requests(now))
            with trio.CancelScope(deadline=wake) as scope:
                self._watch_scope = scope
                await trio.sleep_forever()
            self._watch_scope = None

    def _expire_requests(self, now: float) -> float:
        """Fail the requests whose deadline passed; returns the next deadline."""
        following = math.inf
        for rid, deadline in list(self._deadlines.items()):
            if deadline > now:
                following = min(following, deadline)
                continue
            del self._deadlines[rid]
            waiter = self._pending.pop(rid, None)
            if waiter is not None:
                waiter.error = CallTimeout(f"no answer from {self.describe()} in time")
                waiter.event.set()
        return following

    async def _heartbeat(self) -> None:
        interval = self.peer.settings.heartbeat_interval
        nonce = 0
        while True:
            await trio.sleep(interval)
            nonce += 1
            self._ping_sent = {nonce: time.monotonic()}
            try:
                self._push(self.conn.send(m.Ping(nonce)))
            except PeerUnavailable:
                return

    def stats(self) -> dict[str, Any]:
        return {
            "id": self.remote_id,
            "name": self.name,
            "address": self.address,
            "group": self.remote.group,
            "hub": self.remote.hub,
            "dialed": self.dialed,
            "rtt_ms": None if self.rtt is None else round(self.rtt * 1000, 3),
            "events_sent": self.events_sent,
            "events_dropped": self.events_dropped,
            "events_received": self.events_received,
            "events_missed": self.events_missed,
            "queued_bytes": self._queued,
            "reply_polls": self.reply_poll.polls,
            "reply_polls_answered": self.reply_poll.answered,
            "next_call_polls": self.next_call_poll.polls,
            "next_call_polls_answered": self.next_call_poll.answered,
        }


async def handshake(
    stream: trio.SocketStream, hello: m.Hello, settings_timeout: float, max_in_flight: int
) -> tuple[p.Connection, m.Hello, list[m.Message | p.Violation]]:
    """Exchange HELLOs. Returns the connection, the remote HELLO and whatever came after it.

    Raises ``ProtocolError`` (bad or incompatible hello: the error is sent to
    the remote first) or ``PeerUnavailable`` (timeout, connection lost).
    """
    from ..errors import ProtocolError

    conn = p.Connection(hello, max_in_flight=max_in_flight)
    try:
        with trio.fail_after(settings_timeout):
            await stream.send_all(conn.hello_bytes())
            while True:
                data = await stream.receive_some(READ_SIZE)
                if not data:
                    raise PeerUnavailable("connection closed during the handshake")
                items = conn.receive_data(data)
                if not items:
                    continue
                first = items[0]
                if isinstance(first, p.Violation):
                    if first.reply is not None:
                        with trio.move_on_after(0.5):
                            await stream.send_all(p.encode(first.reply))
                    raise ProtocolError(first.code, first.message)
                if isinstance(first, m.Error):
                    raise ProtocolError(
                        first.code, f"remote refused the handshake: {first.message}"
                    )
                if not isinstance(first, m.Hello):  # pragma: no cover - parse guarantees it
                    raise ProtocolError(m.E_HANDSHAKE, "expected hello")
                return conn, first, items[1:]
    except trio.TooSlowError:
        raise PeerUnavailable(f"no hello within {settings_timeout:g} s") from None
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        raise PeerUnavailable(f"connection lost during the handshake: {exc}") from None

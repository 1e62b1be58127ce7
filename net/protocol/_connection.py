"""The connection state machine: bytes in, messages out; messages in, bytes out.

Like h11, this does no I/O. The peer layer feeds it what the socket gave
(``receive_data``) and writes what it returns. It owns framing, the handshake,
the version check, the frame-size and in-flight limits, and turns every bad
input into a ``Violation`` that says what to answer and whether the stream can
still be trusted.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Generator  # noqa: UP035 (this package imports no stdlib but struct)

import msgpack

from . import _messages as m

_LEN = struct.Struct(">I")
HEADER_SIZE = _LEN.size
#: Frames are never bigger than this, whatever the settings say (4-byte length).
ABSOLUTE_MAX_FRAME = 2**32 - 1

AWAIT_HELLO = "await_hello"
OPEN = "open"
CLOSED = "closed"


class FrameTooLarge(ValueError):
    """An outgoing message is bigger than the receiver accepts."""


class Violation:
    """The remote broke the protocol.

    ``reply`` is the ERROR message to send back (``None`` if none can be sent),
    ``fatal`` says the connection must be closed because the stream can no
    longer be trusted (or the handshake failed).
    """

    __slots__ = ("code", "fatal", "message", "reply")

    def __init__(self, code: str, message: str, fatal: bool, reply: m.Error | None) -> None:
        self.code = code
        self.message = message
        self.fatal = fatal
        self.reply = reply

    def __repr__(self) -> str:
        return f"Violation({self.code!r}, {self.message!r}, fatal={self.fatal})"


#: Packers ready for use. ``msgpack.packb`` builds a Packer (and mallocs its
#: 256 KiB buffer) on every call; reusing them is 2x faster. A Packer is not
#: safe to share between threads, so each caller takes one from this pool and
#: puts it back (list.pop/append are atomic): threads never share one at once.
_packers: list[msgpack.Packer] = []
#: A packer whose buffer grew past this is dropped rather than pooled.
_POOL_MAX_OUTPUT = 256 * 1024
_EMPTY_MAP = b"\x80"


def pack(obj: Any) -> bytes:
    """msgpack-encode ``obj`` the way the protocol does (bin for bytes, str for str).

    Anything msgpack cannot carry raises ``TypeError``, whatever msgpack's own
    exception was (it uses OverflowError and ValueError for some values).
    """
    if type(obj) is dict and not obj:
        return _EMPTY_MAP  # kwargs of most events
    try:
        packer = _packers.pop()
    except IndexError:
        packer = msgpack.Packer(use_bin_type=True)
    try:
        data: bytes = packer.pack(obj)
    except TypeError:
        _packers.append(packer)  # msgpack resets the packer's buffer on errors
        raise
    except (OverflowError, ValueError) as exc:
        _packers.append(packer)
        raise TypeError(f"cannot serialise value with msgpack: {exc}") from exc
    if len(data) <= _POOL_MAX_OUTPUT:
        _packers.append(packer)
    return data


def pack_event_args(args: Any, kwargs: dict[str, Any]) -> bytes:
    """The ``args`` array and ``kwargs`` map of a TRIGGER, packed back to back.

    What ``pack(list(args)) + pack(kwargs)`` gives, in one msgpack call: the
    pair is packed as a 2-element array and its 1-byte header dropped.
    ``args`` may be a tuple or a list. Raises ``TypeError`` like ``pack``
    (this is ``pack`` inlined: it runs once per event).
    """
    try:
        packer = _packers.pop()
    except IndexError:
        packer = msgpack.Packer(use_bin_type=True)
    try:
        data: bytes = packer.pack((args, kwargs))
    except TypeError:
        _packers.append(packer)
        raise
    except (OverflowError, ValueError) as exc:
        _packers.append(packer)
        raise TypeError(f"cannot serialise value with msgpack: {exc}") from exc
    if len(data) <= _POOL_MAX_OUTPUT:
        _packers.append(packer)
    return data[1:]


def event_args_packer() -> Callable[[Any, dict[str, Any]], bytes]:
    """A ``pack_event_args`` with a Packer of its own, for one thread only (a peer's
    loop packs every ``trigger`` with one): no pool to take it from and give it back to."""
    packer = msgpack.Packer(use_bin_type=True)

    def pack_args(args: Any, kwargs: dict[str, Any]) -> bytes:
        nonlocal packer
        try:
            data: bytes = packer.pack((args, kwargs))
        except (OverflowError, ValueError) as exc:  # the packer resets itself on errors
            raise TypeError(f"cannot serialise value with msgpack: {exc}") from exc
        if len(data) > _POOL_MAX_OUTPUT:
            packer = msgpack.Packer(use_bin_type=True)  # do not keep a grown buffer
        return data[1:]

    return pack_args


def unpack(data: bytes | memoryview) -> Any:
    """Decode one msgpack object; raises on trailing data or bad input."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True)


def frame(body: bytes) -> bytes:
    """Prefix a packed body with its 4-byte big-endian length."""
    return _LEN.pack(len(body)) + body


def encode(msg: m.Message) -> bytes:
    """Frame one message. Raises ``TypeError`` for values msgpack cannot carry."""
    return frame(pack([msg.kind, *msg.fields()]))


#: msgpack positive fixints 0..127, by value.
_UINTS = [bytes((i,)) for i in range(128)]
_U8 = struct.Struct(">BB")
_U16 = struct.Struct(">BH")
_U32 = struct.Struct(">BI")
_U64 = struct.Struct(">BQ")
#: msgpack array headers: fixarray by length, array 16, array 32.
_FIXARRAY = [bytes((0x90 | i,)) for i in range(16)]
_ARRAY16 = struct.Struct(">BH")
_ARRAY32 = struct.Struct(">BI")


def _uint(n: int) -> bytes:
    """msgpack encoding of an int, as ``pack`` would make it (for ids and seqs)."""
    if type(n) is not int or n < 0 or n > 0xFFFFFFFFFFFFFFFF:
        return pack(n)
    if n < 0x80:
        return _UINTS[n]
    if n <= 0xFF:
        return _U8.pack(0xCC, n)
    if n <= 0xFFFF:
        return _U16.pack(0xCD, n)
    if n <= 0xFFFFFFFF:
        return _U32.pack(0xCE, n)
    return _U64.pack(0xCF, n)


#: Event names packed once (bounded: cleared when it grows past _NAMES_MAX).
_names: dict[str, bytes] = {}
_NAMES_MAX = 4096


def _packed_name(event: str) -> bytes:
    data = pack(event)
    if len(_names) >= _NAMES_MAX:
        _names.clear()
    _names[event] = data
    return data


def _str_keys(kwargs: dict[Any, Any]) -> bool:
    # a plain loop: all(<genexpr>) costs more than the check for a few keys
    for key in kwargs:  # noqa: SIM110
        if type(key) is not str:
            return False
    return True


def _entries_ok(entries: list[Any]) -> bool:
    """Whether every entry of an EVENTS frame is an ``[args, kwargs]`` pair with
    string keys (what ``_messages.parse`` checks, without naming the culprit)."""
    for entry in entries:
        if type(entry) is not list or len(entry) != 2:
            return False
        args, kwargs = entry
        if type(args) is not list or type(kwargs) is not dict:
            return False
        if kwargs:
            for key in kwargs:
                if type(key) is not str:
                    return False
    return True


def events_overhead(event: str) -> int:
    """An upper bound on the bytes of an EVENTS frame body that are not its entries."""
    name = _names.get(event)
    if name is None:
        name = _packed_name(event)
    # kind and array header, name, seq (at most 9), entries' array header (at most 5)
    return 2 + len(name) + 9 + 5


class Connection:
    """Protocol state of one TCP connection, seen from our side.

    Both sides send HELLO first (``hello_bytes``), then any message. The first
    frame received must be the remote HELLO with our protocol version.
    """

    def __init__(
        self,
        local_hello: m.Hello,
        *,
        max_in_flight: int = 1024,
        max_violations: int = 16,
    ) -> None:
        self.local_hello = local_hello
        self.max_frame = local_hello.max_frame
        self.max_in_flight = max_in_flight
        self.max_violations = max_violations
        self.state = AWAIT_HELLO
        self.remote_hello: m.Hello | None = None
        #: The remote's limit for frames we send; known after its HELLO.
        self.remote_max_frame = 1024
        self.violations = 0
        self._buffer = bytearray()
        self._in_flight: set[int] = set()

    # --- outgoing -----------------------------------------------------------

    def hello_bytes(self) -> bytes:
        return encode(self.local_hello)

    def send(self, msg: m.Message) -> bytes:
        """Bytes for ``msg``; replies release the request they answer."""
        data = encode(msg)
        if len(data) - HEADER_SIZE > self.remote_max_frame:
            raise FrameTooLarge(
                f"{m.KIND_NAMES[msg.kind]} of {len(data) - HEADER_SIZE} bytes exceeds the "
                f"remote's limit of {self.remote_max_frame} bytes"
            )
        if msg.kind in m.REPLY_KINDS:
            self._in_flight.discard(msg.request_id)  # type: ignore[attr-defined]
        return data

    def trigger_bytes(self, request_id: int, event: str, seq: int, payload: bytes) -> bytes:
        """A TRIGGER frame around ``payload``, the pre-packed args and kwargs.

        Packing the arguments once and splicing them into each subscriber's
        frame is why triggers to many subscribers cost one ``packb``. The event
        name is packed once per name (cached); the ids are encoded here, the
        way msgpack does (its smallest int form).
        """
        name = _names.get(event)
        if name is None:
            name = _packed_name(event)
        rid = _UINTS[request_id] if 0 <= request_id < 128 else _uint(request_id)
        if 0x10000 <= seq <= 0xFFFFFFFF:  # the common case of a long-lived link
            sq = _U32.pack(0xCE, seq)
        else:
            sq = _UINTS[seq] if 0 <= seq < 128 else _uint(seq)
        size = 2 + len(rid) + len(name) + len(sq) + len(payload)
        if size > self.remote_max_frame:
            raise FrameTooLarge(
                f"event {event!r} of {size} bytes exceeds the remote's limit of "
                f"{self.remote_max_frame} bytes"
            )
        return b"".join((_LEN.pack(size), b"\x96\x06", rid, name, sq, payload))

    def events_bytes(self, event: str, seq: int, payloads: list[bytes]) -> bytes:
        """An EVENTS frame: ``payloads`` (each the packed args and kwargs of one
        event, as ``pack_event_args`` makes them) numbered from ``seq``.

        Each payload becomes a 2-element array by prefixing its header; joining
        with that header as the separator does it without a copy per event.
        """
        name = _names.get(event)
        if name is None:
            name = _packed_name(event)
        n = len(payloads)
        if not n:
            raise ValueError("an EVENTS frame needs at least one event")
        head = (
            _FIXARRAY[n]
            if n < 16
            else _ARRAY16.pack(0xDC, n)
            if n <= 0xFFFF
            else _ARRAY32.pack(0xDD, n)
        )
        if 0x10000 <= seq <= 0xFFFFFFFF:
            sq = _U32.pack(0xCE, seq)
        else:
            sq = _UINTS[seq] if 0 <= seq < 128 else _uint(seq)
        body = b"".join((b"\x94\x0c", name, sq, head, b"\x92", b"\x92".join(payloads)))
        if len(body) > self.remote_max_frame:
            raise FrameTooLarge(
                f"events {event!r} of {len(body)} bytes exceed the remote's limit of "
                f"{self.remote_max_frame} bytes"
            )
        return _LEN.pack(len(body)) + body

    def answered(self, request_id: int) -> None:
        """Forget an incoming request that will not be answered (e.g. an ack not sent)."""
        self._in_flight.discard(request_id)

    @property
    def in_flight(self) -> int:
        """Incoming requests not answered yet."""
        return len(self._in_flight)

    # --- incoming -----------------------------------------------------------

    def receive_data(self, data: bytes) -> list[m.Message | Violation]:
        """Feed bytes from the socket; returns the messages and violations they held.

        After a fatal violation the connection is CLOSED and ignores more data.
        """
        return list(self.receive_iter(data))

    def receive_iter(self, data: bytes) -> Generator[m.Message | Violation, None, None]:
        """Like ``receive_data``, but yields each message as soon as it is decoded.

        A reader that handles each message before asking for the next keeps
        only one message alive at a time, however many a read held: nothing
        survives long enough to be promoted by the garbage collector, which
        otherwise costs a fifth of a busy subscriber's time. Exhaust (or
        ``close()``) the iterator before feeding this connection again.
        """
        if self.state == CLOSED:
            return
        buf = self._buffer
        buf += data
        pos = 0
        end_of_data = len(buf)
        if end_of_data < HEADER_SIZE:
            return
        max_frame = self.max_frame
        unpack_len = _LEN.unpack_from
        unpackb = msgpack.unpackb
        trigger = m.Trigger
        events = m.Events
        result = m.Result
        call = m.Call
        in_flight = self._in_flight
        view = memoryview(buf)
        try:
            while end_of_data - pos >= HEADER_SIZE:
                (size,) = unpack_len(buf, pos)
                if size > max_frame:
                    yield self._fatal(
                        m.E_FRAME_TOO_LARGE,
                        f"frame of {size} bytes exceeds the limit of {max_frame} bytes",
                    )
                    break
                start = pos + HEADER_SIZE
                end = start + size
                if end > end_of_data:
                    break
                pos = end
                # The hot paths, inlined: EVENTS, CALL, RESULT and TRIGGER on an open
                # connection, with every check of _messages.parse (anything else, or
                # anything that fails a check, goes the general way, which says
                # precisely what is wrong).
                item: m.Message | Violation | None
                try:
                    body = unpackb(view[start:end], raw=False, strict_map_key=False)
                except Exception as exc:  # msgpack raises a zoo of types on hostile input
                    item = self._undecodable(exc)
                else:
                    if type(body) is list and len(body) > 2 and self.state == OPEN:
                        kind = body[0]
                        n = len(body)
                        if type(kind) is not int:
                            pass
                        elif kind == m.EVENTS and n == 4:
                            _, event, seq, entries = body
                            if (
                                type(event) is str
                                and type(seq) is int
                                and type(entries) is list
                                and 0 < len(event) <= m.MAX_NAME_LEN
                                and seq >= 0
                                and entries
                                and _entries_ok(entries)
                            ):
                                del body
                                yield events(event, seq, entries)
                                del entries
                                continue
                        elif kind == m.CALL and n == 5:
                            _, rid, connection, args, kwargs = body
                            if (
                                type(rid) is int
                                and type(connection) is str
                                and type(args) is list
                                and type(kwargs) is dict
                                and 0 < rid <= m.MAX_REQUEST_ID
                                and 0 < len(connection) <= m.MAX_NAME_LEN
                                and (not kwargs or _str_keys(kwargs))
                                and rid not in in_flight
                                and len(in_flight) < self.max_in_flight
                            ):
                                in_flight.add(rid)
                                del body
                                yield call(rid, connection, args, kwargs)
                                continue
                        elif kind == m.RESULT and n == 3:
                            rid = body[1]
                            if type(rid) is int and 0 < rid <= m.MAX_REQUEST_ID:
                                value = body[2]
                                del body
                                yield result(rid, value)
                                del value
                                continue
                        elif kind == m.TRIGGER and n == 6:
                            _, rid, event, seq, args, kwargs = body
                            if (
                                type(rid) is int
                                and type(event) is str
                                and type(seq) is int
                                and type(args) is list
                                and type(kwargs) is dict
                                and 0 <= rid <= m.MAX_REQUEST_ID
                                and 0 < len(event) <= m.MAX_NAME_LEN
                                and seq >= 0
                                and (not kwargs or _str_keys(kwargs))
                            ):
                                if not rid:
                                    del body
                                    yield trigger(0, event, seq, args, kwargs)
                                    continue
                                if rid not in in_flight and len(in_flight) < self.max_in_flight:
                                    in_flight.add(rid)
                                    del body
                                    yield trigger(rid, event, seq, args, kwargs)
                                    continue
                    item = self._receive_body(body)
                    del body
                if item is not None:
                    yield item
                    del item
                if self.state == CLOSED:
                    break
        finally:
            view.release()
            if self.state == CLOSED:
                buf.clear()
            else:
                del buf[:pos]

    @property
    def buffered(self) -> int:
        """Bytes received but not yet a whole frame."""
        return len(self._buffer)

    def _receive_frame(self, data: memoryview) -> m.Message | Violation | None:
        try:
            body = unpack(data)
        except Exception as exc:  # msgpack raises a zoo of types on hostile input
            return self._undecodable(exc)
        return self._receive_body(body)

    def _undecodable(self, exc: Exception) -> Violation:
        if self.state == AWAIT_HELLO:
            return self._fatal(m.E_HANDSHAKE, f"undecodable hello: {type(exc).__name__}")
        return self._complain(
            m.E_MALFORMED, f"undecodable frame: {type(exc).__name__}: {exc}"[:200]
        )

    def _receive_body(self, body: Any) -> m.Message | Violation | None:
        if self.state == AWAIT_HELLO:
            return self._receive_hello(body)
        try:
            msg = m.parse(body)
        except m.BadMessage as exc:
            return self._complain(exc.code, exc.message, exc.request_id)
        kind = msg.kind
        if kind in m.REQUEST_KINDS or (kind == m.TRIGGER and msg.request_id):  # type: ignore[attr-defined]
            rid = msg.request_id  # type: ignore[attr-defined]
            if rid in self._in_flight:
                return self._complain(m.E_DUPLICATE_ID, f"request id {rid} is already in flight")
            if len(self._in_flight) >= self.max_in_flight:
                return Violation(
                    m.E_TOO_MANY_REQUESTS,
                    f"more than {self.max_in_flight} requests in flight",
                    False,
                    m.Error(
                        rid,
                        m.E_TOO_MANY_REQUESTS,
                        "RequestRejected",
                        f"at most {self.max_in_flight} requests may be in flight",
                    ),
                )
            self._in_flight.add(rid)
        elif kind == m.BYE:
            self.state = CLOSED
        return msg

    def _receive_hello(self, body: Any) -> m.Message | Violation:
        try:
            hello = m.parse_hello(body)
        except m.BadMessage as exc:
            return self._fatal(m.E_HANDSHAKE, exc.message)
        if hello.version != self.local_hello.version:
            return self._fatal(
                m.E_VERSION,
                f"remote speaks protocol version {hello.version}, "
                f"this peer speaks version {self.local_hello.version}",
            )
        self.remote_hello = hello
        self.remote_max_frame = hello.max_frame
        self.state = OPEN
        return hello

    def _fatal(self, code: str, message: str) -> Violation:
        self.state = CLOSED
        return Violation(code, message, True, m.Error(0, code, "ProtocolError", message))

    def _complain(self, code: str, message: str, request_id: int = 0) -> Violation:
        self.violations += 1
        if self.violations > self.max_violations:
            return self._fatal(code, f"{message} (too many protocol violations, closing)")
        return Violation(code, message, False, m.Error(request_id, code, "ProtocolError", message))

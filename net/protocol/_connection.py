"""The connection state machine: bytes in, messages out; messages in, bytes out.

Like h11, this does no I/O. The peer layer feeds it what the socket gave
(``receive_data``) and writes what it returns. It owns framing, the handshake,
the version check, the frame-size and in-flight limits, and turns every bad
input into a ``Violation`` that says what to answer and whether the stream can
still be trusted.
"""

from __future__ import annotations

import struct
from typing import Any

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


def pack(obj: Any) -> bytes:
    """msgpack-encode ``obj`` the way the protocol does (bin for bytes, str for str).

    Anything msgpack cannot carry raises ``TypeError``, whatever msgpack's own
    exception was (it uses OverflowError and ValueError for some values).
    """
    try:
        return bytes(msgpack.packb(obj, use_bin_type=True))
    except TypeError:
        raise
    except (OverflowError, ValueError) as exc:
        raise TypeError(f"cannot serialise value with msgpack: {exc}") from exc


def unpack(data: bytes | memoryview) -> Any:
    """Decode one msgpack object; raises on trailing data or bad input."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True)


def frame(body: bytes) -> bytes:
    """Prefix a packed body with its 4-byte big-endian length."""
    return _LEN.pack(len(body)) + body


def encode(msg: m.Message) -> bytes:
    """Frame one message. Raises ``TypeError`` for values msgpack cannot carry."""
    return frame(pack([msg.kind, *msg.fields()]))


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
        frame is why triggers to many subscribers cost one ``packb``.
        """
        body = b"\x96\x06" + pack(request_id) + pack(event) + pack(seq) + payload
        if len(body) > self.remote_max_frame:
            raise FrameTooLarge(
                f"event {event!r} of {len(body)} bytes exceeds the remote's limit of "
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
        if self.state == CLOSED:
            return []
        buf = self._buffer
        buf += data
        out: list[m.Message | Violation] = []
        pos = 0
        end_of_data = len(buf)
        max_frame = self.max_frame
        with memoryview(buf) as view:
            while end_of_data - pos >= HEADER_SIZE:
                (size,) = _LEN.unpack_from(buf, pos)
                if size > max_frame:
                    out.append(
                        self._fatal(
                            m.E_FRAME_TOO_LARGE,
                            f"frame of {size} bytes exceeds the limit of {max_frame} bytes",
                        )
                    )
                    break
                end = pos + HEADER_SIZE + size
                if end > end_of_data:
                    break
                item = self._receive_frame(view[pos + HEADER_SIZE : end])
                pos = end
                if item is not None:
                    out.append(item)
                if self.state == CLOSED:
                    break
        if self.state == CLOSED:
            buf.clear()
        else:
            del buf[:pos]
        return out

    @property
    def buffered(self) -> int:
        """Bytes received but not yet a whole frame."""
        return len(self._buffer)

    def _receive_frame(self, data: memoryview) -> m.Message | Violation | None:
        try:
            body = unpack(data)
        except Exception as exc:  # msgpack raises a zoo of types on hostile input
            if self.state == AWAIT_HELLO:
                return self._fatal(m.E_HANDSHAKE, f"undecodable hello: {type(exc).__name__}")
            return self._complain(
                m.E_MALFORMED, f"undecodable frame: {type(exc).__name__}: {exc}"[:200]
            )
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

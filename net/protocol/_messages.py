"""Message kinds of the wire protocol and their validation.

A frame's body is one msgpack array whose first element is the kind (a small
int); the other elements are positional fields. ``parse`` turns a decoded body
into a typed message or raises ``BadMessage``; ``encode`` does the reverse.
See docs/protocol.md for the byte-level description.
"""

from __future__ import annotations

from typing import Any

PROTOCOL_VERSION = 2

HELLO = 0
BYE = 1
PING = 2
PONG = 3
SUBSCRIBE = 4
UNSUBSCRIBE = 5
TRIGGER = 6
CALL = 7
INFO = 8
RESULT = 9
FLAG = 10
ERROR = 11
EVENTS = 12

KIND_NAMES = {
    HELLO: "hello",
    BYE: "bye",
    PING: "ping",
    PONG: "pong",
    SUBSCRIBE: "subscribe",
    UNSUBSCRIBE: "unsubscribe",
    TRIGGER: "trigger",
    CALL: "call",
    INFO: "info",
    RESULT: "result",
    FLAG: "flag",
    ERROR: "error",
    EVENTS: "events",
}

#: Kinds that are requests: the receiver answers with RESULT, FLAG or ERROR.
REQUEST_KINDS = frozenset({SUBSCRIBE, UNSUBSCRIBE, CALL, INFO})
#: Kinds that answer a request.
REPLY_KINDS = frozenset({RESULT, FLAG, ERROR})

MAX_REQUEST_ID = 2**32 - 1
MAX_NAME_LEN = 256
MAX_TEXT_LEN = 64 * 1024

# Error codes carried by ERROR messages (docs/protocol.md, "Error codes").
E_EXCEPTION = "exception"
E_BAD_MESSAGE = "bad_message"
E_MALFORMED = "malformed"
E_UNKNOWN_KIND = "unknown_kind"
E_FRAME_TOO_LARGE = "frame_too_large"
E_TOO_MANY_REQUESTS = "too_many_requests"
E_VERSION = "version_mismatch"
E_HANDSHAKE = "handshake"
E_SHUTTING_DOWN = "shutting_down"
E_UNSERIALISABLE = "unserialisable_result"
E_DUPLICATE_ID = "duplicate_request_id"


class BadMessage(Exception):
    """A frame decoded to msgpack but is not a valid message.

    ``request_id`` is set when the frame was a request whose id could be read,
    so the error can be answered to the right caller.
    """

    def __init__(self, code: str, message: str, request_id: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


class Message:
    """Base of all messages; ``kind`` is the wire kind number."""

    __slots__ = ()
    kind: int = -1

    def fields(self) -> list[Any]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return (
            type(self) is type(other)
            and isinstance(other, Message)
            and self.fields() == other.fields()
        )

    def __hash__(self) -> int:
        return hash((self.kind, repr(self.fields())))

    def __repr__(self) -> str:
        slots: tuple[str, ...] = tuple(self.__slots__)
        names = ", ".join(f"{slot}={getattr(self, slot)!r}" for slot in slots)
        return f"{type(self).__name__}({names})"


class Hello(Message):
    """First message each side sends: who I am and what I accept."""

    __slots__ = ("auth", "group", "host", "hub", "max_frame", "name", "peer_id", "port", "version")
    kind = HELLO

    def __init__(
        self,
        version: int,
        peer_id: str,
        name: str,
        group: str,
        hub: bool,
        host: str,
        port: int,
        max_frame: int,
        auth: dict[str, Any] | None = None,
    ) -> None:
        self.version = version
        self.peer_id = peer_id
        self.name = name
        self.group = group
        self.hub = hub
        self.host = host
        self.port = port
        self.max_frame = max_frame
        self.auth = auth

    def fields(self) -> list[Any]:
        return [
            {
                "version": self.version,
                "id": self.peer_id,
                "name": self.name,
                "group": self.group,
                "hub": self.hub,
                "host": self.host,
                "port": self.port,
                "max_frame": self.max_frame,
                "auth": self.auth,
            }
        ]


class Bye(Message):
    __slots__ = ("reason",)
    kind = BYE

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def fields(self) -> list[Any]:
        return [self.reason]


class Ping(Message):
    __slots__ = ("nonce",)
    kind = PING

    def __init__(self, nonce: int) -> None:
        self.nonce = nonce

    def fields(self) -> list[Any]:
        return [self.nonce]


class Pong(Ping):
    __slots__ = ()
    kind = PONG


class Subscribe(Message):
    __slots__ = ("event", "request_id")
    kind = SUBSCRIBE

    def __init__(self, request_id: int, event: str) -> None:
        self.request_id = request_id
        self.event = event

    def fields(self) -> list[Any]:
        return [self.request_id, self.event]


class Unsubscribe(Subscribe):
    __slots__ = ()
    kind = UNSUBSCRIBE


class Trigger(Message):
    """One event for one subscriber. ``request_id`` 0 means no acknowledgement wanted."""

    __slots__ = ("args", "event", "kwargs", "request_id", "seq")
    kind = TRIGGER

    def __init__(
        self, request_id: int, event: str, seq: int, args: list[Any], kwargs: dict[str, Any]
    ) -> None:
        self.request_id = request_id
        self.event = event
        self.seq = seq
        self.args = args
        self.kwargs = kwargs

    def fields(self) -> list[Any]:
        return [self.request_id, self.event, self.seq, self.args, self.kwargs]


class Events(Message):
    """Consecutive events of one name for one subscriber, in one frame.

    ``entries`` holds one ``[args, kwargs]`` pair per event; the first has
    sequence number ``seq``, the next ``seq + 1`` and so on. A publisher
    sends a run of unacknowledged triggers this way so that the receiver
    decodes, checks and dispatches them with one frame's work instead of
    one per event.
    """

    __slots__ = ("entries", "event", "seq")
    kind = EVENTS

    def __init__(self, event: str, seq: int, entries: list[list[Any]]) -> None:
        self.event = event
        self.seq = seq
        self.entries = entries

    def fields(self) -> list[Any]:
        return [self.event, self.seq, self.entries]


class Call(Message):
    __slots__ = ("args", "connection", "kwargs", "request_id")
    kind = CALL

    def __init__(
        self, request_id: int, connection: str, args: list[Any], kwargs: dict[str, Any]
    ) -> None:
        self.request_id = request_id
        self.connection = connection
        self.args = args
        self.kwargs = kwargs

    def fields(self) -> list[Any]:
        return [self.request_id, self.connection, self.args, self.kwargs]


class Info(Message):
    __slots__ = ("request_id",)
    kind = INFO

    def __init__(self, request_id: int) -> None:
        self.request_id = request_id

    def fields(self) -> list[Any]:
        return [self.request_id]


class Result(Message):
    __slots__ = ("request_id", "value")
    kind = RESULT

    def __init__(self, request_id: int, value: Any) -> None:
        self.request_id = request_id
        self.value = value

    def fields(self) -> list[Any]:
        return [self.request_id, self.value]


class Flag(Message):
    """A special answer to a request, handled by the caller's ``@net.flag`` handler."""

    __slots__ = ("detail", "name", "request_id")
    kind = FLAG

    def __init__(self, request_id: int, name: str, detail: dict[str, Any]) -> None:
        self.request_id = request_id
        self.name = name
        self.detail = detail

    def fields(self) -> list[Any]:
        return [self.request_id, self.name, self.detail]


class Error(Message):
    """A failed request (``request_id`` > 0) or a connection-level complaint (0)."""

    __slots__ = ("code", "message", "request_id", "traceback", "type_name")
    kind = ERROR

    def __init__(
        self, request_id: int, code: str, type_name: str, message: str, traceback: str = ""
    ) -> None:
        self.request_id = request_id
        self.code = code
        self.type_name = type_name
        self.message = message
        self.traceback = traceback

    def fields(self) -> list[Any]:
        return [self.request_id, self.code, self.type_name, self.message, self.traceback]


# --- validation -----------------------------------------------------------


def _request_id(value: Any, *, allow_zero: bool = False) -> int:
    if type(value) is not int or not (0 if allow_zero else 1) <= value <= MAX_REQUEST_ID:
        raise BadMessage(
            E_BAD_MESSAGE, f"request id must be an int in 1..2**32-1, got {value!r:.40}"
        )
    return value


def _name(value: Any, what: str, rid: int) -> str:
    if type(value) is not str or not value or len(value) > MAX_NAME_LEN:
        raise BadMessage(
            E_BAD_MESSAGE, f"{what} must be a non-empty string of at most {MAX_NAME_LEN} chars", rid
        )
    return value


def _text(value: Any, what: str, rid: int) -> str:
    if type(value) is not str or len(value) > MAX_TEXT_LEN:
        raise BadMessage(
            E_BAD_MESSAGE, f"{what} must be a string of at most {MAX_TEXT_LEN} chars", rid
        )
    return value


def _args(value: Any, rid: int) -> list[Any]:
    if type(value) is not list:
        raise BadMessage(E_BAD_MESSAGE, "args must be an array", rid)
    return value


def _kwargs(value: Any, rid: int) -> dict[str, Any]:
    if type(value) is not dict or not all(type(k) is str for k in value):
        raise BadMessage(E_BAD_MESSAGE, "kwargs must be a map with string keys", rid)
    return value


def _arity(body: list[Any], n: int, kind: int) -> None:
    if len(body) != n + 1:
        rid = body[1] if len(body) > 1 and type(body[1]) is int and kind in REQUEST_KINDS else 0
        raise BadMessage(
            E_BAD_MESSAGE,
            f"{KIND_NAMES[kind]} takes {n} fields, got {len(body) - 1}",
            rid if 0 < rid <= MAX_REQUEST_ID else 0,
        )


def parse_hello(body: Any) -> Hello:
    """Validate a HELLO body. Unknown keys are ignored so later versions can add some."""
    if type(body) is not list or len(body) != 2 or body[0] != HELLO or type(body[1]) is not dict:
        raise BadMessage(E_HANDSHAKE, "the first message must be a hello: [0, {...}]")
    d = body[1]
    version = d.get("version")
    if type(version) is not int:
        raise BadMessage(E_HANDSHAKE, "hello.version must be an int")
    peer_id = d.get("id")
    if type(peer_id) is not str or not 1 <= len(peer_id) <= 64:
        raise BadMessage(E_HANDSHAKE, "hello.id must be a string of 1..64 chars")
    name = d.get("name")
    group = d.get("group")
    host = d.get("host")
    for key, val in (("name", name), ("group", group), ("host", host)):
        if type(val) is not str or len(val) > MAX_NAME_LEN:
            raise BadMessage(
                E_HANDSHAKE, f"hello.{key} must be a string of at most {MAX_NAME_LEN} chars"
            )
    hub = d.get("hub")
    if type(hub) is not bool:
        raise BadMessage(E_HANDSHAKE, "hello.hub must be a bool")
    port = d.get("port")
    if type(port) is not int or not 0 <= port <= 65535:
        raise BadMessage(E_HANDSHAKE, "hello.port must be an int in 0..65535")
    max_frame = d.get("max_frame")
    if type(max_frame) is not int or max_frame < 1024:
        raise BadMessage(E_HANDSHAKE, "hello.max_frame must be an int >= 1024")
    auth = d.get("auth")
    if auth is not None and type(auth) is not dict:
        raise BadMessage(E_HANDSHAKE, "hello.auth must be nil or a map")
    return Hello(version, peer_id, name, group, hub, host, port, max_frame, auth)  # type: ignore[arg-type]


def parse(body: Any) -> Message:
    """Turn one decoded frame body into a message, or raise ``BadMessage``."""
    if type(body) is not list or not body:
        raise BadMessage(E_BAD_MESSAGE, "a message must be a non-empty array")
    kind = body[0]
    if kind == TRIGGER and len(body) == 6 and type(kind) is int:  # the hot path first
        rid = _request_id(body[1], allow_zero=True)
        return Trigger(
            rid,
            _name(body[2], "event", rid),
            _seq(body[3], rid),
            _args(body[4], rid),
            _kwargs(body[5], rid),
        )
    if type(kind) is not int or kind not in KIND_NAMES:
        rid = (
            body[1]
            if len(body) > 1 and type(body[1]) is int and 0 < body[1] <= MAX_REQUEST_ID
            else 0
        )
        raise BadMessage(E_UNKNOWN_KIND, f"unknown message kind {kind!r:.40}", rid)
    if kind == RESULT:
        _arity(body, 2, kind)
        return Result(_request_id(body[1]), body[2])
    if kind == CALL:
        _arity(body, 4, kind)
        rid = _request_id(body[1])
        return Call(
            rid, _name(body[2], "connection", rid), _args(body[3], rid), _kwargs(body[4], rid)
        )
    if kind in (PING, PONG):
        _arity(body, 1, kind)
        if type(body[1]) is not int:
            raise BadMessage(E_BAD_MESSAGE, "ping/pong nonce must be an int")
        return Ping(body[1]) if kind == PING else Pong(body[1])
    if kind in (SUBSCRIBE, UNSUBSCRIBE):
        _arity(body, 2, kind)
        rid = _request_id(body[1])
        event = _name(body[2], "event", rid)
        return Subscribe(rid, event) if kind == SUBSCRIBE else Unsubscribe(rid, event)
    if kind == INFO:
        _arity(body, 1, kind)
        return Info(_request_id(body[1]))
    if kind == FLAG:
        _arity(body, 3, kind)
        rid = _request_id(body[1])
        detail = body[3]
        if type(detail) is not dict:
            raise BadMessage(E_BAD_MESSAGE, "flag detail must be a map")
        return Flag(rid, _name(body[2], "flag", 0), detail)
    if kind == ERROR:
        _arity(body, 5, kind)
        rid = _request_id(body[1], allow_zero=True)
        return Error(
            rid,
            _name(body[2], "error code", 0),
            _text(body[3], "error type", 0),
            _text(body[4], "error message", 0),
            _text(body[5], "error traceback", 0),
        )
    if kind == BYE:
        _arity(body, 1, kind)
        return Bye(_text(body[1], "bye reason", 0))
    if kind == EVENTS:
        _arity(body, 3, kind)
        return Events(_name(body[1], "event", 0), _seq(body[2], 0, "events"), _entries(body[3]))
    if kind == TRIGGER:
        _arity(body, 5, kind)
    raise BadMessage(E_HANDSHAKE, "hello is only allowed as the first message")


def _entries(value: Any) -> list[list[Any]]:
    if type(value) is not list or not value:
        raise BadMessage(E_BAD_MESSAGE, "events entries must be a non-empty array")
    for i, entry in enumerate(value):
        if type(entry) is not list or len(entry) != 2:
            raise BadMessage(E_BAD_MESSAGE, f"events entry {i} must be an [args, kwargs] pair")
        _args(entry[0], 0)
        _kwargs(entry[1], 0)
    return value


def _seq(value: Any, rid: int, kind: str = "trigger") -> int:
    if type(value) is not int or value < 0:
        raise BadMessage(E_BAD_MESSAGE, f"{kind} seq must be a non-negative int", rid)
    return value

"""The wire protocol of net, without I/O: messages, msgpack codec, framing and the
connection state machine. Everything here is pure and testable without sockets;
docs/protocol.md describes the same format byte by byte.
"""

from ._connection import (
    ABSOLUTE_MAX_FRAME,
    AWAIT_HELLO,
    CLOSED,
    HEADER_SIZE,
    OPEN,
    Connection,
    FrameTooLarge,
    Violation,
    encode,
    event_args_packer,
    events_overhead,
    frame,
    pack,
    pack_event_args,
    unpack,
)
from ._messages import *  # noqa: F403  (the message vocabulary is the module's API)
from ._messages import PROTOCOL_VERSION, BadMessage, Message

__all__ = [
    "ABSOLUTE_MAX_FRAME",
    "AWAIT_HELLO",
    "CLOSED",
    "HEADER_SIZE",
    "OPEN",
    "PROTOCOL_VERSION",
    "BadMessage",
    "Connection",
    "FrameTooLarge",
    "Message",
    "Violation",
    "encode",
    "event_args_packer",
    "events_overhead",
    "frame",
    "pack",
    "pack_event_args",
    "unpack",
]

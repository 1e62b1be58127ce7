"""The sans-I/O protocol: codec, framing and state machine, without sockets."""

from __future__ import annotations

import ast
import os
import random
import struct
from pathlib import Path

import msgpack
import pytest

from net import protocol as p
from net.protocol import _messages as m


def hello(
    peer_id: str = "a" * 16, max_frame: int = 1 << 20, version: int = m.PROTOCOL_VERSION
) -> m.Hello:
    return m.Hello(version, peer_id, "name", "group", False, "127.0.0.1", 4000, max_frame)


def pair(**kw: int) -> tuple[p.Connection, p.Connection]:
    a, b = p.Connection(hello("a" * 16), **kw), p.Connection(hello("b" * 16), **kw)
    assert b.receive_data(a.hello_bytes())[0] == hello("a" * 16)
    assert a.receive_data(b.hello_bytes())[0] == hello("b" * 16)
    return a, b


ALL_MESSAGES = [
    m.Bye("shutdown"),
    m.Ping(7),
    m.Pong(7),
    m.Subscribe(1, "ev"),
    m.Unsubscribe(2, "ev"),
    m.Trigger(0, "ev", 1, [1, b"x"], {"k": None}),
    m.Trigger(3, "ev", 2, [], {}),
    m.Call(4, "fn", [1.5, "s", [1, 2], {"a": b""}], {"x": True}),
    m.Info(5),
    m.Result(6, {"any": ["value", None, 2**64 - 1]}),
    m.Flag(7, "NULL", {}),
    m.Error(8, "exception", "ValueError", "bad", "Traceback..."),
    m.Error(0, "malformed", "ProtocolError", "x", ""),
]


def test_protocol_package_does_no_io() -> None:
    """Principle 1: the protocol imports only the stdlib's pure modules and msgpack."""
    allowed = {"__future__", "struct", "typing", "msgpack"}
    folder = Path(p.__file__).parent
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [] if node.level else [(node.module or "").split(".")[0]]
            else:
                continue
            for name in names:
                assert name in allowed, f"{path.name} imports {name}"


@pytest.mark.parametrize("msg", ALL_MESSAGES, ids=lambda x: type(x).__name__)
def test_every_message_round_trips(msg: m.Message) -> None:
    a, b = pair()
    out = b.receive_data(a.send(msg))
    assert out == [msg]


def test_frames_fed_one_byte_at_a_time() -> None:
    a, b = pair()
    data = b"".join(a.send(msg) for msg in ALL_MESSAGES[1:])
    got: list[object] = []
    for i in range(len(data)):
        got.extend(b.receive_data(data[i : i + 1]))
    assert got == ALL_MESSAGES[1:]
    assert b.buffered == 0


def test_frame_layout_is_length_prefix_then_msgpack_array() -> None:
    data = p.encode(m.Ping(5))
    assert data == b"\x00\x00\x00\x03" + b"\x92\x02\x05"
    assert struct.unpack(">I", data[:4])[0] == len(data) - 4
    assert msgpack.unpackb(data[4:]) == [2, 5]


def test_spliced_trigger_equals_plain_encoding() -> None:
    a, _ = pair()
    payload = p.pack([1, "two"]) + p.pack({"three": b"3"})
    assert a.trigger_bytes(9, "ev", 42, payload) == p.encode(
        m.Trigger(9, "ev", 42, [1, "two"], {"three": b"3"})
    )


def test_replies_release_in_flight_requests() -> None:
    a, b = pair(max_in_flight=2)
    assert b.receive_data(a.send(m.Call(1, "f", [], {})) + a.send(m.Call(2, "f", [], {})))
    assert b.in_flight == 2
    [v] = b.receive_data(a.send(m.Call(3, "f", [], {})))
    assert isinstance(v, p.Violation) and v.code == m.E_TOO_MANY_REQUESTS and not v.fatal
    assert v.reply is not None and v.reply.request_id == 3
    b.send(m.Result(1, None))
    assert b.in_flight == 1
    assert b.receive_data(a.send(m.Call(3, "f", [], {}))) == [m.Call(3, "f", [], {})]


def test_duplicate_request_id_is_a_violation() -> None:
    a, b = pair()
    b.receive_data(a.send(m.Call(1, "f", [], {})))
    [v] = b.receive_data(a.send(m.Call(1, "f", [], {})))
    assert isinstance(v, p.Violation) and v.code == m.E_DUPLICATE_ID


def test_version_mismatch_is_fatal_with_an_error_to_send() -> None:
    b = p.Connection(hello("b" * 16))
    [v] = b.receive_data(p.encode(hello(version=m.PROTOCOL_VERSION + 1)))
    assert isinstance(v, p.Violation) and v.fatal and v.code == m.E_VERSION
    assert "version 2" in v.message and v.reply is not None
    assert b.state == p.CLOSED
    assert b.receive_data(p.encode(m.Ping(1))) == []


@pytest.mark.parametrize(
    "body",
    [
        [0],
        [0, "not a map"],
        [1, "bye"],
        [0, {"version": 1}],
        [0, {**hello().fields()[0], "id": ""}],
        [0, {**hello().fields()[0], "id": 5}],
        [0, {**hello().fields()[0], "hub": "yes"}],
        [0, {**hello().fields()[0], "port": 70000}],
        [0, {**hello().fields()[0], "max_frame": 10}],
        [0, {**hello().fields()[0], "auth": [1]}],
        [0, {**hello().fields()[0], "name": "x" * 1000}],
    ],
)
def test_bad_hellos_are_fatal(body: list[object]) -> None:
    b = p.Connection(hello("b" * 16))
    [v] = b.receive_data(p.frame(msgpack.packb(body)))
    assert isinstance(v, p.Violation) and v.fatal and v.code == m.E_HANDSHAKE


def test_hello_with_unknown_extra_keys_is_accepted() -> None:
    b = p.Connection(hello("b" * 16))
    body = [0, {**hello().fields()[0], "future_field": [1, 2]}]
    [h] = b.receive_data(p.frame(msgpack.packb(body)))
    assert isinstance(h, m.Hello)


def test_oversized_frame_closes_without_reading_it() -> None:
    _, b = pair()
    [v] = b.receive_data(struct.pack(">I", (1 << 20) + 1))
    assert isinstance(v, p.Violation) and v.fatal and v.code == m.E_FRAME_TOO_LARGE
    assert b.state == p.CLOSED


def test_sending_more_than_the_remote_accepts_raises() -> None:
    a, _ = pair()
    with pytest.raises(p.FrameTooLarge):
        a.send(m.Result(1, b"x" * (1 << 20)))
    with pytest.raises(p.FrameTooLarge):
        a.trigger_bytes(0, "ev", 1, p.pack([b"x" * (1 << 20)]) + p.pack({}))


@pytest.mark.parametrize(
    ("body", "code", "rid"),
    [
        ([99, 4], m.E_UNKNOWN_KIND, 4),
        (["call", 4], m.E_UNKNOWN_KIND, 4),
        ([], m.E_BAD_MESSAGE, 0),
        ({"kind": 7}, m.E_BAD_MESSAGE, 0),
        ([7, 4, "f", "args", {}], m.E_BAD_MESSAGE, 4),
        ([7, 4, "f", [], {1: 2}], m.E_BAD_MESSAGE, 4),
        ([7, 4, "", [], {}], m.E_BAD_MESSAGE, 4),
        ([7, 4, "x" * 300, [], {}], m.E_BAD_MESSAGE, 4),
        ([7, 0, "f", [], {}], m.E_BAD_MESSAGE, 0),
        ([7, -1, "f", [], {}], m.E_BAD_MESSAGE, 0),
        ([7, 2**40, "f", [], {}], m.E_BAD_MESSAGE, 0),
        ([7, 4, "f", []], m.E_BAD_MESSAGE, 4),
        ([6, 0, "ev", -1, [], {}], m.E_BAD_MESSAGE, 0),
        ([6, 0, "ev", 1, [], {}, "extra"], m.E_BAD_MESSAGE, 0),
        ([9, "rid", None], m.E_BAD_MESSAGE, 0),
        ([10, 1, "FLAG", "detail"], m.E_BAD_MESSAGE, 0),
        ([11, 1, "code", "T", 5, ""], m.E_BAD_MESSAGE, 0),
        ([2, "nonce"], m.E_BAD_MESSAGE, 0),
        ([0, {}], m.E_HANDSHAKE, 0),
    ],
)
def test_bad_messages_get_an_error_reply_and_the_stream_goes_on(
    body: object, code: str, rid: int
) -> None:
    a, b = pair()
    items = b.receive_data(p.frame(msgpack.packb(body)) + a.send(m.Ping(1)))
    v = items[0]
    assert isinstance(v, p.Violation) and not v.fatal and v.code == code
    assert v.reply is not None and v.reply.request_id == rid
    assert items[1:] == [m.Ping(1)]


def test_malformed_msgpack_in_an_intact_frame_is_not_fatal() -> None:
    a, b = pair()
    items = b.receive_data(p.frame(b"\xc1") + p.frame(b"\x92\x02") + a.send(m.Ping(2)))
    assert [type(i) for i in items] == [p.Violation, p.Violation, m.Ping]
    assert all(i.code == m.E_MALFORMED for i in items[:2] if isinstance(i, p.Violation))


def test_too_many_violations_close_the_connection() -> None:
    _, b = pair()
    out = b.receive_data(p.frame(b"\xc1") * 20)
    assert isinstance(out[-1], p.Violation) and out[-1].fatal
    assert len(out) == b.max_violations + 1
    assert b.state == p.CLOSED


def test_bye_closes_and_ignores_what_follows() -> None:
    a, b = pair()
    assert b.receive_data(a.send(m.Bye("shutdown")) + os.urandom(64)) == [m.Bye("shutdown")]
    assert b.state == p.CLOSED


def test_random_bytes_never_raise() -> None:
    rng = random.Random(1234)
    for _ in range(300):
        b = p.Connection(hello("b" * 16), max_violations=1000)
        if rng.random() < 0.5:
            b.receive_data(p.encode(hello()))
        for _ in range(5):
            chunk = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
            if rng.random() < 0.5:
                chunk = p.frame(chunk)
            for item in b.receive_data(chunk):
                assert isinstance(item, (m.Message, p.Violation))


def test_unserialisable_values_raise_type_error() -> None:
    a, _ = pair()
    for value in (object(), 2**70, {1, 2}):
        with pytest.raises(TypeError):
            a.send(m.Result(1, value))

"""EVENTS frames (kind 12), without sockets.

``Connection.events_bytes`` splices pre-packed entries into a frame by hand and
``Connection.receive_iter`` decodes EVENTS on an inlined fast path: both must
say exactly what msgpack and ``_messages.parse`` say, hostile input included.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from net import protocol as p
from net.protocol import _connection as c
from net.protocol import _messages as m

BIG_FRAME = 1 << 22


def hello(peer_id: str, max_frame: int = BIG_FRAME) -> m.Hello:
    return m.Hello(m.PROTOCOL_VERSION, peer_id, "n", "g", False, "", 1, max_frame)


def pair(max_frame: int = BIG_FRAME) -> tuple[p.Connection, p.Connection]:
    """Two connections that exchanged HELLOs: ``a`` sends to ``b``."""
    a = p.Connection(hello("a" * 16, max_frame))
    b = p.Connection(hello("b" * 16, max_frame))
    assert isinstance(b.receive_data(a.hello_bytes())[0], m.Hello)
    assert isinstance(a.receive_data(b.hello_bytes())[0], m.Hello)
    assert a.state == b.state == p.OPEN
    return a, b


def entries_for(n: int) -> list[list[Any]]:
    """``n`` distinct ``[args, kwargs]`` entries, every third with kwargs."""
    out: list[list[Any]] = []
    for i in range(n):
        if i % 3 == 0:
            out.append([[i, "x", b"\x00" * (i % 5)], {"k": i, "s": "v"}])
        else:
            out.append([[i], {}])
    return out


def payloads_for(entries: list[list[Any]]) -> list[bytes]:
    return [p.pack_event_args(args, kwargs) for args, kwargs in entries]


def decode(body: bytes) -> Any:
    return msgpack.unpackb(body, raw=False, strict_map_key=False)


COUNTS = [1, 2, 15, 16, 17, 300, 70000]
SEQS = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1]
NAMES = ["ev", "e" * 31, "e" * 32, "n" * m.MAX_NAME_LEN, "ünï"]

# --- encoding -------------------------------------------------------------------------


@pytest.mark.parametrize("seq", SEQS)
@pytest.mark.parametrize("count", COUNTS)
def test_events_bytes_equal_msgpack_encoding_and_decode_back(count: int, seq: int) -> None:
    a, b = pair()
    entries = entries_for(count)
    data = a.events_bytes("ev", seq, payloads_for(entries))
    assert data == p.encode(m.Events("ev", seq, entries))
    # and what a receiver makes of it: one EVENTS with the same fields
    got = b.receive_data(data)
    assert got == [m.Events("ev", seq, entries)]
    [msg] = got
    assert isinstance(msg, m.Events)
    assert msg.event == "ev" and msg.seq == seq and msg.entries == entries
    assert b.buffered == 0 and b.violations == 0


@pytest.mark.parametrize("count", [15, 16, 0xFFFF, 0x10000])
def test_array_header_boundaries(count: int) -> None:
    """fixarray up to 15 entries, array16 up to 65535, array32 beyond."""
    a, b = pair()
    payloads = [b"\x90\x80"] * count  # [[], {}]
    data = a.events_bytes("ev", 1, payloads)
    body = data[p.HEADER_SIZE :]
    head = body[2 + len(p.pack("ev")) + 1 :]
    if count < 16:
        assert head[0] == 0x90 | count
    elif count <= 0xFFFF:
        assert head[0] == 0xDC and int.from_bytes(head[1:3], "big") == count
    else:
        assert head[0] == 0xDD and int.from_bytes(head[1:5], "big") == count
    assert data == p.encode(m.Events("ev", 1, [[[], {}]] * count))
    [msg] = b.receive_data(data)
    assert isinstance(msg, m.Events) and len(msg.entries) == count


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seq", [0, 70000, 2**40])
def test_events_bytes_for_names_of_every_str_size_class(name: str, seq: int) -> None:
    a, b = pair()
    entries = entries_for(20)
    data = a.events_bytes(name, seq, payloads_for(entries))
    assert data == p.encode(m.Events(name, seq, entries))
    assert b.receive_data(data) == [m.Events(name, seq, entries)]


def test_events_bytes_matches_the_documented_example() -> None:
    """docs/protocol.md: temperature(21.5, unit="C") and (22.0, unit="C") from seq 1."""
    a, _ = pair()
    payloads = [
        p.pack_event_args((21.5,), {"unit": "C"}),
        p.pack_event_args((22.0,), {"unit": "C"}),
    ]
    data = a.events_bytes("temperature", 1, payloads)
    entry1 = b"\x92\x91\xcb\x40\x35\x80\x00\x00\x00\x00\x00\x81\xa4unit\xa1C"
    entry2 = b"\x92\x91\xcb\x40\x36\x00\x00\x00\x00\x00\x00\x81\xa4unit\xa1C"
    body = b"\x94\x0c\xabtemperature\x01\x92" + entry1 + entry2
    assert len(body) == 0x36
    assert data == b"\x00\x00\x00\x36" + body


@pytest.mark.parametrize("seq", [0, 200, 70000, 2**33])
@pytest.mark.parametrize("name", NAMES)
def test_events_overhead_bounds_everything_but_the_entries(name: str, seq: int) -> None:
    """The link sizes batches with ``events_overhead``: it must be an upper bound."""
    a, _ = pair()
    for count in (1, 15, 16, 128, 70000):
        payloads = [b"\x90\x80"] * count
        body_len = len(a.events_bytes(name, seq, payloads)) - p.HEADER_SIZE
        entry_bytes = sum(len(x) + 1 for x in payloads)
        assert body_len - entry_bytes <= p.events_overhead(name)


def test_events_bytes_refuses_an_empty_run() -> None:
    a, _ = pair()
    with pytest.raises(ValueError, match="at least one event"):
        a.events_bytes("ev", 1, [])


def test_events_bytes_raises_frame_too_large_over_the_remote_limit() -> None:
    a, _ = pair(max_frame=1024)
    assert a.remote_max_frame == 1024
    with pytest.raises(p.FrameTooLarge, match="exceed the remote's limit of 1024 bytes"):
        a.events_bytes("ev", 1, [p.pack_event_args((b"x" * 600,), {})] * 2)
    # FrameTooLarge is a ValueError, which is what callers catch
    assert issubclass(p.FrameTooLarge, ValueError)


def test_events_bytes_limit_is_exact() -> None:
    a, _ = pair()
    payloads = payloads_for(entries_for(40))
    size = len(a.events_bytes("ev", 5, payloads)) - p.HEADER_SIZE
    a.remote_max_frame = size
    assert len(a.events_bytes("ev", 5, payloads)) == size + p.HEADER_SIZE
    a.remote_max_frame = size - 1
    with pytest.raises(p.FrameTooLarge):
        a.events_bytes("ev", 5, payloads)


# --- decoding -------------------------------------------------------------------------


def test_events_mixed_with_other_messages_keep_their_order() -> None:
    a, b = pair()
    e1 = m.Events("a", 1, [[[1], {}], [[2], {"k": 3}]])
    e2 = m.Events("b", 3, [[[3], {}]])
    msgs: list[m.Message] = [
        e1,
        m.Trigger(0, "a", 4, [4], {}),
        m.Ping(9),
        e2,
        m.Trigger(7, "b", 5, [], {}),
        m.Events("a", 6, [[[6], {}]] * 200),
    ]
    data = b"".join(
        a.events_bytes(x.event, x.seq, payloads_for(x.entries))
        if isinstance(x, m.Events)
        else a.send(x)
        for x in msgs
    )
    assert list(b.receive_iter(data)) == msgs
    assert b.in_flight == 1  # the acknowledged TRIGGER; EVENTS are never requests


def test_events_frame_fed_in_pieces() -> None:
    a, b = pair()
    entries = entries_for(300)
    data = a.events_bytes("ev", 77, payloads_for(entries))
    assert b.receive_data(data[:3]) == []
    assert b.receive_data(data[3 : len(data) // 2]) == []  # a truncated frame waits
    assert b.buffered == len(data) // 2
    assert b.receive_data(data[len(data) // 2 :]) == [m.Events("ev", 77, entries)]
    assert b.buffered == 0


def test_events_before_hello_is_a_fatal_handshake_error() -> None:
    a, _ = pair()
    fresh = p.Connection(hello("c" * 16))
    [v] = fresh.receive_data(a.events_bytes("ev", 1, [b"\x90\x80"]))
    assert isinstance(v, p.Violation) and v.fatal and v.code == m.E_HANDSHAKE
    assert fresh.state == p.CLOSED


# --- hostile bodies -------------------------------------------------------------------

GOOD_ENTRY: list[Any] = [[1], {}]

#: (id, body, code, a fragment of the message the violation must carry)
HOSTILE: list[tuple[str, Any, str, str]] = [
    ("entries empty", [12, "ev", 1, []], m.E_BAD_MESSAGE, "entries must be a non-empty array"),
    ("entries a string", [12, "ev", 1, "x"], m.E_BAD_MESSAGE, "non-empty array"),
    ("entries a map", [12, "ev", 1, {"a": 1}], m.E_BAD_MESSAGE, "non-empty array"),
    ("entries nil", [12, "ev", 1, None], m.E_BAD_MESSAGE, "non-empty array"),
    ("entry an int", [12, "ev", 1, [GOOD_ENTRY, 5]], m.E_BAD_MESSAGE, "entry 1 must be"),
    ("entry a 1-list", [12, "ev", 1, [[[1]]]], m.E_BAD_MESSAGE, "entry 0 must be"),
    ("entry a 3-list", [12, "ev", 1, [[[], {}, 3]]], m.E_BAD_MESSAGE, "[args, kwargs] pair"),
    ("entry a map", [12, "ev", 1, [{"a": 1}]], m.E_BAD_MESSAGE, "[args, kwargs] pair"),
    ("args a map", [12, "ev", 1, [[{}, {}]]], m.E_BAD_MESSAGE, "args must be an array"),
    ("args a string", [12, "ev", 1, [GOOD_ENTRY, ["s", {}]]], m.E_BAD_MESSAGE, "args must be"),
    ("args nil", [12, "ev", 1, [[None, {}]]], m.E_BAD_MESSAGE, "args must be an array"),
    ("kwargs int key", [12, "ev", 1, [[[], {1: 2}]]], m.E_BAD_MESSAGE, "string keys"),
    ("kwargs mixed keys", [12, "ev", 1, [[[], {"a": 1, 2: 3}]]], m.E_BAD_MESSAGE, "string keys"),
    ("kwargs bin key", [12, "ev", 1, [[[], {b"k": 1}]]], m.E_BAD_MESSAGE, "string keys"),
    ("kwargs a list", [12, "ev", 1, [[[], []]]], m.E_BAD_MESSAGE, "kwargs must be a map"),
    ("kwargs nil", [12, "ev", 1, [[[], None]]], m.E_BAD_MESSAGE, "kwargs must be a map"),
    ("negative seq", [12, "ev", -1, [GOOD_ENTRY]], m.E_BAD_MESSAGE, "seq must be a non-negative"),
    ("very negative seq", [12, "ev", -(2**63), [GOOD_ENTRY]], m.E_BAD_MESSAGE, "non-negative"),
    ("float seq", [12, "ev", 1.0, [GOOD_ENTRY]], m.E_BAD_MESSAGE, "seq must be"),
    ("str seq", [12, "ev", "1", [GOOD_ENTRY]], m.E_BAD_MESSAGE, "seq must be"),
    ("bool seq", [12, "ev", True, [GOOD_ENTRY]], m.E_BAD_MESSAGE, "seq must be"),
    ("nil seq", [12, "ev", None, [GOOD_ENTRY]], m.E_BAD_MESSAGE, "seq must be"),
    ("empty name", [12, "", 1, [GOOD_ENTRY]], m.E_BAD_MESSAGE, "event must be a non-empty"),
    (
        "long name",
        [12, "x" * (m.MAX_NAME_LEN + 1), 1, [GOOD_ENTRY]],
        m.E_BAD_MESSAGE,
        "at most 256",
    ),
    ("int name", [12, 7, 1, [GOOD_ENTRY]], m.E_BAD_MESSAGE, "event must be"),
    ("bin name", [12, b"ev", 1, [GOOD_ENTRY]], m.E_BAD_MESSAGE, "event must be"),
    ("nil name", [12, None, 1, [GOOD_ENTRY]], m.E_BAD_MESSAGE, "event must be"),
    ("3 elements", [12, "ev", 1], m.E_BAD_MESSAGE, "events takes 3 fields, got 2"),
    ("5 elements", [12, "ev", 1, [GOOD_ENTRY], 5], m.E_BAD_MESSAGE, "events takes 3 fields, got 4"),
    ("kind alone", [12], m.E_BAD_MESSAGE, "events takes 3 fields, got 0"),
    (
        "bad entry after many good",
        [12, "ev", 1, [GOOD_ENTRY] * 500 + [[[], 1]]],
        m.E_BAD_MESSAGE,
        "kwargs",
    ),
]


def _fast(body: bytes) -> list[m.Message | p.Violation]:
    """What ``receive_iter`` (the inlined path) yields for one framed body."""
    _, b = pair()
    return list(b.receive_iter(p.frame(body)))


def _general(body: bytes) -> m.Message | p.Violation | None:
    """What the general path (``_receive_frame`` -> ``_messages.parse``) makes of it."""
    _, b = pair()
    return b._receive_frame(memoryview(body))


def _same(x: object, y: object) -> bool:
    if isinstance(x, p.Violation) and isinstance(y, p.Violation):
        return (x.code, x.message, x.fatal, x.reply) == (y.code, y.message, y.fatal, y.reply)
    return x == y


@pytest.mark.parametrize(
    ("body", "code", "fragment"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_hostile_events_bodies_are_non_fatal_and_the_stream_goes_on(
    body: Any, code: str, fragment: str
) -> None:
    a, b = pair()
    packed = msgpack.packb(body, use_bin_type=True)
    good = m.Events("ev", 2, [[[2], {"k": "v"}]])
    data = p.frame(packed) + a.events_bytes("ev", 2, payloads_for(good.entries))
    got = list(b.receive_iter(data))
    assert len(got) == 2, got
    v, after = got
    assert isinstance(v, p.Violation), v
    assert not v.fatal and v.code == code
    assert fragment in v.message, v.message
    assert v.reply == m.Error(0, code, "ProtocolError", v.message)
    assert after == good  # the connection still decodes the next frame
    assert b.state == p.OPEN and b.violations == 1 and b.in_flight == 0

    # the inlined path and the general path say the same, and that is what parse raises
    [fast] = _fast(packed)
    assert _same(fast, _general(packed))
    with pytest.raises(m.BadMessage) as raised:
        m.parse(decode(packed))
    assert (raised.value.code, raised.value.message, raised.value.request_id) == (
        v.code,
        v.message,
        0,
    )


VALID_BODIES: list[Any] = [
    [12, "ev", 0, [GOOD_ENTRY]],
    [12, "ev", 2**64 - 1, [GOOD_ENTRY]],
    [12, "x" * m.MAX_NAME_LEN, 1, [GOOD_ENTRY]],
    [12, "ev", 1, [[[], {}]] * 17],
    [12, "ev", 1, [[[{1: 2}, [None], b"b"], {"k": {3: 4}}]]],  # non-str keys inside values are fine
    [12, "ev", 1, [[[1.5, -3, True], {"": None}]]],  # an empty-string kwarg name is a str key
]


@pytest.mark.parametrize("body", VALID_BODIES, ids=lambda b: repr(b)[:60])
def test_valid_events_bodies_agree_with_parse(body: Any) -> None:
    packed = msgpack.packb(body, use_bin_type=True)
    [fast] = _fast(packed)
    expected = m.parse(decode(packed))
    assert isinstance(fast, m.Events)
    assert fast == expected == _general(packed)


def test_float_kind_12_is_rejected_like_parse_does() -> None:
    packed = msgpack.packb([12.0, "ev", 1, [GOOD_ENTRY]])
    with pytest.raises(m.BadMessage) as raised:
        m.parse(decode(packed))
    assert raised.value.code == m.E_UNKNOWN_KIND
    [fast] = _fast(packed)
    assert isinstance(fast, p.Violation) and fast.code == m.E_UNKNOWN_KIND


def _valid_events_body() -> bytes:
    return bytes(msgpack.packb([12, "ev", 1, [[[1, 2, 3], {"k": "v"}], [[4], {}]]]))


UNDECODABLE: list[tuple[str, bytes]] = [
    ("truncated body", _valid_events_body()[:-4]),
    ("truncated inside an entry", _valid_events_body()[:12]),
    ("header only", b"\x94\x0c"),
    ("garbage byte inside entries", _valid_events_body()[:-1] + b"\xc1"),
    ("reserved byte at start", b"\xc1" + _valid_events_body()),
    ("trailing data", _valid_events_body() + b"\x00"),
    ("declares more entries than it has", b"\x94\x0c\xa2ev\x01\xdd\x00\x01\x00\x00\x92\x90\x80"),
    ("empty body", b""),
]


@pytest.mark.parametrize("body", [u[1] for u in UNDECODABLE], ids=[u[0] for u in UNDECODABLE])
def test_undecodable_events_frames_are_malformed_not_fatal(body: bytes) -> None:
    a, b = pair()
    good = m.Events("ev", 9, [[[9], {}]])
    data = p.frame(body) + a.events_bytes("ev", 9, payloads_for(good.entries))
    got = list(b.receive_iter(data))
    assert len(got) == 2, got
    v, after = got
    assert isinstance(v, p.Violation) and not v.fatal
    assert v.code == m.E_MALFORMED and v.message.startswith("undecodable frame")
    assert v.reply is not None and v.reply.code == m.E_MALFORMED
    assert after == good
    [fast] = _fast(body)
    assert _same(fast, _general(body))


def test_too_many_hostile_events_close_the_connection() -> None:
    a = p.Connection(hello("a" * 16))
    b = p.Connection(hello("b" * 16), max_violations=3)
    b.receive_data(a.hello_bytes())
    bad = p.frame(msgpack.packb([12, "ev", 1, []]))
    out = b.receive_data(bad * 5 + a.events_bytes("ev", 1, [b"\x90\x80"]))
    assert [type(x) for x in out] == [p.Violation] * 4
    assert [x.fatal for x in out if isinstance(x, p.Violation)] == [False, False, False, True]
    assert b.state == p.CLOSED


def test_events_frames_fed_one_byte_at_a_time() -> None:
    a, b = pair()
    runs = [m.Events("ev", 1 + 20 * i, entries_for(20)) for i in range(3)]
    data = b"".join(a.events_bytes(r.event, r.seq, payloads_for(r.entries)) for r in runs)
    got: list[object] = []
    for i in range(len(data)):
        got.extend(b.receive_iter(data[i : i + 1]))
    assert got == runs and b.buffered == 0


def test_encoder_pools_and_name_cache_do_not_leak_between_frames() -> None:
    """The cached packed name and pooled packers give the same bytes however
    events_bytes calls are interleaved with other encoding."""
    a, _ = pair()
    first = a.events_bytes("cache-me", 3, payloads_for(entries_for(5)))
    c._names.pop("cache-me", None)
    p.pack(["unrelated", b"x" * 1000])
    again = a.events_bytes("cache-me", 3, payloads_for(entries_for(5)))
    cached = a.events_bytes("cache-me", 3, payloads_for(entries_for(5)))
    assert first == again == cached == p.encode(m.Events("cache-me", 3, entries_for(5)))

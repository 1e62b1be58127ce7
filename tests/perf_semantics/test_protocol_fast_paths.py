"""The protocol's fast paths say exactly what the general code says.

TRIGGER decoding is inlined in ``Connection.receive_iter`` and TRIGGER
encoding splices cached names and hand-encoded ints: both must agree with
``_messages.parse`` and with msgpack byte for byte, hostile input included.
"""

from __future__ import annotations

import random
import threading

import msgpack
import pytest

from net import protocol as p
from net.protocol import _connection as c
from net.protocol import _messages as m


def hello(peer_id: str) -> m.Hello:
    return m.Hello(m.PROTOCOL_VERSION, peer_id, "n", "g", False, "", 1, 1 << 20)


def pair() -> tuple[p.Connection, p.Connection]:
    a, b = p.Connection(hello("a" * 16)), p.Connection(hello("b" * 16))
    b.receive_data(a.hello_bytes())
    a.receive_data(b.hello_bytes())
    return a, b


INTS = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1]


@pytest.mark.parametrize("seq", INTS)
@pytest.mark.parametrize("rid", [0, 1, 127, 128, 65536, 2**32 - 1])
def test_trigger_bytes_equal_msgpack_encoding(rid: int, seq: int) -> None:
    a, _ = pair()
    payload = p.pack([1, "x"]) + p.pack({"k": b"v"})
    assert a.trigger_bytes(rid, "ev", seq, payload) == p.encode(
        m.Trigger(rid, "ev", seq, [1, "x"], {"k": b"v"})
    )


def test_uint_matches_msgpack_everywhere() -> None:
    rng = random.Random(7)
    values = INTS + [rng.randrange(0, 2**64) for _ in range(500)]
    for v in values:
        assert c._uint(v) == msgpack.packb(v), v


def test_event_name_cache_is_bounded() -> None:
    a, _ = pair()
    for i in range(c._NAMES_MAX + 10):
        a.trigger_bytes(0, f"event-{i}", 1, b"\x90\x80")
    assert len(c._names) <= c._NAMES_MAX


TRIGGER_BODIES = [
    [6, 0, "ev", 1, [1], {}],
    [6, 5, "ev", 1, [], {"a": 1}],
    [6, 0, "ev", 0, [], {}],
    [6, -1, "ev", 1, [], {}],
    [6, 2**32, "ev", 1, [], {}],
    [6, 0, "", 1, [], {}],
    [6, 0, "x" * 257, 1, [], {}],
    [6, 0, 7, 1, [], {}],
    [6, 0, "ev", -1, [], {}],
    [6, 0, "ev", 1.5, [], {}],
    [6, 0, "ev", 1, "args", {}],
    [6, 0, "ev", 1, [], []],
    [6, 0, "ev", 1, [], {1: 2}],
    [6, 0, "ev", 1, [], {"a": 1, 2: 3}],
    [6, True, "ev", 1, [], {}],
    [6.0, 0, "ev", 1, [], {}],
]


CALL_AND_RESULT_BODIES = [
    [7, 1, "fn", [1, "x"], {}],
    [7, 2**32 - 1, "fn", [], {"k": [1]}],
    [7, 0, "fn", [], {}],
    [7, -1, "fn", [], {}],
    [7, 2**32, "fn", [], {}],
    [7, True, "fn", [], {}],
    [7, 1, "", [], {}],
    [7, 1, "x" * 257, [], {}],
    [7, 1, 5, [], {}],
    [7, 1, "fn", "args", {}],
    [7, 1, "fn", [], []],
    [7, 1, "fn", [], {1: 2}],
    [7, 1, "fn", []],
    [7, 1, "fn", [], {}, "extra"],
    [7.0, 1, "fn", [], {}],
    [9, 1, {"any": "value"}],
    [9, 0, None],
    [9, -3, None],
    [9, 2**32, None],
    [9, "1", None],
    [9.0, 1, None],
    [9, 1],
]


@pytest.mark.parametrize("body", TRIGGER_BODIES + CALL_AND_RESULT_BODIES, ids=repr)
def test_inlined_checks_agree_with_parse(body: list[object]) -> None:
    """The decoder's fast paths (TRIGGER, CALL, RESULT) yield what parse makes
    of the same body, or the violation its BadMessage describes."""
    _, b = pair()
    [got] = b.receive_data(p.frame(msgpack.packb(body)))
    try:
        expected = m.parse(body)
    except m.BadMessage as exc:
        assert isinstance(got, p.Violation) and not got.fatal
        assert got.code == exc.code and got.reply is not None
        assert got.reply.request_id == exc.request_id
    else:
        assert got == expected


def test_calls_on_the_fast_path_count_as_requests_in_flight() -> None:
    _, b = pair()
    b.max_in_flight = 2
    call = p.encode(m.Call(4, "fn", [], {}))
    assert b.receive_data(call) == [m.Call(4, "fn", [], {})]
    [v] = b.receive_data(call)  # the same id again, unanswered
    assert isinstance(v, p.Violation) and v.code == m.E_DUPLICATE_ID
    assert b.receive_data(p.encode(m.Call(5, "fn", [], {}))) == [m.Call(5, "fn", [], {})]
    [v] = b.receive_data(p.encode(m.Call(6, "fn", [], {})))  # over the limit
    assert isinstance(v, p.Violation) and v.code == m.E_TOO_MANY_REQUESTS
    b.send(m.Result(4, None))
    assert b.in_flight == 1


def test_acknowledged_triggers_count_as_requests_in_flight() -> None:
    _, b = pair()
    frame = p.encode(m.Trigger(3, "ev", 1, [], {}))
    assert b.receive_data(frame) == [m.Trigger(3, "ev", 1, [], {})]
    assert b.in_flight == 1
    [v] = b.receive_data(frame)  # the same id again, unanswered
    assert isinstance(v, p.Violation) and v.code == m.E_DUPLICATE_ID
    b.send(m.Result(3, True))
    assert b.in_flight == 0


def test_receive_iter_yields_what_receive_data_returns() -> None:
    a, b1 = pair()
    _, b2 = pair()
    msgs = [m.Trigger(0, "ev", i, [i], {}) for i in range(1, 50)] + [m.Ping(1)]
    data = b"".join(a.send(x) for x in msgs) + b"\x00\x00"  # and a partial header
    assert list(b1.receive_iter(data)) == b2.receive_data(data) == msgs
    assert b1.buffered == b2.buffered == 2


def test_receive_iter_closed_early_keeps_the_rest_for_the_next_read() -> None:
    """A reader that stops early (e.g. cancelled) leaves the stream aligned."""
    a, b = pair()
    data = b"".join(a.send(m.Ping(i)) for i in range(10))
    it = b.receive_iter(data)
    assert next(it) == m.Ping(0)
    assert next(it) == m.Ping(1)
    it.close()
    # the frames not taken stay buffered and come out, in order, on the next feed
    assert b.buffered == len(data) - 2 * len(a.send(m.Ping(0)))
    assert b.receive_data(a.send(m.Ping(99))) == [m.Ping(i) for i in range(2, 10)] + [m.Ping(99)]


def test_pooled_packers_are_never_shared_between_threads() -> None:
    """``pack`` takes a Packer from a pool: many threads packing at once get
    exactly what msgpack would give each of them."""
    errors: list[str] = []
    values = [
        {"i": i, "s": "x" * (i % 50), "b": bytes(i % 7), "l": list(range(i % 9))}
        for i in range(300)
    ]
    expected = [msgpack.packb(v, use_bin_type=True) for v in values]

    def work() -> None:
        for _ in range(20):
            for v, e in zip(values, expected, strict=True):
                if p.pack(v) != e:
                    errors.append(repr(v))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors


def test_pack_errors_leave_the_pooled_packer_clean() -> None:
    for bad in (object(), 2**70, {1, 2}):
        with pytest.raises(TypeError):
            p.pack([1, 2, bad])
        assert p.pack([1]) == b"\x91\x01"


def test_large_outputs_do_not_keep_big_packers_pooled() -> None:
    p.pack(b"x" * (c._POOL_MAX_OUTPUT + 1))
    assert p.pack({"a": 1}) == msgpack.packb({"a": 1})


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1, "x", b"y"), {}), ([{"a": [1.5]}], {"k": None}), (tuple(range(20)), {"x": 1})],
)
def test_pack_event_args_is_the_two_packs_back_to_back(
    args: tuple[object, ...] | list[object], kwargs: dict[str, object]
) -> None:
    assert c.pack_event_args(args, kwargs) == p.pack(list(args)) + p.pack(kwargs)


def test_pack_event_args_refuses_what_msgpack_cannot_carry() -> None:
    with pytest.raises(TypeError):
        c.pack_event_args((object(),), {})


def test_a_peers_own_packer_packs_like_pack_event_args_and_survives_errors() -> None:
    pack_args = p.event_args_packer()
    values: list[tuple[tuple[object, ...], dict[str, object]]] = [
        ((), {}),
        ((1, "x", b"y"), {"k": None}),
        ((b"z" * (600 * 1024),), {}),  # grows its buffer past the pool's limit: replaced
        (([{"a": [1.5]}], 2**63), {"x": -1}),
    ]
    for args, kwargs in values:
        assert pack_args(args, kwargs) == c.pack_event_args(args, kwargs)
    for bad in ((object(),), (2**64,), ("ok", {1j: 2})):
        with pytest.raises(TypeError):
            pack_args(bad, {})
        # nothing of the failed value is left in the packer
        assert pack_args((1,), {}) == p.pack([1]) + p.pack({})

"""Garbage, truncated and oversized input sent to a live peer in another process:
the offender gets an error (where one can be sent) and is cut off when the
stream can't be trusted; everyone else keeps being served correctly."""

from __future__ import annotations

import os
import socket
import struct
import time

import msgpack
import pytest
import trio

import net
from net import protocol as p
from net.protocol import _messages as m
from tests.procs import base_env, processes


def _hello(max_frame: int = 1 << 20, version: int = m.PROTOCOL_VERSION) -> bytes:
    return p.encode(
        m.Hello(version, os.urandom(8).hex(), "evil", "default", False, "", 1, max_frame)
    )


def _frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def _read_messages(sock: socket.socket, timeout: float = 1.0) -> tuple[list[object], bool]:
    """Everything the peer sends until it closes (or the timeout); returns (messages, closed)."""
    sock.settimeout(timeout)
    conn = p.Connection(m.Hello(m.PROTOCOL_VERSION, "x" * 8, "t", "g", False, "", 1, 16 << 20))
    out: list[object] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return out, False
        except ConnectionResetError:
            return out, True
        if not data:
            return out, True
        out.extend(conn.receive_data(data))
    return out, False


def _errors(items: list[object]) -> list[m.Error]:
    return [i for i in items if isinstance(i, m.Error)]


ABUSES = {
    "random garbage": lambda: os.urandom(4096),
    "oversized length prefix": lambda: _hello() + struct.pack(">I", 2**31) + b"x" * 100,
    "truncated frame then close": lambda: _hello() + struct.pack(">I", 1000) + b"\x92\x07",
    "malformed msgpack": lambda: _hello() + _frame(b"\xc1\xc1\xc1"),
    "unknown kind": lambda: _hello() + _frame(msgpack.packb([99, 5, "x"])),
    "wrongly typed fields": lambda: (
        _hello() + _frame(msgpack.packb([7, 3, 12345, "not-a-list", 7]))
    ),
    "wrong version": lambda: _hello(version=999),
    "no hello": lambda: _frame(msgpack.packb([7, 1, "echo", [], {}])),
    "bye then garbage": lambda: _hello() + p.encode(m.Bye("x")) + os.urandom(100),
    "deep nesting": lambda: _hello() + _frame(b"\x91" * 5000 + b"\xc0"),
    "huge declared array": lambda: _hello() + _frame(b"\xdd\xff\xff\xff\xff"),
    "empty frame": lambda: _hello() + _frame(b""),
}


async def test_hostile_input_leaves_the_peer_serving_others() -> None:
    with processes() as spawn:
        server = spawn("server", base_env(NET_PORT=0, NET_MAX_FRAME=1 << 20))
        port = server.expect_key("port")["port"]
        address = f"127.0.0.1:{port}"
        async with net.Peer("good-client", port=0, host="127.0.0.1") as me:
            assert await me.call(address, "echo", 1) == [[1], {}]
            results = {}
            for name, make in ABUSES.items():

                def abuse(data: bytes = make(), name: str = name) -> tuple[list[object], bool]:
                    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
                        sock.sendall(data)
                        if name == "truncated frame then close":
                            sock.shutdown(socket.SHUT_WR)
                        return _read_messages(sock)

                results[name] = await trio.to_thread.run_sync(abuse)
                # the good client is still served, correctly, after every abuse
                assert await me.call(address, "echo", name, n=1) == [[name], {"n": 1}]
            for name in ("oversized length prefix", "wrong version", "no hello", "random garbage"):
                items, closed = results[name]
                assert closed, f"{name}: connection should be closed"
            for name in (
                "oversized length prefix",
                "wrong version",
                "no hello",
                "malformed msgpack",
                "unknown kind",
                "wrongly typed fields",
                "empty frame",
                "deep nesting",
                "huge declared array",
            ):
                items, _ = results[name]
                assert _errors(items), f"{name}: expected an error reply, got {items!r}"
            codes = {name: [e.code for e in _errors(results[name][0])] for name in results}
            assert m.E_FRAME_TOO_LARGE in codes["oversized length prefix"]
            assert m.E_VERSION in codes["wrong version"]
            assert m.E_UNKNOWN_KIND in codes["unknown kind"]
            assert m.E_BAD_MESSAGE in codes["wrongly typed fields"]
            # the typed-field error names the request it answers
            assert [e.request_id for e in _errors(results["wrongly typed fields"][0])] == [3]
            info = await me.remote_info(address)
            assert info["counters"]["protocol_errors"] >= 8
            assert await me.call(address, "pass_through", b"ok") == b"ok"


@pytest.mark.parametrize("flood", [2000])
async def test_request_flood_beyond_in_flight_limit_is_refused_not_queued(flood: int) -> None:
    with processes() as spawn:
        server = spawn("server", base_env(NET_PORT=0, NET_MAX_IN_FLIGHT=8))
        port = server.expect_key("port")["port"]

        def abuse() -> list[object]:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                data = _hello() + b"".join(
                    p.encode(m.Call(i, "slow", [1], {})) for i in range(1, flood + 1)
                )
                sock.sendall(data)
                items, _ = _read_messages(sock, timeout=1.5)
                return items

        items = await trio.to_thread.run_sync(abuse)
        refused = [e for e in _errors(items) if e.code == m.E_TOO_MANY_REQUESTS]
        assert len(refused) >= flood - 8 - 20  # a few may be answered before the flood ends
        async with net.Peer("good-client", port=0, host="127.0.0.1") as me:
            assert await me.call(f"127.0.0.1:{port}", "echo", 2) == [[2], {}]

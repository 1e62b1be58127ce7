"""Separate OS processes on 127.0.0.1, configured only through NET_* variables."""

from __future__ import annotations

import signal
import time

import pytest
import trio

import net
from tests.procs import base_env, free_port, processes


def test_subscriber_gets_every_event_in_order_including_1mib_ones() -> None:
    with processes() as spawn:
        pub = spawn("publisher", base_env(NET_PORT=0, COUNT=2000, BIG=5))
        port = pub.expect_key("port")["port"]
        sub = spawn("subscriber", base_env(NET_PORT=0, NET_PEERS=f"127.0.0.1:{port}"))
        summary = sub.expect_key("done", timeout=30)
        assert summary["received"] == 2000
        assert summary["in_order"] and summary["complete"]
        assert summary["big"] == 5 and summary["distinct_big"] == 1


def test_subscriber_started_first_and_publisher_restart() -> None:
    port = free_port()
    with processes() as spawn:
        sub = spawn("subscriber", base_env(NET_PORT=0, NET_PEERS=f"127.0.0.1:{port}"))
        sub.expect_key("id")
        pub = spawn("publisher", base_env(NET_PORT=port, NET_PORT_RANGE=1, COUNT=50), "publisher-1")
        assert pub.expect_key("port")["port"] == port
        first = sub.expect_key("done", timeout=20)
        assert first["complete"]
        pub.signal(signal.SIGTERM)
        assert pub.wait(10) == 0
        pub2 = spawn(
            "publisher", base_env(NET_PORT=port, NET_PORT_RANGE=1, COUNT=70), "publisher-2"
        )
        assert pub2.expect_key("port")["port"] == port
        second = sub.expect_key("done", timeout=20)
        assert second["done"] == 70 and second["complete"]


@pytest.mark.parametrize("how", ["SIGKILL", "SIGSTOP"])
def test_dead_subscriber_is_pruned_while_publisher_keeps_triggering(how: str) -> None:
    timeout = 1.0
    env = dict(NET_PORT=0, NET_HEARTBEAT_INTERVAL=0.2, NET_HEARTBEAT_TIMEOUT=timeout)
    with processes() as spawn:
        pub = spawn("publisher", base_env(**env, FOREVER=1, SUBSCRIBERS=2))
        port = pub.expect_key("port")["port"]
        victim = spawn("subscriber", base_env(**env, NET_PEERS=f"127.0.0.1:{port}"), "victim")
        victim_id = victim.expect_key("id")["id"]
        other = spawn("subscriber", base_env(**env, NET_PEERS=f"127.0.0.1:{port}"), "other")
        other.expect_key("id")
        pub.expect(lambda o: len(o.get("subscribers", [])) == 2)
        other.expect(lambda o: o.get("received", 0) > 100)
        killed_at = time.monotonic()
        victim.signal(signal.SIGKILL if how == "SIGKILL" else signal.SIGSTOP)
        report = pub.expect(lambda o: len(o.get("subscribers", [2, 2])) == 1, timeout=10)
        detected = time.monotonic() - killed_at
        # a killed process closes its socket (EOF); a stopped one only stops answering
        bound = timeout + 0.5 if how == "SIGSTOP" else 0.5 + 0.3
        assert detected < bound, f"pruned after {detected:.2f} s"
        assert victim_id not in report["subscribers"]
        # the publisher kept triggering: no trigger took long, and the other subscriber still receives
        later = pub.expect(lambda o: o.get("seq", 0) > report["seq"] + 200)
        assert later["worst"] < 0.5
        before = other.lines[-1].get("received", 0) if other.lines else 0
        other.expect(lambda o: o.get("received", 0) > before + 100)


async def test_remote_calls_round_trip_every_msgpack_type_and_remote_errors() -> None:
    with processes() as spawn:
        server = spawn("server", base_env(NET_PORT=0))
        port = server.expect_key("port")["port"]
        address = f"127.0.0.1:{port}"
        async with net.Peer("caller", port=0, host="127.0.0.1") as me:
            values = [
                None,
                True,
                False,
                0,
                -1,
                2**63 - 1,
                -(2**63),
                2**64 - 1,
                1.5,
                float("inf"),
                "",
                "héllo ✓",
                b"",
                b"\x00\xff" * 10,
                [],
                [1, [2, [3]]],
                {},
                {"a": {"b": [b"c"]}},
                {1: "int keys"},
                "x" * 100_000,
            ]
            args, kwargs = await me.call(
                address, "echo", *values, key=b"\x01", nested={"k": [None]}
            )
            assert args == values
            assert kwargs == {"key": b"\x01", "nested": {"k": [None]}}
            big = await me.call(address, "sized", 1024 * 1024)
            assert big == b"\xab" * 1024 * 1024
            [echoed], _ = await me.call(address, "echo", b"\x07" * (1024 * 1024))
            assert echoed == b"\x07" * (1024 * 1024)
            with pytest.raises(net.RemoteError) as info:
                await me.call(address, "fail", "it broke")
            assert info.value.type_name == "ValueError"
            assert info.value.remote_message == "it broke"
            assert "raise ValueError(message)" in info.value.remote_traceback
            with pytest.raises(net.UnknownConnection) as unknown:
                await me.call(address, "no_such_thing")
            assert "echo" in unknown.value.offered and "sized" in unknown.value.offered
            with pytest.raises(net.CallTimeout):
                await me.call(address, "slow", 5, timeout=0.3)
            with pytest.raises(TypeError):
                await me.call(address, "echo", object())
            assert await me.call(address, "pass_through", 42) == 42
            with trio.fail_after(5):
                remote = await me.remote_info(address)
            assert "echo" in remote["connections"]

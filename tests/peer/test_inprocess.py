"""Several peers in one trio run: the peer layer's rules, quickly and precisely."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

import pytest
import trio

import net
from tests.inproc import make, wait_until


async def test_peers_dialing_each_other_keep_exactly_one_link() -> None:
    for _ in range(5):
        async with make("a") as a, make("b") as b:
            a.want(f"127.0.0.1:{b.port}")
            b.want(f"127.0.0.1:{a.port}")
            await wait_until(lambda: a.id in b.links and b.id in a.links)
            # let any duplicate handshakes settle, then both sides agree on one connection
            await trio.sleep(0.2)
            la, lb = a.links[b.id], b.links[a.id]
            assert la.dialed != lb.dialed
            assert la.stream.socket.getsockname() == lb.stream.socket.getpeername()
            assert await a.call(f"127.0.0.1:{b.port}", "pass_through", 1) == 1


async def test_events_reach_subscribers_in_order_with_handlers_sync_and_async() -> None:
    async with make("pub") as pub, make("sub", peers=[]) as sub:
        got_sync: list[int] = []
        got_async: list[int] = []
        senders: list[str] = []

        @sub.subscribe("n")
        def on_sync(i: int) -> None:
            got_sync.append(i)

        @sub.subscribe("n")
        async def on_async(i: int, *, sender: net.PeerInfo) -> None:
            got_async.append(i)
            senders.append(sender.name)

        sub.want(f"127.0.0.1:{pub.port}")
        await wait_until(lambda: len(pub.table.subscribers("n")) == 1)
        for i in range(3000):
            await pub.trigger("n", i)
        await wait_until(lambda: len(got_sync) == 3000 and len(got_async) == 3000)
        assert got_sync == list(range(3000)) == got_async
        assert set(senders) == {"pub"}


async def test_handler_exception_is_logged_and_nothing_else_is_disturbed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with make("pub") as pub, make("sub") as sub:
        good: list[int] = []

        @sub.subscribe("x")
        def bad(i: int) -> None:
            raise RuntimeError(f"handler failed on {i}")

        @sub.subscribe("x")
        def fine(i: int) -> None:
            good.append(i)

        sub.want(f"127.0.0.1:{pub.port}")
        await wait_until(lambda: pub.table.subscribers("x"))
        with caplog.at_level(logging.ERROR, logger="net"):
            for i in range(5):
                await pub.trigger("x", i)
            await wait_until(lambda: len(good) == 5)
        assert "handler failed on 0" in caplog.text and "bad" in caplog.text


async def test_unserialisable_event_raises_at_call_site_and_sends_nothing() -> None:
    async with make("pub") as pub, make("sub") as sub:
        got: list[object] = []
        sub.subscribe("e")(lambda v: got.append(v))
        sub.want(f"127.0.0.1:{pub.port}")
        await wait_until(lambda: pub.table.subscribers("e"))

        @pub.event("e")
        async def e(v: object) -> tuple[tuple[object, ...], dict[str, object]]:
            return (v,), {}

        with pytest.raises(TypeError):
            await e(object())
        with pytest.raises(TypeError):
            await pub.trigger("e", {1, 2})
        assert await e("fine") == (("fine",), {})
        await wait_until(lambda: got == ["fine"])
        assert sub.links[pub.id].rx_seq == 1  # the failed ones never took a sequence number


async def test_delivery_report_names_who_got_it() -> None:
    async with make("pub") as pub, make("s1") as s1, make("s2") as s2:
        for s in (s1, s2):
            s.subscribe("r")(lambda: None)
            s.want(f"127.0.0.1:{pub.port}")
        await wait_until(lambda: len(pub.table.subscribers("r")) == 2)
        report = await pub.trigger_with_report("r")
        assert sorted(p.name for p in report.delivered) == ["s1", "s2"] and report.ok
        empty = await pub.trigger_with_report("nobody-listens")
        assert empty.delivered == [] and empty.ok


async def test_full_queue_drops_are_counted_and_seen_by_the_subscriber_as_gaps() -> None:
    async with make("pub", queue_policy="drop", queue_bytes=4096) as pub, make("sub") as sub:
        got: list[int] = []
        release = threading.Event()

        @sub.subscribe("flood")
        def slow(i: int, pad: bytes) -> None:
            release.wait(10)
            got.append(i)

        sub.want(f"127.0.0.1:{pub.port}")
        await wait_until(lambda: pub.table.subscribers("flood"))
        pad = b"x" * 1000
        for i in range(20000):
            await pub.trigger("flood", i, pad)
        release.set()
        dropped = pub.info()["counters"].get("events_dropped", 0)
        assert dropped > 0
        await wait_until(lambda: pub.links[sub.id].stats()["queued_bytes"] == 0, timeout=20)
        await pub.trigger("flood", 20000, pad)  # a last one that gets through once drained
        await wait_until(lambda: got and got[-1] == 20000, timeout=20)
        assert got == sorted(got)
        assert len(got) + dropped == 20001
        assert sub.info()["counters"]["events_missed"] == dropped
        assert pub.info()["peers"][0]["events_dropped"] == dropped


async def test_block_policy_slows_the_publisher_instead_of_dropping() -> None:
    async with make("pub", queue_bytes=4096, block_timeout=5.0) as pub, make("sub") as sub:
        got: list[int] = []
        sub.subscribe("b")(lambda i, pad: got.append(i))
        sub.want(f"127.0.0.1:{pub.port}")
        await wait_until(lambda: pub.table.subscribers("b"))
        for i in range(5000):
            await pub.trigger("b", i, b"y" * 2000)
        await wait_until(lambda: len(got) == 5000, timeout=20)
        assert got == list(range(5000))
        assert pub.info()["counters"].get("events_dropped", 0) == 0


async def test_subscription_filters_groups_hubs_and_explicit_peers() -> None:
    async with (
        make("pub-a", group="a") as pa,
        make("pub-b", group="b", hub=True) as pb,
        make("sub", group="a") as sub,
    ):
        default: list[str] = []
        hubs: list[str] = []
        named: list[str] = []
        sub.subscribe("g")(lambda: default.append("x"))
        sub.subscribe("h", groups=["a", "b"], hubs_only=True)(lambda: hubs.append("x"))
        sub.subscribe("n", peers=["pub-b"])(lambda: named.append("x"))
        for p in (pa, pb):
            sub.want(f"127.0.0.1:{p.port}")
        await wait_until(lambda: len(sub.links) == 2)
        await wait_until(
            lambda: (
                pa.table.subscribers("g")
                and pb.table.subscribers("h")
                and pb.table.subscribers("n")
            )
        )
        assert (
            not pb.table.subscribers("g")
            and not pa.table.subscribers("h")
            and not pa.table.subscribers("n")
        )


async def test_unsubscribe_and_bye_are_pruned_and_visible_in_info() -> None:
    async with make("pub") as pub:
        async with make("sub") as sub:

            @sub.subscribe("u")
            def h() -> None:
                pass

            @sub.subscribe("v")
            def h2() -> None:
                pass

            sub.want(f"127.0.0.1:{pub.port}")
            await wait_until(lambda: pub.table.subscribers("u") and pub.table.subscribers("v"))
            assert pub.info()["subscriptions"] == {"u": ["sub"], "v": ["sub"]}
            await sub.unsubscribe(h)
            await wait_until(lambda: not pub.table.subscribers("u"))
        await wait_until(lambda: not pub.table.subscribers("v"))
        reasons = [(p["events"], p["reason"]) for p in pub.info()["pruned"]]
        assert (["u"], "unsubscribed") in reasons
        assert (["v"], "bye: shutdown") in reasons


async def test_calls_multiplex_on_one_link() -> None:
    async with make("srv") as srv, make("cli") as cli:

        @srv.connect()
        async def wait_and_echo(x: int) -> int:
            await trio.sleep(0.05 * (x % 3))
            return x

        results: dict[int, int] = {}

        async def one(i: int) -> None:
            results[i] = await cli.call(f"127.0.0.1:{srv.port}", "wait_and_echo", i)

        async with trio.open_nursery() as n:
            for i in range(200):
                n.start_soon(one, i)
        assert results == {i: i for i in range(200)}
        assert len(cli.links) == 1


async def test_flags_null_and_custom() -> None:
    async with make("srv") as srv, make("cli") as cli:
        address = f"127.0.0.1:{srv.port}"
        assert await cli.call(address, "null") is None

        @srv.connect()
        def busy() -> net.Flag:
            return net.Flag("BUSY", {"retry_after": 3})

        seen: list[tuple[str, str]] = []

        @cli.flag("BUSY")
        def on_busy(connection: str, peer: net.PeerInfo) -> str:
            seen.append((connection, peer.name))
            return "try later"

        assert await cli.call(address, "busy") == "try later"
        assert seen == [("busy", "srv")]


async def test_sync_face_from_another_thread() -> None:
    srv = make("srv")
    got: list[int] = []

    @srv.connect()
    def add(a: int, b: int) -> int:
        return a + b

    @srv.subscribe("s")
    def on_s(i: int) -> None:
        got.append(i)

    def plain_code() -> None:
        cli = make("cli")

        @cli.connect("add")
        def add_local(a: int, b: int) -> int:
            return -1

        @cli.event("s")
        def s(i: int) -> tuple[tuple[int], dict[str, object]]:
            return (i,), {}

        cli.start()
        try:
            assert add_local(1, 2) == -1  # no peer=: a plain local call
            assert add_local(1, 2, peer=f"127.0.0.1:{srv.port}") == 3
            remote = cli.peers()[0]
            assert remote.add(5, 6) == 11  # connections as attributes
            deadline = 100
            while not cli.info()["subscriptions"].get("s") and deadline:
                import time

                time.sleep(0.05)
                deadline -= 1
            for i in range(1000):
                assert s(i) == ((i,), {})
            report = s.report(1000)
            assert [p.name for p in report.delivered] == ["srv"]
        finally:
            cli.stop()

    async with srv:
        srv.want  # noqa: B018
        await trio.to_thread.run_sync(plain_code)
        await wait_until(lambda: len(got) == 1001)
        assert got == list(range(1001))


def test_import_net_has_no_side_effects() -> None:
    code = (
        "import os, threading, net\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "links = []\n"
        "for f in os.listdir('/proc/self/fd'):\n"
        "    try: links.append(os.readlink('/proc/self/fd/' + f))\n"
        "    except FileNotFoundError: pass\n"
        "socks = [x for x in links if x.startswith('socket:')]\n"
        "assert not socks, socks\n"
        "print('clean')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "clean", out.stderr


async def test_version_mismatch_is_logged_on_both_sides_and_nothing_links(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from net.protocol import _messages as m

    async with make("old") as old, make("new") as new:
        assert new._hello is not None
        h = new._hello
        new._hello = m.Hello(h.version + 1, h.peer_id, h.name, h.group, h.hub, h.host, h.port, h.max_frame)
        with caplog.at_level(logging.WARNING, logger="net"):
            with pytest.raises(net.ProtocolError):
                await new._connect(f"127.0.0.1:{old.port}")
            await wait_until(lambda: caplog.text.count("version_mismatch") >= 2)
        v = m.PROTOCOL_VERSION
        assert f"this peer speaks version {v + 1}" in caplog.text
        assert f"this peer speaks version {v}" in caplog.text
        assert not old.links and not new.links

"""What users pass in: bad names, bad peer references, oversized values.

Each gets a clear error at the call site, nothing is sent, and the peer and its
links keep working.
"""

from __future__ import annotations

import pytest
import trio

import net
from net import protocol as p
from tests.inproc import make


@pytest.mark.parametrize("bad", ["", "x" * 300, None, 5, b"bytes"])
def test_bad_event_and_flag_names_are_rejected_at_decoration(bad: object) -> None:
    peer = make("p")
    with pytest.raises(ValueError):
        peer.event(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        peer.subscribe(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        peer.flag(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "x" * 300])
def test_bad_connection_tags_are_rejected(bad: str) -> None:
    with pytest.raises(net.NetError):
        make("p").connect(bad)(lambda: None)


async def test_bad_peer_references_and_connection_names() -> None:
    async with make("srv") as srv, make("cli") as cli:
        address = f"127.0.0.1:{srv.port}"
        for ref in (123, 4.5, ["127.0.0.1", srv.port], {"host": "x"}, None):
            with pytest.raises(TypeError):
                await cli.call(ref, "info")  # type: ignore[arg-type]
        for ref in ("no-such-peer", "host:", ":80", "127.0.0.1:99999", "a:b:c"):
            with pytest.raises(net.PeerNotFound):
                await cli.call(ref, "info")
        with pytest.raises(net.PeerUnavailable):
            await cli.call("127.0.0.1:1", "info", timeout=5)
        for name in ("", "x" * 300, 7):
            with pytest.raises(ValueError):
                await cli.call(address, name)  # type: ignore[arg-type]
        assert await cli.call(address, "pass_through", "still fine") == "still fine"
        assert await cli.call(("127.0.0.1", srv.port), "pass_through", 1) == 1


async def test_oversized_values_raise_at_the_call_site_and_the_link_survives() -> None:
    async with make("srv", max_frame=64 * 1024) as srv, make("cli") as cli:
        address = f"127.0.0.1:{srv.port}"
        assert await cli.call(address, "pass_through", 1) == 1
        with pytest.raises(p.FrameTooLarge):
            await cli.call(address, "pass_through", b"x" * (65 * 1024))
        with pytest.raises(ValueError):
            await cli.trigger("anything", b"x" * (9 * 1024 * 1024))
        # a result larger than the caller accepts comes back as a clear error
        @srv.connect()
        def big() -> bytes:
            return b"y" * (9 * 1024 * 1024)

        with pytest.raises(net.RequestRejected) as info:
            await cli.call(address, "big")
        assert info.value.code == "frame_too_large"
        assert await cli.call(address, "pass_through", 2) == 2
        assert len(cli.links) == 1 and not next(iter(cli.links.values())).ended.is_set()


async def test_event_functions_must_return_args_and_kwargs() -> None:
    async with make("pub") as pub:

        @pub.event("e")
        async def wrong(x: int) -> int:
            return x

        @pub.event("e")
        async def bad_kwargs(x: int) -> tuple[tuple[int], dict[int, int]]:
            return (x,), {1: 2}

        with pytest.raises(TypeError, match="must return"):
            await wrong(1)
        with pytest.raises(TypeError, match="string keys"):
            await bad_kwargs(1)
        with trio.fail_after(5):
            await pub.trigger("e", 1)


def test_stopped_or_unstarted_peer_gives_a_clear_error() -> None:
    peer = make("idle")
    with pytest.raises(net.NotRunning):
        peer.call_sync("127.0.0.1:1", "info")


async def test_oversized_sync_event_raises_in_the_calling_thread() -> None:
    async with make("pub") as pub:

        @pub.event("big")
        def big(data: bytes) -> tuple[tuple[bytes], dict[str, object]]:
            return (data,), {}

        def plain() -> None:
            with pytest.raises(ValueError, match="NET_MAX_FRAME"):
                big(b"z" * (9 * 1024 * 1024))
            assert big(b"small") == ((b"small",), {})

        await trio.to_thread.run_sync(plain)


async def test_on_demand_link_ending_does_not_take_the_peer_down() -> None:
    async with make("cli") as cli:
        async with make("srv") as srv:
            assert await cli.call(f"127.0.0.1:{srv.port}", "pass_through", 1) == 1
        # the server is gone; its link ended inside cli's nursery: cli still works
        with trio.fail_after(5):
            while cli.links:
                await trio.sleep(0.01)
        assert cli.running
        async with make("srv2") as srv2:
            assert await cli.call(f"127.0.0.1:{srv2.port}", "pass_through", 2) == 2

"""MdnsDiscovery in one trio run, on loopback (interfaces=["127.0.0.1"] only)."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Callable

import pytest
import trio
from zeroconf import ServiceInfo, Zeroconf

from net.discovery._interfaces import LOOPBACK, parse_interfaces
from net.discovery._mdns import (
    SERVICE_TYPE,
    SHUTDOWN_TIMEOUT,
    Advert,
    FoundPeer,
    MdnsDiscovery,
    advert_properties,
)


def make_advert(name: str, port: int = 4000) -> Advert:
    return Advert(secrets.token_hex(16), name, "test", False, port, 1)


class Recorder:
    """Collects on_found/on_lost calls; lets a test wait for a condition."""

    def __init__(self) -> None:
        self.found: dict[str, FoundPeer] = {}
        self.found_calls: list[FoundPeer] = []
        self.lost: list[str] = []
        self._changed = trio.Event()

    def on_found(self, peer: FoundPeer) -> None:
        self.found[peer.peer_id] = peer
        self.found_calls.append(peer)
        self._changed.set()

    def on_lost(self, peer_id: str) -> None:
        self.lost.append(peer_id)
        self.found.pop(peer_id, None)
        self._changed.set()

    async def wait(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        with trio.move_on_after(timeout):
            while not pred():
                await self._changed.wait()
                self._changed = trio.Event()
            return
        raise AssertionError(f"no {what} within {timeout} s: found={self.found} lost={self.lost}")


async def run_cancellable(
    discovery: MdnsDiscovery,
    rec: Recorder,
    scope: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    with scope:
        await discovery.run(rec.on_found, rec.on_lost, task_status=task_status)


async def test_find_each_other_and_goodbye_on_cancel() -> None:
    adv_a, adv_b = make_advert("alpha", 1111), make_advert("beta", 2222)
    a, b = MdnsDiscovery(adv_a, LOOPBACK), MdnsDiscovery(adv_b, LOOPBACK)
    rec_a, rec_b = Recorder(), Recorder()
    scope_b = trio.CancelScope()
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run, rec_a.on_found, rec_a.on_lost)
        assert a.advertised_addresses == ["127.0.0.1"]
        b_done = trio.Event()

        async def run_b(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            try:
                await run_cancellable(b, rec_b, scope_b, task_status=task_status)
            finally:
                b_done.set()

        await nursery.start(run_b)
        await rec_a.wait(lambda: adv_b.peer_id in rec_a.found, 5, "a finds b")
        await rec_b.wait(lambda: adv_a.peer_id in rec_b.found, 5, "b finds a")
        assert rec_a.found[adv_b.peer_id] == FoundPeer(
            adv_b.peer_id, "beta", "test", False, 2222, 1, ("127.0.0.1",)
        )
        # our own advert is never reported
        assert adv_a.peer_id not in rec_a.found and adv_b.peer_id not in rec_b.found
        b.refresh()  # harmless while running

        t0 = time.monotonic()
        scope_b.cancel()
        await rec_a.wait(lambda: adv_b.peer_id in rec_a.lost, 2, "goodbye from b")
        with trio.fail_after(SHUTDOWN_TIMEOUT + 1.5):
            await b_done.wait()
        assert time.monotonic() - t0 < SHUTDOWN_TIMEOUT + 1.5
        assert rec_a.lost == [adv_b.peer_id]
        nursery.cancel_scope.cancel()
    a.refresh()  # no-op once stopped


async def test_restart_after_stop() -> None:
    adv = make_advert("again")
    d = MdnsDiscovery(adv, LOOPBACK)
    rec = Recorder()
    for _ in range(2):
        async with trio.open_nursery() as nursery:
            await nursery.start(d.run, rec.on_found, rec.on_lost)
            nursery.cancel_scope.cancel()


def _hostile_infos(own_peer_id: str) -> list[ServiceInfo]:
    def info(label: str, props: dict[str, str] | bytes, port: int = 5000) -> ServiceInfo:
        return ServiceInfo(
            SERVICE_TYPE,
            f"{label}.{SERVICE_TYPE}",
            port=port,
            properties=props,
            server=f"{label}.local.",
            parsed_addresses=["127.0.0.1"],
        )

    good = advert_properties(make_advert("x"))
    return [
        info("garbage", b"\x05\xff\xfe\x00=\x01\xff"),
        info("empty", b""),
        info("badid", {**good, "id": "NOT-HEX"}),
        info("newline", {**good, "n": "a\nb"}),
        info("badpv", {**good, "pv": "1e9"}),
        info("badport", good, port=0),
        info("impostor", {**good, "id": own_peer_id}),  # claims to be us
    ]


async def test_hostile_records_are_ignored() -> None:
    adv = make_advert("victim")
    canary_adv = make_advert("canary", 7777)
    rec = Recorder()
    victim = MdnsDiscovery(adv, LOOPBACK)

    def start_hostile() -> Zeroconf:
        zc = Zeroconf(interfaces=["127.0.0.1"], use_asyncio=False)
        assert zc.loop is not None

        def register(info: ServiceInfo) -> None:
            # returns once registered; the announcements go out in the background
            coro = zc.async_register_service(info, cooperating_responders=True)
            asyncio.run_coroutine_threadsafe(coro, zc.loop).result(5)  # type: ignore[arg-type]

        try:
            for info in _hostile_infos(adv.peer_id):
                register(info)
            canary = ServiceInfo(
                SERVICE_TYPE,
                f"canary.{SERVICE_TYPE}",
                port=canary_adv.port,
                properties=advert_properties(canary_adv),
                server="canary.local.",
                parsed_addresses=["127.0.0.1"],
            )
            register(canary)
        except BaseException:
            zc.close()
            raise
        return zc

    async with trio.open_nursery() as nursery:
        await nursery.start(victim.run, rec.on_found, rec.on_lost)
        with trio.fail_after(15):
            zc = await trio.to_thread.run_sync(start_hostile)
        try:
            await rec.wait(lambda: canary_adv.peer_id in rec.found, 5, "the valid canary")
            await trio.sleep(0.3)  # a window for anything else to (wrongly) show up
            assert set(rec.found) == {canary_adv.peer_id}
            assert [p.peer_id for p in rec.found_calls] == [canary_adv.peer_id]
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await trio.to_thread.run_sync(zc.close)
        await rec.wait(lambda: canary_adv.peer_id in rec.lost, 3, "canary goodbye")
        nursery.cancel_scope.cancel()


def _bridge_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("net-zeroconf")]


async def test_cancel_during_startup_is_bounded_and_leaks_nothing() -> None:
    before = _bridge_threads()
    for delay in (0.0, 0.001, 0.005, 0.02, 0.05):
        d = MdnsDiscovery(make_advert("early"), LOOPBACK)
        rec = Recorder()
        t0 = time.monotonic()
        with trio.move_on_after(delay):
            await d.run(rec.on_found, rec.on_lost)
        assert time.monotonic() - t0 < delay + SHUTDOWN_TIMEOUT + 1.5
    assert _bridge_threads() == before


async def test_unknown_interface_raises_before_starting() -> None:
    d = MdnsDiscovery(make_advert("x"), parse_interfaces("nosuch0"))
    rec = Recorder()
    with pytest.raises(ValueError, match="NET_INTERFACES"):
        await d.run(rec.on_found, rec.on_lost)


async def test_callback_errors_propagate_after_cleanup() -> None:
    a = MdnsDiscovery(make_advert("a"), LOOPBACK)
    b = MdnsDiscovery(make_advert("b"), LOOPBACK)
    rec_b = Recorder()

    def broken(peer: FoundPeer) -> None:
        raise RuntimeError("bug in the peer layer")

    # (trio nurseries wrap it in an ExceptionGroup)
    with pytest.raises(ExceptionGroup) as info:
        async with trio.open_nursery() as nursery:
            await nursery.start(b.run, rec_b.on_found, rec_b.on_lost)
            with trio.fail_after(10):
                await a.run(broken, rec_b.on_lost)
    assert info.group_contains(RuntimeError, match="bug in the peer layer", depth=None)
    assert _bridge_threads() == []

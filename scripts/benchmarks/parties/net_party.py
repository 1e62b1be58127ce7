"""net: the project's own peers, through both of its faces.

Every role runs the project's ``net`` (the .venv interpreter), on 127.0.0.1
only, with static peer lists (``NET_DISCOVERY=static``: no mDNS). Two faces:

* the trio API (``async def`` roles, run under trio by benchlib.party):
  ``async with net.Peer(...) as peer``, ``await peer.trigger(...)``,
  ``peer.subscribe(event)(async handler)``, ``await peer.call(...)``,
  ``@peer.connect()`` on an ``async def``;
* the synchronous face (plain roles): ``peer.start()`` (a background trio
  thread), an ``@peer.event(name)`` function called from plain code, a plain
  subscriber handler (run in the peer's handler thread), ``@peer.connect()``
  functions called with ``peer=`` (``call_sync``), ``peer.stop()``.

The queue policy is the default, ``block``: a publisher is slowed to what its
subscribers take, nothing is dropped. Subscribers check every sequence number.

Roles: publisher / subscriber (async), publisher_sync / subscriber_sync,
server / client (async), server_sync / client_sync, idle_rss, idle_rss_async,
subs_server / subs_client (memory per 1000 subscriptions).
"""

from __future__ import annotations

import os
import threading
import time

os.environ["NET_DISCOVERY"] = "static"  # never mDNS: peers are given explicitly
os.environ.setdefault("NET_AUTOSTART", "0")

import trio
from benchlib import (
    END_SEQ,
    SeqChecker,
    latency_summary,
    make_end,
    make_payload,
    rss_kib,
)

import net

HOST = "127.0.0.1"
EVENT = "bench"


def _peer(role: str, index: int | None = None, peers: list[str] | None = None) -> net.Peer:
    name = f"bench-{role}" + (f"-{index}" if index is not None else "") + f"-{os.getpid()}"
    return net.Peer(name, port=0, host=HOST, peers=peers or [])


def _subscriber_names(info: dict) -> list[str]:
    return list(info.get("subscriptions", {}).get(EVENT, []))


# --------------------------------------------------------------------- pub/sub, async
async def _wait_subscribed(peer: net.Peer, address: str, ctl, names: set[str]) -> None:
    """Until the publisher's table lists us for EVENT (its INFO says so): events sent
    from then on are sure to reach us."""
    await peer.wait_for_peers(1, timeout=max(ctl.time_left() - 1, 1))
    while True:
        info = await peer.remote_info(address, timeout=max(ctl.time_left(), 1))
        if names & set(_subscriber_names(info)):
            return
        if ctl.time_left() <= 0:
            raise TimeoutError("the publisher never listed our subscription")
        await trio.sleep(0.005)


async def publisher(ctl, n, subscribers=1, duration=None, payload_size=None, **_):
    t_start = time.perf_counter()
    async with _peer("pub") as peer:
        attached: dict = {}

        async def watch_attach():  # time to converge: READY -> every subscriber in our table
            while len(_subscriber_names(peer.info())) < subscribers:
                if ctl.time_left() <= 0:
                    return
                await trio.sleep(0.005)
            attached["at"] = time.perf_counter()

        ctl.ready(host=HOST, port=peer.port)
        t_ready = time.perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_attach)
            await ctl.wait_trio("GO")
        # every subscriber says READY only once it is in our table, so by GO all are
        if "at" not in attached:
            raise TimeoutError("subscribers did not attach")
        t_attached = attached["at"]
        trigger = peer.trigger
        limit = time.perf_counter() + duration if duration else None
        c0 = time.process_time()
        t0 = time.perf_counter()
        sent = 0
        for seq in range(n):
            await trigger(EVENT, make_payload(seq, payload_size))
            sent += 1
            if limit and not seq & 255 and time.perf_counter() > limit:
                break
        t1 = time.perf_counter()
        c1 = time.process_time()
        await trigger(EVENT, make_end(sent))
        await ctl.wait_trio("STOP")
        counters = peer.info()["counters"]
    ctl.result(
        sent=sent,
        send_rate=sent / (t1 - t0),
        dropped=counters.get("events_dropped", 0),
        cpu_us_per_msg=1e6 * (c1 - c0) / max(sent, 1),
        converge_s=t_attached - t_ready,
        startup_s=t_ready - t_start,
        rss_kib=rss_kib()["peak_rss_kib"],
    )


async def subscriber(ctl, host, port, n, index=0, **_):
    t_start = time.perf_counter()
    address = f"{host}:{port}"
    chk = SeqChecker(n)
    see = chk.see
    end: dict = {}
    done = trio.Event()

    async def on_bench(payload):
        seq = payload["seq"]
        if seq >= 0:
            see(seq)
        elif seq == END_SEQ:
            end["sent"] = payload["end"]
            done.set()

    async with _peer("sub", index, [address]) as peer:
        peer.subscribe(EVENT, peers=[address])(on_bench)
        await _wait_subscribed(peer, address, ctl, {peer.name})
        attach_s = time.perf_counter() - t_start
        c0 = time.process_time()
        ctl.ready()
        with trio.move_on_after(max(ctl.time_left() - 1, 0.1)):
            await done.wait()
        c1 = time.process_time()
        missed = peer.info()["counters"].get("events_missed", 0)
    ctl.result(
        **chk.result(end.get("sent", n)),
        end_seen="sent" in end,
        missed=missed,
        attach_s=attach_s,
        cpu_us_per_msg=1e6 * (c1 - c0) / max(chk.received, 1),
    )


# --------------------------------------------------------------------- pub/sub, sync face
def _wait_subscribers_sync(peer: net.Peer, subscribers: int, ctl) -> None:
    while True:
        try:
            if len(_subscriber_names(peer.info())) >= subscribers:
                return
        except RuntimeError:  # a dict changed size while info() read it from this thread
            pass
        if ctl.time_left() <= 0:
            raise TimeoutError("subscribers did not attach")
        time.sleep(0.005)


def publisher_sync(ctl, n, subscribers=1, duration=None, payload_size=None, **_):
    t_start = time.perf_counter()
    peer = _peer("pub").start()
    try:

        @peer.event(EVENT)
        def bench(payload):
            return (payload,), {}

        ctl.ready(host=HOST, port=peer.port)
        t_ready = time.perf_counter()
        ctl.wait("GO")
        _wait_subscribers_sync(peer, subscribers, ctl)
        t_attached = time.perf_counter()
        limit = time.perf_counter() + duration if duration else None
        c0 = time.process_time()
        t0 = time.perf_counter()
        sent = 0
        for seq in range(n):
            bench(make_payload(seq, payload_size))
            sent += 1
            if limit and not seq & 255 and time.perf_counter() > limit:
                break
        t1 = time.perf_counter()
        c1 = time.process_time()
        bench(make_end(sent))
        ctl.wait("STOP")
        counters = peer.info()["counters"]
    finally:
        peer.stop()
    ctl.result(
        sent=sent,
        send_rate=sent / (t1 - t0),
        dropped=counters.get("events_dropped", 0),
        cpu_us_per_msg=1e6 * (c1 - c0) / max(sent, 1),
        converge_s=t_attached - t_ready,
        startup_s=t_ready - t_start,
        rss_kib=rss_kib()["peak_rss_kib"],
    )


def subscriber_sync(ctl, host, port, n, index=0, **_):
    t_start = time.perf_counter()
    address = f"{host}:{port}"
    chk = SeqChecker(n)
    see = chk.see
    end: dict = {}
    done = threading.Event()

    def on_bench(payload):  # runs in the peer's handler thread, never on its loop
        seq = payload["seq"]
        if seq >= 0:
            see(seq)
        elif seq == END_SEQ:
            end["sent"] = payload["end"]
            done.set()

    peer = _peer("sub", index, [address]).start()
    try:
        peer.subscribe(EVENT, peers=[address])(on_bench)
        while not peer.peers():  # the static link first, so the INFO calls below use it
            if ctl.time_left() <= 0:
                raise TimeoutError("no link to the publisher")
            time.sleep(0.005)
        while True:
            try:
                if peer.name in _subscriber_names(peer.call_sync(address, "info", timeout=5)):
                    break
            except net.PeerUnavailable:  # a link replaced under the call: ask again
                pass
            if ctl.time_left() <= 0:
                raise TimeoutError("the publisher never listed our subscription")
            time.sleep(0.005)
        attach_s = time.perf_counter() - t_start
        c0 = time.process_time()
        ctl.ready()
        done.wait(max(ctl.time_left() - 1, 0.1))
        c1 = time.process_time()
        missed = peer.info()["counters"].get("events_missed", 0)
    finally:
        peer.stop()
    ctl.result(
        **chk.result(end.get("sent", n)),
        end_seen="sent" in end,
        missed=missed,
        attach_s=attach_s,
        cpu_us_per_msg=1e6 * (c1 - c0) / max(chk.received, 1),
    )


# --------------------------------------------------------------------- remote call
async def server(ctl, **_):
    served = 0
    async with _peer("server") as peer:

        @peer.connect("bench_echo")
        async def bench_echo(payload):
            nonlocal served
            served += 1
            return {"seq": payload["seq"], "ok": True}

        ctl.ready(host=HOST, port=peer.port)
        await ctl.wait_trio("STOP")
    ctl.result(served=served)


async def client(ctl, host, port, rounds, warmup=200, **_):
    address = f"{host}:{port}"
    clock = time.perf_counter_ns
    samples = []
    async with _peer("client") as peer:
        call = peer.call
        cpu0 = time.process_time()
        for i in range(warmup + rounds):
            payload = make_payload(i)
            t0 = clock()
            reply = await call(address, "bench_echo", payload)
            t1 = clock()
            if reply["seq"] != i:
                raise AssertionError(f"reply for {reply['seq']}, expected {i}")
            if i >= warmup:
                samples.append(t1 - t0)
    ctl.result(**latency_summary(samples, cpu_s=time.process_time() - cpu0, calls=warmup + rounds))


def server_sync(ctl, **_):
    served = 0
    peer = _peer("server").start()
    try:

        @peer.connect("bench_echo")
        def bench_echo(payload):  # a plain function: runs in a worker thread
            nonlocal served
            served += 1
            return {"seq": payload["seq"], "ok": True}

        ctl.ready(host=HOST, port=peer.port)
        ctl.wait("STOP")
    finally:
        peer.stop()
    ctl.result(served=served)


def client_sync(ctl, host, port, rounds, warmup=200, **_):
    address = f"{host}:{port}"
    clock = time.perf_counter_ns
    samples = []
    peer = _peer("client").start()
    try:

        @peer.connect("bench_echo")
        def bench_echo(payload):  # the local stub; peer= runs it remotely (call_sync)
            raise AssertionError("called locally")

        cpu0 = time.process_time()

        for i in range(warmup + rounds):
            payload = make_payload(i)
            t0 = clock()
            reply = bench_echo(payload, peer=address)
            t1 = clock()
            if reply["seq"] != i:
                raise AssertionError(f"reply for {reply['seq']}, expected {i}")
            if i >= warmup:
                samples.append(t1 - t0)
    finally:
        peer.stop()
    ctl.result(**latency_summary(samples, cpu_s=time.process_time() - cpu0, calls=warmup + rounds))


# --------------------------------------------------------------------- memory
def idle_rss(ctl, settle=2.0, **_):
    """A started peer (the sync face: background trio thread) left idle."""
    peer = _peer("idle").start()
    try:
        time.sleep(settle)
        res = rss_kib()
    finally:
        peer.stop()
    ctl.result(**res)


async def idle_rss_async(ctl, settle=2.0, **_):
    async with _peer("idle"):
        await trio.sleep(settle)
        res = rss_kib()
    ctl.result(**res)


def subs_server(ctl, subscriptions=1000, **_):
    """The publisher side: RSS before (after the client linked and made one warm-up
    subscription, so the link itself is not counted) and after the subscriptions."""
    marks: dict = {}
    peer = _peer("subs-server").start()
    try:

        @peer.connect("bench_mark")
        def bench_mark(what):
            marks[what] = rss_kib()["rss_kib"]
            return marks[what]

        @peer.connect("bench_count")
        def bench_count():  # how many subscriptions the table holds (no big INFO reply)
            return len(peer.table)

        marks["ready"] = rss_kib()["rss_kib"]
        ctl.ready(host=HOST, port=peer.port)
        ctl.wait("STOP")  # the client has made (and seen listed) its subscriptions by now
        after = rss_kib()["rss_kib"]
        count = len(peer.table)
    finally:
        peer.stop()
    before = marks.get("before", marks["ready"])
    ctl.result(
        growth_kib=(after - before) * 1000 / subscriptions,
        rss_kib=after,
        link_kib=before - marks["ready"],
        subscriptions_held=count,
    )


async def subs_client(ctl, host, port, subscriptions=1000, **_):
    address = f"{host}:{port}"

    async def handler(*args, **kwargs):
        pass

    async with _peer("subs-client", None, [address]) as peer:
        await peer.wait_for_peers(1, timeout=max(ctl.time_left() - 1, 1))
        peer.subscribe("warm-up", peers=[address])(handler)
        while "warm-up" not in (await peer.remote_info(address))["subscriptions"]:
            await trio.sleep(0.01)
        await peer.call(address, "bench_mark", "before")
        for i in range(subscriptions):
            peer.subscribe(f"bench-{i:05d}", peers=[address])(handler)
        while await peer.call(address, "bench_count") < subscriptions + 1:
            if ctl.time_left() <= 0:
                raise TimeoutError("not every subscription was listed")
            await trio.sleep(0.02)
    ctl.result(subscriptions=subscriptions)

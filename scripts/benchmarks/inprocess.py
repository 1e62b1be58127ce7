"""One side of a net link at a time, in one process: where a side's time goes.

    .venv/bin/python scripts/benchmarks/inprocess.py subscriber [async|sync] [-n 200000]
    .venv/bin/python scripts/benchmarks/inprocess.py publisher  [async|sync] [-n 200000]
    .venv/bin/python scripts/benchmarks/inprocess.py call       [async|sync] [-n 5000]
    .venv/bin/python scripts/benchmarks/inprocess.py ... --cprofile       # and print a profile

``subscriber``: a real ``net.Peer`` (async or plain handler) reads EVENTS
frames that a thread writes, pre-encoded, into a 127.0.0.1 TCP connection as
fast as the peer takes them (the thread costs almost nothing: one ``sendall``
per MiB). ``publisher``: a real peer triggers (``await peer.trigger`` or an
``@peer.event`` function called from a plain thread) to one fake subscriber
whose thread only drains the socket. Either way the figure is what that one
side can do with a whole core, without the other side competing for CPU:
the end-to-end rate of ``scripts/bench`` is bounded by the slower side.
``call``: two real peers in this process, one calling the other (``await
peer.call`` to an ``async def`` connection, or ``call_sync`` from a thread to
a plain one): the round trip without cross-process wake-ups, i.e. mostly the
CPU both sides spend on a call. Prints the rate, the CPU time per message, and the garbage collector's time.
Needs the project's .venv (``scripts/_setup.sh``); uses 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["NET_DISCOVERY"] = "static"

import trio
from benchlib import END_SEQ, SeqChecker, make_payload

import net
from net import protocol as p
from net.protocol import _messages as m

EVENT = "bench"


def _tcp_pair() -> tuple[socket.socket, socket.socket]:
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    b = socket.create_connection(lst.getsockname())
    a, _ = lst.accept()
    lst.close()
    return a, b


def _fake() -> p.Connection:
    return p.Connection(
        m.Hello(m.PROTOCOL_VERSION, "f" * 16, "fake", "default", False, "", 1, 8 << 20)
    )


class _GcTimer:
    def __init__(self) -> None:
        self.total = 0.0
        self._t = 0.0
        gc.callbacks.append(self)

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._t


async def subscriber(mode: str, n: int) -> str:
    fake = _fake()
    fake.remote_max_frame = 8 << 20  # as after the subscriber's HELLO
    # what a publisher sends: EVENTS frames of up to 128 events (net.peer._link.BATCH_EVENTS)
    payloads = [p.pack_event_args([make_payload(i)], {}) for i in range(n)]
    payloads.append(p.pack_event_args([{"seq": END_SEQ, "end": n}], {}))
    blob = b"".join(
        fake.events_bytes(EVENT, i + 1, payloads[i : i + 128]) for i in range(0, n + 1, 128)
    )
    a, b = _tcp_pair()
    chk = SeqChecker(n)
    done = threading.Event()

    def on_bench(payload: dict) -> None:
        seq = payload["seq"]
        if seq >= 0:
            chk.see(seq)
        elif seq == END_SEQ:
            done.set()

    async def on_bench_async(payload: dict) -> None:
        on_bench(payload)

    def feed() -> None:
        b.sendall(fake.hello_bytes())
        view = memoryview(blob)
        for i in range(0, len(blob), 1 << 20):
            b.sendall(view[i : i + (1 << 20)])

    def drain() -> None:
        buf = bytearray(1 << 16)
        while True:
            try:
                if not b.recv_into(buf):
                    return
            except OSError:
                return

    gct = _GcTimer()
    async with net.Peer("sub", port=0, host="127.0.0.1") as peer:
        peer.subscribe(EVENT)(on_bench_async if mode == "async" else on_bench)
        threading.Thread(target=drain, daemon=True).start()
        c0 = time.process_time()
        threading.Thread(target=feed, daemon=True).start()
        peer._nursery.start_soon(  # type: ignore[union-attr]
            peer._handle_incoming, trio.SocketStream(trio.socket.from_stdlib_socket(a))
        )
        with trio.move_on_after(120):
            while not done.is_set():
                await trio.sleep(0.01)
        c1 = time.process_time()
        peer.request_stop()
    r = chk.result(n)
    return (
        f"subscriber ({mode} handler): {r['rate']:.0f} msgs/s at the handler, lost {r['lost']},"
        f" {1e6 * (c1 - c0) / n:.2f} µs CPU/msg, gc {1e3 * gct.total:.0f} ms"
    )


async def publisher(mode: str, n: int) -> str:
    fake = _fake()
    a, b = _tcp_pair()

    def fake_subscriber() -> None:
        b.sendall(fake.hello_bytes() + fake.send(m.Subscribe(1, EVENT)))
        buf = bytearray(1 << 20)
        last = time.monotonic()
        while True:
            try:
                if not b.recv_into(buf):
                    return
            except OSError:
                return
            if time.monotonic() - last > 0.3:  # stay alive for the heartbeat
                b.sendall(fake.send(m.Ping(1)))
                last = time.monotonic()

    gct = _GcTimer()
    async with net.Peer("pub", port=0, host="127.0.0.1") as peer:
        threading.Thread(target=fake_subscriber, daemon=True).start()
        peer._nursery.start_soon(  # type: ignore[union-attr]
            peer._handle_incoming, trio.SocketStream(trio.socket.from_stdlib_socket(a))
        )
        with trio.fail_after(10):
            while not peer.table.subscribers(EVENT):
                await trio.sleep(0.01)
        if mode == "async":
            c0, t0 = time.process_time(), time.perf_counter()
            for seq in range(n):
                await peer.trigger(EVENT, make_payload(seq))
        else:

            @peer.event(EVENT)
            def bench(payload: dict) -> tuple:
                return (payload,), {}

            def produce() -> None:
                for seq in range(n):
                    bench(make_payload(seq))

            c0, t0 = time.process_time(), time.perf_counter()
            await trio.to_thread.run_sync(produce)
        with trio.fail_after(60):  # until the loop has queued them all
            while peer.links and next(iter(peer.links.values())).events_sent < n:
                await trio.sleep(0.001)
        t1, c1 = time.perf_counter(), time.process_time()
        peer.request_stop()
    return (
        f"publisher ({'await peer.trigger' if mode == 'async' else '@peer.event from a thread'}):"
        f" {n / (t1 - t0):.0f} triggers/s, {1e6 * (c1 - c0) / n:.2f} µs CPU/trigger"
        f" (make_payload included), gc {1e3 * gct.total:.0f} ms"
    )


async def call(mode: str, n: int) -> str:
    async with net.Peer("srv", port=0, host="127.0.0.1") as srv:

        @srv.connect("echo_async")
        async def echo_async(payload: dict) -> dict:
            return {"seq": payload["seq"], "ok": True}

        @srv.connect("echo")
        def echo(payload: dict) -> dict:
            return {"seq": payload["seq"], "ok": True}

        address = f"127.0.0.1:{srv.port}"
        if mode == "async":
            async with net.Peer("cli", port=0, host="127.0.0.1") as cli:
                for i in range(200):  # link, warm up
                    await cli.call(address, "echo_async", make_payload(i))
                c0, t0 = time.process_time(), time.perf_counter()
                for i in range(n):
                    reply = await cli.call(address, "echo_async", make_payload(i))
                    assert reply["seq"] == i
                t1, c1 = time.perf_counter(), time.process_time()
        else:

            def calls() -> tuple[float, float, float, float]:
                cli = net.Peer("cli", port=0, host="127.0.0.1").start()  # its own loop thread
                try:
                    for i in range(200):
                        cli.call_sync(address, "echo", make_payload(i))
                    c0, t0 = time.process_time(), time.perf_counter()
                    for i in range(n):
                        assert cli.call_sync(address, "echo", make_payload(i))["seq"] == i
                    return c0, t0, time.perf_counter(), time.process_time()
                finally:
                    cli.stop()

            c0, t0, t1, c1 = await trio.to_thread.run_sync(calls)
    what = "await peer.call -> async @connect" if mode == "async" else "call_sync -> plain @connect"
    return (
        f"call ({what}, both peers in this process): {1e6 * (t1 - t0) / n:.1f} µs per round trip,"
        f" {1e6 * (c1 - c0) / n:.1f} µs CPU (all threads)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("side", choices=("subscriber", "publisher", "call"))
    ap.add_argument("mode", nargs="?", default="async", choices=("async", "sync"))
    ap.add_argument("-n", type=int, default=None, help="messages (default 200000; calls 5000)")
    ap.add_argument("--cprofile", action="store_true")
    args = ap.parse_args()
    fn = {"subscriber": subscriber, "publisher": publisher, "call": call}[args.side]
    if args.n is None:
        args.n = 5000 if args.side == "call" else 200_000
    prof = cProfile.Profile() if args.cprofile else None
    if prof:
        prof.enable()
    line = trio.run(fn, args.mode, args.n)
    if prof:
        prof.disable()
        pstats.Stats(prof).sort_stats(os.environ.get("PSORT", "tottime")).print_stats(int(os.environ.get("PN", "25")))
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""nats-py against a local nats-server (started by the driver on 127.0.0.1).

Subscribers' client-side pending limits are lifted (like zmq's unbounded
HWM); slow-consumer drops, if any, are counted and show up as losses.
"""

from __future__ import annotations

import asyncio
import time

import msgpack
import nats
from benchlib import END_SEQ, SeqChecker, latency_summary, make_end, make_payload

ASYNC_LIB = "asyncio"

SUBJECT = "bench.events"
RPC_SUBJECT = "bench.rpc"


async def _connect(url, errors=None):
    async def error_cb(e):
        if errors is not None:
            errors.append(f"{type(e).__name__}: {e}")

    return await nats.connect(
        url, allow_reconnect=False, connect_timeout=2, error_cb=error_cb, name="bench"
    )


async def publisher(ctl, nats_url, n, payload_size=None, duration=None, **_):
    nc = await _connect(nats_url)
    ctl.ready()
    await ctl.wait_asyncio("GO")
    packb, publish = msgpack.packb, nc.publish
    limit = time.perf_counter() + duration if duration else None
    t0 = time.perf_counter()
    sent = 0
    for seq in range(n):
        await publish(SUBJECT, packb(make_payload(seq, payload_size)))
        sent += 1
        if limit and not seq & 255 and time.perf_counter() > limit:
            break
    await nc.flush(timeout=max(int(ctl.time_left()), 1))
    t1 = time.perf_counter()
    await publish(SUBJECT, packb(make_end(sent)))
    await nc.flush()
    await ctl.wait_asyncio("STOP")
    await nc.close()
    ctl.result(sent=sent, send_rate=sent / (t1 - t0))


async def subscriber(ctl, nats_url, n, **_):
    errors: list[str] = []
    nc = await _connect(nats_url, errors)
    chk = SeqChecker(n)
    see, unpackb = chk.see, msgpack.unpackb
    done = asyncio.Event()
    sent = None

    async def on_msg(msg):
        nonlocal sent
        m = unpackb(msg.data)
        seq = m["seq"]
        if seq >= 0:
            see(seq)
        elif seq == END_SEQ:
            sent = m["end"]
            done.set()

    await nc.subscribe(SUBJECT, cb=on_msg, pending_msgs_limit=0, pending_bytes_limit=0)
    await nc.flush()  # the server has our SUB: everything published from now on reaches us
    ctl.ready()
    try:
        await asyncio.wait_for(done.wait(), timeout=max(ctl.time_left(), 1))
    except TimeoutError:
        pass
    await nc.close()
    res = chk.result(sent if sent is not None else n)
    res["end_seen"] = sent is not None
    res["errors"] = len(errors)
    if errors:
        res["first_error"] = errors[0]
    ctl.result(**res)


async def server(ctl, nats_url, **_):
    nc = await _connect(nats_url)
    packb, unpackb = msgpack.packb, msgpack.unpackb
    served = 0

    async def on_req(msg):
        nonlocal served
        m = unpackb(msg.data)
        await msg.respond(packb({"seq": m["seq"], "ok": True}))
        served += 1

    await nc.subscribe(RPC_SUBJECT, cb=on_req)
    await nc.flush()
    ctl.ready()
    await ctl.wait_asyncio("STOP")
    await nc.close()
    ctl.result(served=served)


async def client(ctl, nats_url, rounds, warmup=200, **_):
    nc = await _connect(nats_url)
    packb, unpackb, clock = msgpack.packb, msgpack.unpackb, time.perf_counter_ns
    samples = []
    cpu0 = time.process_time()
    for i in range(warmup + rounds):
        t0 = clock()
        reply = await nc.request(RPC_SUBJECT, packb(make_payload(i)), timeout=5)
        m = unpackb(reply.data)
        t1 = clock()
        if m["seq"] != i:
            raise AssertionError(f"reply for {m['seq']}, expected {i}")
        if i >= warmup:
            samples.append(t1 - t0)
    await nc.close()
    ctl.result(**latency_summary(samples, cpu_s=time.process_time() - cpu0, calls=warmup + rounds))

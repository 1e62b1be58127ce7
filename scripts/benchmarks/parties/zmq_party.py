"""pyzmq: PUB/SUB (publisher, subscriber) and REQ/REP (server, client).

hwm: "unbounded" sets SNDHWM/RCVHWM to 0 (nothing is ever dropped; memory
grows instead); "default" leaves zmq's default of 1000 messages, where PUB
silently drops what does not fit.
"""

from __future__ import annotations

import time

import msgpack
import zmq
from benchlib import END_SEQ, SeqChecker, latency_summary, make_end, make_payload, make_warmup


def _hwm(sock: zmq.Socket, hwm: str) -> None:
    if hwm == "unbounded":
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
    elif hwm != "default":
        raise ValueError(f"hwm must be 'unbounded' or 'default', not {hwm!r}")


def publisher(ctl, n, hwm="unbounded", payload_size=None, duration=None, **_):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUB)
    sock.setsockopt(zmq.LINGER, 0)
    _hwm(sock, hwm)
    sock.bind("tcp://127.0.0.1:0")
    ctl.ready(endpoint=sock.getsockopt_string(zmq.LAST_ENDPOINT))

    # Slow joiners: until GO, send warm-up messages; each subscriber says
    # READY once one reached it, so it is attached before the data starts.
    warm = msgpack.packb(make_warmup())
    while not ctl.poll("GO", 0.005):
        sock.send(warm)
        if ctl.time_left() <= 0:
            raise TimeoutError("no GO")

    packb, send = msgpack.packb, sock.send
    limit = time.perf_counter() + duration if duration else None
    t0 = time.perf_counter()
    sent = 0
    for seq in range(n):
        send(packb(make_payload(seq, payload_size)))
        sent += 1
        if limit and not seq & 255 and time.perf_counter() > limit:
            break
    t1 = time.perf_counter()
    # END until the driver says STOP (with the default HWM one END may be dropped too).
    end = packb(make_end(sent))
    while not ctl.poll("STOP", 0.05):
        sock.send(end)
        if ctl.time_left() <= 0:
            break
    sock.close()
    ctx.term()
    ctl.result(sent=sent, send_rate=sent / (t1 - t0), hwm=hwm)


def subscriber(ctl, endpoint, n, hwm="unbounded", idle_timeout=2.0, **_):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    _hwm(sock, hwm)
    sock.setsockopt(zmq.RCVTIMEO, int(idle_timeout * 1000))
    sock.connect(endpoint)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    while True:  # wait for a warm-up message: then we are attached
        try:
            sock.recv()
            break
        except zmq.Again:
            if ctl.time_left() <= 0:
                raise TimeoutError("no warm-up message from the publisher") from None
    ctl.ready()

    chk = SeqChecker(n)
    see, unpackb, recv = chk.see, msgpack.unpackb, sock.recv
    sent = None
    while True:
        try:
            msg = unpackb(recv())
        except zmq.Again:  # idle: the END was lost or the publisher died
            if chk.received or ctl.time_left() <= 0:
                break
            continue
        seq = msg["seq"]
        if seq >= 0:
            see(seq)
        elif seq == END_SEQ:
            sent = msg["end"]
            break
    sock.close()
    ctx.term()
    res = chk.result(sent if sent is not None else n)
    res["end_seen"] = sent is not None
    ctl.result(**res)


def server(ctl, **_):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REP)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind("tcp://127.0.0.1:0")
    ctl.ready(endpoint=sock.getsockopt_string(zmq.LAST_ENDPOINT))
    sock.setsockopt(zmq.RCVTIMEO, 100)  # the plain REP loop; look for STOP when idle
    packb, unpackb, recv, send = msgpack.packb, msgpack.unpackb, sock.recv, sock.send
    served = 0
    while True:
        try:
            msg = unpackb(recv())
        except zmq.Again:
            if ctl.poll("STOP") or ctl.time_left() <= 0:
                break
            continue
        send(packb({"seq": msg["seq"], "ok": True}))
        served += 1
    sock.close()
    ctx.term()
    ctl.result(served=served)


def client(ctl, endpoint, rounds, warmup=200, **_):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    sock.connect(endpoint)
    packb, unpackb, clock = msgpack.packb, msgpack.unpackb, time.perf_counter_ns
    samples = []
    cpu0 = time.process_time()
    for i in range(warmup + rounds):
        t0 = clock()
        sock.send(packb(make_payload(i)))
        reply = unpackb(sock.recv())
        t1 = clock()
        if reply["seq"] != i:
            raise AssertionError(f"reply for {reply['seq']}, expected {i}")
        if i >= warmup:
            samples.append(t1 - t0)
    sock.close()
    ctx.term()
    ctl.result(**latency_summary(samples, cpu_s=time.process_time() - cpu0, calls=warmup + rounds))
